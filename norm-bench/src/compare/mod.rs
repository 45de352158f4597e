//! `norm-bench compare RUN_A RUN_B`: how every ratio and absolute time moved between two
//! report folders (two commits, or two machines), so a change can be gated on it.
//!
//! It reads both folders' `timing.csv` ([`runs`]), matches the cases, and judges every
//! ratio's move against the threshold and the bootstrap intervals ([`table`]); it writes
//! `compare.md`, `compare.csv` and (with matplotlib) `compare.png`
//! (`norm-bench/python/plot_compare.py`) into `--out` (default `<RUN_B>/compare`) and
//! prints `compare.md`. Exit status: 0 no regression, 1 a regression beyond the threshold,
//! 2 bad input (a missing or malformed folder, named in the message; a threshold out of
//! range).

mod runs;
mod table;

use crate::report::pytorch::{default_python, Script};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

/// The smallest and largest `--threshold`.
pub const THRESHOLD_RANGE: (f64, f64) = (1.0, 100.0);

/// `norm-bench compare`'s arguments.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct CompareArgs {
    /// The earlier report folder (e.g. reports/2026-11-30T10-00-00Z or reports/latest).
    pub run_a: PathBuf,
    /// The later report folder.
    pub run_b: PathBuf,
    /// A ratio grown by more than this factor (and beyond both intervals) is a regression: exit 1; in [1, 100].
    #[arg(long, default_value_t = 1.10)]
    pub threshold: f64,
    /// Where compare.md, compare.csv and compare.png go [default: <RUN_B>/compare].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Python with matplotlib for the plot [default: <exe dir>/../../.venv/bin/python, else python3].
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Skip the plot.
    #[arg(long)]
    pub no_plot: bool,
}

/// `norm-bench/python/plot_compare.py`.
const PLOT_SCRIPT: Script = Script {
    source: include_str!("../../python/plot_compare.py"),
    path: concat!(env!("CARGO_MANIFEST_DIR"), "/python/plot_compare.py"),
};

/// The plot script's exit status when matplotlib cannot be imported.
const NO_MATPLOTLIB: i32 = 4;

/// Runs `norm-bench compare`; returns its exit status (module doc). Errors only when the
/// output folder cannot be written.
pub fn run_cli(args: &CompareArgs) -> Result<ExitCode> {
    let (low, high) = THRESHOLD_RANGE;
    if !(args.threshold >= low && args.threshold <= high) {
        eprintln!("error: --threshold {}: expected a number in [{low}, {high}]", args.threshold);
        return Ok(ExitCode::from(2));
    }
    let read = |dir: &Path| runs::Run::read(dir);
    let (a, b) = match (read(&args.run_a), read(&args.run_b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let rows = table::compare_runs(&a, &b, args.threshold);
    let out = args.out.clone().unwrap_or_else(|| args.run_b.join("compare"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let md = table::markdown(&a, &b, &rows, args.threshold);
    std::fs::write(out.join("compare.md"), &md).with_context(|| format!("writing {}/compare.md", out.display()))?;
    std::fs::write(out.join("compare.csv"), table::csv_text(&rows)?)
        .with_context(|| format!("writing {}/compare.csv", out.display()))?;
    if !args.no_plot {
        let python = args.python.clone().unwrap_or_else(default_python);
        match plot(&python, &out, args.threshold) {
            Ok(()) => eprintln!("plot: {}", out.join("compare.png").display()),
            Err(e) => eprintln!("note: no plot: {e:#}"),
        }
    }
    print!("{md}");
    println!("\nwrote {}", out.display());
    let regressions = rows.iter().filter(|m| m.verdict == table::Verdict::Regression).count();
    Ok(if regressions == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Draws `<out>/compare.png` from `<out>/compare.csv`.
fn plot(python: &Path, out: &Path, threshold: f64) -> Result<()> {
    let status = PLOT_SCRIPT
        .command(python)
        .arg(out)
        .arg(threshold.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("cannot run `{}`", python.display()))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(NO_MATPLOTLIB) => bail!("matplotlib is not installed in {}", python.display()),
        _ => bail!("plot_compare.py failed ({status})"),
    }
}
