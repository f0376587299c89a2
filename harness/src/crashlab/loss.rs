//! The loss window of one crash (docs/design.md, "Loss window") and summaries over trials.

use std::sync::{Arc, Mutex, PoisonError};

use durlab_engine::Lsn;
use durlab_engine::aof::record::RECORD_HEADER_BYTES;
use serde::{Deserialize, Serialize};

use super::ackpage::AckLog;
use crate::workload::Workload;

/// The log bytes (record header + payload) of a workload's commands, as prefix sums extended
/// on demand: the loss of a crash state is then a difference of two sums, not a sum over every
/// lost command (which costs a command generation each, per state). Clones share the sums.
#[derive(Debug, Clone)]
pub struct RecordBytes {
    workload: Workload,
    /// `prefix[n]`: bytes of commands 1..=n.
    prefix: Arc<Mutex<Vec<u64>>>,
}

impl RecordBytes {
    pub fn new(workload: Workload) -> RecordBytes {
        RecordBytes {
            workload,
            prefix: Arc::new(Mutex::new(vec![0])),
        }
    }

    /// Bytes of commands `after + 1 ..= through` (0 when `through <= after`).
    pub fn between(&self, after: Lsn, through: Lsn) -> u64 {
        if through <= after {
            return 0;
        }
        let mut prefix = self.prefix.lock().unwrap_or_else(PoisonError::into_inner);
        let have = prefix.len() as Lsn - 1;
        if through > have {
            let mut seeds = self.workload.command_seeds();
            let mut sum = prefix[have as usize];
            for n in have + 1..=through {
                let cmd = self.workload.write_command(&mut seeds, n);
                sum += (cmd.encoded_len() + RECORD_HEADER_BYTES) as u64;
                prefix.push(sum);
            }
        }
        prefix[through as usize] - prefix[after as usize]
    }
}

/// What one crash lost of the acknowledged commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Loss {
    /// max(0, acked(T) − r).
    pub lost_acked_ops: u64,
    /// T − ack time of command r+1 when r < acked(T), else 0.
    pub loss_window_ms: f64,
    /// Log bytes (record header + payload) of the lost acknowledged commands.
    pub lost_bytes: u64,
    /// The window reaches back to the trial's first acknowledgement, so it is only a lower
    /// bound of the true one (docs/design.md, "Loss window", "Censoring").
    pub censored: bool,
}

/// The loss window of one crash state and whether it is censored.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    /// T − the earliest published ack time among r+1..=acked(T), ms (0 when r >= acked(T)).
    pub ms: f64,
    /// True when no command 1..=r was acknowledged before the window's start: every command
    /// acknowledged in the trial up to T was lost, so a longer history could have shown a
    /// longer window.
    pub censored: bool,
}

/// The loss window of a crash at `t_ns` where `acked` = acked(T) and `r` was recovered: the
/// one definition every target uses (docs/design.md, "Loss window").
///
/// The ack time of r+1 comes from the log; if r+1's acknowledgement was not published (the
/// kill came between its return and the store), the earliest published ack time among
/// r+1..=acked is used, which can only shorten the window by the gap between two acks.
/// Guarantees `censored` is false whenever `ms` is 0.
pub fn window(acks: &AckLog, t_ns: u64, acked: Lsn, r: Lsn) -> Window {
    if r >= acked {
        return Window::default();
    }
    let first_ack_ns = (r + 1..=acked)
        .filter_map(|n| acks.ack_time_ns(n))
        .min()
        .unwrap_or(t_ns);
    let ms = t_ns.saturating_sub(first_ack_ns) as f64 / 1e6;
    // Recovery loads a prefix 1..=r, so a survivor acknowledged before the window opened
    // proves the history reached further back than the loss. LSN 1 is nearly always such a
    // survivor, so the scan usually stops at once.
    let survivor_before = (1..=r)
        .filter_map(|n| acks.ack_time_ns(n))
        .any(|a| a < first_ack_ns);
    Window {
        ms,
        censored: ms > 0.0 && !survivor_before,
    }
}

/// The loss of a crash at `t_ns` where `acked` = acked(T) and `r` was recovered (the window
/// as in [`window`]).
pub fn measure(acks: &AckLog, t_ns: u64, acked: Lsn, r: Lsn, bytes: &RecordBytes) -> Loss {
    if r >= acked {
        return Loss::default();
    }
    let w = window(acks, t_ns, acked, r);
    Loss {
        lost_acked_ops: acked - r,
        loss_window_ms: w.ms,
        lost_bytes: bytes.between(r, acked),
        censored: w.censored,
    }
}

/// p50, p99 and max of a set of values (nearest rank; all 0 when empty): the one quantile
/// estimator of the crash lab and of the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// The 0-based index of the nearest-rank `q` quantile in a sorted slice of `len` values: the
/// project's one definition (docs/design.md, "Quantiles").
pub use durlab_engine::quantile::nearest_rank;

impl Summary {
    /// Summarises `values` (order irrelevant).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Summary {
        let mut v: Vec<f64> = values.into_iter().collect();
        Summary::of_unsorted(&mut v)
    }

    /// Summarises `v` in place, reordering it: a selection per figure instead of a sort, for
    /// the report's bootstrap, which summarises thousands of resamples.
    pub fn of_unsorted(v: &mut [f64]) -> Summary {
        if v.is_empty() {
            return Summary::default();
        }
        let n = v.len();
        let p99 = *v
            .select_nth_unstable_by(nearest_rank(n, 0.99), f64::total_cmp)
            .1;
        // The p50 rank is at or below the p99 rank, so it lies in the part left of it.
        let upto = nearest_rank(n, 0.99);
        let p50 = *v[..=upto]
            .select_nth_unstable_by(nearest_rank(n, 0.50), f64::total_cmp)
            .1;
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Summary { p50, p99, max }
    }
}

/// Which figures of a loss-window [`Summary`] are only lower bounds because censored windows
/// (docs/design.md, "Censoring") sit at or below them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LowerBounds {
    pub p50: bool,
    pub p99: bool,
    pub max: bool,
}

impl LowerBounds {
    /// The figures of `s` (a summary of every window, censored or not) that censored windows
    /// can move: a nearest-rank quantile is exact only when every censored value lies strictly
    /// above it, since raising a value above the quantile leaves the ranks below it alone,
    /// while raising one at or below it can lift the quantile.
    pub fn of(s: &Summary, censored_windows: impl IntoIterator<Item = f64>) -> LowerBounds {
        let lowest = censored_windows.into_iter().fold(f64::INFINITY, f64::min);
        LowerBounds {
            p50: lowest <= s.p50,
            p99: lowest <= s.p99,
            max: lowest <= s.max,
        }
    }

    /// True when any figure is a lower bound.
    pub fn any(&self) -> bool {
        self.p50 || self.p99 || self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s = Summary::of((1..=100).map(f64::from));
        assert_eq!((s.p50, s.p99, s.max), (50.0, 99.0, 100.0));
        assert_eq!(Summary::of([]), Summary::default());
        // The selection agrees with a sort on unordered input, duplicates and small sets.
        for v in [
            vec![3.0, 1.0, 2.0],
            vec![5.0],
            vec![2.0, 2.0, 9.0, 1.0, 2.0, 7.0],
        ] {
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let at = |q| sorted[super::nearest_rank(sorted.len(), q)];
            let s = Summary::of(v);
            assert_eq!(
                (s.p50, s.p99, s.max),
                (at(0.5), at(0.99), sorted[sorted.len() - 1])
            );
        }
    }

    /// An ack log whose LSN n was acknowledged at `acks[n - 1]` ns (0: never).
    fn log(acks: &[u64]) -> AckLog {
        AckLog {
            highest_acked: acks.len() as Lsn,
            highest_issued: acks.len() as Lsn,
            ack_ns: acks.to_vec(),
            ..AckLog::default()
        }
    }

    #[test]
    fn a_window_reaching_the_first_acknowledgement_is_censored() {
        let acks = log(&[1_000_000, 2_000_000, 3_000_000, 4_000_000]);
        let t = 5_000_000;
        // Everything lost: the window is the trial's whole acknowledged history.
        let all = window(&acks, t, 4, 0);
        assert_eq!((all.ms, all.censored), (4.0, true));
        // Command 1 survived and was acknowledged before the loss began: a true window.
        let some = window(&acks, t, 4, 1);
        assert_eq!((some.ms, some.censored), (3.0, false));
        // Nothing lost: no window, nothing censored.
        assert_eq!(window(&acks, t, 4, 4), Window::default());
    }

    #[test]
    fn a_survivor_that_was_never_acknowledged_does_not_end_the_censoring() {
        // Command 1 reached the disk but its acknowledgement never happened (0), and command 2
        // was acknowledged later than 3: the earliest acknowledgement, 3's, is lost.
        let acks = log(&[0, 3_000_000, 2_000_000]);
        let w = window(&acks, 5_000_000, 3, 1);
        assert_eq!((w.ms, w.censored), (3.0, true));
        // Known-bad companion: with command 1 acknowledged first, the same loss is exact.
        let acks = log(&[1_000_000, 3_000_000, 2_000_000]);
        assert!(!window(&acks, 5_000_000, 3, 1).censored);
    }

    #[test]
    fn lower_bounds_follow_the_censored_values() {
        let values = (1..=100).map(f64::from);
        let s = Summary::of(values);
        // One censored value above p99 moves only the max.
        assert_eq!(
            LowerBounds::of(&s, [100.0]),
            LowerBounds {
                p50: false,
                p99: false,
                max: true
            }
        );
        // One at the median makes p50, p99 and max lower bounds.
        assert_eq!(
            LowerBounds::of(&s, [50.0]),
            LowerBounds {
                p50: true,
                p99: true,
                max: true
            }
        );
        assert!(!LowerBounds::of(&s, []).any());
    }

    #[test]
    fn record_bytes_are_sums_of_the_records_in_any_order_of_questions() {
        let w = Workload::new(&crate::scenario::builtin::scenario().workload);
        let mut stream = w.writer(0);
        let direct = |a: Lsn, b: Lsn, s: &mut crate::workload::WriterStream<'_>| -> u64 {
            (a + 1..=b)
                .map(|n| (s.write_command(n).encoded_len() + RECORD_HEADER_BYTES) as u64)
                .sum()
        };
        let bytes = RecordBytes::new(w.clone());
        for (a, b) in [(5, 40), (0, 3), (100, 90), (30, 300), (0, 300), (299, 300)] {
            assert_eq!(bytes.between(a, b), direct(a, b, &mut stream), "({a}, {b}]");
        }
    }
}
