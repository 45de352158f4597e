//! Bindings to `csrc/aten_ops.cpp`: ATen calls whose full argument lists tch's
//! generated API does not expose (`alpha`, `value`, assigning `.grad`).

use norm_core::{CheckpointErrorKind, Error, Result};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::path::Path;
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn norm_last_error() -> *const c_char;
    fn norm_add_alpha(out: *mut *mut C_tensor, t: *const C_tensor, other: *const C_tensor, alpha: f64) -> c_int;
    fn norm_linalg_vector_norm(
        out: *mut *mut C_tensor,
        t: *const C_tensor,
        ord: f64,
        dims: *const i64,
        ndims: c_int,
        keepdim: c_int,
    ) -> c_int;
    fn norm_leaky_relu(out: *mut *mut C_tensor, t: *const C_tensor, negative_slope: f64) -> c_int;
    fn norm_clone_contiguous(out: *mut *mut C_tensor, t: *const C_tensor) -> c_int;
    fn norm_scalar_op(out: *mut *mut C_tensor, t: *mut C_tensor, op: c_int, value: f64) -> c_int;
    fn norm_addcmul_(t: *mut C_tensor, t1: *const C_tensor, t2: *const C_tensor, value: f64) -> c_int;
    fn norm_addcdiv_(t: *mut C_tensor, t1: *const C_tensor, t2: *const C_tensor, value: f64) -> c_int;
    fn norm_adam_update(
        param: *mut C_tensor,
        grad: *const C_tensor,
        exp_avg: *mut C_tensor,
        exp_avg_sq: *mut C_tensor,
        max_exp_avg_sq: *mut C_tensor,
        hyper: *const AdamHyper,
        step: f64,
    ) -> c_int;
    fn norm_adam_scalar_lambdas(
        set_enabled: c_int,
        enabled: *mut c_int,
        float_state: *mut c_int,
        double_state: *mut c_int,
        updates: *mut u64,
    ) -> c_int;
    fn norm_adam_update_many(
        params: *const *mut C_tensor,
        grads: *const *const C_tensor,
        exp_avgs: *const *mut C_tensor,
        exp_avg_sqs: *const *mut C_tensor,
        max_exp_avg_sqs: *const *mut C_tensor,
        steps: *const f64,
        n: c_int,
        hyper: *const AdamHyper,
        packed_groups: *mut c_int,
    ) -> c_int;
    fn norm_adam_foreach(
        params: *const *mut C_tensor,
        grads: *const *mut C_tensor,
        exp_avgs: *const *mut C_tensor,
        exp_avg_sqs: *const *mut C_tensor,
        max_exp_avg_sqs: *const *mut C_tensor,
        steps: *const f64,
        n: c_int,
        hyper: *const AdamHyper,
    ) -> c_int;
    fn norm_adam_fused(
        params: *const *mut C_tensor,
        grads: *const *mut C_tensor,
        exp_avgs: *const *mut C_tensor,
        exp_avg_sqs: *const *mut C_tensor,
        max_exp_avg_sqs: *const *mut C_tensor,
        steps: *const f64,
        n: c_int,
        hyper: *const AdamHyper,
    ) -> c_int;
    fn norm_set_grad(t: *const C_tensor, grad: *const C_tensor) -> c_int;
    fn norm_clear_grad(t: *const C_tensor) -> c_int;
    fn norm_same_tensor(a: *const C_tensor, b: *const C_tensor) -> c_int;
    fn norm_backward_with_grad(t: *const C_tensor, gradient: *const C_tensor) -> c_int;
    fn norm_cpu_capability() -> *const c_char;
    fn norm_grad_enabled() -> c_int;
    fn norm_weight_norm_out(out: *mut C_tensor, v: *const C_tensor, g: *const C_tensor, dim: i64) -> c_int;
}

/// Whether grad mode is on (`torch.is_grad_enabled()`).
pub fn grad_enabled() -> bool {
    // SAFETY: reads a thread-local flag.
    unsafe { norm_grad_enabled() != 0 }
}

/// ATen's fused `_weight_norm` CPU kernel into `out` (`csrc/weight_norm_out.cpp`); the
/// caller has checked devices, dtypes, shapes and `dim`.
pub fn weight_norm_out(out: &mut Tensor, v: &Tensor, g: &Tensor, dim: i64) -> Result<()> {
    // SAFETY: live handles; the kernel writes `out`'s storage, which the C++ side checks
    // does not overlap `v` or `g`.
    check("weight_norm_out", unsafe { norm_weight_norm_out(out.as_mut_ptr(), v.as_ptr(), g.as_ptr(), dim) })
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
    // SAFETY: on success `out` is a new at::Tensor* that the returned Tensor owns.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `torch.linalg.vector_norm(t, ord, dims, keepdim)`.
pub fn linalg_vector_norm(t: &Tensor, ord: f64, dims: &[i64], keepdim: bool) -> Result<Tensor> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: a live handle and a dims slice valid for the call; `out` is owned by the result.
    check("linalg_vector_norm", unsafe {
        norm_linalg_vector_norm(&mut out, t.as_ptr(), ord, dims.as_ptr(), dims.len() as c_int, keepdim as c_int)
    })?;
    // SAFETY: on success `out` is a new at::Tensor* that the returned Tensor owns.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// `F.leaky_relu(t, negative_slope)`.
pub fn leaky_relu(t: &Tensor, negative_slope: f64) -> Result<Tensor> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: a live handle; `out` is owned by the result.
    check("leaky_relu", unsafe { norm_leaky_relu(&mut out, t.as_ptr(), negative_slope) })?;
    // SAFETY: on success `out` is a new at::Tensor* that the returned Tensor owns.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// An ATen op with a Scalar argument (`csrc/aten_ops.cpp`'s `norm_scalar_op`), whose errors
/// (a scalar that does not fit the tensor's dtype, ...) come back as `Err`, where tch's own
/// wrapper would panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarOp {
    /// `t / value` (`at::div(Tensor, Scalar)`).
    Div = 0,
    /// `t.clamp_min(value)`.
    ClampMin = 1,
    /// `t.add_(value)`, in place.
    AddInPlace = 2,
    /// `t.mul_(value)`, in place.
    MulInPlace = 3,
    /// `t.clamp_min_(value)`, in place.
    ClampMinInPlace = 4,
}

/// Runs `op` on `t` with `value`: `Some(result)` for the out-of-place ops, `None` in place.
pub fn scalar_op(t: &Tensor, op: ScalarOp, value: f64) -> Result<Option<Tensor>> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    let in_place = matches!(op, ScalarOp::AddInPlace | ScalarOp::MulInPlace | ScalarOp::ClampMinInPlace);
    // SAFETY: a live handle (an in-place op writes its storage, as tch's `_` methods do);
    // `out` is written only by the out-of-place ops.
    check("scalar op", unsafe { norm_scalar_op(&mut out, t.as_ptr() as *mut C_tensor, op as c_int, value) })?;
    if in_place {
        return Ok(None);
    }
    // SAFETY: on success `out` is a new at::Tensor* that the returned Tensor owns.
    Ok(Some(unsafe { Tensor::from_ptr(out) }))
}

/// `t.clone(memory_format=torch.contiguous_format)`.
pub fn clone_contiguous(t: &Tensor) -> Result<Tensor> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: a live handle; `out` is owned by the result.
    check("clone", unsafe { norm_clone_contiguous(&mut out, t.as_ptr()) })?;
    // SAFETY: on success `out` is a new at::Tensor* that the returned Tensor owns.
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

/// `csrc/adam_scalar_lambdas.h`'s switch and state: `set` turns the path on or off first
/// (`None`: unchanged). Returns (enabled, float probe, double probe, parameters updated so
/// far), a probe being `None` when it failed, else its mask of fused lambdas.
pub fn adam_scalar_lambdas(set: Option<bool>) -> Result<(bool, Option<u8>, Option<u8>, u64)> {
    let (mut enabled, mut float_state, mut double_state, mut updates) = (0, 0, 0, 0u64);
    let set = set.map_or(-1, c_int::from);
    // SAFETY: plain out-parameters that live for the call.
    check("adam_scalar_lambdas", unsafe {
        norm_adam_scalar_lambdas(set, &mut enabled, &mut float_state, &mut double_state, &mut updates)
    })?;
    let mask = |state: c_int| u8::try_from(state).ok();
    Ok((enabled != 0, mask(float_state), mask(double_state), updates))
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
    let hyper = AdamHyper::from(config);
    // SAFETY: live handles (the optional one null when absent); the call updates param and
    // the state tensors in place.
    check("adam_update", unsafe {
        norm_adam_update(
            param.as_mut_ptr(),
            grad.as_ptr(),
            exp_avg.as_mut_ptr(),
            exp_avg_sq.as_mut_ptr(),
            max_ptr,
            &hyper,
            step as f64,
        )
    })
}

/// Adam's hyper-parameters as `csrc/adam.cpp`'s `NormAdamHyper`.
#[repr(C)]
struct AdamHyper {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled_weight_decay: c_int,
    maximize: c_int,
}

impl From<&norm_core::optim::AdamConfig> for AdamHyper {
    fn from(c: &norm_core::optim::AdamConfig) -> Self {
        AdamHyper {
            lr: c.lr,
            beta1: c.betas.0,
            beta2: c.betas.1,
            eps: c.eps,
            weight_decay: c.weight_decay,
            decoupled_weight_decay: c.decoupled_weight_decay as c_int,
            maximize: c.maximize as c_int,
        }
    }
}

/// All the updates of one Adam step in one call (`csrc/adam.cpp`): parameters under 64
/// bytes that share dtype, step and AMSGrad-ness are packed and updated by one run of the
/// ATen calls (the same bits: ATen runs tensors that small through its scalar loop);
/// the others one by one. Returns the number of packed groups.
pub fn adam_update_many(
    config: &norm_core::optim::AdamConfig,
    updates: Vec<norm_core::optim::AdamUpdate<'_, crate::TchBackend>>,
) -> Result<usize> {
    let n = c_int::try_from(updates.len())
        .map_err(|_| Error::invalid("params", updates.len(), "at most i32::MAX parameters"))?;
    let mut params = Vec::with_capacity(updates.len());
    let mut grads = Vec::with_capacity(updates.len());
    let mut exp_avgs = Vec::with_capacity(updates.len());
    let mut exp_avg_sqs = Vec::with_capacity(updates.len());
    let mut maxes = Vec::with_capacity(updates.len());
    let mut steps = Vec::with_capacity(updates.len());
    let mut updates = updates;
    for u in &mut updates {
        params.push(u.param.as_mut_ptr());
        grads.push(u.grad.as_ptr());
        exp_avgs.push(u.exp_avg.as_mut_ptr());
        exp_avg_sqs.push(u.exp_avg_sq.as_mut_ptr());
        maxes.push(u.max_exp_avg_sq.as_mut().map_or(std::ptr::null_mut(), |t| t.as_mut_ptr()));
        steps.push(u.step as f64);
    }
    let hyper = AdamHyper::from(config);
    let mut packed_groups: c_int = 0;
    // SAFETY: n live handles per array (the max ones null when absent), all borrowed
    // mutably or owned by `updates` for the duration of the call, which updates params
    // and state tensors in place.
    check("adam_update_many", unsafe {
        norm_adam_update_many(
            params.as_ptr(),
            grads.as_ptr(),
            exp_avgs.as_ptr(),
            exp_avg_sqs.as_ptr(),
            maxes.as_ptr(),
            steps.as_ptr(),
            n,
            &hyper,
            &mut packed_groups,
        )
    })?;
    drop(updates);
    Ok(packed_groups as usize)
}

/// Which group-wise Adam path of the C++ shim to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdamGroupPath {
    /// `csrc/adam_foreach.cpp`: `_multi_tensor_adam`'s `_foreach_*` calls.
    ForEach,
    /// `csrc/adam_fused.cpp`: `_fused_adam_` / `_fused_adamw_`.
    Fused,
}

/// One (device, dtype) group of an Adam step through the foreach or fused path of the C++
/// shim (the step counters already incremented).
pub fn adam_group(
    path: AdamGroupPath,
    config: &norm_core::optim::AdamConfig,
    mut group: norm_core::optim::AdamGroup<crate::TchBackend>,
) -> Result<()> {
    let n = group.params.len();
    let count = c_int::try_from(n).map_err(|_| Error::invalid("params", n, "at most i32::MAX parameters"))?;
    let lists = [&group.grads, &group.exp_avgs, &group.exp_avg_sqs];
    let maxes_expected = if config.amsgrad { n } else { 0 };
    if lists.iter().any(|l| l.len() != n) || group.steps.len() != n || group.max_exp_avg_sqs.len() != maxes_expected {
        return Err(Error::invalid(
            "group",
            n,
            "one gradient, exp_avg, exp_avg_sq and step per parameter, and a max_exp_avg_sq each exactly with amsgrad",
        ));
    }
    let ptrs = |ts: &mut Vec<Tensor>| ts.iter_mut().map(|t| t.as_mut_ptr()).collect::<Vec<_>>();
    let params = ptrs(&mut group.params);
    let grads = ptrs(&mut group.grads);
    let exp_avgs = ptrs(&mut group.exp_avgs);
    let exp_avg_sqs = ptrs(&mut group.exp_avg_sqs);
    let maxes = ptrs(&mut group.max_exp_avg_sqs);
    let max_ptr = if config.amsgrad { maxes.as_ptr() } else { std::ptr::null() };
    let steps: Vec<f64> = group.steps.iter().map(|&s| s as f64).collect();
    let hyper = AdamHyper::from(config);
    type GroupFn = unsafe extern "C" fn(
        *const *mut C_tensor,
        *const *mut C_tensor,
        *const *mut C_tensor,
        *const *mut C_tensor,
        *const *mut C_tensor,
        *const f64,
        c_int,
        *const AdamHyper,
    ) -> c_int;
    let (op, f): (&'static str, GroupFn) = match path {
        AdamGroupPath::ForEach => ("adam foreach", norm_adam_foreach),
        AdamGroupPath::Fused => ("adam fused", norm_adam_fused),
    };
    // SAFETY: n live handles per array (owned by `group`, alive for the call; the max list
    // null without AMSGrad), n steps; the call updates params and state tensors in place.
    check(op, unsafe {
        f(
            params.as_ptr(),
            grads.as_ptr(),
            exp_avgs.as_ptr(),
            exp_avg_sqs.as_ptr(),
            max_ptr,
            steps.as_ptr(),
            count,
            &hyper,
        )
    })?;
    drop(group);
    Ok(())
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

/// Whether `a` and `b` are handles on the same tensor (one `TensorImpl`): Python's `a is b`
/// for parameters. Views and other tensors sharing the storage are not the same tensor.
pub fn same_tensor(a: &Tensor, b: &Tensor) -> bool {
    // SAFETY: two live handles; only their impl pointers are read.
    unsafe { norm_same_tensor(a.as_ptr(), b.as_ptr()) != 0 }
}

/// `t.grad = None`.
pub fn clear_grad(t: &Tensor) -> Result<()> {
    // SAFETY: a live handle; only the autograd metadata of `t` changes.
    check("clear_grad", unsafe { norm_clear_grad(t.as_ptr()) })
}

extern "C" {
    fn norm_tensor_fingerprints(ts: *const *const C_tensor, n: c_int, out: *mut i64, needs_graph: *mut c_int) -> c_int;
}

/// Fingerprints of the tensors `ts` (at most `out.len()`, at most 4) for the eval-mode
/// weight cache, written to `out`: per tensor its version counter, data pointer and a hash
/// of sizes/strides/dtype/device. Returns whether a computation from them would record a
/// graph (grad mode on and one requires grad). Errors for an inference tensor (no version
/// counter).
pub fn tensor_fingerprints(ts: &[&Tensor], out: &mut [[i64; 3]]) -> Result<bool> {
    const MAX: usize = 4;
    if ts.len() > MAX || ts.len() > out.len() {
        return Err(Error::invalid("tensors", ts.len(), format!("at most {} tensors", MAX.min(out.len()))));
    }
    let mut ptrs: [*const C_tensor; MAX] = [std::ptr::null(); MAX];
    for (p, t) in ptrs.iter_mut().zip(ts) {
        *p = t.as_ptr();
    }
    let mut needs_graph: c_int = 0;
    // SAFETY: ts.len() live handles; `out` has room for 3 * ts.len() values.
    check("tensor_fingerprints", unsafe {
        norm_tensor_fingerprints(ptrs.as_ptr(), ts.len() as c_int, out.as_mut_ptr().cast::<i64>(), &mut needs_graph)
    })?;
    Ok(needs_graph != 0)
}

// --- Checkpoints: torch.save's zip container and a private seeded generator.

extern "C" {
    fn norm_pt_read_records(
        path: *const c_char,
        max_record: u64,
        ctx: *mut std::ffi::c_void,
        alloc: extern "C" fn(*mut std::ffi::c_void, *const c_char, usize) -> *mut c_char,
    ) -> c_int;
    fn norm_pt_write_records(
        path: *const c_char,
        n: c_int,
        names: *const *const c_char,
        data: *const *const c_char,
        lens: *const usize,
    ) -> c_int;
    fn norm_cpu_generator_new(gen: *mut *mut std::ffi::c_void, seed: u64) -> c_int;
    fn norm_cpu_generator_free(gen: *mut std::ffi::c_void);
    fn norm_cpu_generator_normal(
        out: *mut *mut C_tensor,
        gen: *mut std::ffi::c_void,
        like: *const C_tensor,
        n: i64,
    ) -> c_int;
}

extern "C" fn record_buffer(ctx: *mut std::ffi::c_void, name: *const c_char, len: usize) -> *mut c_char {
    // SAFETY: ctx is the Vec passed by pt_read_records and name is NUL-terminated, both
    // valid for this call. Nothing here can unwind but an allocation failure, which
    // aborts; `len` is at most the bound pt_read_records passed (from the file's length).
    let records = unsafe { &mut *(ctx as *mut Vec<(String, Vec<u8>)>) };
    // SAFETY: as above, `name` is NUL-terminated and valid for this call.
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned();
    records.push((name, vec![0u8; len]));
    records.last_mut().map_or(std::ptr::null_mut(), |(_, data)| data.as_mut_ptr() as *mut c_char)
}

fn c_string(what: &'static str, s: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| Error::invalid(what, s, "a string without NUL bytes"))
}

/// The first line of a libtorch message (drops its hints and C++ backtrace).
fn first_sentence(message: &str) -> &str {
    let line = message.lines().next().unwrap_or(message);
    match line.find(". ") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// `path` as the string libtorch's archive reader and writer take.
fn archive_path(path: &Path) -> Result<std::ffi::CString> {
    let name = path.to_str().ok_or_else(|| {
        Error::invalid("path", path.display(), "a UTF-8 path (libtorch's archive code takes a string)")
    })?;
    c_string("path", name)
}

/// libtorch's error for the archive at `path` as a checkpoint error of `kind`.
fn archive_error(path: &Path, kind: fn(String) -> CheckpointErrorKind) -> impl FnOnce(Error) -> Error + '_ {
    move |e| match e {
        Error::Backend { message, .. } => Error::checkpoint(path, kind(first_sentence(&message).to_string())),
        e => e,
    }
}

/// The most bytes one record of a zip archive of `file_len` bytes can hold: its length
/// for a stored record (torch.save stores), 1032 times it for a deflated one (deflate's
/// largest ratio).
pub fn max_record_len(file_len: u64) -> u64 {
    file_len.saturating_mul(1032)
}

/// Every record of the torch.save zip archive at `path`, names relative to its folder,
/// each read into a buffer of its declared size once that size is checked against the
/// file's length ([`max_record_len`]). libtorch's refusal (`PyTorchStreamReader`), or a
/// size the file cannot hold, is [`CheckpointErrorKind::Zip`].
pub fn pt_read_records(path: &Path, file_len: u64) -> Result<Vec<(String, Vec<u8>)>> {
    let name = archive_path(path)?;
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    // SAFETY: a NUL-terminated path; `record_buffer` only appends to `records`, alive for
    // the call, and returns a buffer of the length asked for, written before the next call.
    check("read .pt archive", unsafe {
        norm_pt_read_records(
            name.as_ptr(),
            max_record_len(file_len),
            &mut records as *mut _ as *mut std::ffi::c_void,
            record_buffer,
        )
    })
    .map_err(archive_error(path, |message| CheckpointErrorKind::Zip { message }))?;
    Ok(records)
}

/// Writes `records` into a new torch.save zip archive at `path`. libtorch's refusal
/// (`PyTorchStreamWriter`) is [`CheckpointErrorKind::Write`].
pub fn pt_write_records(path: &Path, records: &[(String, Vec<u8>)]) -> Result<()> {
    let name = archive_path(path)?;
    let names = records.iter().map(|(n, _)| c_string("record name", n)).collect::<Result<Vec<_>>>()?;
    let name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let data_ptrs: Vec<*const c_char> = records.iter().map(|(_, d)| d.as_ptr() as *const c_char).collect();
    let lens: Vec<usize> = records.iter().map(|(_, d)| d.len()).collect();
    // SAFETY: n entries in each array, each pointer valid for its length for the call.
    check("write .pt archive", unsafe {
        norm_pt_write_records(
            name.as_ptr(),
            records.len() as c_int,
            name_ptrs.as_ptr(),
            data_ptrs.as_ptr(),
            lens.as_ptr(),
        )
    })
    .map_err(archive_error(path, |message| CheckpointErrorKind::Write { message }))
}

/// A CPU generator of its own, seeded like `torch.manual_seed(seed)` seeds the global one.
pub struct CpuGenerator(*mut std::ffi::c_void);

impl CpuGenerator {
    /// A new generator in the state `torch.manual_seed(seed)` leaves the default one in.
    pub fn new(seed: u64) -> Result<Self> {
        let mut gen = std::ptr::null_mut();
        // SAFETY: on success `gen` is a heap at::Generator owned by the result (freed in Drop).
        check("cpu generator", unsafe { norm_cpu_generator_new(&mut gen, seed) })?;
        Ok(CpuGenerator(gen))
    }

    /// `like.new_empty(n).normal_(0, 1, generator=self)`, on the CPU.
    pub fn normal(&mut self, like: &Tensor, n: i64) -> Result<Tensor> {
        let mut out: *mut C_tensor = std::ptr::null_mut();
        // SAFETY: a live generator and tensor handle; `out` is owned by the result.
        check("normal_", unsafe { norm_cpu_generator_normal(&mut out, self.0, like.as_ptr(), n) })?;
        // SAFETY: on success `out` is a new at::Tensor* that the returned Tensor owns.
        Ok(unsafe { Tensor::from_ptr(out) })
    }
}

impl Drop for CpuGenerator {
    fn drop(&mut self) {
        // SAFETY: the pointer came from norm_cpu_generator_new and is freed once.
        unsafe { norm_cpu_generator_free(self.0) }
    }
}

// --- mv with a known product (csrc/mv_reused.cpp).

extern "C" {
    fn norm_mv_reused(
        out: *mut *mut C_tensor,
        mat: *const C_tensor,
        vec: *const C_tensor,
        product: *const C_tensor,
    ) -> c_int;
}

/// `torch.mv(mat, vec)` given its value `product` (computed before from the same `mat` and
/// `vec` values, under no_grad): `product`'s tensor with the history ATen's `mv` would give
/// (an `MvBackward0` node). Errors when `product` has the wrong shape, dtype or device, or
/// requires grad.
pub fn mv_reused(mat: &Tensor, vec: &Tensor, product: Tensor) -> Result<Tensor> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: live handles; on success `out` is a new at::Tensor* (on product's tensor)
    // owned by the returned Tensor.
    check("mv_reused", unsafe { norm_mv_reused(&mut out, mat.as_ptr(), vec.as_ptr(), product.as_ptr()) })?;
    // SAFETY: on success `out` is a new at::Tensor* that the returned Tensor owns.
    Ok(unsafe { Tensor::from_ptr(out) })
}

// --- spectral norm's `weight_orig / σ` into a recycled storage (csrc/div_recycled.cpp).

extern "C" {
    fn norm_div_recycled(
        out: *mut *mut C_tensor,
        next_slot: *mut *mut C_tensor,
        a: *const C_tensor,
        b: *const C_tensor,
        slot: *const C_tensor,
    ) -> c_int;
}

/// `torch.div(a, b)`, into the storage of `slot` when that handle is its only reference and
/// the division is one `csrc/div_recycled.cpp` recycles (same bits and history as
/// `torch.div`). Returns the result and, when the caller's slot should change, the new
/// slot handle (on the result's storage).
pub fn div_recycled(a: &Tensor, b: &Tensor, slot: Option<&Tensor>) -> Result<(Tensor, Option<Tensor>)> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    let mut next: *mut C_tensor = std::ptr::null_mut();
    let slot = slot.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: live handles (slot may be null); on success `out` is a new at::Tensor* and
    // `next` null or a new at::Tensor*, each owned by the Tensor made from it.
    check("div_recycled", unsafe { norm_div_recycled(&mut out, &mut next, a.as_ptr(), b.as_ptr(), slot) })?;
    // SAFETY: on success `out` is a new at::Tensor* that the returned Tensor owns.
    let out = unsafe { Tensor::from_ptr(out) };
    // SAFETY: a non-null `next` is a new at::Tensor* that the returned Tensor owns.
    let next = (!next.is_null()).then(|| unsafe { Tensor::from_ptr(next) });
    Ok((out, next))
}

// --- A weight-normed Linear's training forward as one autograd node (csrc/weight_norm_linear.cpp).

extern "C" {
    fn norm_weight_norm_linear(
        out: *mut *mut C_tensor,
        weight: *mut *mut C_tensor,
        used: *mut c_int,
        xs: *const C_tensor,
        v: *const C_tensor,
        g: *const C_tensor,
        bias: *const C_tensor,
        dim: i64,
    ) -> c_int;
    fn norm_tiny_kernels(
        set_enabled: c_int,
        enabled: *mut c_int,
        float_state: *mut c_int,
        double_state: *mut c_int,
        replays: *mut u64,
    ) -> c_int;
}

/// `csrc/tiny_kernels.h`'s switch and state: `set` turns the replays on or off first (`None`:
/// unchanged). Returns (enabled, float32 verdict, float64 verdict, kernel calls replayed so
/// far), a verdict packed as `norm_tiny::pack` does.
pub fn tiny_kernels(set: Option<bool>) -> Result<(bool, i32, i32, u64)> {
    let (mut enabled, mut float_state, mut double_state, mut replays) = (0, 0, 0, 0u64);
    let set = set.map_or(-1, c_int::from);
    // SAFETY: plain out-parameters that live for the call.
    check("tiny_kernels", unsafe {
        norm_tiny_kernels(set, &mut enabled, &mut float_state, &mut double_state, &mut replays)
    })?;
    Ok((enabled != 0, float_state, double_state, replays))
}

/// `F.linear(xs, torch._weight_norm(v, g, dim), bias)` recorded as one autograd node whose
/// backward makes the calls of PyTorch's `AddmmBackward0`, `TBackward0` and
/// `WeightNormInterfaceBackward0`, in their order (same bits): `Some((output, weight))`, the
/// weight being the value used (no history). `None` when the rule of
/// `csrc/weight_norm_linear.cpp` declines (2-D input, a bias, dim 0 or last, one float32/64
/// dtype, CPU strided tensors, contiguous `v` and `g`, no forward-mode gradients, an input
/// `xs` that does not require grad, and `v`, `g` or the bias needing a gradient under grad
/// mode); the caller then runs the plain ops.
pub fn weight_norm_linear(
    xs: &Tensor,
    v: &Tensor,
    g: &Tensor,
    bias: &Tensor,
    dim: i64,
) -> Result<Option<(Tensor, Tensor)>> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    let mut weight: *mut C_tensor = std::ptr::null_mut();
    let mut used: c_int = 0;
    // SAFETY: live handles; on success with `used` set, `out` and `weight` are new
    // at::Tensor* owned by the returned Tensors.
    check("weight_norm_linear", unsafe {
        norm_weight_norm_linear(
            &mut out,
            &mut weight,
            &mut used,
            xs.as_ptr(),
            v.as_ptr(),
            g.as_ptr(),
            bias.as_ptr(),
            dim,
        )
    })?;
    if used == 0 {
        return Ok(None);
    }
    // SAFETY: set by the call above on success with `used`.
    Ok(Some(unsafe { (Tensor::from_ptr(out), Tensor::from_ptr(weight)) }))
}
