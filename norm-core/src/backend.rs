//! Backend traits: the tensor operations norm's algorithms are written over.
//!
//! A backend names its device and tensor types as associated types and implements the
//! primitive operations below. Each primitive is specified as the ATen operator that
//! PyTorch's Python code calls, with the same argument conventions, so a backend that
//! forwards to ATen (norm-tch) reproduces PyTorch bit for bit, while a backend that
//! implements the formula itself (the [`crate::reference`] backend) only agrees up to
//! rounding.
//!
//! Operations with a trailing underscore work in place, like their PyTorch namesakes,
//! and take `&mut` to the tensor they modify. Tensors are handles: a
//! [`Backend::shallow_clone`] shares storage, so an in-place update through one handle
//! is seen through every other (as with `torch.Tensor` and `tch::Tensor`).
//!
//! Some operations have a default composition from other primitives
//! (e.g. [`Backend::weight_norm`] as `v * (g / norm_except_dim(v, 2, dim))`); a backend
//! overrides them where it has a fused kernel, as PyTorch does.

use crate::error::Result;
use std::fmt::Debug;

/// The primitive tensor operations of a backend.
///
/// Generic code takes `B: Backend` at its use sites and calls `B::op(..)`.
pub trait Backend: Sized + Clone + Debug + 'static {
    /// Where tensors live (CPU, a CUDA ordinal, ...).
    type Device: Clone + Debug + PartialEq;
    /// A tensor handle. Not `Clone`: use [`Backend::shallow_clone`] to share storage.
    type Tensor: Debug;

    /// A short name for reports and test output (`"tch"`, `"reference"`).
    fn name() -> &'static str;

    /// A new handle to the same storage (`tch::Tensor::shallow_clone`).
    fn shallow_clone(t: &Self::Tensor) -> Self::Tensor;
    /// The device `t` lives on.
    fn device(t: &Self::Tensor) -> Self::Device;
    /// The shape of `t` (an empty vector for a 0-dim tensor).
    fn shape(t: &Self::Tensor) -> Vec<usize>;
    /// A new float32 tensor with the given row-major data.
    fn from_f32(data: &[f32], shape: &[usize], device: &Self::Device) -> Result<Self::Tensor>;
    /// The tensor's values as float32, row-major (copied to the host if needed).
    fn to_f32_vec(t: &Self::Tensor) -> Result<Vec<f32>>;
    /// The tensor's values as float64, row-major, exactly for every dtype up to float64
    /// (a float64 value beyond float32's range or below its smallest subnormal stays what it
    /// is). The default widens [`Backend::to_f32_vec`], exact for a float32-only backend.
    fn to_f64_vec(t: &Self::Tensor) -> Result<Vec<f64>> {
        Ok(Self::to_f32_vec(t)?.into_iter().map(f64::from).collect())
    }
    /// A deep copy (`Tensor.clone()`).
    fn deep_clone(t: &Self::Tensor) -> Result<Self::Tensor>;

    /// `torch.zeros_like(t)`.
    fn zeros_like(t: &Self::Tensor) -> Result<Self::Tensor>;
    /// `-t` (`torch.neg`).
    fn neg(t: &Self::Tensor) -> Result<Self::Tensor>;
    /// `torch.sqrt(t)`.
    fn sqrt(t: &Self::Tensor) -> Result<Self::Tensor>;
    /// `a * b` with broadcasting (`torch.mul`).
    fn mul(a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// `a / b` with broadcasting (`torch.div`).
    fn div(a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// `t / s` for a Python float `s` (`torch.div(t, s)`; `s` is a wrapped number).
    fn div_scalar(t: &Self::Tensor, s: f64) -> Result<Self::Tensor>;
    /// `torch.add(t, other, alpha=alpha)`: `t + alpha * other`.
    fn add_scaled(t: &Self::Tensor, other: &Self::Tensor, alpha: f64) -> Result<Self::Tensor>;

    /// `t.add_(s)` for a Python float `s`.
    fn add_scalar_(t: &mut Self::Tensor, s: f64) -> Result<()>;
    /// `t.mul_(s)` for a Python float `s`.
    fn mul_scalar_(t: &mut Self::Tensor, s: f64) -> Result<()>;
    /// `t.lerp_(end, weight)`: `t + weight * (end - t)`.
    fn lerp_(t: &mut Self::Tensor, end: &Self::Tensor, weight: f64) -> Result<()>;
    /// `t.addcmul_(t1, t2, value=value)`: `t + value * t1 * t2`.
    fn addcmul_(t: &mut Self::Tensor, t1: &Self::Tensor, t2: &Self::Tensor, value: f64) -> Result<()>;
    /// `t.addcdiv_(t1, t2, value=value)`: `t + value * t1 / t2`.
    fn addcdiv_(t: &mut Self::Tensor, t1: &Self::Tensor, t2: &Self::Tensor, value: f64) -> Result<()>;
    /// `torch.maximum(t, other, out=t)`.
    fn maximum_(t: &mut Self::Tensor, other: &Self::Tensor) -> Result<()>;

    /// `t.permute(dims)`.
    fn permute(t: &Self::Tensor, dims: &[i64]) -> Result<Self::Tensor>;
    /// `t.reshape(shape)` (`-1` infers one size).
    fn reshape(t: &Self::Tensor, shape: &[i64]) -> Result<Self::Tensor>;
    /// `t.flatten(start_dim, end_dim)`.
    fn flatten(t: &Self::Tensor, start_dim: i64, end_dim: i64) -> Result<Self::Tensor>;
    /// `t.t()`: the transpose of a matrix (a view).
    fn t(t: &Self::Tensor) -> Result<Self::Tensor>;
    /// `t.expand_as(other)`.
    fn expand_as(t: &Self::Tensor, other: &Self::Tensor) -> Result<Self::Tensor>;
    /// `t.clone(memory_format=torch.contiguous_format)`.
    fn clone_contiguous(t: &Self::Tensor) -> Result<Self::Tensor>;

    /// `torch.mv(mat, vec)`.
    fn mv(mat: &Self::Tensor, vec: &Self::Tensor) -> Result<Self::Tensor>;
    /// `torch.dot(a, b)` (a 0-dim tensor).
    fn dot(a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// `torch.vdot(a, b)`: `dot(conj(a), b)` (a 0-dim tensor).
    fn vdot(a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// `torch.linalg.vector_norm(t, ord, dims, keepdim)` (what `t.norm(p, dim, keepdim)` calls).
    fn vector_norm(t: &Self::Tensor, ord: f64, dims: &[i64], keepdim: bool) -> Result<Self::Tensor>;
    /// `t.clamp_min(min)`.
    fn clamp_min(t: &Self::Tensor, min: f64) -> Result<Self::Tensor>;
    /// `t.clamp_min_(min)`.
    fn clamp_min_(t: &mut Self::Tensor, min: f64) -> Result<()>;
    /// `torch.div(a, b, out=out)`.
    fn div_out(a: &Self::Tensor, b: &Self::Tensor, out: &mut Self::Tensor) -> Result<()>;

    /// `like.new_empty(shape).normal_(mean, std)`: draws from the backend's global
    /// generator on `like`'s device (PyTorch's `torch.manual_seed` stream for norm-tch).
    fn normal(like: &Self::Tensor, shape: &[usize], mean: f64, std: f64) -> Result<Self::Tensor>;

    /// `torch.norm_except_dim(v, pow, dim)`: the `pow`-norm of `v` over every dimension
    /// but `dim`, shaped to broadcast against `v`; `dim == -1` means the norm of the
    /// whole tensor (a 0-dim result), not the last axis.
    fn norm_except_dim(v: &Self::Tensor, pow: i64, dim: i64) -> Result<Self::Tensor>;

    /// `torch._weight_norm(v, g, dim)`: `v * (g / norm_except_dim(v, 2, dim))`.
    ///
    /// The default is PyTorch's composite path; ATen uses a fused kernel when
    /// `dim == 0` or `dim == v.dim() - 1`, and backends that forward to ATen override this.
    fn weight_norm(v: &Self::Tensor, g: &Self::Tensor, dim: i64) -> Result<Self::Tensor> {
        let norm = Self::norm_except_dim(v, 2, dim)?;
        Self::mul(v, &Self::div(g, &norm)?)
    }
}

/// Gradient access for backends with automatic differentiation.
///
/// The optimizers need only what PyTorch's optimizers use: read a parameter's `.grad`,
/// set it to `None`, and run updates outside the autograd graph.
pub trait AutodiffBackend: Backend {
    /// `torch.mv(mat, vec)` when its value is already known: `product` was computed from
    /// the same `mat` and the same `vec` values (under no_grad, e.g. by the last power
    /// iteration of spectral norm), so a deterministic kernel would give it again bit for
    /// bit. The result must carry the history `mv` records, so every gradient is `mv`'s.
    ///
    /// The default composition ignores `product` and calls [`Backend::mv`]; a backend that
    /// can attach `mv`'s backward to a tensor it already has (norm-tch: ATen's own
    /// `MvBackward0`) overrides this and skips the second product.
    fn mv_reusing(mat: &Self::Tensor, vec: &Self::Tensor, product: Self::Tensor) -> Result<Self::Tensor> {
        drop(product);
        Self::mv(mat, vec)
    }

    /// The parameter's accumulated gradient (`p.grad`), `None` if it has none.
    fn grad(t: &Self::Tensor) -> Option<Self::Tensor>;
    /// `p.grad = grad`: replaces the accumulated gradient (shapes must match).
    fn set_grad(t: &Self::Tensor, grad: Self::Tensor) -> Result<()>;
    /// `p.grad = None` (what `Optimizer.zero_grad()` does by default).
    fn clear_grad(t: &mut Self::Tensor) -> Result<()>;
    /// Runs `f` with gradient recording disabled (`with torch.no_grad():`).
    fn no_grad<R>(f: impl FnOnce() -> R) -> R;

    /// The tensor's device type as PyTorch spells it (`t.device.type`: `"cpu"`, `"cuda"`, ...);
    /// the optimizers choose their path from it as PyTorch does.
    fn device_type(t: &Self::Tensor) -> String;
    /// The tensor's dtype as Python prints it (`str(t.dtype)`: `"torch.float32"`, ...).
    fn dtype_name(t: &Self::Tensor) -> String;
    /// `torch.is_floating_point(t)`.
    fn is_floating_point(t: &Self::Tensor) -> bool;

    /// One parameter's Adam update, `_single_tensor_adam`'s loop body, with `step` the
    /// already incremented float32 counter. The default is
    /// [`crate::optim::single_tensor_update`], composed from the primitives above; a
    /// backend may run the very same ops in one call to save per-op overhead.
    #[allow(clippy::too_many_arguments)]
    fn adam_update(
        config: &crate::optim::AdamConfig,
        step: f32,
        param: &mut Self::Tensor,
        grad: Self::Tensor,
        exp_avg: &mut Self::Tensor,
        exp_avg_sq: &mut Self::Tensor,
        max_exp_avg_sq: Option<&mut Self::Tensor>,
    ) -> Result<()> {
        crate::optim::single_tensor_update::<Self>(config, step, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)
    }

    /// The updates of one `optimizer.step()`, in parameter order. The default runs
    /// [`AutodiffBackend::adam_update`] for each; a backend may batch them where that
    /// provably gives the same bits (updates of distinct parameters are independent).
    fn adam_update_many(
        config: &crate::optim::AdamConfig,
        updates: Vec<crate::optim::AdamUpdate<'_, Self>>,
    ) -> Result<()> {
        for u in updates {
            Self::adam_update(config, u.step, u.param, u.grad, u.exp_avg, u.exp_avg_sq, u.max_exp_avg_sq)?;
        }
        Ok(())
    }

    /// Adam's foreach path (`_multi_tensor_adam`) for one (device, dtype) group, after the
    /// step increment. The default is [`crate::optim::multi_tensor_update`], the same op
    /// order composed from the single-tensor primitives (ATen's foreach fallback); a backend
    /// with ATen's `_foreach_*` ops calls them instead.
    fn adam_foreach_update(config: &crate::optim::AdamConfig, group: crate::optim::AdamGroup<Self>) -> Result<()> {
        crate::optim::multi_tensor_update::<Self>(config, group)
    }

    /// Adam's fused path (`_fused_adam`: `torch._fused_adam_`, or `torch._fused_adamw_` with
    /// decoupled weight decay) for one (device, dtype) group, after the step increment. A
    /// fused kernel is the backend's own; the default refuses.
    fn adam_fused_update(config: &crate::optim::AdamConfig, group: crate::optim::AdamGroup<Self>) -> Result<()> {
        let _ = (config, group);
        Err(crate::error::Error::Unsupported {
            what: "`fused=True`".into(),
            reason: format!(
                "the {} backend has no fused Adam kernel; use foreach or the single-tensor path",
                Self::name()
            ),
        })
    }
}
