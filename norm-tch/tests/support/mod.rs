//! What norm-tch's integration tests share: the repository's venv Python (live PyTorch),
//! skipping or failing without it, and per-test scratch folders.
#![allow(dead_code)] // each test binary uses its own subset

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's Python for tests that compare against live PyTorch: `Ok(None)` after
/// printing `SKIPPED: ... to <what>` when the repo has no venv, an error instead when
/// `NORM_REQUIRE_PYTORCH=1` (set by `make test`), so a missing setup cannot pass silently.
pub fn python_or_skip(what: &str) -> Result<Option<PathBuf>> {
    let python = repo().join(".venv/bin/python");
    if python.exists() {
        return Ok(Some(python));
    }
    if std::env::var("NORM_REQUIRE_PYTORCH").as_deref() == Ok("1") {
        bail!("NORM_REQUIRE_PYTORCH=1 but the repo has no .venv/bin/python (run `make setup`)");
    }
    eprintln!("SKIPPED: no .venv/bin/python; run `make setup` to {what}");
    Ok(None)
}

/// An empty folder `<target tmp>/<name>-<pid>` (left behind on failure, for inspection).
pub fn fresh_dir(name: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
