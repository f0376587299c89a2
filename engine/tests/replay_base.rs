//! Resuming recovery from a replay base (`Engine::replay_base`, `Engine::open_from`): a log
//! that starts with the base's bytes recovers to exactly what a recovery from its start gives
//! (state, LSN, counts, cuts, refusals), and a log that does not is recovered from its start.

mod common;

use std::path::Path;

use common::{config, dump, expected_after, log_path, open, write_n};
use durlab_engine::{BackendKind, Engine, FsyncPolicy, Persistence, RecoveryReport, ReplayBase};

fn cfg(dir: &Path) -> durlab_engine::EngineConfig {
    config(dir, BackendKind::Pwrite, FsyncPolicy::Always)
}

/// The log of commands 1..=n, as bytes.
fn log_of(n: u64) -> Vec<u8> {
    let t = tempfile::tempdir().unwrap();
    drop(write_n(&cfg(t.path()), n));
    std::fs::read(log_path(t.path())).unwrap()
}

/// The base recovered from the log of commands 1..=n.
fn base_of(n: u64) -> ReplayBase {
    let t = tempfile::tempdir().unwrap();
    drop(write_n(&cfg(t.path()), n));
    let (engine, report) = open(&cfg(t.path()));
    assert_eq!(report.recovered_lsn, n);
    let base = engine
        .replay_base()
        .unwrap()
        .expect("mode aof, nothing written");
    assert_eq!((base.records(), base.last_lsn()), (n, n));
    assert_eq!(base.len_bytes(), log_of(n).len() as u64);
    base
}

type Dump = Vec<(Vec<u8>, durlab_engine::keyspace::Entry)>;

/// What one recovery gave: its figures and files (`DIR` for its directory) or its refusal,
/// and the state.
type Outcome = (String, Option<Dump>);

/// Opens a log holding `bytes` from the start and from `bases`; returns both outcomes and the
/// second's report.
fn both(bytes: &[u8], bases: &[&ReplayBase]) -> (Outcome, Outcome, Option<RecoveryReport>) {
    let outcome = |r: durlab_engine::Result<(Engine, RecoveryReport)>, dir: &Path| {
        let d = dir.display().to_string();
        match r {
            Ok((engine, report)) => {
                let log = std::fs::read(log_path(dir)).unwrap();
                let shown = format!(
                    "lsn {} records {} bytes {} cut {:?} {:?} discarded {} log {} bytes; {:?}",
                    report.recovered_lsn,
                    report.records_replayed,
                    report.bytes_read,
                    report.cut_offset,
                    report.cut_reason,
                    report.tail_bytes_discarded,
                    log.len(),
                    report.changes,
                );
                (
                    (shown.replace(&d, "DIR"), Some(engine.read(dump))),
                    Some(report),
                )
            }
            Err(e) => ((format!("refused: {e}").replace(&d, "DIR"), None), None),
        }
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(log_path(a.path()), bytes).unwrap();
    std::fs::write(log_path(b.path()), bytes).unwrap();
    let (full, _) = outcome(Engine::open(cfg(a.path())), a.path());
    let (resumed, report) = outcome(Engine::open_from(cfg(b.path()), bases), b.path());
    (full, resumed, report)
}

#[test]
fn a_log_extending_the_base_resumes_after_it_with_the_same_result() {
    let base = base_of(25);
    let log = log_of(40);
    let (full, resumed, report) = both(&log, &[&base]);
    assert_eq!(resumed, full);
    let report = report.unwrap();
    assert_eq!((report.resumed_records, report.resumed_from), (25, Some(0)));
    assert_eq!(report.recovered_lsn, 40);
    assert_eq!(
        report.records_replayed, 40,
        "the base's records count as replayed"
    );
    assert_eq!(report.bytes_read, log.len() as u64);
    // And the state is the commands' state, not only the full replay's.
    let t = tempfile::tempdir().unwrap();
    std::fs::write(log_path(t.path()), &log).unwrap();
    let (engine, _) = Engine::open_from(cfg(t.path()), &[&base]).unwrap();
    assert_eq!(engine.read(dump), dump(&expected_after(40)));
}

#[test]
fn a_log_equal_to_the_base_resumes_at_its_end() {
    let base = base_of(25);
    let (full, resumed, report) = both(&log_of(25), &[&base]);
    assert_eq!(resumed, full);
    assert_eq!(report.unwrap().resumed_records, 25);
}

#[test]
fn a_torn_tail_after_the_base_is_cut_as_from_the_start() {
    let base = base_of(25);
    let mut log = log_of(40);
    let keep = log.len() - 7; // the last record torn
    log.truncate(keep);
    log.extend_from_slice(&[0xAB; 3]);
    let (full, resumed, report) = both(&log, &[&base]);
    assert_eq!(resumed, full);
    let report = report.unwrap();
    assert_eq!(report.resumed_records, 25);
    assert!(report.cut_offset.is_some(), "{full:?}");
    assert_eq!(report.recovered_lsn, 39);
}

#[test]
fn damage_after_the_base_is_refused_as_from_the_start() {
    let base = base_of(25);
    let mut log = log_of(40);
    let at = base.len_bytes() as usize + 20; // inside record 26, valid records follow
    log[at] ^= 0xFF;
    let (full, resumed, _) = both(&log, &[&base]);
    assert!(full.0.starts_with("refused"), "{full:?}");
    assert_eq!(resumed, full);
}

#[test]
fn a_log_differing_inside_the_base_is_replayed_from_its_start() {
    let base = base_of(25);
    let mut log = log_of(40);
    let at = base.len_bytes() as usize - 5; // inside record 25
    log[at] ^= 0xFF;
    let (full, resumed, report) = both(&log, &[&base]);
    assert!(
        full.0.starts_with("refused"),
        "damage in the middle: {full:?}"
    );
    assert_eq!(resumed, full);
    assert!(report.is_none());
    // A log shorter than the base, or with a different first record, is replayed whole.
    for log in [log_of(20), {
        let mut l = log_of(40);
        l[70] ^= 1;
        l
    }] {
        let (full, resumed, report) = both(&log, &[&base]);
        assert_eq!(resumed, full);
        if let Some(r) = report {
            assert_eq!((r.resumed_records, r.resumed_from), (0, None));
        }
    }
}

#[test]
fn the_sync_hint_is_not_compared() {
    let base = base_of(25);
    let mut log = log_of(40);
    log[32..64].fill(0); // no hint
    let (full, resumed, report) = both(&log, &[&base]);
    assert_eq!(resumed, full);
    assert_eq!(report.unwrap().resumed_records, 25);
}

#[test]
fn the_first_matching_base_is_used() {
    let (short, long) = (base_of(10), base_of(30));
    let (full, resumed, report) = both(&log_of(40), &[&long, &short]);
    assert_eq!(resumed, full);
    let r = report.unwrap();
    assert_eq!((r.resumed_records, r.resumed_from), (30, Some(0)));
    let (_, _, report) = both(&log_of(20), &[&long, &short]);
    let r = report.unwrap();
    assert_eq!((r.resumed_records, r.resumed_from), (10, Some(1)));
}

#[test]
fn no_base_after_a_write_or_outside_mode_aof() {
    let t = tempfile::tempdir().unwrap();
    drop(write_n(&cfg(t.path()), 5));
    let (engine, _) = open(&cfg(t.path()));
    engine.execute(common::command(6)).unwrap();
    assert!(engine.replay_base().unwrap().is_none());
    let s = tempfile::tempdir().unwrap();
    let mut c = cfg(s.path());
    c.persistence = Persistence::Hybrid;
    let (engine, _) = open(&c);
    assert!(engine.replay_base().unwrap().is_none());
}

#[test]
fn other_modes_ignore_bases() {
    let base = base_of(5);
    let t = tempfile::tempdir().unwrap();
    let mut c = cfg(t.path());
    c.persistence = Persistence::AofSnapshot;
    drop(write_n(&c, 8));
    let (engine, report) = Engine::open_from(c, &[&base]).unwrap();
    assert_eq!((report.resumed_records, report.recovered_lsn), (0, 8));
    assert_eq!(engine.read(dump), dump(&expected_after(8)));
}

#[test]
fn a_difference_before_the_last_4_kib_of_a_long_base_is_found() {
    // `starts` compares the base's last 4 KiB first; the bytes before must still be compared.
    let n = 400;
    let base = base_of(n);
    assert!(base.len_bytes() > 3 * 4096, "{} bytes", base.len_bytes());
    for at in [70, base.len_bytes() as usize - 4096 - 1] {
        let mut log = log_of(n + 10);
        log[at] ^= 1;
        let (full, resumed, report) = both(&log, &[&base]);
        assert_eq!(resumed, full, "byte {at}");
        if let Some(r) = report {
            assert_eq!((r.resumed_records, r.resumed_from), (0, None), "byte {at}");
        }
    }
    // And the untouched log resumes.
    let (full, resumed, report) = both(&log_of(n + 10), &[&base]);
    assert_eq!(resumed, full);
    assert_eq!(report.unwrap().resumed_records, n);
}

#[test]
fn into_replay_base_gives_the_base_replay_base_gives() {
    let t = tempfile::tempdir().unwrap();
    drop(write_n(&cfg(t.path()), 30));
    let (engine, _) = open(&cfg(t.path()));
    let copied = engine.replay_base().unwrap().unwrap();
    let want = engine.read(dump);
    // Another handle alive: its keyspace is copied, not taken.
    let other = engine.clone();
    let taken = engine.into_replay_base().unwrap().unwrap();
    assert_eq!(
        other.read(dump),
        want,
        "the other handle still reads the state"
    );
    drop(other);
    let (engine, _) = open(&cfg(t.path()));
    let moved = engine.into_replay_base().unwrap().unwrap();
    for base in [&taken, &moved] {
        assert_eq!(
            (base.records(), base.last_lsn(), base.len_bytes()),
            (copied.records(), copied.last_lsn(), copied.len_bytes())
        );
        assert_eq!(dump(base.keyspace()), want);
    }
    // And it resumes a longer log as the copy does.
    let (full, resumed, report) = both(&log_of(40), &[&moved]);
    assert_eq!(resumed, full);
    assert_eq!(report.unwrap().resumed_records, 30);
}

/// A recovery from a base is lent a copy of the base's keyspace and puts it back, undone,
/// when its engine is dropped: every later recovery from the base gets that copy and still
/// recovers what a recovery from the start gives (logs longer than, equal to and differing
/// from the base, and one refused), and the base's own keyspace never changes.
#[test]
fn a_lent_copy_comes_back_undone_for_the_next_recovery() {
    let base = base_of(25);
    let before = dump(base.keyspace());
    assert_eq!(base.idle_copies(), 0, "no copy made before a recovery");
    let mut damaged = log_of(60);
    let at = log_of(50).len() - 10; // inside record 50, with synced records after it
    damaged[at] ^= 0x40;
    for (what, log) in [
        ("40 records", log_of(40)),
        ("the base's 25", log_of(25)),
        ("60 records", log_of(60)),
        ("damage after the base", damaged),
        ("30 records", log_of(30)),
    ] {
        let (full, resumed, report) = both(&log, &[&base]);
        assert_eq!(resumed, full, "{what}");
        assert_eq!(
            report.is_none(),
            what.starts_with("damage"),
            "{what}: refused"
        );
        if let Some(report) = report {
            assert_eq!(report.resumed_records, 25, "{what}");
            assert_eq!(base.idle_copies(), 1, "{what}: the copy was put back");
        }
    }
    assert_eq!(dump(base.keyspace()), before);
}

/// An engine lent a copy that becomes a base itself keeps its changes (the new base holds
/// its log's state); the copy is not put back to the old base, which is unchanged.
#[test]
fn a_lent_copy_that_becomes_a_base_keeps_its_changes() {
    let base = base_of(25);
    let before = dump(base.keyspace());
    let t = tempfile::tempdir().unwrap();
    std::fs::write(log_path(t.path()), log_of(40)).unwrap();
    let (engine, report) = Engine::open_from(cfg(t.path()), &[&base]).unwrap();
    assert_eq!(report.resumed_records, 25);
    let next = engine.into_replay_base().unwrap().unwrap();
    assert_eq!(dump(next.keyspace()), dump(&expected_after(40)));
    assert_eq!(base.idle_copies(), 0, "kept by the new base, not put back");
    assert_eq!(dump(base.keyspace()), before);
    // Both bases resume the recovery of a longer log as a recovery from the start gives.
    for b in [&base, &next] {
        let (full, resumed, _) = both(&log_of(55), &[b]);
        assert_eq!(resumed, full);
    }
}
