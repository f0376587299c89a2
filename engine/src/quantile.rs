//! The one quantile definition of the project: nearest rank. The `q`-quantile of n values is
//! the smallest value with at least `q` of all values at or below it, i.e. the value of rank
//! ⌈q·n⌉ (at least 1) in ascending order. The probe's fdatasync percentiles
//! ([`crate::rawio::RawRun::percentile_ns`]), the engine's benches and the crash lab's loss
//! figures use [`nearest_rank`]; the harness's latency histograms (HdrHistogram's
//! `value_at_quantile`) apply the same rule to values kept to 3 significant digits
//! (docs/design.md, "Quantiles").

/// The 0-based index of the nearest-rank `q`-quantile in an ascending slice of `len` values:
/// rank ⌈q·len⌉ clamped to `1..=len`, minus one. `q` outside `[0, 1]` is clamped to it and NaN
/// counts as 0 (both give the smallest or largest value, never a panic).
///
/// # Panics
/// Never; for `len` = 0 it returns 0, which indexes nothing: callers check for empty input.
pub fn nearest_rank(len: usize, q: f64) -> usize {
    let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
    ((q * len as f64).ceil() as usize).clamp(1, len.max(1)) - 1
}

/// The nearest-rank `q`-quantile of `values` (sorted in place); `None` when empty.
pub fn quantile_of(values: &mut [u64], q: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(values[nearest_rank(values.len(), q)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_is_the_ceiling_of_q_times_n() {
        assert_eq!(nearest_rank(100, 0.99), 98, "rank 99 of 100, not the max");
        assert_eq!(nearest_rank(100, 0.50), 49);
        assert_eq!(nearest_rank(1000, 0.999), 998);
        assert_eq!(nearest_rank(10, 0.99), 9, "rank ⌈9.9⌉ = 10");
        assert_eq!(nearest_rank(3, 0.0), 0);
        assert_eq!(nearest_rank(3, 1.0), 2);
        assert_eq!(nearest_rank(3, -1.0), 0);
        assert_eq!(nearest_rank(3, 7.0), 2);
        assert_eq!(nearest_rank(3, f64::NAN), 0);
        assert_eq!(nearest_rank(0, 0.5), 0);
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile_of(&mut v, 0.99), Some(99));
        assert_eq!(quantile_of(&mut [], 0.5), None);
    }
}
