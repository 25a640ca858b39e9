//! Rows from CSV text: a header `timestamp,<channel>,...`, then one row per line.
//!
//! Timestamps are RFC 3339 (`2024-03-01T08:00:00.1Z`, any offset up to ±23:59) or
//! integer microseconds since the Unix epoch, both within [`crate::batch::TS_RANGE`]. An empty cell
//! is a missing reading. A value is stored exactly or refused: errors name the line
//! (1-based, the header is line 1) and the column.

use std::fmt;

use crate::batch::Value;
use crate::civil;
use crate::schema::{Channel, ChannelType, SHOWN_CHARS, Schema, shown};

/// Names accepted for the first (timestamp) column.
pub const TIMESTAMP_HEADERS: [&str; 2] = ["timestamp", "ts"];

/// A CSV input that cannot be read, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// The input's name (a file path), if known.
    pub source: Option<String>,
    /// 1-based line number (the header is line 1).
    pub line: usize,
    /// 1-based column number, if the error is about one cell.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl CsvError {
    fn at(line: usize, column: Option<usize>, message: String) -> Self {
        Self {
            source: None,
            line,
            column,
            message,
        }
    }

    /// This error, naming its input.
    pub fn in_source(mut self, source: &str) -> Self {
        self.source = Some(source.to_string());
        self
    }
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.source {
            write!(f, "{source}:")?;
        }
        write!(f, "line {}", self.line)?;
        if let Some(column) = self.column {
            write!(f, ", column {column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for CsvError {}

/// Splits one CSV line into trimmed cells (double quotes with `""` escapes allowed;
/// whitespace around a quoted cell is trimmed like around an unquoted one).
pub fn split_line(line: &str) -> Result<Vec<String>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.trim().is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
                cell.clear();
            }
            (false, ',') => {
                cells.push(if was_quoted {
                    std::mem::take(&mut cell)
                } else {
                    cell.trim().to_string()
                });
                cell.clear();
                was_quoted = false;
            }
            (false, c) if was_quoted && c.is_whitespace() => {}
            (false, c) if was_quoted => {
                return Err(format!("unexpected {c:?} after a closing quote"));
            }
            (false, c) => cell.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted cell".to_string());
    }
    cells.push(if was_quoted {
        cell
    } else {
        cell.trim().to_string()
    });
    Ok(cells)
}

/// `text` cut after [`SHOWN_CHARS`] characters (with `…`), unquoted.
fn cut(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// Parses a timestamp: integer microseconds since the Unix epoch or RFC 3339 (see
/// [`civil::parse_rfc3339`]). Both forms accept exactly [`crate::batch::TS_RANGE`].
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i64>() {
            Ok(us) if civil::in_range(us) => Ok(us),
            _ => Err(civil::out_of_range(&format!("{} µs", cut(text)))),
        };
    }
    civil::parse_rfc3339(text)
}

/// A cell's number as an exact decimal, borrowed from its text: (-1)^neg × digits ×
/// 10^exp, where the digits are those of `int` then `frac` without the `lead` leading
/// and the trailing zeros (`len` of them remain; none for zero).
#[derive(Debug, Clone, Copy)]
struct Decimal<'a> {
    neg: bool,
    int: &'a [u8],
    frac: &'a [u8],
    lead: usize,
    len: usize,
    exp: i64,
    /// Written as an integer (no `.`, no exponent).
    integer: bool,
}

impl<'a> Decimal<'a> {
    /// Parses `[+-]? (d+ [. d*] | . d+) ([eE] [+-]? d+)?`.
    fn parse(text: &'a str) -> Option<Self> {
        let b = text.as_bytes();
        let (neg, mut i) = match b.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        let int_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let int = &b[int_start..i];
        let mut frac: &[u8] = &[];
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            integer = false;
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            frac = &b[start..i];
        }
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let mut exp: i64 = 0;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            integer = false;
            i += 1;
            let exp_neg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while let Some(&d) = b.get(i).filter(|d| d.is_ascii_digit()) {
                // Saturates far beyond any float's range.
                exp = (exp * 10 + i64::from(d - b'0')).min(1 << 40);
                i += 1;
            }
            if i == start {
                return None;
            }
            if exp_neg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return None;
        }
        let all = || int.iter().chain(frac);
        let total = int.len() + frac.len();
        let lead = all().take_while(|&&d| d == b'0').count();
        let trail = if lead == total {
            0
        } else {
            frac.iter()
                .rev()
                .chain(int.iter().rev())
                .take_while(|&&d| d == b'0')
                .count()
        };
        let len = total - lead - trail;
        let exp = if len == 0 {
            0
        } else {
            exp - frac.len() as i64 + trail as i64
        };
        Some(Self {
            neg,
            int,
            frac,
            lead,
            len,
            exp,
            integer,
        })
    }

    /// The significant digits (ASCII).
    fn digits(&self) -> impl Iterator<Item = u8> + '_ {
        self.int
            .iter()
            .chain(self.frac)
            .skip(self.lead)
            .take(self.len)
            .copied()
    }

    fn is_zero(&self) -> bool {
        self.len == 0
    }

    /// The decimal exponent of the leading digit (value in [10^m, 10^(m+1))).
    fn magnitude(&self) -> i64 {
        self.len as i64 + self.exp - 1
    }

    fn same_number(&self, other: &Self) -> bool {
        self.neg == other.neg
            && self.len == other.len
            && self.exp == other.exp
            && self.digits().eq(other.digits())
    }
}

/// Text formatted on the stack (a float's shortest form is at most 24 bytes).
struct StackText {
    buf: [u8; 40],
    len: usize,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Why a number cannot be stored in a float type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misfit {
    OutOfRange,
    Underflow,
    Inexact,
}

/// A float type as far as exactness goes.
trait Float: Copy + std::str::FromStr + std::fmt::LowerExp + std::fmt::Display {
    /// Significant decimal digits that always survive a round trip.
    const SAFE_DIGITS: usize;
    /// Magnitudes (see [`Decimal::magnitude`]) inside the normal range.
    const SAFE_MAGNITUDES: (i64, i64);
    fn finite(self) -> bool;
    fn zero(self) -> bool;
}

impl Float for f32 {
    const SAFE_DIGITS: usize = 6;
    const SAFE_MAGNITUDES: (i64, i64) = (-37, 37);
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn zero(self) -> bool {
        self == 0.0
    }
}

impl Float for f64 {
    const SAFE_DIGITS: usize = 15;
    const SAFE_MAGNITUDES: (i64, i64) = (-307, 307);
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn zero(self) -> bool {
        self == 0.0
    }
}

/// The float nearest to the cell, if it holds the cell's number: printed as the
/// shortest decimal that reads back as the same float, or exactly (for
/// integer-valued cells), it is that number.
fn exact_float<F: Float>(text: &str, dec: &Decimal) -> Result<F, Misfit> {
    if !dec.is_zero() {
        let m = dec.magnitude();
        if m > 310 {
            return Err(Misfit::OutOfRange);
        }
        if m < -330 {
            return Err(Misfit::Underflow);
        }
        if dec.len > 800 {
            return Err(Misfit::Inexact);
        }
    }
    let value: F = text.parse().map_err(|_| Misfit::Inexact)?;
    if !value.finite() {
        return Err(Misfit::OutOfRange);
    }
    if value.zero() && !dec.is_zero() {
        return Err(Misfit::Underflow);
    }
    let (lo, hi) = F::SAFE_MAGNITUDES;
    if dec.len <= F::SAFE_DIGITS && (dec.is_zero() || (lo..=hi).contains(&dec.magnitude())) {
        return Ok(value);
    }
    // A float's shortest form has at most 9 (f32) or 17 (f64) digits.
    if dec.len <= 17 {
        let mut text = StackText {
            buf: [0; 40],
            len: 0,
        };
        std::fmt::Write::write_fmt(&mut text, format_args!("{value:e}"))
            .map_err(|_| Misfit::Inexact)?;
        let shortest = std::str::from_utf8(&text.buf[..text.len])
            .ok()
            .and_then(Decimal::parse)
            .ok_or(Misfit::Inexact)?;
        if shortest.same_number(dec) || (shortest.len == dec.len && is_other_tie(value, dec)) {
            return Ok(value);
        }
    }
    if dec.exp >= 0 {
        // An integer: compare with the float's exact value.
        let text = format!("{value:.0}");
        let exact = Decimal::parse(&text).ok_or(Misfit::Inexact)?;
        if exact.same_number(dec) {
            return Ok(value);
        }
    }
    Err(Misfit::Inexact)
}

/// Whether `dec` is the other of two shortest decimals exactly as near to `value` (a
/// tie the formatter broke the other way: `1459657240294353.25` prints as `…353.3`
/// while `…353.2` is as near and reads back as the same float), so it is the float's
/// number as much as the printed one. Rare, so the exact expansion may allocate.
fn is_other_tie<F: Float>(value: F, dec: &Decimal<'_>) -> bool {
    // The float's exact decimal value (at most 767 significant digits for f64).
    let text = format!("{value:.1100e}");
    let Some(exact) = Decimal::parse(&text) else {
        return false;
    };
    let digits: Vec<u8> = exact.digits().collect();
    if exact.neg != dec.neg || exact.len != dec.len + 1 || digits.last() != Some(&b'5') {
        return false;
    }
    // The float is halfway between `lower` and `lower + 1` unit of its last place.
    let unit_exp = exact.exp + 1;
    let lower = &digits[..dec.len];
    let mut upper = lower.to_vec();
    let mut carry = true;
    for d in upper.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            carry = false;
            break;
        }
    }
    if carry {
        upper.insert(0, b'1');
    }
    let is = |candidate: &[u8]| {
        let trail = candidate.iter().rev().take_while(|&&d| d == b'0').count();
        let kept = &candidate[..candidate.len() - trail];
        kept.len() == dec.len
            && unit_exp + trail as i64 == dec.exp
            && dec.digits().eq(kept.iter().copied())
    };
    is(lower) || is(&upper)
}

fn misfit_message(cell: &str, ty: ChannelType, misfit: Misfit) -> String {
    let cell = cut(cell);
    match misfit {
        Misfit::OutOfRange => format!("{cell} is out of range for {}", ty.name()),
        Misfit::Underflow => format!("{cell} underflows to 0 in {}", ty.name()),
        Misfit::Inexact => format!(
            "{cell} cannot be stored exactly in {} (too many significant digits)",
            ty.name()
        ),
    }
}

/// A non-finite float written as a word: `NaN`, `inf`, `-Infinity` (any case).
fn non_finite(text: &str) -> bool {
    let word = text.strip_prefix(['-', '+']).unwrap_or(text);
    ["nan", "inf", "infinity"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

/// Parses one cell for a channel of type `ty`. Empty is [`Value::Null`] (refused when
/// not `nullable`); `NaN`/`inf` are null in a nullable float channel and refused
/// otherwise; a number the type cannot hold exactly is refused, never rounded.
pub fn parse_value(text: &str, ty: ChannelType, nullable: bool) -> Result<Value, String> {
    if text.is_empty() {
        return if nullable {
            Ok(Value::Null)
        } else {
            Err("missing value in a channel that is not nullable".to_string())
        };
    }
    if ty.is_integer() {
        let Some(dec) = Decimal::parse(text) else {
            return Err(format!("{} is not a number", shown(text)));
        };
        if !dec.integer {
            return Err(format!("{} is not an integer", shown(text)));
        }
        let v: i64 = text
            .parse()
            .map_err(|_| format!("{} is out of range for i64", cut(text)))?;
        let (lo, hi) = ty.int_range();
        if !(lo..=hi).contains(&v) {
            return Err(format!("{v} does not fit in {}", ty.name()));
        }
        return Ok(Value::Int(v));
    }
    if non_finite(text) {
        return if nullable {
            Ok(Value::Null)
        } else {
            Err(format!(
                "non-finite value {text} in a channel that is not nullable"
            ))
        };
    }
    let dec = Decimal::parse(text).ok_or_else(|| format!("{} is not a number", shown(text)))?;
    match ty {
        ChannelType::F64 => exact_float::<f64>(text, &dec).map(Value::F64),
        _ => exact_float::<f32>(text, &dec).map(Value::F32),
    }
    .map_err(|m| misfit_message(text, ty, m))
}

/// A parsed header: which CSV column feeds which schema channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvHeader {
    /// The header's channel names, in CSV order (after the timestamp column).
    pub names: Vec<String>,
    /// For each schema channel, the CSV column index (0 = timestamp) it comes from.
    columns: Vec<usize>,
    /// Type and nullability of each schema channel.
    types: Vec<(ChannelType, bool)>,
    /// Microseconds per unit of the stored timestamp (1000 for milliseconds).
    ts_unit_us: i64,
}

impl CsvHeader {
    /// Parses header `line` and maps its columns onto `schema`'s channels by name.
    /// Every schema channel must appear; extra CSV columns are an error too.
    pub fn parse(line: &str, schema: &Schema) -> Result<Self, CsvError> {
        let names = header_names(line)?;
        let mut columns = Vec::with_capacity(schema.channels.len());
        for channel in &schema.channels {
            let index = names
                .iter()
                .position(|n| *n == channel.name)
                .ok_or_else(|| {
                    CsvError::at(
                        1,
                        None,
                        format!("the header has no column {}", shown(&channel.name)),
                    )
                })?;
            columns.push(index + 1);
        }
        if let Some((i, extra)) = names
            .iter()
            .enumerate()
            .find(|(_, n)| schema.channel_index(n).is_none())
        {
            return Err(CsvError::at(
                1,
                Some(i + 2),
                format!("column {} is not a channel of the schema", shown(extra)),
            ));
        }
        Ok(Self {
            names,
            columns,
            types: schema.channels.iter().map(|c| (c.ty, c.nullable)).collect(),
            ts_unit_us: schema.ts_unit.micros(),
        })
    }

    /// Parses data line `line` (1-based `line_no`) into a timestamp and values in
    /// schema channel order; `values` is reused. Every check a batch makes is made
    /// here, so a refused row is named by line and column.
    pub fn parse_row(
        &self,
        line: &str,
        line_no: usize,
        values: &mut Vec<Value>,
    ) -> Result<i64, CsvError> {
        let cells = split_cells(line, line_no, self.names.len() + 1)?;
        let ts = parse_timestamp(&cells[0]).map_err(|m| CsvError::at(line_no, Some(1), m))?;
        if ts % self.ts_unit_us != 0 {
            return Err(CsvError::at(
                line_no,
                Some(1),
                format!(
                    "timestamp {} is finer than the file's millisecond timestamp column (it would be cut)",
                    shown(&cells[0])
                ),
            ));
        }
        values.clear();
        for (&column, &(ty, nullable)) in self.columns.iter().zip(&self.types) {
            let value = parse_value(&cells[column], ty, nullable).map_err(|m| {
                CsvError::at(
                    line_no,
                    Some(column + 1),
                    format!("{m} (column {})", shown(&self.names[column - 1])),
                )
            })?;
            values.push(value);
        }
        Ok(ts)
    }
}

/// The cells of a data line, which must number `expected`.
fn split_cells(line: &str, line_no: usize, expected: usize) -> Result<Vec<String>, CsvError> {
    let cells = split_line(line).map_err(|m| CsvError::at(line_no, None, m))?;
    if cells.len() != expected {
        return Err(CsvError::at(
            line_no,
            Some(cells.len().min(expected) + 1),
            format!("expected {expected} cells, found {}", cells.len()),
        ));
    }
    Ok(cells)
}

fn header_names(line: &str) -> Result<Vec<String>, CsvError> {
    let line = line.trim_start_matches('\u{feff}');
    let cells = split_line(line).map_err(|m| CsvError::at(1, None, m))?;
    if cells
        .first()
        .is_none_or(|c| !TIMESTAMP_HEADERS.contains(&c.as_str()))
    {
        return Err(CsvError::at(
            1,
            Some(1),
            "the first column must be named \"timestamp\" (or \"ts\")".to_string(),
        ));
    }
    if cells.len() < 2 {
        return Err(CsvError::at(
            1,
            None,
            "the header names no channels".to_string(),
        ));
    }
    Ok(cells[1..].to_vec())
}

/// The header line and the numbered (1-based) non-blank data lines of a CSV text.
fn split_header(text: &str) -> Result<(&str, impl Iterator<Item = (usize, &str)>), CsvError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l));
    let (_, header) = lines
        .next()
        .ok_or_else(|| CsvError::at(1, None, "the input is empty (no header)".to_string()))?;
    Ok((header, lines))
}

/// What the cells of one column seen so far require.
#[derive(Debug, Clone)]
struct ColumnGuess {
    /// A cell was empty.
    nullable: bool,
    /// A cell was not empty.
    any: bool,
    /// Every cell is an integer within i64.
    ints: bool,
    /// An integer beyond i32.
    wide: bool,
    /// Every cell is held exactly by f32 (non-finite words are).
    f32_exact: bool,
    /// The first integer cell (line, column, text) that f64 cannot hold exactly.
    not_f64: Option<(usize, usize, String)>,
}

impl Default for ColumnGuess {
    fn default() -> Self {
        Self {
            nullable: false,
            any: false,
            ints: true,
            wide: false,
            f32_exact: true,
            not_f64: None,
        }
    }
}

/// What one cell tells the column's guess.
#[derive(Debug, Clone, Copy)]
enum CellKind {
    Empty,
    /// An integer within i64; whether f32 and f64 hold it exactly.
    Int {
        wide: bool,
        f32: bool,
        f64: bool,
    },
    /// A non-finite word or a number beyond i64 or with a fraction (f64 holds it).
    Float {
        f32: bool,
    },
}

/// What `cell` needs; `need_f32`: whether its column may still be f32 (else that check
/// is skipped).
fn classify(cell: &str, need_f32: bool) -> Result<CellKind, String> {
    if cell.is_empty() {
        return Ok(CellKind::Empty);
    }
    if non_finite(cell) {
        return Ok(CellKind::Float { f32: true });
    }
    let dec = Decimal::parse(cell).ok_or_else(|| format!("{} is not a number", shown(cell)))?;
    if dec.integer
        && let Ok(v) = cell.parse::<i64>()
    {
        return Ok(CellKind::Int {
            wide: i32::try_from(v).is_err(),
            f32: (v as f32) as i128 == i128::from(v),
            f64: (v as f64) as i128 == i128::from(v),
        });
    }
    // A fraction, an exponent or an integer beyond i64: f64 must hold it.
    exact_float::<f64>(cell, &dec).map_err(|m| {
        if dec.integer {
            format!(
                "{} is out of range (beyond i64, not exact in f64)",
                cut(cell)
            )
        } else {
            misfit_message(cell, ChannelType::F64, m)
        }
    })?;
    Ok(CellKind::Float {
        f32: need_f32 && exact_float::<f32>(cell, &dec).is_ok(),
    })
}

/// Infers a schema from CSV lines fed one at a time: each column gets the narrowest
/// type that holds every one of its cells exactly — `i32`, `i64` for integers beyond
/// i32, `f32` for other numbers when f32 holds each exactly, else `f64`; a column of
/// integers beyond i64 is `f64` when f64 holds them exactly — and is nullable where a
/// cell is empty. A line refused by [`Inference::add_line`] takes no part.
#[derive(Debug, Clone)]
pub struct Inference {
    names: Vec<String>,
    columns: Vec<ColumnGuess>,
}

impl Inference {
    /// Starts from the header line.
    pub fn new(header: &str) -> Result<Self, CsvError> {
        let names = header_names(header)?;
        Ok(Self {
            columns: vec![ColumnGuess::default(); names.len()],
            names,
        })
    }

    /// Takes data line `line` (1-based `line_no`) into account; blank lines are
    /// ignored. A line that could not be stored under any types (bad cell count,
    /// timestamp or number) is refused and changes nothing.
    pub fn add_line(&mut self, line_no: usize, line: &str) -> Result<(), CsvError> {
        if line.trim().is_empty() {
            return Ok(());
        }
        let cells = split_cells(line, line_no, self.names.len() + 1)?;
        parse_timestamp(&cells[0]).map_err(|m| CsvError::at(line_no, Some(1), m))?;
        let mut kinds = Vec::with_capacity(self.names.len());
        for (j, cell) in cells[1..].iter().enumerate() {
            let kind = classify(cell, self.columns[j].f32_exact).map_err(|m| {
                CsvError::at(
                    line_no,
                    Some(j + 2),
                    format!("{m} (column {})", shown(&self.names[j])),
                )
            })?;
            kinds.push(kind);
        }
        for (j, (guess, kind)) in self.columns.iter_mut().zip(kinds).enumerate() {
            match kind {
                CellKind::Empty => guess.nullable = true,
                CellKind::Int { wide, f32, f64 } => {
                    guess.any = true;
                    guess.wide |= wide;
                    guess.f32_exact &= f32;
                    if !f64 && guess.not_f64.is_none() {
                        guess.not_f64 = Some((line_no, j + 2, cells[j + 1].clone()));
                    }
                }
                CellKind::Float { f32 } => {
                    guess.any = true;
                    guess.ints = false;
                    guess.f32_exact &= f32;
                }
            }
        }
        Ok(())
    }

    /// The schema; `overrides` set types by name. Unless `lenient`, a column whose
    /// integers and fractions no one type holds exactly is refused at its first integer
    /// f64 cannot hold (with `lenient`, that row is refused when it is read).
    pub fn finish(
        self,
        overrides: &[(String, ChannelType)],
        lenient: bool,
    ) -> Result<Schema, CsvError> {
        let mut channels = Vec::with_capacity(self.names.len());
        for (name, guess) in self.names.iter().zip(&self.columns) {
            let inferred = if !guess.any || guess.ints {
                if guess.wide {
                    ChannelType::I64
                } else {
                    ChannelType::I32
                }
            } else if guess.f32_exact {
                ChannelType::F32
            } else {
                ChannelType::F64
            };
            let overridden = overrides.iter().find(|(n, _)| n == name).map(|(_, t)| *t);
            if overridden.is_none()
                && inferred == ChannelType::F64
                && !lenient
                && let Some((line, column, cell)) = &guess.not_f64
            {
                return Err(CsvError::at(
                    *line,
                    Some(*column),
                    format!(
                        "{} cannot be stored exactly in f64, which other cells of column {} need: give its type with --types",
                        cut(cell),
                        shown(name)
                    ),
                ));
            }
            let mut channel = Channel::new(name, overridden.unwrap_or(inferred));
            channel.nullable = guess.nullable;
            channels.push(channel);
        }
        Schema::new(channels).map_err(|e| CsvError::at(1, None, e.to_string()))
    }
}

/// A schema for a whole CSV text (see [`Inference`]); `overrides` set types by name.
/// The first line that could not be stored is an error.
pub fn infer_schema(text: &str, overrides: &[(String, ChannelType)]) -> Result<Schema, CsvError> {
    let (header, lines) = split_header(text)?;
    let mut inference = Inference::new(header)?;
    for (line_no, line) in lines {
        inference.add_line(line_no, line)?;
    }
    inference.finish(overrides, false)
}

/// Every row of a CSV text (header first), checked against `schema`'s types.
pub fn read_rows(text: &str, schema: &Schema) -> Result<Vec<(i64, Vec<Value>)>, CsvError> {
    let (header, lines) = split_header(text)?;
    let header = CsvHeader::parse(header, schema)?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for (line_no, line) in lines {
        let ts = header.parse_row(line, line_no, &mut values)?;
        rows.push((ts, values.clone()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![Channel::f32("a"), Channel::f32("b").nullable()]).unwrap()
    }

    #[test]
    fn reads_rfc3339_and_integer_timestamps() {
        let text = "timestamp,a,b\n2024-03-01T08:00:00.1Z,1.5,\n1709280000200000,-2,3e2\n";
        let rows = read_rows(text, &schema()).unwrap();
        assert_eq!(
            rows,
            vec![
                (1_709_280_000_100_000, vec![Value::F32(1.5), Value::Null]),
                (
                    1_709_280_000_200_000,
                    vec![Value::F32(-2.0), Value::F32(300.0)]
                ),
            ]
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = |text: &str| read_rows(text, &schema()).unwrap_err();
        let e = err("timestamp,a,b\n1,2,3\n2,3\n");
        assert_eq!((e.line, e.column), (3, Some(3)));
        assert!(e.message.contains("expected 3 cells, found 2"), "{e}");
        let e = err("timestamp,a,b\n1,x,3\n");
        assert_eq!((e.line, e.column), (2, Some(2)));
        assert_eq!(
            e.to_string(),
            "line 2, column 2: \"x\" is not a number (column \"a\")"
        );
        let e = err("timestamp,a,b\n2024-13-01T00:00:00Z,1,2\n");
        assert_eq!((e.line, e.column), (2, Some(1)));
        let e = err("");
        assert_eq!(e.line, 1);
        assert!(e.message.contains("empty"), "{e}");
        let e = err("time,a,b\n");
        assert_eq!((e.line, e.column), (1, Some(1)));
        let e = err("timestamp,a,c\n");
        assert!(e.message.contains("no column \"b\""), "{e}");
        assert_eq!(
            err("timestamp,a,b\n1,2,3,4\n")
                .in_source("in.csv")
                .to_string(),
            "in.csv:line 2, column 4: expected 3 cells, found 4"
        );
    }

    #[test]
    fn splits_quoted_cells() {
        assert_eq!(
            split_line(" a ,\"b,c\",\"d\"\"e\"\r").unwrap(),
            ["a", "b,c", "d\"e"]
        );
        assert!(split_line("\"a").is_err());
    }

    #[test]
    fn infers_integer_float_and_nullable_columns() {
        let text = "timestamp,i,w,f,n\n1,1,3000000000,1.5,\n2,-2,1,2,4\n";
        let s = infer_schema(text, &[]).unwrap();
        let types: Vec<_> = s.channels.iter().map(|c| (c.ty, c.nullable)).collect();
        assert_eq!(
            types,
            [
                (ChannelType::I32, false),
                (ChannelType::I64, false),
                (ChannelType::F32, false),
                (ChannelType::I32, true)
            ]
        );
        let s = infer_schema(text, &[("i".into(), ChannelType::F32)]).unwrap();
        assert_eq!(s.channels[0].ty, ChannelType::F32);
    }

    fn types_of(text: &str) -> Vec<ChannelType> {
        infer_schema(text, &[])
            .unwrap()
            .channels
            .iter()
            .map(|c| c.ty)
            .collect()
    }

    fn read_back(text: &str) -> Vec<Vec<Value>> {
        let schema = infer_schema(text, &[]).unwrap();
        read_rows(text, &schema)
            .unwrap()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn inference_picks_a_type_that_holds_every_value_exactly() {
        // Integers beyond f32's 24-bit mantissa stay integers.
        let text = "timestamp,a\n1,16777217\n2,16777219\n";
        assert_eq!(types_of(text), [ChannelType::I32]);
        assert_eq!(
            read_back(text),
            [[Value::Int(16777217)], [Value::Int(16777219)]]
        );
        // A float column that f32 cannot hold becomes f64.
        let text = "timestamp,a,b,c\n1,1.5,1e39,0.1234567891\n2,16777217,-1e39,21.30\n3,2,3.4028236e38,1e-50\n";
        assert_eq!(types_of(text), [ChannelType::F64; 3]);
        assert_eq!(
            read_back(text),
            [
                [Value::F64(1.5), Value::F64(1e39), Value::F64(0.1234567891)],
                [Value::F64(16777217.0), Value::F64(-1e39), Value::F64(21.3)],
                [Value::F64(2.0), Value::F64(3.4028236e38), Value::F64(1e-50)],
            ]
        );
        // f32 where its shortest decimal is the cell's: 21.30, a subnormal, -0.
        let text = "timestamp,a\n1,21.30\n2,1e-45\n3,-0.0\n4,3.4028235e38\n5,NaN\n";
        let schema = infer_schema(text, &[]).unwrap();
        assert_eq!(schema.channels[0].ty, ChannelType::F32);
        let rows = read_rows(&text.replace("5,NaN\n", ""), &schema).unwrap();
        assert_eq!(rows[0].1, [Value::F32(21.3)]);
        assert_eq!(rows[1].1, [Value::F32(1e-45)]);
        assert!(matches!(rows[2].1[0], Value::F32(z) if z == 0.0 && z.is_sign_negative()));
        // Integers beyond i64: f64 when it holds them exactly (2^64, 1e20), else refused.
        let text = "timestamp,a\n1,18446744073709551616\n2,100000000000000000000\n3,16777217\n";
        assert_eq!(types_of(text), [ChannelType::F64]);
        assert_eq!(read_back(text)[0], [Value::F64(18446744073709551616.0)]);
        assert_eq!(read_back(text)[2], [Value::F64(16777217.0)]);
        let e = infer_schema("timestamp,a\n1,1\n2,99999999999999999999\n", &[]).unwrap_err();
        assert_eq!((e.line, e.column), (3, Some(2)));
        assert!(e.message.contains("out of range"), "{e}");
        // An integer f64 cannot hold, in a column that needs f64 for its fractions.
        let text = "timestamp,a\n1,1.5\n2,9007199254740993\n";
        let e = infer_schema(text, &[]).unwrap_err();
        assert_eq!((e.line, e.column), (3, Some(2)), "{e}");
        assert!(e.message.contains("cannot be stored exactly in f64"), "{e}");
        // Beyond every float: refused, never null or rounded.
        for (cell, what) in [
            ("1e400", "out of range"),
            ("-1e400", "out of range"),
            ("1e-400", "underflows to 0"),
            ("3.14159265358979323846", "cannot be stored exactly"),
        ] {
            let e = infer_schema(&format!("timestamp,a\n1,\n2,{cell}\n"), &[]).unwrap_err();
            assert_eq!((e.line, e.column), (3, Some(2)), "{cell}: {e}");
            assert!(e.message.contains(what), "{cell}: {e}");
        }
        // A huge integer is out of range, not infinite (and the message is short).
        let huge = "9".repeat(5_000_000);
        let e = infer_schema(&format!("timestamp,a\n1,{huge}\n"), &[]).unwrap_err();
        assert!(e.message.contains("out of range"), "{}", &e.message[..100]);
        assert!(e.to_string().len() < 200);
    }

    #[test]
    fn refused_lines_take_no_part_in_inference() {
        let mut inference = Inference::new("timestamp,a").unwrap();
        inference.add_line(2, "1,16777217").unwrap();
        assert!(inference.add_line(3, "garbage,line").is_err());
        assert!(inference.add_line(4, "2,garbage").is_err());
        assert!(inference.add_line(5, "3,1e400").is_err());
        inference.add_line(6, "4,16777219").unwrap();
        let schema = inference.finish(&[], true).unwrap();
        assert_eq!(schema.channels[0].ty, ChannelType::I32);
        assert!(!schema.channels[0].nullable);
    }

    #[test]
    fn a_declared_type_that_cannot_hold_a_value_refuses_it() {
        let schema =
            Schema::new(vec![Channel::f32("a"), Channel::new("b", ChannelType::I16)]).unwrap();
        let err = |row: &str| read_rows(&format!("timestamp,a,b\n{row}\n"), &schema).unwrap_err();
        let e = err("1,16777217,1");
        assert_eq!((e.line, e.column), (2, Some(2)));
        assert!(e.message.contains("cannot be stored exactly in f32"), "{e}");
        assert!(err("1,1e39,1").message.contains("out of range for f32"));
        assert!(err("1,1e-50,1").message.contains("underflows to 0 in f32"));
        let e = err("1,1,40000");
        assert_eq!(
            e.to_string(),
            "line 2, column 3: 40000 does not fit in i16 (column \"b\")"
        );
        assert!(err("1,1,1.5").message.contains("is not an integer"));
        assert!(
            err("1,1,99999999999999999999")
                .message
                .contains("out of range for i64")
        );
    }

    #[test]
    fn row_errors_name_the_line() {
        let err = |text: &str| read_rows(text, &schema()).unwrap_err();
        assert_eq!(
            err("timestamp,a,b\n1,2,3\n2,NaN,3\n").to_string(),
            "line 3, column 2: non-finite value NaN in a channel that is not nullable (column \"a\")"
        );
        assert_eq!(
            err("timestamp,a,b\n1,,3\n").to_string(),
            "line 2, column 2: missing value in a channel that is not nullable (column \"a\")"
        );
        // NaN and ±inf in a nullable channel are failed reads: null.
        let rows = read_rows("timestamp,a,b\n1,1,NaN\n2,1,-inf\n", &schema()).unwrap();
        assert_eq!(rows[1].1, [Value::F32(1.0), Value::Null]);
        assert_eq!(
            err("timestamp,a,b\n-1,2,3\n").to_string(),
            "line 2, column 1: timestamp -1 µs is outside 1970-01-01T00:00:00Z..=9999-12-31T23:59:59.999999Z"
        );
        for bad in ["-", "--5", "5-", "+"] {
            let e = err(&format!("timestamp,a,b\n{bad},2,3\n"));
            assert_eq!((e.line, e.column), (2, Some(1)));
            assert!(e.message.contains("neither RFC 3339"), "{bad}: {e}");
        }
        let e = err(&format!("timestamp,a,b\n{},2,3\n", "9".repeat(100)));
        assert!(e.message.contains("is outside"), "{e}");
        assert!(e.message.len() < 200, "{e}");
        // A huge column name is cut in messages.
        let name = "x".repeat(10 << 20);
        let e = infer_schema(&format!("timestamp,{name}\n1,2\n"), &[]).unwrap_err();
        assert!(e.to_string().len() < 300, "{}", e.to_string().len());
        assert!(e.to_string().contains("…"));
        let e = read_rows(&format!("timestamp,a,b,{name}\n"), &schema()).unwrap_err();
        assert!(e.to_string().len() < 300);
    }

    #[test]
    fn both_timestamp_forms_accept_the_same_range() {
        let max = crate::batch::MAX_TS_US;
        assert_eq!(parse_timestamp(&max.to_string()), Ok(max));
        assert_eq!(parse_timestamp("9999-12-31T23:59:59.999999Z"), Ok(max));
        assert_eq!(parse_timestamp("0"), Ok(0));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
        assert!(
            parse_timestamp(&(max + 1).to_string())
                .unwrap_err()
                .contains("outside")
        );
        assert!(parse_timestamp("10000-01-01T00:00:00Z").is_err());
        assert!(parse_timestamp("-1").unwrap_err().contains("outside"));
        assert!(
            parse_timestamp("1969-12-31T23:59:59.999999Z")
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            parse_timestamp("2024-03-01T08:00:00+24:00")
                .unwrap_err()
                .contains("offset")
        );
        assert!(
            parse_timestamp("2016-12-31T23:59:60Z")
                .unwrap_err()
                .contains("leap second")
        );
    }

    #[test]
    fn whitespace_after_a_closing_quote_is_trimmed() {
        assert_eq!(split_line("1,\"2\" , \"3\"\t").unwrap(), ["1", "2", "3"]);
        assert!(split_line("1,\"2\" x").is_err());
        let rows = read_rows("timestamp,a,b\n1,\"2\" ,3\n", &schema()).unwrap();
        assert_eq!(rows[0].1, [Value::F32(2.0), Value::F32(3.0)]);
    }

    #[test]
    fn a_millisecond_schema_refuses_finer_timestamps() {
        let mut schema = schema();
        schema.ts_unit = crate::schema::TimeUnit::Millis;
        let rows = read_rows("timestamp,a,b\n2024-03-01T08:00:00.123Z,1,\n", &schema).unwrap();
        assert_eq!(rows[0].0, 1_709_280_000_123_000);
        let e = read_rows("timestamp,a,b\n1709280000123456,1,\n", &schema).unwrap_err();
        assert_eq!((e.line, e.column), (2, Some(1)));
        assert!(e.message.contains("finer than"), "{e}");
    }

    #[test]
    fn either_of_two_equally_near_shortest_decimals_is_exact() {
        // 1459657240294353.25 is exactly halfway between ….2 and ….3, both 17 digits.
        for cell in [
            "1459657240294353.2",
            "1459657240294353.3",
            "-1459657240294353.2",
        ] {
            assert!(
                matches!(
                    parse_value(cell, ChannelType::F64, false),
                    Ok(Value::F64(_))
                ),
                "{cell}"
            );
        }
        assert_eq!(
            parse_value("1459657240294353.2", ChannelType::F64, false),
            Ok(Value::F64(1_459_657_240_294_353.0 + 0.25))
        );
        // Not a tie: a decimal that reads back as the float but is farther than the
        // printed one is not the float's number.
        assert!(parse_value("1459657240294353.1", ChannelType::F64, false).is_err());
        assert!(parse_value("16777217", ChannelType::F32, false).is_err());
    }

    #[test]
    fn decimals_compare_as_exact_numbers() {
        let d = |t: &'static str| Decimal::parse(t).unwrap();
        assert!(d("21.30").same_number(&d("2.13e1")));
        assert!(d("0100").same_number(&d("1e2")));
        assert!(d("0.000").same_number(&d("0")));
        assert!(!d("-0").same_number(&d("0")));
        assert!(d(".5").same_number(&d("5e-1")));
        assert!(d("5.").same_number(&d("5")));
        assert!(!d("16777217").same_number(&d("1.6777216e7")));
        assert_eq!(d("1.50e3").magnitude(), 3);
        for bad in [
            "", ".", "e5", "1e", "1.2.3", "0x10", "1_000", "--1", "1e+", " 1",
        ] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
    }
}
