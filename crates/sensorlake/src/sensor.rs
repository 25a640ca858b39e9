//! Sensor sources: what the sampling task reads once per period.
//!
//! A [`SensorSource`] is one device (an I2C IMU, the ESP32-S3's internal temperature
//! sensor, one ADC channel) that fills one or more channels. [`Sensors`] puts a
//! device's sources together: its [`Schema`] is their channels in order, and
//! [`Sensors::read_row`] reads all of them into one row. A source that fails to answer
//! (a bus error, a sensor unplugged) gives nulls for its channels in that row, so
//! every channel of a [`Sensors`] schema is nullable: one bad sensor never stops the
//! others from being recorded.
//!
//! ```
//! use sensorlake::sensor::{SensorError, SensorSource, Sensors};
//! use sensorlake::{Channel, ChannelType, Value};
//!
//! /// A user driver: here a fake accelerometer axis.
//! struct Accel { x: i16 }
//!
//! impl SensorSource for Accel {
//!     fn name(&self) -> &str { "accel" }
//!     fn channels(&self) -> Vec<Channel> {
//!         vec![Channel::new("acc_x", ChannelType::I16).unit("mg")]
//!     }
//!     fn read(&mut self, out: &mut [Value]) -> Result<(), SensorError> {
//!         self.x = self.x.wrapping_add(1);
//!         out[0] = self.x.into();
//!         Ok(())
//!     }
//! }
//!
//! let mut sensors = Sensors::new(vec![Box::new(Accel { x: 0 })]).unwrap();
//! let mut row = Vec::new();
//! sensors.read_row(&mut row);
//! assert_eq!(row, vec![Value::Int(1)]);
//! ```

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::batch::Value;
use crate::schema::{Channel, ChannelType, Schema, SchemaError};

/// A sensor did not give a reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorError(pub String);

impl fmt::Display for SensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SensorError {}

/// One sensor device: the channels it fills and how to read them.
///
/// Implement it for your own drivers (an I2C IMU, a UART particle counter); the
/// firmware ships sources for the ESP32-S3's internal temperature sensor and ADC1.
pub trait SensorSource {
    /// A short name for logs (`"imu"`, `"adc1_gpio1"`).
    fn name(&self) -> &str;
    /// The channels this source fills, in order. Names must be unique on the device.
    fn channels(&self) -> Vec<Channel>;
    /// Reads one sample: one value per channel into `out` (`out.len()` is the number
    /// of channels, pre-filled with [`Value::Null`]). On error the row gets nulls for
    /// this source's channels.
    fn read(&mut self, out: &mut [Value]) -> Result<(), SensorError>;
}

/// [`Sensors`] could not be put together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SensorsError {
    /// A source declares no channel.
    NoChannels {
        /// The source's name.
        source: String,
    },
    /// The channels do not form a valid schema (duplicate or bad names, none at all).
    Schema(SchemaError),
}

impl fmt::Display for SensorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoChannels { source } => write!(f, "sensor source {source:?} has no channel"),
            Self::Schema(e) => write!(f, "sensor channels: {e}"),
        }
    }
}

impl std::error::Error for SensorsError {}

/// Counters of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// The source's name.
    pub name: String,
    /// Reads that gave values.
    pub reads: u64,
    /// Reads that failed (the row got nulls).
    pub failures: u64,
    /// The last failure, if the source is failing now.
    pub failing: Option<String>,
}

/// A sensor source that can move to the sampling task.
pub type BoxedSource = Box<dyn SensorSource + Send>;

/// All sources of a device, read together into one row.
pub struct Sensors {
    sources: Vec<BoxedSource>,
    spans: Vec<Range<usize>>,
    schema: Arc<Schema>,
    stats: Vec<SourceStats>,
}

impl fmt::Debug for Sensors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sensors")
            .field("schema", &self.schema)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Sensors {
    /// Sources in row order. The schema is their channels, each made nullable (a
    /// failed read gives nulls).
    pub fn new(sources: Vec<BoxedSource>) -> Result<Self, SensorsError> {
        let mut channels = Vec::new();
        let mut spans = Vec::with_capacity(sources.len());
        let mut stats = Vec::with_capacity(sources.len());
        for source in &sources {
            let own = source.channels();
            if own.is_empty() {
                return Err(SensorsError::NoChannels {
                    source: source.name().to_string(),
                });
            }
            let start = channels.len();
            channels.extend(own.into_iter().map(Channel::nullable));
            spans.push(start..channels.len());
            stats.push(SourceStats {
                name: source.name().to_string(),
                ..SourceStats::default()
            });
        }
        let schema = Schema::new(channels).map_err(SensorsError::Schema)?;
        Ok(Self {
            sources,
            spans,
            schema: Arc::new(schema),
            stats,
        })
    }

    /// The rows' schema: every source's channels, in order, all nullable.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Reads every source into `row` (resized to the schema). A source that fails, or
    /// answers a value its channel cannot hold, gives nulls; a change between working
    /// and failing is logged once, not on every read.
    pub fn read_row(&mut self, row: &mut Vec<Value>) {
        row.clear();
        row.resize(self.schema.channels.len(), Value::Null);
        for ((source, span), stats) in self
            .sources
            .iter_mut()
            .zip(&self.spans)
            .zip(&mut self.stats)
        {
            let out = &mut row[span.clone()];
            let result = source
                .read(out)
                .and_then(|()| check_values(&self.schema.channels[span.clone()], out));
            match result {
                Ok(()) => {
                    stats.reads += 1;
                    if stats.failing.take().is_some() {
                        log::info!("sensor {}: reading again", stats.name);
                    }
                }
                Err(e) => {
                    out.fill(Value::Null);
                    stats.failures += 1;
                    if stats.failing.is_none() {
                        log::warn!("sensor {}: no reading ({e}); recording nulls", stats.name);
                    }
                    stats.failing = Some(e.0);
                }
            }
        }
    }

    /// Counters per source, in order.
    pub fn stats(&self) -> &[SourceStats] {
        &self.stats
    }
}

/// Checks that each value fits its channel (type and integer range).
fn check_values(channels: &[Channel], values: &[Value]) -> Result<(), SensorError> {
    for (channel, value) in channels.iter().zip(values) {
        let fits = match (channel.ty, *value) {
            (_, Value::Null)
            | (ChannelType::F32, Value::F32(_))
            | (ChannelType::F64, Value::F64(_)) => true,
            (ty, Value::Int(v)) if ty.is_integer() => {
                let (lo, hi) = ty.int_range();
                (lo..=hi).contains(&v)
            }
            _ => false,
        };
        if !fits {
            return Err(SensorError(format!(
                "value {value:?} does not fit channel {} ({})",
                channel.name,
                channel.ty.name()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that answers from a script of results.
    struct Scripted {
        name: &'static str,
        channels: Vec<Channel>,
        answers: Vec<Result<Vec<Value>, SensorError>>,
    }

    impl SensorSource for Scripted {
        fn name(&self) -> &str {
            self.name
        }
        fn channels(&self) -> Vec<Channel> {
            self.channels.clone()
        }
        fn read(&mut self, out: &mut [Value]) -> Result<(), SensorError> {
            let answer = self.answers.remove(0)?;
            out.copy_from_slice(&answer);
            Ok(())
        }
    }

    fn temp(answers: Vec<Result<Vec<Value>, SensorError>>) -> BoxedSource {
        Box::new(Scripted {
            name: "temp",
            channels: vec![Channel::f32("temp_c").unit("degC")],
            answers,
        })
    }

    fn adc(answers: Vec<Result<Vec<Value>, SensorError>>) -> BoxedSource {
        Box::new(Scripted {
            name: "adc",
            channels: vec![
                Channel::new("adc_gpio1_mv", ChannelType::I16),
                Channel::new("adc_gpio2_mv", ChannelType::I16),
            ],
            answers,
        })
    }

    #[test]
    fn schema_is_the_sources_channels_in_order_all_nullable() {
        let sensors = Sensors::new(vec![temp(vec![]), adc(vec![])]).unwrap();
        let names: Vec<&str> = sensors
            .schema()
            .channels
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["temp_c", "adc_gpio1_mv", "adc_gpio2_mv"]);
        assert!(sensors.schema().channels.iter().all(|c| c.nullable));
        assert_eq!(sensors.schema().channels[0].unit.as_deref(), Some("degC"));
    }

    #[test]
    fn a_failing_source_gives_nulls_and_the_others_still_read() {
        let mut sensors = Sensors::new(vec![
            temp(vec![
                Ok(vec![Value::F32(21.5)]),
                Err(SensorError("i2c timeout".into())),
                Ok(vec![Value::F32(22.0)]),
            ]),
            adc(vec![
                Ok(vec![Value::Int(1200), Value::Int(40)]),
                Ok(vec![Value::Int(1201), Value::Int(41)]),
                Ok(vec![Value::Int(1202), Value::Int(42)]),
            ]),
        ])
        .unwrap();
        let mut row = Vec::new();
        sensors.read_row(&mut row);
        assert_eq!(row, [Value::F32(21.5), Value::Int(1200), Value::Int(40)]);
        sensors.read_row(&mut row);
        assert_eq!(row, [Value::Null, Value::Int(1201), Value::Int(41)]);
        assert_eq!(sensors.stats()[0].failing.as_deref(), Some("i2c timeout"));
        sensors.read_row(&mut row);
        assert_eq!(row, [Value::F32(22.0), Value::Int(1202), Value::Int(42)]);
        assert_eq!(sensors.stats()[0].reads, 2);
        assert_eq!(sensors.stats()[0].failures, 1);
        assert_eq!(sensors.stats()[0].failing, None);
        assert_eq!(sensors.stats()[1].reads, 3);
    }

    #[test]
    fn a_value_that_does_not_fit_its_channel_is_a_failure_of_that_source() {
        let mut sensors = Sensors::new(vec![
            temp(vec![Ok(vec![Value::F32(20.0)])]),
            adc(vec![Ok(vec![Value::Int(40_000), Value::Int(1)])]),
        ])
        .unwrap();
        let mut row = Vec::new();
        sensors.read_row(&mut row);
        assert_eq!(row, [Value::F32(20.0), Value::Null, Value::Null]);
        let why = sensors.stats()[1].failing.clone().unwrap();
        assert!(
            why.contains("adc_gpio1_mv") && why.contains("40000"),
            "{why}"
        );
    }

    #[test]
    fn duplicate_channel_names_and_empty_sources_are_refused() {
        let err = Sensors::new(vec![temp(vec![]), temp(vec![])]).unwrap_err();
        assert!(err.to_string().contains("temp_c"), "{err}");
        let empty = Box::new(Scripted {
            name: "nothing",
            channels: vec![],
            answers: vec![],
        });
        let err = Sensors::new(vec![empty]).unwrap_err();
        assert_eq!(
            err,
            SensorsError::NoChannels {
                source: "nothing".into()
            }
        );
    }
}
