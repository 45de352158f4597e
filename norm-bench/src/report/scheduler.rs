//! The timing cases, start to end: each case's base rounds ([`time_case`]), then extra
//! rounds for the cases whose ratio is not settled ([`extra_rounds`]). A round is a fresh
//! setup of both sides whose bursts then alternate (PyTorch's, then Rust's, until both
//! sides' round is over: [`sampling`](super::sampling)); the samples are pooled per side
//! and the ratio's interval over the paired bursts ([`interval`](super::interval)) is
//! recomputed after every round. The whole-model rows' loss check runs after their base
//! rounds. The two processes never run at once: each waits while the other's burst runs.

use super::case::Case;
use super::interval;
use super::model_rows::{self, LOSS_CHECK_STEPS};
use super::ops::Op;
use super::options::ReportOptions;
use super::progress::{case_cost, Progress};
use super::pytorch::{Outcome, PytorchRunner};
use super::results::{Side, TimingRow};
use super::rust_side;
use super::sampling::{Sampling, Session, Timed};
use super::state::Report;
use super::summary;
use anyhow::Result;
use std::time::{Duration, Instant};

/// A timed case, kept for its extra rounds: its row of the report and both sides' pools.
pub(crate) struct CaseRun {
    row: usize,
    pytorch_pool: Pool,
    rust_pool: Pool,
    extra_done: u64,
    /// How long its last round took.
    last_round: Duration,
}

/// A side's samples of one case: pooled over its rounds, and where each burst ends in the
/// pool (a burst pair where the side took nothing ends where the one before it did).
#[derive(Default)]
struct Pool {
    timed: Option<Timed>,
    burst_ends: Vec<usize>,
}

impl Pool {
    /// Samples pooled so far.
    fn len(&self) -> usize {
        self.timed.as_ref().map_or(0, |t| t.nanos.len())
    }

    /// Adds a round's samples; returns the side as it stands after it.
    fn add(&mut self, round: Timed) -> Result<Side> {
        let pooled = match &mut self.timed {
            Some(p) => {
                p.pool(round);
                p
            }
            None => self.timed.insert(round),
        };
        Side::from_timed(pooled)
    }

    /// The pool cut into its bursts.
    fn bursts(&self) -> Vec<&[u64]> {
        bursts_of(self.timed.as_ref().map_or(&[], |t| &t.nanos), &self.burst_ends)
    }
}

/// Times one case's base rounds (the options' `rounds`), runs a whole-model row's loss
/// check, and prints its progress line; returns the case's run for [`extra_rounds`].
pub(crate) fn time_case(
    report: &mut Report,
    pytorch: &mut Option<PytorchRunner>,
    case: &Case,
    options: &ReportOptions,
    progress: &mut Progress,
) -> Result<CaseRun> {
    report.timing.push(TimingRow {
        case: *case,
        threads: options.threads,
        rust: Side::Pending,
        pytorch: if pytorch.is_some() { Side::Pending } else { Side::Skipped },
        interval: None,
        rounds: 0,
        bursts: 0,
        loss_check: None,
    });
    let mut run = CaseRun {
        row: report.timing.len() - 1,
        pytorch_pool: Pool::default(),
        rust_pool: Pool::default(),
        extra_done: 0,
        last_round: Duration::ZERO,
    };
    let round_sampling = options.sampling.per_round();
    for _ in 0..options.sampling.rounds.max(1) {
        timed_round(report, pytorch, &mut run, &round_sampling)?;
    }
    if matches!(case.op, Op::HifiganTrainStep | Op::SnDiscriminatorTrainStep) {
        loss_check(report, pytorch, case, run.row)?;
    }
    if let Side::Error(message) = &report.timing[run.row].rust {
        let message = format!("Rust failed on {}: {message}", case.label());
        report.warn(message);
    }
    report.timing_done += 1;
    report.write_all()?;
    progress.step(case_cost(case, &options.sampling), &row_text(&report.timing[run.row]));
    Ok(run)
}

/// Extra rounds, after every case's base rounds, while `extra_rounds_budget_s` lasts: one
/// round at a time, each to the case that looks cheapest to settle ([`next_extra`]), at most
/// `extra_rounds` per case. Coming back to a case later, rather than right after its base
/// rounds, also spreads its rounds over more of the machine's moods.
pub(crate) fn extra_rounds(
    report: &mut Report,
    pytorch: &mut Option<PytorchRunner>,
    runs: &mut [CaseRun],
    options: &ReportOptions,
) -> Result<()> {
    let budget = Duration::from_secs(options.extra_rounds_budget_s);
    let started = Instant::now();
    let round_sampling = options.sampling.per_round();
    while let Some(i) = next_extra(&report.timing, runs, options.extra_rounds, options.settle_width) {
        if started.elapsed() >= budget {
            eprintln!("extra rounds: the budget of {} s is spent", options.extra_rounds_budget_s);
            break;
        }
        timed_round(report, pytorch, &mut runs[i], &round_sampling)?;
        runs[i].extra_done += 1;
        eprintln!("extra round {} | {}", runs[i].extra_done, row_text(&report.timing[runs[i].row]));
    }
    Ok(())
}

/// The case that gets the next extra round: among those whose ratio has an interval wider
/// than `settle_width` and that have had fewer than `per_case` extra rounds, the one with the
/// fewest expected seconds to settle. An interval narrows about as one over the square root
/// of the rounds, so a case of `r` rounds and relative width `w` is expected to need
/// `max(1, ceil(r · (w / settle_width)²) − r)` more rounds, each as long as its last one.
/// The budget thus goes first where it settles the most ratios, and a case whose rounds
/// disagree wildly does not eat it.
fn next_extra(rows: &[TimingRow], runs: &[CaseRun], per_case: u64, settle_width: f64) -> Option<usize> {
    let expected_seconds = |run: &CaseRun| -> Option<f64> {
        let row = &rows[run.row];
        if run.extra_done >= per_case || row.settled(settle_width) != Some(false) {
            return None;
        }
        let width = row.interval?.relative_width(row.ratio()?);
        let rounds = row.rounds.max(1) as f64;
        // (less a hair, so that a product that is whole but for rounding does not count one more)
        let more = ((rounds * (width / settle_width).powi(2) - 1e-9).ceil() - rounds).max(1.0);
        Some(more * run.last_round.as_secs_f64())
    };
    (0..runs.len())
        .filter_map(|i| Some((i, expected_seconds(&runs[i])?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// One round of a case, then its row's rounds, burst pairs and interval updated and the
/// files rewritten.
fn timed_round(
    report: &mut Report,
    pytorch: &mut Option<PytorchRunner>,
    run: &mut CaseRun,
    sampling: &Sampling,
) -> Result<()> {
    let started = Instant::now();
    let case = report.timing[run.row].case;
    round(report, pytorch, &case, run.row, sampling, &mut run.pytorch_pool, &mut run.rust_pool)?;
    run.last_round = started.elapsed();
    let r = &mut report.timing[run.row];
    r.rounds += 1;
    r.bursts = run.rust_pool.burst_ends.len() as u64;
    r.interval = match r.ratio() {
        Some(_) => interval::paired_bursts_interval(&run.rust_pool.bursts(), &run.pytorch_pool.bursts()),
        None => None,
    };
    report.write_all()
}

/// A row's progress text: `<case>: rust <median>, pytorch <median>, ratio 0.50 [0.48, 0.52], 2 rounds, 30 bursts`.
fn row_text(r: &TimingRow) -> String {
    let ratio = match (r.ratio(), r.interval) {
        (Some(x), Some(i)) => format!("{x:.2} [{:.2}, {:.2}], {} rounds, {} bursts", i.low, i.high, r.rounds, r.bursts),
        (Some(x), None) => format!("{x:.2}"),
        _ => "–".into(),
    };
    format!("{}: rust {}, pytorch {}, ratio {ratio}", r.case.label(), median_text(&r.rust), median_text(&r.pytorch))
}

/// Whether a side is still timed for this case (not failed, not skipped).
fn wanted(side: &Side) -> bool {
    matches!(side, Side::Pending | Side::Timed { .. })
}

/// One round of `case` under the round's rule `sampling`: both sides set up and warmed up
/// (PyTorch first), then their bursts alternate until both sides' round is over; each
/// side's samples are then added to its pool. A side that fails is recorded as failed, a
/// PyTorch script that stops answering is dropped (`pytorch` becomes `None`) with a warning.
fn round(
    report: &mut Report,
    pytorch: &mut Option<PytorchRunner>,
    case: &Case,
    row: usize,
    sampling: &Sampling,
    pytorch_pool: &mut Pool,
    rust_pool: &mut Pool,
) -> Result<()> {
    let mut pytorch_round = None::<Timed>;
    if let (Some(runner), true) = (pytorch.as_mut(), wanted(&report.timing[row].pytorch)) {
        match runner.open(case, sampling) {
            Ok(Outcome::Done((warmup, iterations_per_sample))) => {
                pytorch_round = Some(Timed { warmup, iterations_per_sample, nanos: Vec::new() })
            }
            Ok(Outcome::Failed(message)) => pytorch_failed(report, case, row, message),
            Err(e) => pytorch_stopped(report, pytorch, case, row, e),
        }
    }
    let mut rust_session = None::<Session>;
    if wanted(&report.timing[row].rust) {
        match rust_side::open(case).and_then(|body| Session::warm_up(body, sampling)) {
            Ok(session) => rust_session = Some(session),
            Err(e) => rust_failed(report, case, row, e),
        }
    }
    let (mut pytorch_spent, mut rust_spent) = (Duration::ZERO, Duration::ZERO);
    let (pytorch_start, rust_start) = (pytorch_pool.len(), rust_pool.len());
    loop {
        let pytorch_rule =
            pytorch_round.as_ref().and_then(|t| sampling.next_burst(t.nanos.len() as u64, pytorch_spent));
        let rust_rule = rust_session.as_ref().and_then(|s| sampling.next_burst(s.samples(), rust_spent));
        if pytorch_rule.is_none() && rust_rule.is_none() {
            break;
        }
        if let (Some(rule), Some(timed)) = (pytorch_rule, pytorch_round.as_mut()) {
            match pytorch.as_mut().map(|runner| runner.burst(&rule)) {
                Some(Ok(Outcome::Done((nanos, lasted)))) => {
                    timed.nanos.extend(nanos);
                    pytorch_spent += lasted;
                }
                Some(Ok(Outcome::Failed(message))) => {
                    pytorch_round = None;
                    pytorch_failed(report, case, row, message);
                }
                Some(Err(e)) => {
                    pytorch_round = None;
                    pytorch_stopped(report, pytorch, case, row, e);
                }
                None => pytorch_round = None,
            }
        }
        if let (Some(rule), Some(session)) = (rust_rule, rust_session.as_mut()) {
            match session.burst(&rule) {
                Ok((_, lasted)) => rust_spent += lasted,
                Err(e) => {
                    rust_session = None;
                    rust_failed(report, case, row, e.context(format!("timing {} in Rust", case.label())));
                }
            }
        }
        pytorch_pool.burst_ends.push(pytorch_start + pytorch_round.as_ref().map_or(0, |t| t.nanos.len()));
        rust_pool.burst_ends.push(rust_start + rust_session.as_ref().map_or(0, |s| s.samples() as usize));
    }
    if let Some(runner) = pytorch.as_mut() {
        match runner.close() {
            // The re-warm-ups count as warm-up, as on the Rust side (Session::finish).
            Ok(Some(untimed)) => pytorch_round.iter_mut().for_each(|timed| timed.warmup = untimed),
            Ok(None) => {}
            Err(e) => {
                pytorch_stopped(report, pytorch, case, row, e);
                pytorch_round = None;
            }
        }
    }
    if let Some(timed) = pytorch_round {
        report.timing[row].pytorch = pytorch_pool.add(timed)?;
    }
    if let Some(session) = rust_session {
        report.timing[row].rust = rust_pool.add(session.finish())?;
    }
    Ok(())
}

fn pytorch_failed(report: &mut Report, case: &Case, row: usize, message: String) {
    eprintln!("note: PyTorch could not run {}: {message}", case.label());
    report.timing[row].pytorch = Side::failed(case.dtype, message);
}

fn pytorch_stopped(
    report: &mut Report,
    pytorch: &mut Option<PytorchRunner>,
    case: &Case,
    row: usize,
    e: anyhow::Error,
) {
    report
        .warn(format!("the PyTorch side stopped at {}: {e:#}; the remaining PyTorch columns stay empty", case.label()));
    *pytorch = None;
    report.timing[row].pytorch = Side::Skipped;
}

fn rust_failed(report: &mut Report, case: &Case, row: usize, e: anyhow::Error) {
    eprintln!("note: Rust could not run {}: {e:#}", case.label());
    report.timing[row].rust = Side::failed(case.dtype, format!("{e:#}"));
}

/// A whole-model training row's loss check: [`LOSS_CHECK_STEPS`] steps on both sides from
/// the case's setup, their losses compared bit for bit; a difference (or a side that
/// cannot run it) is a warning in the summary, and the row's note says so either way.
fn loss_check(report: &mut Report, pytorch: &mut Option<PytorchRunner>, case: &Case, row: usize) -> Result<()> {
    let Some(runner) = pytorch.as_mut() else { return Ok(()) };
    let rust = match model_rows::rust_losses(case) {
        Ok(losses) => losses,
        Err(e) => {
            report.warn(format!("{}: Rust's loss check failed: {e:#}", case.label()));
            return Ok(());
        }
    };
    let check = match runner.model_losses(case, LOSS_CHECK_STEPS)? {
        Outcome::Done(theirs) => model_rows::loss_verdict(&rust, &theirs),
        Outcome::Failed(message) => (false, format!("PyTorch's loss check failed: {message}")),
    };
    if !check.0 {
        report.warn(format!("{}: {}", case.label(), check.1));
    }
    report.timing[row].loss_check = Some(check);
    report.write_all()?;
    Ok(())
}

/// A side's pooled samples cut into its bursts at `ends` (each burst's end in the pool).
fn bursts_of<'a>(pooled: &'a [u64], ends: &[usize]) -> Vec<&'a [u64]> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let end = end.clamp(start, pooled.len());
            let burst = &pooled[start..end];
            start = end;
            burst
        })
        .collect()
}

/// `76.41 ms (6)`; `212.3 µs (300 × 5 it)` for batched samples.
fn median_text(side: &Side) -> String {
    match side {
        Side::Timed { summary, samples, iterations_per_sample: 1, .. } => {
            format!("{} ({samples})", summary::duration_text(summary.median_us))
        }
        Side::Timed { summary, samples, iterations_per_sample, .. } => {
            format!("{} ({samples} × {iterations_per_sample} it)", summary::duration_text(summary.median_us))
        }
        other => other.status().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_samples_are_cut_into_their_bursts() {
        let pooled = [1, 2, 3, 4, 5, 6];
        let empty: &[u64] = &[];
        assert_eq!(bursts_of(&pooled, &[2, 2, 5, 6]), vec![&pooled[..2], empty, &pooled[2..5], &pooled[5..]]);
        // An end past the pool (never written) or before the last one is clamped.
        assert_eq!(bursts_of(&pooled, &[4, 3, 9]), vec![&pooled[..4], empty, &pooled[4..]]);
    }

    #[test]
    fn extra_rounds_go_to_the_case_cheapest_to_settle() {
        use crate::report::case::Shape;
        use crate::report::interval::Interval;
        use crate::report::stats::Summary;
        let timed = |median_ns: u64| Side::Timed {
            warmup: 1,
            iterations_per_sample: 1,
            samples: 1,
            summary: Summary::from_nanos(&[median_ns]).unwrap(),
        };
        let row = |interval: Option<(f64, f64)>| TimingRow {
            case: Case::cpu_f32(Op::Copy, Shape::square(8)),
            threads: 1,
            rust: timed(1_000),
            pytorch: timed(2_000),
            interval: interval.map(|(low, high)| Interval { low, high }),
            rounds: 2,
            bursts: 10,
            loss_check: None,
        };
        // Ratio 0.5 everywhere; relative widths 0.04 (settled), 0.12, 0.6, 0.2, and no interval.
        let rows = vec![
            row(Some((0.49, 0.51))),
            row(Some((0.47, 0.53))),
            row(Some((0.3, 0.6))),
            row(Some((0.45, 0.55))),
            row(None),
        ];
        let run = |row: usize, seconds: f64| CaseRun {
            row,
            pytorch_pool: Pool::default(),
            rust_pool: Pool::default(),
            extra_done: 0,
            last_round: Duration::from_secs_f64(seconds),
        };
        // Expected rounds: row 1 ceil(2 · 1.44) − 2 = 1, row 2 ceil(2 · 36) − 2 = 70, row 3 ceil(2 · 4) − 2 = 6.
        let mut runs = vec![run(0, 1.0), run(1, 1.0), run(2, 1.0), run(3, 1.0), run(4, 1.0)];
        assert_eq!(next_extra(&rows, &runs, 6, 0.10), Some(1), "1 round of 1 s");
        runs[1].last_round = Duration::from_secs(7);
        assert_eq!(next_extra(&rows, &runs, 6, 0.10), Some(3), "6 rounds of 1 s beat 1 round of 7 s");
        runs[3].extra_done = 6;
        assert_eq!(next_extra(&rows, &runs, 6, 0.10), Some(1), "row 3 has had its 6");
        runs[1].extra_done = 6;
        assert_eq!(next_extra(&rows, &runs, 6, 0.10), Some(2), "the wide one, last");
        assert_eq!(next_extra(&rows, &runs, 6, 0.70), None, "all settled at 0.70; row 4 has no interval");
        assert_eq!(next_extra(&rows, &runs, 0, 0.10), None, "extra_rounds 0: none");
    }
}
