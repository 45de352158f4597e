//! Summary statistics of one case's timed samples: min, median, mean, max and the sample
//! standard deviation, all in microseconds.
//!
//! Both sides of the report (Rust and PyTorch eager) hand their raw per-sample durations to
//! [`Summary::from_nanos`], so the two columns are computed by the same code.

use anyhow::{ensure, Result};

/// Statistics of a set of durations, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Summary {
    /// The fastest sample.
    pub(crate) min_us: f64,
    /// The middle sample (the mean of the two middle ones for an even count).
    pub(crate) median_us: f64,
    /// The arithmetic mean.
    pub(crate) mean_us: f64,
    /// The slowest sample.
    pub(crate) max_us: f64,
    /// The sample standard deviation (divisor `n - 1`; 0 for a single sample).
    pub(crate) stddev_us: f64,
}

impl Summary {
    /// The statistics of `nanos` (one duration per timed iteration, in nanoseconds).
    ///
    /// Errors: no samples.
    pub(crate) fn from_nanos(nanos: &[u64]) -> Result<Self> {
        let micros: Vec<f64> = nanos.iter().map(|&ns| ns as f64 / 1_000.0).collect();
        Self::from_micros(&micros)
    }

    /// The statistics of `micros` (one duration per timed iteration, in microseconds).
    ///
    /// Errors: no samples, or a sample that is NaN or infinite.
    pub(crate) fn from_micros(micros: &[f64]) -> Result<Self> {
        ensure!(!micros.is_empty(), "cannot summarize zero timing samples");
        ensure!(micros.iter().all(|x| x.is_finite()), "timing samples must be finite numbers");
        let mut sorted = micros.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median_us = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        let mean_us = sorted.iter().sum::<f64>() / n as f64;
        let stddev_us = if n > 1 {
            let squares: f64 = sorted.iter().map(|x| (x - mean_us) * (x - mean_us)).sum();
            (squares / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Ok(Summary { min_us: sorted[0], median_us, mean_us, max_us: sorted[n - 1], stddev_us })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn median_of_odd_count_is_the_middle_sample() {
        let s = Summary::from_micros(&[9.0, 1.0, 5.0]).unwrap();
        assert_eq!(s.median_us, 5.0);
        assert_eq!((s.min_us, s.max_us), (1.0, 9.0));
    }

    #[test]
    fn median_of_even_count_is_the_mean_of_the_two_middle_samples() {
        let s = Summary::from_micros(&[4.0, 1.0, 3.0, 10.0]).unwrap();
        assert_eq!(s.median_us, 3.5);
        assert_eq!(s.mean_us, 4.5);
    }

    #[test]
    fn stddev_is_the_sample_standard_deviation() {
        // Mean 5, squared deviations sum to 32, n - 1 = 7: sqrt(32 / 7).
        let s = Summary::from_micros(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert!(close(s.mean_us, 5.0));
        assert!(close(s.stddev_us, (32.0f64 / 7.0).sqrt()), "{}", s.stddev_us);
        assert_eq!(Summary::from_micros(&[3.0]).unwrap().stddev_us, 0.0);
    }

    #[test]
    fn nanoseconds_become_microseconds() {
        let s = Summary::from_nanos(&[1_500, 2_500]).unwrap();
        assert_eq!((s.min_us, s.median_us, s.max_us), (1.5, 2.0, 2.5));
    }

    #[test]
    fn empty_and_non_finite_samples_are_errors() {
        assert!(Summary::from_micros(&[]).is_err());
        assert!(Summary::from_micros(&[1.0, f64::NAN]).is_err());
    }
}
