//! The ranges of `norm-bench report`'s numbers ([`check_ranges`]), from the flags or the
//! config file alike: each refusal names the config field and its flag, the value and the
//! range. A size is at most [`MAX_SIZE`] and a shape at most [`MAX_ELEMENTS`] elements
//! (256 MiB of float32), so no case allocates more than a few of those.

use super::case::Shape;
use super::options::{ReportOptions, MAX_EXTRA_ROUNDS, MAX_EXTRA_ROUNDS_BUDGET_S, MAX_SETTLE_WIDTH};
use crate::limits::{check_range, UsageError};
use anyhow::Result;

/// The largest square size `n` (`sizes`, `copy_sizes`).
pub const MAX_SIZE: u64 = 8192;
/// The most elements of one shape (`rect_shapes`, `dtype_shapes`, `convergence_shapes`): 2^26.
pub const MAX_ELEMENTS: u64 = 1 << 26;
/// The most power iterations (`n_power_iterations`, `power_iteration_counts`, `convergence_iterations`).
pub const MAX_ITERATIONS: u64 = 10_000;
/// The most training steps (`seed_loop_steps`, `spectral_train_steps`).
pub const MAX_STEPS: u64 = 100_000;
/// The most samples or warm-up iterations (`sampling.min_samples`, `max_samples`, `warmup_min`).
pub const MAX_SAMPLES: u64 = 1_000_000;
/// The longest budget in milliseconds (`sampling.budget_ms`, `warmup_ms`, `burst_ms`): one hour.
pub const MAX_MS: u64 = 3_600_000;
/// The most rounds per case.
pub const MAX_ROUNDS: u64 = 1000;
/// The longest batched sample in microseconds (`sampling.min_sample_us`): 10 s.
pub const MAX_SAMPLE_US: u64 = 10_000_000;
/// The most entries of one list option.
pub const MAX_LIST: usize = 1000;

/// "`field` (--flag)", or the field alone when no flag sets it.
fn label(field: &str, flag: Option<&str>) -> String {
    match flag {
        Some(flag) => format!("{field} ({flag})"),
        None => field.to_string(),
    }
}

fn check_list<T>(field: &str, flag: Option<&str>, items: &[T]) -> Result<()> {
    if items.len() > MAX_LIST {
        return Err(
            UsageError(format!("{} has {} entries; at most {MAX_LIST}", label(field, flag), items.len())).into()
        );
    }
    Ok(())
}

fn check_each(field: &str, flag: Option<&str>, values: &[u64], lo: u64, hi: u64) -> Result<()> {
    check_list(field, flag, values)?;
    values.iter().try_for_each(|&v| check_range(&label(field, flag), v, lo, hi))
}

fn check_shapes(field: &str, flag: Option<&str>, shapes: &[Shape]) -> Result<()> {
    check_list(field, flag, shapes)?;
    for s in shapes {
        let elements = s.rows.saturating_mul(s.cols);
        if s.rows == 0 || s.cols == 0 || elements > MAX_ELEMENTS {
            return Err(UsageError(format!(
                "{}: {}x{} must have rows and cols >= 1 and at most {MAX_ELEMENTS} elements, got {elements}",
                label(field, flag),
                s.rows,
                s.cols
            ))
            .into());
        }
    }
    Ok(())
}

/// Checks every number of `options` against its range.
pub(crate) fn check_ranges(o: &ReportOptions) -> Result<()> {
    check_each("sizes", Some("--sizes"), &o.sizes, 1, MAX_SIZE)?;
    if let Some(copy) = &o.copy_sizes {
        check_each("copy_sizes", None, copy, 1, MAX_SIZE)?;
    }
    check_shapes("rect_shapes", Some("--rect-shapes"), &o.rect_shapes)?;
    check_shapes("dtype_shapes", None, &o.dtype_shapes)?;
    check_shapes("convergence_shapes", None, &o.convergence_shapes)?;
    check_list("ops", Some("--ops"), &o.ops)?;
    check_list("rect_ops", None, &o.rect_ops)?;
    check_list("dtype_ops", None, &o.dtype_ops)?;
    check_list("extra_dtypes", Some("--dtypes"), &o.extra_dtypes)?;
    check_list("devices", Some("--devices"), &o.devices)?;
    check_list("matrix_kinds", None, &o.matrix_kinds)?;
    check_range(&label("n_power_iterations", Some("--n-power-iterations")), o.n_power_iterations, 1, MAX_ITERATIONS)?;
    check_each("power_iteration_counts", None, &o.power_iteration_counts, 1, MAX_ITERATIONS)?;
    check_each("convergence_iterations", None, &o.convergence_iterations, 1, MAX_ITERATIONS)?;
    check_range("seed_loop_steps", o.seed_loop_steps, 1, MAX_STEPS)?;
    check_range("spectral_train_steps", o.spectral_train_steps, 1, MAX_STEPS)?;
    let s = &o.sampling;
    check_range(&label("sampling.warmup_min", Some("--warmup")), s.warmup_min, 0, MAX_SAMPLES)?;
    check_range("sampling.warmup_ms", s.warmup_ms, 0, MAX_MS)?;
    check_range(&label("sampling.min_samples", Some("--min-samples/--samples")), s.min_samples, 1, MAX_SAMPLES)?;
    check_range(&label("sampling.max_samples", Some("--max-samples/--samples")), s.max_samples, 1, MAX_SAMPLES)?;
    check_range(&label("sampling.budget_ms", Some("--budget-ms")), s.budget_ms, 0, MAX_MS)?;
    check_range(&label("sampling.rounds", Some("--rounds")), s.rounds, 1, MAX_ROUNDS)?;
    check_range(&label("sampling.min_sample_us", Some("--min-sample-us")), s.min_sample_us, 0, MAX_SAMPLE_US)?;
    check_range(&label("sampling.burst_ms", Some("--burst-ms")), s.burst_ms, 0, MAX_MS)?;
    // A relative width: 0 would never settle, NaN compares false with everything.
    if !(o.settle_width > 0.0 && o.settle_width <= MAX_SETTLE_WIDTH) {
        let name = label("settle_width", Some("--settle-width"));
        return Err(UsageError(format!("{name} must be in (0, {MAX_SETTLE_WIDTH}], got {}", o.settle_width)).into());
    }
    check_range(&label("extra_rounds", Some("--extra-rounds")), o.extra_rounds, 0, MAX_EXTRA_ROUNDS)?;
    let budget = label("extra_rounds_budget_s", Some("--extra-rounds-budget-s"));
    check_range(&budget, o.extra_rounds_budget_s, 0, MAX_EXTRA_ROUNDS_BUDGET_S)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sampling::Sampling;

    fn refusal(options: ReportOptions) -> String {
        let e = check_ranges(&options).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some());
        e.to_string()
    }

    #[test]
    fn the_defaults_are_in_range() {
        check_ranges(&ReportOptions::default()).unwrap();
    }

    #[test]
    fn each_number_is_bounded_and_named() {
        let d = ReportOptions::default;
        assert_eq!(
            refusal(ReportOptions { sizes: vec![64, 8193], ..d() }),
            "sizes (--sizes) must be in [1, 8192], got 8193"
        );
        assert!(refusal(ReportOptions { copy_sizes: Some(vec![u64::MAX]), ..d() }).starts_with("copy_sizes must be in"));
        let e = refusal(ReportOptions { rect_shapes: vec![Shape { rows: 1 << 20, cols: 1 << 20 }], ..d() });
        assert!(e.contains("rect_shapes (--rect-shapes)") && e.contains("1048576x1048576"), "{e}");
        assert!(refusal(ReportOptions { n_power_iterations: 10_001, ..d() }).contains("--n-power-iterations"));
        assert!(refusal(ReportOptions { convergence_iterations: vec![1 << 40], ..d() }).contains("1099511627776"));
        assert!(refusal(ReportOptions { seed_loop_steps: 1 << 31, ..d() }).contains("seed_loop_steps"));
        assert!(refusal(ReportOptions { sizes: vec![8; MAX_LIST + 1], ..d() }).contains("at most 1000"));
        for (sampling, needle) in [
            (Sampling { rounds: 1001, ..Sampling::default() }, "--rounds"),
            (Sampling { budget_ms: MAX_MS + 1, ..Sampling::default() }, "--budget-ms"),
            (Sampling { warmup_ms: u64::MAX, ..Sampling::default() }, "sampling.warmup_ms"),
            (Sampling { min_sample_us: MAX_SAMPLE_US + 1, ..Sampling::default() }, "--min-sample-us"),
            (Sampling { burst_ms: MAX_MS + 1, ..Sampling::default() }, "sampling.burst_ms (--burst-ms)"),
            (Sampling { max_samples: MAX_SAMPLES + 1, ..Sampling::default() }, "sampling.max_samples"),
            (Sampling { warmup_min: 1 << 40, ..Sampling::default() }, "--warmup"),
        ] {
            let e = refusal(ReportOptions { sampling, ..d() });
            assert!(e.contains(needle), "{e}");
        }
    }
}
