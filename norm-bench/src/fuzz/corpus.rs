//! The real inputs the fuzzer mutates: checkpoints that the venv's torch writes from real
//! normalized models (`norm-tch/tests/checkpoint.py make`: weight_norm and spectral_norm
//! through hooks and parametrizations, legacy spectral-norm layouts, views, nested and
//! TorchScript files; `.pt` and `.safetensors`), and the cases of `data/parity_spec.json`.

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use std::path::Path;

/// The seed inputs.
#[derive(Debug, Default)]
pub struct Corpus {
    /// `.pt` files: name and bytes, sorted by name.
    pub pt: Vec<(String, Vec<u8>)>,
    /// `.safetensors` files: name and bytes, sorted by name.
    pub safetensors: Vec<(String, Vec<u8>)>,
    /// The cases of the parity spec.
    pub spec_cases: Vec<Value>,
}

fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == ext) {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.push((name, std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?));
        }
    }
    out.sort();
    Ok(out)
}

impl Corpus {
    /// The corpus, its checkpoints in `dir`: written there first by `python` (with torch)
    /// unless `dir` already holds them. `checkpoints`: whether they are needed at all.
    pub fn load(repo: &Path, dir: &Path, python: &Path, checkpoints: bool) -> Result<Self> {
        let spec_path = repo.join("data/parity_spec.json");
        let spec: Value = serde_json::from_str(
            &std::fs::read_to_string(&spec_path).with_context(|| format!("reading {}", spec_path.display()))?,
        )?;
        let spec_cases = spec["cases"].as_array().cloned().unwrap_or_default();
        ensure!(!spec_cases.is_empty(), "{} has no cases", spec_path.display());
        let mut corpus = Corpus { spec_cases, ..Corpus::default() };
        if !checkpoints {
            return Ok(corpus);
        }
        let complete = dir.join("complete");
        if !complete.exists() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let script = repo.join("norm-tch/tests/checkpoint.py");
            eprintln!("fuzz: writing the checkpoint corpus into {} with {}", dir.display(), python.display());
            let status = std::process::Command::new(python)
                .arg(&script)
                .arg("make")
                .arg(dir)
                .stdout(std::process::Stdio::null())
                .status()
                .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
            if !status.success() {
                bail!("{} {} make {} failed ({status})", python.display(), script.display(), dir.display());
            }
            std::fs::write(&complete, b"")?;
        }
        corpus.pt = files_with_extension(dir, "pt")?;
        corpus.safetensors = files_with_extension(dir, "safetensors")?;
        ensure!(!corpus.pt.is_empty() && !corpus.safetensors.is_empty(), "no checkpoints in {}", dir.display());
        Ok(corpus)
    }
}
