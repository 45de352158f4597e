//! `run.json`: everything about the run, machine-readable, rebuilt from the [`Report`]
//! after every piece of work.

use super::bandwidth::bandwidth_json;
use super::state::Report;
use serde_json::{json, Value};

/// The devices of the timing rows, in [`DeviceKind`](super::case::DeviceKind) order
/// (`["cpu", "cuda"]` when CUDA rows ran; the CSV's `device` column says it per row).
fn devices_timed(report: &Report) -> Vec<&'static str> {
    let devices: std::collections::BTreeSet<_> = report.timing.iter().map(|row| row.case.device).collect();
    devices.into_iter().map(|d| d.name()).collect()
}

/// `run.json`'s content.
pub(crate) fn render_json(report: &Report) -> Value {
    let bandwidth = bandwidth_json(report);
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
            "operator_norm_rows": report.operator_norms.len(),
        },
        "machine": report.machine,
        "rust": report.rust_env,
        "pytorch": report.pytorch_env,
        "cuda_available": report.cuda_available,
        "devices": devices_timed(report),
        "copy_bandwidth": bandwidth,
        "options": report.options,
        "files": ["summary.md", "timing.csv", "convergence.csv", "loss.csv", "operator_norm.csv", "run.json"],
        "plots": report.plots,
        "warnings": report.warnings,
    })
}
