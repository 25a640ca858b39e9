//! Every codec × encoding × statistics level round-trips real sensor data bit for bit,
//! read back with the `parquet` crate's own reader.
#![cfg(feature = "host")]

use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, LogicalType, TimeUnit};
use parquet::file::reader::{FileReader, SerializedFileReader};
use sensorlake::batch::{Batch, Value};
use sensorlake::decode::decode;
use sensorlake::encode::{
    Codec, EncodeOptions, Encoder, FileMetadata, FloatEncoding, IntEncoding, META_DEVICE_ID,
    META_LIBRARY_VERSION, META_OBJECT_KEY, META_SCHEMA_VERSION, Statistics,
};
use sensorlake::key::DeviceId;
use sensorlake::schema::{Channel, ChannelType, Schema};

fn basicmotions(rows: usize) -> Batch {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/basicmotions.csv");
    let text = std::fs::read_to_string(path).expect("data/basicmotions.csv is in the repository");
    let text: String = text
        .lines()
        .take(rows + 1)
        .map(|l| format!("{l}\n"))
        .collect();
    let schema = Arc::new(sensorlake::csv::infer_schema(&text, &[]).unwrap());
    assert!(schema.channels.iter().all(|c| c.ty == ChannelType::F32));
    let parsed = sensorlake::csv::read_rows(&text, &schema).unwrap();
    Batch::from_rows(schema, parsed.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap()
}

fn mixed() -> Batch {
    let schema = Arc::new(
        Schema::new(vec![
            Channel::f32("temp").unit("degC"),
            Channel::f32("pm25").nullable(),
            Channel::new("acc", ChannelType::I16).scale(0.000_598),
            Channel::new("count", ChannelType::I32).nullable(),
            Channel::new("big", ChannelType::I64),
            Channel::new("wide", ChannelType::F64).nullable(),
        ])
        .unwrap(),
    );
    let rows: Vec<(i64, Vec<Value>)> = (0..300i64)
        .map(|i| {
            (
                1_709_280_000_000_000 + i * 5_000_000,
                vec![
                    Value::F32(20.0 + (i as f32 * 0.37).sin()),
                    if i % 7 == 0 {
                        Value::Null
                    } else {
                        Value::F32(i as f32 * 0.5)
                    },
                    Value::Int((i * 37 % 2000) - 1000),
                    if i % 3 == 0 {
                        Value::Null
                    } else {
                        Value::Int(i * 1000)
                    },
                    Value::Int(i64::MAX - i),
                    match i % 6 {
                        0 => Value::Null,
                        1 => Value::F64(1e39 + i as f64),
                        2 => Value::F64(-5e-324),
                        3 => Value::F64(-0.0),
                        4 => Value::F64(f64::MAX),
                        _ => Value::F64(0.1234567891 * i as f64),
                    },
                ],
            )
        })
        .collect();
    Batch::from_rows(schema, rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap()
}

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

fn all_options() -> Vec<EncodeOptions> {
    let mut all = Vec::new();
    for codec in Codec::ALL.into_iter().filter(|c| c.is_available()) {
        for float_encoding in FloatEncoding::ALL {
            for ts_encoding in IntEncoding::ALL {
                for statistics in Statistics::ALL {
                    all.push(EncodeOptions {
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
    all
}

#[test]
fn every_option_round_trips_bit_equal() {
    let device = DeviceId::new("gw-1").unwrap();
    for batch in [basicmotions(178), mixed()] {
        let expected = rows(&batch);
        for options in all_options() {
            let mut encoder = Encoder::new(batch.schema().clone(), options).unwrap();
            let meta = FileMetadata {
                device_id: &device,
                object_key: "raw/k.parquet",
            };
            let bytes = Bytes::from(encoder.encode_to_vec(&batch, &meta).unwrap());
            let decoded = decode(bytes.clone()).unwrap();
            assert_eq!(rows(&decoded.batch), expected, "{options:?}");
            assert_eq!(decoded.batch.schema(), batch.schema(), "{options:?}");

            // What the file says about itself, through the parquet crate's reader.
            let reader = SerializedFileReader::new(bytes).unwrap();
            let meta = reader.metadata();
            assert_eq!(meta.num_row_groups(), 1);
            let group = meta.row_group(0);
            let ts = group.column(0);
            let expected_codec = match options.codec {
                Codec::None => Compression::UNCOMPRESSED,
                Codec::Snappy => Compression::SNAPPY,
                Codec::Lz4 => Compression::LZ4_RAW,
                Codec::Gzip => Compression::GZIP(Default::default()),
                Codec::Zstd => Compression::ZSTD(Default::default()),
            };
            assert_eq!(
                std::mem::discriminant(&ts.compression()),
                std::mem::discriminant(&expected_codec)
            );
            let has = |col: usize, e: Encoding| group.column(col).encodings().any(|x| x == e);
            match options.ts_encoding {
                IntEncoding::Delta => assert!(has(0, Encoding::DELTA_BINARY_PACKED)),
                IntEncoding::Plain => assert!(has(0, Encoding::PLAIN)),
            }
            match options.float_encoding {
                FloatEncoding::ByteStreamSplit => assert!(has(1, Encoding::BYTE_STREAM_SPLIT)),
                FloatEncoding::Dictionary => assert!(has(1, Encoding::RLE_DICTIONARY)),
                FloatEncoding::Plain => assert!(!has(1, Encoding::RLE_DICTIONARY)),
            }
            assert_eq!(
                ts.statistics().is_some(),
                options.statistics != Statistics::None,
                "{options:?}"
            );
            if let Some(wide) = batch.schema().channel_index("wide") {
                let column = group.column(1 + wide);
                assert_eq!(column.column_type(), parquet::basic::Type::DOUBLE);
                if matches!(options.statistics, Statistics::Chunk | Statistics::Page) {
                    match column.statistics() {
                        Some(parquet::file::statistics::Statistics::Double(s)) => {
                            assert_eq!(s.min_opt(), Some(&-5e-324), "{options:?}");
                            assert_eq!(s.max_opt(), Some(&f64::MAX), "{options:?}");
                            assert_eq!(s.null_count_opt(), Some(50), "{options:?}");
                        }
                        other => panic!("DOUBLE statistics expected, got {other:?}"),
                    }
                }
                match options.float_encoding {
                    FloatEncoding::ByteStreamSplit => {
                        assert!(has(1 + wide, Encoding::BYTE_STREAM_SPLIT))
                    }
                    FloatEncoding::Dictionary => assert!(has(1 + wide, Encoding::RLE_DICTIONARY)),
                    FloatEncoding::Plain => assert!(has(1 + wide, Encoding::PLAIN)),
                }
            }
        }
    }
}

#[test]
fn timestamp_is_utc_micros_and_metadata_is_present() {
    let batch = basicmotions(10);
    let device = DeviceId::new("watch-7").unwrap();
    let mut encoder = Encoder::new(batch.schema().clone(), EncodeOptions::default()).unwrap();
    let key = "raw/device_id=watch-7/x.parquet";
    let bytes = encoder
        .encode_to_vec(
            &batch,
            &FileMetadata {
                device_id: &device,
                object_key: key,
            },
        )
        .unwrap();
    let reader = SerializedFileReader::new(Bytes::from(bytes.clone())).unwrap();
    let file = reader.metadata().file_metadata();
    let ts = file.schema_descr().column(0);
    assert_eq!(ts.name(), "ts");
    match ts.logical_type_ref() {
        Some(LogicalType::Timestamp(t)) => {
            assert!(t.is_adjusted_to_u_t_c);
            assert_eq!(t.unit, TimeUnit::MICROS);
        }
        other => panic!("ts logical type is {other:?}"),
    }
    let decoded = decode(Bytes::from(bytes)).unwrap();
    assert_eq!(decoded.meta(META_DEVICE_ID), Some("watch-7"));
    assert_eq!(decoded.meta(META_OBJECT_KEY), Some(key));
    assert_eq!(decoded.meta(META_SCHEMA_VERSION), Some("1"));
    assert_eq!(
        decoded.meta(META_LIBRARY_VERSION),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(file.num_rows(), 10);
}

#[test]
fn encoding_is_deterministic() {
    let batch = mixed();
    let device = DeviceId::new("d").unwrap();
    let meta = FileMetadata {
        device_id: &device,
        object_key: "k",
    };
    let mut encoder = Encoder::new(batch.schema().clone(), EncodeOptions::default()).unwrap();
    let a = encoder.encode_to_vec(&batch, &meta).unwrap();
    let b = encoder.encode_to_vec(&batch, &meta).unwrap();
    assert_eq!(a, b, "a retried encode must give the same bytes");
}

#[test]
fn garbage_and_truncated_files_are_errors_not_panics() {
    let batch = mixed();
    let device = DeviceId::new("d").unwrap();
    let mut encoder = Encoder::new(batch.schema().clone(), EncodeOptions::default()).unwrap();
    let bytes = encoder
        .encode_to_vec(
            &batch,
            &FileMetadata {
                device_id: &device,
                object_key: "k",
            },
        )
        .unwrap();
    assert!(decode(Bytes::from_static(b"not parquet at all")).is_err());
    for cut in [0, 4, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            decode(Bytes::copy_from_slice(&bytes[..cut])).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn parquet_crate_writer_and_ours_hold_the_same_rows() {
    use sensorlake::encode::ReferenceEncoder;
    let device = DeviceId::new("gw-1").unwrap();
    let meta = FileMetadata {
        device_id: &device,
        object_key: "raw/k.parquet",
    };
    for batch in [basicmotions(178), mixed()] {
        for options in all_options() {
            let ours = Encoder::new(batch.schema().clone(), options)
                .unwrap()
                .encode_to_vec(&batch, &meta)
                .unwrap();
            let reference = ReferenceEncoder::new(batch.schema().clone(), options)
                .unwrap()
                .encode_to_vec(&batch, &meta)
                .unwrap();
            let a = decode(Bytes::from(ours)).unwrap();
            let b = decode(Bytes::from(reference)).unwrap();
            assert_eq!(rows(&a.batch), rows(&b.batch), "{options:?}");
            assert_eq!(a.batch.schema(), b.batch.schema(), "{options:?}");
            let mut ka = a.key_values.clone();
            let mut kb = b.key_values.clone();
            ka.sort();
            kb.sort();
            assert_eq!(ka, kb, "{options:?}");
        }
    }
}

/// A writer that fails like a full disk after `room` bytes.
struct FullDisk {
    room: usize,
}

impl std::io::Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device",
            ));
        }
        self.room -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_disk_is_a_clear_error_at_any_point_of_the_file() {
    let batch = mixed();
    let device = DeviceId::new("d").unwrap();
    let meta = FileMetadata {
        device_id: &device,
        object_key: "k",
    };
    let mut encoder = Encoder::new(batch.schema().clone(), EncodeOptions::default()).unwrap();
    let size = encoder.encode_to_vec(&batch, &meta).unwrap().len();
    for room in (0..size).step_by(7) {
        let err = encoder
            .encode(&batch, &meta, FullDisk { room })
            .expect_err("the output ran out of room");
        assert!(
            matches!(err, sensorlake::encode::EncodeError::Io(_)),
            "{err:?}"
        );
        assert!(err.to_string().contains("No space left"), "{err}");
    }
    // The encoder is still usable afterwards.
    assert_eq!(encoder.encode_to_vec(&batch, &meta).unwrap().len(), size);
}
