//! `sensorlake encode`: a CSV file → one Parquet file, or files under a directory at
//! the object keys the uploader would use: one per N rows (Hive layout), or per
//! clock-aligned 15-minute window as the OpenSensor preset cuts them in `demo` and the
//! agent (the same [`sensorlake::opensensor::batch_config`]).
//!
//! The whole CSV is parsed before anything is written, and every file is written to a
//! temporary name, synced, then renamed: an error leaves nothing half-written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sensorlake::batch::{Batch, BatchConfig, Batcher};
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::layout::SchemaPreset;
use sensorlake::schema::{ChannelType, Schema};

use crate::fsutil::write_atomically;

/// Where `encode` writes.
#[derive(Debug, Clone)]
pub enum Output {
    /// All rows in one file.
    File(PathBuf),
    /// Files at `dir/<object key>`, cut as the layout's batches are.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Rows per file (files are also cut at UTC hour boundaries); required for the
        /// Hive layout, a size limit for the OpenSensor one (default
        /// [`sensorlake::opensensor::MAX_ROWS`]), whose files are cut at its windows.
        rows_per_file: Option<usize>,
    },
}

/// What `encode` does.
#[derive(Debug, Clone)]
pub struct EncodeJob {
    /// The CSV input.
    pub input: PathBuf,
    /// Where to write.
    pub output: Output,
    /// Device id written into the files and keys.
    pub device_id: DeviceId,
    /// Key layout and prefix.
    pub template: KeyTemplate,
    /// Codec, encodings, statistics.
    pub options: EncodeOptions,
    /// Channel type overrides (`--types name=i32`).
    pub types: Vec<(String, ChannelType)>,
    /// Column conventions, usually the layout's (OpenSensor: rename the timestamp
    /// column and add `station_id`).
    pub schema_preset: SchemaPreset,
}

/// One file written.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    /// Where.
    pub path: PathBuf,
    /// Rows in it.
    pub rows: usize,
    /// Bytes.
    pub bytes: usize,
}

/// Parses `name=type,name=type`.
pub fn parse_types(text: &str) -> Result<Vec<(String, ChannelType)>> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|pair| {
            let (name, ty) = pair
                .split_once('=')
                .with_context(|| format!("--types entry {pair:?} is not name=type"))?;
            Ok((name.trim().to_string(), ChannelType::parse(ty.trim())?))
        })
        .collect()
}

/// Runs the job; returns the files written.
pub fn run(job: &EncodeJob) -> Result<Vec<WrittenFile>> {
    let source = job.input.display().to_string();
    if let Output::File(output) = &job.output {
        check_not_input(&job.input, output)?;
    }
    let text =
        std::fs::read_to_string(&job.input).with_context(|| format!("cannot read {source}"))?;
    let schema =
        sensorlake::csv::infer_schema(&text, &job.types).map_err(|e| e.in_source(&source))?;
    for (name, _) in &job.types {
        if schema.channel_index(name).is_none() {
            bail!("--types names {name:?}, which is not a column of {source}");
        }
    }
    let schema = Arc::new(
        schema
            .with_preset(&job.schema_preset)
            .and_then(Schema::validated)
            .with_context(|| format!("{source}: bad header"))?,
    );
    let rows = sensorlake::csv::read_rows(&text, &schema).map_err(|e| e.in_source(&source))?;
    if rows.is_empty() {
        bail!("{source}: no data rows after the header");
    }
    let batches = match &job.output {
        Output::File(_) => {
            vec![
                Batch::from_rows(schema.clone(), rows.iter().map(|(t, v)| (*t, v.as_slice())))
                    .map_err(|e| anyhow::anyhow!("{source}: {e}"))?,
            ]
        }
        Output::Dir { rows_per_file, .. } => {
            let config = batch_config(job.template.layout(), *rows_per_file)?;
            batch_rows(&schema, &rows, config, &source)?
        }
    };
    let keys = batches
        .iter()
        .map(|batch| job.template.render(&job.device_id, batch))
        .collect::<Result<Vec<_>, _>>()?;
    check_distinct_keys(&batches, &keys, &source)?;
    let mut encoder = Encoder::new(schema, job.options)?;
    let mut written = Vec::with_capacity(batches.len());
    for (batch, key) in batches.iter().zip(keys) {
        let meta = FileMetadata {
            device_id: &job.device_id,
            object_key: &key,
        };
        let bytes = encoder.encode_to_vec(batch, &meta)?;
        let path = match &job.output {
            Output::File(path) => path.clone(),
            Output::Dir { dir, .. } => dir.join(&key),
        };
        write_atomically(&path, &bytes)?;
        written.push(WrittenFile {
            path,
            rows: batch.len(),
            bytes: bytes.len(),
        });
    }
    Ok(written)
}

/// Refuses batches that render the same key: a key is a pure function of the rows, so
/// two identical batches (repeated rows) would be one file and a batch's rows would be
/// lost without a word.
fn check_distinct_keys(batches: &[Batch], keys: &[String], source: &str) -> Result<()> {
    let mut first_row = 1;
    let mut seen: std::collections::HashMap<&str, (usize, usize)> =
        std::collections::HashMap::new();
    for (batch, key) in batches.iter().zip(keys) {
        let rows = (first_row, first_row + batch.len() - 1);
        if let Some(earlier) = seen.insert(key, rows) {
            bail!(
                "{source}: data rows {}-{} and {}-{} would both be {key}: they hold the same rows, and a key is a hash of the rows, so one file would replace the other; remove the repeated rows or choose another --rows-per-file",
                earlier.0,
                earlier.1,
                rows.0,
                rows.1
            );
        }
        first_row += batch.len();
    }
    Ok(())
}

/// How rows are cut into files under `--output-dir`: the windows of a layout that
/// batches by window (OpenSensor, as `demo` and the agent cut them; `rows_per_file` a
/// size limit), or else every `rows_per_file` rows (the ages of rows in a CSV file mean
/// nothing).
fn batch_config(layout: Layout, rows_per_file: Option<usize>) -> Result<BatchConfig> {
    if rows_per_file == Some(0) {
        bail!("--rows-per-file must be at least 1");
    }
    let defaults = layout.batch_defaults();
    let config = match (defaults.window, rows_per_file) {
        (Some(_), rows) => BatchConfig {
            max_rows: rows.unwrap_or(defaults.max_rows),
            ..defaults
        },
        (None, Some(rows)) => BatchConfig {
            max_rows: rows,
            max_age: None,
            ..defaults
        },
        (None, None) => {
            bail!(
                "--output-dir with the {} layout needs --rows-per-file N",
                layout.name()
            )
        }
    };
    // Every closed batch is taken at once: nothing waits.
    Ok(BatchConfig {
        max_pending: usize::MAX,
        ..config
    })
}

/// Refuses an output that is the input under another name (`./x.csv`, a symlink, a
/// hard link): writing it would replace the CSV.
fn check_not_input(input: &Path, output: &Path) -> Result<()> {
    let (Ok(a), Ok(b)) = (std::fs::metadata(input), std::fs::metadata(output)) else {
        return Ok(()); // an output that does not exist yet is not the input
    };
    #[cfg(unix)]
    let same = {
        use std::os::unix::fs::MetadataExt;
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    };
    #[cfg(not(unix))]
    let same = {
        let _ = (a, b);
        std::fs::canonicalize(input).ok() == std::fs::canonicalize(output).ok()
    };
    if same {
        bail!(
            "--output {} is the input file {}: refusing to replace the CSV",
            output.display(),
            input.display()
        );
    }
    Ok(())
}

fn batch_rows(
    schema: &Arc<Schema>,
    rows: &[(i64, Vec<sensorlake::Value>)],
    config: BatchConfig,
    source: &str,
) -> Result<Vec<Batch>> {
    let mut batcher = Batcher::new(schema.clone(), config)?;
    let mut batches = Vec::new();
    for (i, (ts, values)) in rows.iter().enumerate() {
        batcher
            .push(*ts, values)
            .map_err(|e| anyhow::anyhow!("{source}: data row {}: {e}", i + 1))?;
        batches.extend(std::iter::from_fn(|| batcher.pop_ready()));
    }
    batcher.flush();
    batches.extend(std::iter::from_fn(|| batcher.pop_ready()));
    Ok(batches)
}

/// Checks that `path` is usable as an output directory.
pub fn check_output_dir(path: &Path) -> Result<()> {
    if path.exists() && !path.is_dir() {
        bail!(
            "--output-dir {} exists and is not a directory",
            path.display()
        );
    }
    Ok(())
}
