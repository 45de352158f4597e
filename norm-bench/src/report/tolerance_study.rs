//! The report's tolerance study (`tolerance.csv`; issue 11, item 7): how many power
//! iterations the opt-in tolerance mode ([`norm_core::power_iteration`]) runs on the report's
//! 1024² float32 matrices ([`MatrixKind`]: random and ill-conditioned, σ₂/σ₁ = 0.95), against
//! the fixed count that reaches the same true error.
//!
//! For each matrix and tolerance `t`:
//!
//! - **cold**: `u`, `v` drawn as the σ study draws them (`torch.manual_seed(SIGMA_SEED + 1)`,
//!   the hook API's registration draws), then the hook API's iteration in tolerance mode
//!   (`n_power_iterations = 1`, at most [`MAX_ITERATIONS`]): it stops at the first `k` with
//!   `bound_k ≤ t · σ_k`, `bound = sqrt((‖Wv − σu‖² + ‖Wᵀu − σv‖²) / (‖u‖² + ‖v‖²))`;
//! - **warm**: the matrix after an Adam-sized step `W' = W + STEP · rms(W) · G` (`G` drawn
//!   after `torch.manual_seed(SIGMA_SEED + 2)`), iterated again from the cold run's final
//!   `u`, `v` (what a training step with the layer's buffers does).
//!
//! Each row gives the iterations run, `bound / σ` and the true relative error
//! `|σ − σ₁| / σ₁` at the stop (σ₁ from the float64 SVD), and, from the same start, the
//! least fixed count `k` whose σ_k has a true error `≤ t` (an oracle: it needs σ₁) and the
//! least one reaching the error at the stop. The iterates of the tolerance mode are the
//! fixed mode's, so the fixed counts come from one trace of σ_k.

use super::convergence::{make_matrix, relative_error, top_singular_values, MatrixKind, SIGMA_SEED};
use anyhow::{Context, Result};
use norm_core::power_iteration::{iterate_hooks, sigma_and_bound, PowerIterationTolerance};
use norm_core::spectral_norm::hooks;
use norm_tch::TchBackend;
use std::fmt::Write;
use tch::{Kind, Tensor};

/// The matrices' size (the report's 1024²).
pub(crate) const SIZE: i64 = 1024;
/// The tolerances studied.
pub(crate) const TOLERANCES: [f64; 3] = [1e-3, 1e-4, 1e-5];
/// The most iterations of one tolerance-mode run.
pub(crate) const MAX_ITERATIONS: usize = 3000;
/// The warm start's step, relative to the entries' RMS.
pub(crate) const STEP: f64 = 1e-3;
/// `eps` of the normalizations (PyTorch's default).
const EPS: f64 = 1e-12;

/// One line of `tolerance.csv`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ToleranceRow {
    /// The matrix kind.
    pub(crate) matrix: MatrixKind,
    /// `"cold"` or `"warm"`.
    pub(crate) start: &'static str,
    /// The relative tolerance.
    pub(crate) tolerance: f64,
    /// Iterations the tolerance mode ran.
    pub(crate) iterations: usize,
    /// Whether it stopped on the tolerance (not on [`MAX_ITERATIONS`]).
    pub(crate) converged: bool,
    /// `bound / σ` at the stop.
    pub(crate) bound_rel: f64,
    /// `|σ − σ₁| / σ₁` at the stop.
    pub(crate) true_error: f64,
    /// The least fixed count with a true error `≤ tolerance`.
    pub(crate) fixed_for_tolerance: Option<usize>,
    /// The least fixed count with a true error `≤ true_error`.
    pub(crate) fixed_for_same_error: Option<usize>,
}

/// `σ = dot(u, W v)` and `bound / σ` of the current vectors (one extra `Wᵀu`).
fn sigma_and_relative_bound(w: &Tensor, u: &Tensor, v: &Tensor) -> Result<(f64, f64)> {
    tch::no_grad(|| {
        let w_v = w.f_mv(v)?;
        let wt_u = w.f_tr()?.f_mv(u)?;
        let (sigma, bound) = sigma_and_bound::<TchBackend>(u, v, &w_v, &wt_u)?;
        Ok((sigma, bound / sigma.abs()))
    })
}

/// σ_k after each of `k = 1..=n` fixed iterations of the hook API from `u`, `v` (copied).
fn trace(w: &Tensor, u: &Tensor, v: &Tensor, n: usize) -> Result<Vec<f64>> {
    let (mut u, mut v) = (u.f_detach_copy()?, v.f_detach_copy()?);
    let one = PowerIterationTolerance { tolerance: 0.0, max_iterations: 1 };
    (0..n)
        .map(|_| {
            let (_, w_v) = iterate_hooks::<TchBackend>(w, &mut u, &mut v, EPS, 1, &one)?;
            let w_v = w_v.context("one iteration ran")?;
            Ok(tch::no_grad(|| u.f_dot(&w_v))?.f_double_value(&[])?)
        })
        .collect()
}

/// One tolerance-mode run from `u`, `v` (updated in place) and its row.
fn run(
    matrix: MatrixKind,
    start: &'static str,
    w: &Tensor,
    sigma_1: f64,
    (u, v): (&mut Tensor, &mut Tensor),
    tolerance: f64,
) -> Result<ToleranceRow> {
    let (u0, v0) = (u.f_detach_copy()?, v.f_detach_copy()?);
    let mode = PowerIterationTolerance { tolerance, max_iterations: MAX_ITERATIONS };
    let (iterations, _) = iterate_hooks::<TchBackend>(w, u, v, EPS, 1, &mode)?;
    let (sigma, bound_rel) = sigma_and_relative_bound(w, u, v)?;
    let true_error = relative_error(sigma, sigma_1);
    let errors: Vec<f64> = trace(w, &u0, &v0, iterations)?.into_iter().map(|s| relative_error(s, sigma_1)).collect();
    let first = |target: f64| errors.iter().position(|&e| e <= target).map(|i| i + 1);
    Ok(ToleranceRow {
        matrix,
        start,
        tolerance,
        iterations,
        converged: iterations < MAX_ITERATIONS,
        bound_rel,
        true_error,
        fixed_for_tolerance: first(tolerance),
        fixed_for_same_error: first(true_error),
    })
}

/// The study for one matrix kind: a cold and a warm row per tolerance.
pub(crate) fn tolerance_study(matrix: MatrixKind) -> Result<Vec<ToleranceRow>> {
    let w = make_matrix(matrix, SIZE, SIZE)?;
    let (sigma_1, _) = top_singular_values(&w)?;
    tch::manual_seed(SIGMA_SEED as i64 + 2);
    let g = Tensor::f_randn([SIZE, SIZE], (Kind::Float, tch::Device::Cpu))?;
    let rms = w.f_square()?.f_mean(Kind::Double)?.f_sqrt()?.f_double_value(&[])?;
    let stepped = w.f_add(&g.f_mul_scalar(STEP * rms)?)?;
    let (stepped_sigma_1, _) = top_singular_values(&stepped)?;
    let mut rows = Vec::new();
    for tolerance in TOLERANCES {
        tch::manual_seed(SIGMA_SEED as i64 + 1);
        let (mut u, mut v) = hooks::initial_u_v::<TchBackend>(&w, 0, EPS)?;
        rows.push(run(matrix, "cold", &w, sigma_1, (&mut u, &mut v), tolerance)?);
        rows.push(run(matrix, "warm", &stepped, stepped_sigma_1, (&mut u, &mut v), tolerance)?);
    }
    Ok(rows)
}

/// `tolerance.csv`'s header, in column order.
pub(crate) const TOLERANCE_HEADER: [&str; 12] = [
    "matrix",
    "rows",
    "cols",
    "start",
    "tolerance",
    "iterations",
    "converged",
    "bound_rel",
    "true_rel_error",
    "fixed_for_tolerance",
    "fixed_for_same_error",
    "max_iterations",
];

/// `tolerance.csv`'s content.
pub(crate) fn tolerance_csv(rows: &[ToleranceRow]) -> Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(TOLERANCE_HEADER)?;
    let count = |k: Option<usize>| k.map(|k| k.to_string()).unwrap_or_default();
    for r in rows {
        writer.write_record([
            r.matrix.name().to_string(),
            SIZE.to_string(),
            SIZE.to_string(),
            r.start.to_string(),
            format!("{:e}", r.tolerance),
            r.iterations.to_string(),
            r.converged.to_string(),
            format!("{:.3e}", r.bound_rel),
            format!("{:.3e}", r.true_error),
            count(r.fixed_for_tolerance),
            count(r.fixed_for_same_error),
            MAX_ITERATIONS.to_string(),
        ])?;
    }
    Ok(String::from_utf8(writer.into_inner().map_err(|e| e.into_error())?)?)
}

/// The summary's section (nothing when the study did not run).
pub(crate) fn summary_section(out: &mut String, rows: &[ToleranceRow]) {
    if rows.is_empty() {
        return;
    }
    out.push_str("## Power iteration to a tolerance\n\n");
    let _ = writeln!(
        out,
        "Hook API in tolerance mode on the {SIZE}² float32 matrices: iterations until `bound ≤ t·σ` (cold: fresh `u`, `v`; \
         warm: the cold run's `u`, `v` after an Adam-sized step of {STEP:e}·rms(W)), the true error `|σ − σ₁| / σ₁` at \
         the stop, and the least fixed counts from the same start reaching error ≤ t (an oracle that knows σ₁) and the \
         same error. All rows are in `tolerance.csv`.\n\n\
         | matrix | start | t | iterations | bound/σ | true error | fixed k, error ≤ t | fixed k, same error |\n\
         |---|---|---:|---:|---:|---:|---:|---:|"
    );
    let count = |k: Option<usize>| k.map(|k| k.to_string()).unwrap_or_else(|| "–".into());
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:e} | {}{} | {:.1e} | {:.1e} | {} | {} |",
            r.matrix,
            r.start,
            r.tolerance,
            r.iterations,
            if r.converged { "" } else { " (max)" },
            r.bound_rel,
            r.true_error,
            count(r.fixed_for_tolerance),
            count(r.fixed_for_same_error)
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_study_stops_on_the_bound_and_the_fixed_counts_are_consistent() {
        let _generator = norm_tch::backend::lock_global_generator();
        let rows = tolerance_study(MatrixKind::Random).unwrap();
        assert_eq!(rows.len(), 2 * TOLERANCES.len());
        for r in &rows {
            assert!(r.converged && r.bound_rel <= r.tolerance, "{r:?}");
            // the bound bounds the error once converged to σ₁, and the fixed counts are the trace's
            assert!(r.true_error <= r.bound_rel * 1.01 + 1e-6, "{r:?}");
            let same = r.fixed_for_same_error.unwrap();
            assert!(same <= r.iterations && r.fixed_for_tolerance.unwrap() <= same.max(r.iterations), "{r:?}");
        }
        // a warm start needs fewer iterations than a cold one
        for pair in rows.chunks(2) {
            assert!(pair[1].iterations <= pair[0].iterations, "{pair:?}");
        }
        let csv = tolerance_csv(&rows).unwrap();
        assert_eq!(csv.lines().count(), 1 + rows.len());
        assert!(csv.starts_with("matrix,rows,cols,start,tolerance,iterations,"));
        let mut md = String::new();
        summary_section(&mut md, &rows);
        assert!(md.contains("| random | cold | 1e-3 |"), "{md}");
    }
}
