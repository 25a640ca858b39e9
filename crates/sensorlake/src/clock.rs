//! Time sources for the uploader: wall-clock time (for signing) and monotonic time (for
//! waiting), injectable so tests can skew or advance them.

use std::time::{Duration, Instant, SystemTime};

/// Wall-clock and monotonic time.
pub trait Clock {
    /// The device's idea of the current time (may be wrong: the uploader corrects it
    /// from the server's `Date` header).
    fn now(&self) -> SystemTime;
    /// Monotonic time, for deadlines.
    fn monotonic(&self) -> Instant;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

/// The system clock shifted by a fixed offset: a device whose clock is wrong.
#[derive(Debug, Clone, Copy)]
pub struct SkewedClock {
    /// Seconds added to the system time (negative: the device is behind).
    pub offset_secs: i64,
}

impl Clock for SkewedClock {
    fn now(&self) -> SystemTime {
        shift(SystemTime::now(), self.offset_secs)
    }

    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

/// `t` moved by `secs` seconds (either direction).
pub fn shift(t: SystemTime, secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 { t + d } else { t - d }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now(&self) -> SystemTime {
        (**self).now()
    }

    fn monotonic(&self) -> Instant {
        (**self).monotonic()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skewed_clock_is_off_by_its_offset() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(shift(t, 60), t + Duration::from_secs(60));
        assert_eq!(shift(t, -60), t - Duration::from_secs(60));
        let behind = SkewedClock { offset_secs: -3600 }.now();
        let lag = SystemTime::now().duration_since(behind).unwrap();
        assert!(
            lag >= Duration::from_secs(3599) && lag <= Duration::from_secs(3601),
            "{lag:?}"
        );
    }
}
