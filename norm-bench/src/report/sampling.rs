//! Adaptive sampling: how many warm-up and timed iterations a case gets on one side, and
//! how the two sides take turns.
//!
//! Both sides run the same rule (here for Rust, `Session` in
//! `norm-bench/python/eager_timing.py` for PyTorch):
//!
//! - **warm-up** ([`Session::warm_up`]): untimed iterations while fewer than `warmup_min`
//!   have run, or while the warm-up has taken less than `warmup_ms` and fewer than
//!   `100 × max_samples` have run;
//! - **batching**: with `min_sample_us > 0`, a case without a `between` callback and at
//!   least one warm-up iteration, each sample runs
//!   `iterations_per_sample = clamp(ceil(min_sample_us · 1000 / mean warm-up iteration ns), 1, 10000)`
//!   iterations back to back (in integers: `ceil(min_sample_ns · warmup / warmup_ns)`,
//!   `warmup_ns` the warm-up loop's wall clock; 10000 if that is 0) and records
//!   `round(total_ns / iterations_per_sample)` (half up) as one sample: a tiny op is then
//!   timed over at least about `min_sample_us`, so the clock and the per-sample overhead
//!   vanish. Otherwise — `min_sample_us = 0`, no warm-up, or a case with `between` (whose
//!   untimed work must run before every iteration) — one iteration per sample;
//! - **bursts** ([`Session::burst`]): after the warm-up the side's samples come in bursts,
//!   and the sides take turns, PyTorch's burst then Rust's ([`Sampling::next_burst`]). A
//!   burst first re-warms (untimed iterations for at least [`REWARM`], 5 ms, and at least
//!   one: the other side has just had the caches; not for a case whose mean warm-up
//!   iteration took `burst_ms` or longer), then takes samples, each timed alone,
//!   while it has none, or while it has lasted less than `burst_ms` (re-warm-up included),
//!   has fewer than its share of the round's `max_samples`
//!   (`ceil(max_samples · burst_ms / budget_ms)`) and the side's round is not over;
//! - **a round ends** for a side once it has taken at least `min_samples` and either its
//!   bursts have lasted `budget_ms` (wall clock, gaps included) or it has taken
//!   `max_samples`.
//!
//! So a side takes between `min_samples` and `max_samples` samples per round, and its timed
//! bursts last at most about `max(budget_ms, min_samples × one sample)` plus one burst.
//! With `burst_ms = 0` (or `burst_ms >= budget_ms`) a round is one burst per side, without
//! a re-warm-up: the side takes all its samples in one go, PyTorch's before Rust's. Fixed
//! counts are the special case `min_samples = max_samples`, `warmup_ms = 0`, `min_sample_us = 0` and `burst_ms = 0`
//! ([`Sampling::fixed`]): exactly that many single-iteration samples.
//!
//! **Rounds.** The report splits each case into `rounds` rounds (fresh setup and warm-up
//! on both sides every round), with the sample counts and the budget divided among them
//! ([`Sampling::per_round`]) and the samples of all rounds pooled. Within a round the
//! sides' bursts alternate every `burst_ms`, so what slows the machine for a while slows
//! both sides of a burst pair alike, and the interval pairs the bursts
//! ([`interval`](super::interval)). Each round picks its own `iterations_per_sample`; the
//! pool keeps the smallest.

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
    /// Timed samples that are always taken (at least 1). Default 30: the 4096² cases, whose
    /// iterations outlast the budget's share, still get enough burst pairs for an interval.
    pub(crate) min_samples: u64,
    /// Never more timed samples than this (nor more warm-up iterations beyond `warmup_min`
    /// than 100 times this). Default 300.
    pub(crate) max_samples: u64,
    /// Keep sampling until the timed bursts have taken this many milliseconds. Default 800.
    pub(crate) budget_ms: u64,
    /// Rounds per case, each a fresh setup of both sides (at least 1); counts and budget are
    /// split among them. Default 2.
    pub(crate) rounds: u64,
    /// Batch iterations so that one sample lasts at least about this many microseconds
    /// (cases without a `between` callback; see the module doc); 0: one iteration per
    /// sample. Default 1000.
    pub(crate) min_sample_us: u64,
    /// The sides take turns every this many milliseconds of samples (module doc); 0: one
    /// burst per side and round. Default 25.
    pub(crate) burst_ms: u64,
}

/// [`Sampling::min_sample_us`]'s default.
pub(crate) const DEFAULT_MIN_SAMPLE_US: u64 = 1000;

/// [`Sampling::burst_ms`]'s default.
pub(crate) const DEFAULT_BURST_MS: u64 = 25;

/// A burst's re-warm-up lasts at least this long (and one iteration). On the report's
/// 2-core machine, after the other side's burst, a 1024² spectral-norm sample ran 1.55
/// times slower than the burst's median even after one untimed iteration, and after a
/// 3 ms re-warm-up the PyTorch seed step's first two samples still ran 1.2 and 1.1 times slower.
pub(crate) const REWARM: Duration = Duration::from_millis(5);

/// Warm-up iterations may run up to this many times `max_samples` (within `warmup_ms`).
pub(crate) const WARMUP_FACTOR: u64 = 100;

/// The most iterations one sample batches.
pub(crate) const MAX_ITERATIONS_PER_SAMPLE: u64 = 10_000;

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            warmup_min: 1,
            warmup_ms: 100,
            min_samples: 30,
            max_samples: 300,
            budget_ms: 800,
            rounds: 2,
            min_sample_us: DEFAULT_MIN_SAMPLE_US,
            burst_ms: DEFAULT_BURST_MS,
        }
    }
}

impl Sampling {
    /// Exactly `warmup` warm-up iterations and `samples` single-iteration samples (no
    /// time budget, one round, no batching, one burst).
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
            burst_ms: 0,
        }
    }

    /// The rule of one of `rounds` rounds: the sample counts divided (rounded up) and the
    /// budget divided; the warm-up and burst rules unchanged (every round sets the case up afresh).
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

    /// Whether the sides take turns within a round (`self` is the round's rule): not with
    /// `burst_ms = 0`, nor with `burst_ms >= budget_ms`, where each side's round is one burst.
    pub(crate) fn alternates(&self) -> bool {
        self.burst_ms != 0 && self.burst_ms < self.budget_ms
    }

    /// The next burst of a side that has taken `taken` samples in bursts lasting `spent`
    /// this round (`self` is the round's rule, [`Sampling::per_round`]), or `None` when the
    /// side's round is over: it has `min_samples` and either `budget_ms` is spent or it
    /// has `max_samples`.
    pub(crate) fn next_burst(&self, taken: u64, spent: Duration) -> Option<Burst> {
        let budget = Duration::from_millis(self.budget_ms);
        if taken >= self.min_samples && (spent >= budget || taken >= self.max_samples) {
            return None;
        }
        let left = budget.saturating_sub(spent);
        let max_samples = self.max_samples.saturating_sub(taken).max(1);
        Some(if !self.alternates() {
            Burst {
                rewarm: Duration::ZERO,
                min_samples: self.min_samples.saturating_sub(taken).max(1),
                max_samples,
                budget: left,
            }
        } else {
            // The round's max_samples spread over its budget_ms / burst_ms bursts, so that
            // a fast side does not take them all in its first bursts and leave the other
            // side's later bursts unpaired.
            let per_burst =
                (u128::from(self.max_samples) * u128::from(self.burst_ms)).div_ceil(u128::from(self.budget_ms));
            Burst {
                rewarm: REWARM,
                min_samples: 1,
                max_samples: max_samples.min(u64::try_from(per_burst).unwrap_or(u64::MAX)),
                budget: left.min(Duration::from_millis(self.burst_ms)),
            }
        })
    }
}

/// One burst's rule ([`Sampling::next_burst`]): a re-warm-up (untimed iterations, each
/// with its `between`, while none has run or they have lasted less than `rewarm`; none when
/// `rewarm` is zero), then samples while fewer than `min_samples` were taken, or while the
/// burst has lasted less than `budget` (re-warm-up included) and fewer than `max_samples`
/// were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Burst {
    /// The re-warm-up's least duration (sent as whole microseconds); zero: none.
    #[serde(rename = "rewarm_us", serialize_with = "micros")]
    pub(crate) rewarm: Duration,
    /// Samples always taken (at least 1).
    pub(crate) min_samples: u64,
    /// Never more samples than this.
    pub(crate) max_samples: u64,
    /// Keep sampling while the burst has lasted less than this (sent as whole microseconds).
    #[serde(rename = "budget_us", serialize_with = "micros")]
    pub(crate) budget: Duration,
}

fn micros<S: serde::Serializer>(duration: &Duration, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
}

impl Burst {
    /// Whether another sample is taken after `done` of them in `elapsed` (wall clock).
    pub(crate) fn keep_sampling(&self, done: u64, elapsed: Duration) -> bool {
        done < self.min_samples || (elapsed < self.budget && done < self.max_samples)
    }
}

/// What one side measured for a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Timed {
    /// Untimed iterations run: the warm-up's and the bursts' re-warm-ups.
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

/// A fallible step of a timed case.
type Step = Box<dyn FnMut() -> Result<()>>;

/// A side's timed work for one case, set up and owning its state: the iteration, the
/// untimed work before each iteration if any (`between`, e.g. clearing gradients), and
/// the device synchronized before each clock read.
pub(crate) struct Body {
    device: Device,
    between: Option<Step>,
    iteration: Step,
}

impl Body {
    /// An iteration without untimed work between iterations (its samples may batch
    /// iterations, [`Sampling::iterations_per_sample`]).
    pub(crate) fn new(device: Device, iteration: impl FnMut() -> Result<()> + 'static) -> Self {
        Body { device, between: None, iteration: Box::new(iteration) }
    }

    /// An iteration with `between` run (untimed) before every iteration, warm-up
    /// included; one iteration per sample.
    pub(crate) fn with_between(
        device: Device,
        between: impl FnMut() -> Result<()> + 'static,
        iteration: impl FnMut() -> Result<()> + 'static,
    ) -> Self {
        Body { device, between: Some(Box::new(between)), iteration: Box::new(iteration) }
    }

    fn between(&mut self) -> Result<()> {
        self.between.as_mut().map_or(Ok(()), |between| between())
    }

    fn sync(&self) {
        norm_tch::backend::synchronize(self.device);
    }

    /// One untimed iteration, `between` first, the device synchronized after.
    fn untimed(&mut self) -> Result<()> {
        self.between()?;
        (self.iteration)()?;
        self.sync();
        Ok(())
    }
}

/// A side's [`Body`] in a round, warmed up: it takes its samples in bursts.
pub(crate) struct Session {
    body: Body,
    timed: Timed,
    /// Whether bursts re-warm: not when one warm-up iteration took `burst_ms` or longer
    /// ([`Session::warm_up`]).
    rewarms: bool,
}

impl Session {
    /// Warms `body` up under `sampling`'s rule and picks its iterations per sample; its bursts
    /// will not re-warm when the warm-up's mean iteration took `burst_ms` or longer.
    pub(crate) fn warm_up(mut body: Body, sampling: &Sampling) -> Result<Session> {
        let start = Instant::now();
        let mut warmup = 0;
        while sampling.keep_warming(warmup, start.elapsed()) {
            body.untimed()?;
            warmup += 1;
        }
        let elapsed = start.elapsed();
        let iterations_per_sample = sampling.iterations_per_sample(warmup, elapsed, body.between.is_some());
        // An iteration that alone outlasts a burst makes each burst one sample, and a re-warm-up
        // would double its cost; it also runs long enough that what the other side left in the
        // caches no longer shows (4096² spectral norm, PyTorch: 88.6 ms without, 91.3 ms with).
        let rewarms =
            warmup == 0 || elapsed.as_nanos() < u128::from(sampling.burst_ms) * 1_000_000 * u128::from(warmup);
        Ok(Session { body, timed: Timed { warmup, iterations_per_sample, nanos: Vec::new() }, rewarms })
    }

    /// Runs one burst under `rule` (its samples are kept for [`Session::finish`]); returns
    /// how many samples it took and how long it lasted, re-warm-up included.
    pub(crate) fn burst(&mut self, rule: &Burst) -> Result<(u64, Duration)> {
        let start = Instant::now();
        if !rule.rewarm.is_zero() && self.rewarms {
            let mut done = 0;
            while done == 0 || start.elapsed() < rule.rewarm {
                self.body.untimed()?;
                done += 1;
            }
            self.timed.warmup += done;
        }
        let batch = self.timed.iterations_per_sample;
        let mut taken = 0;
        while rule.keep_sampling(taken, start.elapsed()) {
            self.body.between()?;
            self.body.sync();
            let t0 = Instant::now();
            for _ in 0..batch {
                (self.body.iteration)()?;
            }
            self.body.sync();
            self.timed.nanos.push(per_iteration_ns(t0.elapsed().as_nanos(), batch));
            taken += 1;
        }
        Ok((taken, start.elapsed()))
    }

    /// Samples taken so far, over all bursts.
    pub(crate) fn samples(&self) -> u64 {
        self.timed.nanos.len() as u64
    }

    /// The round's measurements: untimed iterations, iterations per sample, every sample.
    pub(crate) fn finish(self) -> Timed {
        self.timed
    }
}

/// Times `body` alone (no other side) under `sampling`'s rule for one round: warm-up, then
/// bursts until the round is over; the samples of all bursts together.
#[cfg(test)]
pub(crate) fn time_alone(body: Body, sampling: &Sampling) -> Result<Timed> {
    let mut session = Session::warm_up(body, sampling)?;
    let (mut taken, mut spent) = (0, Duration::ZERO);
    while let Some(rule) = sampling.next_burst(taken, spent) {
        let (samples, lasted) = session.burst(&rule)?;
        taken += samples;
        spent += lasted;
    }
    Ok(session.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule without batching or bursts (the counting tests below).
    fn unbatched(warmup_min: u64, warmup_ms: u64, min_samples: u64, max_samples: u64, budget_ms: u64) -> Sampling {
        Sampling {
            warmup_min,
            warmup_ms,
            min_samples,
            max_samples,
            budget_ms,
            rounds: 1,
            min_sample_us: 0,
            burst_ms: 0,
        }
    }

    fn sleeping(ms: u64) -> Body {
        Body::new(Device::Cpu, move || {
            std::thread::sleep(Duration::from_millis(ms));
            Ok(())
        })
    }

    #[test]
    fn fixed_counts_ignore_the_clock() {
        let s = Sampling::fixed(2, 5);
        assert_eq!((s.min_sample_us, s.burst_ms), (0, 0), "fixed counts neither batch nor alternate");
        assert!(s.keep_warming(1, Duration::from_secs(100)));
        assert!(!s.keep_warming(2, Duration::ZERO));
        let burst = s.next_burst(0, Duration::ZERO).unwrap();
        assert_eq!(burst, Burst { rewarm: Duration::ZERO, min_samples: 5, max_samples: 5, budget: Duration::ZERO });
        assert!(burst.keep_sampling(4, Duration::from_secs(100)));
        assert!(!burst.keep_sampling(5, Duration::ZERO));
        assert_eq!(s.next_burst(5, Duration::from_secs(100)), None);
        assert_eq!(s.iterations_per_sample(2, Duration::from_nanos(10), false), 1);
    }

    #[test]
    fn one_burst_stops_at_the_budget_but_never_below_min_nor_above_max() {
        let s = unbatched(1, 10, 3, 50, 100);
        let burst = s.next_burst(0, Duration::ZERO).unwrap();
        assert_eq!(
            burst,
            Burst { rewarm: Duration::ZERO, min_samples: 3, max_samples: 50, budget: Duration::from_millis(100) }
        );
        // Slow iterations: the minimum is still taken.
        assert!(burst.keep_sampling(2, Duration::from_secs(10)));
        assert!(!burst.keep_sampling(3, Duration::from_secs(10)));
        // Fast iterations: the budget decides, the maximum caps.
        assert!(burst.keep_sampling(10, Duration::from_millis(99)));
        assert!(!burst.keep_sampling(10, Duration::from_millis(100)));
        assert!(!burst.keep_sampling(50, Duration::ZERO));
        // After that burst the round is over, either way.
        assert_eq!(s.next_burst(10, Duration::from_millis(100)), None);
        assert_eq!(s.next_burst(50, Duration::from_millis(1)), None);
        // Warm-up: at least warmup_min, then until warmup_ms, capped by 100 × max_samples.
        assert!(s.keep_warming(0, Duration::from_secs(1)));
        assert!(!s.keep_warming(1, Duration::from_millis(10)));
        assert!(s.keep_warming(1, Duration::from_millis(9)));
        assert!(s.keep_warming(50, Duration::ZERO));
        assert!(s.keep_warming(4999, Duration::ZERO));
        assert!(!s.keep_warming(5000, Duration::ZERO));
    }

    #[test]
    fn bursts_take_turns_every_burst_ms_until_the_round_is_over() {
        let s = Sampling { burst_ms: 50, ..unbatched(1, 10, 6, 40, 400) };
        let ms = Duration::from_millis;
        // Each burst re-warms, takes at least one sample and at most its share of max_samples
        // (ceil(40 · 50 / 400) = 5), and lasts burst_ms of what is left.
        assert_eq!(
            s.next_burst(0, ms(0)),
            Some(Burst { rewarm: REWARM, min_samples: 1, max_samples: 5, budget: ms(50) })
        );
        assert_eq!(
            s.next_burst(30, ms(380)),
            Some(Burst { rewarm: REWARM, min_samples: 1, max_samples: 5, budget: ms(20) })
        );
        // The budget spent: over once min_samples are taken; below min_samples, one sample a burst.
        assert_eq!(s.next_burst(6, ms(400)), None);
        assert_eq!(
            s.next_burst(4, ms(900)),
            Some(Burst { rewarm: REWARM, min_samples: 1, max_samples: 5, budget: ms(0) })
        );
        // Near max_samples, the rest; max_samples taken: over, whatever is left of the budget.
        assert_eq!(s.next_burst(38, ms(10)).map(|b| b.max_samples), Some(2));
        assert_eq!(s.next_burst(40, ms(10)), None);
        // burst_ms 0, or at least the budget: one burst, no re-warm-up.
        for burst_ms in [0, 400, 500] {
            let one = Sampling { burst_ms, ..s }.next_burst(0, ms(0)).unwrap();
            assert_eq!(one, Burst { rewarm: Duration::ZERO, min_samples: 6, max_samples: 40, budget: ms(400) });
        }
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
        let timed = time_alone(sleeping(2), &s).unwrap();
        let n = timed.nanos.len();
        assert!((3..=12).contains(&n), "{n} samples");
        assert!((1..=4).contains(&timed.warmup), "{} warm-up iterations", timed.warmup);
        assert_eq!(timed.iterations_per_sample, 1);
        assert!(timed.nanos.iter().all(|&ns| ns >= 2_000_000));
        assert!(start.elapsed() < Duration::from_millis(500));

        // A free body is capped by max_samples (and its warm-up by 100 × max_samples).
        let timed = time_alone(Body::new(Device::Cpu, || Ok(())), &Sampling { max_samples: 7, ..s }).unwrap();
        assert_eq!(timed.nanos.len(), 7);
        assert!(timed.warmup <= 700);
    }

    #[test]
    fn bursts_re_warm_and_stop_at_burst_ms() {
        // 1 ms iterations, 12 ms bursts, a 72 ms round: each burst re-warms for 5 ms (at most
        // five sleeps of at least 1 ms, at least one), then takes samples for the rest of its
        // 12 ms, so several bursts of a few samples each.
        let s = Sampling { burst_ms: 12, ..unbatched(1, 0, 2, 1000, 72) };
        let mut session = Session::warm_up(sleeping(1), &s).unwrap();
        let (mut taken, mut spent, mut bursts) = (0, Duration::ZERO, 0u64);
        while let Some(rule) = s.next_burst(taken, spent) {
            let (samples, lasted) = session.burst(&rule).unwrap();
            assert!((1..=7).contains(&samples), "{samples} samples in a 12 ms burst of 1 ms iterations");
            assert!(lasted >= Duration::from_millis(6), "{lasted:?}: the re-warm-up and a sample at least");
            (taken, spent, bursts) = (taken + samples, spent + lasted, bursts + 1);
        }
        let timed = session.finish();
        assert!(bursts >= 3, "{bursts} bursts");
        assert_eq!(timed.nanos.len() as u64, taken);
        assert!(
            (1 + bursts..=1 + 5 * bursts).contains(&timed.warmup),
            "{} untimed iterations: the warm-up's one and one to five per burst",
            timed.warmup
        );
    }

    #[test]
    fn an_iteration_that_outlasts_a_burst_is_not_re_warmed() {
        // 12 ms iterations, 10 ms bursts: each burst is one sample, without a re-warm-up.
        let s = Sampling { burst_ms: 10, ..unbatched(1, 0, 3, 1000, 36) };
        let timed = time_alone(sleeping(12), &s).unwrap();
        assert_eq!(timed.warmup, 1, "the warm-up's one iteration, no re-warm-up");
        assert!(timed.nanos.len() >= 3, "{} samples", timed.nanos.len());
        // The same body with 20 ms bursts re-warms: at least one more untimed iteration per burst.
        let timed = time_alone(sleeping(12), &Sampling { burst_ms: 20, ..s }).unwrap();
        assert!(timed.warmup > 1, "{} untimed iterations", timed.warmup);
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
            burst_ms: 0,
        };
        let calls = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let counter = calls.clone();
        let timed = time_alone(
            Body::new(Device::Cpu, move || {
                counter.set(counter.get() + 1);
                std::thread::sleep(Duration::from_millis(1));
                Ok(())
            }),
            &s,
        )
        .unwrap();
        assert!(timed.iterations_per_sample >= 2, "{} iterations per sample", timed.iterations_per_sample);
        assert!((3..=20).contains(&timed.nanos.len()), "{} samples", timed.nanos.len());
        assert!(timed.nanos.iter().all(|&ns| ns >= 1_000_000), "{:?}", timed.nanos);
        assert_eq!(calls.get(), timed.warmup + timed.iterations_per_sample * timed.nanos.len() as u64);

        // The same body with a between callback: one iteration per sample, between before each.
        let betweens = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let counter = betweens.clone();
        let body = Body::with_between(
            Device::Cpu,
            move || {
                counter.set(counter.get() + 1);
                Ok(())
            },
            || {
                std::thread::sleep(Duration::from_micros(50));
                Ok(())
            },
        );
        let timed = time_alone(body, &Sampling { burst_ms: 10, ..s }).unwrap();
        assert_eq!(timed.iterations_per_sample, 1);
        assert_eq!(betweens.get(), timed.warmup + timed.nanos.len() as u64, "re-warm-ups run between too");
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
            burst_ms: 40,
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
                min_sample_us: 700,
                burst_ms: 40
            }
        );
        assert_eq!(Sampling::fixed(1, 4).per_round(), Sampling::fixed(1, 4));
    }

    #[test]
    fn min_sample_us_and_burst_ms_have_defaults_in_a_config() {
        let s: Sampling = serde_json::from_str(r#"{"budget_ms": 10}"#).unwrap();
        assert_eq!(s, Sampling { budget_ms: 10, ..Sampling::default() });
        assert_eq!((s.min_sample_us, s.burst_ms), (1000, 25));
        let s: Sampling = serde_json::from_str(r#"{"min_sample_us": 0, "burst_ms": 0}"#).unwrap();
        assert_eq!((s.min_sample_us, s.burst_ms), (0, 0));
        let rule = Burst { rewarm: REWARM, min_samples: 1, max_samples: 9, budget: Duration::from_micros(2500) };
        assert_eq!(
            serde_json::to_string(&rule).unwrap(),
            r#"{"rewarm_us":5000,"min_samples":1,"max_samples":9,"budget_us":2500}"#
        );
    }
}
