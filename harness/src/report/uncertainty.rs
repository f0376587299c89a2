//! Sample sizes and confidence intervals for the report's figures (docs/results.md, "What
//! `durlab report RESULTS_DIR` writes", "Uncertainty").
//!
//! Loss windows: a two-level (cluster) percentile bootstrap over trials and the crash states
//! within them. A resample draws as many trials as the record has, with replacement, and for
//! each drawn trial as many of its states as it has, with replacement; the statistic is the
//! nearest-rank p50, p99 or max ([`Summary::of_unsorted`], the crash lab's estimator) of the
//! pooled resample. Resampling trials first keeps the states of one trace together: they
//! share a kill time and a history, so they are not independent draws.
//!
//! Throughput ratios: a moving-block bootstrap of each configuration's per-interval write
//! rates (blocks keep the drift between neighbouring intervals), numerator and denominator
//! resampled independently.
//!
//! Both are seeded with fixed seeds, so a report renders the same intervals every time.

use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use crate::crashlab::loss::{Summary, nearest_rank};

/// Resamples per interval: enough for stable 2.5% and 97.5% points to within a few ranks.
pub const RESAMPLES: usize = 1000;

/// Two-sided coverage of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// Seed of every loss-window bootstrap (fixed: the same files give the same report).
const LOSS_SEED: u64 = 0x10_55_ED;

/// Seed of every throughput bootstrap.
const RATE_SEED: u64 = 0x0_5E_ED;

/// A confidence interval `[lo, hi]`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// True when the two intervals share a point: the figures cannot be told apart.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }

    /// The percentile interval of bootstrap statistics `v` (reordered).
    fn of(v: &mut [f64]) -> Interval {
        v.sort_by(f64::total_cmp);
        let tail = (1.0 - CONFIDENCE) / 2.0;
        Interval {
            lo: v[nearest_rank(v.len(), tail)],
            hi: v[nearest_rank(v.len(), 1.0 - tail)],
        }
    }
}

/// Intervals for the three figures of a [`Summary`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SummaryIntervals {
    pub p50: Interval,
    pub p99: Interval,
    pub max: Interval,
}

/// The cluster bootstrap of `trials` (each the values of its crash states), `None` when there
/// is no value at all. Deterministic: the same input gives the same intervals.
pub fn summary_intervals(trials: &[Vec<f64>]) -> Option<SummaryIntervals> {
    let trials: Vec<&Vec<f64>> = trials.iter().filter(|t| !t.is_empty()).collect();
    if trials.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(LOSS_SEED);
    let (mut p50, mut p99, mut max) = (
        Vec::with_capacity(RESAMPLES),
        Vec::with_capacity(RESAMPLES),
        Vec::with_capacity(RESAMPLES),
    );
    let mut pooled = Vec::new();
    for _ in 0..RESAMPLES {
        pooled.clear();
        for _ in 0..trials.len() {
            let t = trials[rng.random_range(0..trials.len())];
            pooled.extend((0..t.len()).map(|_| t[rng.random_range(0..t.len())]));
        }
        let s = Summary::of_unsorted(&mut pooled);
        p50.push(s.p50);
        p99.push(s.p99);
        max.push(s.max);
    }
    Some(SummaryIntervals {
        p50: Interval::of(&mut p50),
        p99: Interval::of(&mut p99),
        max: Interval::of(&mut max),
    })
}

/// A ratio of two mean rates with its interval: the moving-block bootstrap of `num` and
/// `den`, each a series of per-interval rates in time order. `None` when either series has
/// fewer than 2 intervals (nothing to resample) or a mean of 0.
pub fn ratio_interval(num: &[f64], den: &[f64]) -> Option<Interval> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    if num.len() < 2 || den.len() < 2 || mean(den) <= 0.0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(RATE_SEED);
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| block_mean(num, &mut rng) / block_mean(den, &mut rng))
        .filter(|r| r.is_finite())
        .collect();
    (!ratios.is_empty()).then(|| Interval::of(&mut ratios))
}

/// The mean of one moving-block resample of `v`: blocks of ⌈√n⌉ neighbouring values, drawn
/// with replacement until n values are taken (the usual block length for a series of n).
fn block_mean(v: &[f64], rng: &mut ChaCha8Rng) -> f64 {
    let n = v.len();
    let block = (n as f64).sqrt().ceil() as usize;
    let (mut sum, mut taken) = (0.0, 0);
    while taken < n {
        let start = rng.random_range(0..=n - block);
        for x in &v[start..(start + block).min(start + n - taken)] {
            sum += x;
            taken += 1;
        }
    }
    sum / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_cover_the_figure_and_are_deterministic() {
        let trials: Vec<Vec<f64>> = (0..10)
            .map(|k| (0..30).map(|s| f64::from(k * 30 + s)).collect())
            .collect();
        let a = summary_intervals(&trials).unwrap();
        assert_eq!(Some(a), summary_intervals(&trials));
        let s = Summary::of(trials.iter().flatten().copied());
        for (i, v) in [(a.p50, s.p50), (a.p99, s.p99), (a.max, s.max)] {
            assert!(i.lo <= v && v <= i.hi, "{i:?} covers {v}");
        }
        assert!(
            a.p50.hi - a.p50.lo > 0.0,
            "spread trials give a real interval"
        );
        assert_eq!(a.max.hi, s.max, "a resample never exceeds the observed max");
        assert_eq!(summary_intervals(&[vec![]]), None);
    }

    #[test]
    fn separated_and_overlapping_samples() {
        let low: Vec<Vec<f64>> = (0..20).map(|k| vec![100.0 + f64::from(k)]).collect();
        let high: Vec<Vec<f64>> = (0..20).map(|k| vec![1000.0 + f64::from(k)]).collect();
        let near: Vec<Vec<f64>> = (0..20).map(|k| vec![105.0 + f64::from(k)]).collect();
        let p50 = |t: &[Vec<f64>]| summary_intervals(t).unwrap().p50;
        assert!(!p50(&low).overlaps(&p50(&high)));
        assert!(p50(&low).overlaps(&p50(&near)));
    }

    #[test]
    fn ratio_interval_brackets_the_ratio() {
        let num: Vec<f64> = (0..20).map(|i| 100.0 + f64::from(i % 5)).collect();
        let den: Vec<f64> = (0..20).map(|i| 1000.0 + f64::from(i % 7)).collect();
        let i = ratio_interval(&num, &den).unwrap();
        assert!(i.lo <= 0.1021 && 0.0995 <= i.hi, "{i:?}");
        assert!(i.lo > 0.09 && i.hi < 0.11, "{i:?}");
        assert_eq!(ratio_interval(&num[..1], &den), None);
    }
}
