//! A report run's state ([`Report`]): everything its files are rebuilt from, and the
//! rebuild itself ([`Report::write_all`]) after every finished piece of work; with the
//! Rust side's environment ([`RustEnv`]) that `run.json` records.

use super::case::{DType, DeviceKind, Shape};
use super::convergence::SigmaRow;
use super::export;
use super::machine::Machine;
use super::operator_norm_rows::OperatorNormRow;
use super::ops::Op;
use super::options::ReportOptions;
use super::results::{LossCurve, TimingRow};
use super::run_json;
use super::summary;
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// The tch crate norm-tch is built on (the workspace pins it).
pub(crate) const TCH_VERSION: &str = "0.24.0";

/// What `run.json` says about the Rust side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RustEnv {
    /// norm's version.
    pub(crate) norm_version: String,
    /// tch's version.
    pub(crate) tch_version: String,
    /// ATen's CPU kernel capability.
    pub(crate) cpu_capability: String,
    /// libtorch's intra-op threads.
    pub(crate) threads: i32,
    /// `at::hasMKL()`.
    pub(crate) mkl: bool,
    /// `at::hasOpenMP()`.
    pub(crate) openmp: bool,
}

impl RustEnv {
    fn detect() -> Self {
        RustEnv {
            norm_version: env!("CARGO_PKG_VERSION").to_string(),
            tch_version: TCH_VERSION.to_string(),
            cpu_capability: norm_tch::backend::cpu_capability(),
            threads: tch::get_num_threads(),
            mkl: tch::utils::has_mkl(),
            openmp: tch::utils::has_openmp(),
        }
    }
}

/// A report run's state: everything its files are rebuilt from.
#[derive(Debug)]
pub(crate) struct Report {
    /// The run folder's name.
    pub(crate) name: String,
    /// `<out>/<name>`.
    pub(crate) dir: PathBuf,
    /// The options used.
    pub(crate) options: ReportOptions,
    /// The machine.
    pub(crate) machine: Machine,
    /// The Rust side's environment.
    pub(crate) rust_env: RustEnv,
    /// The PyTorch script's `env` answer, if it runs.
    pub(crate) pytorch_env: Option<serde_json::Value>,
    /// Whether libtorch sees a CUDA device.
    pub(crate) cuda_available: bool,
    /// Start, seconds since the Unix epoch.
    pub(crate) started_unix: u64,
    started: Instant,
    /// End, once the run is complete.
    pub(crate) finished_unix: Option<u64>,
    finished_elapsed_s: Option<f64>,
    /// The timing rows started so far, in run order.
    pub(crate) timing: Vec<TimingRow>,
    /// Timing cases planned.
    pub(crate) timing_total: usize,
    /// Timing cases finished (every round of both sides).
    pub(crate) timing_done: usize,
    /// The σ study's rows so far.
    pub(crate) sigma: Vec<SigmaRow>,
    /// The loss curves so far.
    pub(crate) losses: Vec<LossCurve>,
    /// The `operator_norm.csv` rows so far.
    pub(crate) operator_norms: Vec<OperatorNormRow>,
    /// The tolerance study's rows so far ([`super::tolerance_study`]).
    pub(crate) tolerance: Vec<super::tolerance_study::ToleranceRow>,
    /// The plots written (relative to the run folder).
    pub(crate) plots: Vec<String>,
    /// Warnings worth keeping in the summary.
    pub(crate) warnings: Vec<String>,
}

impl Report {
    /// The state at the start of a run in `dir` (named `name`) with `options`, started at
    /// `started_unix`, that plans `timing_total` timing cases: nothing measured yet.
    pub(crate) fn new(
        name: String,
        dir: PathBuf,
        options: &ReportOptions,
        cuda_available: bool,
        started_unix: u64,
        timing_total: usize,
    ) -> Self {
        Report {
            name,
            dir,
            options: options.clone(),
            machine: Machine::detect(),
            rust_env: RustEnv::detect(),
            pytorch_env: None,
            cuda_available,
            started_unix,
            started: Instant::now(),
            finished_unix: None,
            finished_elapsed_s: None,
            timing: Vec::with_capacity(timing_total),
            timing_total,
            timing_done: 0,
            sigma: Vec::new(),
            losses: Vec::new(),
            operator_norms: Vec::new(),
            tolerance: Vec::new(),
            plots: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Marks the run complete at `finished_unix`: the elapsed time stops.
    pub(crate) fn finish(&mut self, finished_unix: u64) {
        self.finished_elapsed_s = Some(self.started.elapsed().as_secs_f64());
        self.finished_unix = Some(finished_unix);
    }

    /// Seconds since the start (frozen at the end).
    pub(crate) fn elapsed_s(&self) -> f64 {
        self.finished_elapsed_s.unwrap_or_else(|| self.started.elapsed().as_secs_f64())
    }

    /// Rewrites every file of the run (atomically).
    /// The timing row of `op` at `shape` in `dtype` on `device` (with `k` power iterations
    /// when `k` is given), if the sweep has reached it.
    pub(crate) fn find_row(
        &self,
        op: Op,
        shape: Shape,
        dtype: DType,
        device: DeviceKind,
        k: Option<u64>,
    ) -> Option<&TimingRow> {
        self.timing.iter().find(|r| {
            let c = &r.case;
            c.op == op
                && c.shape() == shape
                && c.dtype == dtype
                && c.device == device
                && (k.is_none() || c.n_power_iterations == k)
        })
    }

    /// Rewrites every file of the run (atomically).
    pub(crate) fn write_all(&self) -> Result<()> {
        export::write_atomic(
            &self.dir.join("timing.csv"),
            export::timing_csv(&self.timing, self.options.settle_width)?.as_bytes(),
        )?;
        export::write_atomic(&self.dir.join("convergence.csv"), export::convergence_csv(&self.sigma)?.as_bytes())?;
        export::write_atomic(&self.dir.join("loss.csv"), export::loss_csv(&self.losses)?.as_bytes())?;
        export::write_atomic(
            &self.dir.join("operator_norm.csv"),
            export::operator_norm_csv(&self.operator_norms)?.as_bytes(),
        )?;
        export::write_atomic(
            &self.dir.join("tolerance.csv"),
            super::tolerance_study::tolerance_csv(&self.tolerance)?.as_bytes(),
        )?;
        export::write_atomic(&self.dir.join("run.json"), format!("{:#}\n", run_json::render_json(self)).as_bytes())?;
        export::write_atomic(&self.dir.join("summary.md"), summary::render_markdown(self).as_bytes())
    }

    /// Prints `message` as a warning on stderr and keeps it for the summary.
    pub(crate) fn warn(&mut self, message: String) {
        eprintln!("warning: {message}");
        self.warnings.push(message);
    }
}
