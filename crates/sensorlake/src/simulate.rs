//! Realistic simulated sensors, for the demo, benchmarks and the agent's `simulate`
//! source.
//!
//! Every value is a pure function of (profile, device id, seed, row index), so a
//! restarted agent resumes exactly where it stopped and a test can recompute any row.
//! Values are quantised the way the real sensors deliver them.
//!
//! - `enviro`: an Enviro+ environmental station every 5 s (BME280 temperature,
//!   humidity and pressure, compensated and raw; MICS6814 gas resistances; LTR-559 light
//!   and proximity; PMS5003 particulate mass and counts), named and ordered as the
//!   OpenSensor.Space network stores them, with daily cycles, noise, quantisation and
//!   occasional failed PMS5003 reads (null).
//! - `imu`: a 9-axis IMU with fusion output at 64 Hz, 14 channels (accelerometer,
//!   gyroscope, magnetometer, orientation quaternion, die temperature) as 16-bit raw
//!   counts with a scale per channel; motion segments (rest, walk, run, shake).

use std::f64::consts::TAU;
use std::sync::Arc;

use crate::batch::Value;
use crate::schema::{Channel, ChannelType, Schema};

/// Which simulated station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Environmental station, one row every 5 s.
    Enviro,
    /// 14-channel IMU at 64 Hz, as floats (raw counts × scale).
    Imu,
    /// The same IMU as integer raw counts (`i16` channels with a scale).
    ImuRaw,
}

crate::named_options! {
    Profile, String, |other| format!(
        "unknown profile {other:?}: expected {}",
        crate::options::one_of(Profile::NAMES)
    );
    Enviro = "enviro",
    Imu = "imu",
    ImuRaw = "imu-raw" | "imu_raw",
}

impl Profile {
    /// Time between rows, in microseconds.
    pub fn interval_us(self) -> i64 {
        match self {
            Self::Enviro => 5_000_000,
            Self::Imu | Self::ImuRaw => 15_625, // 64 Hz
        }
    }
}

/// (name, unit, scale) of the IMU channels: raw count × scale = value in unit.
const IMU: [(&str, &str, f64); 14] = [
    ("acc_x", "g", 1.0 / 8192.0),
    ("acc_y", "g", 1.0 / 8192.0),
    ("acc_z", "g", 1.0 / 8192.0),
    ("gyr_x", "dps", 1.0 / 65.5),
    ("gyr_y", "dps", 1.0 / 65.5),
    ("gyr_z", "dps", 1.0 / 65.5),
    ("mag_x", "uT", 0.15),
    ("mag_y", "uT", 0.15),
    ("mag_z", "uT", 0.15),
    ("quat_w", "1", 1.0 / 16384.0),
    ("quat_x", "1", 1.0 / 16384.0),
    ("quat_y", "1", 1.0 / 16384.0),
    ("quat_z", "1", 1.0 / 16384.0),
    ("temp", "degC", 1.0 / 256.0),
];

/// A deterministic simulated device.
#[derive(Debug, Clone)]
pub struct Simulator {
    profile: Profile,
    key: u64,
    start_us: i64,
    schema: Arc<Schema>,
}

/// SplitMix64: a counter-based generator, so any row can be computed on its own.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Simulator {
    /// A simulated device whose first row is at `start_us`.
    pub fn new(profile: Profile, device_id: &str, seed: u64, start_us: i64) -> Self {
        Self {
            profile,
            key: mix(fnv1a(device_id) ^ mix(seed)),
            start_us,
            schema: Arc::new(Self::schema_for(profile)),
        }
    }

    /// The schema of a profile's rows.
    pub fn schema_for(profile: Profile) -> Schema {
        let channels = match profile {
            Profile::Enviro => crate::opensensor::enviro_channels(),
            Profile::Imu => IMU
                .iter()
                .map(|&(name, unit, _)| Channel::f32(name).unit(unit))
                .collect(),
            Profile::ImuRaw => IMU
                .iter()
                .map(|&(name, unit, scale)| {
                    Channel::new(name, ChannelType::I16).unit(unit).scale(scale)
                })
                .collect(),
        };
        Schema::new(channels).expect("built-in profile schemas are valid")
    }

    /// The schema of this device's rows.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Timestamp of row `index`.
    pub fn ts_of(&self, index: u64) -> i64 {
        self.start_us + index as i64 * self.profile.interval_us()
    }

    /// The first row index at or after `ts_us`.
    pub fn index_at_or_after(&self, ts_us: i64) -> u64 {
        let step = self.profile.interval_us();
        let delta = ts_us - self.start_us;
        if delta <= 0 {
            0
        } else {
            ((delta + step - 1) / step) as u64
        }
    }

    /// Uniform in [0, 1) for (row, channel, purpose).
    fn uniform(&self, index: u64, channel: u64, purpose: u64) -> f64 {
        let h = mix(self.key ^ mix(index ^ mix(channel << 8 ^ purpose)));
        (h >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Approximately standard normal (sum of four uniforms, scaled).
    fn normal(&self, index: u64, channel: u64) -> f64 {
        let s: f64 = (0..4).map(|k| self.uniform(index, channel, k)).sum();
        (s - 2.0) * (3.0f64).sqrt()
    }

    /// Row `index`: its timestamp and values (in the schema's channel order).
    pub fn row(&self, index: u64, out: &mut Vec<Value>) -> i64 {
        out.clear();
        let ts = self.ts_of(index);
        match self.profile {
            Profile::Enviro => self.enviro(index, ts, out),
            Profile::Imu | Profile::ImuRaw => self.imu(index, ts, out),
        }
        ts
    }

    fn enviro(&self, index: u64, ts: i64, out: &mut Vec<Value>) {
        let hours = ts as f64 / 3.6e9;
        let day = ((hours - 9.0) / 24.0 * TAU).sin(); // peaks mid-afternoon
        let quant = |v: f64, step: f64| ((v / step).round() * step) as f32;
        let n = |c: u64| self.normal(index, c);
        let temperature = 14.0 + 6.0 * day + 0.05 * n(0);
        // The uncompensated BME280 reading: warmed by the Raspberry Pi's CPU.
        let raw_temperature = temperature + 4.0 + 0.3 * (hours * TAU / 3.0).sin() + 0.05 * n(10);
        let humidity = (65.0 - 15.0 * day + 0.3 * n(1)).clamp(0.0, 100.0);
        let raw_humidity = (humidity * 0.78 + 0.2 * n(11)).clamp(0.0, 100.0);
        let weather = ((hours / 50.0) * TAU).sin();
        let pressure = 1013.0 + 8.0 * weather + 0.02 * n(2);
        let traffic = (((hours - 8.0) / 12.0) * TAU).cos().max(0.0);
        let oxidised = 20.0 + 15.0 * traffic + 0.4 * n(3);
        let reducing = 200.0 - 80.0 * traffic + 2.0 * n(4);
        let nh3 = 60.0 + 10.0 * traffic + 0.8 * n(5);
        let lux =
            (800.0 * ((hours - 6.0) / 24.0 * TAU).sin().max(0.0) * (1.0 + 0.02 * n(6))).max(0.0);
        let proximity = (2.0 + 1.5 * n(12)).max(0.0).round();
        let pm_base = 4.0 + 6.0 * traffic + 1.5 * n(7).abs();
        // A PMS5003 read fails now and then (serial timeout): all its fields are null.
        let pm_failed = self.uniform(index, 99, 0) < 0.01;
        out.extend([
            Value::F32(quant(temperature, 0.01)),
            Value::F32(quant(raw_temperature, 0.01)),
            Value::F32(quant(pressure, 0.01)),
            Value::F32(quant(humidity, 0.01)),
            Value::F32(quant(raw_humidity, 0.01)),
            Value::F32(quant(oxidised, 0.001)),
            Value::F32(quant(reducing, 0.001)),
            Value::F32(quant(nh3, 0.001)),
            Value::F32(quant(lux, 0.01)),
            Value::F32(proximity as f32),
        ]);
        for factor in [0.7, 1.0, 1.3] {
            out.push(if pm_failed {
                Value::Null
            } else {
                Value::F32((pm_base * factor).round() as f32)
            });
        }
        // Particle counts per 0.1 L of air, by size bin (integers, stored as float32).
        for (bin, per_ug) in [120.0, 36.0, 6.0, 0.6, 0.15, 0.05].into_iter().enumerate() {
            let count = (pm_base * per_ug * (1.0 + 0.1 * n(13 + bin as u64)))
                .max(0.0)
                .round();
            out.push(if pm_failed {
                Value::Null
            } else {
                Value::F32(count as f32)
            });
        }
    }

    fn imu(&self, index: u64, ts: i64, out: &mut Vec<Value>) {
        // Motion segments of 10 s: rest, walk, run or shake, chosen per segment.
        let segment = index / 640;
        let kind = (mix(self.key ^ segment) % 4) as u32;
        let (amp, freq) = match kind {
            0 => (0.01, 0.0),
            1 => (0.3, 1.8),
            2 => (0.9, 2.8),
            _ => (1.5, 6.0),
        };
        let t = ts as f64 / 1e6;
        let phase = t * freq * TAU;
        let n = |c: u64, s: f64| s * self.normal(index, c);
        let heading = t * 0.01 + (segment % 7) as f64;
        let physical = [
            amp * phase.sin() + n(0, 0.004),
            amp * 0.5 * (phase * 0.5).cos() + n(1, 0.004),
            1.0 + amp * 0.7 * (phase * 2.0).sin() + n(2, 0.004),
            amp * 120.0 * phase.cos() + n(3, 0.3),
            amp * 60.0 * (phase + 1.0).sin() + n(4, 0.3),
            amp * 30.0 * (phase * 0.5).sin() + n(5, 0.3),
            20.0 * heading.cos() + n(6, 0.4),
            20.0 * heading.sin() + n(7, 0.4),
            -42.0 + n(8, 0.4),
            (heading / 2.0).cos(),
            amp * 0.05 * phase.sin(),
            amp * 0.05 * phase.cos(),
            (heading / 2.0).sin(),
            30.0 + 0.5 * (t / 600.0).sin() + n(13, 0.02),
        ];
        for (i, value) in physical.iter().enumerate() {
            let scale = IMU[i].2;
            let count = (value / scale)
                .round()
                .clamp(i16::MIN as f64, i16::MAX as f64) as i64;
            out.push(match self.profile {
                Profile::ImuRaw => Value::Int(count),
                _ => Value::F32((count as f64 * scale) as f32),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::check_row;

    #[test]
    fn rows_are_pure_functions_of_device_seed_and_index() {
        let a = Simulator::new(Profile::Enviro, "st-1", 7, 0);
        let b = Simulator::new(Profile::Enviro, "st-1", 7, 0);
        let c = Simulator::new(Profile::Enviro, "st-2", 7, 0);
        let (mut va, mut vb, mut vc) = (Vec::new(), Vec::new(), Vec::new());
        assert_eq!(a.row(123, &mut va), b.row(123, &mut vb));
        assert_eq!(va, vb);
        c.row(123, &mut vc);
        assert_ne!(va, vc);
    }

    #[test]
    fn every_profile_row_fits_its_schema() {
        for profile in [Profile::Enviro, Profile::Imu, Profile::ImuRaw] {
            let sim = Simulator::new(profile, "d", 1, 1_709_280_000_000_000);
            let mut values = Vec::new();
            let mut out = Vec::new();
            let mut nulls = 0;
            for i in 0..20_000 {
                let ts = sim.row(i, &mut values);
                check_row(sim.schema(), ts, &values, &mut out).unwrap();
                nulls += values.iter().filter(|v| **v == Value::Null).count();
            }
            if profile == Profile::Enviro {
                assert!(nulls > 0, "enviro has occasional failed reads");
            }
        }
    }

    #[test]
    fn resumes_at_a_timestamp() {
        let sim = Simulator::new(Profile::Enviro, "d", 1, 1_000_000);
        assert_eq!(sim.index_at_or_after(0), 0);
        assert_eq!(sim.index_at_or_after(1_000_000), 0);
        assert_eq!(sim.index_at_or_after(1_000_001), 1);
        assert_eq!(sim.index_at_or_after(6_000_000), 1);
    }
}
