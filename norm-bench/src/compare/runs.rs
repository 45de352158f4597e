//! One report folder as `norm-bench compare` reads it: the rows of its `timing.csv`
//! (docs/reports.md), keyed by what was timed ([`CaseKey`]), with the medians, the ratio
//! and its bootstrap interval. A folder without a readable `timing.csv`, a file without
//! the needed columns, or a cell that is not a number is an error that names the folder,
//! the file and the line.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The columns compare needs; `ratio_low` and `ratio_high` are read when present (reports
/// from before the intervals have none).
pub(crate) const REQUIRED_COLUMNS: [&str; 9] = [
    "op",
    "shape",
    "dtype",
    "device",
    "n_power_iterations",
    "threads",
    "rust_median_us",
    "pytorch_median_us",
    "ratio_median_rust_over_pytorch",
];

/// What a row timed: op, shape, dtype, device, power iterations and threads.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct CaseKey {
    /// `op`.
    pub(crate) op: String,
    /// `shape`.
    pub(crate) shape: String,
    /// `dtype`.
    pub(crate) dtype: String,
    /// `device`.
    pub(crate) device: String,
    /// `n_power_iterations` (empty for ops that do not iterate).
    pub(crate) k: String,
    /// `threads`.
    pub(crate) threads: String,
}

impl CaseKey {
    /// `spectral_norm_forward_train 1024x1024 f32 cpu k=1 t=1`.
    pub(crate) fn label(&self) -> String {
        let k = if self.k.is_empty() { String::new() } else { format!(" k={}", self.k) };
        format!("{} {} {} {}{k} t={}", self.op, self.shape, self.dtype, self.device, self.threads)
    }
}

/// A row's measurements (a cell left empty by the report is `None`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Measured {
    /// Rust's median, µs.
    pub(crate) rust_us: Option<f64>,
    /// PyTorch's median, µs.
    pub(crate) pytorch_us: Option<f64>,
    /// Rust / PyTorch.
    pub(crate) ratio: Option<f64>,
    /// The ratio's bootstrap interval `(low, high)`.
    pub(crate) interval: Option<(f64, f64)>,
}

/// A report folder's timing rows.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    /// The folder as given.
    pub(crate) dir: PathBuf,
    /// Its rows by case.
    pub(crate) rows: BTreeMap<CaseKey, Measured>,
}

/// A cell as a number: empty is `None`; anything else must be a finite number.
fn number(cell: &str, column: &str) -> Result<Option<f64>> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Ok(None);
    }
    match cell.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        _ => bail!("column {column}: '{cell}' is not a number"),
    }
}

impl Run {
    /// Reads `<dir>/timing.csv`.
    ///
    /// Errors: `dir` is not a folder, has no readable `timing.csv`, the file lacks a
    /// needed column, has a malformed line or cell, or names a case twice.
    pub(crate) fn read(dir: &Path) -> Result<Run> {
        if !dir.is_dir() {
            bail!("{}: not a report folder (no such directory)", dir.display());
        }
        let path = dir.join("timing.csv");
        let text = crate::limits::read_text_bounded(&path, crate::limits::MAX_SPEC_BYTES, "the timing table")
            .with_context(|| format!("{}: not a report folder (cannot read timing.csv)", dir.display()))?;
        Self::parse(dir, &text).with_context(|| format!("{} is malformed", path.display()))
    }

    /// Parses a `timing.csv`'s text (`dir` names the run).
    pub(crate) fn parse(dir: &Path, text: &str) -> Result<Run> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().context("no header line")?.clone();
        let column = |name: &str| header.iter().position(|h| h == name);
        let mut index = BTreeMap::new();
        for name in REQUIRED_COLUMNS {
            index.insert(name, column(name).with_context(|| format!("no column {name}"))?);
        }
        let (low, high) = (column("ratio_low"), column("ratio_high"));
        let mut rows = BTreeMap::new();
        for (line, record) in reader.records().enumerate() {
            let line = line + 2;
            let record = record.with_context(|| format!("line {line}"))?;
            let cell = |name: &str| record.get(index[name]).unwrap_or_default().to_string();
            let optional = |i: Option<usize>, name: &str| match i {
                Some(i) => number(record.get(i).unwrap_or_default(), name),
                None => Ok(None),
            };
            let key = CaseKey {
                op: cell("op"),
                shape: cell("shape"),
                dtype: cell("dtype"),
                device: cell("device"),
                k: cell("n_power_iterations"),
                threads: cell("threads"),
            };
            if key.op.is_empty() {
                bail!("line {line}: empty op");
            }
            let measured = (|| -> Result<Measured> {
                let interval = match (optional(low, "ratio_low")?, optional(high, "ratio_high")?) {
                    (Some(l), Some(h)) => Some((l, h)),
                    _ => None,
                };
                Ok(Measured {
                    rust_us: number(&cell("rust_median_us"), "rust_median_us")?,
                    pytorch_us: number(&cell("pytorch_median_us"), "pytorch_median_us")?,
                    ratio: number(&cell("ratio_median_rust_over_pytorch"), "ratio_median_rust_over_pytorch")?,
                    interval,
                })
            })()
            .with_context(|| format!("line {line}"))?;
            if rows.insert(key.clone(), measured).is_some() {
                bail!("line {line}: {} appears twice", key.label());
            }
        }
        Ok(Run { dir: dir.to_path_buf(), rows })
    }

    /// The run's name: the folder's last component (`reports/latest` resolved first).
    pub(crate) fn name(&self) -> String {
        let dir = std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
    }
}
