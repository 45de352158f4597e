//! What norm's tests, examples and benches share, written once (`publish = false`, a
//! dev-dependency only):
//!
//! - [`bits`]: tensors as IEEE-754 bit patterns ([`f32_bits`], [`f64_bits`], [`Bits`], the
//!   JSON form of `data/norm_helpers.py`), ULP distances, bit-equality checks whose errors
//!   say where and by how much;
//! - [`model_json`]: the JSON of `norm_tch::models`' PyTorch twins (`data/hifigan_block.py`,
//!   `data/sn_discriminator.py`) and the bit-for-bit comparison of a Rust training run with it;
//! - [`python`]: the repository root, the venv's Python (skip or fail without it), running a
//!   Python script with JSON in and out;
//! - [`scratch`]: fresh scratch folders under cargo's target tmp ([`scratch_dir!`]);
//! - [`torch`]: seeded runs under the global generator lock, one intra-op thread, the
//!   devices a bench runs on, small VarStore helpers.
//!
//! Everything is re-exported at the crate root.

pub mod bits;
pub mod model_json;
pub mod python;
pub mod scratch;
pub mod torch;

pub use bits::{
    describe_difference, ensure_f32_bits_eq, f32_bits, f64_bits, max_ulp_f32, max_ulps, tensor_from_f32_bits,
    ulp_distance_f32, Bits,
};
pub use model_json::{compare_sn_run, loss_bits, HifiganIo, SnDiscriminatorRun};
pub use python::{python_or_skip, repo_root, run_python, run_python_json, venv_python, REQUIRE_PYTORCH};
pub use scratch::fresh_dir;
pub use torch::{
    bench_devices, cuda_or_skip, detached_copy, one_thread, parity_test_seed, seeded, unseeded, var_names, REQUIRE_CUDA,
};
