//! Per-device rate limit: a token bucket per device id, counting URLs asked for (a
//! request costs its number of files, at least one), refilled at a steady rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A device may ask for `per_minute` URLs a minute on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained URLs per minute.
    pub per_minute: u32,
    /// Bucket size: URLs that may be asked for at once after a quiet time.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_minute: 120,
            burst: 120,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of all devices.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter applying `limit` to each device.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `cost` URLs from `device`'s bucket at `now`, or says how long to wait.
    pub fn take(&self, device: &str, cost: u32, now: Instant) -> Result<(), Duration> {
        let per_second = f64::from(self.limit.per_minute) / 60.0;
        let burst = f64::from(self.limit.burst);
        let cost = f64::from(cost.max(1));
        let Ok(mut buckets) = self.buckets.lock() else {
            return Err(Duration::from_secs(1));
        };
        let bucket = buckets.entry(device.to_string()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.updated = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            return Ok(());
        }
        if per_second <= 0.0 || cost > burst {
            return Err(Duration::from_secs(60));
        }
        Err(Duration::from_secs_f64((cost - bucket.tokens) / per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_per_device() {
        let limiter = RateLimiter::new(RateLimit {
            per_minute: 60,
            burst: 3,
        });
        let t0 = Instant::now();
        assert!(limiter.take("a", 2, t0).is_ok());
        assert!(limiter.take("a", 1, t0).is_ok());
        let wait = limiter.take("a", 1, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            limiter.take("b", 3, t0).is_ok(),
            "another device has its own bucket"
        );
        assert!(limiter.take("a", 1, t0 + Duration::from_secs(1)).is_ok());
        assert!(limiter.take("a", 1, t0 + Duration::from_secs(1)).is_err());
        // Refill stops at the burst size.
        assert!(limiter.take("a", 3, t0 + Duration::from_secs(100)).is_ok());
        assert!(limiter.take("a", 1, t0 + Duration::from_secs(100)).is_err());
    }
}
