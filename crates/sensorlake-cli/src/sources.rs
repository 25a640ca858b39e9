//! Where the agent's rows come from: the deterministic simulator, a CSV file replayed at
//! a rate, or CSV lines on standard input.
//!
//! Re-readable sources (simulate, csv) give every row a position — the simulator's row
//! number + 1, the CSV byte offset after the row's line — which the spool stores with
//! each batch; after a restart they resume at the spool's position, so no row is read
//! twice or skipped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sensorlake::batch::{MAX_TS_US, Value};
use sensorlake::csv::{CsvError, CsvHeader, Inference};
use sensorlake::schema::{Channel, Schema};
use sensorlake::simulate::Simulator;

use crate::agent_config::SourceConfig;

/// What a CSV source (file or stdin) does with a row that cannot be stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnBadRow {
    /// Stop with an error naming file, line and column (the default).
    #[default]
    Stop,
    /// Skip it: logged with file, line and column, counted as skipped, and
    /// `--until-drained` ends with an error when any row was skipped.
    Skip,
}

sensorlake::named_options! {
    OnBadRow, anyhow::Error, |other| anyhow::anyhow!(
        "[source] on_bad_row: {other:?} is not \"stop\" or \"skip\""
    );
    Stop = "stop",
    Skip = "skip",
}

/// A row that cannot be stored: an error (stop) or a logged, counted skip.
fn bad_row(policy: OnBadRow, skipped: &mut u64, error: CsvError, source: &str) -> Result<()> {
    let error = error.in_source(source);
    match policy {
        OnBadRow::Stop => Err(anyhow::anyhow!(
            "{error} (set [source] on_bad_row = \"skip\" to skip such rows)"
        )),
        OnBadRow::Skip => {
            *skipped += 1;
            tracing::warn!("skipping a row: {error}");
            Ok(())
        }
    }
}

/// What a source has next.
#[derive(Debug, Clone, PartialEq)]
pub enum Pull {
    /// A row; `position` is where to resume after it (re-readable sources only).
    Row {
        /// Timestamp, µs since the epoch.
        ts_us: i64,
        /// Values in channel order.
        values: Vec<Value>,
        /// The position after this row.
        position: Option<u64>,
    },
    /// Nothing yet; ask again after this long (rate limit, live input).
    Wait(Duration),
    /// A finite source is exhausted.
    End,
}

/// A source of rows.
pub trait Source: Send {
    /// The next row, or why there is none.
    fn pull(&mut self) -> Result<Pull>;
    /// Whether rows are live (wall-clock batch ages apply).
    fn is_live(&self) -> bool;
    /// Rows skipped because they did not parse.
    fn skipped(&self) -> u64;
    /// Where the last row pulled came from (`file:line N`), for messages.
    fn origin(&self) -> Option<String> {
        None
    }
}

/// Paces rows at `rate_hz` from a start instant.
#[derive(Debug)]
struct Pace {
    rate_hz: Option<f64>,
    started: Instant,
    emitted: u64,
}

impl Pace {
    fn new(rate_hz: Option<f64>) -> Self {
        Self {
            rate_hz,
            started: Instant::now(),
            emitted: 0,
        }
    }

    /// How long until the next row is due (`None`: now). The configuration keeps the
    /// rate within its range; a due time beyond what the clock can hold waits anyway
    /// (in slices), never panics.
    fn wait(&self) -> Option<Duration> {
        let rate = self.rate_hz?;
        let due = Duration::try_from_secs_f64(self.emitted as f64 / rate)
            .ok()
            .and_then(|d| self.started.checked_add(d));
        match due {
            Some(due) => due
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero()),
            None => Some(Duration::from_secs(1)),
        }
    }
}

/// Name of the file in the spool directory that keeps the simulator's start time when
/// `[source] start` is not set.
pub const SIMULATE_START_FILE: &str = "simulate-start";

/// The simulator's first-row time, kept in `<spool dir>/simulate-start` so that a
/// restart produces the same rows and resumes after the last one. Without
/// `[source] start` it is the time of the first run (whole seconds), written before any
/// row is spooled; a spool that already holds a position but no such file was made by a
/// release whose default start was 2024-01-01T00:00:00Z, and keeps that start. A
/// configured start that differs from the kept one while the spool holds a position is
/// refused: it would change every row already read.
pub fn simulate_start(
    spool_dir: &Path,
    configured: Option<i64>,
    resume: Option<u64>,
) -> Result<i64> {
    const OLD_DEFAULT_US: i64 = 1_704_067_200_000_000; // 2024-01-01T00:00:00Z
    let path = spool_dir.join(SIMULATE_START_FILE);
    let rfc3339 = |us: i64| {
        jiff::Timestamp::from_microsecond(us)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| format!("{us} µs"))
    };
    let kept = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let t: jiff::Timestamp = text.trim().parse().with_context(|| {
                format!(
                    "{} is not an RFC 3339 time; set [source] start or remove the file (a new start changes every simulated row)",
                    path.display()
                )
            })?;
            Some(t.as_microsecond())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let start_us = match (configured, kept) {
        (Some(c), Some(k)) if c != k && resume.is_some() => bail!(
            "[source] start {} differs from {}, the start of the rows already in spool dir {} ({}): a new start changes every simulated row; use a new spool dir, or set start = \"{}\"",
            rfc3339(c),
            rfc3339(k),
            spool_dir.display(),
            SIMULATE_START_FILE,
            rfc3339(k)
        ),
        (Some(c), _) => c,
        (None, Some(k)) => return Ok(k),
        (None, None) if resume.is_some() => OLD_DEFAULT_US,
        (None, None) => {
            let now = jiff::Timestamp::now().as_microsecond();
            now - now.rem_euclid(1_000_000)
        }
    };
    if kept != Some(start_us) {
        crate::fsutil::write_atomically(&path, format!("{}\n", rfc3339(start_us)).as_bytes())?;
    }
    Ok(start_us)
}

/// The simulated device.
#[derive(Debug)]
pub struct SimulateSource {
    sim: Simulator,
    next: u64,
    end: Option<u64>,
    pace: Pace,
}

impl SimulateSource {
    /// Starts after row `resume` (the spool's position: rows already taken).
    pub fn new(
        sim: Simulator,
        rows: Option<u64>,
        rate_hz: Option<f64>,
        resume: Option<u64>,
    ) -> Self {
        Self {
            sim,
            next: resume.unwrap_or(0),
            end: rows,
            pace: Pace::new(rate_hz),
        }
    }
}

impl Source for SimulateSource {
    fn pull(&mut self) -> Result<Pull> {
        if self.end.is_some_and(|end| self.next >= end) {
            return Ok(Pull::End);
        }
        if let Some(wait) = self.pace.wait() {
            return Ok(Pull::Wait(wait));
        }
        let step = self.sim.profile().interval_us();
        let in_range = i64::try_from(self.next)
            .ok()
            .and_then(|n| n.checked_mul(step))
            .and_then(|d| self.sim.ts_of(0).checked_add(d))
            .is_some_and(|t| t <= MAX_TS_US);
        if !in_range {
            bail!(
                "simulated row {} would be after 9999-12-31T23:59:59.999999Z, the last time a row can have: lower [source] rows or start",
                self.next
            );
        }
        let mut values = Vec::new();
        let ts_us = self.sim.row(self.next, &mut values);
        self.next += 1;
        self.pace.emitted += 1;
        Ok(Pull::Row {
            ts_us,
            values,
            position: Some(self.next),
        })
    }

    fn is_live(&self) -> bool {
        false
    }

    fn skipped(&self) -> u64 {
        0
    }
}

/// A CSV file replayed from a byte offset.
#[derive(Debug)]
pub struct CsvSource {
    path: PathBuf,
    reader: BufReader<File>,
    header: CsvHeader,
    offset: u64,
    line_no: usize,
    pace: Pace,
    on_bad_row: OnBadRow,
    skipped: u64,
    line: Vec<u8>,
    values: Vec<Value>,
}

/// The header line and the byte offset after it.
fn read_header(reader: &mut impl BufRead, path: &Path) -> Result<(String, u64)> {
    let mut header = String::new();
    let n = reader
        .read_line(&mut header)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if n == 0 {
        bail!("{}: the file is empty (no header)", path.display());
    }
    Ok((header.trim_end().to_string(), n as u64))
}

/// Channels for a CSV file: names from the header, types inferred from the whole
/// file (see [`Inference`]), so every row that is read later fits. A line that cannot
/// be stored is an error, or with [`OnBadRow::Skip`] takes no part (it is skipped
/// when read).
pub fn csv_channels(path: &Path, on_bad_row: OnBadRow) -> Result<Vec<Channel>> {
    let source = path.display().to_string();
    let file = File::open(path).with_context(|| format!("cannot open {source}"))?;
    let mut reader = BufReader::new(file);
    let (header, _) = read_header(&mut reader, path)?;
    let mut inference =
        Inference::new(&header).map_err(|e| anyhow::anyhow!("{}", e.in_source(&source)))?;
    let mut line = Vec::new();
    let mut line_no = 1;
    let mut ignored = 0;
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {source}"))?
            == 0
        {
            break;
        }
        line_no += 1;
        let text = String::from_utf8_lossy(&line);
        if let Err(e) = inference.add_line(line_no, text.trim_end_matches(['\n', '\r'])) {
            match on_bad_row {
                OnBadRow::Stop => bail!(
                    "{} (set [source] on_bad_row = \"skip\" to skip such rows)",
                    e.in_source(&source)
                ),
                OnBadRow::Skip => ignored += 1,
            }
        }
    }
    if ignored > 0 {
        tracing::warn!("{source}: {ignored} lines cannot be stored and will be skipped");
    }
    let schema = inference
        .finish(&[], on_bad_row == OnBadRow::Skip)
        .map_err(|e| anyhow::anyhow!("{}", e.in_source(&source)))?;
    Ok(schema.channels)
}

impl CsvSource {
    /// Opens `path` for `schema`, resuming at byte offset `resume` (the spool's position).
    pub fn open(
        path: &Path,
        schema: &Schema,
        rate_hz: Option<f64>,
        resume: Option<u64>,
        on_bad_row: OnBadRow,
    ) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata()?.len();
        let mut reader = BufReader::new(file);
        let (header_line, header_end) = read_header(&mut reader, path)?;
        let header = CsvHeader::parse(&header_line, schema)
            .map_err(|e| anyhow::anyhow!("{}", e.in_source(&path.display().to_string())))?;
        let mut offset = header_end;
        let mut line_no = 1;
        if let Some(resume) = resume.filter(|&r| r > header_end) {
            if resume > len {
                bail!(
                    "the spool says {} was read up to byte {resume}, but it has only {len} bytes: was the file replaced? Use a new spool dir for a new file",
                    path.display()
                );
            }
            // Count the lines before the resume point, for error messages.
            let mut skipped = (&mut reader).take(resume - header_end);
            let mut buf = [0u8; 64 * 1024];
            loop {
                let n = skipped.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                line_no += buf[..n].iter().filter(|&&b| b == b'\n').count();
            }
            reader.seek(SeekFrom::Start(resume))?;
            offset = resume;
        }
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            header,
            offset,
            line_no,
            pace: Pace::new(rate_hz),
            on_bad_row,
            skipped: 0,
            line: Vec::new(),
            values: Vec::new(),
        })
    }
}

impl Source for CsvSource {
    fn pull(&mut self) -> Result<Pull> {
        if let Some(wait) = self.pace.wait() {
            return Ok(Pull::Wait(wait));
        }
        loop {
            self.line.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.line)
                .with_context(|| format!("cannot read {}", self.path.display()))?;
            if n == 0 {
                return Ok(Pull::End);
            }
            self.offset += n as u64;
            self.line_no += 1;
            let text = String::from_utf8_lossy(&self.line);
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            match self.header.parse_row(text, self.line_no, &mut self.values) {
                Ok(ts_us) => {
                    self.pace.emitted += 1;
                    return Ok(Pull::Row {
                        ts_us,
                        values: self.values.clone(),
                        position: Some(self.offset),
                    });
                }
                Err(e) => bad_row(
                    self.on_bad_row,
                    &mut self.skipped,
                    e,
                    &self.path.display().to_string(),
                )?,
            }
        }
    }

    fn is_live(&self) -> bool {
        false
    }

    fn skipped(&self) -> u64 {
        self.skipped
    }

    fn origin(&self) -> Option<String> {
        Some(format!("{}:line {}", self.path.display(), self.line_no))
    }
}

/// CSV lines from standard input (read on a helper thread, so a shutdown never waits
/// for input).
#[derive(Debug)]
pub struct StdinSource {
    lines: Receiver<std::io::Result<String>>,
    header: CsvHeader,
    line_no: usize,
    on_bad_row: OnBadRow,
    skipped: u64,
    values: Vec<Value>,
    ended: bool,
}

/// Reads the header line of standard input and starts the reader thread.
pub fn stdin_lines() -> Result<(String, Receiver<std::io::Result<String>>)> {
    let (tx, rx) = sync_channel(1024);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                if tx.send(line).is_err() {
                    return;
                }
            }
        })?;
    let header = match rx.recv() {
        Ok(line) => line.context("cannot read standard input")?,
        Err(_) => bail!("standard input is empty (no header line)"),
    };
    Ok((header, rx))
}

impl StdinSource {
    /// A source over lines after the header.
    pub fn new(
        header_line: &str,
        lines: Receiver<std::io::Result<String>>,
        schema: &Schema,
        on_bad_row: OnBadRow,
    ) -> Result<Self> {
        let header = CsvHeader::parse(header_line, schema)
            .map_err(|e| anyhow::anyhow!("{}", e.in_source("stdin")))?;
        Ok(Self {
            lines,
            header,
            line_no: 1,
            on_bad_row,
            skipped: 0,
            values: Vec::new(),
            ended: false,
        })
    }
}

impl Source for StdinSource {
    fn pull(&mut self) -> Result<Pull> {
        if self.ended {
            return Ok(Pull::End);
        }
        loop {
            let line = match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => line.context("cannot read standard input")?,
                Err(RecvTimeoutError::Timeout) => return Ok(Pull::Wait(Duration::ZERO)),
                Err(RecvTimeoutError::Disconnected) => {
                    self.ended = true;
                    return Ok(Pull::End);
                }
            };
            self.line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            match self
                .header
                .parse_row(line.trim_end_matches('\r'), self.line_no, &mut self.values)
            {
                Ok(ts_us) => {
                    return Ok(Pull::Row {
                        ts_us,
                        values: self.values.clone(),
                        position: None,
                    });
                }
                Err(e) => bad_row(self.on_bad_row, &mut self.skipped, e, "stdin")?,
            }
        }
    }

    fn is_live(&self) -> bool {
        true
    }

    fn skipped(&self) -> u64 {
        self.skipped
    }

    fn origin(&self) -> Option<String> {
        Some(format!("stdin:line {}", self.line_no))
    }
}

/// The schema rows of `source` follow: the configured channels, else the source's own.
/// For stdin this reads the header line (returned for [`StdinSource::new`]).
pub fn schema_for(
    source: &SourceConfig,
    channels: Option<&[Channel]>,
    stdin_header: Option<&str>,
    on_bad_row: OnBadRow,
) -> Result<Arc<Schema>> {
    let channels = match (channels, source) {
        (Some(c), _) => c.to_vec(),
        (None, SourceConfig::Simulate { profile, .. }) => Simulator::schema_for(*profile).channels,
        (None, SourceConfig::Csv { path, .. }) => csv_channels(path, on_bad_row)?,
        (None, SourceConfig::Stdin) => {
            let header = stdin_header.unwrap_or_default();
            let names = sensorlake::csv::split_line(header)
                .map_err(|e| anyhow::anyhow!("stdin header: {e}"))?;
            names.iter().skip(1).map(|n| Channel::f32(n)).collect()
        }
    };
    if let SourceConfig::Simulate { profile, .. } = source {
        let own = Simulator::schema_for(*profile);
        if channels.len() != own.channels.len()
            || channels
                .iter()
                .zip(&own.channels)
                .any(|(a, b)| a.name != b.name || a.ty != b.ty)
        {
            bail!("[[channels]] must be left out (or match the profile) for the simulate source");
        }
    }
    Ok(Arc::new(
        Schema::new(channels).map_err(|e| anyhow::anyhow!("channels: {e}"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn csv_positions_resume_exactly_after_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut f = File::create(&path).unwrap();
        writeln!(f, "timestamp,a").unwrap();
        for i in 0..10 {
            writeln!(f, "{},{}", 1_709_280_000_000_000i64 + i, i).unwrap();
        }
        writeln!(f, "oops,1").unwrap();
        write!(f, "{},99", 1_709_280_000_000_100i64).unwrap(); // no final newline
        drop(f);
        let schema = Schema::new(csv_channels(&path, OnBadRow::Skip).unwrap()).unwrap();
        let rows = |resume| {
            let mut s = CsvSource::open(&path, &schema, None, resume, OnBadRow::Skip).unwrap();
            let mut out = Vec::new();
            while let Pull::Row {
                values, position, ..
            } = s.pull().unwrap()
            {
                out.push((values[0], position.unwrap()));
            }
            (out, s.skipped())
        };
        let (all, skipped) = rows(None);
        assert_eq!(all.len(), 11);
        assert_eq!(skipped, 1);
        let (rest, _) = rows(Some(all[3].1));
        assert_eq!(rest, all[4..]);
        let (none, _) = rows(Some(all[10].1));
        assert!(none.is_empty());
        let err = CsvSource::open(&path, &schema, None, Some(10_000), OnBadRow::Skip).unwrap_err();
        assert!(err.to_string().contains("was the file replaced"), "{err}");
    }

    fn all_rows(source: &mut CsvSource) -> Result<Vec<Vec<Value>>> {
        let mut out = Vec::new();
        while let Pull::Row { values, .. } = source.pull()? {
            out.push(values);
        }
        Ok(out)
    }

    #[test]
    fn the_whole_file_decides_the_types_and_a_row_that_does_not_fit_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut f = File::create(&path).unwrap();
        writeln!(f, "timestamp,a,b").unwrap();
        for i in 0..12_000i64 {
            let a = if i == 10_998 {
                "1.5".to_string()
            } else {
                (16_777_217 + i).to_string()
            };
            let b = if i == 11_498 {
                String::new()
            } else {
                i.to_string()
            };
            writeln!(f, "{},{a},{b}", 1_709_280_000_000_000 + i).unwrap();
        }
        drop(f);
        // Line 11,000 holds 1.5 and line 11,500 an empty cell: a is f64 (f32 would
        // round the integers), b is nullable.
        let channels = csv_channels(&path, OnBadRow::Stop).unwrap();
        assert_eq!(channels[0].ty, sensorlake::schema::ChannelType::F64);
        assert!(channels[1].nullable);
        let schema = Schema::new(channels).unwrap();
        let mut source = CsvSource::open(&path, &schema, None, None, OnBadRow::Stop).unwrap();
        let rows = all_rows(&mut source).unwrap();
        assert_eq!(rows.len(), 12_000);
        assert_eq!(rows[0][0], Value::F64(16_777_217.0));
        assert_eq!(rows[2][0], Value::F64(16_777_219.0));
        assert_eq!(rows[10_998][0], Value::F64(1.5));
        assert_eq!(rows[11_498][1], Value::Null);
        assert_eq!(source.skipped(), 0);

        // A line that cannot be stored stops at inference, naming file:line:column…
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(f, "1709280000012000,garbage,1").unwrap();
        drop(f);
        let err = csv_channels(&path, OnBadRow::Stop).unwrap_err().to_string();
        assert!(
            err.contains(&format!("{}:line 12002, column 2", path.display())),
            "{err}"
        );
        // … and, with the schema declared, when it is read.
        let mut source = CsvSource::open(&path, &schema, None, None, OnBadRow::Stop).unwrap();
        let err = all_rows(&mut source).unwrap_err().to_string();
        assert!(err.contains("line 12002, column 2"), "{err}");
        // Skipping is opt-in and counted; the skipped line took no part in inference.
        let channels = csv_channels(&path, OnBadRow::Skip).unwrap();
        assert_eq!(channels[0].ty, sensorlake::schema::ChannelType::F64);
        let mut source = CsvSource::open(&path, &schema, None, None, OnBadRow::Skip).unwrap();
        assert_eq!(all_rows(&mut source).unwrap().len(), 12_000);
        assert_eq!(source.skipped(), 1);
    }

    #[test]
    fn a_skipped_line_does_not_widen_a_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(
            &path,
            "timestamp,a\n1709280000000000,16777217\ngarbage,line\n1709280000000001,16777219\n",
        )
        .unwrap();
        let channels = csv_channels(&path, OnBadRow::Skip).unwrap();
        assert_eq!(channels[0].ty, sensorlake::schema::ChannelType::I32);
        let schema = Schema::new(channels).unwrap();
        let mut source = CsvSource::open(&path, &schema, None, None, OnBadRow::Skip).unwrap();
        assert_eq!(
            all_rows(&mut source).unwrap(),
            [[Value::Int(16_777_217)], [Value::Int(16_777_219)]]
        );
        assert_eq!(source.skipped(), 1);
    }
}
