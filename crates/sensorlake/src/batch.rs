//! Collects rows into batches: one batch becomes one Parquet file.
//!
//! A batch is complete at `max_rows`, when its oldest row is `max_age` old, at a
//! clock-aligned window boundary (when configured), and always at a UTC hour boundary,
//! so the partition values of its file (`dt`, `hour`) hold for every row in it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::schema::{ChannelType, Schema};

/// Microseconds in one hour.
pub const HOUR_US: i64 = 3_600_000_000;
/// The latest timestamp accepted: 9999-12-31T23:59:59.999999Z.
pub const MAX_TS_US: i64 = 253_402_300_799_999_999;
/// The accepted timestamp range, as written in messages.
pub const TS_RANGE: &str = "1970-01-01T00:00:00Z..=9999-12-31T23:59:59.999999Z";

/// One reading of one channel, as pushed by a sensor source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A missing reading (only for nullable channels).
    Null,
    /// A float reading (for `f32` channels).
    F32(f32),
    /// A double reading (for `f64` channels).
    F64(f64),
    /// An integer reading (for `i16`, `i32`, `i64` channels).
    Int(i64),
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Self::F32(v)
    }
}

impl From<Option<f32>> for Value {
    fn from(v: Option<f32>) -> Self {
        v.map_or(Self::Null, Self::F32)
    }
}

impl From<i16> for Value {
    fn from(v: i16) -> Self {
        Self::Int(v.into())
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Self::Int(v.into())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

/// The non-null values of one column, densely packed in their storage type.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    /// Values of an `f32` channel.
    F32(Vec<f32>),
    /// Values of an `f64` channel.
    F64(Vec<f64>),
    /// Values of an `i16` or `i32` channel.
    I32(Vec<i32>),
    /// Values of an `i64` channel.
    I64(Vec<i64>),
}

impl ColumnValues {
    fn with_capacity(ty: ChannelType, capacity: usize) -> Self {
        match ty {
            ChannelType::F32 => Self::F32(Vec::with_capacity(capacity)),
            ChannelType::F64 => Self::F64(Vec::with_capacity(capacity)),
            ChannelType::I16 | ChannelType::I32 => Self::I32(Vec::with_capacity(capacity)),
            ChannelType::I64 => Self::I64(Vec::with_capacity(capacity)),
        }
    }

    fn push(&mut self, value: Value) {
        match (self, value) {
            (Self::F32(v), Value::F32(x)) => v.push(x),
            (Self::F64(v), Value::F64(x)) => v.push(x),
            (Self::I32(v), Value::Int(x)) => v.push(x as i32),
            (Self::I64(v), Value::Int(x)) => v.push(x),
            // Values are checked against the schema before they are pushed.
            _ => unreachable!("value type checked before push"),
        }
    }

    fn get(&self, index: usize) -> Value {
        match self {
            Self::F32(v) => Value::F32(v[index]),
            Self::F64(v) => Value::F64(v[index]),
            Self::I32(v) => Value::Int(v[index].into()),
            Self::I64(v) => Value::Int(v[index]),
        }
    }

    /// Number of non-null values.
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::I64(v) => v.len(),
        }
    }

    /// Whether there are no non-null values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One channel's data in a batch: dense values plus Parquet definition levels
/// (1 = present, 0 = null) for nullable channels.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnData {
    /// The non-null values.
    pub values: ColumnValues,
    /// One level per row for nullable channels, `None` for required ones.
    pub def_levels: Option<Vec<i16>>,
}

/// Why a batch was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// It reached `max_rows`.
    Full,
    /// Its oldest row reached `max_age`.
    Age,
    /// Its clock-aligned window ended.
    Window,
    /// The next row fell into another UTC hour.
    Hour,
    /// The next row's window lies before this batch's (the clock stepped back).
    ClockBack,
    /// It was flushed early (shutdown, restart).
    Flush,
}

/// A closed set of rows that becomes one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    schema: Arc<Schema>,
    ts: Vec<i64>,
    columns: Vec<ColumnData>,
    window: Option<(i64, i64)>,
    clean_start: bool,
    cut: Option<Cut>,
    time_estimated: bool,
}

impl Batch {
    /// An empty batch for `schema`, with room for `capacity` rows.
    pub fn new(schema: Arc<Schema>, capacity: usize) -> Self {
        let columns = schema
            .channels
            .iter()
            .map(|c| ColumnData {
                values: ColumnValues::with_capacity(c.ty, capacity),
                def_levels: c.nullable.then(|| Vec::with_capacity(capacity)),
            })
            .collect();
        Self {
            schema,
            ts: Vec::with_capacity(capacity),
            columns,
            window: None,
            clean_start: false,
            cut: None,
            time_estimated: false,
        }
    }

    /// Appends a row that [`check_row`] accepted (values already normalised).
    fn push_checked(&mut self, ts_us: i64, values: &[Value]) {
        self.ts.push(ts_us);
        for (column, &value) in self.columns.iter_mut().zip(values) {
            match (&mut column.def_levels, value) {
                (Some(levels), Value::Null) => levels.push(0),
                (Some(levels), v) => {
                    levels.push(1);
                    column.values.push(v);
                }
                (None, v) => column.values.push(v),
            }
        }
    }

    /// Builds a batch from rows (every row checked like [`Batcher::push`]); for tools and tests.
    pub fn from_rows<'a>(
        schema: Arc<Schema>,
        rows: impl IntoIterator<Item = (i64, &'a [Value])>,
    ) -> Result<Self, BatchError> {
        let mut batch = Batch::new(schema, 0);
        let mut normalised = Vec::new();
        for (ts, values) in rows {
            let ts = check_row(&batch.schema, ts, values, &mut normalised)?;
            batch.push_checked(ts, &normalised);
        }
        Ok(batch)
    }

    /// The schema of every row.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Row timestamps, microseconds since the Unix epoch (UTC).
    pub fn timestamps(&self) -> &[i64] {
        &self.ts
    }

    /// The columns, in channel order.
    pub fn columns(&self) -> &[ColumnData] {
        &self.columns
    }

    /// Timestamp of the first row pushed.
    pub fn first_ts_us(&self) -> Option<i64> {
        self.ts.first().copied()
    }

    /// The value of channel `channel` in row `row`.
    pub fn value(&self, row: usize, channel: usize) -> Value {
        let column = &self.columns[channel];
        match &column.def_levels {
            None => column.values.get(row),
            Some(levels) => {
                if levels[row] == 0 {
                    Value::Null
                } else {
                    let dense = levels[..row].iter().filter(|&&l| l != 0).count();
                    column.values.get(dense)
                }
            }
        }
    }

    /// Calls `f` with each row's timestamp and values, in order.
    pub fn for_each_row(&self, mut f: impl FnMut(i64, &[Value])) {
        let mut cursors = vec![0usize; self.columns.len()];
        let mut row_values = vec![Value::Null; self.columns.len()];
        for (row, &ts) in self.ts.iter().enumerate() {
            for (i, column) in self.columns.iter().enumerate() {
                let present = column.def_levels.as_ref().is_none_or(|l| l[row] != 0);
                row_values[i] = if present {
                    cursors[i] += 1;
                    column.values.get(cursors[i] - 1)
                } else {
                    Value::Null
                };
            }
            f(ts, &row_values);
        }
    }

    /// The clock-aligned window `[start, end)` in microseconds, when batching by window.
    pub fn window(&self) -> Option<(i64, i64)> {
        self.window
    }

    /// Whether this batch holds its whole window: it began when the previous window
    /// closed in this process and it was closed by its own window's end. Only such a
    /// batch may take a name that is unique per window.
    pub fn is_whole_window(&self) -> bool {
        self.clean_start && self.cut == Some(Cut::Window)
    }

    /// Why the batch was closed (`None` while it is open).
    pub fn cut(&self) -> Option<Cut> {
        self.cut
    }

    /// Whether the timestamps were estimated (rows taken before the clock was valid).
    pub fn time_estimated(&self) -> bool {
        self.time_estimated
    }

    /// Marks the timestamps as estimated.
    pub fn set_time_estimated(&mut self, estimated: bool) {
        self.time_estimated = estimated;
    }
}

/// How rows are grouped into batches.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchConfig {
    /// A batch is complete at this many rows (default 178).
    pub max_rows: usize,
    /// A batch is complete when its oldest row is this old (default 15 min); `None` = no limit.
    pub max_age: Option<Duration>,
    /// If set, batches are cut at clock-aligned boundaries of this length (e.g. every
    /// 15 min at :00/:15/:30/:45). Must divide one hour.
    pub window: Option<Duration>,
    /// Closed batches that may wait for the spool before `push` refuses rows (default 4).
    pub max_pending: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_rows: 178,
            max_age: Some(Duration::from_secs(15 * 60)),
            window: None,
            max_pending: 4,
        }
    }
}

impl BatchConfig {
    /// Checks the limits: `max_rows` ≥ 1, `max_age` ≥ 1 ms, a window that divides one hour.
    pub fn validate(&self) -> Result<(), BatchError> {
        if self.max_rows == 0 {
            return Err(BatchError::Config("max_rows must be at least 1".into()));
        }
        if self.max_pending == 0 {
            return Err(BatchError::Config("max_pending must be at least 1".into()));
        }
        if let Some(age) = self.max_age
            && age < Duration::from_millis(1)
        {
            return Err(BatchError::Config("max_age must be at least 1 ms".into()));
        }
        if let Some(age) = self.max_age
            && age.as_micros() > i64::MAX as u128
        {
            // Ages are compared in µs as i64: a longer one would wrap.
            return Err(BatchError::Config(format!(
                "max_age {age:?} is too long (at most {:?})",
                Duration::from_micros(i64::MAX as u64)
            )));
        }
        if let Some(window) = self.window {
            let us = window.as_micros();
            if us == 0 || !(HOUR_US as u128).is_multiple_of(us) {
                return Err(BatchError::Config(format!(
                    "window {window:?} must divide one hour (e.g. 5 min, 15 min, 1 h)"
                )));
            }
        }
        Ok(())
    }
}

/// A row that was refused; the open batch is unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchError {
    /// The row has the wrong number of values.
    WrongArity {
        /// Channels in the schema.
        expected: usize,
        /// Values in the row.
        got: usize,
    },
    /// A non-finite value in a channel that is not nullable.
    NonFinite {
        /// The channel.
        channel: String,
        /// The value.
        value: f64,
    },
    /// A null in a channel that is not nullable.
    Missing {
        /// The channel.
        channel: String,
    },
    /// A float for an integer channel or an integer for a float channel.
    TypeMismatch {
        /// The channel.
        channel: String,
        /// Its declared type.
        expected: ChannelType,
    },
    /// An integer outside its channel type's range.
    OutOfRange {
        /// The channel.
        channel: String,
        /// The value.
        value: i64,
        /// Its declared type.
        ty: ChannelType,
    },
    /// A timestamp outside 1970-01-01T00:00:00Z..=9999-12-31T23:59:59.999999Z.
    BadTimestamp(i64),
    /// Closed batches are waiting for the spool; the caller keeps its row and retries.
    Backpressure {
        /// Batches waiting.
        pending: usize,
    },
    /// An invalid batch configuration.
    Config(String),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongArity { expected, got } => {
                write!(
                    f,
                    "row has {got} values, the schema has {expected} channels"
                )
            }
            Self::NonFinite { channel, value } => write!(
                f,
                "channel {channel:?}: non-finite value {value} in a channel that is not nullable"
            ),
            Self::Missing { channel } => {
                write!(
                    f,
                    "channel {channel:?}: missing value in a channel that is not nullable"
                )
            }
            Self::TypeMismatch { channel, expected } => {
                write!(
                    f,
                    "channel {channel:?}: expected a value of type {}",
                    expected.name()
                )
            }
            Self::OutOfRange { channel, value, ty } => {
                write!(
                    f,
                    "channel {channel:?}: {value} does not fit in {}",
                    ty.name()
                )
            }
            Self::BadTimestamp(ts) => write!(
                f,
                "timestamp {ts} µs is outside {TS_RANGE} (0..={MAX_TS_US} µs since the Unix epoch)"
            ),
            Self::Backpressure { pending } => write!(
                f,
                "{pending} closed batches are waiting to be spooled; row not accepted"
            ),
            Self::Config(msg) => write!(f, "invalid batch configuration: {msg}"),
        }
    }
}

impl std::error::Error for BatchError {}

/// Checks a row against `schema`, writing its normalised values (non-finite floats in
/// nullable channels become null) to `out`; returns the timestamp truncated to the
/// schema's resolution.
pub fn check_row(
    schema: &Schema,
    ts_us: i64,
    values: &[Value],
    out: &mut Vec<Value>,
) -> Result<i64, BatchError> {
    if !(0..=MAX_TS_US).contains(&ts_us) {
        return Err(BatchError::BadTimestamp(ts_us));
    }
    if values.len() != schema.channels.len() {
        return Err(BatchError::WrongArity {
            expected: schema.channels.len(),
            got: values.len(),
        });
    }
    out.clear();
    for (channel, &value) in schema.channels.iter().zip(values) {
        let normalised = match (channel.ty, value) {
            (_, Value::Null) if channel.nullable => Value::Null,
            (_, Value::Null) => {
                return Err(BatchError::Missing {
                    channel: channel.name.clone(),
                });
            }
            (ChannelType::F32, Value::F32(v)) if v.is_finite() => value,
            (ChannelType::F32, Value::F32(_)) if channel.nullable => Value::Null,
            (ChannelType::F32, Value::F32(v)) => {
                return Err(BatchError::NonFinite {
                    channel: channel.name.clone(),
                    value: v.into(),
                });
            }
            (ChannelType::F64, Value::F64(v)) if v.is_finite() => value,
            (ChannelType::F64, Value::F64(_)) if channel.nullable => Value::Null,
            (ChannelType::F64, Value::F64(v)) => {
                return Err(BatchError::NonFinite {
                    channel: channel.name.clone(),
                    value: v,
                });
            }
            (ty, Value::Int(v)) if ty.is_integer() => {
                let (lo, hi) = ty.int_range();
                if !(lo..=hi).contains(&v) {
                    return Err(BatchError::OutOfRange {
                        channel: channel.name.clone(),
                        value: v,
                        ty,
                    });
                }
                value
            }
            (ty, _) => {
                return Err(BatchError::TypeMismatch {
                    channel: channel.name.clone(),
                    expected: ty,
                });
            }
        };
        out.push(normalised);
    }
    let unit = schema.ts_unit.micros();
    Ok(ts_us - ts_us.rem_euclid(unit))
}

/// Groups pushed rows into batches and holds closed batches until they are taken.
#[derive(Debug)]
pub struct Batcher {
    schema: Arc<Schema>,
    config: BatchConfig,
    open: Batch,
    ready: VecDeque<Batch>,
    /// The window the last batch was closed at, if it was closed by its window's end.
    last_window_close: Option<i64>,
    scratch: Vec<Value>,
}

impl Batcher {
    /// A batcher for `schema`; fails on an invalid configuration.
    pub fn new(schema: Arc<Schema>, config: BatchConfig) -> Result<Self, BatchError> {
        config.validate()?;
        Ok(Self {
            open: Batch::new(schema.clone(), config.max_rows.min(4096)),
            schema,
            config,
            ready: VecDeque::new(),
            last_window_close: None,
            scratch: Vec::new(),
        })
    }

    /// The schema rows must follow.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The configuration.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    fn window_of(&self, ts_us: i64) -> Option<(i64, i64)> {
        self.config.window.map(|w| {
            let len = w.as_micros() as i64;
            let start = ts_us - ts_us.rem_euclid(len);
            (start, start + len)
        })
    }

    /// Why the open batch must be closed before a row at `ts_us` joins it.
    fn cut_before(&self, ts_us: i64) -> Option<Cut> {
        let first = self.open.first_ts_us()?;
        if let (Some((start, _)), Some((open_start, _))) = (self.window_of(ts_us), self.open.window)
        {
            if start > open_start {
                return Some(Cut::Window);
            }
            if start < open_start {
                return Some(Cut::ClockBack);
            }
        }
        if ts_us.div_euclid(HOUR_US) != first.div_euclid(HOUR_US) {
            return Some(Cut::Hour);
        }
        match self.config.max_age {
            Some(age) if ts_us.saturating_sub(first) >= age.as_micros() as i64 => Some(Cut::Age),
            _ => None,
        }
    }

    fn close(&mut self, cut: Cut) {
        if self.open.is_empty() {
            return;
        }
        let capacity = self.config.max_rows.min(4096);
        let mut batch =
            std::mem::replace(&mut self.open, Batch::new(self.schema.clone(), capacity));
        batch.cut = Some(cut);
        self.last_window_close = match cut {
            Cut::Window => batch.window.map(|(start, _)| start),
            _ => None,
        };
        self.ready.push_back(batch);
    }

    /// Adds one row. On error (bad value, backpressure) nothing changes.
    ///
    /// Non-finite floats in nullable channels are stored as null; the timestamp is
    /// truncated to the schema's resolution. Closed batches wait in [`Batcher::pop_ready`].
    pub fn push(&mut self, ts_us: i64, values: &[Value]) -> Result<(), BatchError> {
        let mut normalised = std::mem::take(&mut self.scratch);
        let checked = check_row(&self.schema, ts_us, values, &mut normalised);
        let result = checked.and_then(|ts| self.push_normalised(ts, &normalised));
        self.scratch = normalised;
        result
    }

    fn push_normalised(&mut self, ts_us: i64, values: &[Value]) -> Result<(), BatchError> {
        let cut = self.cut_before(ts_us);
        let pending = self.ready.len() + usize::from(cut.is_some());
        if pending > self.config.max_pending
            || (pending == self.config.max_pending && self.open.len() + 1 >= self.config.max_rows)
        {
            return Err(BatchError::Backpressure {
                pending: self.ready.len(),
            });
        }
        if let Some(cut) = cut {
            self.close(cut);
        }
        if self.open.is_empty() {
            let window = self.window_of(ts_us);
            self.open.window = window;
            self.open.clean_start = matches!(
                (self.last_window_close, window),
                (Some(closed), Some((start, _))) if start > closed
            );
        }
        self.open.push_checked(ts_us, values);
        if self.open.len() >= self.config.max_rows {
            self.close(Cut::Full);
        }
        Ok(())
    }

    /// Closes the open batch if, at time `now_us`, its window has ended or its oldest
    /// row reached `max_age`. Call it periodically when rows may stop arriving.
    pub fn poll(&mut self, now_us: i64) {
        let Some(first) = self.open.first_ts_us() else {
            return;
        };
        if let Some((_, end)) = self.open.window
            && now_us >= end
        {
            self.close(Cut::Window);
        } else if let Some(age) = self.config.max_age
            && now_us.saturating_sub(first) >= age.as_micros() as i64
        {
            self.close(Cut::Age);
        }
    }

    /// Closes the open batch now (shutdown). The next batch does not count as a whole window.
    pub fn flush(&mut self) {
        self.close(Cut::Flush);
        self.last_window_close = None;
    }

    /// Rows in the open batch.
    pub fn open_rows(&self) -> usize {
        self.open.len()
    }

    /// The open batch (rows not yet closed into a file).
    pub fn open_batch(&self) -> &Batch {
        &self.open
    }

    /// The oldest closed batch, without taking it.
    pub fn peek_ready(&self) -> Option<&Batch> {
        self.ready.front()
    }

    /// Takes the oldest closed batch. Take it only once it is safely stored.
    pub fn pop_ready(&mut self) -> Option<Batch> {
        self.ready.pop_front()
    }

    /// Closed batches waiting to be taken.
    pub fn pending(&self) -> usize {
        self.ready.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Channel;

    const T0: i64 = 1_709_280_000_000_000; // 2024-03-01T08:00:00Z

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![Channel::f32("a"), Channel::f32("b").nullable()]).unwrap())
    }

    fn batcher(config: BatchConfig) -> Batcher {
        Batcher::new(schema(), config).unwrap()
    }

    fn drain(b: &mut Batcher) -> Vec<Batch> {
        std::iter::from_fn(|| b.pop_ready()).collect()
    }

    #[test]
    fn full_batch_closes_at_max_rows() {
        let mut b = batcher(BatchConfig {
            max_rows: 3,
            ..Default::default()
        });
        for i in 0..7 {
            b.push(T0 + i * 1_000_000, &[Value::F32(i as f32), Value::Null])
                .unwrap();
        }
        let batches = drain(&mut b);
        assert_eq!(batches.iter().map(Batch::len).collect::<Vec<_>>(), [3, 3]);
        assert!(batches.iter().all(|x| x.cut() == Some(Cut::Full)));
        assert_eq!(b.open_rows(), 1);
        b.flush();
        assert_eq!(b.pop_ready().unwrap().cut(), Some(Cut::Flush));
    }

    #[test]
    fn batch_never_spans_an_hour() {
        let mut b = batcher(BatchConfig::default());
        let before = T0 + HOUR_US - 2_000_000;
        b.push(before, &[1.0.into(), Value::Null]).unwrap();
        b.push(before + 1_000_000, &[2.0.into(), Value::Null])
            .unwrap();
        b.push(T0 + HOUR_US, &[3.0.into(), Value::Null]).unwrap();
        let batches = drain(&mut b);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].len(), 2);
        assert_eq!(batches[0].cut(), Some(Cut::Hour));
        assert_eq!(b.open_batch().first_ts_us(), Some(T0 + HOUR_US));
    }

    #[test]
    fn age_cuts_by_row_time_and_by_poll() {
        let mut b = batcher(BatchConfig {
            max_age: Some(Duration::from_secs(10)),
            ..Default::default()
        });
        b.push(T0, &[1.0.into(), Value::Null]).unwrap();
        b.push(T0 + 9_999_999, &[2.0.into(), Value::Null]).unwrap();
        b.push(T0 + 10_000_000, &[3.0.into(), Value::Null]).unwrap();
        assert_eq!(b.pop_ready().unwrap().len(), 2);
        b.poll(T0 + 19_999_999);
        assert!(b.pop_ready().is_none());
        b.poll(T0 + 20_000_000);
        assert_eq!(b.pop_ready().unwrap().cut(), Some(Cut::Age));
    }

    #[test]
    fn windows_are_clock_aligned_and_whole_only_after_a_window_close() {
        let window = Duration::from_secs(15 * 60);
        let mut b = batcher(BatchConfig {
            max_rows: 10_000,
            max_age: None,
            window: Some(window),
            ..Default::default()
        });
        let w = window.as_micros() as i64;
        // Start mid-window (as after a restart): that batch is not whole.
        for i in 0..3 {
            b.push(T0 + 7 * 60_000_000 + i, &[1.0.into(), Value::Null])
                .unwrap();
        }
        for i in 0..3 {
            b.push(T0 + w + i * 5_000_000, &[2.0.into(), Value::Null])
                .unwrap();
        }
        b.poll(T0 + 2 * w);
        let batches = drain(&mut b);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].window(), Some((T0, T0 + w)));
        assert!(!batches[0].is_whole_window());
        assert_eq!(batches[1].window(), Some((T0 + w, T0 + 2 * w)));
        assert!(batches[1].is_whole_window());
        // The clock steps back into an earlier window: never a whole-window name.
        b.push(T0 + 3 * w, &[3.0.into(), Value::Null]).unwrap();
        b.push(T0 + 10, &[4.0.into(), Value::Null]).unwrap();
        b.flush();
        let batches = drain(&mut b);
        assert_eq!(batches[0].cut(), Some(Cut::ClockBack));
        assert!(batches.iter().all(|x| !x.is_whole_window()));
    }

    #[test]
    fn bad_values_leave_the_batch_unchanged() {
        let mut b = batcher(BatchConfig::default());
        b.push(T0, &[1.0.into(), 2.0.into()]).unwrap();
        let before = b.open_batch().clone();
        assert!(matches!(
            b.push(T0 + 1, &[f32::NAN.into(), Value::Null]),
            Err(BatchError::NonFinite { ref channel, value }) if channel == "a" && value.is_nan()
        ));
        assert!(matches!(
            b.push(T0 + 1, &[f32::INFINITY.into(), Value::Null]),
            Err(BatchError::NonFinite { .. })
        ));
        assert_eq!(
            b.push(T0 + 1, &[Value::Null, Value::Null]),
            Err(BatchError::Missing {
                channel: "a".into()
            })
        );
        assert_eq!(
            b.push(T0 + 1, &[1.0.into()]),
            Err(BatchError::WrongArity {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            b.push(T0 + 1, &[Value::Int(1), Value::Null]),
            Err(BatchError::TypeMismatch {
                channel: "a".into(),
                expected: ChannelType::F32
            })
        );
        assert_eq!(
            b.push(-1, &[1.0.into(), Value::Null]),
            Err(BatchError::BadTimestamp(-1))
        );
        assert_eq!(b.open_batch(), &before);
        // A non-finite value in a nullable channel is a failed read: stored as null.
        b.push(T0 + 2, &[1.0.into(), f32::NAN.into()]).unwrap();
        assert_eq!(b.open_batch().value(1, 1), Value::Null);
    }

    #[test]
    fn backpressure_refuses_rows_without_losing_any() {
        let mut b = batcher(BatchConfig {
            max_rows: 1,
            max_pending: 2,
            ..Default::default()
        });
        b.push(T0, &[1.0.into(), Value::Null]).unwrap();
        b.push(T0 + 1, &[2.0.into(), Value::Null]).unwrap();
        assert_eq!(
            b.push(T0 + 2, &[3.0.into(), Value::Null]),
            Err(BatchError::Backpressure { pending: 2 })
        );
        assert_eq!(b.pop_ready().unwrap().value(0, 0), Value::F32(1.0));
        b.push(T0 + 2, &[3.0.into(), Value::Null]).unwrap();
        assert_eq!(b.pending(), 2);
    }

    #[test]
    fn rows_read_back_in_order_with_nulls() {
        let s = schema();
        let rows: Vec<(i64, Vec<Value>)> = vec![
            (T0, vec![1.0.into(), Value::Null]),
            (T0 + 1, vec![2.0.into(), 5.0.into()]),
            (T0 + 2, vec![3.0.into(), Value::Null]),
        ];
        let batch = Batch::from_rows(s, rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap();
        let mut seen = Vec::new();
        batch.for_each_row(|ts, values| seen.push((ts, values.to_vec())));
        assert_eq!(seen, rows);
        assert_eq!(batch.value(1, 1), Value::F32(5.0));
    }
}
