//! The golden data in `data/golden/`, made by `data/gen_goldens.py` with real PyTorch.
//!
//! Bits depend on the machine: the manifest records the torch version and ATen CPU
//! capability the data was made with. [`Golden::open`] compares that capability with
//! this process's libtorch and returns [`GoldenStatus::OtherMachine`] when they differ,
//! so tests say so and skip instead of failing; on the same machine a mismatch is a bug.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `data/golden/manifest.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    /// `torch.__version__` of the generating PyTorch.
    pub torch: String,
    /// `torch.backends.cpu.get_cpu_capability()` where the data was made.
    pub cpu_capability: String,
    /// Intra-op threads used.
    pub threads: usize,
    /// The data files, relative to `data/golden/`.
    pub files: Vec<String>,
}

/// The golden directory and its manifest.
#[derive(Clone, Debug)]
pub struct Golden {
    /// `data/golden/`.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Whether the golden data applies to this machine.
#[derive(Debug)]
pub enum GoldenStatus {
    /// Made with the same ATen CPU capability: bits must match.
    Applies(Golden),
    /// Made elsewhere: comparing bits would test the machine, not the code.
    OtherMachine {
        /// The capability recorded in the manifest.
        made_on: String,
        /// This machine's capability.
        here: String,
    },
}

/// The repository root (the workspace directory holding `data/`): `$NORM_REPO` if set (a
/// prebuilt binary run in another copy of the repository, as `scripts/gpu-check.sh` does),
/// else the one this crate was built in.
pub fn repo_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("NORM_REPO") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("norm-bench lives in the workspace root").to_path_buf()
}

/// The Python of the repo's venv (`.venv/bin/python`), if it exists.
pub fn venv_python() -> Option<PathBuf> {
    let python = repo_root().join(".venv/bin/python");
    python.exists().then_some(python)
}

/// The venv's Python for tests that compare against live PyTorch: `Ok(None)` (after
/// printing `SKIPPED: ...`) when the repo has no venv, or an error instead when
/// `NORM_REQUIRE_PYTORCH=1` (set by `make test`), so a missing setup cannot pass silently.
pub fn venv_python_for_tests() -> Result<Option<PathBuf>> {
    match venv_python() {
        Some(python) => Ok(Some(python)),
        None if std::env::var("NORM_REQUIRE_PYTORCH").as_deref() == Ok("1") => {
            anyhow::bail!("NORM_REQUIRE_PYTORCH=1 but the repo has no .venv/bin/python (run `make setup`)")
        }
        None => {
            eprintln!("SKIPPED: no .venv/bin/python; run `make setup` to compare against live PyTorch");
            Ok(None)
        }
    }
}

impl Golden {
    /// Reads `data/golden/manifest.json` and checks it against this machine.
    pub fn open() -> Result<GoldenStatus> {
        let dir = repo_root().join("data/golden");
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let manifest: Manifest = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let here = norm_tch::backend::cpu_capability();
        if here != manifest.cpu_capability {
            return Ok(GoldenStatus::OtherMachine { made_on: manifest.cpu_capability, here });
        }
        Ok(GoldenStatus::Applies(Golden { dir, manifest }))
    }

    /// Parses one data file.
    pub fn read<T: serde::de::DeserializeOwned>(&self, rel: &str) -> Result<T> {
        let path = self.dir.join(rel);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}
