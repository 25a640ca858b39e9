//! Shared input of the size probes: rows and options come from the command line, so
//! the optimiser cannot fold the work away and every codec stays reachable.

use std::sync::Arc;

use sensorlake::batch::{Batch, Value};
use sensorlake::encode::{Codec, EncodeOptions};
use sensorlake::schema::{Channel, Schema};

/// A 178-row batch of `channels` float channels derived from `seed`, and options whose
/// codec is named by `codec`.
pub fn input(seed: u64, channels: usize, codec: &str) -> (Batch, EncodeOptions) {
    let schema = Arc::new(
        Schema::new(
            (0..channels)
                .map(|i| Channel::f32(&format!("c{i}")))
                .collect(),
        )
        .expect("valid names"),
    );
    let rows: Vec<(i64, Vec<Value>)> = (0..178u64)
        .map(|r| {
            let values = (0..channels)
                .map(|c| Value::F32(((seed ^ (r * 31 + c as u64)) % 1000) as f32 / 10.0))
                .collect();
            (1_709_280_000_000_000 + r as i64 * 5_000_000, values)
        })
        .collect();
    let batch = Batch::from_rows(schema, rows.iter().map(|(t, v)| (*t, v.as_slice())))
        .expect("rows fit the schema");
    let options = EncodeOptions {
        codec: Codec::parse(codec).unwrap_or(Codec::Lz4),
        ..EncodeOptions::default()
    };
    (batch, options)
}
