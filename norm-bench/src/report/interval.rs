//! The interval of a ratio of medians, `median(rust) / median(pytorch)`: a seeded
//! percentile bootstrap over the case's paired bursts.
//!
//! Within a round the sides take turns in bursts ([`sampling`](super::sampling)), PyTorch's
//! then Rust's, so what slows the machine for a while slows both bursts of a pair alike,
//! and what slows one side's samples alone shows as pairs whose ratios disagree. Each of
//! [`RESAMPLES`] resamples therefore draws as many burst pairs as were run (over all
//! rounds), uniformly with replacement, the same pairs for both sides (the pairing); then,
//! per side and independently, each drawn burst's samples again (as many as it has, with
//! replacement); and takes the ratio of the two sides' medians over the samples drawn. With
//! one pair this is the plain bootstrap of each side's samples. The interval is the
//! `(1 − LEVEL) / 2` and `(1 + LEVEL) / 2` percentiles of those ratios (linear
//! interpolation between order statistics, as numpy's default). The draws come from a
//! SplitMix64 generator seeded with [`BOOTSTRAP_SEED`], so the same samples always give the
//! same interval. A ratio is **settled** when its interval's width relative to the ratio,
//! `(high − low) / ratio`, is at most the run's `settle_width` ([`Interval::settled`]):
//! pairs whose ratios disagree by more keep it unsettled, and the case gets extra rounds
//! while the run's budget lasts.

/// Bootstrap resamples per interval.
pub(crate) const RESAMPLES: usize = 2000;

/// The interval's coverage.
pub(crate) const LEVEL: f64 = 0.95;

/// The generator's seed: fixed, so an interval is reproducible from the samples alone.
pub(crate) const BOOTSTRAP_SEED: u64 = 0x6e6f_726d_2d62_6f6f; // "norm-boo"

/// A ratio's interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Interval {
    /// The lower bound.
    pub(crate) low: f64,
    /// The upper bound.
    pub(crate) high: f64,
}

impl Interval {
    /// `(high − low) / ratio`: the width relative to the point estimate (infinite for a
    /// ratio that is not positive).
    pub(crate) fn relative_width(&self, ratio: f64) -> f64 {
        if ratio > 0.0 {
            (self.high - self.low) / ratio
        } else {
            f64::INFINITY
        }
    }

    /// Whether the interval is at most `settle_width` wide relative to `ratio`.
    pub(crate) fn settled(&self, ratio: f64, settle_width: f64) -> bool {
        self.relative_width(ratio) <= settle_width
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed, seedable generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (`n >= 1`; Lemire's multiply-shift, bias below 2⁻³² here).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The median of `values` (the mean of the two middle ones for an even count); sorts them.
pub(crate) fn median_in_place(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The `q`-quantile (`0 <= q <= 1`) of sorted `values`, interpolating linearly between
/// the order statistics at `q · (n − 1)` (numpy's `linear` method).
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// The bootstrap interval of `median(rust) / median(pytorch)` from one burst of each side's
/// samples in nanoseconds ([`paired_bursts_interval`] with one pair).
#[cfg(test)]
pub(crate) fn ratio_interval(rust: &[u64], pytorch: &[u64]) -> Option<Interval> {
    paired_bursts_interval(&[rust], &[pytorch])
}

/// The bootstrap interval of `median(rust) / median(pytorch)` over paired bursts (module
/// doc): `rust[k]` and `pytorch[k]` are pair `k`'s samples in nanoseconds. Pairs where a
/// side has no samples are left out; if the sides' burst counts differ, each side's bursts
/// are pooled into one. `None` when a side has no samples or a resampled PyTorch median is 0.
pub(crate) fn paired_bursts_interval<R: AsRef<[u64]>>(rust: &[R], pytorch: &[R]) -> Option<Interval> {
    let pooled = |side: &[R]| side.iter().flat_map(|r| r.as_ref().iter().copied()).collect::<Vec<u64>>();
    let (pooled_rust, pooled_pytorch);
    let pairs: Vec<(&[u64], &[u64])> = if rust.len() == pytorch.len() {
        rust.iter()
            .zip(pytorch)
            .map(|(r, p)| (r.as_ref(), p.as_ref()))
            .filter(|(r, p)| !r.is_empty() && !p.is_empty())
            .collect()
    } else {
        (pooled_rust, pooled_pytorch) = (pooled(rust), pooled(pytorch));
        vec![(pooled_rust.as_slice(), pooled_pytorch.as_slice())]
    };
    if pairs.is_empty() || pairs.iter().any(|(r, p)| r.is_empty() || p.is_empty()) {
        return None;
    }
    let mut rng = SplitMix64(BOOTSTRAP_SEED);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut picked = Vec::with_capacity(pairs.len());
    let mut ratios = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        picked.clear();
        if pairs.len() == 1 {
            picked.push(0); // one pair: no draw, the plain bootstrap's stream
        } else {
            picked.extend((0..pairs.len()).map(|_| rng.below(pairs.len())));
        }
        a.clear();
        b.clear();
        for &k in &picked {
            let (r, p) = pairs[k];
            a.extend((0..r.len()).map(|_| r[rng.below(r.len())] as f64));
            b.extend((0..p.len()).map(|_| p[rng.below(p.len())] as f64));
        }
        let (r, p) = (median_in_place(&mut a), median_in_place(&mut b));
        if p <= 0.0 {
            return None;
        }
        ratios.push(r / p);
    }
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - LEVEL) / 2.0;
    Some(Interval { low: quantile_sorted(&ratios, tail), high: quantile_sorted(&ratios, 1.0 - tail) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile_sorted(&sorted, 0.0), 1.0);
        assert_eq!(quantile_sorted(&sorted, 0.5), 3.0);
        assert_eq!(quantile_sorted(&sorted, 1.0), 5.0);
        assert_eq!(quantile_sorted(&sorted, 0.125), 1.5); // position 0.5
        assert_eq!(quantile_sorted(&sorted, 0.975), 4.9); // position 3.9
        assert_eq!(median_in_place(&mut [4.0, 1.0, 3.0, 10.0]), 3.5);
    }

    #[test]
    fn constant_samples_give_a_point_interval() {
        let i = ratio_interval(&[2_000, 2_000, 2_000], &[4_000; 5]).unwrap();
        assert_eq!(i, Interval { low: 0.5, high: 0.5 });
        assert!(i.settled(0.5, 0.0));
    }

    #[test]
    fn two_rust_samples_span_the_three_possible_medians() {
        // Resampled medians of {1, 3}: 1 (p = 1/4), 2 (1/2), 3 (1/4); PyTorch's is always 2.
        // So the ratios are 0.5, 1 and 1.5, and both 2.5 % tails lie in the end values.
        let i = ratio_interval(&[1_000, 3_000], &[2_000]).unwrap();
        assert_eq!(i, Interval { low: 0.5, high: 1.5 });
        assert_eq!(i.relative_width(1.0), 1.0);
        assert!(!i.settled(1.0, 0.10));
        assert!(i.settled(1.0, 1.0));
    }

    #[test]
    fn the_interval_is_reproducible_and_narrows_with_more_samples() {
        let noisy = |n: usize, base: u64| -> Vec<u64> { (0..n as u64).map(|i| base + (i * 7919) % 400).collect() };
        let few = ratio_interval(&noisy(6, 1_000), &noisy(6, 2_000)).unwrap();
        assert_eq!(few, ratio_interval(&noisy(6, 1_000), &noisy(6, 2_000)).unwrap(), "seeded");
        let many = ratio_interval(&noisy(300, 1_000), &noisy(300, 2_000)).unwrap();
        assert!(many.high - many.low < few.high - few.low, "{few:?} vs {many:?}");
        let ratio = median_in_place(&mut noisy(6, 1_000).iter().map(|&x| x as f64).collect::<Vec<_>>())
            / median_in_place(&mut noisy(6, 2_000).iter().map(|&x| x as f64).collect::<Vec<_>>());
        assert!(few.low <= ratio && ratio <= few.high, "{few:?}");
        assert!(many.low < 0.6 && 0.5 < many.high, "{many:?}");
    }

    #[test]
    fn a_slowdown_both_sides_of_a_round_share_cancels_out() {
        // Round 2 ran with the machine twice as slow, on both sides: every paired resample's
        // ratio is 0.5. Pooled without the pairing, the sides' medians move independently.
        let (rust, pytorch) = ([vec![1_000; 20], vec![2_000; 20]], [vec![2_000; 20], vec![4_000; 20]]);
        assert_eq!(paired_bursts_interval(&rust, &pytorch), Some(Interval { low: 0.5, high: 0.5 }));
        let unpaired = ratio_interval(&rust.concat(), &pytorch.concat()).unwrap();
        assert!(unpaired.relative_width(0.5) > 0.5, "{unpaired:?}");
    }

    #[test]
    fn a_slowdown_of_one_side_in_one_round_widens_the_interval() {
        // Three burst pairs of 100 samples a side (5 % spread); in pair 2 Rust alone ran 30 %
        // slower (ratio 0.5, 0.65, 0.5). Pooled, 300 samples a side hold both medians in
        // place: a narrow interval, settled. Paired, resamples drawing round 2 more often
        // move the ratio: the interval spans the pairs' disagreement, not settled.
        let noisy = |base: u64| -> Vec<u64> { (0..100u64).map(|i| base + (i * 7919) % 50).collect() };
        let rust = [noisy(1_000), noisy(1_300), noisy(1_000)];
        let pytorch = [noisy(2_000), noisy(2_000), noisy(2_000)];
        let pooled = ratio_interval(&rust.concat(), &pytorch.concat()).unwrap();
        assert!(pooled.settled(0.5, 0.10), "{pooled:?}");
        let paired = paired_bursts_interval(&rust, &pytorch).unwrap();
        assert!(paired.low <= 0.51 && paired.high >= 0.6, "{paired:?}");
        assert!(!paired.settled(0.5, 0.10), "{paired:?}");
    }

    #[test]
    fn one_pair_is_the_plain_bootstrap_and_unpaired_bursts_are_pooled() {
        let noisy = |n: usize, base: u64| -> Vec<u64> { (0..n as u64).map(|i| base + (i * 7919) % 400).collect() };
        let (r, p) = (noisy(30, 1_000), noisy(25, 2_000));
        assert_eq!(paired_bursts_interval(&[&r[..]], &[&p[..]]), ratio_interval(&r, &p));
        // Two Rust bursts against one PyTorch burst: each side pooled into one burst.
        assert_eq!(paired_bursts_interval(&[&r[..10], &r[10..]], &[&p[..]]), ratio_interval(&r, &p));
        // A round where one side has no samples is left out.
        assert_eq!(paired_bursts_interval(&[&r[..], &[][..]], &[&p[..], &p[..3]]), ratio_interval(&r, &p));
        assert_eq!(paired_bursts_interval::<&[u64]>(&[], &[]), None);
    }

    #[test]
    fn no_samples_or_a_zero_median_give_no_interval() {
        assert_eq!(ratio_interval(&[], &[1]), None);
        assert_eq!(ratio_interval(&[1], &[]), None);
        assert_eq!(ratio_interval(&[1], &[0, 0]), None);
        assert_eq!(Interval { low: 0.0, high: 1.0 }.relative_width(0.0), f64::INFINITY);
    }
}
