//! The checker can fail: planted divergence, a truncated log and invented LSNs are reported
//! as `divergent`, `lost-acked` and `phantom`, with the loss window computed from the ack page.

use std::time::Duration;

use durlab_engine::aof::record::RECORD_HEADER_BYTES;
use durlab_engine::aof::{self, FIRST_RECORD_OFFSET, LOG_FILE_NAME};
use durlab_engine::clock::now_ns;
use durlab_engine::{Command, Engine, EngineConfig, FsyncPolicy};
use durlab_harness::crashlab::ackpage::{AckLog, AckPage};
use durlab_harness::crashlab::verdict::{Verdict, recover_and_judge};
use durlab_harness::crashlab::worker::run_writers;
use durlab_harness::crashlab::{FaultKind, loss};
use durlab_harness::oracle::Oracle;
use durlab_harness::scenario::builtin;
use durlab_harness::workload::Workload;

fn workload(seed: u64) -> Workload {
    let mut spec = builtin::scenario().workload;
    spec.seed = seed;
    Workload::new(&spec)
}

/// Runs `always` for a moment with an ack page; returns (config, ack log, crash time).
fn run_always(dir: &std::path::Path, w: &Workload) -> (EngineConfig, AckLog, u64) {
    let config = EngineConfig::new(dir.join("data")).policy(FsyncPolicy::Always);
    let page_path = dir.join("ack.page");
    let page = AckPage::create(&page_path, 1 << 16).unwrap();
    let (engine, _) = Engine::open(config.clone()).unwrap();
    let run = run_writers(&engine, w, 2, Duration::from_millis(200), &page);
    assert!(run.error.is_none());
    drop(engine);
    let t = now_ns();
    (config, AckLog::read(&page_path).unwrap(), t)
}

#[test]
fn truncated_log_under_always_is_lost_acked() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(3);
    let (config, acks, t) = run_always(tmp.path(), &w);
    let acked = acks.acked_before(t);
    assert!(acked >= 5, "some commands were acknowledged");
    // Cut the last 3 records: what a broken engine that acknowledged before syncing would
    // leave after power loss.
    let records = aof::read_commands(&config.dir).unwrap();
    let keep = records.len() - 3;
    let cut_at: u64 = FIRST_RECORD_OFFSET
        + records[..keep]
            .iter()
            .map(|(_, c)| (c.encoded_len() + RECORD_HEADER_BYTES) as u64)
            .sum::<u64>();
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(config.dir.join(LOG_FILE_NAME))
        .unwrap();
    log.set_len(cut_at).unwrap();
    drop(log);

    let j = recover_and_judge(config, &Oracle::new(w.clone()), acked, acks.highest_issued);
    assert_eq!(j.verdict, Verdict::LostAcked, "{}", j.detail);
    assert!(j.verdict.is_violation(FaultKind::Kill9));
    assert_eq!(j.recovered_lsn, keep as u64);
    let l = loss::measure(
        &acks,
        t,
        acked,
        j.recovered_lsn,
        &loss::RecordBytes::new(w.clone()),
    );
    assert_eq!(l.lost_acked_ops, acked - keep as u64);
    assert!(l.loss_window_ms > 0.0);
    let bytes: u64 = records[keep..acked as usize]
        .iter()
        .map(|(_, c)| (c.encoded_len() + RECORD_HEADER_BYTES) as u64)
        .sum();
    assert_eq!(l.lost_bytes, bytes);
}

#[test]
fn wrong_seed_or_a_foreign_command_is_divergent() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(3);
    let (config, acks, t) = run_always(tmp.path(), &w);
    let acked = acks.acked_before(t);
    let ok = recover_and_judge(
        config.clone(),
        &Oracle::new(w.clone()),
        acked,
        acks.highest_issued,
    );
    assert_eq!(ok.verdict, Verdict::Ok, "{}", ok.detail);

    let wrong = recover_and_judge(
        config.clone(),
        &Oracle::new(workload(4)),
        acked,
        acks.highest_issued,
    );
    assert_eq!(wrong.verdict, Verdict::Divergent);
    assert!(
        wrong.detail.contains("differs from the oracle"),
        "{}",
        wrong.detail
    );

    // Plant a command the workload never issued (as if the log had been edited).
    let (engine, _) = Engine::open(config.clone()).unwrap();
    let first_key = match w.command(1) {
        Command::Set { key, .. } => key,
        other => panic!("builtin workload writes SETs, got {other:?}"),
    };
    engine
        .execute(Command::Del {
            key: first_key.clone(),
        })
        .unwrap();
    drop(engine);
    let planted = recover_and_judge(
        config,
        &Oracle::new(w.clone()),
        acked,
        acks.highest_issued + 1,
    );
    assert_eq!(planted.verdict, Verdict::Divergent, "{}", planted.detail);
    assert!(
        planted
            .detail
            .contains(std::str::from_utf8(&first_key).unwrap()),
        "{}",
        planted.detail
    );
}

#[test]
fn recovering_more_than_was_issued_is_phantom() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(3);
    let (config, acks, t) = run_always(tmp.path(), &w);
    let acked = acks.acked_before(t);
    let j = recover_and_judge(
        config,
        &Oracle::new(w.clone()),
        acked,
        acks.highest_issued - 1,
    );
    assert_eq!(j.verdict, Verdict::Phantom);
    assert!(j.verdict.is_violation(FaultKind::Kill9));
}

#[test]
fn refusal_is_a_violation_except_for_media_damage() {
    assert!(Verdict::Refused.is_violation(FaultKind::Kill9));
    assert!(Verdict::Refused.is_violation(FaultKind::FsyncEio));
    assert!(!Verdict::Refused.is_violation(FaultKind::BitFlip));
    assert!(!Verdict::Refused.is_violation(FaultKind::ZeroSector));
    assert!(Verdict::Divergent.is_violation(FaultKind::BitFlip));
    assert!(!Verdict::Ok.is_violation(FaultKind::Kill9));
}
