//! `run.json` (everything about the run, machine-readable) and `summary.md` (the page a
//! person reads first), both rebuilt from the [`Report`] after every piece of work.

use super::cases::{DType, DeviceKind, Op, Shape};
use super::convergence::MatrixKind;
use super::{Report, Side, TimingRow};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The sizes the summary's ratio table always tries to show (others of the sweep are added).
pub const SUMMARY_SIZES: [u64; 4] = [64, 512, 2048, 4096];

/// The seed-loop step's goal: Rust at most this fraction of PyTorch's median.
pub const SEED_LOOP_GOAL: f64 = 0.2;

/// The iteration counts of the summary's σ table.
pub const SUMMARY_ITERATIONS: [u64; 3] = [1, 5, 20];

/// The σ-table's headline matrix.
pub const SUMMARY_SIGMA_SHAPE: Shape = Shape { rows: 1024, cols: 1024 };

/// The bandwidth headline's size.
pub const BANDWIDTH_SIZE: u64 = 4096;

fn find(report: &Report, op: Op, shape: Shape, dtype: DType, device: DeviceKind, k: Option<u64>) -> Option<&TimingRow> {
    report.timing.iter().find(|r| {
        let c = &r.case;
        c.op == op
            && c.shape() == shape
            && c.dtype == dtype
            && c.device == device
            && (k.is_none() || c.n_power_iterations == k)
    })
}

fn median(side: &Side) -> Option<f64> {
    side.summary().map(|s| s.median_us)
}

/// `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn duration_text(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// `2m 05s`.
pub fn elapsed_text(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    format!("{}m {:02}s", secs / 60, secs % 60)
}

/// A ratio cell: `0.98`, or why there is none.
fn ratio_cell(row: Option<&TimingRow>) -> String {
    let Some(row) = row else { return "–".into() };
    if let Some(r) = row.ratio() {
        return format!("{r:.2}");
    }
    match (&row.rust, &row.pytorch) {
        (Side::Pending, _) | (_, Side::Pending) => "pending".into(),
        (r, p) if r.status() != "ok" && p.status() != "ok" => format!("{} (both)", r.status()),
        (r, _) if r.status() != "ok" => format!("{} (rust)", r.status()),
        (_, p) => format!("{} (pytorch)", p.status()),
    }
}

/// The op label of a table line: `power_iteration k=10` for the counts sweep.
fn op_label(op: Op, k: Option<u64>) -> String {
    match (op, k) {
        (Op::PowerIteration, Some(k)) => format!("{op} (k={k})"),
        _ => op.to_string(),
    }
}

/// The (op, k) lines of the ratio tables, in run order.
fn op_lines(report: &Report, device: DeviceKind) -> Vec<(Op, Option<u64>)> {
    let mut lines = Vec::new();
    for row in report
        .timing
        .iter()
        .filter(|r| r.case.device == device && r.case.dtype == DType::F32 && !r.case.op.is_seed_loop())
    {
        let key = (row.case.op, row.case.n_power_iterations);
        if !lines.contains(&key) {
            lines.push(key);
        }
    }
    lines
}

fn square_sizes(report: &Report) -> Vec<u64> {
    let mut sizes: Vec<u64> = report.options.sizes.clone();
    sizes.extend(
        SUMMARY_SIZES.iter().filter(|n| report.timing.iter().any(|r| r.case.rows == **n && r.case.cols == **n)),
    );
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

fn ratio_tables(out: &mut String, report: &Report) {
    let devices: Vec<DeviceKind> = [DeviceKind::Cpu, DeviceKind::Cuda]
        .into_iter()
        .filter(|d| report.timing.iter().any(|r| r.case.device == *d))
        .collect();
    if devices.is_empty() {
        out.push_str("No timing case has finished yet.\n\n");
        return;
    }
    let sizes = square_sizes(report);
    for device in devices {
        let _ = writeln!(out, "### {device}, f32, square `n x n` weights\n");
        let mut header = "| op |".to_string();
        let mut rule = "|---|".to_string();
        for n in &sizes {
            let _ = write!(header, " {n}² |");
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for (op, k) in op_lines(report, device) {
            let mut line = format!("| {} |", op_label(op, k));
            for &n in &sizes {
                let _ = write!(line, " {} |", ratio_cell(find(report, op, Shape::square(n), DType::F32, device, k)));
            }
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');

        let rect: Vec<Shape> = report
            .options
            .rect_shapes
            .iter()
            .copied()
            .filter(|s| report.timing.iter().any(|r| r.case.shape() == *s && r.case.device == device))
            .collect();
        if !rect.is_empty() {
            let _ = writeln!(out, "Rectangular weights ({device}, f32):\n");
            let mut header = "| op |".to_string();
            let mut rule = "|---|".to_string();
            for s in &rect {
                let _ = write!(header, " {s} |");
                rule.push_str("---:|");
            }
            let _ = writeln!(out, "{header}\n{rule}");
            for (op, k) in op_lines(report, device) {
                if !rect.iter().any(|s| find(report, op, *s, DType::F32, device, k).is_some()) {
                    continue;
                }
                let mut line = format!("| {} |", op_label(op, k));
                for s in &rect {
                    let _ = write!(line, " {} |", ratio_cell(find(report, op, *s, DType::F32, device, k)));
                }
                let _ = writeln!(out, "{line}");
            }
            out.push('\n');
        }

        let other: Vec<&TimingRow> =
            report.timing.iter().filter(|r| r.case.device == device && r.case.dtype != DType::F32).collect();
        if !other.is_empty() {
            let _ = writeln!(out, "Other dtypes ({device}):\n\n| op | shape | dtype | Rust median | PyTorch median | Rust / PyTorch |\n|---|---|---|---:|---:|---:|");
            for row in other {
                let time = |side: &Side| median(side).map(duration_text).unwrap_or_else(|| side.status().to_string());
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    op_label(row.case.op, row.case.n_power_iterations),
                    row.case.shape(),
                    row.case.dtype,
                    time(&row.rust),
                    time(&row.pytorch),
                    ratio_cell(Some(row))
                );
            }
            out.push('\n');
        }
    }
}

fn seed_loop_section(out: &mut String, report: &Report) {
    out.push_str("## Seed-loop step\n\n");
    let seed_row = find(report, Op::SeedLoopStep, Shape { rows: 3, cols: 2 }, DType::F32, DeviceKind::Cpu, None);
    match seed_row {
        Some(row) => match (median(&row.rust), median(&row.pytorch), row.ratio()) {
            (Some(r), Some(p), Some(ratio)) => {
                let verdict = if ratio <= SEED_LOOP_GOAL { "met" } else { "not met" };
                let batch = |side: &Side| match side {
                    Side::Timed { iterations_per_sample, .. } => iterations_per_sample.to_string(),
                    _ => "–".into(),
                };
                let _ = writeln!(
                    out,
                    "One step of the seed document's weight-norm loop (`weight_norm(nn.Linear(2, 3))`, Adam): Rust {}, PyTorch {} \
                     (medians; {} and {} steps per sample): ratio **{ratio:.3}**; goal ≤ {SEED_LOOP_GOAL}: **{verdict}**.\n",
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
    let seed = seed_row.and_then(|row| median(&row.rust));
    if let Some(row) = find(report, Op::SeedLoopStepCpp, Shape { rows: 3, cols: 2 }, DType::F32, DeviceKind::Cpu, None)
    {
        if let (Some(c), Some(p), Some(ratio)) = (median(&row.rust), median(&row.pytorch), row.ratio()) {
            let vs_norm = seed.map(|r| format!("; norm / C++ = **{:.2}**", r / c)).unwrap_or_default();
            let _ = writeln!(
                out,
                "The floor: the same step written in C++ straight against libtorch, making PyTorch's own sequence of ATen calls \
                 (Adam one parameter at a time, its step a float32 tensor; no Python, no Rust; `seed_loop_step_cpp`, same bits as \
                 norm's): {}, {ratio:.3} of PyTorch's {} in its own rounds{vs_norm}. Below that ratio only fewer ATen calls go; \
                 norm packs the three tiny parameters' Adam updates into one run of the calls.\n",
                duration_text(c),
                duration_text(p),
            );
        }
    }
}

/// One op's bandwidth (GB/s) on each side, `(rust, pytorch)`.
pub type SideBandwidths = (Option<f64>, Option<f64>);

/// The bandwidth headline of one device: `copy`, `weight_norm_forward` and
/// `weight_norm_forward_out` at `n x n`, f32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bandwidths {
    /// `dst.copy_(src)`, the reference.
    pub copy: SideBandwidths,
    /// `_weight_norm` on both sides (Rust `compute_weight`).
    pub weight_norm_forward: SideBandwidths,
    /// Rust `weight_norm_out` into a reused output; PyTorch `_weight_norm` (no `out=` variant).
    pub weight_norm_forward_out: SideBandwidths,
}

/// `w / c` when both are known and `c > 0`.
fn fraction(w: Option<f64>, c: Option<f64>) -> Option<f64> {
    match (w, c) {
        (Some(w), Some(c)) if c > 0.0 => Some(w / c),
        _ => None,
    }
}

/// The bandwidths of `copy`, `weight_norm_forward` and `weight_norm_forward_out` at
/// `n x n`, f32, on `device`: `None` without a `copy` row and a row of either weight-norm
/// op there (an op without a row has `(None, None)`).
pub fn bandwidths(report: &Report, n: u64, device: DeviceKind) -> Option<Bandwidths> {
    let shape = Shape::square(n);
    let of = |op: Op| find(report, op, shape, DType::F32, device, None);
    let sides = |row: Option<&TimingRow>| {
        row.map(|r| (r.bandwidth_gbps(&r.rust), r.bandwidth_gbps(&r.pytorch))).unwrap_or((None, None))
    };
    let copy = of(Op::Copy)?;
    let (wn, wn_out) = (of(Op::WeightNormForward), of(Op::WeightNormForwardOut));
    if wn.is_none() && wn_out.is_none() {
        return None;
    }
    Some(Bandwidths { copy: sides(Some(copy)), weight_norm_forward: sides(wn), weight_norm_forward_out: sides(wn_out) })
}

fn bandwidth_section(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Bandwidth at {BANDWIDTH_SIZE}² (f32)\n");
    let _ = writeln!(
        out,
        "Bytes moved = read `v` + write `w` = 2·n²·4 bytes per call, over the median time (a lower bound: the fused kernel also reads `v` once for its norms). \
         The copy is `dst.copy_(src)` on the same size. `weight_norm_forward` allocates its result on every call, as `torch._weight_norm` does; \
         `weight_norm_forward_out` is `norm_tch::weight_norm_out`, the same kernel writing into an output allocated once — bit-identical to \
         `_weight_norm` (tested in `norm-tch/tests/weight_norm_out.rs`) and Rust-only API: PyTorch has no `out=` variant, so its PyTorch column is `_weight_norm`.\n"
    );
    let mut any = false;
    for device in [DeviceKind::Cpu, DeviceKind::Cuda] {
        let Some(b) = bandwidths(report, BANDWIDTH_SIZE, device) else { continue };
        if !any {
            out.push_str("| device | | Rust | PyTorch |\n|---|---|---:|---:|\n");
            any = true;
        }
        let gbps = |v: Option<f64>| v.map(|v| format!("{v:.2} GB/s")).unwrap_or_else(|| "–".into());
        let frac = |w: Option<f64>, c: Option<f64>| {
            fraction(w, c).map(|f| format!("**{:.0}%**", 100.0 * f)).unwrap_or_else(|| "–".into())
        };
        let (copy_r, copy_p) = b.copy;
        let _ = writeln!(out, "| {device} | copy | {} | {} |", gbps(copy_r), gbps(copy_p));
        for (name, (r, p), present) in [
            (
                "weight_norm_forward",
                b.weight_norm_forward,
                find(report, Op::WeightNormForward, Shape::square(BANDWIDTH_SIZE), DType::F32, device, None).is_some(),
            ),
            (
                "weight_norm_forward_out",
                b.weight_norm_forward_out,
                find(report, Op::WeightNormForwardOut, Shape::square(BANDWIDTH_SIZE), DType::F32, device, None)
                    .is_some(),
            ),
        ] {
            if !present {
                continue;
            }
            let pytorch_note = if name == "weight_norm_forward_out" { " (PyTorch: `_weight_norm`)" } else { "" };
            let _ = writeln!(out, "| {device} | {name}{pytorch_note} | {} | {} |", gbps(r), gbps(p));
            let _ = writeln!(out, "| {device} | {name} / copy | {} | {} |", frac(r, copy_r), frac(p, copy_p));
        }
    }
    if !any {
        let _ = writeln!(out, "Not measured: the sweep needs `copy` and `weight_norm_forward` or `weight_norm_forward_out` at {BANDWIDTH_SIZE}².");
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
         `|σ − σ₁| / σ₁`. All shapes and counts are in `convergence.csv`.\n\n",
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
                        let _ = write!(line, " {:.2e} |", r.rel_error());
                    }
                    None => line.push_str(" – |"),
                }
            }
            let _ = writeln!(out, "{line}");
        }
    }
    let compared: Vec<_> =
        report.sigma.iter().filter_map(|r| r.sigma_estimate_pytorch.map(|p| p == r.sigma_estimate)).collect();
    if !compared.is_empty() {
        let equal = compared.iter().filter(|e| **e).count();
        let _ =
            writeln!(out, "\nnorm's and PyTorch's σ estimates are bit-equal in {equal} of {} rows.", compared.len());
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

/// `summary.md`'s content.
pub fn render_markdown(report: &Report) -> String {
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
    let _ = writeln!(
        out,
        "| sampling | per case: {} round(s), PyTorch then Rust in each; per round and side ≥ {} warm-up iteration(s) and {} ms, then {}–{} samples within {} ms; {batching}; samples pooled, medians compared |\n",
        s.rounds, r.warmup_min, r.warmup_ms, r.min_samples, r.max_samples, r.budget_ms
    );

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
    bandwidth_section(&mut out, report);
    sigma_section(&mut out, report);
    loss_section(&mut out, report);

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
    out.push_str("- [loss.csv](loss.csv): loss curves, Rust and PyTorch\n- [run.json](run.json): versions, machine, options\n\nSchemas: `docs/reports.md` in the repository.\n");
    if !report.warnings.is_empty() {
        out.push_str("\n## Warnings\n\n");
        for w in &report.warnings {
            let _ = writeln!(out, "- {w}");
        }
    }
    out
}

/// `run.json`'s content.
pub fn render_json(report: &Report) -> Value {
    let bandwidth: Value = [DeviceKind::Cpu, DeviceKind::Cuda]
        .into_iter()
        .filter_map(|device| {
            let b = bandwidths(report, BANDWIDTH_SIZE, device)?;
            let ((copy_r, copy_p), (wn_r, wn_p), (out_r, out_p)) =
                (b.copy, b.weight_norm_forward, b.weight_norm_forward_out);
            Some((
                device.name().to_string(),
                json!({
                    "size": BANDWIDTH_SIZE,
                    "copy_rust_gbps": copy_r, "copy_pytorch_gbps": copy_p,
                    "weight_norm_forward_rust_gbps": wn_r, "weight_norm_forward_pytorch_gbps": wn_p,
                    "weight_norm_forward_fraction_of_copy_rust": fraction(wn_r, copy_r),
                    "weight_norm_forward_fraction_of_copy_pytorch": fraction(wn_p, copy_p),
                    "weight_norm_forward_out_rust_gbps": out_r, "weight_norm_forward_out_pytorch_gbps": out_p,
                    "weight_norm_forward_out_fraction_of_copy_rust": fraction(out_r, copy_r),
                    "weight_norm_forward_out_fraction_of_copy_pytorch": fraction(out_p, copy_p),
                }),
            ))
        })
        .collect::<serde_json::Map<String, Value>>()
        .into();
    json!({
        "run": report.name,
        "status": if report.finished_unix.is_some() { "complete" } else { "running" },
        "started_utc": super::machine::iso_utc(report.started_unix),
        "finished_utc": report.finished_unix.map(super::machine::iso_utc),
        "elapsed_s": (report.elapsed_s() * 10.0).round() / 10.0,
        "progress": {
            "timing_cases_done": report.timing_done,
            "timing_cases_planned": report.timing_total,
            "sigma_rows": report.sigma.len(),
            "loss_curves": report.losses.len(),
        },
        "machine": report.machine,
        "rust": report.rust_env,
        "pytorch": report.pytorch_env,
        "cuda_available": report.cuda_available,
        "copy_bandwidth": bandwidth,
        "options": report.options,
        "files": ["summary.md", "timing.csv", "convergence.csv", "loss.csv", "run.json"],
        "plots": report.plots,
        "warnings": report.warnings,
    })
}
