//! The `everysec` lag check (docs/design.md, "Durability contracts", "The everysec lag"):
//! the engine never acknowledges while the last completed sync began more than
//! `everysec_max_lag_ms` ago; a writer whose record is written but not synced waits instead.
//!
//! Judged from what the trial recorded, not from the engine's own word: the I/O trace's data
//! syncs of the log (when each completed, and which writes it covers: those that returned
//! before it began) and the ack page (when each LSN was acknowledged). At every
//! acknowledgement time a, every LSN acknowledged before a − `everysec_max_lag_ms` −
//! [`CLOCK_SLACK_NS`] must lie in log bytes that a sync completed before a covers. This is
//! the property the engine keeps even when a sync stalls longer than the bound (then the
//! promise acked(T − 2 s) cannot hold, docs/design.md "Loss window", Gap): a writer that
//! ignores the lag bound breaks it, an honest one waits.
//!
//! Also exact when the engine's background tick finds nothing new to sync (no fdatasync,
//! nothing in the trace, yet the engine counts it as a sync): that happens only when every
//! written record is already durable, and then every acknowledged one is covered, which is
//! all this check asks.
//!
//! Applies to policy `everysec` in persistence mode `aof` (one log file whose record
//! offsets follow from the command sequence), with a trace: the engine's image-fault trials.

use std::path::Path;

use durlab_engine::aof::{FIRST_RECORD_OFFSET, LOG_FILE_NAME};
use durlab_engine::backend::recording::{Entry, Op, Segment, read_trace};
use durlab_engine::{FsyncPolicy, Lsn, Persistence};
use serde::Serialize;

use super::ackpage::AckLog;
use super::loss::RecordBytes;
use super::{Lab, TrialOutcome};
use crate::driver::matrix::EngineSetup;

/// Allowance for the engine's millisecond clock (it compares whole milliseconds since open)
/// and for publishing an acknowledgement after `execute` returns, ns. A writer that ignores
/// the bound misses it by the length of the stall, seconds.
pub const CLOCK_SLACK_NS: u64 = 5_000_000;

/// What the check found in one trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LagCheck {
    /// Acknowledgements checked.
    pub acks_checked: u64,
    /// The first acknowledgement that broke the property, with why; `None`: it held.
    pub violation: Option<String>,
    /// The crash came more than the bound after the last completed sync began (or after the
    /// workload started, with none): the trial ran long enough for a writer that ignores the
    /// bound to break it, so a pass says something.
    pub bound_crossed: bool,
}

/// One completed data sync of the log: when it completed and the highest LSN whose record
/// lies within the bytes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Covered {
    pub end_ns: u64,
    pub begin_ns: u64,
    pub lsn: Lsn,
}

/// The data syncs of the log file (named [`LOG_FILE_NAME`]) in `entries`, in trace order, with the LSN each
/// covers: the records ending at or below the highest end of the writes of real bytes to
/// `log` that returned before the sync began (zero-filled preallocation does not count).
/// `bytes` gives each command's record size; records start at [`FIRST_RECORD_OFFSET`].
pub fn log_syncs(entries: &[Entry], bytes: &RecordBytes) -> Vec<Covered> {
    let is_log = |p: &Path| p.file_name().is_some_and(|n| n == LOG_FILE_NAME);
    let mut log_files = Vec::new();
    // (seq, end offset) of every write of real bytes to the log, in seq order.
    let mut writes: Vec<(u64, u64)> = Vec::new();
    let mut syncs = Vec::new();
    for e in entries {
        match &e.op {
            Op::Create { file, path } | Op::Open { file, path } if is_log(path) => {
                log_files.push(*file);
            }
            Op::Write { file, offset, data }
                if log_files.contains(file)
                    && data.iter().any(|s| matches!(s, Segment::Bytes(_))) =>
            {
                let len: u64 = data.iter().map(Segment::len).sum();
                writes.push((e.seq, offset + len));
            }
            Op::SyncData {
                file,
                begin_seq,
                begin_ns,
            } if log_files.contains(file) => {
                let end = writes
                    .iter()
                    .take_while(|(seq, _)| seq < begin_seq)
                    .map(|&(_, end)| end)
                    .max()
                    .unwrap_or(0);
                syncs.push((e.t_ns, *begin_ns, end));
            }
            _ => {}
        }
    }
    syncs
        .into_iter()
        .map(|(end_ns, begin_ns, end)| Covered {
            end_ns,
            begin_ns,
            lsn: lsn_within(end, bytes),
        })
        .collect()
}

/// The highest LSN whose record ends at or below byte `end` of the log.
fn lsn_within(end: u64, bytes: &RecordBytes) -> Lsn {
    let Some(room) = end.checked_sub(FIRST_RECORD_OFFSET) else {
        return 0;
    };
    // Galloping, then bisection, over the prefix sums (monotone in n): the sums are built
    // lazily, so this generates at most about twice the answer's commands. Records are at
    // least 25 bytes, so the answer is at most room / 25.
    let cap = room / 25;
    let fits = |n: Lsn| bytes.between(0, n) <= room;
    let mut hi = 1;
    while hi < cap && fits(hi) {
        hi = (hi * 2).min(cap);
    }
    let mut lo = hi / 2;
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The check for one engine image-fault trial of `setup` (its I/O trace at `trace`, its
/// acknowledgements `acks`), when it applies: policy `everysec` in mode `aof`; else `None`.
///
/// # Errors
/// A trace that cannot be read, naming it.
pub fn check_trial(
    lab: &Lab,
    setup: &EngineSetup,
    trace: &Path,
    acks: &AckLog,
    kill_ns: u64,
) -> Result<Option<LagCheck>, String> {
    if setup.policy != FsyncPolicy::EverySec || setup.persistence != Persistence::Aof {
        return Ok(None);
    }
    let t = read_trace(trace).map_err(|e| format!("everysec lag check: {e}"))?;
    let max_lag_ns = lab
        .config(setup, Path::new("."))
        .everysec_max_lag_ms
        .saturating_mul(1_000_000);
    let syncs = log_syncs(&t.entries, &lab.record_bytes);
    Ok(Some(check(&syncs, acks, max_lag_ns, kill_ns)))
}

/// Puts a trial's `check` on its state at the end of the trace (the last of `outcomes`, in
/// cut order): a violation makes that state violating, with the reason first in its detail.
pub fn attach(outcomes: &mut [TrialOutcome], check: LagCheck) {
    let Some(last) = outcomes.last_mut() else {
        return;
    };
    if let Some(why) = &check.violation {
        last.violation = true;
        last.detail = if last.detail.is_empty() {
            why.clone()
        } else {
            format!("{why}; {}", last.detail)
        };
    }
    last.everysec_lag = Some(check);
}

/// Checks the property over every acknowledgement on `acks` with `syncs` (the log's
/// completed data syncs, [`log_syncs`]) and the bound `max_lag_ns`, for a trial that crashed
/// at `kill_ns`.
pub fn check(syncs: &[Covered], acks: &AckLog, max_lag_ns: u64, kill_ns: u64) -> LagCheck {
    let last_began = syncs
        .iter()
        .filter(|s| s.end_ns < kill_ns)
        .map(|s| s.begin_ns)
        .max()
        .unwrap_or(acks.ready_ns);
    let bound_crossed = kill_ns.saturating_sub(last_began) > max_lag_ns;
    // Acknowledgements in time order, with the highest LSN acknowledged up to each.
    let mut by_time: Vec<(u64, Lsn)> = acks
        .ack_ns
        .iter()
        .enumerate()
        .filter(|&(_, &t)| t != 0)
        .map(|(i, &t)| (t, i as Lsn + 1))
        .collect();
    by_time.sort_unstable();
    let mut highest = Vec::with_capacity(by_time.len());
    let mut top = 0;
    for &(_, lsn) in &by_time {
        top = top.max(lsn);
        highest.push(top);
    }
    // acked(t): the highest LSN acknowledged strictly before t.
    let acked_before = |t: u64| {
        let i = by_time.partition_point(|&(a, _)| a < t);
        if i == 0 { 0 } else { highest[i - 1] }
    };
    let mut syncs: Vec<Covered> = syncs.to_vec();
    syncs.sort_by_key(|s| s.end_ns);
    let mut next_sync = 0;
    // The latest completed sync and the highest LSN covered by those completed so far.
    let (mut last, mut durable): (Option<Covered>, Lsn) = (None, 0);
    for &(a, lsn) in &by_time {
        while next_sync < syncs.len() && syncs[next_sync].end_ns < a {
            durable = durable.max(syncs[next_sync].lsn);
            last = Some(syncs[next_sync]);
            next_sync += 1;
        }
        let due = acked_before(a.saturating_sub(max_lag_ns + CLOCK_SLACK_NS));
        if due > durable {
            let since = match last {
                Some(s) => format!(
                    "the last completed sync began {:.0} ms earlier (covering LSN {})",
                    a.saturating_sub(s.begin_ns) as f64 / 1e6,
                    s.lsn
                ),
                None => format!(
                    "no sync had completed since the workload started {:.0} ms earlier",
                    a.saturating_sub(acks.ready_ns) as f64 / 1e6
                ),
            };
            return LagCheck {
                acks_checked: by_time.len() as u64,
                bound_crossed,
                violation: Some(format!(
                    "everysec lag bound broken: LSN {lsn} was acknowledged while LSN {due}, acknowledged more than {} ms before, was still unsynced ({durable} synced): {since}",
                    max_lag_ns / 1_000_000
                )),
            };
        }
    }
    LagCheck {
        acks_checked: by_time.len() as u64,
        violation: None,
        bound_crossed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use crate::scenario::builtin;
    use crate::workload::Workload;

    const MS: u64 = 1_000_000;
    const LAG: u64 = 2000 * MS;

    fn acks(times_ms: &[u64]) -> AckLog {
        AckLog {
            ready_ns: 1,
            ack_ns: times_ms.iter().map(|t| t * MS).collect(),
            ..AckLog::default()
        }
    }

    fn synced(end_ms: u64, begin_ms: u64, lsn: Lsn) -> Covered {
        Covered {
            end_ns: end_ms * MS,
            begin_ns: begin_ms * MS,
            lsn,
        }
    }

    /// One ack every 100 ms for 6 s; syncs every second covering what was acknowledged when
    /// they began: the honest pattern passes.
    #[test]
    fn regular_syncs_pass() {
        let times: Vec<u64> = (1..=60).map(|i| i * 100).collect();
        let syncs: Vec<Covered> = (1..=6)
            .map(|s| synced(s * 1000 + 5, s * 1000, s * 10 - 1))
            .collect();
        let c = check(&syncs, &acks(&times), LAG, 6100 * MS);
        assert_eq!(
            c,
            LagCheck {
                acks_checked: 60,
                violation: None,
                bound_crossed: false
            }
        );
    }

    /// A sync stalled 3 s from 1.0 s: the honest engine stops acknowledging at 2 s after the
    /// last completed sync began and resumes after the stall; the broken one goes on.
    #[test]
    fn acknowledging_through_a_long_stall_fails_and_waiting_passes() {
        let syncs = [synced(1005, 1000, 9), synced(4100, 4000, 29)];
        // Honest: acks until 2.9 s (lag from the sync begun at 1.0 s stays under 2 s), none
        // in the stall past that, then after the stalled sync completed.
        let honest: Vec<u64> = (1..=29).map(|i| i * 100).chain([4200, 4300]).collect();
        let c = check(&syncs[..1], &acks(&honest[..29]), LAG, 3900 * MS);
        assert_eq!((c.violation, c.bound_crossed), (None, true));
        assert_eq!(
            check(&syncs, &acks(&honest), LAG, 4400 * MS).violation,
            None
        );
        // Broken: goes on acknowledging at 3.1 s.
        let broken: Vec<u64> = (1..=31).map(|i| i * 100).collect();
        let c = check(&syncs[..1], &acks(&broken), LAG, 3200 * MS);
        assert!(c.bound_crossed);
        let why = c.violation.expect("broken writer caught");
        assert!(why.contains("LSN 31 was acknowledged"), "{why}");
        assert!(why.contains("LSN 10") && why.contains("2000 ms"), "{why}");
        assert!(why.contains("began 2100 ms earlier"), "{why}");
    }

    /// Idle for 5 s, then a write acknowledged at once: nothing unsynced is older than the
    /// bound (the engine's no-op tick), so it passes though the last fdatasync is old.
    #[test]
    fn an_old_sync_with_nothing_unsynced_passes() {
        let syncs = [synced(1005, 1000, 3)];
        assert_eq!(
            check(&syncs, &acks(&[100, 200, 300, 6000]), LAG, 6100 * MS).violation,
            None
        );
        // Without any sync, acknowledging for more than the bound fails.
        let c = check(&[], &acks(&[100, 2200]), LAG, 2300 * MS);
        assert!(c.violation.unwrap().contains("no sync had completed"));
    }

    /// The LSNs covered by each sync follow the log's record sizes from the trace's writes.
    #[test]
    fn syncs_cover_the_records_written_before_they_began() {
        let workload = Workload::new(&builtin::scenario().workload);
        let bytes = RecordBytes::new(workload);
        let log = PathBuf::from("/d/durlab.aof");
        let end = |n| FIRST_RECORD_OFFSET + bytes.between(0, n);
        let entry = |seq, t_ns, op| Entry { seq, t_ns, op };
        let write = |from: u64, to: u64| Op::Write {
            file: 0,
            offset: from,
            data: vec![Segment::Bytes(vec![1; (to - from) as usize])],
        };
        let entries = vec![
            entry(
                0,
                1,
                Op::Create {
                    file: 0,
                    path: log.clone(),
                },
            ),
            entry(1, 2, write(0, end(3))),
            entry(
                2,
                3,
                Op::Write {
                    file: 0,
                    offset: end(3),
                    data: vec![Segment::Zeros(4096)],
                },
            ),
            entry(3, 4, write(end(3), end(7))),
            entry(
                4,
                9,
                Op::SyncData {
                    file: 0,
                    begin_seq: 3,
                    begin_ns: 5,
                },
            ),
            entry(
                5,
                10,
                Op::SyncData {
                    file: 0,
                    begin_seq: 5,
                    begin_ns: 6,
                },
            ),
            entry(
                6,
                11,
                Op::SyncData {
                    file: 1,
                    begin_seq: 6,
                    begin_ns: 7,
                },
            ),
        ];
        assert_eq!(
            log_syncs(&entries, &bytes),
            vec![
                Covered {
                    end_ns: 9,
                    begin_ns: 5,
                    lsn: 3
                },
                Covered {
                    end_ns: 10,
                    begin_ns: 6,
                    lsn: 7
                },
            ]
        );
        assert_eq!(lsn_within(end(7) - 1, &bytes), 6);
        assert_eq!(lsn_within(10, &bytes), 0);
        for n in [1, 2, 7, 64, 1000, 4097] {
            assert_eq!(lsn_within(end(n), &bytes), n);
            assert_eq!(lsn_within(end(n) + 1, &bytes), n);
            assert_eq!(lsn_within(end(n) - 1, &bytes), n - 1);
        }
    }
}
