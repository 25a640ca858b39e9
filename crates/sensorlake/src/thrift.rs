//! The Thrift compact protocol, write side only: what Parquet page headers and footers
//! are made of. Writes into a caller's buffer and allocates nothing itself.

/// Compact-protocol type nibbles.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Kind {
    True = 1,
    False = 2,
    Byte = 3,
    I32 = 5,
    I64 = 6,
    Binary = 8,
    List = 9,
    Struct = 12,
}

/// Element types of lists.
#[derive(Clone, Copy)]
pub(crate) enum ListOf {
    /// `bool` elements (one byte each).
    Bool,
    /// `i32` elements (enums).
    I32,
    /// `i64` elements.
    I64,
    /// `binary`/`string` elements.
    Binary,
    /// `struct` elements.
    Struct,
}

impl ListOf {
    fn kind(self) -> Kind {
        match self {
            Self::Bool => Kind::True,
            Self::I32 => Kind::I32,
            Self::I64 => Kind::I64,
            Self::Binary => Kind::Binary,
            Self::Struct => Kind::Struct,
        }
    }
}

/// Nesting depth the writer supports (Parquet's footer needs 6).
const MAX_DEPTH: usize = 8;

/// A compact-protocol writer over a byte buffer.
pub(crate) struct Thrift<'a> {
    out: &'a mut Vec<u8>,
    last_field: [i16; MAX_DEPTH],
    depth: usize,
}

/// Appends `value` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Zigzag form of a signed integer.
pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

impl<'a> Thrift<'a> {
    /// A writer appending to `out`, positioned at the start of a top-level struct.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            last_field: [0; MAX_DEPTH],
            depth: 0,
        }
    }

    fn field(&mut self, id: i16, kind: Kind) {
        let delta = id - self.last_field[self.depth];
        if (1..=15).contains(&delta) {
            self.out.push(((delta as u8) << 4) | kind as u8);
        } else {
            self.out.push(kind as u8);
            put_varint(self.out, zigzag(id.into()));
        }
        self.last_field[self.depth] = id;
    }

    /// An `i32` (or enum) field.
    pub(crate) fn i32(&mut self, id: i16, value: i32) -> &mut Self {
        self.field(id, Kind::I32);
        put_varint(self.out, zigzag(value.into()));
        self
    }

    /// An `i64` field.
    pub(crate) fn i64(&mut self, id: i16, value: i64) -> &mut Self {
        self.field(id, Kind::I64);
        put_varint(self.out, zigzag(value));
        self
    }

    /// An `i8` field.
    pub(crate) fn byte(&mut self, id: i16, value: i8) -> &mut Self {
        self.field(id, Kind::Byte);
        self.out.push(value as u8);
        self
    }

    /// A `bool` field.
    pub(crate) fn bool(&mut self, id: i16, value: bool) -> &mut Self {
        self.field(id, if value { Kind::True } else { Kind::False });
        self
    }

    /// A `binary` or `string` field.
    pub(crate) fn binary(&mut self, id: i16, value: &[u8]) -> &mut Self {
        self.field(id, Kind::Binary);
        self.put_binary(value);
        self
    }

    /// Opens a `struct` field; close it with [`Thrift::end`].
    pub(crate) fn begin(&mut self, id: i16) -> &mut Self {
        self.field(id, Kind::Struct);
        self.enter();
        self
    }

    /// Opens a struct that is a list element; close it with [`Thrift::end`].
    pub(crate) fn begin_element(&mut self) -> &mut Self {
        self.enter();
        self
    }

    fn enter(&mut self) {
        self.depth += 1;
        assert!(self.depth < MAX_DEPTH, "thrift nesting too deep");
        self.last_field[self.depth] = 0;
    }

    /// Closes the innermost open struct.
    pub(crate) fn end(&mut self) -> &mut Self {
        self.out.push(0);
        self.depth -= 1;
        self
    }

    /// Hands the bytes written so far to `sink` and empties the buffer (nesting state
    /// is kept), so a long footer can be streamed out in small pieces.
    pub(crate) fn drain<E>(&mut self, sink: impl FnOnce(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let result = sink(self.out);
        self.out.clear();
        result
    }

    /// Closes the top-level struct.
    pub(crate) fn finish(&mut self) {
        self.out.push(0);
    }

    /// A list field header of `len` elements; write the elements next.
    pub(crate) fn list(&mut self, id: i16, of: ListOf, len: usize) -> &mut Self {
        self.field(id, Kind::List);
        let kind = of.kind() as u8;
        if len < 15 {
            self.out.push(((len as u8) << 4) | kind);
        } else {
            self.out.push(0xF0 | kind);
            put_varint(self.out, len as u64);
        }
        self
    }

    /// A list element of type `i32`.
    pub(crate) fn element_i32(&mut self, value: i32) -> &mut Self {
        put_varint(self.out, zigzag(value.into()));
        self
    }

    /// A list element of type `i64`.
    pub(crate) fn element_i64(&mut self, value: i64) -> &mut Self {
        put_varint(self.out, zigzag(value));
        self
    }

    /// A list element of type `bool`.
    pub(crate) fn element_bool(&mut self, value: bool) -> &mut Self {
        self.out.push(if value { 1 } else { 2 });
        self
    }

    /// A list element of type `binary`.
    pub(crate) fn element_binary(&mut self, value: &[u8]) -> &mut Self {
        self.put_binary(value);
        self
    }

    fn put_binary(&mut self, value: &[u8]) {
        put_varint(self.out, value.len() as u64);
        self.out.extend_from_slice(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_zigzag() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xAC, 0x02]);
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }

    #[test]
    fn field_headers_use_deltas_and_long_form() {
        let mut out = Vec::new();
        let mut t = Thrift::new(&mut out);
        t.i32(1, 3).i64(20, -1).begin(21).bool(1, true).end();
        t.finish();
        // field 1 i32 (delta 1) = 3 (zigzag 6); field 20: delta 19 > 15 → long form.
        assert_eq!(out, [0x15, 6, 0x06, 40, 1, 0x1C, 0x11, 0, 0]);
    }
}
