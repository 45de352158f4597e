//! Seeded runs, thread pinning, devices and VarStore helpers.

use anyhow::{Context, Result};
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// Runs `f` right after `tch::manual_seed(seed)`, holding norm-tch's global generator lock
/// (`norm_tch::backend::lock_global_generator`) throughout, so tests running in parallel
/// threads cannot draw from the generator in between.
pub fn seeded<T>(seed: i64, f: impl FnOnce() -> T) -> T {
    unseeded(|| {
        tch::manual_seed(seed);
        f()
    })
}

/// Runs `f` holding the global generator lock without seeding: for draws whose values a test
/// does not compare, kept out of other tests' seeded runs. The lock is not re-entrant: `f`
/// must not take it again (through [`seeded`] or a helper that seeds).
pub fn unseeded<T>(f: impl FnOnce() -> T) -> T {
    let _generator = norm_tch::backend::lock_global_generator();
    f()
}

/// Pins libtorch to one intra-op thread (`norm_tch::backend::set_num_threads(1)`), as every
/// bit comparison with PyTorch and every bench needs; panics if libtorch refuses.
pub fn one_thread() {
    norm_tch::backend::set_num_threads(1).expect("one intra-op thread");
}

/// `NORM_REQUIRE_CUDA=1` (set by `scripts/gpu-check.sh`): a missing CUDA device fails the
/// CUDA tests instead of skipping them.
pub const REQUIRE_CUDA: &str = "NORM_REQUIRE_CUDA";

/// CUDA device 0, or `None` after printing `SKIPPED: no CUDA device; <what> needs one`;
/// panics under `NORM_REQUIRE_CUDA=1` when libtorch sees no CUDA device.
pub fn cuda_or_skip(what: &str) -> Option<Device> {
    if let Some(device) = norm_tch::backend::cuda_device(0) {
        return Some(device);
    }
    assert!(
        std::env::var(REQUIRE_CUDA).as_deref() != Ok("1"),
        "{REQUIRE_CUDA}=1 but libtorch sees no CUDA device (tch::Cuda::is_available() = {}, device_count = {})",
        tch::Cuda::is_available(),
        tch::Cuda::device_count()
    );
    eprintln!("SKIPPED: no CUDA device; {what} needs one");
    None
}

/// The devices a bench runs on, named for its group ids: the CPU as `"cpu"`, and CUDA
/// device 0 as `"cuda"` where libtorch sees one (`norm_tch::backend::available_devices`).
pub fn bench_devices() -> Vec<(Device, &'static str)> {
    norm_tch::backend::available_devices()
        .into_iter()
        .map(|d| (d, if d == Device::Cpu { "cpu" } else { "cuda" }))
        .collect()
}

/// A copy of `t`'s values in new storage, outside autograd (`t.detach().copy()`).
pub fn detached_copy(t: &Tensor) -> Tensor {
    t.detach().copy()
}

/// The names of every variable in `vs`, sorted.
pub fn var_names(vs: &VarStore) -> Vec<String> {
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    names
}

/// A seed for randomized parity tests: `NORM_PARITY_SEED` if set (to replay a failure),
/// else drawn from the clock. Tests print it.
pub fn parity_test_seed() -> Result<u64> {
    if let Ok(text) = std::env::var("NORM_PARITY_SEED") {
        return text.parse().with_context(|| format!("NORM_PARITY_SEED must be an unsigned integer, got {text}"));
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    Ok(nanos.wrapping_mul(6_364_136_223_846_793_005) >> 1)
}
