//! The crate's own Parquet reader (`pqread`, what the device links) against the
//! `parquet` crate's: the same rows, key-value metadata and device values for every
//! option combination and for random batches, files of the parquet crate's writer too;
//! and malformed input (truncation, bit flips, lying lengths) is an error, never a
//! panic (a bounded, deterministic fuzz loop, also in the device feature set).

use std::sync::Arc;

#[cfg(feature = "host")]
use bytes::Bytes;
use sensorlake::batch::{Batch, Value};
use sensorlake::decode;
#[cfg(feature = "host")]
use sensorlake::decode::DecodedFile;
#[cfg(feature = "host")]
use sensorlake::encode::ReferenceEncoder;
use sensorlake::encode::{
    Codec, EncodeOptions, Encoder, FileMetadata, FloatEncoding, IntEncoding, Statistics,
};
use sensorlake::key::DeviceId;
use sensorlake::pqread;
#[cfg(feature = "host")]
use sensorlake::pqread::Values;
use sensorlake::schema::{Channel, ChannelType, Schema, TimeUnit};
use sensorlake::spool::{read_facts, verify_rows};

/// xorshift64*: deterministic, seeded per test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, in_n: u64) -> bool {
        self.below(in_n) == 0
    }
}

#[cfg(feature = "host")]
fn all_options() -> Vec<EncodeOptions> {
    let mut all = Vec::new();
    for codec in Codec::ALL.into_iter().filter(|c| c.is_available()) {
        for float_encoding in FloatEncoding::ALL {
            for ts_encoding in IntEncoding::ALL {
                for int_encoding in IntEncoding::ALL {
                    for statistics in Statistics::ALL {
                        all.push(EncodeOptions {
                            codec,
                            float_encoding,
                            ts_encoding,
                            int_encoding,
                            statistics,
                        });
                    }
                }
            }
        }
    }
    all
}

/// A random schema: 1–6 channels of every type, some nullable, maybe a device column.
fn random_schema(rng: &mut Rng) -> Arc<Schema> {
    let types = [
        ChannelType::F32,
        ChannelType::I16,
        ChannelType::I32,
        ChannelType::I64,
    ];
    let channels = (0..1 + rng.below(6))
        .map(|i| {
            let mut c = Channel::new(&format!("c{i}"), types[rng.below(4) as usize]);
            c.nullable = rng.chance(2);
            c
        })
        .collect();
    Arc::new(
        Schema {
            ts_column: "ts".into(),
            ts_unit: if rng.chance(3) {
                TimeUnit::Millis
            } else {
                TimeUnit::Micros
            },
            device_column: rng.chance(2).then(|| "device".to_string()),
            channels,
        }
        .validated()
        .unwrap(),
    )
}

fn random_value(rng: &mut Rng, ty: ChannelType) -> Value {
    let bits = rng.next();
    // Small ranges (long runs, narrow deltas) as often as the full range.
    let narrow = rng.chance(2);
    match ty {
        ChannelType::F32 => {
            let f = if narrow {
                (rng.below(20) as f32) * 0.25 - 2.0
            } else {
                f32::from_bits(bits as u32)
            };
            Value::F32(if f.is_finite() { f } else { -0.0 })
        }
        ChannelType::I16 => Value::Int(if narrow {
            rng.below(5) as i64
        } else {
            i64::from(bits as i16)
        }),
        ChannelType::I32 => Value::Int(if narrow {
            rng.below(5) as i64 - 2
        } else {
            i64::from(bits as i32)
        }),
        _ => Value::Int(if narrow {
            rng.below(1000) as i64
        } else {
            bits as i64
        }),
    }
}

fn random_batch(rng: &mut Rng, schema: &Arc<Schema>) -> Batch {
    let max = if rng.chance(4) { 1200 } else { 200 };
    let n = 1 + rng.below(max) as usize;
    let step = [1_000, 1_000_000, 997_123][rng.below(3) as usize];
    let mut ts = 1_600_000_000_000_000i64 + rng.below(1 << 40) as i64;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        // Clocks may step back: timestamps need not be sorted.
        ts += if rng.chance(20) { -step } else { step };
        if schema.ts_unit == TimeUnit::Millis {
            ts -= ts.rem_euclid(1000);
        }
        let all_null = rng.chance(8);
        let values: Vec<Value> = schema
            .channels
            .iter()
            .map(|c| {
                if c.nullable && (all_null || rng.chance(4)) {
                    Value::Null
                } else {
                    random_value(rng, c.ty)
                }
            })
            .collect();
        rows.push((ts, values));
    }
    Batch::from_rows(schema.clone(), rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap()
}

/// Rows as bits (NaN and -0.0 compared exactly).
#[cfg(feature = "host")]
fn rows(batch: &Batch) -> Vec<(i64, Vec<u64>)> {
    let mut out = Vec::new();
    batch.for_each_row(|ts, values| {
        let bits = values
            .iter()
            .map(|v| match v {
                Value::Null => u64::MAX,
                Value::F32(f) => f.to_bits().into(),
                Value::F64(f) => f.to_bits(),
                Value::Int(i) => *i as u64,
            })
            .collect();
        out.push((ts, bits));
    });
    out
}

#[cfg(feature = "host")]
fn assert_same(ours: &DecodedFile, theirs: &DecodedFile, what: &str) {
    assert_eq!(ours.batch.schema(), theirs.batch.schema(), "{what}");
    assert_eq!(rows(&ours.batch), rows(&theirs.batch), "{what}");
    assert_eq!(ours.key_values, theirs.key_values, "{what}");
    assert_eq!(
        ours.device_column_values, theirs.device_column_values,
        "{what}"
    );
    assert_eq!(
        ours.batch.time_estimated(),
        theirs.batch.time_estimated(),
        "{what}"
    );
}

fn encode(batch: &Batch, options: EncodeOptions, reference: bool) -> Vec<u8> {
    let device = DeviceId::new("dev-1").unwrap();
    let meta = FileMetadata {
        device_id: &device,
        object_key: "raw/k.parquet",
    };
    #[cfg(feature = "host")]
    if reference {
        return ReferenceEncoder::new(batch.schema().clone(), options)
            .unwrap()
            .encode_to_vec(batch, &meta)
            .unwrap();
    }
    assert!(!reference || cfg!(feature = "host"));
    Encoder::new(batch.schema().clone(), options)
        .unwrap()
        .encode_to_vec(batch, &meta)
        .unwrap()
}

#[cfg(feature = "host")]
#[test]
fn every_option_reads_as_the_parquet_crate_reads_it() {
    let mut rng = Rng(0x5EED_0001);
    let options = all_options();
    assert!(options.len() >= 3 * 3 * 2 * 2 * 4, "{}", options.len());
    for (i, &o) in options.iter().enumerate() {
        let schema = random_schema(&mut rng);
        let batch = random_batch(&mut rng, &schema);
        for reference in [false, true] {
            let bytes = encode(&batch, o, reference);
            let what = format!("{o:?} reference writer {reference} (case {i})");
            let ours = decode::decode_slice(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            let theirs = decode::reference::decode(Bytes::from(bytes.clone())).unwrap();
            assert_same(&ours, &theirs, &what);
            assert_eq!(rows(&ours.batch), rows(&batch), "{what}");
        }
    }
}

#[cfg(feature = "host")]
#[test]
fn random_batches_read_as_the_parquet_crate_reads_them() {
    let mut rng = Rng(0x5EED_0002);
    let options = all_options();
    for i in 0..150 {
        let schema = random_schema(&mut rng);
        let batch = random_batch(&mut rng, &schema);
        let o = options[rng.below(options.len() as u64) as usize];
        let bytes = encode(&batch, o, rng.chance(3));
        let what = format!("{o:?} (batch {i})");
        let ours = decode::decode_slice(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        let theirs = decode::reference::decode(Bytes::from(bytes.clone())).unwrap();
        assert_same(&ours, &theirs, &what);
        let footer = pqread::read_footer(&bytes).unwrap();
        assert_eq!(footer.num_rows, batch.len() as u64);
    }
}

/// DOUBLE columns (what the reader must read once the schema has them): PLAIN,
/// BYTE_STREAM_SPLIT and dictionary pages written by the parquet crate.
#[cfg(feature = "host")]
#[test]
fn double_columns_read_in_every_encoding() {
    use parquet::basic::Encoding;
    use parquet::data_type::DoubleType;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    let schema = Arc::new(
        parse_message_type("message m { required double a; optional double b; }").unwrap(),
    );
    let a: Vec<f64> = (0..500)
        .map(|i| f64::from(i) * 0.1 - 7.0 + if i % 9 == 0 { 1e300 } else { 0.0 })
        .collect();
    let b_levels: Vec<i16> = (0..500).map(|i| i16::from(i % 4 != 0)).collect();
    let b: Vec<f64> = (0..500)
        .filter(|i| i % 4 != 0)
        .map(|i| -f64::from(i % 3))
        .collect();
    for (encoding, dictionary) in [
        (Encoding::PLAIN, false),
        (Encoding::BYTE_STREAM_SPLIT, false),
        (Encoding::PLAIN, true),
    ] {
        let props = WriterProperties::builder()
            .set_dictionary_enabled(dictionary)
            .set_encoding(encoding)
            .set_data_page_row_count_limit(64)
            .set_write_batch_size(64)
            .build();
        let mut out = Vec::new();
        let mut writer = SerializedFileWriter::new(&mut out, schema.clone(), props.into()).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<DoubleType>()
            .write_batch(&a, None, None)
            .unwrap();
        col.close().unwrap();
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<DoubleType>()
            .write_batch(&b, Some(&b_levels), None)
            .unwrap();
        col.close().unwrap();
        group.close().unwrap();
        writer.close().unwrap();

        let footer = pqread::read_footer(&out).unwrap();
        assert_eq!(footer.num_rows, 500);
        let col_a = pqread::read_column(&out, &footer, 0).unwrap();
        assert_eq!(col_a.values, Values::F64(a.clone()), "{encoding:?}");
        assert_eq!(col_a.present, None);
        let col_b = pqread::read_column(&out, &footer, 1).unwrap();
        assert_eq!(col_b.values, Values::F64(b.clone()), "{encoding:?}");
        let present: Vec<bool> = b_levels.iter().map(|&l| l == 1).collect();
        assert_eq!(col_b.present, Some(present));
    }
}

/// Files to mutate: small ones of every codec and encoding, with nulls.
fn fuzz_corpus() -> Vec<Vec<u8>> {
    let mut rng = Rng(0x5EED_0003);
    let mut out = Vec::new();
    for codec in Codec::ALL.into_iter().filter(|c| c.is_available()) {
        for float_encoding in FloatEncoding::ALL {
            for int in IntEncoding::ALL {
                let schema = random_schema(&mut rng);
                let mut batch = random_batch(&mut rng, &schema);
                while batch.len() > 300 {
                    batch = random_batch(&mut rng, &schema);
                }
                let options = EncodeOptions {
                    codec,
                    float_encoding,
                    ts_encoding: int,
                    int_encoding: int,
                    statistics: Statistics::Chunk,
                };
                out.push(encode(&batch, options, false));
            }
        }
    }
    out
}

/// Every read path the spool, the holding and verification use.
fn read_everything(bytes: &[u8]) {
    let _ = read_facts(bytes);
    let _ = verify_rows(bytes);
    if let Ok(footer) = pqread::read_footer(bytes) {
        for i in 0..footer.columns.len() {
            let _ = pqread::read_column(bytes, &footer, i);
        }
    }
}

#[test]
fn malformed_files_are_errors_never_panics() {
    let corpus = fuzz_corpus();
    let mut rng = Rng(0x5EED_0004);
    for bytes in &corpus {
        decode::decode_slice(bytes).unwrap();
        // Every truncation.
        for cut in 0..bytes.len() {
            assert!(decode::decode_slice(&bytes[..cut]).is_err(), "cut at {cut}");
            let _ = read_facts(&bytes[..cut]);
        }
    }
    // Bit flips, byte overwrites and lying lengths (a varint or u32 made huge).
    let mut changed_but_read = 0;
    for round in 0..6000 {
        let mut bytes = corpus[round % corpus.len()].clone();
        let edits = 1 + rng.below(3);
        for _ in 0..edits {
            let at = rng.below(bytes.len() as u64) as usize;
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = rng.next() as u8,
                2 => {
                    // A long varint or 0xFF run where a length was.
                    let end = (at + 1 + rng.below(5) as usize).min(bytes.len());
                    bytes[at..end].fill(0xFF);
                }
                _ => {
                    let len = bytes.len();
                    if at + 4 <= len {
                        bytes[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
                    }
                }
            }
        }
        read_everything(&bytes);
        if decode::decode_slice(&bytes).is_ok() && bytes != corpus[round % corpus.len()] {
            changed_but_read += 1;
        }
    }
    // Flips in values and statistics still read (Parquet has no page checksums here):
    // the point of the loop is that nothing panics.
    assert!(changed_but_read < 6000, "{changed_but_read}");
}

#[test]
fn lying_lengths_in_the_footer_are_errors() {
    let mut rng = Rng(0x5EED_0005);
    let schema = random_schema(&mut rng);
    let batch = random_batch(&mut rng, &schema);
    let bytes = encode(&batch, EncodeOptions::default(), false);
    let len = bytes.len();
    // The footer length says more than the file holds.
    let mut lying = bytes.clone();
    lying[len - 8..len - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = pqread::read_footer(&lying).unwrap_err();
    assert!(e.to_string().contains("footer length"), "{e}");
    // num_rows = 2^40: refused before anything is allocated for it.
    let footer_len = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    let footer = &bytes[len - 8 - footer_len..len - 8];
    let rows = batch.len() as u64;
    let mut zig = Vec::new();
    let mut v = rows << 1;
    while v >= 0x80 {
        zig.push(v as u8 | 0x80);
        v >>= 7;
    }
    zig.push(v as u8);
    // Field 3 (num_rows, i64) follows the schema list: find "0x16 <zigzag rows>".
    let needle: Vec<u8> = std::iter::once(0x16).chain(zig.iter().copied()).collect();
    let at = footer
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("num_rows field in the footer");
    let mut huge = bytes[..len - 8 - footer_len].to_vec();
    huge.extend_from_slice(&footer[..at]);
    huge.extend_from_slice(&[0x16, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    huge.extend_from_slice(&footer[at + needle.len()..]);
    let new_len = (huge.len() - (len - 8 - footer_len)) as u32;
    huge.extend_from_slice(&new_len.to_le_bytes());
    huge.extend_from_slice(b"PAR1");
    let e = pqread::read_footer(&huge).unwrap_err();
    assert!(e.to_string().contains("rows"), "{e}");
}

/// The firmware's build (LZ4 only) reads and writes no other codec, and says so.
#[cfg(not(feature = "snappy"))]
#[test]
fn a_codec_left_out_of_the_build_is_a_clear_error() {
    let mut rng = Rng(0x5EED_0006);
    let schema = random_schema(&mut rng);
    let batch = random_batch(&mut rng, &schema);
    let e = Encoder::new(
        schema.clone(),
        EncodeOptions {
            codec: Codec::Snappy,
            ..EncodeOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("snappy"), "{e}");
    // An LZ4 file whose chunks claim Snappy (codec 1): the footer's ColumnMetaData
    // field 4 is `0x15 <zigzag 7>` = `0x15 0x0E` right after the path list.
    let mut bytes = encode(&batch, EncodeOptions::default(), false);
    let len = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    let start = len - 8 - footer_len;
    let mut changed = 0;
    for i in start..len - 9 {
        if bytes[i] == 0x15 && bytes[i + 1] == 0x0E && bytes[i + 2] == 0x16 {
            bytes[i + 1] = 0x02;
            changed += 1;
        }
    }
    assert!(changed >= 2, "{changed}");
    let e = decode::decode_slice(&bytes).unwrap_err().to_string();
    assert!(e.contains("snappy") && e.contains("cargo feature"), "{e}");
}
