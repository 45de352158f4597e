//! The bandwidth headline of `summary.md` and `run.json`: `copy`, `weight_norm_forward`
//! and `weight_norm_forward_out` at 4096² in f32, in GB/s on each side and as a fraction
//! of `copy`'s.

use super::case::{DType, DeviceKind, Shape};
use super::ops::Op;
use super::results::TimingRow;
use super::state::Report;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The bandwidth headline's size.
pub(crate) const BANDWIDTH_SIZE: u64 = 4096;

/// One op's bandwidth (GB/s) on each side, `(rust, pytorch)`.
pub(crate) type SideBandwidths = (Option<f64>, Option<f64>);

/// The bandwidth headline of one device: `copy`, `weight_norm_forward` and
/// `weight_norm_forward_out` at `n x n`, f32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bandwidths {
    /// `dst.copy_(src)`, the reference.
    pub(crate) copy: SideBandwidths,
    /// `_weight_norm` on both sides (Rust `compute_weight`).
    pub(crate) weight_norm_forward: SideBandwidths,
    /// Rust `weight_norm_out` into a reused output; PyTorch `_weight_norm` (no `out=` variant).
    pub(crate) weight_norm_forward_out: SideBandwidths,
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
pub(crate) fn bandwidths(report: &Report, n: u64, device: DeviceKind) -> Option<Bandwidths> {
    let shape = Shape::square(n);
    let of = |op: Op| report.find_row(op, shape, DType::F32, device, None);
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

pub(crate) fn bandwidth_section(out: &mut String, report: &Report) {
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
                report
                    .find_row(Op::WeightNormForward, Shape::square(BANDWIDTH_SIZE), DType::F32, device, None)
                    .is_some(),
            ),
            (
                "weight_norm_forward_out",
                b.weight_norm_forward_out,
                report
                    .find_row(Op::WeightNormForwardOut, Shape::square(BANDWIDTH_SIZE), DType::F32, device, None)
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

/// `run.json`'s `copy_bandwidth`: per device with a headline, its bandwidths and fractions.
pub(crate) fn bandwidth_json(report: &Report) -> Value {
    [DeviceKind::Cpu, DeviceKind::Cuda]
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
        .into()
}
