//! `norm-bench parity`: a spec-driven, bit-for-bit comparison of norm against PyTorch.
//!
//! A spec file (docs/parity.md) describes cases — a layer, a normalization, a mode, an
//! optimizer and a few steps. The same spec runs in PyTorch (`data/parity.py`, with the
//! venv's torch) and here ([`run::run_spec`]); [`compare::compare`] checks every tensor of
//! every step bit for bit, and error cases by their Python exception type.

pub mod compare;
pub mod layer;
pub mod run;
pub mod spec;
pub(crate) mod unique_keys;

use anyhow::{ensure, Context, Result};
use std::path::Path;

/// Runs `data/parity.py SPEC --out OUT` with `python` and reads its output.
pub fn run_pytorch(python: &Path, spec_path: &Path) -> Result<run::ParityOutput> {
    let script = crate::golden::repo_root().join("data/parity.py");
    let out = tempfile_path("parity-pytorch")?;
    let status = std::process::Command::new(python)
        .arg(&script)
        .arg(spec_path)
        .arg("--out")
        .arg(&out)
        .status()
        .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
    ensure!(status.success(), "{} failed ({status})", script.display());
    let text = std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    let _ = std::fs::remove_file(&out);
    serde_json::from_str(&text).context("parsing PyTorch's parity output")
}

fn tempfile_path(stem: &str) -> Result<std::path::PathBuf> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    Ok(std::env::temp_dir().join(format!("{stem}-{}-{nanos}.json", std::process::id())))
}
