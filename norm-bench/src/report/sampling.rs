//! Adaptive sampling: how many warm-up and timed iterations a case gets on one side.
//!
//! Both sides run the same rule (here for Rust, `time_iterations` in
//! `norm-bench/python/eager_timing.py` for PyTorch):
//!
//! - **warm-up**: untimed iterations while fewer than `warmup_min` have run, or while the
//!   warm-up has taken less than `warmup_ms` and fewer than `100 × max_samples` have run;
//! - **batching**: with `min_sample_us > 0`, a case without a `between` callback and at
//!   least one warm-up iteration, each sample runs
//!   `iterations_per_sample = clamp(ceil(min_sample_us · 1000 / mean warm-up iteration ns), 1, 10000)`
//!   iterations back to back (in integers: `ceil(min_sample_ns · warmup / warmup_ns)`,
//!   `warmup_ns` the warm-up loop's wall clock; 10000 if that is 0) and records
//!   `round(total_ns / iterations_per_sample)` (half up) as one sample: a tiny op is then
//!   timed over at least about `min_sample_us`, so the clock and the per-sample overhead
//!   vanish. Otherwise — `min_sample_us = 0`, no warm-up, or a case with `between` (whose
//!   untimed work must run before every iteration) — one iteration per sample;
//! - **timed**: samples, each timed alone, while fewer than `min_samples` were taken, or
//!   while the timed phase (wall clock, gaps included) has taken less than `budget_ms`
//!   and fewer than `max_samples` were taken.
//!
//! So a side takes between `min_samples` and `max_samples` samples, and its timed phase
//! lasts at most about `max(budget_ms, min_samples × one sample)`. Fixed counts are
//! the special case `min_samples = max_samples`, `warmup_ms = 0` and `min_sample_us = 0`
//! ([`Sampling::fixed`]): exactly that many single-iteration samples.
//!
//! **Rounds.** The report splits each case into `rounds` rounds, PyTorch then Rust in each
//! (fresh setup and warm-up every round), with the sample counts and the budget divided
//! among them ([`Sampling::per_round`]) and the samples of all rounds pooled: a burst of
//! load from elsewhere on the machine then rarely lands on one side only. Each round picks
//! its own `iterations_per_sample`; the pool keeps the smallest.

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tch::Device;

/// The sampling rule's parameters (one object in the config file: `"sampling": {...}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Sampling {
    /// Warm-up iterations that always run. Default 1.
    pub(crate) warmup_min: u64,
    /// Keep warming up until this many milliseconds have passed. Default 100.
    pub(crate) warmup_ms: u64,
    /// Timed samples that are always taken (at least 1). Default 6.
    pub(crate) min_samples: u64,
    /// Never more timed samples than this (nor more warm-up iterations beyond `warmup_min`
    /// than 100 times this). Default 300.
    pub(crate) max_samples: u64,
    /// Keep sampling until the timed phase has taken this many milliseconds. Default 800.
    pub(crate) budget_ms: u64,
    /// Rounds per case, sides alternating (at least 1); counts and budget are split among them. Default 2.
    pub(crate) rounds: u64,
    /// Batch iterations so that one sample lasts at least about this many microseconds
    /// (cases without a `between` callback; see the module doc); 0: one iteration per
    /// sample. Default 1000.
    pub(crate) min_sample_us: u64,
}

/// [`Sampling::min_sample_us`]'s default.
pub(crate) const DEFAULT_MIN_SAMPLE_US: u64 = 1000;

/// Warm-up iterations may run up to this many times `max_samples` (within `warmup_ms`).
pub(crate) const WARMUP_FACTOR: u64 = 100;

/// The most iterations one sample batches.
pub(crate) const MAX_ITERATIONS_PER_SAMPLE: u64 = 10_000;

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            warmup_min: 1,
            warmup_ms: 100,
            min_samples: 6,
            max_samples: 300,
            budget_ms: 800,
            rounds: 2,
            min_sample_us: DEFAULT_MIN_SAMPLE_US,
        }
    }
}

impl Sampling {
    /// Exactly `warmup` warm-up iterations and `samples` single-iteration samples (no
    /// time budget, one round, no batching).
    #[cfg(test)]
    pub(crate) fn fixed(warmup: u64, samples: u64) -> Self {
        Sampling {
            warmup_min: warmup,
            warmup_ms: 0,
            min_samples: samples,
            max_samples: samples,
            budget_ms: 0,
            rounds: 1,
            min_sample_us: 0,
        }
    }

    /// The rule of one of `rounds` rounds: the sample counts divided (rounded up) and the
    /// budget divided; the warm-up rule unchanged (every round sets the case up afresh).
    pub(crate) fn per_round(&self) -> Sampling {
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
    pub(crate) fn validate(&self) -> Result<()> {
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
    pub(crate) fn keep_warming(&self, done: u64, elapsed: Duration) -> bool {
        done < self.warmup_min
            || (elapsed < Duration::from_millis(self.warmup_ms)
                && done < self.max_samples.saturating_mul(WARMUP_FACTOR))
    }

    /// The iterations each sample runs back to back, after `warmup` warm-up iterations
    /// took `warmup_elapsed` (wall clock): `clamp(ceil(min_sample_ns · warmup /
    /// warmup_ns), 1, 10000)`, or 1 without batching (`min_sample_us = 0`, no warm-up, or
    /// `has_between`: a case whose untimed `between` runs before every iteration).
    pub(crate) fn iterations_per_sample(&self, warmup: u64, warmup_elapsed: Duration, has_between: bool) -> u64 {
        if self.min_sample_us == 0 || warmup == 0 || has_between {
            return 1;
        }
        let warmup_ns = warmup_elapsed.as_nanos();
        if warmup_ns == 0 {
            return MAX_ITERATIONS_PER_SAMPLE;
        }
        let wanted = (u128::from(self.min_sample_us) * 1000 * u128::from(warmup)).div_ceil(warmup_ns);
        wanted.clamp(1, u128::from(MAX_ITERATIONS_PER_SAMPLE)) as u64
    }

    /// Whether another sample is taken after `done` of them took `elapsed` (wall clock).
    pub(crate) fn keep_sampling(&self, done: u64, elapsed: Duration) -> bool {
        done < self.min_samples || (elapsed < Duration::from_millis(self.budget_ms) && done < self.max_samples)
    }
}

/// What one side measured for a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Timed {
    /// Warm-up iterations run.
    pub(crate) warmup: u64,
    /// Iterations each sample ran back to back (its duration is the mean per iteration);
    /// for samples pooled from several rounds, the smallest of the rounds' values.
    pub(crate) iterations_per_sample: u64,
    /// One duration in nanoseconds per timed sample: per iteration, rounded.
    pub(crate) nanos: Vec<u64>,
}

impl Timed {
    /// Adds another round's samples (and warm-up) to these.
    pub(crate) fn pool(&mut self, round: Timed) {
        self.warmup += round.warmup;
        self.iterations_per_sample = self.iterations_per_sample.min(round.iterations_per_sample);
        self.nanos.extend(round.nanos);
    }
}

/// `round(total_ns / iterations)`, halves up.
pub(crate) fn per_iteration_ns(total_ns: u128, iterations: u64) -> u64 {
    let iterations = u128::from(iterations.max(1));
    u64::try_from((total_ns + iterations / 2) / iterations).unwrap_or(u64::MAX)
}

/// Runs `body` under `sampling`'s rule, without untimed work between iterations (so
/// samples may batch iterations, see [`Sampling::iterations_per_sample`]). `device` is
/// synchronized before each clock read.
pub(crate) fn time_body(sampling: &Sampling, device: Device, body: impl FnMut() -> Result<()>) -> Result<Timed> {
    time_loop(sampling, device, None::<fn() -> Result<()>>, body)
}

/// Runs `body` under `sampling`'s rule, calling `between` (untimed) before every
/// iteration, warm-up included; one iteration per sample. `device` is synchronized
/// before each clock read.
pub(crate) fn time_adaptive(
    sampling: &Sampling,
    device: Device,
    between: impl FnMut() -> Result<()>,
    body: impl FnMut() -> Result<()>,
) -> Result<Timed> {
    time_loop(sampling, device, Some(between), body)
}

fn time_loop(
    sampling: &Sampling,
    device: Device,
    mut between: Option<impl FnMut() -> Result<()>>,
    mut body: impl FnMut() -> Result<()>,
) -> Result<Timed> {
    let sync = || norm_tch::backend::synchronize(device);
    let has_between = between.is_some();
    let mut run_between = || between.as_mut().map_or(Ok(()), |b| b());
    let start = Instant::now();
    let mut warmup = 0;
    while sampling.keep_warming(warmup, start.elapsed()) {
        run_between()?;
        body()?;
        sync();
        warmup += 1;
    }
    let iterations_per_sample = sampling.iterations_per_sample(warmup, start.elapsed(), has_between);
    let mut nanos = Vec::with_capacity(sampling.min_samples as usize);
    let start = Instant::now();
    while sampling.keep_sampling(nanos.len() as u64, start.elapsed()) {
        run_between()?;
        sync();
        let t0 = Instant::now();
        for _ in 0..iterations_per_sample {
            body()?;
        }
        sync();
        nanos.push(per_iteration_ns(t0.elapsed().as_nanos(), iterations_per_sample));
    }
    Ok(Timed { warmup, iterations_per_sample, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule without batching (the counting tests below).
    fn unbatched(warmup_min: u64, warmup_ms: u64, min_samples: u64, max_samples: u64, budget_ms: u64) -> Sampling {
        Sampling { warmup_min, warmup_ms, min_samples, max_samples, budget_ms, rounds: 1, min_sample_us: 0 }
    }

    #[test]
    fn fixed_counts_ignore_the_clock() {
        let s = Sampling::fixed(2, 5);
        assert_eq!(s.min_sample_us, 0, "fixed counts do not batch");
        assert!(s.keep_warming(1, Duration::from_secs(100)));
        assert!(!s.keep_warming(2, Duration::ZERO));
        assert!(s.keep_sampling(4, Duration::from_secs(100)));
        assert!(!s.keep_sampling(5, Duration::ZERO));
        assert_eq!(s.iterations_per_sample(2, Duration::from_nanos(10), false), 1);
    }

    #[test]
    fn the_rule_stops_at_the_budget_but_never_below_min_nor_above_max() {
        let s = unbatched(1, 10, 3, 50, 100);
        // Slow iterations: the minimum is still taken.
        assert!(s.keep_sampling(2, Duration::from_secs(10)));
        assert!(!s.keep_sampling(3, Duration::from_secs(10)));
        // Fast iterations: the budget decides, the maximum caps.
        assert!(s.keep_sampling(10, Duration::from_millis(99)));
        assert!(!s.keep_sampling(10, Duration::from_millis(100)));
        assert!(!s.keep_sampling(50, Duration::ZERO));
        // Warm-up: at least warmup_min, then until warmup_ms, capped by 100 × max_samples.
        assert!(s.keep_warming(0, Duration::from_secs(1)));
        assert!(!s.keep_warming(1, Duration::from_millis(10)));
        assert!(s.keep_warming(1, Duration::from_millis(9)));
        assert!(s.keep_warming(50, Duration::ZERO));
        assert!(s.keep_warming(4999, Duration::ZERO));
        assert!(!s.keep_warming(5000, Duration::ZERO));
    }

    #[test]
    fn iterations_per_sample_follow_the_warm_up_mean() {
        let s = Sampling { min_sample_us: 1000, ..Sampling::default() };
        // 10 warm-up iterations in 1 ms: 100 µs each, so 10 per 1 ms sample.
        assert_eq!(s.iterations_per_sample(10, Duration::from_millis(1), false), 10);
        // Rounded up: 300 µs each needs 4 (3.33...).
        assert_eq!(s.iterations_per_sample(1, Duration::from_micros(300), false), 4);
        // Slower than min_sample_us: one; very fast: capped.
        assert_eq!(s.iterations_per_sample(3, Duration::from_millis(30), false), 1);
        assert_eq!(s.iterations_per_sample(1000, Duration::from_micros(10), false), MAX_ITERATIONS_PER_SAMPLE);
        assert_eq!(s.iterations_per_sample(5, Duration::ZERO, false), MAX_ITERATIONS_PER_SAMPLE);
        // No batching with a between callback, without warm-up, or when turned off.
        assert_eq!(s.iterations_per_sample(10, Duration::from_millis(1), true), 1);
        assert_eq!(s.iterations_per_sample(0, Duration::ZERO, false), 1);
        assert_eq!(Sampling { min_sample_us: 0, ..s }.iterations_per_sample(10, Duration::from_millis(1), false), 1);
        assert_eq!(per_iteration_ns(1_000_005, 10), 100_001, "half up");
        assert_eq!(per_iteration_ns(1_000_004, 10), 100_000);
    }

    #[test]
    fn adaptive_sampling_is_bounded_in_count_and_time() {
        // A 2 ms body with a 20 ms budget: at least 3 and far fewer than 100 samples.
        let s = unbatched(1, 5, 3, 100, 20);
        let start = Instant::now();
        let timed = time_body(&s, Device::Cpu, || {
            std::thread::sleep(Duration::from_millis(2));
            Ok(())
        })
        .unwrap();
        let n = timed.nanos.len();
        assert!((3..=12).contains(&n), "{n} samples");
        assert!((1..=4).contains(&timed.warmup), "{} warm-up iterations", timed.warmup);
        assert_eq!(timed.iterations_per_sample, 1);
        assert!(timed.nanos.iter().all(|&ns| ns >= 2_000_000));
        assert!(start.elapsed() < Duration::from_millis(500));

        // A free body is capped by max_samples (and its warm-up by 100 × max_samples).
        let timed = time_body(&Sampling { max_samples: 7, ..s }, Device::Cpu, || Ok(())).unwrap();
        assert_eq!(timed.nanos.len(), 7);
        assert!(timed.warmup <= 700);
    }

    #[test]
    fn tiny_bodies_are_batched_into_samples_of_min_sample_us() {
        // A >= 1 ms body, 20 ms samples: at least 2 iterations per sample unless the warm-up
        // mean exceeds 10 ms (a margin no load on a test machine reaches), each sample the
        // mean per iteration. The exact count is `iterations_per_sample`'s, tested without a clock.
        let s = Sampling {
            warmup_min: 1,
            warmup_ms: 20,
            min_samples: 3,
            max_samples: 20,
            budget_ms: 30,
            rounds: 1,
            min_sample_us: 20_000,
        };
        let mut calls = 0u64;
        let timed = time_body(&s, Device::Cpu, || {
            calls += 1;
            std::thread::sleep(Duration::from_millis(1));
            Ok(())
        })
        .unwrap();
        assert!(timed.iterations_per_sample >= 2, "{} iterations per sample", timed.iterations_per_sample);
        assert!((3..=20).contains(&timed.nanos.len()), "{} samples", timed.nanos.len());
        assert!(timed.nanos.iter().all(|&ns| ns >= 1_000_000), "{:?}", timed.nanos);
        assert_eq!(calls, timed.warmup + timed.iterations_per_sample * timed.nanos.len() as u64);

        // The same body with a between callback: one iteration per sample, between before each.
        let mut betweens = 0u64;
        let timed = time_adaptive(
            &s,
            Device::Cpu,
            || {
                betweens += 1;
                Ok(())
            },
            || {
                std::thread::sleep(Duration::from_micros(50));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(timed.iterations_per_sample, 1);
        assert_eq!(betweens, timed.warmup + timed.nanos.len() as u64);
    }

    #[test]
    fn pooled_rounds_keep_the_smallest_batch() {
        let mut a = Timed { warmup: 3, iterations_per_sample: 5, nanos: vec![1, 2] };
        a.pool(Timed { warmup: 2, iterations_per_sample: 4, nanos: vec![3] });
        assert_eq!(a, Timed { warmup: 5, iterations_per_sample: 4, nanos: vec![1, 2, 3] });
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
        let s = Sampling {
            warmup_min: 2,
            warmup_ms: 30,
            min_samples: 5,
            max_samples: 301,
            budget_ms: 800,
            rounds: 2,
            min_sample_us: 700,
        };
        let r = s.per_round();
        assert_eq!(
            r,
            Sampling {
                warmup_min: 2,
                warmup_ms: 30,
                min_samples: 3,
                max_samples: 151,
                budget_ms: 400,
                rounds: 1,
                min_sample_us: 700
            }
        );
        assert_eq!(Sampling::fixed(1, 4).per_round(), Sampling::fixed(1, 4));
    }

    #[test]
    fn min_sample_us_defaults_to_1000_in_a_config() {
        let s: Sampling = serde_json::from_str(r#"{"budget_ms": 10}"#).unwrap();
        assert_eq!(s, Sampling { budget_ms: 10, ..Sampling::default() });
        assert_eq!(s.min_sample_us, 1000);
        let s: Sampling = serde_json::from_str(r#"{"min_sample_us": 0}"#).unwrap();
        assert_eq!(s.min_sample_us, 0);
    }
}
