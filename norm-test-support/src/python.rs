//! The repository, the venv's Python, and Python scripts run with JSON in and out.

use anyhow::{bail, ensure, Context, Result};
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The environment variable that makes a missing venv a failure instead of a skip
/// (`NORM_REQUIRE_PYTORCH=1`, set by `make test`).
pub const REQUIRE_PYTORCH: &str = "NORM_REQUIRE_PYTORCH";

/// The repository root (the workspace folder holding `data/` and `.venv/`): `$NORM_REPO` if
/// set, else the workspace this crate was built in.
pub fn repo_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("NORM_REPO") {
        return PathBuf::from(dir); // a prebuilt test binary run in a copy of the repository (gpu-check.sh)
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("norm-test-support lives in the workspace root").to_path_buf()
}

/// The Python of the repository's venv (`.venv/bin/python`), if it exists.
pub fn venv_python() -> Option<PathBuf> {
    let python = repo_root().join(".venv/bin/python");
    python.exists().then_some(python)
}

/// The Python for a test that compares against live PyTorch: `$NORM_PYTHON` if set (a GPU
/// machine's own `python3`, gpu-check.sh), else the venv's; `Ok(None)` after printing
/// `SKIPPED: ... to <what>` when there is neither, an error instead when
/// `NORM_REQUIRE_PYTORCH=1`, so a missing setup cannot pass silently.
pub fn python_or_skip(what: &str) -> Result<Option<PathBuf>> {
    if let Some(python) = std::env::var_os("NORM_PYTHON") {
        return Ok(Some(PathBuf::from(python)));
    }
    if let Some(python) = venv_python() {
        return Ok(Some(python));
    }
    if std::env::var(REQUIRE_PYTORCH).as_deref() == Ok("1") {
        bail!("{REQUIRE_PYTORCH}=1 but the repo has no .venv/bin/python (run `make setup`)");
    }
    eprintln!("SKIPPED: no .venv/bin/python; run `make setup` to {what}");
    Ok(None)
}

/// Runs `python script args...` with `stdin` (compact JSON; nothing when `None`) on its
/// standard input, closed after writing, and returns its standard output. A failing exit
/// is an error carrying the script's name, the arguments and its standard error.
pub fn run_python(python: &Path, script: &Path, args: &[&str], stdin: Option<&serde_json::Value>) -> Result<Vec<u8>> {
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", python.display()))?;
    let mut input = child.stdin.take().context("python stdin")?;
    if let Some(v) = stdin {
        input.write_all(serde_json::to_string(v)?.as_bytes())?;
    }
    drop(input);
    let out = child.wait_with_output()?;
    let name = script.file_name().map_or_else(|| script.display().to_string(), |n| n.to_string_lossy().into_owned());
    ensure!(out.status.success(), "{name} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(out.stdout)
}

/// [`run_python`], then its standard output parsed as one JSON value of type `T`.
pub fn run_python_json<T: DeserializeOwned>(
    python: &Path,
    script: &Path,
    args: &[&str],
    stdin: Option<&serde_json::Value>,
) -> Result<T> {
    let stdout = run_python(python, script, args, stdin)?;
    serde_json::from_slice(&stdout).with_context(|| format!("parsing the JSON output of {}", script.display()))
}
