//! `norm-bench report`, the main job: norm's weight norm and spectral norm timed in Rust
//! and the same programs in PyTorch eager, side by side in one run, plus the accuracy of
//! the power iteration and the loss curves of two training programs, written to
//! `<out>/<run>/` (`docs/reports.md` has the options and every schema):
//!
//! - `timing.csv` — one row per case ([`cases`]), both sides' statistics ([`stats`]) and
//!   their ratio, bandwidths for `copy`, `weight_norm_forward` and `weight_norm_forward_out`;
//! - `convergence.csv` — σ estimates after k power iterations vs the SVD ([`convergence`]);
//! - `loss.csv` — per-step losses, Rust and PyTorch;
//! - `run.json`, `summary.md` ([`summary`]); `plots/*.png` ([`plots`]).
//!
//! For each case the PyTorch script ([`pytorch`]) times its side first, then Rust times
//! its side, one process at a time so they never compete for the CPU; both follow the same
//! adaptive [`sampling`] rule. Every file is rewritten (atomically, [`export`]) after every
//! finished piece of work, so an interrupted run keeps what it measured; `<out>/latest`
//! (a symlink) and `<out>/LATEST` (a text file) name the newest run. Progress, with an
//! estimate of the time left, goes to stderr; `summary.md` is printed on stdout at the end.
//!
//! Without a usable Python/torch (or with [`ReportOptions::pytorch`] off) the PyTorch
//! columns stay empty, a warning goes to stderr, and the run still succeeds; so it does
//! without matplotlib (no plots).

pub mod cases;
pub mod convergence;
pub mod export;
pub mod machine;
pub mod options;
pub mod plots;
pub mod pytorch;
pub mod sampling;
pub mod stats;
pub mod summary;

pub use options::{ReportArgs, ReportOptions};

use anyhow::{Context, Result};
use cases::{Case, DType, DeviceKind};
use convergence::{LossRun, SigmaRow};
use machine::Machine;
use pytorch::{Outcome, PytorchRunner};
use serde::Serialize;
use stats::Summary;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The tch crate norm-tch is built on (the workspace pins it).
pub const TCH_VERSION: &str = "0.24.0";

/// One side's result for a case.
#[derive(Clone, Debug, PartialEq)]
pub enum Side {
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
    pub fn failed(dtype: DType, message: String) -> Side {
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
    pub fn from_timed(timed: &sampling::Timed) -> Result<Side> {
        Ok(Side::Timed {
            warmup: timed.warmup,
            iterations_per_sample: timed.iterations_per_sample,
            samples: timed.nanos.len() as u64,
            summary: Summary::from_nanos(&timed.nanos)?,
        })
    }

    /// The CSV's `*_status`: `pending`, `skipped`, `ok`, `unsupported` or `error`.
    pub fn status(&self) -> &'static str {
        match self {
            Side::Pending => "pending",
            Side::Skipped => "skipped",
            Side::Timed { .. } => "ok",
            Side::Unsupported(_) => "unsupported",
            Side::Error(_) => "error",
        }
    }

    /// The statistics, when timed.
    pub fn summary(&self) -> Option<&Summary> {
        match self {
            Side::Timed { summary, .. } => Some(summary),
            _ => None,
        }
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
pub struct TimingRow {
    /// The case.
    pub case: Case,
    /// Intra-op threads on both sides.
    pub threads: usize,
    /// The Rust side.
    pub rust: Side,
    /// The PyTorch side.
    pub pytorch: Side,
}

impl TimingRow {
    /// Rust's median over PyTorch's (below 1: Rust is faster), when both sides are timed.
    pub fn ratio(&self) -> Option<f64> {
        match (self.rust.summary(), self.pytorch.summary()) {
            (Some(rust), Some(pytorch)) if pytorch.median_us > 0.0 => Some(rust.median_us / pytorch.median_us),
            _ => None,
        }
    }

    /// `bytes_moved / median` in GB/s (10⁹ bytes per second) of `side`, for the ops that move a known amount.
    pub fn bandwidth_gbps(&self, side: &Side) -> Option<f64> {
        let bytes = self.case.bytes_moved()? as f64;
        let median_us = side.summary()?.median_us;
        (median_us > 0.0).then(|| bytes / (median_us * 1e3))
    }

    /// The CSV's `note`: the failure messages, `rust: ...; pytorch: ...`.
    pub fn note(&self) -> String {
        let parts: Vec<String> = [("rust", &self.rust), ("pytorch", &self.pytorch)]
            .iter()
            .filter_map(|(name, side)| side.message().map(|m| format!("{name}: {m}")))
            .collect();
        parts.join("; ")
    }
}

/// One training run's per-step losses on both sides.
#[derive(Clone, Debug, PartialEq)]
pub struct LossCurve {
    /// Which program.
    pub run: LossRun,
    /// Rust's losses (float32), if that side ran.
    pub rust: Option<Vec<f32>>,
    /// PyTorch's losses (`loss.item()` of a float32 loss), if that side ran.
    pub pytorch: Option<Vec<f32>>,
}

/// What `run.json` says about the Rust side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RustEnv {
    /// norm's version.
    pub norm_version: String,
    /// tch's version.
    pub tch_version: String,
    /// ATen's CPU kernel capability.
    pub cpu_capability: String,
    /// libtorch's intra-op threads.
    pub threads: i32,
    /// `at::hasMKL()`.
    pub mkl: bool,
    /// `at::hasOpenMP()`.
    pub openmp: bool,
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
pub struct Report {
    /// The run folder's name.
    pub name: String,
    /// `<out>/<name>`.
    pub dir: PathBuf,
    /// The options used.
    pub options: ReportOptions,
    /// The machine.
    pub machine: Machine,
    /// The Rust side's environment.
    pub rust_env: RustEnv,
    /// The PyTorch script's `env` answer, if it runs.
    pub pytorch_env: Option<serde_json::Value>,
    /// Whether libtorch sees a CUDA device.
    pub cuda_available: bool,
    /// Start, seconds since the Unix epoch.
    pub started_unix: u64,
    started: Instant,
    /// End, once the run is complete.
    pub finished_unix: Option<u64>,
    finished_elapsed_s: Option<f64>,
    /// The timing rows started so far, in run order.
    pub timing: Vec<TimingRow>,
    /// Timing cases planned.
    pub timing_total: usize,
    /// Timing cases finished (every round of both sides).
    pub timing_done: usize,
    /// The σ study's rows so far.
    pub sigma: Vec<SigmaRow>,
    /// The loss curves so far.
    pub losses: Vec<LossCurve>,
    /// The plots written (relative to the run folder).
    pub plots: Vec<String>,
    /// Warnings worth keeping in the summary.
    pub warnings: Vec<String>,
}

impl Report {
    /// Seconds since the start (frozen at the end).
    pub fn elapsed_s(&self) -> f64 {
        self.finished_elapsed_s.unwrap_or_else(|| self.started.elapsed().as_secs_f64())
    }

    /// Rewrites every file of the run (atomically).
    pub fn write_all(&self) -> Result<()> {
        export::write_atomic(&self.dir.join("timing.csv"), export::timing_csv(&self.timing)?.as_bytes())?;
        export::write_atomic(&self.dir.join("convergence.csv"), export::convergence_csv(&self.sigma)?.as_bytes())?;
        export::write_atomic(&self.dir.join("loss.csv"), export::loss_csv(&self.losses)?.as_bytes())?;
        export::write_atomic(&self.dir.join("run.json"), format!("{:#}\n", summary::render_json(self)).as_bytes())?;
        export::write_atomic(&self.dir.join("summary.md"), summary::render_markdown(self).as_bytes())
    }

    fn warn(&mut self, message: String) {
        eprintln!("warning: {message}");
        self.warnings.push(message);
    }
}

/// Creates `<out>/<name>` (the UTC time of `now` unless `name` is given; a time that is
/// taken gets `-2`, `-3`, ...). Errors if a given name is taken.
pub fn create_run_dir(out: &Path, name: Option<&str>, now: u64) -> Result<(String, PathBuf)> {
    fs::create_dir_all(out).with_context(|| format!("creating the output folder {}", out.display()))?;
    let base = name.map(str::to_string).unwrap_or_else(|| machine::run_folder_name(now));
    for attempt in 1.. {
        let candidate = if attempt == 1 { base.clone() } else { format!("{base}-{attempt}") };
        let dir = out.join(&candidate);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok((candidate, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && name.is_none() => continue,
            Err(e) => return Err(e).with_context(|| format!("creating the run folder {}", dir.display())),
        }
    }
    unreachable!("the loop only ends by returning")
}

/// Points `<out>/latest` (a relative symlink, replaced atomically) and `<out>/LATEST` (a
/// text file with the name) at the run `name`.
pub fn update_latest(out: &Path, name: &str) -> Result<()> {
    export::write_atomic(&out.join("LATEST"), format!("{name}\n").as_bytes())?;
    #[cfg(unix)]
    {
        let tmp = out.join(".latest.tmp");
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(name, &tmp).with_context(|| format!("creating the symlink {}", tmp.display()))?;
        fs::rename(&tmp, out.join("latest")).with_context(|| format!("replacing {}", out.join("latest").display()))?;
    }
    Ok(())
}

/// Progress lines on stderr with an estimate of the time left, from a rough cost model
/// calibrated by the time the finished work took.
struct Progress {
    start: Instant,
    planned: f64,
    done: f64,
    items_done: usize,
    items: usize,
}

impl Progress {
    fn new(costs: &[f64]) -> Self {
        Progress {
            start: Instant::now(),
            planned: costs.iter().sum::<f64>().max(1e-9),
            done: 0.0,
            items_done: 0,
            items: costs.len(),
        }
    }

    fn step(&mut self, cost: f64, message: &str) {
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
fn case_cost(case: &Case, all_rounds: &sampling::Sampling) -> f64 {
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

/// Adds a round's samples to the pool of a side; returns the pool.
fn pool(pooled: &mut Option<sampling::Timed>, round: sampling::Timed) -> &sampling::Timed {
    match pooled {
        Some(p) => {
            p.pool(round);
            p
        }
        None => pooled.insert(round),
    }
}

/// `76.41 ms (6)`; `212.3 µs (300 × 5 it)` for batched samples.
fn median_text(side: &Side) -> String {
    match side {
        Side::Timed { summary, samples, iterations_per_sample: 1, .. } => {
            format!("{} ({samples})", summary::duration_text(summary.median_us))
        }
        Side::Timed { summary, samples, iterations_per_sample, .. } => {
            format!("{} ({samples} × {iterations_per_sample} it)", summary::duration_text(summary.median_us))
        }
        other => other.status().to_string(),
    }
}

/// Runs the report; returns its final state.
///
/// Errors: invalid options or an unwritable output folder. Failing cases, a missing or
/// failing PyTorch side, and missing plots are warnings.
pub fn run(options: &ReportOptions) -> Result<Report> {
    options.validate()?;
    norm_tch::backend::set_num_threads(options.threads)?;
    let _generator = norm_tch::backend::lock_global_generator();
    let started_unix = machine::unix_now();
    let (name, dir) = create_run_dir(&options.out, options.run_name.as_deref(), started_unix)?;
    eprintln!("report: writing {}", dir.display());
    let cuda_available = norm_tch::backend::cuda_device(0).is_some();
    let available: Vec<DeviceKind> =
        if cuda_available { vec![DeviceKind::Cpu, DeviceKind::Cuda] } else { vec![DeviceKind::Cpu] };
    let cases = options.timing_cases(&available);
    let mut report = Report {
        name: name.clone(),
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
        timing: Vec::with_capacity(cases.len()),
        timing_total: cases.len(),
        timing_done: 0,
        sigma: Vec::new(),
        losses: Vec::new(),
        plots: Vec::new(),
        warnings: Vec::new(),
    };
    if let Err(e) = update_latest(&options.out, &name) {
        report.warn(format!("could not update {}/latest: {e:#}", options.out.display()));
    }
    if options.devices.contains(&DeviceKind::Cuda) && !cuda_available {
        eprintln!("note: libtorch sees no CUDA device: CPU rows only");
    }
    report.write_all()?;

    let sigma_jobs: Vec<(cases::Shape, convergence::MatrixKind)> = if options.convergence {
        options.convergence_shapes.iter().flat_map(|&s| options.matrix_kinds.iter().map(move |&k| (s, k))).collect()
    } else {
        Vec::new()
    };
    let loss_jobs: Vec<(LossRun, u64)> = if options.loss_curves {
        vec![
            (LossRun::SeedWeightNorm, options.seed_loop_steps),
            (LossRun::SpectralNormLinear64, options.spectral_train_steps),
        ]
    } else {
        Vec::new()
    };
    let mut costs: Vec<f64> = cases.iter().map(|c| case_cost(c, &options.sampling)).collect();
    costs.extend(sigma_jobs.iter().map(|(s, _)| 0.1 + 6e-10 * (s.elements() as f64).powf(1.5)));
    costs.extend(loss_jobs.iter().map(|(_, steps)| 0.1 + 0.002 * *steps as f64));
    let mut progress = Progress::new(&costs);
    let mut cost_iter = costs.into_iter();

    let mut pytorch = start_pytorch(options, &mut report);
    if let Some(runner) = pytorch.as_mut() {
        match runner.env() {
            Ok(env) => {
                if let Some(p) = env.get("cpu_capability").and_then(|c| c.as_str()) {
                    if p != report.rust_env.cpu_capability {
                        report.warn(format!(
                            "ATen CPU capability differs: Rust {}, PyTorch {p}",
                            report.rust_env.cpu_capability
                        ));
                    }
                }
                report.pytorch_env = Some(env);
            }
            Err(e) => {
                report.warn(format!("the PyTorch side did not start: {e:#}; its columns stay empty"));
                pytorch = None;
            }
        }
    }

    let round_sampling = options.sampling.per_round();
    for case in &cases {
        report.timing.push(TimingRow {
            case: *case,
            threads: options.threads,
            rust: Side::Pending,
            pytorch: if pytorch.is_some() { Side::Pending } else { Side::Skipped },
        });
        let row = report.timing.len() - 1;
        // Rounds alternate the sides (PyTorch, Rust, PyTorch, Rust, ...); a side that fails
        // is not asked again for this case. The samples of all rounds are pooled.
        let (mut pytorch_timed, mut rust_timed) = (None::<sampling::Timed>, None::<sampling::Timed>);
        for _ in 0..options.sampling.rounds.max(1) {
            if let (Some(runner), Side::Pending | Side::Timed { .. }) = (pytorch.as_mut(), &report.timing[row].pytorch)
            {
                report.timing[row].pytorch = match runner.time_case(case, &round_sampling) {
                    Ok(Outcome::Done(timed)) => Side::from_timed(pool(&mut pytorch_timed, timed))?,
                    Ok(Outcome::Failed(message)) => {
                        eprintln!("note: PyTorch could not run {}: {message}", case.label());
                        Side::failed(case.dtype, message)
                    }
                    Err(e) => {
                        report.warn(format!(
                            "the PyTorch side stopped at {}: {e:#}; the remaining PyTorch columns stay empty",
                            case.label()
                        ));
                        pytorch = None;
                        Side::Skipped
                    }
                };
                report.write_all()?;
            }
            if let Side::Pending | Side::Timed { .. } = report.timing[row].rust {
                report.timing[row].rust = match cases::time_rust(case, &round_sampling) {
                    Ok(timed) => Side::from_timed(pool(&mut rust_timed, timed))?,
                    Err(e) => {
                        eprintln!("note: Rust could not run {}: {e:#}", case.label());
                        Side::failed(case.dtype, format!("{e:#}"))
                    }
                };
                report.write_all()?;
            }
        }
        if let Side::Error(message) = &report.timing[row].rust {
            let message = format!("Rust failed on {}: {message}", case.label());
            report.warn(message);
        }
        report.timing_done += 1;
        report.write_all()?;
        let r = &report.timing[row];
        let ratio = r.ratio().map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into());
        progress.step(
            cost_iter.next().unwrap_or(0.0),
            &format!(
                "{}: rust {}, pytorch {}, ratio {ratio}",
                case.label(),
                median_text(&r.rust),
                median_text(&r.pytorch)
            ),
        );
    }

    for (shape, kind) in sigma_jobs {
        let mut rows = match convergence::sigma_study(kind, shape.rows, shape.cols, &options.convergence_iterations) {
            Ok(rows) => rows,
            Err(e) => {
                report.warn(format!("σ study of {kind} {shape} failed in Rust: {e:#}"));
                progress.step(cost_iter.next().unwrap_or(0.0), &format!("σ {kind} {shape}: failed"));
                continue;
            }
        };
        if let Some(runner) = pytorch.as_mut() {
            let spectrum = (kind == convergence::MatrixKind::IllConditioned)
                .then(|| convergence::spectrum(shape.rows.min(shape.cols) as usize));
            match runner.sigma(
                kind,
                shape.rows,
                shape.cols,
                convergence::SIGMA_SEED,
                spectrum.as_deref(),
                &options.convergence_iterations,
            ) {
                // Float32 values: rounding to f32 undoes any last-bit error of the JSON float parser.
                Ok(Outcome::Done(sigma)) => rows
                    .iter_mut()
                    .zip(sigma)
                    .for_each(|(row, s)| row.sigma_estimate_pytorch = Some(f64::from(s as f32))),
                Ok(Outcome::Failed(message)) => {
                    report.warn(format!("PyTorch's σ study of {kind} {shape} failed: {message}"))
                }
                Err(e) => {
                    report.warn(format!("the PyTorch side stopped: {e:#}"));
                    pytorch = None;
                }
            }
        }
        let errors: Vec<String> =
            rows.iter().map(|r| format!("k={} {:.1e}", r.n_power_iterations, r.rel_error())).collect();
        report.sigma.extend(rows);
        report.write_all()?;
        progress.step(cost_iter.next().unwrap_or(0.0), &format!("σ {kind} {shape}: rel. error {}", errors.join(", ")));
    }

    for (run, steps) in loss_jobs {
        let mut curve = LossCurve { run, rust: None, pytorch: None };
        match convergence::losses(run, steps) {
            Ok(losses) => curve.rust = Some(losses),
            Err(e) => report.warn(format!("loss run {} failed in Rust: {e:#}", run.name())),
        }
        if let Some(runner) = pytorch.as_mut() {
            match runner.losses(run, steps) {
                // Float32 values: rounding to f32 undoes any last-bit error of the JSON float parser.
                Ok(Outcome::Done(losses)) => curve.pytorch = Some(losses.into_iter().map(|l| l as f32).collect()),
                Ok(Outcome::Failed(message)) => {
                    report.warn(format!("PyTorch's loss run {} failed: {message}", run.name()))
                }
                Err(e) => {
                    report.warn(format!("the PyTorch side stopped: {e:#}"));
                    pytorch = None;
                }
            }
        }
        let last = curve.rust.as_ref().and_then(|l| l.last()).map(|l| format!("{l:.5}")).unwrap_or_else(|| "–".into());
        report.losses.push(curve);
        report.write_all()?;
        progress.step(cost_iter.next().unwrap_or(0.0), &format!("loss {}: last loss {last}", run.name()));
    }

    if let Some(runner) = pytorch {
        if let Err(e) = runner.finish() {
            report.warn(format!("{e:#}"));
        }
    }

    if options.plots {
        let python = options.python.clone().unwrap_or_else(pytorch::default_python);
        match plots::draw(&python, &report.dir) {
            Ok(written) => {
                eprintln!("plots: {} PNG files in {}", written.len(), report.dir.join("plots").display());
                report.plots = written;
            }
            Err(e) => report.warn(format!("no plots: {e:#}")),
        }
    }
    report.finished_elapsed_s = Some(report.started.elapsed().as_secs_f64());
    report.finished_unix = Some(machine::unix_now());
    report.write_all()?;
    Ok(report)
}

/// Starts the PyTorch side, or says why there is none.
fn start_pytorch(options: &ReportOptions, report: &mut Report) -> Option<PytorchRunner> {
    if !options.pytorch {
        eprintln!("note: the PyTorch side is off: its columns stay empty");
        return None;
    }
    let python = options.python.clone().unwrap_or_else(pytorch::default_python);
    match PytorchRunner::start(&python, options.threads) {
        Ok(runner) => {
            eprintln!("pytorch side: eager_timing.py with {}", runner.python().display());
            Some(runner)
        }
        Err(e) => {
            report.warn(format!("no PyTorch side ({e:#}); its columns stay empty"));
            None
        }
    }
}

/// `norm-bench report`: resolves the options (exit 2 with a message when they are
/// invalid), runs the report, prints `summary.md` on stdout.
pub fn run_cli(args: &ReportArgs) -> Result<ExitCode> {
    let options = match args.resolve() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let report = run(&options)?;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", summary::render_markdown(&report))?;
    writeln!(stdout, "\nwrote {} (also {}/latest)", report.dir.display(), options.out.display())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("norm-bench-report-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn run_folders_are_timestamps_and_latest_follows_them() {
        let out = scratch_dir("folders");
        let (first, dir) = create_run_dir(&out, None, 1_795_892_700).unwrap();
        assert_eq!(first, "2026-11-28T19-05-00Z");
        assert!(dir.is_dir());
        let (second, _) = create_run_dir(&out, None, 1_795_892_700).unwrap();
        assert_eq!(second, "2026-11-28T19-05-00Z-2");
        assert!(create_run_dir(&out, Some(&first), 0).is_err(), "a given name that is taken is an error");
        update_latest(&out, &first).unwrap();
        update_latest(&out, &second).unwrap();
        assert_eq!(fs::read_to_string(out.join("LATEST")).unwrap(), format!("{second}\n"));
        assert_eq!(fs::read_link(out.join("latest")).unwrap(), PathBuf::from(&second));
        fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn a_small_run_without_pytorch_writes_every_file() {
        let out = scratch_dir("small");
        let options = ReportOptions {
            out: out.clone(),
            run_name: Some("t".into()),
            ops: vec![
                cases::Op::Copy,
                cases::Op::WeightNormForward,
                cases::Op::PowerIteration,
                cases::Op::SeedLoopStep,
            ],
            sizes: vec![8],
            rect_shapes: vec![],
            extra_dtypes: vec![DType::F64],
            dtype_ops: vec![cases::Op::WeightNormForward],
            dtype_shapes: vec![cases::Shape::square(8)],
            power_iteration_counts: vec![2],
            sampling: sampling::Sampling::fixed(1, 3),
            convergence_shapes: vec![cases::Shape { rows: 6, cols: 4 }],
            convergence_iterations: vec![1, 5],
            seed_loop_steps: 2,
            spectral_train_steps: 3,
            plots: false,
            pytorch: false,
            ..ReportOptions::default()
        };
        let report = run(&options).unwrap();
        let dir = out.join("t");
        let timing = fs::read_to_string(dir.join("timing.csv")).unwrap();
        let lines: Vec<&str> = timing.lines().collect();
        assert_eq!(lines[0], export::TIMING_HEADER.join(","));
        assert_eq!(lines.len(), 1 + 5, "{timing}");
        assert!(lines[1].starts_with("copy,8x8,8,8,f32,cpu,,1,ok,1,1,3,"), "{}", lines[1]);
        assert!(lines[3].starts_with("power_iteration,8x8,8,8,f32,cpu,2,1,ok,"), "{}", lines[3]);
        assert!(lines[4].starts_with("weight_norm_forward,8x8,8,8,f64,cpu,,1,ok,"), "{}", lines[4]);
        assert!(
            lines[5].starts_with("seed_loop_step,3x2,3,2,f32,cpu,,1,ok,1,1,3,") && lines[5].contains(",skipped,"),
            "{}",
            lines[5]
        );
        let convergence = fs::read_to_string(dir.join("convergence.csv")).unwrap();
        assert_eq!(convergence.lines().count(), 1 + 2 * 2);
        let loss = fs::read_to_string(dir.join("loss.csv")).unwrap();
        assert_eq!(loss.lines().count(), 1 + 6 + 3);
        let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        assert_eq!(json["status"], "complete");
        assert_eq!(json["options"]["sizes"], serde_json::json!([8]));
        let md = fs::read_to_string(dir.join("summary.md")).unwrap();
        assert!(md.contains("**complete**") && md.contains("| weight_norm_forward |"), "{md}");
        assert_eq!(report.timing.len(), 5);
        assert_eq!(fs::read_to_string(out.join("LATEST")).unwrap(), "t\n");
        fs::remove_dir_all(&out).unwrap();
    }
}
