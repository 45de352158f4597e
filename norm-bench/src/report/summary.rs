//! `summary.md`, the page a person reads first, rebuilt from the [`Report`] after every
//! piece of work: the run and its environment, the ratio tables
//! ([`ratio_tables`](super::ratio_tables)), the seed-loop step, the bandwidth headline
//! ([`bandwidth`](super::bandwidth)), the σ study, the loss curves, the plots and files,
//! the warnings; and the duration texts the progress lines share.

use super::bandwidth::bandwidth_section;
use super::case::{DType, DeviceKind, Shape};
use super::convergence::MatrixKind;
use super::ops::Op;
use super::ratio_tables::ratio_tables;
use super::results::Side;
use super::sampling::REWARM;
use super::state::Report;
use std::fmt::Write as _;

/// The seed-loop step's goal: Rust at most this fraction of PyTorch's median.
pub(crate) const SEED_LOOP_GOAL: f64 = 0.2;

/// The iteration counts of the summary's σ table.
pub(crate) const SUMMARY_ITERATIONS: [u64; 3] = [1, 5, 20];

/// The σ-table's headline matrix.
pub(crate) const SUMMARY_SIGMA_SHAPE: Shape = Shape { rows: 1024, cols: 1024 };

/// `12.3 µs`, `4.56 ms`, `1.23 s`.
pub(crate) fn duration_text(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// `2m 05s`.
pub(crate) fn elapsed_text(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    format!("{}m {:02}s", secs / 60, secs % 60)
}

fn seed_loop_section(out: &mut String, report: &Report) {
    out.push_str("## Seed-loop step\n\n");
    let seed_row = report.find_row(Op::SeedLoopStep, Shape { rows: 3, cols: 2 }, DType::F32, DeviceKind::Cpu, None);
    match seed_row {
        Some(row) => match (row.rust.median_us(), row.pytorch.median_us(), row.ratio()) {
            (Some(r), Some(p), Some(ratio)) => {
                let verdict = if ratio <= SEED_LOOP_GOAL { "met" } else { "not met" };
                let interval = super::ratio_tables::ratio_cell(Some(row), report.options.settle_width);
                let batch = |side: &Side| match side {
                    Side::Timed { iterations_per_sample, .. } => iterations_per_sample.to_string(),
                    _ => "–".into(),
                };
                let _ = writeln!(
                    out,
                    "One step of the seed document's weight-norm loop (`weight_norm(nn.Linear(2, 3))`, Adam): Rust {}, PyTorch {} \
                     (medians; {} and {} steps per sample): ratio **{ratio:.3}** ({interval}); goal ≤ {SEED_LOOP_GOAL}: **{verdict}**.\n",
                    duration_text(r),
                    duration_text(p),
                    batch(&row.rust),
                    batch(&row.pytorch)
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "Not both sides timed: Rust {}, PyTorch {}.\n",
                    row.rust.status(),
                    row.pytorch.status()
                );
            }
        },
        None => out.push_str("Not timed (yet).\n\n"),
    }
    // The floor: the same step from C++ straight to libtorch (PyTorch's op sequence).
    let seed = seed_row.and_then(|row| row.rust.median_us());
    if let Some(row) =
        report.find_row(Op::SeedLoopStepCpp, Shape { rows: 3, cols: 2 }, DType::F32, DeviceKind::Cpu, None)
    {
        if let (Some(c), Some(p), Some(ratio)) = (row.rust.median_us(), row.pytorch.median_us(), row.ratio()) {
            let vs_norm = seed.map(|r| format!("; norm / C++ = **{:.2}**", r / c)).unwrap_or_default();
            let _ = writeln!(
                out,
                "The floor: the same step written in C++ straight against libtorch, making PyTorch's own sequence of ATen calls \
                 (Adam one parameter at a time, its step a float32 tensor; no Python, no Rust; `seed_loop_step_cpp`, same bits as \
                 norm's): {}, {ratio:.3} of PyTorch's {} in its own rounds{vs_norm}. Below that ratio only fewer ATen calls go: \
                 norm records one autograd node for the weight-normed Linear where PyTorch records three, replays its weight \
                 norm, that norm's backward and the bias gradient's sum in the kernels' own scalar arithmetic, and updates \
                 the three tiny parameters with ATen's scalar-lambda arithmetic and one `sqrt_` call instead of seven calls \
                 each.\n",
                duration_text(c),
                duration_text(p),
            );
        }
    }
}

/// The whole-model rows ([`model_rows`](super::model_rows)): per device, each model op's
/// medians, ratio with its interval, and the training rows' loss check.
fn models_section(out: &mut String, report: &Report) {
    let rows: Vec<&super::results::TimingRow> = report.timing.iter().filter(|r| r.case.op.is_model()).collect();
    if rows.is_empty() {
        return;
    }
    out.push_str(
        "## Whole models

",
    );
    out.push_str(
        "The examples' HiFi-GAN-style generator (weight norm) and SN-GAN discriminator (spectral norm): a full training \
         step (forward, loss, backward, Adam) and eval inference (norm's cached weights vs PyTorch's hooks; norm folded vs \
         PyTorch after `remove_*`). Shape: batch x length. The training rows' losses are compared bit for bit in this run.\n\n\
         | model op | device | batch x length | Rust | PyTorch | Rust / PyTorch | losses |\n|---|---|---|---:|---:|---:|---|\n",
    );
    for row in rows {
        let time = |side: &Side| side.median_us().map(duration_text).unwrap_or_else(|| side.status().to_string());
        let losses = match &row.loss_check {
            Some((true, note)) => note.clone(),
            Some((false, note)) => format!("**{note}**"),
            None => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {losses} |",
            row.case.op,
            row.case.device,
            row.case.shape(),
            time(&row.rust),
            time(&row.pytorch),
            super::ratio_tables::ratio_cell(Some(row), report.options.settle_width)
        );
    }
    out.push('\n');
}

fn sigma_section(out: &mut String, report: &Report) {
    out.push_str("## σ relative error of the power iteration\n\n");
    if report.sigma.is_empty() {
        out.push_str("Not run (yet).\n\n");
        return;
    }
    out.push_str(
        "Hook API (`spectral_norm`): fresh `u`, `v`, k iterations, σ = uᵀWv, against σ₁ of `torch.linalg.svdvals` in float64; \
         each cell is the true error `|σ − σ₁| / σ₁` / the error bound a spectral-norm layer reports \
         (`SpectralNorm::sigma()`: the residual `sqrt((‖Wv − σu‖² + ‖Wᵀu − σv‖²) / (‖u‖² + ‖v‖²))` of the same u, v) \
         relative to σ; † marks a row whose bound does not cover `|σ − σ₁|`. The bound guarantees that *some* \
         singular value lies within it of σ; σ₁ once the iteration has converged to it. All shapes and counts are in \
         `convergence.csv`.\n\n",
    );
    let mut counts: Vec<u64> = SUMMARY_ITERATIONS.to_vec();
    let mut header = "| matrix | σ₂/σ₁ |".to_string();
    let mut rule = "|---|---:|".to_string();
    counts.retain(|k| report.sigma.iter().any(|r| r.n_power_iterations == *k));
    for k in &counts {
        let _ = write!(header, " k={k} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let mut shapes: Vec<Shape> = vec![SUMMARY_SIGMA_SHAPE];
    if !report.sigma.iter().any(|r| r.rows == SUMMARY_SIGMA_SHAPE.rows && r.cols == SUMMARY_SIGMA_SHAPE.cols) {
        shapes = report.sigma.iter().map(|r| Shape { rows: r.rows, cols: r.cols }).collect();
        shapes.dedup();
    }
    for shape in shapes {
        for kind in MatrixKind::ALL {
            let rows: Vec<_> = report
                .sigma
                .iter()
                .filter(|r| r.matrix == kind && r.rows == shape.rows && r.cols == shape.cols)
                .collect();
            let Some(first) = rows.first() else { continue };
            let mut line = format!("| {kind} {shape} | {:.4} |", first.gap);
            for k in &counts {
                match rows.iter().find(|r| r.n_power_iterations == *k) {
                    Some(r) => {
                        let mark = if r.bound_covers_exact() { "" } else { " †" };
                        let _ = write!(line, " {:.2e} / {:.2e}{mark} |", r.rel_error(), r.rel_bound());
                    }
                    None => line.push_str(" – |"),
                }
            }
            let _ = writeln!(out, "{line}");
        }
    }
    let covered = report.sigma.iter().filter(|r| r.bound_covers_exact()).count();
    let _ = writeln!(
        out,
        "\nThe bound covered the true error `|σ − σ₁|` in {covered} of {} rows (a row it does not cover has σ still \
         nearer a smaller singular value: power iteration approaches σ₁ from below).",
        report.sigma.len()
    );
    let compared: Vec<_> =
        report.sigma.iter().filter_map(|r| r.sigma_estimate_pytorch.map(|p| p == r.sigma_estimate)).collect();
    if !compared.is_empty() {
        let equal = compared.iter().filter(|e| **e).count();
        let _ = writeln!(out, "norm's and PyTorch's σ estimates are bit-equal in {equal} of {} rows.", compared.len());
    }
    out.push('\n');
}

/// `operator_norm.csv` in brief: per model, the range of σ_operator / σ_reshaped over its layers.
fn operator_norm_section(out: &mut String, report: &Report) {
    if report.operator_norms.is_empty() {
        return;
    }
    out.push_str("## σ_operator / σ_reshaped of the example models' layers\n\n");
    let _ = writeln!(
        out,
        "PyTorch's `spectral_norm` divides by σ_reshaped, the largest singular value of the reshaped kernel; σ_operator is \
         the norm of the layer's convolution itself on the input size it sees in the model (power iteration on the \
         convolution and its exact adjoint to a relative bound of {:.0e}, at most {} iterations; generator on {} input \
         frames, discriminator on 16×16 images). A ratio above 1: the \"1-Lipschitz\" layer stretches some input by that \
         factor. Every layer is in `operator_norm.csv`.\n",
        super::operator_norm_rows::TOLERANCE,
        super::operator_norm_rows::MAX_ITERATIONS,
        super::operator_norm_rows::HIFIGAN_FRAMES
    );
    out.push_str("| model | layers | min ratio | max ratio | not converged |\n|---|---:|---:|---:|---:|\n");
    for model in super::operator_norm_rows::OperatorNormModel::ALL {
        let Some((lo, hi, n)) = super::operator_norm_rows::ratio_range(&report.operator_norms, model) else { continue };
        let open = report.operator_norms.iter().filter(|r| r.model == model && !r.converged).count();
        let _ = writeln!(out, "| {} | {n} | {lo:.4} | {hi:.4} | {open} |", model.name());
    }
    out.push('\n');
}

fn loss_section(out: &mut String, report: &Report) {
    out.push_str("## Loss curves\n\n");
    if report.losses.is_empty() {
        out.push_str("Not run (yet).\n\n");
        return;
    }
    out.push_str("| run | steps | first loss | last loss (Rust) | last loss (PyTorch) | Rust = PyTorch, bit for bit |\n|---|---:|---:|---:|---:|---|\n");
    for curve in &report.losses {
        let rust = curve.rust.as_deref().unwrap_or_default();
        let pytorch = curve.pytorch.as_deref().unwrap_or_default();
        let equal = rust.iter().zip(pytorch).filter(|(r, p)| r.to_bits() == p.to_bits()).count();
        let same = if pytorch.is_empty() || rust.is_empty() {
            "–".to_string()
        } else if equal == rust.len() && rust.len() == pytorch.len() {
            format!("yes ({equal}/{})", rust.len())
        } else {
            format!("**no** ({equal}/{} steps equal)", rust.len().max(pytorch.len()))
        };
        let first = rust.first().map(|l| format!("{l:.6}")).unwrap_or_else(|| "–".into());
        let last_r = rust.last().map(|l| format!("{l:.6}")).unwrap_or_else(|| "–".into());
        let last_p = pytorch.last().map(|l| format!("{l:.6}")).unwrap_or_else(|| "–".into());
        let _ = writeln!(
            out,
            "| {} | {} | {first} | {last_r} | {last_p} | {same} |",
            curve.run.name(),
            rust.len().max(pytorch.len())
        );
    }
    out.push('\n');
}

/// The table of the machine, both sides' environments, CUDA and the sampling rule.
fn environment_table(out: &mut String, report: &Report) {
    let m = &report.machine;
    let memory = m.memory_gib.map(|g| format!(", {g:.1} GiB")).unwrap_or_default();
    out.push_str("| | |\n|---|---|\n");
    let _ =
        writeln!(out, "| machine | {}, {} logical CPUs{memory}, {} ({}) |", m.cpu_model, m.logical_cpus, m.os, m.arch);
    let r = &report.rust_env;
    let _ = writeln!(
        out,
        "| Rust side | norm {}, tch {}, ATen CPU capability {}, {} intra-op thread(s) |",
        r.norm_version, r.tch_version, r.cpu_capability, report.options.threads
    );
    let p = report.pytorch_env.as_ref();
    let field = |key: &str| {
        p.and_then(|p| p.get(key))
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .unwrap_or_else(|| "?".into())
    };
    match p {
        Some(_) => {
            let _ = writeln!(
                out,
                "| PyTorch side | torch {} eager, Python {}, CPU capability {}, {} thread(s) |",
                field("torch_version"),
                field("python_version"),
                field("cpu_capability"),
                field("num_threads")
            );
        }
        None => out.push_str("| PyTorch side | none (its columns are empty) |\n"),
    }
    let cuda = if report.cuda_available {
        format!("yes ({})", field("cuda_device"))
    } else {
        "no CUDA device: CPU rows only".into()
    };
    let _ = writeln!(out, "| CUDA | {cuda} |");
    let s = &report.options.sampling;
    let r = s.per_round();
    let batching = if s.min_sample_us == 0 {
        "one iteration per sample".to_string()
    } else {
        format!(
            "samples of ≥ {} µs: iterations batched back to back by the warm-up mean, per-iteration time recorded (not for the cases with untimed work between iterations)",
            s.min_sample_us
        )
    };
    let turns = if r.alternates() {
        format!(
            "the sides taking turns in bursts of {} ms (PyTorch's first, each after a {} ms re-warm-up)",
            r.burst_ms,
            REWARM.as_millis()
        )
    } else {
        "PyTorch's samples then Rust's".to_string()
    };
    let _ = writeln!(
        out,
        "| sampling | per case: {} round(s), each a fresh setup of both sides; per round and side ≥ {} warm-up iteration(s) and {} ms, then {}–{} samples within {} ms, {turns}; {batching}; samples pooled, medians compared |\n",
        s.rounds, r.warmup_min, r.warmup_ms, r.min_samples, r.max_samples, r.budget_ms
    );
}

/// `summary.md`'s content.
pub(crate) fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# norm-bench report `{}`\n", report.name);
    let status = if report.finished_unix.is_some() {
        "**complete**"
    } else {
        "**in progress** (or interrupted: this page is rewritten after every case)"
    };
    let done_timing = report.timing_done;
    let _ = writeln!(
        out,
        "Status: {status}. {done_timing}/{} timing cases, {} σ rows, {} loss curves, {} plots; {} elapsed.\n",
        report.timing_total,
        report.sigma.len(),
        report.losses.len(),
        report.plots.len(),
        elapsed_text(report.elapsed_s())
    );
    environment_table(&mut out, report);

    out.push_str("## Rust / PyTorch, ratio of median times\n\nBelow 1: norm is faster. Spectral-norm ops use n_power_iterations = ");
    let _ = writeln!(
        out,
        "{} (PyTorch's default); `power_iteration` is timed at each k. Every row is in `timing.csv`.\n",
        report.options.n_power_iterations
    );
    ratio_tables(&mut out, report);
    if report.timing.iter().any(|r| r.case.op == Op::WeightNormForwardOut) {
        out.push_str(
            "`weight_norm_forward_out` is Rust-only API (`norm_tch::weight_norm_out`, bit-identical to `_weight_norm`, into an output allocated once); \
             its PyTorch column is `torch._weight_norm`, which has no `out=` variant: the ratio is what reusing the output buys over what a PyTorch user can do.\n\n",
        );
    }
    seed_loop_section(&mut out, report);
    models_section(&mut out, report);
    bandwidth_section(&mut out, report);
    sigma_section(&mut out, report);
    super::tolerance_study::summary_section(&mut out, &report.tolerance);
    loss_section(&mut out, report);
    operator_norm_section(&mut out, report);

    out.push_str("## Plots\n\n");
    if report.plots.is_empty() {
        out.push_str("None (yet): they are drawn at the end of the run, with matplotlib from the venv.\n\n");
    } else {
        for plot in &report.plots {
            let _ = writeln!(out, "- [{plot}]({plot})");
        }
        out.push('\n');
    }
    out.push_str("## Files\n\n- [timing.csv](timing.csv): every timing case, both sides\n- [convergence.csv](convergence.csv): σ estimates vs the SVD\n");
    out.push_str("- [tolerance.csv](tolerance.csv): power iteration to a tolerance vs fixed counts\n");
    out.push_str("- [loss.csv](loss.csv): loss curves, Rust and PyTorch\n");
    out.push_str("- [operator_norm.csv](operator_norm.csv): σ_operator / σ_reshaped per layer of the example models\n- [run.json](run.json): versions, machine, options\n\nSchemas: `docs/reports.md` in the repository.\n");
    if !report.warnings.is_empty() {
        out.push_str("\n## Warnings\n\n");
        for w in &report.warnings {
            let _ = writeln!(out, "- {w}");
        }
    }
    out
}
