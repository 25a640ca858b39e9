//! Rows from CSV text: a header `timestamp,<channel>,...`, then one row per line.
//!
//! Timestamps are RFC 3339 (`2024-03-01T08:00:00.1Z`, any offset) or integer
//! microseconds since the Unix epoch. An empty cell is a missing reading. Errors name
//! the line (1-based, the header is line 1) and the column.

use std::fmt;

use crate::batch::Value;
use crate::schema::{Channel, ChannelType, Schema};

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

/// Splits one CSV line into trimmed cells (double quotes with `""` escapes allowed).
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
            (false, c) if was_quoted && !c.is_whitespace() => {
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

/// Parses an RFC 3339 timestamp or integer microseconds since the Unix epoch.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    if !text.is_empty()
        && text
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return text
            .parse::<i64>()
            .map_err(|_| format!("timestamp {text:?} does not fit in 64 bits"));
    }
    let ts: jiff::Timestamp = text.parse().map_err(|_| {
        format!(
            "timestamp {text:?} is neither RFC 3339 (e.g. 2024-03-01T08:00:00.1Z) nor integer microseconds"
        )
    })?;
    Ok(ts.as_microsecond())
}

/// Parses one cell for a channel of type `ty`; empty is [`Value::Null`].
pub fn parse_value(text: &str, ty: ChannelType) -> Result<Value, String> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    match ty {
        ChannelType::F32 => text
            .parse::<f32>()
            .map(Value::F32)
            .map_err(|_| format!("{text:?} is not a number")),
        _ => text
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| format!("{text:?} is not an integer")),
    }
}

/// A parsed header: which CSV column feeds which schema channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvHeader {
    /// The header's channel names, in CSV order (after the timestamp column).
    pub names: Vec<String>,
    /// For each schema channel, the CSV column index (0 = timestamp) it comes from.
    columns: Vec<usize>,
    types: Vec<ChannelType>,
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
                        format!("the header has no column {:?}", channel.name),
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
                format!("column {extra:?} is not a channel of the schema"),
            ));
        }
        Ok(Self {
            names,
            columns,
            types: schema.channels.iter().map(|c| c.ty).collect(),
        })
    }

    /// Parses data line `line` (1-based `line_no`) into a timestamp and values in
    /// schema channel order; `values` is reused.
    pub fn parse_row(
        &self,
        line: &str,
        line_no: usize,
        values: &mut Vec<Value>,
    ) -> Result<i64, CsvError> {
        let cells = split_line(line).map_err(|m| CsvError::at(line_no, None, m))?;
        let expected = self.names.len() + 1;
        if cells.len() != expected {
            return Err(CsvError::at(
                line_no,
                Some(cells.len().min(expected) + 1),
                format!("expected {expected} cells, found {}", cells.len()),
            ));
        }
        let ts = parse_timestamp(&cells[0]).map_err(|m| CsvError::at(line_no, Some(1), m))?;
        values.clear();
        for (&column, &ty) in self.columns.iter().zip(&self.types) {
            let value = parse_value(&cells[column], ty).map_err(|m| {
                CsvError::at(
                    line_no,
                    Some(column + 1),
                    format!("{} (column {:?})", m, self.names[column - 1]),
                )
            })?;
            values.push(value);
        }
        Ok(ts)
    }
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

/// A schema for a whole CSV text: channels named by the header, typed by inference
/// (a column whose every cell is an integer becomes `i32`, or `i64` when a value does
/// not fit; anything else `f32`), nullable where a cell is empty. `overrides` sets
/// types by name.
pub fn infer_schema(text: &str, overrides: &[(String, ChannelType)]) -> Result<Schema, CsvError> {
    let (header, lines) = split_header(text)?;
    let names = header_names(header)?;
    let mut integer = vec![true; names.len()];
    let mut wide = vec![false; names.len()];
    let mut nullable = vec![false; names.len()];
    for (line_no, line) in lines {
        let cells = split_line(line).map_err(|m| CsvError::at(line_no, None, m))?;
        for (j, cell) in cells.iter().skip(1).take(names.len()).enumerate() {
            if cell.is_empty() {
                nullable[j] = true;
            } else if integer[j] {
                match cell.parse::<i64>() {
                    Ok(v) if i32::try_from(v).is_err() => wide[j] = true,
                    Ok(_) => {}
                    Err(_) => integer[j] = false,
                }
            }
        }
    }
    let channels = names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let inferred = match (integer[j], wide[j]) {
                (true, false) => ChannelType::I32,
                (true, true) => ChannelType::I64,
                _ => ChannelType::F32,
            };
            let ty = overrides
                .iter()
                .find(|(n, _)| n == name)
                .map_or(inferred, |(_, t)| *t);
            let mut channel = Channel::new(name, ty);
            channel.nullable = nullable[j];
            channel
        })
        .collect();
    Schema::new(channels).map_err(|e| CsvError::at(1, None, e.to_string()))
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
}
