//! The report's cases and their Rust timed bodies.
//!
//! Every case is timed the same way on both sides (here and in
//! `norm-bench/python/eager_timing.py`): `warmup` untimed iterations, then `samples`
//! iterations each timed alone, with the device synchronized before each clock read.
//! Whatever a body allocates (its result included) is freed before its clock stops;
//! work done "between samples" (clearing gradients) is outside the timed window.
//!
//! - [`Op::WeightNormForward`]: `torch._weight_norm(v, g, 0)` on leaf tensors that do not
//!   require grad, `v = randn(n, n)`, `g = norm_except_dim(v, 2, 0)`. The Rust side calls
//!   [`compute_weight`], which is exactly what `WeightNorm::weight()` runs; the layer's
//!   parameters would require grad and so time autograd recording that the PyTorch side
//!   does not do.
//! - [`Op::WeightNormForwardBackward`]: the same with `v` and `g` requiring grad, then
//!   `weight.sum().backward()`; both gradients are set to `None` between samples.
//! - [`Op::SeedLoopStep`]: one iteration of the seed document's first weight-norm loop,
//!   `x = randn(10, 2) * random.random() * 10` then forward / zero_grad / backward / Adam
//!   step on `weight_norm(nn.Linear(2, 3))` (shape `3x2`, the weight's).

use crate::seed_loop::{Example, SeedModel};
use anyhow::{Context, Result};
use norm_core::random::PyRandom;
use norm_core::weight_norm::{compute_weight, WeightNormDim};
use norm_core::AutodiffBackend;
use norm_tch::backend::synchronize;
use norm_tch::TchBackend;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// The device every case runs on (CUDA cases will come later).
pub const DEVICE: Device = Device::Cpu;

/// [`DEVICE`] as the CSV's `device` column writes it.
pub const DEVICE_NAME: &str = "cpu";

/// The seed of `torch.manual_seed` (and `random.seed`) before each case's setup, on both sides.
pub const CASE_SEED: u64 = 0;

/// What a case times. The serde names are the ones in the CSV and the Python protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `torch._weight_norm(v, g, 0)` without autograd.
    WeightNormForward,
    /// `_weight_norm(v, g, 0).sum().backward()` with `v`, `g` requiring grad.
    WeightNormForwardBackward,
    /// One training step of the seed document's weight-norm program.
    SeedLoopStep,
}

impl Op {
    /// The name in the CSV's `op` column and in the Python protocol.
    pub fn name(self) -> &'static str {
        match self {
            Op::WeightNormForward => "weight_norm_forward",
            Op::WeightNormForwardBackward => "weight_norm_forward_backward",
            Op::SeedLoopStep => "seed_loop_step",
        }
    }
}

/// One timed case: an op on a `rows x cols` float32 weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// What is timed.
    pub op: Op,
    /// The weight's first dimension.
    pub rows: u64,
    /// The weight's second dimension.
    pub cols: u64,
}

impl Case {
    /// The CSV's `shape` column, e.g. `1024x1024`.
    pub fn shape(&self) -> String {
        format!("{}x{}", self.rows, self.cols)
    }
}

/// The report's cases in run order: the forward at every size, then forward+backward at
/// every size (square `n x n` weights), then the seed loop step (`3x2`).
pub fn cases_for_sizes(sizes: &[u64]) -> Vec<Case> {
    let square = |op: Op| sizes.iter().map(move |&n| Case { op, rows: n, cols: n });
    square(Op::WeightNormForward)
        .chain(square(Op::WeightNormForwardBackward))
        .chain(std::iter::once(Case { op: Op::SeedLoopStep, rows: 3, cols: 2 }))
        .collect()
}

/// Runs `warmup` untimed then `samples` timed iterations of `body`, calling `between`
/// (untimed) before each one. Returns one duration in nanoseconds per timed iteration.
fn time_iterations(
    warmup: u64,
    samples: u64,
    mut between: impl FnMut() -> Result<()>,
    mut body: impl FnMut() -> Result<()>,
) -> Result<Vec<u64>> {
    for _ in 0..warmup {
        between()?;
        body()?;
    }
    synchronize(DEVICE);
    let mut nanos = Vec::with_capacity(samples as usize);
    for _ in 0..samples {
        between()?;
        synchronize(DEVICE);
        let start = Instant::now();
        body()?;
        synchronize(DEVICE);
        nanos.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    Ok(nanos)
}

/// `v = randn(rows, cols)` and `g = norm_except_dim(v, 2, 0)`, as leaves requiring grad or not.
fn weight_norm_leaves(case: &Case, requires_grad: bool) -> Result<(Tensor, Tensor)> {
    let dims = [i64::try_from(case.rows)?, i64::try_from(case.cols)?];
    let v = Tensor::f_randn(dims, (Kind::Float, DEVICE))?;
    let g = Tensor::f_norm_except_dim(&v, 2, 0)?;
    Ok((v.f_set_requires_grad(requires_grad)?, g.f_set_requires_grad(requires_grad)?))
}

/// Times `case` in Rust: one duration in nanoseconds per timed sample.
///
/// Seeds the generators with [`CASE_SEED`] first; the caller pins the thread count.
pub fn time_rust(case: &Case, warmup: u64, samples: u64) -> Result<Vec<u64>> {
    tch::manual_seed(CASE_SEED as i64);
    let dim = WeightNormDim::new(Some(0));
    let timed = match case.op {
        Op::WeightNormForward => {
            let (v, g) = weight_norm_leaves(case, false)?;
            time_iterations(warmup, samples, || Ok(()), || {
                drop(compute_weight::<TchBackend>(&v, &g, dim)?);
                Ok(())
            })
        }
        Op::WeightNormForwardBackward => {
            let (mut v, mut g) = weight_norm_leaves(case, true)?;
            let (v_handle, g_handle) = (v.shallow_clone(), g.shallow_clone());
            time_iterations(
                warmup,
                samples,
                || {
                    TchBackend::clear_grad(&mut v)?;
                    TchBackend::clear_grad(&mut g)?;
                    Ok(())
                },
                || {
                    let weight = compute_weight::<TchBackend>(&v_handle, &g_handle, dim)?;
                    weight.f_sum(None::<Kind>)?.f_backward()?;
                    Ok(())
                },
            )
        }
        Op::SeedLoopStep => {
            anyhow::ensure!((case.rows, case.cols) == (3, 2), "seed_loop_step is a 3x2 weight, got {}", case.shape());
            let mut random = PyRandom::new(CASE_SEED);
            let mut model = SeedModel::new(Example::WeightNorm)?;
            time_iterations(warmup, samples, || Ok(()), || {
                let x = Tensor::f_randn([10, 2], (Kind::Float, DEVICE))?.f_mul_scalar(random.random())?.f_mul_scalar(10.0)?;
                model.train_step(&x)
            })
        }
    };
    timed.with_context(|| format!("timing {} {} in Rust", case.op.name(), case.shape()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_run_op_by_op_then_the_seed_step() {
        let cases = cases_for_sizes(&[8, 16]);
        let names: Vec<String> = cases.iter().map(|c| format!("{} {}", c.op.name(), c.shape())).collect();
        assert_eq!(
            names,
            [
                "weight_norm_forward 8x8",
                "weight_norm_forward 16x16",
                "weight_norm_forward_backward 8x8",
                "weight_norm_forward_backward 16x16",
                "seed_loop_step 3x2"
            ]
        );
        assert_eq!(serde_json::to_string(&cases[2]).unwrap(), r#"{"op":"weight_norm_forward_backward","rows":8,"cols":8}"#);
    }

    #[test]
    fn clearing_a_leaf_clears_the_handle_that_backward_went_through() {
        // time_rust clears `v` while the body differentiates through `v.shallow_clone()`.
        let (mut v, g) = weight_norm_leaves(&Case { op: Op::WeightNormForwardBackward, rows: 4, cols: 4 }, true).unwrap();
        let handle = v.shallow_clone();
        compute_weight::<TchBackend>(&handle, &g, WeightNormDim::new(Some(0))).unwrap().sum(Kind::Float).backward();
        assert!(TchBackend::grad(&v).is_some());
        TchBackend::clear_grad(&mut v).unwrap();
        assert!(TchBackend::grad(&handle).is_none());
    }

    #[test]
    fn every_op_times_the_requested_sample_count() {
        for case in cases_for_sizes(&[4]) {
            let nanos = time_rust(&case, 1, 3).unwrap();
            assert_eq!(nanos.len(), 3, "{case:?}");
        }
    }
}
