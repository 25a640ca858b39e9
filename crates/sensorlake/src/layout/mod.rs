//! Key layouts: one [`KeyLayout`] per file in this directory, registered in [`BUILT_IN`].
//!
//! A layout owns everything that depends on it: how a batch's object key is rendered
//! and read back, how rows are batched by default, the column conventions of its files
//! ([`SchemaPreset`]) and the partition columns query engines see ([`Partition`]).
//! Code outside this module asks the layout; it never tests which layout it has.
//!
//! Adding a layout is one new file here (a type implementing [`KeyLayout`]) and one
//! line in the [`layouts!`] list below.
//!
//! This module uses only `core` and `alloc` (and no `jiff`), so a future `no_std` core
//! can own it; `tests/layouts.rs` keeps it that way.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::batch::BatchConfig;
use crate::civil::{self, DAY_US};
use crate::key::{DeviceId, KeyRefusal, ParsedKey};
use crate::schema::TimeUnit;

/// One hour in µs.
pub const HOUR_US: i64 = 3_600_000_000;

/// What a layout may use of a batch to name it (computed once by
/// [`crate::key::KeyTemplate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFacts<'a> {
    /// The first row's timestamp, µs since the epoch (in the accepted range).
    pub first_us: i64,
    /// The latest row's timestamp.
    pub last_us: i64,
    /// The end of the batch's clock-aligned window, when batches are cut by windows.
    pub window_end_us: Option<i64>,
    /// Whether the batch holds its whole window (see [`crate::batch::Batch::is_whole_window`]).
    pub whole_window: bool,
    /// The rows' hash: 8 lowercase hex digits (see [`crate::key::hash8`]).
    pub hash8: &'a str,
}

/// Column conventions a layout's files follow, applied to any schema (e.g. one inferred
/// from a CSV file). `None` keeps the schema's own choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaPreset {
    /// Name of the timestamp column.
    pub ts_column: Option<&'static str>,
    /// Resolution of the timestamp column.
    pub ts_unit: Option<TimeUnit>,
    /// Name of a string column holding the device id.
    pub device_column: Option<&'static str>,
}

impl SchemaPreset {
    /// Keeps every schema as it is.
    pub const NONE: Self = Self {
        ts_column: None,
        ts_unit: None,
        device_column: None,
    };
}

/// A partition column of a layout's keys (`name=value` segments), for table definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// The column (and key segment) name.
    pub name: &'static str,
    /// What its values are.
    pub kind: PartitionKind,
}

/// The values of a [`Partition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKind {
    /// The device id (a string).
    Device,
    /// A `YYYY-MM-DD` date.
    Date,
    /// A year, `YYYY`.
    Year,
    /// An integer from `min` to `max`, zero-padded to `digits` digits.
    Integer {
        /// Smallest value.
        min: u32,
        /// Largest value.
        max: u32,
        /// Digits it is padded to.
        digits: u8,
    },
}

/// One key layout: rendering, parsing, batch defaults, schema preset and partitions.
pub trait KeyLayout: Sync {
    /// The name configurations and the CLI use (`--layout NAME`).
    fn name(&self) -> &'static str;

    /// Other names [`Layout::parse`] accepts for it.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// The key's partition columns, in key order; exactly one is the device's.
    fn partitions(&self) -> &'static [Partition];

    /// Appends the key of a batch of `device` with `facts` (what follows the prefix).
    fn render(&self, key: &mut String, device: &DeviceId, facts: &KeyFacts<'_>);

    /// Reads back the `/`-separated `segments` after the prefix: exactly the form
    /// [`KeyLayout::render`] writes, anything else refused saying which part is wrong.
    fn parse(&self, segments: &[&str]) -> Result<ParsedKey, KeyRefusal>;

    /// What the layout checks of rows read back from a file under `parsed` beyond the
    /// device, the hash and the first row's time (which every layout's keys carry).
    fn check_rows(&self, parsed: &ParsedKey, facts: &KeyFacts<'_>) -> Result<(), String> {
        let _ = (parsed, facts);
        Ok(())
    }

    /// How rows are batched unless configured otherwise.
    fn batch_defaults(&self) -> BatchConfig;

    /// The column conventions of its files.
    fn schema_preset(&self) -> SchemaPreset {
        SchemaPreset::NONE
    }
}

/// A key layout: a handle on a registered [`KeyLayout`]. Equal when the names are.
#[derive(Clone, Copy)]
pub struct Layout(&'static dyn KeyLayout);

impl Layout {
    /// The handle of `layout`.
    pub const fn new(layout: &'static dyn KeyLayout) -> Self {
        Self(layout)
    }

    /// Parses a layout name or alias of [`BUILT_IN`].
    pub fn parse(text: &str) -> Result<Self, crate::key::KeyError> {
        BUILT_IN.parse(text)
    }

    /// The name [`Layout::parse`] accepts.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The name of the partition that holds the device id.
    pub fn device_partition(self) -> &'static str {
        self.0
            .partitions()
            .iter()
            .find(|p| p.kind == PartitionKind::Device)
            .map_or("device", |p| p.name)
    }
}

impl core::ops::Deref for Layout {
    type Target = dyn KeyLayout;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for Layout {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Layout {}

impl fmt::Debug for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Layout").field(&self.name()).finish()
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Default for Layout {
    /// The first registered layout (Hive).
    fn default() -> Self {
        BUILT_IN.all()[0]
    }
}

impl core::str::FromStr for Layout {
    type Err = crate::key::KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// A set of layouts, looked up by name.
#[derive(Debug, Clone, Copy)]
pub struct Layouts(&'static [Layout]);

impl Layouts {
    /// A registry of `layouts` (distinct names).
    pub const fn new(layouts: &'static [Layout]) -> Self {
        Self(layouts)
    }

    /// Every layout, the default first.
    pub fn all(self) -> &'static [Layout] {
        self.0
    }

    /// The layout named (or aliased) `name`.
    pub fn by_name(self, name: &str) -> Option<Layout> {
        self.0
            .iter()
            .copied()
            .find(|l| l.name() == name || l.aliases().contains(&name))
    }

    /// [`Layouts::by_name`], or the error naming the choices.
    pub fn parse(self, name: &str) -> Result<Layout, crate::key::KeyError> {
        self.by_name(name)
            .ok_or_else(|| crate::key::KeyError::BadLayout(name.into()))
    }

    /// The names, as a sentence: `hive or opensensor`.
    pub fn names(self) -> String {
        let names: Vec<&str> = self.0.iter().map(|l| l.name()).collect();
        crate::options::one_of(&names)
    }
}

/// Declares each layout's module and registers it in [`BUILT_IN`], one line per layout.
macro_rules! layouts {
    ($($module:ident :: $layout:ident),+ $(,)?) => {
        $(pub mod $module;)+
        /// The layouts the library writes and reads, the default first.
        pub static BUILT_IN: Layouts = Layouts::new(&[$(Layout::new(&$module::$layout)),+]);
    };
}

layouts! {
    hive::Hive,
    opensensor::OpenSensor,
}

// Helpers for parsing keys, shared by the layouts.

/// `text` as a number of exactly `digits` ASCII digits.
pub fn fixed_digits(text: &str, digits: usize) -> Option<i64> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Start of a UTC day in µs, if the date exists.
pub fn day_start_us(year: i64, month: i64, day: i64) -> Option<i64> {
    let month = u8::try_from(month).ok().filter(|m| (1..=12).contains(m))?;
    let day = u8::try_from(day)
        .ok()
        .filter(|&d| d >= 1 && d <= civil::days_in_month(year, month))?;
    Some(civil::days_from_civil(year, month, day) * DAY_US)
}

/// The value of a `name=value` segment.
pub fn partition<'a>(segment: &'a str, name: &str) -> Result<&'a str, KeyRefusal> {
    segment
        .strip_prefix(name)
        .and_then(|s| s.strip_prefix('='))
        .ok_or_else(|| KeyRefusal::Malformed(format!("expected {name}=…, found {segment:?}")))
}

/// The device id of a `name=id` segment.
pub fn partition_device(segment: &str, name: &str) -> Result<DeviceId, KeyRefusal> {
    let id = partition(segment, name)?;
    DeviceId::new(id).map_err(|e| KeyRefusal::Malformed(format!("{e}")))
}

/// Whether `text` is a rows' hash: 8 lowercase hex digits.
pub fn is_hash8(text: &str) -> bool {
    text.len() == 8
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `us` as RFC 3339, or as µs when outside the accepted range.
pub fn rfc3339(us: i64) -> String {
    if civil::in_range(us) {
        civil::format_rfc3339(us)
    } else {
        format!("{us} µs")
    }
}
