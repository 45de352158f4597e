//! What norm-tch's integration tests share, from `norm_test_support`: the repository root,
//! the venv's Python (live PyTorch; skipping or failing without it), and per-test scratch
//! folders.
#![allow(dead_code, unused_imports)] // each test binary uses its own subset

pub use norm_test_support::{python_or_skip, repo_root as repo};

/// An empty folder `<target tmp>/<name>-<pid>` (left behind on failure, for inspection):
/// `norm_test_support::scratch_dir!` under this crate's `CARGO_TARGET_TMPDIR`.
pub fn fresh_dir(name: &str) -> anyhow::Result<std::path::PathBuf> {
    norm_test_support::scratch_dir!(name)
}
