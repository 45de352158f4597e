//! The Rust side of the timing cases: [`open`] and one timed body per op, named
//! `body_<op>` (each op's row in [`OPS`](super::ops::OPS) points at its body).
//!
//! Every case is timed the same way on both sides (here and in
//! `norm-bench/python/eager_timing.py`): the [`sampling`](super::sampling) rule decides
//! the warm-up and sample counts and how many iterations a sample batches (one for the
//! cases with untimed work between iterations), each sample is timed alone, and the
//! device is synchronized before each clock read. Whatever a body allocates (its result included)
//! is freed before its clock stops; work done "between samples" (clearing gradients) is
//! outside the timed window. Each case's setup starts with `torch.manual_seed(0)` (and
//! `random.seed(0)`) on both sides. Inputs are drawn as float32 on the CPU and then
//! converted to the case's dtype and device (`.to(dtype, device)`).
//!
//! | op | timed body (Rust: norm; PyTorch: the same program in eager) |
//! |---|---|
//! | `copy` | `dst.copy_(src)`: the bandwidth reference |
//! | `weight_norm_forward` | `torch._weight_norm(v, g, 0)` without autograd; Rust [`compute_weight`] (what `WeightNorm::weight_t` runs) |
//! | `weight_norm_forward_out` | Rust [`norm_tch::weight_norm_out`] into an output allocated once; PyTorch `torch._weight_norm(v, g, 0)` (it has no `out=` variant). CPU, f32/f64/bf16 only |
//! | `weight_norm_forward_backward` | the same with `v`, `g` requiring grad, then `.sum().backward()` |
//! | `spectral_norm_forward_train` | `SpectralNorm.compute_weight(m, do_power_iteration=True)` on `spectral_norm(nn.Linear(cols, rows))`, autograd recording (Rust `SpectralNorm::weight_t(true)`) |
//! | `spectral_norm_forward_eval` | `compute_weight(m, do_power_iteration=False)` under `no_grad` |
//! | `spectral_norm_forward_backward` | the training forward, then `.sum().backward()` |
//! | `power_iteration` | `_SpectralNorm._power_method(W, k)` of the parametrization API alone (Rust `SpectralNormState::power_method`) |
//! | `spectral_norm_train_step` | `loss = m(x).pow(2).mean(); zero_grad; backward; Adam.step` on the spectral-normed Linear, `x = randn(32, cols)`, `Adam(lr=1e-3, foreach=False)` (Rust `norm_tch::optim::Adam`) |
//! | `seed_loop_step` | one iteration of the seed document's first weight-norm loop (3x2 weight, CPU, f32) |
//! | `seed_loop_step_cpp` | the same step in C++ straight against libtorch; PyTorch: `seed_loop_step`'s program |

use super::case::{Case, DType, DeviceKind};
use super::sampling::Body;
use crate::seed_loop::{Example, SeedModel};
use crate::seed_loop_cpp::SeedStepCpp;
use anyhow::{Context, Result};
use norm_core::optim::AdamConfig;
use norm_core::random::PyRandom;
use norm_core::spectral_norm::parametrizations::{self as sn_param, SpectralNormState};
use norm_core::weight_norm::{compute_weight, WeightNormDim};
use norm_core::AutodiffBackend;
use norm_tch::layers::{linear, spectral_norm, LinearConfig, SpectralNorm, SpectralNormOptions};
use norm_tch::optim::Adam;
use norm_tch::{weight_norm_out, TchBackend};
use tch::nn::{Linear, VarStore};
use tch::{Device, Kind, Tensor};

/// The seed of `torch.manual_seed` (and `random.seed`) before each case's setup, on both sides.
pub(crate) const CASE_SEED: u64 = 0;

/// Rows of the input batch of `spectral_norm_train_step`.
const TRAIN_STEP_BATCH: i64 = 32;

/// Learning rate of `spectral_norm_train_step`'s Adam.
const TRAIN_STEP_LR: f64 = 1e-3;

/// `eps` of the spectral-norm cases (PyTorch's default).
const SPECTRAL_EPS: f64 = 1e-12;

/// Sets `case` up in Rust: the timed body of its op's row, owning its state.
///
/// Seeds the generators with [`CASE_SEED`] first; the caller pins the thread count.
/// Errors: the case cannot be set up here (e.g. a shape it refuses), with the message;
/// an op that libtorch does not implement for the dtype fails later, in the body.
pub(crate) fn open(case: &Case) -> Result<Body> {
    tch::manual_seed(CASE_SEED as i64);
    (case.op.row().rust_body)(case)
}

/// `randn(dims)` drawn as float32 on the CPU, then converted to the case's dtype and device.
fn randn(case: &Case, dims: [i64; 2]) -> Result<Tensor> {
    Ok(Tensor::f_randn(dims, (Kind::Float, Device::Cpu))?
        .f_to_kind(case.dtype.kind())?
        .f_to_device(case.device.device())?)
}

/// `v = randn(rows, cols)` and `g = norm_except_dim(v, 2, 0)`, as leaves requiring grad or not.
fn weight_norm_leaves(case: &Case, requires_grad: bool) -> Result<(Tensor, Tensor)> {
    let v = randn(case, case.dims()?)?;
    let g = Tensor::f_norm_except_dim(&v, 2, 0)?;
    Ok((v.f_set_requires_grad(requires_grad)?, g.f_set_requires_grad(requires_grad)?))
}

/// `spectral_norm(nn.Linear(cols, rows).to(dtype, device), n_power_iterations=k)` with
/// norm-tch's layers: the VarStore and the layer.
fn spectral_linear(case: &Case, k: usize) -> Result<(VarStore, SpectralNorm<Linear>)> {
    let mut vs = VarStore::new(case.device.device());
    let [rows, cols] = case.dims()?;
    let layer = linear(&vs.root(), cols, rows, LinearConfig::default())?;
    if case.dtype != DType::F32 {
        vs.set_kind(case.dtype.kind());
    }
    let options =
        SpectralNormOptions { n_power_iterations: k as i64, eps: SPECTRAL_EPS, dim: None, ..Default::default() };
    let layer = spectral_norm(&vs, layer, options)?;
    Ok((vs, layer))
}

/// `copy`: `dst.copy_(src)`.
pub(crate) fn body_copy(case: &Case) -> Result<Body> {
    let src = randn(case, case.dims()?)?;
    let mut dst = src.f_empty_like()?;
    Ok(Body::new(case.device.device(), move || {
        dst.f_copy_(&src)?;
        Ok(())
    }))
}

/// `weight_norm_forward`: [`compute_weight`] on leaves that do not require grad.
pub(crate) fn body_weight_norm_forward(case: &Case) -> Result<Body> {
    let (v, g) = weight_norm_leaves(case, false)?;
    let dim = WeightNormDim::new(Some(0));
    Ok(Body::new(case.device.device(), move || {
        drop(compute_weight::<TchBackend>(&v, &g, dim)?);
        Ok(())
    }))
}

/// `weight_norm_forward_out`: as `weight_norm_forward` (grad mode on, v and g not
/// requiring grad), into an output allocated once: contiguous, v's shape, dtype and device.
pub(crate) fn body_weight_norm_forward_out(case: &Case) -> Result<Body> {
    let (v, g) = weight_norm_leaves(case, false)?;
    let dim = WeightNormDim::new(Some(0));
    let mut out = Tensor::f_empty(v.size(), (v.kind(), v.device()))?;
    Ok(Body::new(case.device.device(), move || Ok(weight_norm_out(&v, &g, dim, &mut out)?)))
}

/// `weight_norm_forward_backward`: forward and `.sum().backward()`; the grads are cleared
/// between iterations (untimed).
pub(crate) fn body_weight_norm_forward_backward(case: &Case) -> Result<Body> {
    let (mut v, mut g) = weight_norm_leaves(case, true)?;
    let (v_handle, g_handle) = (v.shallow_clone(), g.shallow_clone());
    let dim = WeightNormDim::new(Some(0));
    Ok(Body::with_between(
        case.device.device(),
        move || {
            TchBackend::clear_grad(&mut v)?;
            TchBackend::clear_grad(&mut g)?;
            Ok(())
        },
        move || {
            let weight = compute_weight::<TchBackend>(&v_handle, &g_handle, dim)?;
            weight.f_sum(None::<Kind>)?.f_backward()?;
            Ok(())
        },
    ))
}

/// `spectral_norm_forward_train`: the layer's training-mode weight.
pub(crate) fn body_spectral_norm_forward_train(case: &Case) -> Result<Body> {
    let (vs, layer) = spectral_linear(case, case.k()?)?;
    Ok(Body::new(case.device.device(), move || {
        let _variables = &vs;
        drop(layer.weight_t(true)?);
        Ok(())
    }))
}

/// `spectral_norm_forward_eval`: the layer's eval-mode weight under `no_grad`.
pub(crate) fn body_spectral_norm_forward_eval(case: &Case) -> Result<Body> {
    let (vs, layer) = spectral_linear(case, 1)?;
    Ok(Body::new(case.device.device(), move || {
        let _variables = &vs;
        drop(tch::no_grad(|| layer.weight_t(false))?);
        Ok(())
    }))
}

/// `spectral_norm_forward_backward`: the training-mode weight and `.sum().backward()`;
/// `weight_orig`'s grad is cleared between iterations (untimed).
pub(crate) fn body_spectral_norm_forward_backward(case: &Case) -> Result<Body> {
    let (vs, layer) = spectral_linear(case, case.k()?)?;
    let mut weight_orig = layer.weight_orig().shallow_clone();
    Ok(Body::with_between(
        case.device.device(),
        move || Ok(TchBackend::clear_grad(&mut weight_orig)?),
        move || {
            let _variables = &vs;
            layer.weight_t(true)?.f_sum(None::<Kind>)?.f_backward()?;
            Ok(())
        },
    ))
}

/// `power_iteration`: [`SpectralNormState::power_method`] alone.
pub(crate) fn body_power_iteration(case: &Case) -> Result<Body> {
    let k = case.k()?;
    let weight = randn(case, case.dims()?)?;
    let mut state = SpectralNormState::<TchBackend>::new(&weight, k as i64, 0, SPECTRAL_EPS)?;
    let w_mat = sn_param::weight_to_matrix::<TchBackend>(&weight, 0)?;
    Ok(Body::new(case.device.device(), move || Ok(state.power_method(&w_mat, k)?)))
}

/// `spectral_norm_train_step`: forward, `zero_grad`, backward and norm-tch's Adam step.
pub(crate) fn body_spectral_norm_train_step(case: &Case) -> Result<Body> {
    let (vs, layer) = spectral_linear(case, case.k()?)?;
    let x = randn(case, [TRAIN_STEP_BATCH, case.dims()?[1]])?;
    let mut adam = Adam::new(&vs, AdamConfig::with_lr(TRAIN_STEP_LR))?;
    Ok(Body::new(case.device.device(), move || {
        let _variables = &vs;
        let loss = layer.f_forward_t(&x, true)?.f_pow_tensor_scalar(2)?.f_mean(None::<Kind>)?;
        adam.zero_grad()?;
        loss.f_backward()?;
        adam.step()?;
        Ok(())
    }))
}

/// The seed document's model and its `random` stream, for a seed-loop case (3x2, f32, CPU).
fn seed_loop_model(case: &Case) -> Result<(SeedModel, PyRandom)> {
    anyhow::ensure!(
        (case.rows, case.cols, case.dtype, case.device) == (3, 2, DType::F32, DeviceKind::Cpu),
        "{} is a 3x2 float32 weight on the CPU, got {}",
        case.op,
        case.label()
    );
    Ok((SeedModel::new(Example::WeightNorm)?, PyRandom::new(CASE_SEED)))
}

/// `seed_loop_step`: one step of the seed document's weight-norm loop with norm.
pub(crate) fn body_seed_loop_step(case: &Case) -> Result<Body> {
    let (mut model, mut random) = seed_loop_model(case)?;
    Ok(Body::new(Device::Cpu, move || {
        let x =
            Tensor::f_randn([10, 2], (Kind::Float, Device::Cpu))?.f_mul_scalar(random.random())?.f_mul_scalar(10.0)?;
        model.train_step(&x)
    }))
}

/// `seed_loop_step_cpp`: the same step in C++ straight against libtorch ([`SeedStepCpp`]).
pub(crate) fn body_seed_loop_step_cpp(case: &Case) -> Result<Body> {
    let (model, mut random) = seed_loop_model(case)?;
    let bias = model.layer.layer().bs.as_ref().context("Linear(2, 3) has a bias")?;
    let mut cpp = SeedStepCpp::new(model.layer.weight_v(), model.layer.weight_g(), bias, model.adam.config().lr)?;
    Ok(Body::new(Device::Cpu, move || cpp.step(random.random())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::case::Shape;
    use crate::report::ops::Op;
    use crate::report::sampling::{time_alone, Sampling};

    #[test]
    fn clearing_a_leaf_clears_the_handle_that_backward_went_through() {
        // `weight_norm_leaves` draws `v` from the global generator: under the lock, so the draw
        // never lands inside another test's seeded run.
        let _generator = norm_tch::backend::lock_global_generator();
        // The backward body clears `v` while it differentiates through `v.shallow_clone()`.
        let case = Case::cpu_f32(Op::WeightNormForwardBackward, Shape::square(4));
        let (mut v, g) = weight_norm_leaves(&case, true).unwrap();
        let handle = v.shallow_clone();
        compute_weight::<TchBackend>(&handle, &g, WeightNormDim::new(Some(0))).unwrap().sum(Kind::Float).backward();
        assert!(TchBackend::grad(&v).is_some());
        TchBackend::clear_grad(&mut v).unwrap();
        assert!(TchBackend::grad(&handle).is_none());
    }

    #[test]
    fn every_op_times_the_requested_sample_count() {
        let _generator = norm_tch::backend::lock_global_generator();
        for op in Op::all() {
            let shape = if op.is_seed_loop() { Shape { rows: 3, cols: 2 } } else { Shape { rows: 4, cols: 6 } };
            let shape = match op.row().shapes {
                crate::report::ops::OpShapes::Model(rows, cols) => Shape { rows, cols },
                _ => shape,
            };
            let case = Case { n_power_iterations: op.has_power_iterations().then_some(2), ..Case::cpu_f32(op, shape) };
            let timed = time_alone(open(&case).unwrap(), &Sampling::fixed(1, 3)).unwrap();
            assert_eq!((timed.warmup, timed.iterations_per_sample, timed.nanos.len()), (1, 1, 3), "{case:?}");
        }
    }

    #[test]
    fn weight_norm_forward_out_runs_in_the_fused_dtypes_only() {
        let _generator = norm_tch::backend::lock_global_generator();
        for dtype in [DType::F64, DType::Bf16] {
            let case = Case { dtype, ..Case::cpu_f32(Op::WeightNormForwardOut, Shape { rows: 5, cols: 7 }) };
            assert_eq!(time_alone(open(&case).unwrap(), &Sampling::fixed(1, 2)).unwrap().nanos.len(), 2, "{dtype}");
        }
        // Half has no fused kernel: weight_norm_out refuses it with a message.
        let case = Case { dtype: DType::F16, ..Case::cpu_f32(Op::WeightNormForwardOut, Shape::square(4)) };
        let error = time_alone(open(&case).unwrap(), &Sampling::fixed(1, 2)).unwrap_err();
        assert!(format!("{error:#}").contains("Half"), "{error:#}");
    }

    #[test]
    fn other_dtypes_run_or_fail_with_a_message() {
        let _generator = norm_tch::backend::lock_global_generator();
        let case = Case {
            dtype: DType::F64,
            n_power_iterations: Some(1),
            ..Case::cpu_f32(Op::SpectralNormForwardTrain, Shape::square(4))
        };
        assert_eq!(time_alone(open(&case).unwrap(), &Sampling::fixed(0, 1)).unwrap().nanos.len(), 1);
        let bad = Case { n_power_iterations: None, ..case };
        assert!(format!("{:#}", open(&bad).err().unwrap()).contains("n_power_iterations"));
    }
}
