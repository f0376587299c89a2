//! The loss window of one crash (docs/design.md, "Loss window") and summaries over trials.

use std::sync::{Arc, Mutex, PoisonError};

use durlab_engine::Lsn;
use durlab_engine::aof::record::RECORD_HEADER_BYTES;
use serde::Serialize;

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
}

/// The loss of a crash at `t_ns` where `acked` = acked(T) and `r` was recovered.
///
/// The ack time of r+1 comes from the page; if r+1's acknowledgement was not published (the
/// kill came between its return and the store), the earliest published ack time among
/// r+1..=acked is used, which can only shorten the window by the gap between two acks.
pub fn measure(acks: &AckLog, t_ns: u64, acked: Lsn, r: Lsn, bytes: &RecordBytes) -> Loss {
    if r >= acked {
        return Loss::default();
    }
    let first_ack_ns = (r + 1..=acked)
        .filter_map(|n| acks.ack_time_ns(n))
        .min()
        .unwrap_or(t_ns);
    Loss {
        lost_acked_ops: acked - r,
        loss_window_ms: t_ns.saturating_sub(first_ack_ns) as f64 / 1e6,
        lost_bytes: bytes.between(r, acked),
    }
}

/// p50, p99 and max of a set of values (nearest rank; all 0 when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises `values` (order irrelevant).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Summary {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return Summary::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Summary {
            p50: rank(0.50),
            p99: rank(0.99),
            max: v[v.len() - 1],
        }
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
