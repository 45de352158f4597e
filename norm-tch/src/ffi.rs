//! Bindings to `csrc/aten_ops.cpp`: ATen calls whose full argument lists tch's
//! generated API does not expose (`alpha`, `value`, assigning `.grad`).

use norm_core::{Error, Result};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn norm_last_error() -> *const c_char;
    fn norm_add_alpha(out: *mut *mut C_tensor, t: *const C_tensor, other: *const C_tensor, alpha: f64) -> c_int;
    fn norm_linalg_vector_norm(out: *mut *mut C_tensor, t: *const C_tensor, ord: f64, dims: *const i64, ndims: c_int, keepdim: c_int) -> c_int;
    fn norm_clone_contiguous(out: *mut *mut C_tensor, t: *const C_tensor) -> c_int;
    fn norm_addcmul_(t: *mut C_tensor, t1: *const C_tensor, t2: *const C_tensor, value: f64) -> c_int;
    fn norm_addcdiv_(t: *mut C_tensor, t1: *const C_tensor, t2: *const C_tensor, value: f64) -> c_int;
    fn norm_adam_update(
        param: *mut C_tensor,
        grad: *const C_tensor,
        exp_avg: *mut C_tensor,
        exp_avg_sq: *mut C_tensor,
        max_exp_avg_sq: *mut C_tensor,
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        decoupled_weight_decay: c_int,
        maximize: c_int,
        step: f64,
    ) -> c_int;
    fn norm_set_grad(t: *const C_tensor, grad: *const C_tensor) -> c_int;
    fn norm_clear_grad(t: *const C_tensor) -> c_int;
    fn norm_backward_with_grad(t: *const C_tensor, gradient: *const C_tensor) -> c_int;
    fn norm_cpu_capability() -> *const c_char;
}

/// ATen's CPU kernel capability (`torch.backends.cpu.get_cpu_capability()`).
pub fn cpu_capability() -> String {
    // SAFETY: returns a NUL-terminated thread-local buffer, copied at once.
    unsafe { CStr::from_ptr(norm_cpu_capability()) }.to_string_lossy().into_owned()
}

fn check(op: &'static str, status: c_int) -> Result<()> {
    if status == 0 {
        return Ok(());
    }
    // SAFETY: norm_last_error returns a NUL-terminated thread-local string that lives
    // until the next failing call on this thread; it is copied at once.
    let message = unsafe { CStr::from_ptr(norm_last_error()) }.to_string_lossy().into_owned();
    Err(Error::Backend { op, message })
}

/// `torch.add(t, other, alpha=alpha)`.
pub fn add_alpha(t: &Tensor, other: &Tensor, alpha: f64) -> Result<Tensor> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: both handles are live tch tensors; on success `out` is a new at::Tensor*
    // owned by the returned Tensor (freed by tch's Drop).
    check("add(alpha)", unsafe { norm_add_alpha(&mut out, t.as_ptr(), other.as_ptr(), alpha) })?;
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `torch.linalg.vector_norm(t, ord, dims, keepdim)`.
pub fn linalg_vector_norm(t: &Tensor, ord: f64, dims: &[i64], keepdim: bool) -> Result<Tensor> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: a live handle and a dims slice valid for the call; `out` is owned by the result.
    check("linalg_vector_norm", unsafe { norm_linalg_vector_norm(&mut out, t.as_ptr(), ord, dims.as_ptr(), dims.len() as c_int, keepdim as c_int) })?;
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `t.clone(memory_format=torch.contiguous_format)`.
pub fn clone_contiguous(t: &Tensor) -> Result<Tensor> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: a live handle; `out` is owned by the result.
    check("clone", unsafe { norm_clone_contiguous(&mut out, t.as_ptr()) })?;
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `t.addcmul_(t1, t2, value=value)`.
pub fn addcmul_(t: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) -> Result<()> {
    // SAFETY: live handles; the op mutates `t`'s storage in place.
    check("addcmul_", unsafe { norm_addcmul_(t.as_mut_ptr(), t1.as_ptr(), t2.as_ptr(), value) })
}

/// `t.addcdiv_(t1, t2, value=value)`.
pub fn addcdiv_(t: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) -> Result<()> {
    // SAFETY: live handles; the op mutates `t`'s storage in place.
    check("addcdiv_", unsafe { norm_addcdiv_(t.as_mut_ptr(), t1.as_ptr(), t2.as_ptr(), value) })
}

/// One fused Adam parameter update: the ATen calls of `_single_tensor_adam`'s loop body.
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    config: &norm_core::optim::AdamConfig,
    step: f32,
    param: &mut Tensor,
    grad: &Tensor,
    exp_avg: &mut Tensor,
    exp_avg_sq: &mut Tensor,
    max_exp_avg_sq: Option<&mut Tensor>,
) -> Result<()> {
    let max_ptr = max_exp_avg_sq.map_or(std::ptr::null_mut(), |t| t.as_mut_ptr());
    let (beta1, beta2) = config.betas;
    // SAFETY: live handles (the optional one null when absent); the call updates param and
    // the state tensors in place.
    check("adam_update", unsafe {
        norm_adam_update(
            param.as_mut_ptr(),
            grad.as_ptr(),
            exp_avg.as_mut_ptr(),
            exp_avg_sq.as_mut_ptr(),
            max_ptr,
            config.lr,
            beta1,
            beta2,
            config.eps,
            config.weight_decay,
            config.decoupled_weight_decay as c_int,
            config.maximize as c_int,
            step as f64,
        )
    })
}

/// `t.grad = grad`.
pub fn set_grad(t: &Tensor, grad: &Tensor) -> Result<()> {
    // SAFETY: live handles; only the autograd metadata of `t` changes.
    check("set_grad", unsafe { norm_set_grad(t.as_ptr(), grad.as_ptr()) })
}

/// `t.backward(gradient)`.
pub fn backward_with_grad(t: &Tensor, gradient: &Tensor) -> Result<()> {
    // SAFETY: live handles; runs the autograd engine from `t`.
    check("backward", unsafe { norm_backward_with_grad(t.as_ptr(), gradient.as_ptr()) })
}

/// `t.grad = None`.
pub fn clear_grad(t: &Tensor) -> Result<()> {
    // SAFETY: a live handle; only the autograd metadata of `t` changes.
    check("clear_grad", unsafe { norm_clear_grad(t.as_ptr()) })
}
