//! How every case moved from run A to run B ([`compare_runs`]), and the table of it as
//! markdown ([`markdown`]) and CSV ([`csv_text`], columns [`COMPARE_HEADER`]).
//!
//! Per case both runs have: `change = B / A` of the ratio and of each side's median.
//! The ratio's move is **beyond the intervals** when both runs have a bootstrap interval
//! and the two do not overlap. The [`Verdict`]: a `regression` is a ratio that grew by more
//! than the threshold (`ratio_B > threshold · ratio_A`) and, where both runs have
//! intervals, beyond them (`low_B > high_A`); an `improvement` the mirror image
//! (`ratio_B < ratio_A / threshold`, `high_B < low_A`); `moved` a move beyond the intervals
//! within the threshold; `same` anything else. Absolute times are shown, not judged: they
//! depend on the machine, the ratio much less.

use super::runs::{CaseKey, Measured, Run};
use anyhow::Result;
use std::fmt::Write as _;

/// The verdict on one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The ratio grew beyond the threshold (and the intervals).
    Regression,
    /// The ratio shrank beyond the threshold (and the intervals).
    Improvement,
    /// The intervals do not overlap, but the move is within the threshold.
    Moved,
    /// No move beyond the threshold or the intervals.
    Same,
    /// A ratio is missing in one run or both (a side not timed).
    NoRatio,
    /// The case is only in run A.
    OnlyInA,
    /// The case is only in run B.
    OnlyInB,
}

impl Verdict {
    /// The name in the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::Moved => "moved",
            Verdict::Same => "same",
            Verdict::NoRatio => "no ratio",
            Verdict::OnlyInA => "only in A",
            Verdict::OnlyInB => "only in B",
        }
    }
}

/// One case in both runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Moved {
    /// The case.
    pub(crate) key: CaseKey,
    /// Run A's measurements (default where the case is only in B).
    pub(crate) a: Measured,
    /// Run B's.
    pub(crate) b: Measured,
    /// Whether the ratio's intervals do not overlap.
    pub(crate) beyond_intervals: bool,
    /// The verdict.
    pub(crate) verdict: Verdict,
}

/// `b / a` when both exist and `a > 0`.
pub(crate) fn change(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    }
}

/// The verdict of a ratio that went from `a` to `b` (module doc).
pub(crate) fn verdict(a: &Measured, b: &Measured, threshold: f64) -> (bool, Verdict) {
    let (Some(ra), Some(rb)) = (a.ratio, b.ratio) else { return (false, Verdict::NoRatio) };
    let (up, down, beyond) = match (a.interval, b.interval) {
        (Some((al, ah)), Some((bl, bh))) => (bl > ah, bh < al, bl > ah || bh < al),
        _ => (true, true, false),
    };
    let v = if rb > threshold * ra && up {
        Verdict::Regression
    } else if rb * threshold < ra && down {
        Verdict::Improvement
    } else if beyond {
        Verdict::Moved
    } else {
        Verdict::Same
    };
    (beyond, v)
}

/// Every case of either run, in case order, with its verdict at `threshold`.
pub(crate) fn compare_runs(a: &Run, b: &Run, threshold: f64) -> Vec<Moved> {
    let mut keys: Vec<&CaseKey> = a.rows.keys().chain(b.rows.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let (ma, mb) = (a.rows.get(key), b.rows.get(key));
            let (beyond_intervals, verdict) = match (ma, mb) {
                (Some(ma), Some(mb)) => verdict(ma, mb, threshold),
                (Some(_), None) => (false, Verdict::OnlyInA),
                _ => (false, Verdict::OnlyInB),
            };
            Moved {
                key: key.clone(),
                a: ma.copied().unwrap_or_default(),
                b: mb.copied().unwrap_or_default(),
                beyond_intervals,
                verdict,
            }
        })
        .collect()
}

/// `compare.csv`'s header.
pub(crate) const COMPARE_HEADER: [&str; 21] = [
    "op",
    "shape",
    "dtype",
    "device",
    "n_power_iterations",
    "threads",
    "ratio_a",
    "ratio_a_low",
    "ratio_a_high",
    "ratio_b",
    "ratio_b_low",
    "ratio_b_high",
    "ratio_change",
    "rust_median_us_a",
    "rust_median_us_b",
    "rust_change",
    "pytorch_median_us_a",
    "pytorch_median_us_b",
    "pytorch_change",
    "beyond_intervals",
    "verdict",
];

fn cell(value: Option<f64>, digits: usize) -> String {
    value.map(|v| format!("{v:.digits$}")).unwrap_or_default()
}

/// `compare.csv`'s content.
pub(crate) fn csv_text(rows: &[Moved]) -> Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(COMPARE_HEADER)?;
    for m in rows {
        let k = &m.key;
        writer.write_record([
            k.op.clone(),
            k.shape.clone(),
            k.dtype.clone(),
            k.device.clone(),
            k.k.clone(),
            k.threads.clone(),
            cell(m.a.ratio, 4),
            cell(m.a.interval.map(|i| i.0), 4),
            cell(m.a.interval.map(|i| i.1), 4),
            cell(m.b.ratio, 4),
            cell(m.b.interval.map(|i| i.0), 4),
            cell(m.b.interval.map(|i| i.1), 4),
            cell(change(m.a.ratio, m.b.ratio), 4),
            cell(m.a.rust_us, 3),
            cell(m.b.rust_us, 3),
            cell(change(m.a.rust_us, m.b.rust_us), 4),
            cell(m.a.pytorch_us, 3),
            cell(m.b.pytorch_us, 3),
            cell(change(m.a.pytorch_us, m.b.pytorch_us), 4),
            m.beyond_intervals.to_string(),
            m.verdict.name().to_string(),
        ])?;
    }
    Ok(String::from_utf8(writer.into_inner().map_err(|e| e.into_error())?)?)
}

fn ratio_text(m: &Measured) -> String {
    match (m.ratio, m.interval) {
        (Some(r), Some((l, h))) => format!("{r:.2} [{l:.2}, {h:.2}]"),
        (Some(r), None) => format!("{r:.2}"),
        _ => "–".into(),
    }
}

fn change_text(change: Option<f64>) -> String {
    change.map(|c| format!("×{c:.2}")).unwrap_or_else(|| "–".into())
}

fn time_text(us: Option<f64>) -> String {
    us.map(crate::report::duration_text).unwrap_or_else(|| "–".into())
}

/// `compare.md`: the counts of each verdict, then one line per case.
pub(crate) fn markdown(a: &Run, b: &Run, rows: &[Moved], threshold: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# norm-bench compare\n");
    let _ = writeln!(out, "A: `{}` ({})  \nB: `{}` ({})\n", a.name(), a.dir.display(), b.name(), b.dir.display());
    let count = |v: Verdict| rows.iter().filter(|m| m.verdict == v).count();
    let _ = writeln!(
        out,
        "Threshold ×{threshold}: **{} regression(s)**, {} improvement(s), {} moved beyond the intervals within the threshold, \
         {} same, {} without a ratio, {} only in A, {} only in B.\n",
        count(Verdict::Regression),
        count(Verdict::Improvement),
        count(Verdict::Moved),
        count(Verdict::Same),
        count(Verdict::NoRatio),
        count(Verdict::OnlyInA),
        count(Verdict::OnlyInB)
    );
    out.push_str(
        "Ratio: Rust / PyTorch median [95 % bootstrap interval]; change: B / A. A regression is a ratio grown by more than \
         the threshold and beyond both intervals (docs/reports.md).\n\n",
    );
    out.push_str(
        "| case | ratio A | ratio B | change | Rust A | Rust B | change | PyTorch A | PyTorch B | change | verdict |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for m in rows {
        let verdict = match m.verdict {
            Verdict::Regression => "**regression**".to_string(),
            v => v.name().to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {verdict} |",
            m.key.label(),
            ratio_text(&m.a),
            ratio_text(&m.b),
            change_text(change(m.a.ratio, m.b.ratio)),
            time_text(m.a.rust_us),
            time_text(m.b.rust_us),
            change_text(change(m.a.rust_us, m.b.rust_us)),
            time_text(m.a.pytorch_us),
            time_text(m.b.pytorch_us),
            change_text(change(m.a.pytorch_us, m.b.pytorch_us)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ratio: f64, interval: Option<(f64, f64)>) -> Measured {
        Measured { rust_us: Some(ratio * 100.0), pytorch_us: Some(100.0), ratio: Some(ratio), interval }
    }

    #[test]
    fn verdicts_follow_the_threshold_and_the_intervals() {
        let t = 1.10;
        assert_eq!(verdict(&m(1.0, Some((0.95, 1.05))), &m(1.3, Some((1.2, 1.4))), t), (true, Verdict::Regression));
        // Grown beyond the threshold, but the intervals overlap: noise, not a regression.
        assert_eq!(verdict(&m(1.0, Some((0.8, 1.25))), &m(1.2, Some((1.0, 1.4))), t), (false, Verdict::Same));
        assert_eq!(verdict(&m(1.0, Some((0.98, 1.02))), &m(0.8, Some((0.78, 0.82))), t), (true, Verdict::Improvement));
        assert_eq!(verdict(&m(1.0, Some((0.99, 1.01))), &m(1.05, Some((1.04, 1.06))), t), (true, Verdict::Moved));
        // Without intervals the threshold alone decides.
        assert_eq!(verdict(&m(1.0, None), &m(1.11, None), t), (false, Verdict::Regression));
        assert_eq!(verdict(&m(1.0, None), &m(1.09, None), t), (false, Verdict::Same));
        let no_ratio = Measured { ratio: None, ..m(1.0, None) };
        assert_eq!(verdict(&no_ratio, &m(1.0, None), t).1, Verdict::NoRatio);
        assert_eq!(change(Some(2.0), Some(3.0)), Some(1.5));
        assert_eq!(change(Some(0.0), Some(3.0)), None);
    }
}
