//! The report's CSV files and the atomic writes that keep every file of a run current.
//!
//! Every file is rewritten whole after every finished piece of work: the content goes to
//! `<dir>/.<name>.tmp`, is flushed to disk, and is renamed over `<name>`, so an
//! interrupted run keeps everything it finished and readers never see a half-written
//! file. The columns are [`TIMING_HEADER`], [`CONVERGENCE_HEADER`] and [`LOSS_HEADER`];
//! `docs/reports.md` describes them.

use super::convergence::SigmaRow;
use super::operator_norm_rows::OperatorNormRow;
use super::results::{LossCurve, Side, TimingRow};
use super::stats::Summary;
use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// `timing.csv`'s header, in column order.
pub(crate) const TIMING_HEADER: [&str; 36] = [
    "op",
    "shape",
    "rows",
    "cols",
    "dtype",
    "device",
    "n_power_iterations",
    "threads",
    "rust_status",
    "rust_warmup",
    "rust_iterations_per_sample",
    "rust_samples",
    "rust_min_us",
    "rust_median_us",
    "rust_mean_us",
    "rust_max_us",
    "rust_stddev_us",
    "pytorch_status",
    "pytorch_warmup",
    "pytorch_iterations_per_sample",
    "pytorch_samples",
    "pytorch_min_us",
    "pytorch_median_us",
    "pytorch_mean_us",
    "pytorch_max_us",
    "pytorch_stddev_us",
    "ratio_median_rust_over_pytorch",
    "ratio_low",
    "ratio_high",
    "ratio_settled",
    "rounds",
    "bursts",
    "bytes_moved",
    "rust_bandwidth_gbps",
    "pytorch_bandwidth_gbps",
    "note",
];

/// `convergence.csv`'s header, in column order.
pub(crate) const CONVERGENCE_HEADER: [&str; 15] = [
    "matrix",
    "shape",
    "rows",
    "cols",
    "n_power_iterations",
    "sigma_estimate",
    "sigma_estimate_pytorch",
    "sigma_exact",
    "sigma2_over_sigma1",
    "rel_error",
    "rel_error_pytorch",
    "estimates_bit_equal",
    "bound",
    "rel_bound",
    "bound_covers_exact",
];

/// `operator_norm.csv`'s header, in column order.
pub(crate) const OPERATOR_NORM_HEADER: [&str; 10] = [
    "model",
    "layer",
    "kind",
    "input_size",
    "sigma_reshaped",
    "sigma_operator",
    "ratio",
    "iterations",
    "bound",
    "converged",
];

/// `loss.csv`'s header, in column order.
pub(crate) const LOSS_HEADER: [&str; 4] = ["run", "step", "loss_rust", "loss_pytorch"];

/// Writes `contents` to `path` atomically: `.<name>.tmp` beside it, flushed, renamed over it.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let name =
        path.file_name().and_then(|n| n.to_str()).with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

fn csv_text<const N: usize>(header: [&str; N], records: impl IntoIterator<Item = Vec<String>>) -> Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for record in records {
        writer.write_record(&record)?;
    }
    Ok(String::from_utf8(writer.into_inner().map_err(|e| e.into_error())?)?)
}

/// Microseconds with nanosecond resolution.
fn micros(value: f64) -> String {
    format!("{value:.3}")
}

/// The status, counts and five statistics of one side; empty cells when it has no timing.
fn side_fields(side: &Side) -> [String; 9] {
    match side {
        Side::Timed { warmup, iterations_per_sample, summary, samples } => {
            let Summary { min_us, median_us, mean_us, max_us, stddev_us } = *summary;
            [
                side.status().into(),
                warmup.to_string(),
                iterations_per_sample.to_string(),
                samples.to_string(),
                micros(min_us),
                micros(median_us),
                micros(mean_us),
                micros(max_us),
                micros(stddev_us),
            ]
        }
        _ => std::array::from_fn(|i| if i == 0 { side.status().into() } else { String::new() }),
    }
}

fn optional(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map(format).unwrap_or_default()
}

/// One `timing.csv` record, in [`TIMING_HEADER`]'s order; `settle_width` decides `ratio_settled`.
pub(crate) fn timing_record(row: &TimingRow, settle_width: f64) -> Vec<String> {
    let case = &row.case;
    let mut record = vec![
        case.op.name().to_string(),
        case.shape().to_string(),
        case.rows.to_string(),
        case.cols.to_string(),
        case.dtype.name().to_string(),
        case.device.name().to_string(),
        case.n_power_iterations.map(|k| k.to_string()).unwrap_or_default(),
        row.threads.to_string(),
    ];
    record.extend(side_fields(&row.rust));
    record.extend(side_fields(&row.pytorch));
    record.push(optional(row.ratio(), |r| format!("{r:.4}")));
    record.push(optional(row.interval.map(|i| i.low), |r| format!("{r:.4}")));
    record.push(optional(row.interval.map(|i| i.high), |r| format!("{r:.4}")));
    record.push(row.settled(settle_width).map(|s| s.to_string()).unwrap_or_default());
    record.push(row.rounds.to_string());
    record.push(row.bursts.to_string());
    record.push(case.bytes_moved().map(|b| b.to_string()).unwrap_or_default());
    record.push(optional(row.bandwidth_gbps(&row.rust), |b| format!("{b:.3}")));
    record.push(optional(row.bandwidth_gbps(&row.pytorch), |b| format!("{b:.3}")));
    record.push(row.note());
    record
}

/// `timing.csv`'s content.
pub(crate) fn timing_csv(rows: &[TimingRow], settle_width: f64) -> Result<String> {
    csv_text(TIMING_HEADER, rows.iter().map(|row| timing_record(row, settle_width)))
}

/// A float32 value (carried as f64) in its shortest round-trip form.
fn f32_text(value: f64) -> String {
    format!("{}", value as f32)
}

/// `convergence.csv`'s content.
pub(crate) fn convergence_csv(rows: &[SigmaRow]) -> Result<String> {
    csv_text(
        CONVERGENCE_HEADER,
        rows.iter().map(|r| {
            vec![
                r.matrix.name().to_string(),
                format!("{}x{}", r.rows, r.cols),
                r.rows.to_string(),
                r.cols.to_string(),
                r.n_power_iterations.to_string(),
                f32_text(r.sigma_estimate),
                optional(r.sigma_estimate_pytorch, f32_text),
                format!("{}", r.sigma_exact),
                format!("{:.6}", r.gap),
                format!("{:.3e}", r.rel_error()),
                optional(r.sigma_estimate_pytorch, |p| {
                    format!("{:.3e}", super::convergence::relative_error(p, r.sigma_exact))
                }),
                r.sigma_estimate_pytorch.map(|p| (p == r.sigma_estimate).to_string()).unwrap_or_default(),
                format!("{:.3e}", r.bound),
                format!("{:.3e}", r.rel_bound()),
                r.bound_covers_exact().to_string(),
            ]
        }),
    )
}

/// `operator_norm.csv`'s content; `input_size` is written `16x16` (`1024`; empty for a Linear).
pub(crate) fn operator_norm_csv(rows: &[OperatorNormRow]) -> Result<String> {
    csv_text(
        OPERATOR_NORM_HEADER,
        rows.iter().map(|r| {
            let size: Vec<String> = r.input_size.iter().map(i64::to_string).collect();
            vec![
                r.model.name().to_string(),
                r.layer.clone(),
                r.kind.to_string(),
                size.join("x"),
                format!("{}", r.sigma_reshaped),
                format!("{}", r.sigma_operator),
                format!("{:.6}", r.ratio()),
                r.iterations.to_string(),
                format!("{:.3e}", r.bound),
                r.converged.to_string(),
            ]
        }),
    )
}

/// `loss.csv`'s content: one record per run and step (1-based), a side's cell empty
/// where it has no value.
pub(crate) fn loss_csv(curves: &[LossCurve]) -> Result<String> {
    let mut records = Vec::new();
    for curve in curves {
        let rust = curve.rust.as_deref().unwrap_or_default();
        let pytorch = curve.pytorch.as_deref().unwrap_or_default();
        for step in 0..rust.len().max(pytorch.len()) {
            records.push(vec![
                curve.run.name().to_string(),
                (step + 1).to_string(),
                rust.get(step).map(|&l| format!("{l}")).unwrap_or_default(),
                pytorch.get(step).map(|&l| format!("{l}")).unwrap_or_default(),
            ]);
        }
    }
    csv_text(LOSS_HEADER, records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::case::{Case, DType, Shape};
    use crate::report::convergence::{LossRun, MatrixKind};
    use crate::report::interval::Interval;
    use crate::report::ops::Op;

    fn timed(us: f64) -> Side {
        Side::Timed {
            warmup: 2,
            iterations_per_sample: 1,
            samples: 2,
            summary: Summary::from_micros(&[us, us]).unwrap(),
        }
    }

    fn row(op: Op, n: u64, rust: Side, pytorch: Side) -> TimingRow {
        TimingRow {
            case: Case::cpu_f32(op, Shape::square(n)),
            threads: 1,
            rust,
            pytorch,
            interval: None,
            rounds: 2,
            bursts: 16,
            loss_check: None,
        }
    }

    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("norm-bench-export-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn timing_csv_schema() {
        let batched = Side::Timed {
            warmup: 40,
            iterations_per_sample: 7,
            samples: 2,
            summary: Summary::from_micros(&[4.0, 4.0]).unwrap(),
        };
        let mut with_interval = row(Op::WeightNormForward, 64, timed(2.0), batched);
        with_interval.interval = Some(Interval { low: 0.45, high: 0.52 });
        let text = timing_csv(
            &[
                with_interval,
                row(Op::SpectralNormForwardEval, 64, timed(3.0), Side::Skipped),
                row(Op::Copy, 8, Side::Pending, Side::Error("RuntimeError: boom".into())),
            ],
            0.10,
        )
        .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "op,shape,rows,cols,dtype,device,n_power_iterations,threads,\
             rust_status,rust_warmup,rust_iterations_per_sample,rust_samples,rust_min_us,rust_median_us,rust_mean_us,rust_max_us,rust_stddev_us,\
             pytorch_status,pytorch_warmup,pytorch_iterations_per_sample,pytorch_samples,pytorch_min_us,pytorch_median_us,pytorch_mean_us,pytorch_max_us,pytorch_stddev_us,\
             ratio_median_rust_over_pytorch,ratio_low,ratio_high,ratio_settled,rounds,bursts,bytes_moved,rust_bandwidth_gbps,pytorch_bandwidth_gbps,note"
        );
        // 64x64 f32: 2 * 4096 * 4 = 32768 bytes; in 2 us that is 16.384 GB/s.
        assert_eq!(
            lines[1],
            "weight_norm_forward,64x64,64,64,f32,cpu,,1,ok,2,1,2,2.000,2.000,2.000,2.000,0.000,ok,40,7,2,4.000,4.000,4.000,4.000,0.000,0.5000,0.4500,0.5200,false,2,16,32768,16.384,8.192,"
        );
        assert_eq!(lines[2], "spectral_norm_forward_eval,64x64,64,64,f32,cpu,,1,ok,2,1,2,3.000,3.000,3.000,3.000,0.000,skipped,,,,,,,,,,,,,2,16,,,,");
        assert_eq!(
            lines[3],
            "copy,8x8,8,8,f32,cpu,,1,pending,,,,,,,,,error,,,,,,,,,,,,,2,16,512,,,pytorch: RuntimeError: boom"
        );
        let out = timing_csv(&[row(Op::WeightNormForwardOut, 64, timed(1.0), timed(4.0))], 0.10).unwrap();
        assert!(
            out.lines().nth(1).unwrap().starts_with("weight_norm_forward_out,64x64,")
                && out.contains(",0.2500,,,,2,16,32768,32.768,8.192,"),
            "{out}"
        );
        assert!(lines.iter().all(|l| l.split(',').count() == TIMING_HEADER.len()));
    }

    #[test]
    fn non_f32_failures_are_unsupported() {
        let mut r = row(Op::WeightNormForward, 8, Side::failed(DType::F16, "no kernel".into()), timed(1.0));
        r.case.dtype = DType::F16;
        assert_eq!(r.rust.status(), "unsupported");
        assert_eq!(Side::failed(DType::F32, "x".into()).status(), "error");
        let line = timing_csv(&[r], 0.10).unwrap();
        assert!(line.lines().nth(1).unwrap().ends_with(",rust: no kernel"), "{line}");
    }

    #[test]
    fn convergence_and_loss_csv_schemas() {
        let sigma = SigmaRow {
            matrix: MatrixKind::Random,
            rows: 4,
            cols: 8,
            n_power_iterations: 5,
            sigma_estimate: 2.5f32 as f64,
            bound: 0.625,
            sigma_estimate_pytorch: Some(2.5f32 as f64),
            sigma_exact: 3.0,
            gap: 0.5,
        };
        let text = convergence_csv(&[sigma]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "matrix,shape,rows,cols,n_power_iterations,sigma_estimate,sigma_estimate_pytorch,sigma_exact,sigma2_over_sigma1,rel_error,rel_error_pytorch,estimates_bit_equal,bound,rel_bound,bound_covers_exact");
        // |σ − σ₁| = 0.5 ≤ bound 0.625: covered; bound / σ = 0.25.
        assert_eq!(lines[1], "random,4x8,4,8,5,2.5,2.5,3,0.500000,1.667e-1,1.667e-1,true,6.250e-1,2.500e-1,true");

        let curves =
            [LossCurve { run: LossRun::SeedWeightNorm, rust: Some(vec![1.5, 0.25]), pytorch: Some(vec![1.5]) }];
        let text = loss_csv(&curves).unwrap();
        assert_eq!(text, "run,step,loss_rust,loss_pytorch\nseed_weight_norm,1,1.5,1.5\nseed_weight_norm,2,0.25,\n");
    }

    #[test]
    fn operator_norm_csv_schema() {
        use crate::report::operator_norm_rows::{OperatorNormModel, OperatorNormRow};
        let row = |model, layer: &str, kind, input_size: Vec<i64>| OperatorNormRow {
            model,
            layer: layer.into(),
            kind,
            input_size,
            sigma_reshaped: 0.5,
            sigma_operator: 0.75,
            iterations: 12,
            bound: 2.5e-5,
            converged: true,
        };
        let rows = [
            row(OperatorNormModel::SnDiscriminator, "convs.0", "Conv2d", vec![16, 16]),
            row(OperatorNormModel::SnDiscriminator, "fc", "Linear", vec![]),
            row(OperatorNormModel::Hifigan, "ups.0", "ConvTranspose1d", vec![64]),
        ];
        let text = operator_norm_csv(&rows).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "model,layer,kind,input_size,sigma_reshaped,sigma_operator,ratio,iterations,bound,converged"
        );
        assert_eq!(lines[1], "sn_discriminator,convs.0,Conv2d,16x16,0.5,0.75,1.500000,12,2.500e-5,true");
        assert_eq!(lines[2], "sn_discriminator,fc,Linear,,0.5,0.75,1.500000,12,2.500e-5,true");
        assert_eq!(lines[3], "hifigan,ups.0,ConvTranspose1d,64,0.5,0.75,1.500000,12,2.500e-5,true");
    }

    #[test]
    fn files_are_replaced_atomically() {
        let dir = scratch_dir("atomic");
        let path = dir.join("timing.csv");
        fs::write(dir.join(".timing.csv.tmp"), "half a row").unwrap();
        write_atomic(&path, b"first\n").unwrap();
        write_atomic(&path, b"second\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second\n");
        let names: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["timing.csv"], "the temporary file was renamed, not copied");
        fs::remove_dir_all(&dir).unwrap();
    }
}
