//! `norm-bench report`'s run, start to end ([`run`]): the run folder and the state, the
//! PyTorch side started, then the timing cases ([`scheduler`]: each in rounds whose bursts
//! alternate, PyTorch's then Rust's, then the extra rounds), the σ
//! study, the loss curves and the plots, the files rewritten after every piece of work
//! and one progress line per piece; [`run_cli`] is the subcommand around it.

use super::args::ReportArgs;
use super::case::{Case, DeviceKind, Shape};
use super::convergence::{self, LossRun, MatrixKind};
use super::machine;
use super::operator_norm_rows::{self, OperatorNormModel};
use super::options::ReportOptions;
use super::plots;
use super::progress::{case_cost, loss_cost, operator_norm_cost, sigma_cost, Progress};
use super::pytorch::{self, Outcome, PytorchRunner};
use super::results::LossCurve;
use super::run_folder::{create_run_dir, update_latest};
use super::scheduler;
use super::state::Report;
use super::summary;
use anyhow::Result;
use std::io::Write;
use std::process::ExitCode;

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
    let mut runs = Vec::with_capacity(cases.len());
    for case in &cases {
        runs.push(scheduler::time_case(&mut report, &mut pytorch, case, options, &mut progress)?);
    }
    scheduler::extra_rounds(&mut report, &mut pytorch, &mut runs, options)?;
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
    use crate::report::sampling::Sampling;
    use std::fs;

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
