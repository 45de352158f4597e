//! norm-core's [`Backend`] and [`AutodiffBackend`] on `tch::Tensor`, CPU and CUDA.
//!
//! Every primitive forwards to the ATen operator PyTorch's Python code calls, through
//! tch's fallible `f_*` functions (or its own C++ calls, `csrc/`, where tch drops an argument), so the
//! algorithms of norm-core produce PyTorch's bits. libtorch errors become
//! [`Error::Backend`] with the op's name and libtorch's message.

use crate::ffi::{self, ScalarOp};
use norm_core::{AutodiffBackend, Backend, Error, Result};
use tch::{Device, Kind, TchError, Tensor};

/// The libtorch backend (devices are `tch::Device`: `Cpu`, `Cuda(i)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TchBackend;

/// An out-of-place scalar op through the shim (ATen's error returned, never a tch panic).
fn scalar_out(t: &Tensor, op: ScalarOp, value: f64) -> Result<Tensor> {
    ffi::scalar_op(t, op, value)?
        .ok_or_else(|| Error::Backend { op: "scalar op", message: format!("{op:?} returned no tensor") })
}

/// Maps a libtorch error into norm's error type, naming the op.
pub(crate) fn tch_err(op: &'static str) -> impl FnOnce(TchError) -> Error {
    move |e| Error::Backend { op, message: e.to_string() }
}

/// The CUDA device `ordinal` if libtorch sees one, else `None` (tests use this to skip).
pub fn cuda_device(ordinal: usize) -> Option<Device> {
    (tch::Cuda::is_available() && ordinal < tch::Cuda::device_count() as usize).then_some(Device::Cuda(ordinal))
}

/// The devices a run can use here: the CPU, then CUDA device 0 when libtorch sees one.
pub fn available_devices() -> Vec<Device> {
    std::iter::once(Device::Cpu).chain(cuda_device(0)).collect()
}

/// Waits for queued work on `device` (a no-op on CPU); timing code calls it before reading clocks.
pub fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// `t.backward(gradient)`: backpropagates `gradient` (the gradient of some loss with
/// respect to `t`, same shape) into the leaves. tch's `backward()` only takes scalar losses.
pub fn backward_with_grad(t: &Tensor, gradient: &Tensor) -> Result<()> {
    if t.size() != gradient.size() {
        return Err(Error::ShapeMismatch {
            what: "backward gradient".into(),
            expected: TchBackend::shape(t),
            got: TchBackend::shape(gradient),
        });
    }
    ffi::backward_with_grad(t, gradient)
}

static GLOBAL_GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Serializes users of libtorch's global CPU generator within this process.
///
/// A seeded run (`manual_seed`, then layer construction and `randn` draws) reproduces
/// PyTorch only if nothing else draws in between; hold this guard for the whole
/// sequence when several threads (e.g. tests) may seed concurrently.
pub fn lock_global_generator() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL_GENERATOR.lock().unwrap_or_else(|e| e.into_inner())
}

/// `torch.nn.functional.leaky_relu(xs, negative_slope)` (`aten::leaky_relu`); tch's
/// `Tensor::leaky_relu` only has PyTorch's default slope 0.01.
pub fn leaky_relu(xs: &Tensor, negative_slope: f64) -> Result<Tensor> {
    ffi::leaky_relu(xs, negative_slope)
}

/// ATen's CPU kernel capability (`"AVX2"`, `"AVX512"`, ...), as
/// `torch.backends.cpu.get_cpu_capability()`: bits of CPU kernels depend on it.
pub fn cpu_capability() -> String {
    ffi::cpu_capability()
}

/// Pins libtorch's intra-op thread pool (`torch.set_num_threads(n)`); parity runs use 1.
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid("threads", n, "at least 1"));
    }
    tch::set_num_threads(n as i32);
    Ok(())
}

impl Backend for TchBackend {
    type Device = Device;
    type Tensor = Tensor;

    fn name() -> &'static str {
        "tch"
    }
    fn shallow_clone(t: &Tensor) -> Tensor {
        t.shallow_clone()
    }
    fn device(t: &Tensor) -> Device {
        t.device()
    }
    fn shape(t: &Tensor) -> Vec<usize> {
        t.size().into_iter().map(|d| d as usize).collect()
    }
    fn from_f32(data: &[f32], shape: &[usize], device: &Device) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(Error::invalid(
                "data",
                format!("{} values", data.len()),
                format!("{numel} values for shape {shape:?}"),
            ));
        }
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        Tensor::f_from_slice(data)
            .and_then(|t| t.f_reshape(dims.as_slice()))
            .and_then(|t| t.f_to_device(*device))
            .map_err(tch_err("from_f32"))
    }
    fn to_f32_vec(t: &Tensor) -> Result<Vec<f32>> {
        let flat = t
            .f_to_kind(Kind::Float)
            .and_then(|t| t.f_to_device(Device::Cpu))
            .and_then(|t| t.f_contiguous())
            .and_then(|t| t.f_reshape([-1]))
            .map_err(tch_err("to_f32_vec"))?;
        Vec::<f32>::try_from(&flat).map_err(tch_err("to_f32_vec"))
    }
    fn to_f64_vec(t: &Tensor) -> Result<Vec<f64>> {
        let flat = t
            .f_to_kind(Kind::Double)
            .and_then(|t| t.f_to_device(Device::Cpu))
            .and_then(|t| t.f_contiguous())
            .and_then(|t| t.f_reshape([-1]))
            .map_err(tch_err("to_f64_vec"))?;
        Vec::<f64>::try_from(&flat).map_err(tch_err("to_f64_vec"))
    }
    fn deep_clone(t: &Tensor) -> Result<Tensor> {
        crate::var_store::detached_copy(t)
    }
    fn zeros_like(t: &Tensor) -> Result<Tensor> {
        t.f_zeros_like().map_err(tch_err("zeros_like"))
    }
    fn neg(t: &Tensor) -> Result<Tensor> {
        t.f_neg().map_err(tch_err("neg"))
    }
    fn sqrt(t: &Tensor) -> Result<Tensor> {
        t.f_sqrt().map_err(tch_err("sqrt"))
    }
    fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a.f_mul(b).map_err(tch_err("mul"))
    }
    /// `torch.div`; inside a spectral-norm layer's weight computation, through the layer's
    /// recycled storage ([`crate::weight_recycling`]: same bits and history).
    fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if let Some(result) = crate::weight_recycling::div_in_scope(a, b) {
            return result;
        }
        a.f_div(b).map_err(tch_err("div"))
    }
    fn div_scalar(t: &Tensor, s: f64) -> Result<Tensor> {
        scalar_out(t, ScalarOp::Div, s)
    }
    fn add_scaled(t: &Tensor, other: &Tensor, alpha: f64) -> Result<Tensor> {
        ffi::add_alpha(t, other, alpha)
    }
    fn add_scalar_(t: &mut Tensor, s: f64) -> Result<()> {
        ffi::scalar_op(t, ScalarOp::AddInPlace, s).map(drop)
    }
    fn mul_scalar_(t: &mut Tensor, s: f64) -> Result<()> {
        ffi::scalar_op(t, ScalarOp::MulInPlace, s).map(drop)
    }
    fn lerp_(t: &mut Tensor, end: &Tensor, weight: f64) -> Result<()> {
        t.f_lerp_(end, weight).map(drop).map_err(tch_err("lerp_"))
    }
    fn addcmul_(t: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) -> Result<()> {
        ffi::addcmul_(t, t1, t2, value)
    }
    fn addcdiv_(t: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) -> Result<()> {
        ffi::addcdiv_(t, t1, t2, value)
    }
    fn maximum_(t: &mut Tensor, other: &Tensor) -> Result<()> {
        t.f_maximum_out(t, other).map(drop).map_err(tch_err("maximum(out=)"))
    }
    fn permute(t: &Tensor, dims: &[i64]) -> Result<Tensor> {
        t.f_permute(dims).map_err(tch_err("permute"))
    }
    fn reshape(t: &Tensor, shape: &[i64]) -> Result<Tensor> {
        t.f_reshape(shape).map_err(tch_err("reshape"))
    }
    fn flatten(t: &Tensor, start_dim: i64, end_dim: i64) -> Result<Tensor> {
        t.f_flatten(start_dim, end_dim).map_err(tch_err("flatten"))
    }
    fn t(t: &Tensor) -> Result<Tensor> {
        t.f_tr().map_err(tch_err("t"))
    }
    fn expand_as(t: &Tensor, other: &Tensor) -> Result<Tensor> {
        t.f_expand_as(other).map_err(tch_err("expand_as"))
    }
    fn clone_contiguous(t: &Tensor) -> Result<Tensor> {
        ffi::clone_contiguous(t)
    }
    fn mv(mat: &Tensor, vec: &Tensor) -> Result<Tensor> {
        mat.f_mv(vec).map_err(tch_err("mv"))
    }
    fn dot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a.f_dot(b).map_err(tch_err("dot"))
    }
    fn vdot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a.f_vdot(b).map_err(tch_err("vdot"))
    }
    fn vector_norm(t: &Tensor, ord: f64, dims: &[i64], keepdim: bool) -> Result<Tensor> {
        ffi::linalg_vector_norm(t, ord, dims, keepdim)
    }
    fn clamp_min(t: &Tensor, min: f64) -> Result<Tensor> {
        scalar_out(t, ScalarOp::ClampMin, min)
    }
    fn clamp_min_(t: &mut Tensor, min: f64) -> Result<()> {
        ffi::scalar_op(t, ScalarOp::ClampMinInPlace, min).map(drop)
    }
    fn div_out(a: &Tensor, b: &Tensor, out: &mut Tensor) -> Result<()> {
        a.f_div_out(out, b).map(drop).map_err(tch_err("div(out=)"))
    }
    fn normal(like: &Tensor, shape: &[usize], mean: f64, std: f64) -> Result<Tensor> {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let mut t = like.f_new_empty(dims.as_slice(), (like.kind(), like.device())).map_err(tch_err("new_empty"))?;
        drop(tch::no_grad(|| t.f_normal_(mean, std)).map_err(tch_err("normal_"))?);
        Ok(t)
    }
    fn norm_except_dim(v: &Tensor, pow: i64, dim: i64) -> Result<Tensor> {
        Tensor::f_norm_except_dim(v, pow, dim).map_err(tch_err("norm_except_dim"))
    }
    fn weight_norm(v: &Tensor, g: &Tensor, dim: i64) -> Result<Tensor> {
        Tensor::f_internal_weight_norm(v, g, dim).map_err(tch_err("_weight_norm"))
    }
}

impl AutodiffBackend for TchBackend {
    /// The product itself, given `mv`'s history by ATen's `MvBackward0`
    /// (`csrc/mv_reused.cpp`): one matrix-vector product fewer, the same graph and bits.
    fn mv_reusing(mat: &Tensor, vec: &Tensor, product: Tensor) -> Result<Tensor> {
        ffi::mv_reused(mat, vec, product)
    }
    fn grad(t: &Tensor) -> Option<Tensor> {
        let grad = t.grad();
        grad.defined().then_some(grad)
    }
    fn set_grad(t: &Tensor, grad: Tensor) -> Result<()> {
        if t.size() != grad.size() {
            return Err(Error::ShapeMismatch {
                what: "grad".into(),
                expected: Self::shape(t),
                got: Self::shape(&grad),
            });
        }
        ffi::set_grad(t, &grad)
    }
    fn clear_grad(t: &mut Tensor) -> Result<()> {
        ffi::clear_grad(t)
    }
    fn no_grad<R>(f: impl FnOnce() -> R) -> R {
        tch::no_grad(f)
    }
    fn device_type(t: &Tensor) -> String {
        match t.device() {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
            Device::Mps => "mps",
            Device::Vulkan => "vulkan",
        }
        .to_string()
    }
    fn dtype_name(t: &Tensor) -> String {
        torch_dtype_name(t.kind()).to_string()
    }
    fn is_floating_point(t: &Tensor) -> bool {
        t.is_floating_point()
    }
    /// ATen's `_foreach_*` ops in `_multi_tensor_adam`'s order, in one C++ call
    /// (`csrc/adam_foreach.cpp`; on CPU the same bits as the default composition,
    /// `tests/adam_paths.rs` checks it).
    fn adam_foreach_update(
        config: &norm_core::optim::AdamConfig,
        group: norm_core::optim::AdamGroup<Self>,
    ) -> Result<()> {
        ffi::adam_group(ffi::AdamGroupPath::ForEach, config, group)
    }
    /// `torch._fused_adam_` / `torch._fused_adamw_` (`csrc/adam_fused.cpp`).
    fn adam_fused_update(
        config: &norm_core::optim::AdamConfig,
        group: norm_core::optim::AdamGroup<Self>,
    ) -> Result<()> {
        ffi::adam_group(ffi::AdamGroupPath::Fused, config, group)
    }
    /// The same ATen calls as the default composition, made from C++ in one call
    /// (bit-identical; `tests/adam_fused.rs` checks it against the composition).
    fn adam_update(
        config: &norm_core::optim::AdamConfig,
        step: f32,
        param: &mut Tensor,
        grad: Tensor,
        exp_avg: &mut Tensor,
        exp_avg_sq: &mut Tensor,
        max_exp_avg_sq: Option<&mut Tensor>,
    ) -> Result<()> {
        ffi::adam_update(config, step, param, &grad, exp_avg, exp_avg_sq, max_exp_avg_sq)
    }
    /// One C++ call for the whole step; small parameters are packed into shared ATen calls
    /// (bit-identical, see `csrc/adam.cpp`; `tests/adam_fused.rs` checks it).
    fn adam_update_many(
        config: &norm_core::optim::AdamConfig,
        updates: Vec<norm_core::optim::AdamUpdate<'_, Self>>,
    ) -> Result<()> {
        adam_update_packed(config, updates).map(drop)
    }
}

/// `str(dtype)` in Python for a tch [`Kind`] (`torch.float32`, ...).
pub fn torch_dtype_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Uint8 => "torch.uint8",
        Kind::Int8 => "torch.int8",
        Kind::Int16 => "torch.int16",
        Kind::Int => "torch.int32",
        Kind::Int64 => "torch.int64",
        Kind::Half => "torch.float16",
        Kind::Float => "torch.float32",
        Kind::Double => "torch.float64",
        Kind::ComplexHalf => "torch.complex32",
        Kind::ComplexFloat => "torch.complex64",
        Kind::ComplexDouble => "torch.complex128",
        Kind::Bool => "torch.bool",
        Kind::BFloat16 => "torch.bfloat16",
        _ => "torch.<other dtype>",
    }
}

/// What [`TchBackend`]'s `adam_update_many` runs: the updates of one Adam step in one C++
/// call. A CPU parameter under 64 bytes, whose every element ATen runs through its scalar
/// loop, is updated with those scalar lambdas' own arithmetic ([`AdamScalarLambdas`], one
/// shared ATen `sqrt_`); where that path declines, parameters under 64 bytes that share dtype, step
/// and AMSGrad-ness are packed into one run of the ATen calls (the same bits; see
/// `csrc/adam.cpp`). Returns how many packed groups (of two or more parameters) there were.
pub fn adam_update_packed(
    config: &norm_core::optim::AdamConfig,
    updates: Vec<norm_core::optim::AdamUpdate<'_, TchBackend>>,
) -> Result<usize> {
    ffi::adam_update_many(config, updates)
}

/// The state of Adam's scalar-lambda path (`csrc/adam_scalar_lambdas.h`): a CPU float32 or
/// float64 parameter under 64 bytes, without AMSGrad, is updated element by element with
/// the arithmetic of ATen's scalar lambdas (`lerp_`, `mul_`, `addcmul_`, `div`, `add_`,
/// `addcdiv_`), which ATen itself runs for tensors that small, and one ATen `sqrt_` for all
/// of them (ATen's CPU sqrt is MKL's, not the correctly rounded one): the same bits as the
/// seven ATen calls per parameter, at a fraction of their cost. Whether each lambda with a
/// multiply-add was compiled into one fused multiply-add is not guessed: the first use
/// probes ATen's own ops on values of every magnitude and keeps the matching variant, per
/// dtype; if an op matches none, the path stays off for that dtype. Non-finite values make
/// it decline for that step (ATen's calls then run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdamScalarLambdas {
    /// The process-wide switch ([`set_adam_scalar_lambdas`]); on by default.
    pub enabled: bool,
    /// float32's probe: `None` when it failed, else which lambdas are fused (bit 0 `lerp_`
    /// with a weight under 0.5, bit 1 with a larger one, bit 2 `addcmul_`, bit 3 `add`
    /// with `alpha`).
    pub float32: Option<u8>,
    /// float64's probe, the same way.
    pub float64: Option<u8>,
    /// Parameters updated through the path so far in this process.
    pub updates: u64,
}

/// The scalar-lambda path's state, running its probes if they have not run yet.
pub fn adam_scalar_lambdas() -> Result<AdamScalarLambdas> {
    let (enabled, float32, float64, updates) = ffi::adam_scalar_lambdas(None)?;
    Ok(AdamScalarLambdas { enabled, float32, float64, updates })
}

/// Turns the scalar-lambda path on or off for the whole process (for comparisons; either
/// way the bits are the same).
pub fn set_adam_scalar_lambdas(on: bool) -> Result<()> {
    ffi::adam_scalar_lambdas(Some(on)).map(drop)
}

/// The state of the tiny-kernel replays of the fused weight-normed Linear
/// (`csrc/tiny_kernels.h`): for a float32/float64 layer on the CPU whose `weight_v` rows
/// (dim 0) are under 32 bytes and whose output has under 32 bytes of columns, the three ATen
/// kernels of its step that are not a matrix product (`_weight_norm_interface`, its backward,
/// and the engine's `sum_to` of the bias gradient) are replayed in scalar code with the
/// kernels' own arithmetic: the same bits without the dispatcher, TensorIterator and
/// allocation costs. The first use probes ATen's own ops on values of every magnitude and
/// every tiny shape; a kernel whose replay does not match stays off for that dtype.
/// Non-finite values decline for that call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TinyKernels {
    /// The process-wide switch ([`set_tiny_kernels`]); on by default.
    pub enabled: bool,
    /// float32's verdict.
    pub float32: TinyVerdict,
    /// float64's verdict.
    pub float64: TinyVerdict,
    /// Kernel calls replayed so far in this process.
    pub replays: u64,
}

/// Which replays matched ATen for one dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TinyVerdict {
    /// `_weight_norm_interface(v, g, 0)`.
    pub weight_norm: bool,
    /// `_weight_norm_interface_backward(grad_w, v, g, norms, 0)`.
    pub weight_norm_backward: bool,
    /// `sum_to(grad, [out_features])`.
    pub bias_sum: bool,
    /// How ATen compiled the backward's `a * grad_w - b * v`: 0 two roundings, 1 a fused
    /// multiply-add on the first product, 2 on the second.
    pub contraction: u8,
}

impl TinyVerdict {
    fn unpack(bits: i32) -> Self {
        TinyVerdict {
            weight_norm: bits & 1 != 0,
            weight_norm_backward: bits & 2 != 0,
            bias_sum: bits & 4 != 0,
            contraction: ((bits >> 3) & 3) as u8,
        }
    }
}

/// The tiny-kernel replays' state, running their probes if they have not run yet.
pub fn tiny_kernels() -> Result<TinyKernels> {
    let (enabled, float32, float64, replays) = ffi::tiny_kernels(None)?;
    Ok(TinyKernels { enabled, float32: TinyVerdict::unpack(float32), float64: TinyVerdict::unpack(float64), replays })
}

/// Turns the tiny-kernel replays on or off for the whole process (for comparisons; either
/// way the bits are the same).
pub fn set_tiny_kernels(on: bool) -> Result<()> {
    ffi::tiny_kernels(Some(on)).map(drop)
}
