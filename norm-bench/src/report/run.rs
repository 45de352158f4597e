//! `norm-bench report`'s run, start to end ([`run`]): the run folder and the state, the
//! PyTorch side started, then the timing cases (each in rounds, PyTorch then Rust), the σ
//! study, the loss curves and the plots, the files rewritten after every piece of work
//! and one progress line per piece; [`run_cli`] is the subcommand around it.

use super::args::ReportArgs;
use super::case::{Case, DeviceKind, Shape};
use super::convergence::{self, LossRun, MatrixKind};
use super::interval;
use super::machine;
use super::model_rows::{self, LOSS_CHECK_STEPS};
use super::operator_norm_rows::{self, OperatorNormModel};
use super::ops::Op;
use super::options::ReportOptions;
use super::plots;
use super::progress::{case_cost, loss_cost, operator_norm_cost, sigma_cost, Progress};
use super::pytorch::{self, Outcome, PytorchRunner};
use super::results::{LossCurve, Side, TimingRow};
use super::run_folder::{create_run_dir, update_latest};
use super::rust_side;
use super::sampling::{Sampling, Timed};
use super::state::Report;
use super::summary;
use anyhow::Result;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    let missing = options.missing_devices(norm_tch::backend::cuda_device(0).is_some());
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|d| d.name()).collect();
        eprintln!(
            "error: --device {}: libtorch sees no CUDA device here (tch::Cuda::is_available() is false, \
             {} device(s)); run on a machine with an NVIDIA GPU and a CUDA build of torch, or pass --device cpu",
            names.join(","),
            tch::Cuda::device_count()
        );
        return Ok(ExitCode::from(2));
    }
    let report = run(&options)?;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", summary::render_markdown(&report))?;
    writeln!(stdout, "\nwrote {} (also {}/latest)", report.dir.display(), options.out.display())?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the report; returns its final state.
///
/// Errors: invalid options or an unwritable output folder. Failing cases, a missing or
/// failing PyTorch side, and missing plots are warnings.
pub(crate) fn run(options: &ReportOptions) -> Result<Report> {
    options.validate()?;
    norm_tch::backend::set_num_threads(options.threads)?;
    let _generator = norm_tch::backend::lock_global_generator();
    let (mut report, cases) = start(options)?;
    let sigma_jobs = sigma_jobs(options);
    let loss_jobs = loss_jobs(options);
    let operator_norm_jobs: &[OperatorNormModel] = if options.operator_norm { &OperatorNormModel::ALL } else { &[] };
    let mut costs: Vec<f64> = cases.iter().map(|c| case_cost(c, &options.sampling)).collect();
    costs.extend(sigma_jobs.iter().map(|&(shape, _)| sigma_cost(shape)));
    costs.extend(loss_jobs.iter().map(|&(_, steps)| loss_cost(steps)));
    costs.extend(operator_norm_jobs.iter().map(|_| operator_norm_cost()));
    let mut progress = Progress::new(&costs);

    let mut pytorch = start_pytorch(options, &mut report);
    let mut extra = ExtraRounds::new(options, cases.len());
    for case in &cases {
        time_case(&mut report, &mut pytorch, case, options, &mut progress, &mut extra)?;
    }
    for &(shape, kind) in &sigma_jobs {
        sigma_job(&mut report, &mut pytorch, shape, kind, options, &mut progress)?;
    }
    for &(run, steps) in &loss_jobs {
        loss_job(&mut report, &mut pytorch, run, steps, &mut progress)?;
    }
    for &model in operator_norm_jobs {
        operator_norm_job(&mut report, model, &mut progress)?;
    }
    tolerance_jobs(&mut report, options)?;
    finish(report, pytorch, options)
}

/// Creates the run folder, points `latest` at it and writes the first files; returns the
/// state and the timing cases planned.
fn start(options: &ReportOptions) -> Result<(Report, Vec<Case>)> {
    let started_unix = machine::unix_now();
    let (name, dir) = create_run_dir(&options.out, options.run_name.as_deref(), started_unix)?;
    eprintln!("report: writing {}", dir.display());
    let cuda_available = norm_tch::backend::cuda_device(0).is_some();
    let available: Vec<DeviceKind> =
        if cuda_available { vec![DeviceKind::Cpu, DeviceKind::Cuda] } else { vec![DeviceKind::Cpu] };
    let cases = options.timing_cases(&available);
    let mut report = Report::new(name.clone(), dir, options, cuda_available, started_unix, cases.len());
    if let Err(e) = update_latest(&options.out, &name) {
        report.warn(format!("could not update {}/latest: {e:#}", options.out.display()));
    }
    if options.devices.contains(&DeviceKind::Cuda) && !cuda_available {
        eprintln!("note: libtorch sees no CUDA device: CPU rows only");
    }
    report.write_all()?;
    Ok((report, cases))
}

/// The tolerance study ([`super::tolerance_study`]), with the σ study, on the report's
/// matrix kinds (a few seconds; a failure is a warning).
fn tolerance_jobs(report: &mut Report, options: &ReportOptions) -> Result<()> {
    if !options.convergence {
        return Ok(());
    }
    for &kind in &options.matrix_kinds {
        match super::tolerance_study::tolerance_study(kind) {
            Ok(rows) => report.tolerance.extend(rows),
            Err(e) => report.warn(format!("tolerance study of {kind} failed: {e:#}")),
        }
        report.write_all()?;
    }
    Ok(())
}

/// The σ study's matrices: every shape of every kind (none without the study).
fn sigma_jobs(options: &ReportOptions) -> Vec<(Shape, MatrixKind)> {
    if !options.convergence {
        return Vec::new();
    }
    options.convergence_shapes.iter().flat_map(|&s| options.matrix_kinds.iter().map(move |&k| (s, k))).collect()
}

/// The loss runs and their steps (none without the loss curves).
fn loss_jobs(options: &ReportOptions) -> Vec<(LossRun, u64)> {
    if !options.loss_curves {
        return Vec::new();
    }
    vec![
        (LossRun::SeedWeightNorm, options.seed_loop_steps),
        (LossRun::SpectralNormLinear64, options.spectral_train_steps),
    ]
}

/// Starts the PyTorch side and records its environment, or says why there is none.
fn start_pytorch(options: &ReportOptions, report: &mut Report) -> Option<PytorchRunner> {
    if !options.pytorch {
        eprintln!("note: the PyTorch side is off: its columns stay empty");
        return None;
    }
    let python = options.python.clone().unwrap_or_else(pytorch::default_python);
    let mut runner = match PytorchRunner::start(&python, options.threads) {
        Ok(runner) => {
            eprintln!("pytorch side: eager_timing.py with {}", runner.python().display());
            runner
        }
        Err(e) => {
            report.warn(format!("no PyTorch side ({e:#}); its columns stay empty"));
            return None;
        }
    };
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
            Some(runner)
        }
        Err(e) => {
            report.warn(format!("the PyTorch side did not start: {e:#}; its columns stay empty"));
            None
        }
    }
}

/// The run's allowance of extra rounds for cases whose ratio is not settled: at most
/// `extra_rounds` per case, and `extra_rounds_budget_s` seconds for all of them together,
/// shared fairly: a case may spend at most what is left divided by the cases not yet timed
/// (itself included), so the first unsettled cases cannot use up the budget of the later,
/// larger ones; what a case leaves unspent goes to the cases after it.
struct ExtraRounds {
    per_case: u64,
    left: Duration,
    cases_left: usize,
}

impl ExtraRounds {
    fn new(options: &ReportOptions, cases: usize) -> Self {
        ExtraRounds {
            per_case: options.extra_rounds,
            left: Duration::from_secs(options.extra_rounds_budget_s),
            cases_left: cases,
        }
    }

    /// The seconds of extra rounds the next case may spend: its fair share of what is left.
    fn share(&self) -> Duration {
        self.left / u32::try_from(self.cases_left.max(1)).unwrap_or(u32::MAX)
    }

    /// Whether `row` gets another round after `extra_done` extra rounds that took `spent` of
    /// its `share`: its ratio has an interval that is not settled, and rounds and seconds are left.
    fn wanted(&self, row: &TimingRow, extra_done: u64, spent: Duration, share: Duration, settle_width: f64) -> bool {
        row.settled(settle_width) == Some(false) && extra_done < self.per_case && spent < share && !self.left.is_zero()
    }

    /// A case is done: the next ones share what is left.
    fn case_done(&mut self) {
        self.cases_left = self.cases_left.saturating_sub(1);
    }
}

/// Times one case: rounds alternate the sides (PyTorch, Rust, PyTorch, Rust, ...); a side
/// that fails is not asked again for this case. The samples of all rounds are pooled for the
/// medians; their ratio's bootstrap interval over the paired rounds
/// ([`interval`](super::interval)) is recomputed after every round, and while it is wider
/// than `settle_width` the case gets extra rounds from `extra`.
fn time_case(
    report: &mut Report,
    pytorch: &mut Option<PytorchRunner>,
    case: &Case,
    options: &ReportOptions,
    progress: &mut Progress,
    extra: &mut ExtraRounds,
) -> Result<()> {
    report.timing.push(TimingRow {
        case: *case,
        threads: options.threads,
        rust: Side::Pending,
        pytorch: if pytorch.is_some() { Side::Pending } else { Side::Skipped },
        interval: None,
        rounds: 0,
        loss_check: None,
    });
    let row = report.timing.len() - 1;
    let round_sampling = options.sampling.per_round();
    let (mut pytorch_timed, mut rust_timed) = (None::<Timed>, None::<Timed>);
    // Where each round's samples end in the pools, per side (a failed round adds none).
    let (mut pytorch_ends, mut rust_ends) = (Vec::new(), Vec::new());
    let base_rounds = options.sampling.rounds.max(1);
    let mut extra_done = 0;
    let (share, mut spent) = (extra.share(), Duration::ZERO);
    loop {
        let is_extra = report.timing[row].rounds >= base_rounds;
        if is_extra && !extra.wanted(&report.timing[row], extra_done, spent, share, options.settle_width) {
            break;
        }
        let started = Instant::now();
        if let (Some(_), Side::Pending | Side::Timed { .. }) = (pytorch.as_ref(), &report.timing[row].pytorch) {
            report.timing[row].pytorch = pytorch_round(report, pytorch, case, &round_sampling, &mut pytorch_timed)?;
            report.write_all()?;
        }
        if let Side::Pending | Side::Timed { .. } = report.timing[row].rust {
            report.timing[row].rust = rust_round(case, &round_sampling, &mut rust_timed)?;
        }
        report.timing[row].rounds += 1;
        pytorch_ends.push(pytorch_timed.as_ref().map_or(0, |t| t.nanos.len()));
        rust_ends.push(rust_timed.as_ref().map_or(0, |t| t.nanos.len()));
        report.timing[row].interval = match (&rust_timed, &pytorch_timed, report.timing[row].ratio()) {
            (Some(r), Some(p), Some(_)) => {
                interval::paired_rounds_interval(&rounds_of(&r.nanos, &rust_ends), &rounds_of(&p.nanos, &pytorch_ends))
            }
            _ => None,
        };
        report.write_all()?;
        if is_extra {
            extra_done += 1;
            spent += started.elapsed();
            extra.left = extra.left.saturating_sub(started.elapsed());
        }
    }
    extra.case_done();
    if matches!(case.op, Op::HifiganTrainStep | Op::SnDiscriminatorTrainStep) {
        loss_check(report, pytorch, case, row)?;
    }
    if let Side::Error(message) = &report.timing[row].rust {
        let message = format!("Rust failed on {}: {message}", case.label());
        report.warn(message);
    }
    report.timing_done += 1;
    report.write_all()?;
    let r = &report.timing[row];
    let ratio = match (r.ratio(), r.interval) {
        (Some(x), Some(i)) => format!("{x:.2} [{:.2}, {:.2}], {} rounds", i.low, i.high, r.rounds),
        (Some(x), None) => format!("{x:.2}"),
        _ => "–".into(),
    };
    progress.step(
        case_cost(case, &options.sampling),
        &format!("{}: rust {}, pytorch {}, ratio {ratio}", case.label(), median_text(&r.rust), median_text(&r.pytorch)),
    );
    Ok(())
}

/// A whole-model training row's loss check: [`LOSS_CHECK_STEPS`] steps on both sides from
/// the case's setup, their losses compared bit for bit; a difference (or a side that
/// cannot run it) is a warning in the summary, and the row's note says so either way.
fn loss_check(report: &mut Report, pytorch: &mut Option<PytorchRunner>, case: &Case, row: usize) -> Result<()> {
    let Some(runner) = pytorch.as_mut() else { return Ok(()) };
    let rust = match model_rows::rust_losses(case) {
        Ok(losses) => losses,
        Err(e) => {
            report.warn(format!("{}: Rust's loss check failed: {e:#}", case.label()));
            return Ok(());
        }
    };
    let check = match runner.model_losses(case, LOSS_CHECK_STEPS)? {
        Outcome::Done(theirs) => model_rows::loss_verdict(&rust, &theirs),
        Outcome::Failed(message) => (false, format!("PyTorch's loss check failed: {message}")),
    };
    if !check.0 {
        report.warn(format!("{}: {}", case.label(), check.1));
    }
    report.timing[row].loss_check = Some(check);
    report.write_all()?;
    Ok(())
}

/// One PyTorch round of `case`, pooled into `pooled`: the side as it stands after it. A
/// script that stops answering is dropped (`pytorch` becomes `None`) with a warning.
fn pytorch_round(
    report: &mut Report,
    pytorch: &mut Option<PytorchRunner>,
    case: &Case,
    sampling: &Sampling,
    pooled: &mut Option<Timed>,
) -> Result<Side> {
    let Some(runner) = pytorch.as_mut() else { return Ok(Side::Skipped) };
    Ok(match runner.time_case(case, sampling) {
        Ok(Outcome::Done(timed)) => Side::from_timed(pool(pooled, timed))?,
        Ok(Outcome::Failed(message)) => {
            eprintln!("note: PyTorch could not run {}: {message}", case.label());
            Side::failed(case.dtype, message)
        }
        Err(e) => {
            report.warn(format!(
                "the PyTorch side stopped at {}: {e:#}; the remaining PyTorch columns stay empty",
                case.label()
            ));
            *pytorch = None;
            Side::Skipped
        }
    })
}

/// One Rust round of `case`, pooled into `pooled`: the side as it stands after it.
fn rust_round(case: &Case, sampling: &Sampling, pooled: &mut Option<Timed>) -> Result<Side> {
    Ok(match rust_side::time_rust(case, sampling) {
        Ok(timed) => Side::from_timed(pool(pooled, timed))?,
        Err(e) => {
            eprintln!("note: Rust could not run {}: {e:#}", case.label());
            Side::failed(case.dtype, format!("{e:#}"))
        }
    })
}

/// A side's pooled samples cut into its rounds at `ends` (each round's end in the pool).
fn rounds_of<'a>(pooled: &'a [u64], ends: &[usize]) -> Vec<&'a [u64]> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let end = end.clamp(start, pooled.len());
            let round = &pooled[start..end];
            start = end;
            round
        })
        .collect()
}

/// Adds a round's samples to the pool of a side; returns the pool.
fn pool(pooled: &mut Option<Timed>, round: Timed) -> &Timed {
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

/// The σ study of one matrix: Rust's estimates, and PyTorch's beside them.
fn sigma_job(
    report: &mut Report,
    pytorch: &mut Option<PytorchRunner>,
    shape: Shape,
    kind: MatrixKind,
    options: &ReportOptions,
    progress: &mut Progress,
) -> Result<()> {
    let mut rows = match convergence::sigma_study(kind, shape.rows, shape.cols, &options.convergence_iterations) {
        Ok(rows) => rows,
        Err(e) => {
            report.warn(format!("σ study of {kind} {shape} failed in Rust: {e:#}"));
            progress.step(sigma_cost(shape), &format!("σ {kind} {shape}: failed"));
            return Ok(());
        }
    };
    if let Some(runner) = pytorch.as_mut() {
        let spectrum =
            (kind == MatrixKind::IllConditioned).then(|| convergence::spectrum(shape.rows.min(shape.cols) as usize));
        match runner.sigma(
            kind,
            shape.rows,
            shape.cols,
            convergence::SIGMA_SEED,
            spectrum.as_deref(),
            &options.convergence_iterations,
        ) {
            // Float32 values: rounding to f32 undoes any last-bit error of the JSON float parser.
            Ok(Outcome::Done(sigma)) => {
                rows.iter_mut().zip(sigma).for_each(|(row, s)| row.sigma_estimate_pytorch = Some(f64::from(s as f32)))
            }
            Ok(Outcome::Failed(message)) => {
                report.warn(format!("PyTorch's σ study of {kind} {shape} failed: {message}"))
            }
            Err(e) => {
                report.warn(format!("the PyTorch side stopped: {e:#}"));
                *pytorch = None;
            }
        }
    }
    let errors: Vec<String> =
        rows.iter().map(|r| format!("k={} {:.1e}", r.n_power_iterations, r.rel_error())).collect();
    report.sigma.extend(rows);
    report.write_all()?;
    progress.step(sigma_cost(shape), &format!("σ {kind} {shape}: rel. error {}", errors.join(", ")));
    Ok(())
}

/// One training run's losses, Rust and PyTorch.
fn loss_job(
    report: &mut Report,
    pytorch: &mut Option<PytorchRunner>,
    run: LossRun,
    steps: u64,
    progress: &mut Progress,
) -> Result<()> {
    let mut curve = LossCurve { run, rust: None, pytorch: None };
    match convergence::losses(run, steps) {
        Ok(losses) => curve.rust = Some(losses),
        Err(e) => report.warn(format!("loss run {} failed in Rust: {e:#}", run.name())),
    }
    if let Some(runner) = pytorch.as_mut() {
        match runner.losses(run, steps) {
            // Float32 values: rounding to f32 undoes any last-bit error of the JSON float parser.
            Ok(Outcome::Done(losses)) => curve.pytorch = Some(losses.into_iter().map(|l| l as f32).collect()),
            Ok(Outcome::Failed(message)) => report.warn(format!("PyTorch's loss run {} failed: {message}", run.name())),
            Err(e) => {
                report.warn(format!("the PyTorch side stopped: {e:#}"));
                *pytorch = None;
            }
        }
    }
    let last = curve.rust.as_ref().and_then(|l| l.last()).map(|l| format!("{l:.5}")).unwrap_or_else(|| "–".into());
    report.losses.push(curve);
    report.write_all()?;
    progress.step(loss_cost(steps), &format!("loss {}: last loss {last}", run.name()));
    Ok(())
}

/// `operator_norm.csv`'s rows of one model (Rust only); a failure is a warning.
fn operator_norm_job(report: &mut Report, model: OperatorNormModel, progress: &mut Progress) -> Result<()> {
    let name = model.name();
    match operator_norm_rows::operator_norm_rows(model) {
        Ok(rows) => {
            let range = operator_norm_rows::ratio_range(&rows, model)
                .map(|(lo, hi, n)| format!("{n} layers, σ_operator / σ_reshaped {lo:.3} to {hi:.3}"))
                .unwrap_or_else(|| "no layers".into());
            report.operator_norms.extend(rows);
            report.write_all()?;
            progress.step(operator_norm_cost(), &format!("operator norm {name}: {range}"));
        }
        Err(e) => {
            report.warn(format!("operator norms of {name} failed: {e:#}"));
            progress.step(operator_norm_cost(), &format!("operator norm {name}: failed"));
        }
    }
    Ok(())
}

/// Ends the PyTorch side, draws the plots, marks the run complete and writes its files.
fn finish(mut report: Report, pytorch: Option<PytorchRunner>, options: &ReportOptions) -> Result<Report> {
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
    report.finish(machine::unix_now());
    report.write_all()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::case::DType;
    use crate::report::export;
    use crate::report::ops::Op;
    use std::fs;

    #[test]
    fn pooled_samples_are_cut_into_their_rounds() {
        let pooled = [1, 2, 3, 4, 5, 6];
        let empty: &[u64] = &[];
        assert_eq!(rounds_of(&pooled, &[2, 2, 5, 6]), vec![&pooled[..2], empty, &pooled[2..5], &pooled[5..]]);
        // An end past the pool (never written) or before the last one is clamped.
        assert_eq!(rounds_of(&pooled, &[4, 3, 9]), vec![&pooled[..4], empty, &pooled[4..]]);
    }

    #[test]
    fn extra_rounds_are_shared_fairly_and_unspent_shares_carry_over() {
        let options = ReportOptions { extra_rounds_budget_s: 30, ..Default::default() };
        let mut extra = ExtraRounds::new(&options, 3);
        assert_eq!(extra.share(), Duration::from_secs(10));
        // The first case spends 4 s of its 10: the two others share the 26 s left.
        extra.left -= Duration::from_secs(4);
        extra.case_done();
        assert_eq!(extra.share(), Duration::from_secs(13));
        extra.case_done();
        extra.case_done();
        assert_eq!(extra.share(), Duration::from_secs(26), "past the last case: all that is left");
        assert_eq!(
            ExtraRounds::new(&ReportOptions { extra_rounds_budget_s: 0, ..Default::default() }, 5).share(),
            Duration::ZERO
        );
    }

    #[test]
    fn a_small_run_without_pytorch_writes_every_file() {
        let out = std::env::temp_dir().join(format!("norm-bench-report-small-{}", std::process::id()));
        let _ = fs::remove_dir_all(&out);
        let options = ReportOptions {
            out: out.clone(),
            run_name: Some("t".into()),
            ops: vec![Op::Copy, Op::WeightNormForward, Op::PowerIteration, Op::SeedLoopStep],
            sizes: vec![8],
            rect_shapes: vec![],
            extra_dtypes: vec![DType::F64],
            dtype_ops: vec![Op::WeightNormForward],
            dtype_shapes: vec![Shape::square(8)],
            power_iteration_counts: vec![2],
            sampling: Sampling::fixed(1, 3),
            convergence_shapes: vec![Shape { rows: 6, cols: 4 }],
            convergence_iterations: vec![1, 5],
            seed_loop_steps: 2,
            spectral_train_steps: 3,
            operator_norm: false, // operator_norm_rows' own test covers it (the generator's rows take seconds)
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
        let operator_norm = fs::read_to_string(dir.join("operator_norm.csv")).unwrap();
        assert_eq!(operator_norm.trim_end(), export::OPERATOR_NORM_HEADER.join(","));
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
