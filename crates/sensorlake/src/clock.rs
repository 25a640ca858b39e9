//! Time sources for the uploader: wall-clock time (for signing) and monotonic time (for
//! waiting), injectable so tests can skew or advance them.

use std::sync::Mutex;
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

/// A clock that moves only when told to, for tests of backoff and pauses.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(SystemTime, Instant)>,
}

impl ManualClock {
    /// A clock reading `wall` now.
    pub fn new(wall: SystemTime) -> Self {
        Self {
            state: Mutex::new((wall, Instant::now())),
        }
    }

    /// Moves both wall and monotonic time forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += d;
        s.1 += d;
    }

    /// Sets the wall time (the monotonic time is unchanged).
    pub fn set_wall(&self, wall: SystemTime) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 = wall;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn monotonic(&self) -> Instant {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now(&self) -> SystemTime {
        (**self).now()
    }

    fn monotonic(&self) -> Instant {
        (**self).monotonic()
    }
}
