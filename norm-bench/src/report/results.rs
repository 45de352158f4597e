//! What the report measured, row by row: one side's outcome of a timing case ([`Side`]),
//! a line of `timing.csv` ([`TimingRow`]: a case and both sides), and a training run's
//! loss curves ([`LossCurve`]).

use super::case::{Case, DType};
use super::convergence::LossRun;
use super::interval::Interval;
use super::sampling::Timed;
use super::stats::Summary;
use anyhow::Result;

/// One side's result for a case.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Side {
    /// Not timed yet.
    Pending,
    /// Not timed at all (no PyTorch side).
    Skipped,
    /// Timed: warm-up iterations, samples and their statistics.
    Timed {
        /// Warm-up iterations run.
        warmup: u64,
        /// Iterations per sample (the smallest of the rounds').
        iterations_per_sample: u64,
        /// Samples taken.
        samples: u64,
        /// Their statistics.
        summary: Summary,
    },
    /// The op raised for a dtype other than f32 (its message).
    Unsupported(String),
    /// The case failed (its message).
    Error(String),
}

impl Side {
    /// The side of a failed case: [`Side::Unsupported`] for a dtype other than f32 (the
    /// op or its dtype has no kernel there), [`Side::Error`] otherwise.
    pub(crate) fn failed(dtype: DType, message: String) -> Side {
        let first_line = message.lines().next().unwrap_or_default();
        let mut short: String = first_line.chars().take(300).collect();
        if short.len() < first_line.len() {
            short.push('…');
        }
        if dtype == DType::F32 {
            Side::Error(short)
        } else {
            Side::Unsupported(short)
        }
    }

    /// The side's outcome of a timing.
    pub(crate) fn from_timed(timed: &Timed) -> Result<Side> {
        Ok(Side::Timed {
            warmup: timed.warmup,
            iterations_per_sample: timed.iterations_per_sample,
            samples: timed.nanos.len() as u64,
            summary: Summary::from_nanos(&timed.nanos)?,
        })
    }

    /// The CSV's `*_status`: `pending`, `skipped`, `ok`, `unsupported` or `error`.
    pub(crate) fn status(&self) -> &'static str {
        match self {
            Side::Pending => "pending",
            Side::Skipped => "skipped",
            Side::Timed { .. } => "ok",
            Side::Unsupported(_) => "unsupported",
            Side::Error(_) => "error",
        }
    }

    /// The statistics, when timed.
    pub(crate) fn summary(&self) -> Option<&Summary> {
        match self {
            Side::Timed { summary, .. } => Some(summary),
            _ => None,
        }
    }

    /// The median in µs, when timed.
    pub(crate) fn median_us(&self) -> Option<f64> {
        self.summary().map(|s| s.median_us)
    }

    fn message(&self) -> Option<&str> {
        match self {
            Side::Unsupported(m) | Side::Error(m) => Some(m),
            _ => None,
        }
    }
}

/// One line of `timing.csv`: a case and both sides.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TimingRow {
    /// The case.
    pub(crate) case: Case,
    /// Intra-op threads on both sides.
    pub(crate) threads: usize,
    /// The Rust side.
    pub(crate) rust: Side,
    /// The PyTorch side.
    pub(crate) pytorch: Side,
    /// The bootstrap interval of [`TimingRow::ratio`] ([`interval`](super::interval)), when both sides are timed.
    pub(crate) interval: Option<Interval>,
    /// Rounds run (the options' `rounds`, plus extra rounds for a wide interval).
    pub(crate) rounds: u64,
    /// Burst pairs over all rounds: the units the interval resamples.
    pub(crate) bursts: u64,
    /// A whole-model training row's loss check ([`model_rows`](super::model_rows)):
    /// whether Rust's and PyTorch's losses are bit-equal, and the note saying so.
    pub(crate) loss_check: Option<(bool, String)>,
}

impl TimingRow {
    /// Rust's median over PyTorch's (below 1: Rust is faster), when both sides are timed.
    pub(crate) fn ratio(&self) -> Option<f64> {
        match (self.rust.summary(), self.pytorch.summary()) {
            (Some(rust), Some(pytorch)) if pytorch.median_us > 0.0 => Some(rust.median_us / pytorch.median_us),
            _ => None,
        }
    }

    /// Whether the ratio's interval is at most `settle_width` wide relative to the ratio;
    /// `None` without a ratio or an interval.
    pub(crate) fn settled(&self, settle_width: f64) -> Option<bool> {
        Some(self.interval?.settled(self.ratio()?, settle_width))
    }

    /// `bytes_moved / median` in GB/s (10⁹ bytes per second) of `side`, for the ops that move a known amount.
    pub(crate) fn bandwidth_gbps(&self, side: &Side) -> Option<f64> {
        let bytes = self.case.bytes_moved()? as f64;
        let median_us = side.summary()?.median_us;
        (median_us > 0.0).then(|| bytes / (median_us * 1e3))
    }

    /// The CSV's `note`: the failure messages, `rust: ...; pytorch: ...`.
    pub(crate) fn note(&self) -> String {
        let parts: Vec<String> = [("rust", &self.rust), ("pytorch", &self.pytorch)]
            .iter()
            .filter_map(|(name, side)| side.message().map(|m| format!("{name}: {m}")))
            .chain(self.loss_check.as_ref().map(|(_, note)| note.clone()))
            .collect();
        parts.join("; ")
    }
}

/// One training run's per-step losses on both sides.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LossCurve {
    /// Which program.
    pub(crate) run: LossRun,
    /// Rust's losses (float32), if that side ran.
    pub(crate) rust: Option<Vec<f32>>,
    /// PyTorch's losses (`loss.item()` of a float32 loss), if that side ran.
    pub(crate) pytorch: Option<Vec<f32>>,
}
