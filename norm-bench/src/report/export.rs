//! Writing the report's table: the [`TimingExporter`] trait and [`CsvExporter`], which
//! keeps `<out>/timing.csv` up to date.
//!
//! The CSV is rewritten whole after every finished case: the table goes to
//! `<out>/.timing.csv.tmp`, is flushed to disk, and is renamed over `timing.csv`, so an
//! interrupted run keeps every case it finished and readers never see a half-written
//! file. The columns are [`CSV_HEADER`]; `docs/reports.md` describes them.

use super::stats::Summary;
use super::TimingRow;
use anyhow::{Context, Result};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// The CSV's header, in column order.
pub const CSV_HEADER: [&str; 18] = [
    "op",
    "shape",
    "dtype",
    "device",
    "threads",
    "warmup",
    "samples",
    "rust_min_us",
    "rust_median_us",
    "rust_mean_us",
    "rust_max_us",
    "rust_stddev_us",
    "pytorch_min_us",
    "pytorch_median_us",
    "pytorch_mean_us",
    "pytorch_max_us",
    "pytorch_stddev_us",
    "ratio_median_rust_over_pytorch",
];

/// The name of the CSV file inside the output folder.
pub const CSV_FILE_NAME: &str = "timing.csv";

/// A destination for the report's table.
pub trait TimingExporter {
    /// Writes the complete table `rows` (every case so far), replacing the previous one.
    fn export(&mut self, rows: &[TimingRow]) -> Result<()>;
}

/// Writes `<dir>/timing.csv` atomically (temporary file, then rename).
#[derive(Debug)]
pub struct CsvExporter {
    path: PathBuf,
    tmp_path: PathBuf,
}

impl CsvExporter {
    /// An exporter into `dir`, which is created if missing.
    pub fn new(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("creating the output folder {}", dir.display()))?;
        Ok(CsvExporter { path: dir.join(CSV_FILE_NAME), tmp_path: dir.join(format!(".{CSV_FILE_NAME}.tmp")) })
    }

    /// The CSV's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_tmp(&self, rows: &[TimingRow]) -> Result<()> {
        let file = File::create(&self.tmp_path)?;
        let mut writer = csv::Writer::from_writer(file);
        writer.write_record(CSV_HEADER)?;
        for row in rows {
            writer.write_record(csv_record(row))?;
        }
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    }
}

impl TimingExporter for CsvExporter {
    fn export(&mut self, rows: &[TimingRow]) -> Result<()> {
        self.write_tmp(rows).with_context(|| format!("writing {}", self.tmp_path.display()))?;
        fs::rename(&self.tmp_path, &self.path).with_context(|| format!("renaming {} to {}", self.tmp_path.display(), self.path.display()))
    }
}

/// Microseconds with nanosecond resolution.
fn micros(value: f64) -> String {
    format!("{value:.3}")
}

/// The five statistics columns of one side, empty when that side has no timing.
fn summary_fields(summary: Option<&Summary>) -> [String; 5] {
    match summary {
        Some(s) => [micros(s.min_us), micros(s.median_us), micros(s.mean_us), micros(s.max_us), micros(s.stddev_us)],
        None => Default::default(),
    }
}

/// One CSV record, in [`CSV_HEADER`]'s order.
fn csv_record(row: &TimingRow) -> Vec<String> {
    let mut record = vec![
        row.case.op.name().to_string(),
        row.case.shape(),
        row.dtype.to_string(),
        row.device.clone(),
        row.threads.to_string(),
        row.warmup.to_string(),
        row.samples.to_string(),
    ];
    record.extend(summary_fields(row.rust.as_ref()));
    record.extend(summary_fields(row.pytorch.as_ref()));
    record.push(row.ratio_median_rust_over_pytorch().map(|r| format!("{r:.4}")).unwrap_or_default());
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::cases::{Case, Op};

    fn row(op: Op, n: u64, rust_us: f64, pytorch_us: Option<f64>) -> TimingRow {
        let summary = |us: f64| Summary::from_micros(&[us, us]).unwrap();
        TimingRow {
            case: Case { op, rows: n, cols: n },
            dtype: "f32",
            device: "cpu".into(),
            threads: 1,
            warmup: 2,
            samples: 2,
            rust: Some(summary(rust_us)),
            pytorch: pytorch_us.map(summary),
        }
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("norm-bench-export-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn csv_is_rewritten_whole_and_renamed_into_place() {
        let dir = scratch_dir("rewrite");
        let mut exporter = CsvExporter::new(&dir).unwrap();
        assert_eq!(exporter.path(), dir.join("timing.csv"));

        exporter.export(&[row(Op::WeightNormForward, 64, 2.0, None)]).unwrap();
        let first = fs::read_to_string(exporter.path()).unwrap();
        let lines: Vec<&str> = first.lines().collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert_eq!(
            lines[0],
            "op,shape,dtype,device,threads,warmup,samples,rust_min_us,rust_median_us,rust_mean_us,rust_max_us,rust_stddev_us,\
             pytorch_min_us,pytorch_median_us,pytorch_mean_us,pytorch_max_us,pytorch_stddev_us,ratio_median_rust_over_pytorch"
        );
        assert_eq!(lines[1], "weight_norm_forward,64x64,f32,cpu,1,2,2,2.000,2.000,2.000,2.000,0.000,,,,,,");
        assert_eq!(lines.len(), 2);

        // The second export replaces the file: the first row gains its PyTorch columns.
        let rows = [row(Op::WeightNormForward, 64, 2.0, Some(4.0)), row(Op::WeightNormForwardBackward, 64, 3.0, Some(3.0))];
        exporter.export(&rows).unwrap();
        let second = fs::read_to_string(exporter.path()).unwrap();
        let lines: Vec<&str> = second.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], "weight_norm_forward,64x64,f32,cpu,1,2,2,2.000,2.000,2.000,2.000,0.000,4.000,4.000,4.000,4.000,0.000,0.5000");
        assert!(lines[2].starts_with("weight_norm_forward_backward,64x64,") && lines[2].ends_with(",1.0000"), "{}", lines[2]);

        // Only timing.csv is left: the temporary file was renamed, not copied.
        let mut names: Vec<String> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["timing.csv"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stale_temporary_file_is_replaced() {
        let dir = scratch_dir("stale");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(".timing.csv.tmp"), "half a row").unwrap();
        let mut exporter = CsvExporter::new(&dir).unwrap();
        exporter.export(&[]).unwrap();
        assert_eq!(fs::read_to_string(exporter.path()).unwrap(), format!("{}\n", CSV_HEADER.join(",")));
        assert!(!dir.join(".timing.csv.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
