//! Adaptive sampling: how many warm-up and timed iterations a case gets on one side.
//!
//! Both sides run the same rule (here for Rust, `time_iterations` in
//! `norm-bench/python/eager_timing.py` for PyTorch):
//!
//! - **warm-up**: untimed iterations while fewer than `warmup_min` have run, or while the
//!   warm-up has taken less than `warmup_ms` and fewer than `max_samples` have run;
//! - **timed**: iterations each timed alone while fewer than `min_samples` were taken, or
//!   while the timed phase (wall clock, gaps included) has taken less than `budget_ms`
//!   and fewer than `max_samples` were taken.
//!
//! So a side takes between `min_samples` and `max_samples` samples, and its timed phase
//! lasts at most about `max(budget_ms, min_samples × one iteration)`. Fixed counts are
//! the special case `min_samples = max_samples` and `warmup_ms = 0`.
//!
//! **Rounds.** The report splits each case into `rounds` rounds, PyTorch then Rust in each
//! (fresh setup and warm-up every round), with the sample counts and the budget divided
//! among them ([`Sampling::per_round`]) and the samples of all rounds pooled: a burst of
//! load from elsewhere on the machine then rarely lands on one side only.

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tch::Device;

/// The sampling rule's parameters (one object in the config file: `"sampling": {...}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sampling {
    /// Warm-up iterations that always run. Default 1.
    pub warmup_min: u64,
    /// Keep warming up until this many milliseconds have passed. Default 100.
    pub warmup_ms: u64,
    /// Timed samples that are always taken (at least 1). Default 6.
    pub min_samples: u64,
    /// Never more timed samples (nor warm-up iterations beyond `warmup_min`) than this. Default 300.
    pub max_samples: u64,
    /// Keep sampling until the timed phase has taken this many milliseconds. Default 800.
    pub budget_ms: u64,
    /// Rounds per case, sides alternating (at least 1); counts and budget are split among them. Default 2.
    pub rounds: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { warmup_min: 1, warmup_ms: 100, min_samples: 6, max_samples: 300, budget_ms: 800, rounds: 2 }
    }
}

impl Sampling {
    /// Exactly `warmup` warm-up iterations and `samples` samples (no time budget, one round).
    pub fn fixed(warmup: u64, samples: u64) -> Self {
        Sampling { warmup_min: warmup, warmup_ms: 0, min_samples: samples, max_samples: samples, budget_ms: 0, rounds: 1 }
    }

    /// The rule of one of `rounds` rounds: the sample counts divided (rounded up) and the
    /// budget divided; the warm-up rule unchanged (every round sets the case up afresh).
    pub fn per_round(&self) -> Sampling {
        let rounds = self.rounds.max(1);
        Sampling {
            min_samples: self.min_samples.div_ceil(rounds),
            max_samples: self.max_samples.div_ceil(rounds),
            budget_ms: self.budget_ms / rounds,
            rounds: 1,
            ..*self
        }
    }

    /// Checks `min_samples >= 1`, `max_samples >= min_samples` and `rounds >= 1`.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.rounds >= 1, "sampling.rounds must be at least 1, got {}", self.rounds);
        ensure!(self.min_samples >= 1, "sampling.min_samples must be at least 1, got {}", self.min_samples);
        ensure!(
            self.max_samples >= self.min_samples,
            "sampling.max_samples ({}) must be at least sampling.min_samples ({})",
            self.max_samples,
            self.min_samples
        );
        Ok(())
    }

    /// Whether another warm-up iteration runs after `done` of them took `elapsed`.
    pub fn keep_warming(&self, done: u64, elapsed: Duration) -> bool {
        done < self.warmup_min || (elapsed < Duration::from_millis(self.warmup_ms) && done < self.max_samples)
    }

    /// Whether another sample is taken after `done` of them took `elapsed` (wall clock).
    pub fn keep_sampling(&self, done: u64, elapsed: Duration) -> bool {
        done < self.min_samples || (elapsed < Duration::from_millis(self.budget_ms) && done < self.max_samples)
    }
}

/// What one side measured for a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    /// Warm-up iterations run.
    pub warmup: u64,
    /// One duration in nanoseconds per timed sample.
    pub nanos: Vec<u64>,
}

/// Runs `body` under `sampling`'s rule, calling `between` (untimed) before every
/// iteration, warm-up included. `device` is synchronized before each clock read.
pub fn time_adaptive(
    sampling: &Sampling,
    device: Device,
    mut between: impl FnMut() -> Result<()>,
    mut body: impl FnMut() -> Result<()>,
) -> Result<Timed> {
    let sync = || norm_tch::backend::synchronize(device);
    let start = Instant::now();
    let mut warmup = 0;
    while sampling.keep_warming(warmup, start.elapsed()) {
        between()?;
        body()?;
        sync();
        warmup += 1;
    }
    let mut nanos = Vec::with_capacity(sampling.min_samples as usize);
    let start = Instant::now();
    while sampling.keep_sampling(nanos.len() as u64, start.elapsed()) {
        between()?;
        sync();
        let t0 = Instant::now();
        body()?;
        sync();
        nanos.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    Ok(Timed { warmup, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_counts_ignore_the_clock() {
        let s = Sampling::fixed(2, 5);
        assert!(s.keep_warming(1, Duration::from_secs(100)));
        assert!(!s.keep_warming(2, Duration::ZERO));
        assert!(s.keep_sampling(4, Duration::from_secs(100)));
        assert!(!s.keep_sampling(5, Duration::ZERO));
    }

    #[test]
    fn the_rule_stops_at_the_budget_but_never_below_min_nor_above_max() {
        let s = Sampling { warmup_min: 1, warmup_ms: 10, min_samples: 3, max_samples: 50, budget_ms: 100, rounds: 1 };
        // Slow iterations: the minimum is still taken.
        assert!(s.keep_sampling(2, Duration::from_secs(10)));
        assert!(!s.keep_sampling(3, Duration::from_secs(10)));
        // Fast iterations: the budget decides, the maximum caps.
        assert!(s.keep_sampling(10, Duration::from_millis(99)));
        assert!(!s.keep_sampling(10, Duration::from_millis(100)));
        assert!(!s.keep_sampling(50, Duration::ZERO));
        // Warm-up: at least warmup_min, then until warmup_ms, capped by max_samples.
        assert!(s.keep_warming(0, Duration::from_secs(1)));
        assert!(!s.keep_warming(1, Duration::from_millis(10)));
        assert!(s.keep_warming(1, Duration::from_millis(9)));
        assert!(!s.keep_warming(50, Duration::ZERO));
    }

    #[test]
    fn adaptive_sampling_is_bounded_in_count_and_time() {
        // A 2 ms body with a 20 ms budget: at least 3 and far fewer than 100 samples.
        let s = Sampling { warmup_min: 1, warmup_ms: 5, min_samples: 3, max_samples: 100, budget_ms: 20, rounds: 1 };
        let start = Instant::now();
        let timed = time_adaptive(&s, Device::Cpu, || Ok(()), || {
            std::thread::sleep(Duration::from_millis(2));
            Ok(())
        })
        .unwrap();
        let n = timed.nanos.len();
        assert!((3..=12).contains(&n), "{n} samples");
        assert!((1..=4).contains(&timed.warmup), "{} warm-up iterations", timed.warmup);
        assert!(timed.nanos.iter().all(|&ns| ns >= 2_000_000));
        assert!(start.elapsed() < Duration::from_millis(500));

        // A free body is capped by max_samples.
        let timed = time_adaptive(&Sampling { max_samples: 7, ..s }, Device::Cpu, || Ok(()), || Ok(())).unwrap();
        assert_eq!(timed.nanos.len(), 7);
        assert!(timed.warmup <= 7);
    }

    #[test]
    fn invalid_sampling_is_an_error() {
        assert!(Sampling::default().validate().is_ok());
        assert!(Sampling { min_samples: 0, ..Default::default() }.validate().is_err());
        assert!(Sampling { min_samples: 5, max_samples: 4, ..Default::default() }.validate().is_err());
        assert!(Sampling { rounds: 0, ..Default::default() }.validate().is_err());
    }

    #[test]
    fn rounds_split_the_counts_and_the_budget() {
        let s = Sampling { warmup_min: 2, warmup_ms: 30, min_samples: 5, max_samples: 301, budget_ms: 800, rounds: 2 };
        let r = s.per_round();
        assert_eq!(r, Sampling { warmup_min: 2, warmup_ms: 30, min_samples: 3, max_samples: 151, budget_ms: 400, rounds: 1 });
        assert_eq!(Sampling::fixed(1, 4).per_round(), Sampling::fixed(1, 4));
    }
}
