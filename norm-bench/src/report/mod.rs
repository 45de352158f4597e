//! `norm-bench report`: timings of norm's weight norm in Rust and of the same programs
//! in PyTorch eager, side by side, measured in the same run.
//!
//! For each case ([`cases`]) the PyTorch script ([`pytorch`]) times its side first, then
//! Rust times its side, one process at a time so they never compete for the CPU. Both use
//! the same thread count, warmup and sample count, and both sides' raw durations go
//! through [`stats::Summary`]. After every finished case the whole table is rewritten,
//! atomically, to `<out>/timing.csv` ([`export`]; the schema is in `docs/reports.md`).
//! Progress goes to stderr, one line per case; a summary table ends on stdout.
//!
//! Without a usable Python/torch (or with [`ReportOptions::pytorch`] off) the pytorch
//! columns stay empty, a warning goes to stderr, and the run still succeeds.

pub mod cases;
pub mod export;
pub mod pytorch;
pub mod stats;

use anyhow::{ensure, Result};
use cases::Case;
use export::{CsvExporter, TimingExporter};
use pytorch::{PytorchOutcome, PytorchRunner};
use stats::Summary;
use std::io::Write;
use std::path::PathBuf;

/// Options of a report run. [`Default`] gives the CLI's defaults (a sweep that takes
/// about ten seconds on a 2-core machine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportOptions {
    /// The folder that receives `timing.csv` (created if missing). Default `reports`.
    pub out: PathBuf,
    /// Sizes `n` of the square `n x n` weights of the weight-norm cases. Default 64, 256, 1024.
    pub sizes: Vec<u64>,
    /// Untimed iterations before the timed ones, per case and side. Default 20.
    pub warmup: u64,
    /// Timed iterations per case and side (at least 1). Default 200.
    pub samples: u64,
    /// Intra-op threads of both libtorch and PyTorch (at least 1). Default 1.
    pub threads: usize,
    /// The Python interpreter for the PyTorch side; `None` means
    /// [`pytorch::default_python`].
    pub python: Option<PathBuf>,
    /// Whether to time the PyTorch side at all (`--no-pytorch` turns it off). Default true.
    pub pytorch: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            out: PathBuf::from("reports"),
            sizes: vec![64, 256, 1024],
            warmup: 20,
            samples: 200,
            threads: 1,
            python: None,
            pytorch: true,
        }
    }
}

impl ReportOptions {
    /// Checks what the CLI's value parsers check, for callers that build options in code.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.samples >= 1, "samples must be at least 1, got {}", self.samples);
        ensure!(self.threads >= 1, "threads must be at least 1, got {}", self.threads);
        ensure!(self.sizes.iter().all(|&n| n >= 1), "sizes must be at least 1, got {:?}", self.sizes);
        Ok(())
    }
}

/// A comma-separated list of square weight sizes, as `--sizes` takes it (`64,256,1024`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeList(pub Vec<u64>);

impl std::str::FromStr for SizeList {
    type Err = String;

    /// Parses `64,256,1024`: at least one size, each an integer of at least 1.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let sizes = text
            .split(',')
            .map(|item| match item.trim().parse::<u64>() {
                Ok(0) => Err("a size must be at least 1, got 0".to_string()),
                Ok(n) => Ok(n),
                Err(_) => Err(format!("expected comma-separated sizes like 64,256,1024; '{}' is not a positive integer", item.trim())),
            })
            .collect::<std::result::Result<Vec<u64>, String>>()?;
        Ok(SizeList(sizes))
    }
}

impl std::fmt::Display for SizeList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<String> = self.0.iter().map(u64::to_string).collect();
        f.write_str(&items.join(","))
    }
}

/// One line of the report: a case and both sides' statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct TimingRow {
    /// The op and the weight's shape.
    pub case: Case,
    /// The weights' dtype (`f32`).
    pub dtype: &'static str,
    /// The device (`cpu`).
    pub device: String,
    /// Intra-op threads on both sides.
    pub threads: usize,
    /// Untimed iterations per side.
    pub warmup: u64,
    /// Timed iterations per side.
    pub samples: u64,
    /// The Rust side, once timed.
    pub rust: Option<Summary>,
    /// The PyTorch side, if it was timed.
    pub pytorch: Option<Summary>,
}

impl TimingRow {
    /// Rust's median over PyTorch's (below 1: Rust is faster), when both sides are timed.
    pub fn ratio_median_rust_over_pytorch(&self) -> Option<f64> {
        match (&self.rust, &self.pytorch) {
            (Some(rust), Some(pytorch)) if pytorch.median_us > 0.0 => Some(rust.median_us / pytorch.median_us),
            _ => None,
        }
    }
}

/// Runs the report: times every case on both sides, keeps `<out>/timing.csv` current,
/// reports progress on stderr, prints the summary table on stdout, and returns the rows.
///
/// Errors: invalid options, a failing Rust case, or an unwritable output folder. A missing
/// or failing PyTorch side is only a warning.
pub fn run(options: &ReportOptions) -> Result<Vec<TimingRow>> {
    options.validate()?;
    norm_tch::backend::set_num_threads(options.threads)?;
    let cases = cases::cases_for_sizes(&options.sizes);
    let mut exporter = CsvExporter::new(&options.out)?;
    let mut pytorch = start_pytorch(options);
    let mut rows: Vec<TimingRow> = Vec::with_capacity(cases.len());
    exporter.export(&rows)?;

    for (index, case) in cases.iter().enumerate() {
        rows.push(TimingRow {
            case: *case,
            dtype: "f32",
            device: cases::DEVICE_NAME.to_string(),
            threads: options.threads,
            warmup: options.warmup,
            samples: options.samples,
            rust: None,
            pytorch: None,
        });
        let row = rows.len() - 1;
        if let Some(runner) = pytorch.as_mut() {
            match runner.time_case(case, options.threads, options.warmup, options.samples) {
                Ok(PytorchOutcome::Timed(nanos)) => rows[row].pytorch = Some(Summary::from_nanos(&nanos)?),
                Ok(PytorchOutcome::Failed(message)) => {
                    eprintln!("warning: PyTorch could not time {} {}: {message}", case.op.name(), case.shape());
                }
                Err(e) => {
                    eprintln!("warning: the PyTorch side stopped: {e:#}; the remaining pytorch columns stay empty");
                    pytorch = None;
                }
            }
            if rows[row].pytorch.is_some() {
                exporter.export(&rows)?;
            }
        }
        let nanos = cases::time_rust(case, options.warmup, options.samples)?;
        rows[row].rust = Some(Summary::from_nanos(&nanos)?);
        exporter.export(&rows)?;
        eprintln!("[{}/{}] {}", index + 1, cases.len(), progress_line(&rows[row]));
    }

    let mut pytorch_label = None;
    if let Some(runner) = pytorch {
        if let Some(version) = runner.torch_version() {
            pytorch_label = Some(format!("torch {version} eager via {}", runner.python().display()));
        }
        if let Err(e) = runner.finish() {
            eprintln!("warning: {e:#}");
        }
    }
    let mut stdout = std::io::stdout().lock();
    write_summary(&mut stdout, &rows)?;
    writeln!(stdout, "pytorch side: {}", pytorch_label.as_deref().unwrap_or("none"))?;
    writeln!(stdout, "wrote {}", exporter.path().display())?;
    Ok(rows)
}

/// Starts the PyTorch side, or says on stderr why there is none.
fn start_pytorch(options: &ReportOptions) -> Option<PytorchRunner> {
    if !options.pytorch {
        eprintln!("warning: --no-pytorch: the pytorch columns stay empty");
        return None;
    }
    let python = options.python.clone().unwrap_or_else(pytorch::default_python);
    match PytorchRunner::start(&python) {
        Ok(runner) => {
            eprintln!("pytorch side: starting eager_timing.py with {}", runner.python().display());
            Some(runner)
        }
        Err(e) => {
            eprintln!("warning: no PyTorch side ({e:#}); the pytorch columns stay empty");
            None
        }
    }
}

fn micros_or_dash(summary: Option<&Summary>) -> String {
    summary.map_or_else(|| "-".to_string(), |s| format!("{:.1} us", s.median_us))
}

fn ratio_or_dash(row: &TimingRow) -> String {
    row.ratio_median_rust_over_pytorch().map_or_else(|| "-".to_string(), |r| format!("{r:.2}"))
}

/// `weight_norm_forward 1024x1024: rust 812.3 us, pytorch 845.1 us, ratio 0.96` (medians).
fn progress_line(row: &TimingRow) -> String {
    format!(
        "{} {}: rust {}, pytorch {}, ratio {}",
        row.case.op.name(),
        row.case.shape(),
        micros_or_dash(row.rust.as_ref()),
        micros_or_dash(row.pytorch.as_ref()),
        ratio_or_dash(row)
    )
}

/// The summary table: one line per case with both medians and their ratio.
pub fn write_summary(out: &mut impl Write, rows: &[TimingRow]) -> Result<()> {
    writeln!(out, "{:<30} {:>10} {:>16} {:>18} {:>13}", "op", "shape", "rust median", "pytorch median", "rust/pytorch")?;
    for row in rows {
        writeln!(
            out,
            "{:<30} {:>10} {:>16} {:>18} {:>13}",
            row.case.op.name(),
            row.case.shape(),
            micros_or_dash(row.rust.as_ref()),
            micros_or_dash(row.pytorch.as_ref()),
            ratio_or_dash(row)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_lists_parse_and_print_comma_separated() {
        let sizes: SizeList = "64,256, 1024".parse().unwrap();
        assert_eq!(sizes, SizeList(vec![64, 256, 1024]));
        assert_eq!(sizes.to_string(), "64,256,1024");
        assert!("64,0".parse::<SizeList>().unwrap_err().contains("at least 1"));
        assert!("64,abc".parse::<SizeList>().unwrap_err().contains("'abc'"));
        assert!("".parse::<SizeList>().is_err());
    }

    #[test]
    fn invalid_options_are_errors() {
        assert!(ReportOptions::default().validate().is_ok());
        assert!(ReportOptions { samples: 0, ..Default::default() }.validate().is_err());
        assert!(ReportOptions { sizes: vec![8, 0], ..Default::default() }.validate().is_err());
        assert!(ReportOptions { threads: 0, ..Default::default() }.validate().is_err());
    }
}
