//! The sorted-set value type: member → score, ordered by (score, member).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

/// A score that is never NaN and never `-0.0` (normalised to `0.0`), so that equality is
/// bit equality and the order is total and deterministic.
#[derive(Debug, Clone, Copy)]
struct Score(f64);

impl Score {
    /// `None` for NaN.
    fn new(score: f64) -> Option<Score> {
        if score.is_nan() {
            None
        } else {
            // Adding 0.0 turns -0.0 into 0.0 and leaves every other value unchanged.
            Some(Score(score + 0.0))
        }
    }
}

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        // Without NaN and -0.0, total_cmp is the numeric order and agrees with `eq`.
        self.0.total_cmp(&other.0)
    }
}

/// [`ZSet::insert`] was given a NaN score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("score is NaN")]
pub struct NanScore;

/// A sorted set: distinct members, each with a score. Ordered by score, ties broken by member
/// bytes (lexicographic), as Redis orders them. `insert`, `remove` and `pop_min` are
/// O(log n).
///
/// Scores are never NaN; `-0.0` is stored as `0.0`. The keyspace never stores an empty sorted
/// set (the key is deleted instead); a standalone `ZSet` may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZSet {
    by_member: HashMap<Vec<u8>, Score>,
    // Holds each member a second time; the alternative (shared Rc keys) costs a pointer chase
    // on every comparison.
    ordered: BTreeSet<(Score, Vec<u8>)>,
}

impl ZSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.by_member.len(), self.ordered.len());
        self.by_member.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The score of `member`, if present.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.by_member.get(member).map(|s| s.0)
    }

    /// All `(score, member)` pairs in (score, member) order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (f64, &[u8])> + DoubleEndedIterator + '_ {
        self.ordered.iter().map(|(s, m)| (s.0, m.as_slice()))
    }

    /// Adds `member` or updates its score; `Ok(true)` if the member is new.
    ///
    /// # Errors
    /// [`NanScore`] if `score` is NaN; the set is unchanged.
    pub fn insert(&mut self, score: f64, member: Vec<u8>) -> Result<bool, NanScore> {
        let score = Score::new(score).ok_or(NanScore)?;
        let added = match self.by_member.get_mut(member.as_slice()) {
            Some(old) => {
                if *old != score {
                    // Reuse `member` as the probe for the ordered entry: no allocation.
                    let mut probe = (*old, member);
                    let removed = self.ordered.remove(&probe);
                    debug_assert!(removed, "zset structures disagree");
                    *old = score;
                    probe.0 = score;
                    self.ordered.insert(probe);
                }
                false
            }
            None => {
                self.by_member.insert(member.clone(), score);
                self.ordered.insert((score, member));
                true
            }
        };
        debug_assert_eq!(self.by_member.len(), self.ordered.len());
        Ok(added)
    }

    /// Removes `member`; true if it was present.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let Some(entry) = self.by_member.remove_entry(member) else {
            return false;
        };
        let (member, score) = entry;
        let removed = self.ordered.remove(&(score, member));
        debug_assert!(removed, "zset structures disagree");
        debug_assert_eq!(self.by_member.len(), self.ordered.len());
        true
    }

    /// Removes and returns the lowest `(score, member)`, if any.
    pub fn pop_min(&mut self) -> Option<(f64, Vec<u8>)> {
        let (score, member) = self.ordered.pop_first()?;
        let removed = self.by_member.remove(member.as_slice());
        debug_assert_eq!(removed, Some(score), "zset structures disagree");
        Some((score.0, member))
    }

    /// Builds a sorted set from pairs; a later pair for the same member wins (as in `ZADD`).
    ///
    /// # Errors
    /// [`NanScore`] if any score is NaN.
    pub fn try_from_pairs(
        pairs: impl IntoIterator<Item = (f64, Vec<u8>)>,
    ) -> Result<ZSet, NanScore> {
        let mut z = ZSet::new();
        for (score, member) in pairs {
            z.insert(score, member)?;
        }
        Ok(z)
    }

    /// Panics if the two internal structures disagree. O(n log n); for tests.
    pub fn assert_invariants(&self) {
        assert_eq!(self.by_member.len(), self.ordered.len());
        for (score, member) in &self.ordered {
            assert!(!score.0.is_nan() && score.0.to_bits() != (-0.0f64).to_bits());
            assert_eq!(self.by_member.get(member), Some(score));
        }
    }
}

/// Formats a score as reply text exactly as Redis 7.0 does (C's `%.17g`): 17 significant
/// digits, trailing zeros dropped, exponent form (`1.0000000000000001e+300`, `1e-05`) when
/// the exponent is below -4 or at least 17; integers without a fraction (`1`), infinities as
/// `inf` and `-inf`. Always parses back to the same value.
pub fn format_score(score: f64) -> String {
    const DIGITS: i32 = 17;
    if score.is_infinite() {
        return if score > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // The exponent after rounding to 17 significant digits decides the form, as in C.
    let sci = format!("{:.*e}", (DIGITS - 1) as usize, score);
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes a decimal exponent");
    if !(-4..DIGITS).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_fraction(mantissa), exp.abs())
    } else {
        // `exp` is in -4..17, so the precision is in 0..=20.
        trim_fraction(&format!("{:.*}", (DIGITS - 1 - exp) as usize, score)).to_owned()
    }
}

/// `text` without the trailing zeros of its fraction, nor a bare trailing `.`.
fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_zero_is_stored_as_zero() {
        let mut z = ZSet::new();
        assert_eq!(z.insert(-0.0, b"a".to_vec()), Ok(true));
        assert_eq!(z.insert(0.0, b"b".to_vec()), Ok(true));
        assert_eq!(z.score(b"a").map(f64::to_bits), Some(0.0f64.to_bits()));
        let order: Vec<_> = z.iter().map(|(_, m)| m.to_vec()).collect();
        assert_eq!(order, vec![b"a".to_vec(), b"b".to_vec()]);
        // Re-adding -0.0 to a member at 0.0 is not a change.
        assert_eq!(z.insert(-0.0, b"b".to_vec()), Ok(false));
        z.assert_invariants();
    }

    #[test]
    fn nan_is_rejected_without_change() {
        let mut z = ZSet::new();
        z.insert(1.0, b"a".to_vec()).unwrap();
        assert_eq!(z.insert(f64::NAN, b"a".to_vec()), Err(NanScore));
        assert_eq!(z.score(b"a"), Some(1.0));
        z.assert_invariants();
    }

    #[test]
    fn update_moves_member() {
        let mut z = ZSet::try_from_pairs([(1.0, b"a".to_vec()), (2.0, b"b".to_vec())]).unwrap();
        assert_eq!(z.insert(3.0, b"a".to_vec()), Ok(false));
        assert_eq!(z.pop_min(), Some((2.0, b"b".to_vec())));
        assert_eq!(z.pop_min(), Some((3.0, b"a".to_vec())));
        assert_eq!(z.pop_min(), None);
        z.assert_invariants();
    }

    #[test]
    fn score_text() {
        assert_eq!(format_score(1.0), "1");
        assert_eq!(format_score(-2.5), "-2.5");
        assert_eq!(format_score(f64::INFINITY), "inf");
        assert_eq!(format_score(f64::NEG_INFINITY), "-inf");
        // Redis 7.0's `%.17g` (checked against redis-server 7.0.15).
        assert_eq!(format_score(0.1), "0.10000000000000001");
        assert_eq!(format_score(1.5), "1.5");
        assert_eq!(format_score(1e300), "1.0000000000000001e+300");
        assert_eq!(format_score(1e-5), "1.0000000000000001e-05");
        assert_eq!(format_score(0.0001), "0.0001");
        assert_eq!(format_score(1e16), "10000000000000000");
        assert_eq!(format_score(1e17), "1e+17");
        assert_eq!(format_score(0.0), "0");
        assert_eq!(format_score(-0.0), "-0");
        assert_eq!(format_score(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(format_score(5e-324), "4.9406564584124654e-324");
        for x in [0.1, 1.0 / 3.0, 1e300, 123456.789, -7e-7, f64::MIN_POSITIVE] {
            assert_eq!(format_score(x).parse::<f64>().unwrap(), x, "{x}");
        }
    }
}
