//! Capped exponential backoff with full jitter ("Exponential Backoff and Jitter", AWS
//! Architecture Blog): the n-th consecutive failure waits a uniformly random time in
//! `[0, min(max, initial × 2ⁿ)]`, so many devices that failed together do not retry
//! together. Seeded, so tests are reproducible; no `rand` dependency.

use std::time::Duration;

/// SplitMix64: a small, fast, seedable generator (not for secrets).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; tiny modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Delays between consecutive failures.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    rng: Rng,
}

impl Backoff {
    /// Backoff from `initial`, doubling per failure, capped at `max`.
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Self {
            initial,
            max: max.max(initial),
            failures: 0,
            rng: Rng::new(seed),
        }
    }

    /// The ceiling of the next delay: `min(max, initial × 2^failures)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.failures.min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Records a failure and returns how long to wait: uniform in `[0, ceiling]`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(self.rng.unit())
    }

    /// Records a failure and returns how long to wait: uniform in `[ceiling / 2,
    /// ceiling]` ("equal jitter": always at least half the ceiling, still spread).
    pub fn next_delay_from_half(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + (ceiling - half).mul_f64(self.rng.unit())
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A success: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_full_jitter() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30), 7);
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            let ceiling = b.ceiling();
            let delay = b.next_delay();
            assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(
            ceilings,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(250));
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1), 1);
        let delays: Vec<f64> = (0..2000).map(|_| b.next_delay().as_secs_f64()).collect();
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        assert!((0.45..0.55).contains(&mean), "mean {mean}");
        assert!(delays.iter().any(|&d| d < 0.05) && delays.iter().any(|&d| d > 0.95));
    }

    #[test]
    fn from_half_stays_between_half_and_all_of_the_ceiling() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(300), 5);
        let mut seen = Vec::new();
        for n in 0..8 {
            let ceiling = b.ceiling();
            assert_eq!(
                ceiling,
                (Duration::from_secs(10) * (1 << n)).min(Duration::from_secs(300))
            );
            let delay = b.next_delay_from_half();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
            seen.push(delay);
        }
        let mut first = Backoff::new(Duration::from_secs(10), Duration::from_secs(300), 1);
        let firsts: Vec<Duration> = (0..500)
            .map(|_| {
                first.reset();
                first.next_delay_from_half()
            })
            .collect();
        assert!(
            firsts
                .iter()
                .all(|d| (5.0..=10.0).contains(&d.as_secs_f64()))
        );
        assert!(
            firsts.iter().any(|d| d.as_secs_f64() < 5.5)
                && firsts.iter().any(|d| d.as_secs_f64() > 9.5)
        );
    }

    #[test]
    fn same_seed_same_delays() {
        let run = |seed| {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), seed);
            (0..5).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
