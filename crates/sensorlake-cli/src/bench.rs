//! `sensorlake bench`: bytes, heap, allocations, instructions and time per Parquet file,
//! for every codec × encoding × statistics level, on real and simulated sensor data,
//! against the Polars baseline and the seed configuration. Prints Markdown tables with
//! their setup. The heap columns need the counting allocator of the `sensorlake-bench`
//! binary (see [`HeapCounters`]); instruction counts need valgrind.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sensorlake::batch::{Batch, Value};
use sensorlake::encode::{
    Codec, EncodeOptions, Encoder, FileMetadata, FloatEncoding, IntEncoding, ReferenceEncoder,
    Statistics,
};
use sensorlake::key::DeviceId;
use sensorlake::schema::{ChannelType, Schema};
use sensorlake::simulate::{Profile, Simulator};

/// Rows per file of the main table (a 15-minute batch of a 5-s station is 180).
pub const SMALL_FILE_ROWS: usize = 178;
/// Larger files, to show how the footer amortises.
pub const LARGE_FILE_ROWS: [usize; 2] = [1024, 4096];

/// Heap counters of a counting global allocator.
#[derive(Debug, Clone, Copy)]
pub struct HeapCounters {
    /// Bytes allocated now.
    pub current: fn() -> usize,
    /// Highest `current` since the last `reset_peak`.
    pub peak: fn() -> usize,
    /// Sets the peak to the current value.
    pub reset_peak: fn(),
    /// Allocations (including reallocations) so far.
    pub allocations: fn() -> usize,
}

/// One data set: rows plus how big they are as text.
pub struct Dataset {
    /// Short name.
    pub name: &'static str,
    /// What it is.
    pub description: String,
    /// Its schema.
    pub schema: Arc<Schema>,
    /// Its rows.
    pub rows: Vec<(i64, Vec<Value>)>,
    /// Whether the channels hold integer raw counts.
    pub integer: bool,
}

/// Which writer and options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Writer {
    /// This library's [`Encoder`].
    Sensorlake(EncodeOptions),
    /// The `parquet` crate's writer with the same options ([`ReferenceEncoder`]).
    ParquetCrate(EncodeOptions),
    /// The seed note's configuration: the `parquet` crate's defaults plus Snappy.
    Seed,
}

impl Writer {
    /// A short label for tables.
    pub fn label(&self) -> String {
        match self {
            Self::Sensorlake(o) => format!("sensorlake {}", options_label(o)),
            Self::ParquetCrate(o) => format!("parquet crate {}", options_label(o)),
            Self::Seed => "seed: parquet crate defaults + snappy".into(),
        }
    }
}

fn options_label(o: &EncodeOptions) -> String {
    format!(
        "{}/{}/{}/{}",
        o.codec.name(),
        o.float_encoding.name(),
        o.ts_encoding.name(),
        o.statistics.name()
    )
}

/// A writer of either kind. Not boxed, so the heap being measured is only what the
/// encoder itself allocates (its inline state is ≈ 0.6 KB).
#[allow(clippy::large_enum_variant)]
enum AnyEncoder {
    Ours(Encoder),
    Reference(ReferenceEncoder),
}

impl AnyEncoder {
    fn new(writer: Writer, schema: &Arc<Schema>) -> Result<Self> {
        Ok(match writer {
            Writer::Sensorlake(o) => Self::Ours(Encoder::new(schema.clone(), o)?),
            Writer::ParquetCrate(o) => Self::Reference(ReferenceEncoder::new(schema.clone(), o)?),
            Writer::Seed => Self::Reference(ReferenceEncoder::crate_defaults(
                schema.clone(),
                Codec::Snappy,
            )?),
        })
    }

    fn encode_into(
        &mut self,
        batch: &Batch,
        meta: &FileMetadata<'_>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        match self {
            Self::Ours(e) => e.encode_into(batch, meta, out)?,
            Self::Reference(e) => {
                out.clear();
                e.encode(batch, meta, out)?;
            }
        }
        Ok(())
    }
}

/// The device id written into every benchmark file (a UUID, as stations use).
const DEVICE: &str = "0195ae3c-43e0-7624-8c5c-7424adbcc30d";

fn object_key(batch: &Batch) -> String {
    format!(
        "raw/device_id={DEVICE}/dt=2024-03-01/hour=08/{}-0123abcd.parquet",
        batch.first_ts_us().unwrap_or(0)
    )
}

/// The default path of the real data file.
pub fn default_data_path() -> PathBuf {
    let here = Path::new("data/basicmotions.csv");
    if here.exists() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/basicmotions.csv")
    }
}

/// The data sets: the real IMU recording, the simulated enviro station (float32, with
/// failed reads) and the simulated IMU as integer raw counts.
pub fn datasets(data: &Path) -> Result<Vec<Dataset>> {
    let text =
        std::fs::read_to_string(data).with_context(|| format!("cannot read {}", data.display()))?;
    let source = data.display().to_string();
    let schema =
        Arc::new(sensorlake::csv::infer_schema(&text, &[]).map_err(|e| e.in_source(&source))?);
    let rows = sensorlake::csv::read_rows(&text, &schema).map_err(|e| e.in_source(&source))?;
    let mut sets = vec![Dataset {
        name: "basicmotions",
        description: format!(
            "{source}: real smartwatch IMU (UEA BasicMotions), {} rows x {} float channels, 10 Hz",
            rows.len(),
            schema.channels.len()
        ),
        schema,
        rows,
        integer: false,
    }];
    for (name, profile, rows, what) in [
        (
            "enviro",
            Profile::Enviro,
            4096,
            "simulated Enviro+ station every 5 s, 19 float32 channels (OpenSensor names), 1% failed PM reads",
        ),
        (
            "imu-raw",
            Profile::ImuRaw,
            8192,
            "simulated 9-axis IMU + fusion at 64 Hz, 14 channels as i16 raw counts with scales",
        ),
    ] {
        let sim = Simulator::new(profile, "bench", 1, 1_709_280_000_000_000);
        let mut values = Vec::new();
        let data = (0..rows)
            .map(|i| {
                let ts = sim.row(i, &mut values);
                (ts, values.clone())
            })
            .collect();
        sets.push(Dataset {
            name,
            description: format!("{what}, {rows} rows"),
            schema: sim.schema().clone(),
            rows: data,
            integer: profile == Profile::ImuRaw,
        });
    }
    Ok(sets)
}

impl Dataset {
    /// The rows cut into batches of `rows_per_file` (at most the data set's size);
    /// a short remainder is dropped so every file has the same row count.
    pub fn batches(&self, rows_per_file: usize) -> Result<Vec<Batch>> {
        let n = rows_per_file.min(self.rows.len()).max(1);
        self.rows
            .chunks_exact(n)
            .map(|chunk| {
                Batch::from_rows(
                    self.schema.clone(),
                    chunk.iter().map(|(t, v)| (*t, v.as_slice())),
                )
                .map_err(|e| anyhow::anyhow!("{}: {e}", self.name))
            })
            .collect()
    }

    /// Bytes per row of the raw binary form: 8 + 4 per channel (as the issue defines it).
    pub fn raw_row_bytes(&self) -> f64 {
        (8 + 4 * self.schema.channels.len()) as f64
    }

    /// Average bytes per row as CSV (RFC 3339 µs timestamp, shortest float text).
    pub fn csv_row_bytes(&self) -> f64 {
        let mut line = String::new();
        let total: usize = self
            .rows
            .iter()
            .map(|(ts, values)| {
                line.clear();
                push_ts(&mut line, *ts);
                for v in values {
                    line.push(',');
                    push_value(&mut line, v);
                }
                line.len() + 1
            })
            .sum();
        total as f64 / self.rows.len() as f64
    }

    /// Average bytes per row as JSON lines (`{"ts":"…","name":value,…}`).
    pub fn jsonl_row_bytes(&self) -> f64 {
        let mut line = String::new();
        let total: usize = self
            .rows
            .iter()
            .map(|(ts, values)| {
                line.clear();
                line.push_str("{\"ts\":\"");
                push_ts(&mut line, *ts);
                line.push('"');
                for (channel, v) in self.schema.channels.iter().zip(values) {
                    let _ = write!(line, ",\"{}\":", channel.name);
                    if *v == Value::Null {
                        line.push_str("null");
                    } else {
                        push_value(&mut line, v);
                    }
                }
                line.push('}');
                line.len() + 1
            })
            .sum();
        total as f64 / self.rows.len() as f64
    }

    /// Writes the rows as CSV for the Polars script: `ts_us,<channels>`.
    fn write_polars_csv(&self, path: &Path) -> Result<()> {
        let mut text = String::from("ts_us");
        for c in &self.schema.channels {
            text.push(',');
            text.push_str(&c.name);
        }
        text.push('\n');
        for (ts, values) in &self.rows {
            let _ = write!(text, "{ts}");
            for v in values {
                text.push(',');
                push_value(&mut text, v);
            }
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

fn push_ts(out: &mut String, ts_us: i64) {
    let ts = jiff::Timestamp::from_microsecond(ts_us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let _ = write!(out, "{ts:.6}");
}

fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => {}
        Value::F32(f) => {
            let _ = write!(out, "{f}");
        }
        Value::F64(f) => {
            let _ = write!(out, "{f}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
    }
}

/// Every configuration of the main table for a data set: codec × float encoding ×
/// timestamp (and integer) encoding × statistics; float encodings only where there are
/// float channels.
pub fn all_configs(dataset: &Dataset) -> Vec<EncodeOptions> {
    let has_floats = dataset
        .schema
        .channels
        .iter()
        .any(|c| c.ty == ChannelType::F32);
    let floats: &[FloatEncoding] = if has_floats {
        &FloatEncoding::ALL
    } else {
        &[FloatEncoding::Plain]
    };
    let mut out = Vec::new();
    for codec in Codec::ALL.into_iter().filter(|c| c.is_available()) {
        for &float_encoding in floats {
            for ts_encoding in IntEncoding::ALL {
                for statistics in Statistics::ALL {
                    out.push(EncodeOptions {
                        codec,
                        float_encoding,
                        ts_encoding,
                        int_encoding: ts_encoding,
                        statistics,
                    });
                }
            }
        }
    }
    out
}

/// Total bytes of encoding every batch with `writer`.
pub fn encoded_bytes(writer: Writer, batches: &[Batch]) -> Result<usize> {
    let Some(first) = batches.first() else {
        return Ok(0);
    };
    let device = DeviceId::new(DEVICE)?;
    let mut encoder = AnyEncoder::new(writer, first.schema())?;
    let mut out = Vec::new();
    let mut total = 0;
    for batch in batches {
        let key = object_key(batch);
        encoder.encode_into(
            batch,
            &FileMetadata {
                device_id: &device,
                object_key: &key,
            },
            &mut out,
        )?;
        total += out.len();
    }
    Ok(total)
}

/// Heap, allocations and time to encode one file.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileCost {
    /// Peak heap of a fresh encoder writing its first file into a new `Vec`.
    pub cold_peak: usize,
    /// Allocations of that.
    pub cold_allocations: usize,
    /// Peak heap above the retained state for a further file into a reused `Vec`.
    pub warm_peak: usize,
    /// Allocations of that.
    pub warm_allocations: usize,
    /// Heap the encoder keeps between files (its scratch buffers).
    pub retained: usize,
    /// Mean wall time per warm file, in microseconds.
    pub micros: f64,
}

/// Measures [`FileCost`] of `writer` on the first batches.
pub fn file_cost(
    writer: Writer,
    batches: &[Batch],
    heap: Option<HeapCounters>,
) -> Result<FileCost> {
    let device = DeviceId::new(DEVICE)?;
    let first = batches.first().context("no batches")?;
    let key = object_key(first);
    let meta = FileMetadata {
        device_id: &device,
        object_key: &key,
    };
    let mut cost = FileCost::default();
    if let Some(h) = heap {
        let base = (h.current)();
        (h.reset_peak)();
        let a0 = (h.allocations)();
        let mut encoder = AnyEncoder::new(writer, first.schema())?;
        let mut out = Vec::new();
        encoder.encode_into(first, &meta, &mut out)?;
        cost.cold_peak = (h.peak)() - base;
        cost.cold_allocations = (h.allocations)() - a0;
        cost.retained = (h.current)() - base - out.capacity();
        let second = batches.get(1).unwrap_or(first);
        let key2 = object_key(second);
        let meta2 = FileMetadata {
            device_id: &device,
            object_key: &key2,
        };
        let before = (h.current)();
        (h.reset_peak)();
        let a1 = (h.allocations)();
        encoder.encode_into(second, &meta2, &mut out)?;
        cost.warm_peak = (h.peak)() - before;
        cost.warm_allocations = (h.allocations)() - a1;
    }
    let mut encoder = AnyEncoder::new(writer, first.schema())?;
    let mut out = Vec::new();
    encoder.encode_into(first, &meta, &mut out)?;
    let started = Instant::now();
    let mut files = 0usize;
    while started.elapsed().as_millis() < 200 || files < 20 {
        let batch = &batches[files % batches.len()];
        encoder.encode_into(batch, &meta, &mut out)?;
        files += 1;
    }
    cost.micros = started.elapsed().as_secs_f64() * 1e6 / files as f64;
    Ok(cost)
}

/// Parses a writer name of `encode-one`: `default`, `seed`, `reference`, or
/// `codec/float/ts/statistics`.
pub fn parse_writer(text: &str) -> Result<Writer> {
    Ok(match text {
        "default" => Writer::Sensorlake(EncodeOptions::default()),
        "seed" => Writer::Seed,
        "reference" => Writer::ParquetCrate(EncodeOptions::default()),
        other => {
            let parts: Vec<&str> = other.split('/').collect();
            let [codec, float, ts, stats] = parts[..] else {
                bail!(
                    "writer {other:?}: expected default, seed, reference or codec/float/ts/statistics"
                );
            };
            let ts = IntEncoding::parse(ts)?;
            Writer::Sensorlake(EncodeOptions {
                codec: Codec::parse(codec)?,
                float_encoding: FloatEncoding::parse(float)?,
                ts_encoding: ts,
                int_encoding: ts,
                statistics: Statistics::parse(stats)?,
            })
        }
    })
}

fn writer_arg(writer: Writer) -> String {
    match writer {
        Writer::Sensorlake(o) if o == EncodeOptions::default() => "default".into(),
        Writer::Sensorlake(o) => options_label(&o),
        Writer::ParquetCrate(_) => "reference".into(),
        Writer::Seed => "seed".into(),
    }
}

/// `encode-one`: encodes `files` 178-row files of `dataset` (for callgrind).
pub fn encode_files(data: &Path, dataset: &str, writer: Writer, files: usize) -> Result<usize> {
    let set = datasets(data)?
        .into_iter()
        .find(|d| d.name == dataset)
        .with_context(|| format!("unknown data set {dataset:?}"))?;
    let batches = set.batches(SMALL_FILE_ROWS)?;
    let device = DeviceId::new(DEVICE)?;
    let key = object_key(&batches[0]);
    let meta = FileMetadata {
        device_id: &device,
        object_key: &key,
    };
    let mut encoder = AnyEncoder::new(writer, &set.schema)?;
    let mut out = Vec::new();
    let mut total = 0;
    for i in 0..files {
        encoder.encode_into(&batches[i % batches.len()], &meta, &mut out)?;
        total += out.len();
    }
    Ok(total)
}

/// Instructions per warm file under callgrind: (Ir of 1 + 20 files − Ir of 1 file) / 20.
/// `None` when valgrind is not installed.
pub fn instructions_per_file(data: &Path, dataset: &str, writer: Writer) -> Result<Option<f64>> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Ok(None);
    }
    let exe = std::env::current_exe()?;
    let run = |files: usize| -> Result<u64> {
        let output = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&exe)
            .arg("encode-one")
            .arg("--data")
            .arg(data)
            .args([
                "--dataset",
                dataset,
                "--writer",
                &writer_arg(writer),
                "--files",
            ])
            .arg(files.to_string())
            .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            bail!("valgrind failed: {stderr}");
        }
        stderr
            .lines()
            .find_map(|l| l.split("Collected :").nth(1))
            .and_then(|n| n.trim().parse().ok())
            .context("no 'Collected :' line in callgrind's output")
    };
    let one = run(1)?;
    let many = run(21)?;
    Ok(Some(many.saturating_sub(one) as f64 / 20.0))
}

/// Polars bytes per file by (data set, rows per file): runs python/polars_baseline.py.
fn polars_sizes(
    python: &Path,
    sets: &[Dataset],
    rows: &[usize],
) -> Result<std::collections::HashMap<(String, usize), (usize, usize)>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python/polars_baseline.py");
    let dir = tempfile::tempdir()?;
    let mut paths = Vec::new();
    for set in sets {
        let path = dir.path().join(format!("{}.csv", set.name));
        set.write_polars_csv(&path)?;
        paths.push(path);
    }
    let rows_arg: Vec<String> = rows.iter().map(usize::to_string).collect();
    let output = Command::new(python)
        .arg(&script)
        .arg("--rows")
        .arg(rows_arg.join(","))
        .args(&paths)
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let mut out = std::collections::HashMap::new();
    for (set, path) in sets.iter().zip(&paths) {
        for &n in rows {
            let entry = &json[path.to_string_lossy().as_ref()][n.to_string()];
            let total = entry[0]
                .as_u64()
                .context("bad JSON from the Polars script")? as usize;
            let files = entry[1].as_u64().unwrap_or(1) as usize;
            out.insert((set.name.to_string(), n), (total, files));
        }
    }
    Ok(out)
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The real data file.
    pub data: PathBuf,
    /// Python with polars (the Polars baseline); `None` skips it with a note.
    pub python: Option<PathBuf>,
    /// Count instructions with callgrind.
    pub callgrind: bool,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cpu}, {cores} cores, {} {}, {} build",
        std::env::consts::OS,
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "debug (numbers of time are not meaningful)"
        } else {
            "release"
        }
    )
}

/// Runs everything and returns the report (Markdown).
pub fn run(config: &BenchConfig, heap: Option<HeapCounters>) -> Result<String> {
    let sets = datasets(&config.data)?;
    let mut out = String::new();
    let defaults = EncodeOptions::default();
    let _ = writeln!(out, "# sensorlake bench\n");
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(
        out,
        "- library defaults: codec {}, float {}, timestamp {}, integers {}, statistics {}",
        defaults.codec.name(),
        defaults.float_encoding.name(),
        defaults.ts_encoding.name(),
        defaults.int_encoding.name(),
        defaults.statistics.name()
    );
    for set in &sets {
        let _ = writeln!(out, "- data `{}`: {}", set.name, set.description);
    }
    let _ = writeln!(
        out,
        "- raw = 8 + 4 x channels bytes/row; CSV = RFC 3339 µs timestamp + shortest float text; JSON lines = {{\"ts\":…,\"name\":value}}"
    );
    let _ = writeln!(
        out,
        "- Polars = one file per batch written by polars `write_parquet(compression=\"snappy\")`, float32 channels, ms UTC timestamp (python/polars_baseline.py)"
    );

    let mut all_rows = vec![SMALL_FILE_ROWS];
    all_rows.extend(LARGE_FILE_ROWS);
    let polars = match &config.python {
        Some(python) => match polars_sizes(python, &sets, &all_rows) {
            Ok(sizes) => Some(sizes),
            Err(e) => {
                let _ = writeln!(out, "- Polars baseline NOT measured: {e:#}");
                None
            }
        },
        None => {
            let _ = writeln!(
                out,
                "- Polars baseline NOT measured: no Python with polars (run ./test.sh to create .venv, or pass --python)"
            );
            None
        }
    };
    let polars_per_file = |set: &Dataset, n: usize| {
        polars
            .as_ref()
            .and_then(|p| p.get(&(set.name.to_string(), n)))
            .map(|&(total, files)| total as f64 / files.max(1) as f64)
    };

    // Footer amortisation and the headline comparison.
    let _ = writeln!(
        out,
        "\n## Bytes per row by file size (library defaults vs seed vs Polars)\n"
    );
    let _ = writeln!(
        out,
        "| data | rows/file | defaults B/row | seed B/row | Polars B/row | defaults / Polars | raw B/row |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for set in &sets {
        for &n in &all_rows {
            let batches = set.batches(n)?;
            let rows = (batches.len() * batches[0].len()) as f64;
            let ours = encoded_bytes(Writer::Sensorlake(defaults), &batches)? as f64 / rows;
            let seed = encoded_bytes(Writer::Seed, &batches)? as f64 / rows;
            let per_file_rows = batches[0].len();
            let (pl, ratio) = match polars_per_file(set, n) {
                Some(p) => {
                    let p = p / per_file_rows as f64;
                    (format!("{p:.1}"), format!("{:.2}", ours / p))
                }
                None => ("n/a".into(), "n/a".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {per_file_rows} | {ours:.1} | {seed:.1} | {pl} | {ratio} | {:.0} |",
                set.name,
                set.raw_row_bytes()
            );
        }
    }

    // Cost per file.
    let _ = writeln!(
        out,
        "\n## Heap, allocations, instructions and time per {SMALL_FILE_ROWS}-row file\n"
    );
    let _ = writeln!(
        out,
        "cold = a new encoder's first file into a new Vec (everything it allocates, output included); warm = a further file into a reused Vec; retained = heap the encoder keeps between files. Instructions: callgrind, (Ir of 21 files - Ir of 1 file) / 20, warm.\n"
    );
    let _ = writeln!(
        out,
        "| data | writer | bytes/file | cold peak heap | cold allocs | warm peak heap | warm allocs | retained | instructions/file | µs/file |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for set in &sets {
        let batches = set.batches(SMALL_FILE_ROWS)?;
        let mut writers = vec![Writer::Sensorlake(defaults)];
        for codec in Codec::ALL
            .into_iter()
            .filter(|c| c.is_available() && *c != defaults.codec)
        {
            writers.push(Writer::Sensorlake(EncodeOptions { codec, ..defaults }));
        }
        writers.push(Writer::ParquetCrate(defaults));
        writers.push(Writer::Seed);
        for writer in writers {
            let bytes = encoded_bytes(writer, &batches)? as f64 / batches.len() as f64;
            let cost = file_cost(writer, &batches, heap)?;
            let counted = matches!(writer, Writer::Seed | Writer::ParquetCrate(_))
                || writer == Writer::Sensorlake(defaults);
            let instructions = if config.callgrind && counted {
                match instructions_per_file(&config.data, set.name, writer)? {
                    Some(n) => format!("{n:.0}"),
                    None => "n/a (no valgrind)".into(),
                }
            } else {
                "-".into()
            };
            let h = |v: usize| {
                if heap.is_some() {
                    v.to_string()
                } else {
                    "n/a".into()
                }
            };
            let _ = writeln!(
                out,
                "| {} | {} | {bytes:.0} | {} | {} | {} | {} | {} | {instructions} | {:.1} |",
                set.name,
                writer.label(),
                h(cost.cold_peak),
                h(cost.cold_allocations),
                h(cost.warm_peak),
                h(cost.warm_allocations),
                h(cost.retained),
                cost.micros
            );
        }
    }

    // The full matrix.
    let _ = writeln!(
        out,
        "\n## Every configuration, {SMALL_FILE_ROWS}-row files (sensorlake writer)\n"
    );
    let _ = writeln!(
        out,
        "| data | codec | float | ts/int | statistics | bytes/file | B/row | x raw | x CSV | x JSONL | x Polars |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|");
    for set in &sets {
        let batches = set.batches(SMALL_FILE_ROWS)?;
        let rows = (batches.len() * SMALL_FILE_ROWS) as f64;
        let csv = set.csv_row_bytes();
        let jsonl = set.jsonl_row_bytes();
        let pl = polars_per_file(set, SMALL_FILE_ROWS).map(|p| p / SMALL_FILE_ROWS as f64);
        let has_floats = !set.integer;
        let mut line = |label: (String, String, String, String), bytes: usize| {
            let per_row = bytes as f64 / rows;
            let vs_pl = pl.map_or("n/a".into(), |p| format!("{:.2}", per_row / p));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.0} | {per_row:.1} | {:.2} | {:.2} | {:.2} | {vs_pl} |",
                set.name,
                label.0,
                label.1,
                label.2,
                label.3,
                bytes as f64 / batches.len() as f64,
                per_row / set.raw_row_bytes(),
                per_row / csv,
                per_row / jsonl
            );
        };
        for options in all_configs(set) {
            let bytes = encoded_bytes(Writer::Sensorlake(options), &batches)?;
            let mark = if options == defaults {
                " (default)"
            } else {
                ""
            };
            line(
                (
                    format!("{}{mark}", options.codec.name()),
                    if has_floats {
                        options.float_encoding.name().into()
                    } else {
                        "-".into()
                    },
                    options.ts_encoding.name().into(),
                    options.statistics.name().into(),
                ),
                bytes,
            );
        }
        let seed = encoded_bytes(Writer::Seed, &batches)?;
        line(
            (
                "seed".into(),
                "dictionary".into(),
                "dictionary".into(),
                "page".into(),
            ),
            seed,
        );
        if let Some(p) = pl {
            line(
                (
                    "Polars snappy".into(),
                    "-".into(),
                    "-".into(),
                    "polars".into(),
                ),
                (p * rows) as usize,
            );
        }
    }
    Ok(out)
}
