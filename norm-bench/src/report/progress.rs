//! Progress lines on stderr, with an estimate of the time left ([`Progress`]), and the
//! rough cost model behind the estimate: [`case_cost`] (from the op's row of the table),
//! [`sigma_cost`] and [`loss_cost`].

use super::case::{Case, DType, DeviceKind, Shape};
use super::sampling::{self, Sampling};
use super::summary;
use std::time::Instant;

/// Progress lines on stderr with an estimate of the time left, from a rough cost model
/// calibrated by the time the finished work took.
pub(crate) struct Progress {
    start: Instant,
    planned: f64,
    done: f64,
    items_done: usize,
    items: usize,
}

impl Progress {
    /// Progress over items of the given rough costs (seconds), starting now.
    pub(crate) fn new(costs: &[f64]) -> Self {
        Progress {
            start: Instant::now(),
            planned: costs.iter().sum::<f64>().max(1e-9),
            done: 0.0,
            items_done: 0,
            items: costs.len(),
        }
    }

    /// One more item, of rough cost `cost`, is done: prints the bar, the count, the
    /// estimate of the time left and `message`.
    pub(crate) fn step(&mut self, cost: f64, message: &str) {
        self.done += cost;
        self.items_done += 1;
        let fraction = (self.done / self.planned).clamp(0.0, 1.0);
        let elapsed = self.start.elapsed().as_secs_f64();
        // The cost model's seconds, calibrated by the time the finished work took once a few items are done.
        let seconds_per_unit = if self.items_done >= 4 && self.done > 0.0 { elapsed / self.done } else { 1.0 };
        let eta = (self.planned - self.done).max(0.0) * seconds_per_unit;
        let width = 24;
        let filled = (fraction * width as f64).round() as usize;
        eprintln!(
            "[{}{}] {:>3}/{} {:>3.0}% {} left | {message}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.items_done,
            self.items,
            100.0 * fraction,
            summary::elapsed_text(eta)
        );
    }
}

/// The rough cost in seconds of one timing case, both sides (for the progress estimate).
pub(crate) fn case_cost(case: &Case, all_rounds: &Sampling) -> f64 {
    let sampling = all_rounds.per_round();
    let device_factor = if case.device == DeviceKind::Cuda { 0.02 } else { 1.0 };
    let per_iteration = case.op.rough_ns_per_element(case.n_power_iterations.unwrap_or(1))
        * 1e-9
        * case.shape().elements() as f64
        * device_factor;
    let per_iteration = per_iteration * if case.dtype == DType::F32 { 1.0 } else { 2.0 };
    let warmup_cap = (sampling.max_samples * sampling::WARMUP_FACTOR) as f64 * per_iteration;
    let warmup = (sampling.warmup_min as f64 * per_iteration).max((sampling.warmup_ms as f64 * 1e-3).min(warmup_cap));
    // A batched sample lasts about min_sample_us (ops with untimed work between iterations do not batch; ignored here).
    let per_sample = per_iteration.max(sampling.min_sample_us as f64 * 1e-6);
    let samples = (sampling.min_samples as f64 * per_sample)
        .max((sampling.budget_ms as f64 * 1e-3).min(sampling.max_samples as f64 * per_sample));
    let setup = 20e-9 * case.shape().elements() as f64 + 0.01;
    2.0 * all_rounds.rounds.max(1) as f64 * (warmup + setup + samples)
}

/// The rough cost in seconds of the σ study of one matrix, both sides.
pub(crate) fn sigma_cost(shape: Shape) -> f64 {
    0.1 + 6e-10 * (shape.elements() as f64).powf(1.5)
}

/// The rough cost in seconds of one model's `operator_norm.csv` rows.
pub(crate) fn operator_norm_cost() -> f64 {
    5.0
}

/// The rough cost in seconds of a loss run of `steps` steps, both sides.
pub(crate) fn loss_cost(steps: u64) -> f64 {
    0.1 + 0.002 * steps as f64
}
