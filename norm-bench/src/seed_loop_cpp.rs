//! The seed document's training step written directly against libtorch
//! (`csrc/seed_step_cpp.cpp`): PyTorch's own sequence of ATen calls with neither Python
//! nor Rust in between, Adam one parameter at a time with a float32 step tensor, as
//! `_single_tensor_adam` runs it.
//!
//! It is the floor for anything that makes those calls: the report's `seed_loop_step_cpp`
//! row times it beside PyTorch eager, so the seed-loop ratio can be read against what
//! libtorch itself costs on the machine. Its bits equal norm's [`SeedModel`] step for step
//! (`tests/seed_step_cpp.rs`).
//!
//! [`SeedModel`]: crate::seed_loop::SeedModel

use anyhow::{bail, Result};
use std::ffi::{c_char, c_int, c_void, CStr};
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    /// norm-tch's (`csrc/aten_ops.cpp`): the message of the last failed call on this thread.
    fn norm_last_error() -> *const c_char;
    fn norm_bench_seed_cpp_new(
        out: *mut *mut c_void,
        v: *const C_tensor,
        g: *const C_tensor,
        bias: *const C_tensor,
        lr: f64,
    ) -> c_int;
    fn norm_bench_seed_cpp_free(state: *mut c_void);
    fn norm_bench_seed_cpp_step(state: *mut c_void, r: f64) -> c_int;
    fn norm_bench_seed_cpp_param(state: *mut c_void, i: c_int, out: *mut *mut C_tensor) -> c_int;
}

fn check(what: &str, status: c_int) -> Result<()> {
    if status == 0 {
        return Ok(());
    }
    // SAFETY: a NUL-terminated thread-local string, copied at once.
    let message = unsafe { CStr::from_ptr(norm_last_error()) }.to_string_lossy().into_owned();
    bail!("libtorch C++ seed step: {what}: {message}")
}

/// The C++ model: copies of `weight_v`, `weight_g`, `bias` and its own Adam state.
pub struct SeedStepCpp {
    state: *mut c_void,
}

impl SeedStepCpp {
    /// A model starting from copies of the given parameters, with a fresh `Adam(lr)`.
    pub fn new(weight_v: &Tensor, weight_g: &Tensor, bias: &Tensor, lr: f64) -> Result<Self> {
        let mut state = std::ptr::null_mut();
        // SAFETY: live handles, copied by the callee; on success `state` is owned by Self.
        check("new", unsafe {
            norm_bench_seed_cpp_new(&mut state, weight_v.as_ptr(), weight_g.as_ptr(), bias.as_ptr(), lr)
        })?;
        Ok(SeedStepCpp { state })
    }

    /// One step on `x = randn(10, 2) * r * 10` drawn from libtorch's global generator.
    pub fn step(&mut self, r: f64) -> Result<()> {
        // SAFETY: `state` is live until Drop.
        check("step", unsafe { norm_bench_seed_cpp_step(self.state, r) })
    }

    /// Copies of `weight_v`, `weight_g` and `bias` as they are now.
    pub fn params(&self) -> Result<[Tensor; 3]> {
        let one = |i: c_int| -> Result<Tensor> {
            let mut out = std::ptr::null_mut();
            // SAFETY: `state` is live; on success `out` is a new at::Tensor* that the
            // returned Tensor owns (freed by tch's Drop).
            check("param", unsafe { norm_bench_seed_cpp_param(self.state, i, &mut out) })?;
            // SAFETY: on success `out` is a new at::Tensor* that the returned Tensor owns.
            Ok(unsafe { Tensor::from_ptr(out) })
        };
        Ok([one(0)?, one(1)?, one(2)?])
    }
}

impl Drop for SeedStepCpp {
    fn drop(&mut self) {
        // SAFETY: allocated by norm_bench_seed_cpp_new, freed once.
        unsafe { norm_bench_seed_cpp_free(self.state) }
    }
}
