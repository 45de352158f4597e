//! `summary.md`'s ratio tables: Rust's median over PyTorch's for every op line (an op, and
//! its k for `power_iteration`), per device: the square f32 sizes, the rectangular
//! shapes, and the other dtypes.

use super::case::{DType, DeviceKind, Shape};
use super::ops::Op;
use super::results::{Side, TimingRow};
use super::state::Report;
use super::summary::duration_text;
use std::fmt::Write as _;

/// The sizes the summary's ratio table always tries to show (others of the sweep are added).
pub(crate) const SUMMARY_SIZES: [u64; 4] = [64, 512, 2048, 4096];

/// A ratio cell: `0.98 [0.95, 1.01]` with its bootstrap interval, marked `✓` when settled
/// (the interval at most `settle_width` wide relative to the ratio) and `?` when not;
/// `0.98` without an interval; or why there is none.
pub(crate) fn ratio_cell(row: Option<&TimingRow>, settle_width: f64) -> String {
    let Some(row) = row else { return "–".into() };
    if let Some(r) = row.ratio() {
        return match (row.interval, row.settled(settle_width)) {
            (Some(i), Some(settled)) => {
                format!("{r:.2} [{:.2}, {:.2}]{}", i.low, i.high, if settled { " ✓" } else { " ?" })
            }
            _ => format!("{r:.2}"),
        };
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
    for row in report.timing.iter().filter(|r| {
        r.case.device == device && r.case.dtype == DType::F32 && !r.case.op.is_seed_loop() && !r.case.op.is_model()
    }) {
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

/// The ratio tables of every device with a timing row, appended to `out`.
pub(crate) fn ratio_tables(out: &mut String, report: &Report) {
    let devices: Vec<DeviceKind> = [DeviceKind::Cpu, DeviceKind::Cuda]
        .into_iter()
        .filter(|d| report.timing.iter().any(|r| r.case.device == *d))
        .collect();
    if devices.is_empty() {
        out.push_str("No timing case has finished yet.\n\n");
        return;
    }
    let _ = writeln!(
        out,
        "Each ratio is Rust's median over PyTorch's with its 95 % bootstrap interval over the paired bursts (docs/reports.md); \
         ✓: settled (interval width ≤ {} of the ratio), ?: not settled.\n",
        report.options.settle_width
    );
    let sizes = square_sizes(report);
    for device in devices {
        square_table(out, report, device, &sizes);
        rect_table(out, report, device);
        other_dtypes_table(out, report, device);
    }
}

/// A table's header and rule: `| op |` and one column per label.
fn table_head(out: &mut String, columns: impl IntoIterator<Item = String>) {
    let mut header = "| op |".to_string();
    let mut rule = "|---|".to_string();
    for column in columns {
        let _ = write!(header, " {column} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
}

/// The f32 ratios at the square `sizes` on `device`.
fn square_table(out: &mut String, report: &Report, device: DeviceKind, sizes: &[u64]) {
    let _ = writeln!(out, "### {device}, f32, square `n x n` weights\n");
    table_head(out, sizes.iter().map(|n| format!("{n}²")));
    for (op, k) in op_lines(report, device) {
        let mut line = format!("| {} |", op_label(op, k));
        for &n in sizes {
            let _ = write!(
                line,
                " {} |",
                ratio_cell(report.find_row(op, Shape::square(n), DType::F32, device, k), report.options.settle_width)
            );
        }
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
}

/// The f32 ratios at the rectangular shapes on `device` (nothing without such rows).
fn rect_table(out: &mut String, report: &Report, device: DeviceKind) {
    let rect: Vec<Shape> = report
        .options
        .rect_shapes
        .iter()
        .copied()
        .filter(|s| report.timing.iter().any(|r| r.case.shape() == *s && r.case.device == device))
        .collect();
    if rect.is_empty() {
        return;
    }
    let _ = writeln!(out, "Rectangular weights ({device}, f32):\n");
    table_head(out, rect.iter().map(Shape::to_string));
    for (op, k) in op_lines(report, device) {
        if !rect.iter().any(|s| report.find_row(op, *s, DType::F32, device, k).is_some()) {
            continue;
        }
        let mut line = format!("| {} |", op_label(op, k));
        for s in &rect {
            let _ = write!(
                line,
                " {} |",
                ratio_cell(report.find_row(op, *s, DType::F32, device, k), report.options.settle_width)
            );
        }
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
}

/// Every row of a dtype other than f32 on `device`, both medians and the ratio (nothing without such rows).
fn other_dtypes_table(out: &mut String, report: &Report, device: DeviceKind) {
    let other: Vec<&TimingRow> =
        report.timing.iter().filter(|r| r.case.device == device && r.case.dtype != DType::F32).collect();
    if !other.is_empty() {
        let _ = writeln!(out, "Other dtypes ({device}):\n\n| op | shape | dtype | Rust median | PyTorch median | Rust / PyTorch |\n|---|---|---|---:|---:|---:|");
        for row in other {
            let time = |side: &Side| side.median_us().map(duration_text).unwrap_or_else(|| side.status().to_string());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                op_label(row.case.op, row.case.n_power_iterations),
                row.case.shape(),
                row.case.dtype,
                time(&row.rust),
                time(&row.pytorch),
                ratio_cell(Some(row), report.options.settle_width)
            );
        }
        out.push('\n');
    }
}
