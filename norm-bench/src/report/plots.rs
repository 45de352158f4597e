//! The PNG plots: `norm-bench/python/plot_report.py` (matplotlib, Agg backend) reads the
//! run's CSVs and writes `<run>/plots/*.png`; it prints the written files' paths, relative
//! to the run folder, one per line on stdout. Without matplotlib it exits with
//! [`NO_MATPLOTLIB`] and the report goes on without plots.

use super::pytorch::Script;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Stdio;

/// `norm-bench/python/plot_report.py`.
pub(crate) const PLOT_SCRIPT: Script = Script {
    source: include_str!("../../python/plot_report.py"),
    path: concat!(env!("CARGO_MANIFEST_DIR"), "/python/plot_report.py"),
};

/// The script's exit status when matplotlib cannot be imported.
pub(crate) const NO_MATPLOTLIB: i32 = 4;

/// Draws the plots of the run in `run_dir` with `python`; returns the PNGs written
/// (paths relative to `run_dir`).
///
/// Errors: the interpreter cannot run, matplotlib is missing, or the script fails.
pub(crate) fn draw(python: &Path, run_dir: &Path) -> Result<Vec<String>> {
    let output = PLOT_SCRIPT
        .command(python)
        .arg(run_dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run `{}`", python.display()))?;
    match output.status.code() {
        Some(0) => {}
        Some(NO_MATPLOTLIB) => bail!(
            "matplotlib is not installed in {} (`{} -m pip install matplotlib`)",
            python.display(),
            python.display()
        ),
        _ => bail!("plot_report.py failed ({}; its stderr is above)", output.status),
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(".png"))
        .map(str::to_string)
        .collect())
}
