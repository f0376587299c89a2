//! `durlab crash --fault live-copy` over the real binary: backups copied from a live data
//! directory (simulated from the run's I/O trace, `crashlab::images::copy`, at any moment,
//! after the server's own save, or after a clean stop: `crashlab::backup`), and real `cp -r`
//! and `tar` copies beside them, restored by the real engine, `durlab serve` or a real
//! redis-server, and judged by the oracle.

use std::path::Path;

use serde_json::Value;

mod cli_support;

/// Runs `args` (seed 9); asserts one record, and success unless `violating`.
fn run_expecting(args: &[&str], tmp: &Path, violating: bool) -> Vec<Value> {
    let args: Vec<&str> = args.iter().copied().chain(["--seed", "9"]).collect();
    let (output, records) = cli_support::durlab_json(&args, tmp);
    assert_eq!(
        output.status.success(),
        !violating,
        "durlab: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(records.len(), 1, "{records:#?}");
    records
}

fn run(args: &[&str], tmp: &Path) -> Vec<Value> {
    run_expecting(args, tmp, false)
}

fn states(r: &Value) -> &Vec<Value> {
    r["trial_results"].as_array().unwrap()
}

fn first_note(t: &Value) -> &str {
    t["notes"][0].as_str().unwrap()
}

/// A copy of the engine's hybrid directory taken while rewrites install new bases reads the
/// increments (`durlab.N.incr.aof`) before `durlab.manifest` (name order): a copy that spans
/// an install holds a manifest naming files it lacks, which recovery refuses, naming them. It
/// never loads a wrong state, and a copy of the idle directory at the end restores.
#[test]
fn an_engine_copy_across_rewrites_is_refused_never_loaded_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let records = run(
        &[
            "crash",
            "--fault",
            "live-copy",
            "--policy",
            "everysec",
            "--persistence",
            "hybrid",
            "--phase",
            "rewrite",
            "--copy-rate-mib",
            "1",
            "--trials",
            "1",
            "--trial-secs",
            "1.5",
            "--states",
            "6",
        ],
        tmp.path(),
    );
    let r = &records[0];
    assert_eq!(r["violations"], 0, "{r:#}");
    assert_eq!(r["verdicts"]["divergent"], 0, "{r:#}");
    assert_eq!(r["verdicts"]["phantom"], 0, "{r:#}");
    let refused: Vec<&Value> = states(r)
        .iter()
        .filter(|t| t["verdict"] == "refused")
        .collect();
    assert!(!refused.is_empty(), "no copy spanned an install: {r:#}");
    for t in &refused {
        let detail = t["detail"].as_str().unwrap();
        assert!(
            detail.contains("manifest but missing"),
            "refused for another reason: {detail}"
        );
    }
    // The copy started at the trace's end ("started at op N of N"): the server was idle.
    let at_end = |t: &&Value| {
        let note = first_note(t);
        let Some((_, rest)) = note.split_once("started at op ") else {
            return false;
        };
        let mut words = rest.split(' ');
        let (op, of, len) = (words.next(), words.next(), words.next());
        of == Some("of") && op.is_some() && op == len
    };
    let last = states(r)
        .iter()
        .find(at_end)
        .expect("the end of the trace is a cut");
    assert_eq!(
        last["verdict"], "ok",
        "the idle directory restores: {last:#}"
    );
    assert!(last["recovered_lsn"].as_u64().unwrap() > 0, "{last:#}");
}

/// The companion: the same copies judged against another seed's command sequence are
/// reported as violations, so the copies' "ok" above is a real comparison.
#[test]
fn a_restored_copy_that_differs_from_the_oracle_is_a_violation() {
    let tmp = tempfile::tempdir().unwrap();
    let records = run_expecting(
        &[
            "crash",
            "--fault",
            "live-copy",
            "--policy",
            "always",
            "--trials",
            "1",
            "--trial-secs",
            "0.5",
            "--states",
            "4",
            "--oracle-seed",
            "10",
        ],
        tmp.path(),
        true,
    );
    let r = &records[0];
    assert!(r["violations"].as_u64().unwrap() > 0, "{r:#}");
    assert!(r["verdicts"]["divergent"].as_u64().unwrap() > 0, "{r:#}");
}

/// The backup script of a team's runbook (`cp appendonly.aof dump.rdb $BACKUP`) against Redis
/// 7: `appendonly.aof` is now the directory `appendonlydir`, and without save points there is
/// no `dump.rdb`, so every copy holds nothing and restores an empty server: every
/// acknowledged command is lost (the window reaches the trial's start: censored).
#[test]
fn the_runbook_cp_of_redis_7_copies_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let records = run(
        &[
            "crash",
            "--target",
            "redis",
            "--fault",
            "live-copy",
            "--policy",
            "everysec",
            "--copy",
            "appendonly.aof,dump.rdb",
            "--trials",
            "1",
            "--trial-secs",
            "1",
            "--states",
            "4",
        ],
        tmp.path(),
    );
    let r = &records[0];
    assert_eq!(r["violations"], 0, "{r:#}");
    for t in states(r) {
        assert!(
            first_note(t).contains("0 files, 0 bytes")
                && first_note(t).contains("missing: appendonly.aof, dump.rdb"),
            "{t:#}"
        );
        assert_eq!(t["recovered_lsn"], 0, "{t:#}");
    }
    assert!(r["censored"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(r["copy"], "cp of appendonly.aof, dump.rdb at 100 MiB/s");
    // The report answers "is our backup procedure safe" with no.
    let out = tmp.path().join("out");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_durlab"))
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let section = md
        .split("## Backups copied from the live directory")
        .nth(1)
        .expect("a backups section");
    // Copies taken before the first acknowledgement are exact; every later one is empty.
    let states = r["states"].as_u64().unwrap();
    let empty = crate::states(r)
        .iter()
        .filter(|t| t["acked_lsn"].as_u64().unwrap() > 0)
        .count();
    assert!(empty > 0, "{r:#}");
    assert!(
        section.contains(&format!(
            "**unsafe**: {empty} of {states} restore an empty server."
        )),
        "{section}"
    );
    assert!(
        !md.split("## Backups").next().unwrap().contains("live-copy"),
        "backups stay out of the crash tables and the recommendation: {md}"
    );
}

/// A `cp -r` of Redis's directory while BGREWRITEAOF runs back to back: copies that span a
/// rewrite hold a manifest naming a base or increment they lack, and redis-server refuses
/// them with its own message.
#[test]
fn a_redis_copy_across_bgrewriteaof_is_refused_by_redis() {
    let tmp = tempfile::tempdir().unwrap();
    let records = run(
        &[
            "crash",
            "--target",
            "redis",
            "--fault",
            "live-copy",
            "--policy",
            "everysec",
            "--persistence",
            "hybrid",
            "--phase",
            "rewrite",
            "--copy-rate-mib",
            "5",
            "--trials",
            "1",
            "--trial-secs",
            "1.5",
            "--states",
            "6",
        ],
        tmp.path(),
    );
    let r = &records[0];
    assert_eq!(r["verdicts"]["divergent"], 0, "{r:#}");
    assert_eq!(r["verdicts"]["phantom"], 0, "{r:#}");
    let refused: Vec<&Value> = states(r)
        .iter()
        .filter(|t| t["verdict"] == "refused")
        .collect();
    assert!(!refused.is_empty(), "{r:#}");
    assert!(
        refused.iter().any(|t| t["detail"]
            .as_str()
            .unwrap()
            .contains("Unable to obtain the AOF file")),
        "{refused:#?}"
    );
}

/// The rows of `r` copied by `who` (`model`, `twin`, `real-cp`, `real-tar`).
fn copied_by<'a>(r: &'a Value, who: &str) -> Vec<&'a Value> {
    states(r).iter().filter(|t| t["copied_by"] == who).collect()
}

/// The simulated twin of real copy `real` (same trial, same moment).
fn twin_of<'a>(r: &'a Value, real: &Value) -> &'a Value {
    copied_by(r, "twin")
        .into_iter()
        .find(|t| t["trial"] == real["trial"] && t["copy_moment"] == real["copy_moment"])
        .unwrap_or_else(|| panic!("no twin of {real:#}"))
}

/// Ground truth: a real `cp -r` and a real `tar` of the mounted directory while the workload
/// writes, each restored by the real server beside the simulated copy of the same moment (its
/// twin: same start, the real copy's measured rate), land on the same verdict.
///
/// Deterministic by the choice of moment: in mode `aof` at phase steady, Redis's directory
/// holds a manifest, a base and one increment that only grows, and `durlab serve`'s one log
/// only grows: no file appears, vanishes or is renamed while a copy reads (no rewrite runs:
/// the trials are far below Redis's 64 MB auto-rewrite size), so any copy, however its reads
/// fall, holds a prefix of the log and restores. Only its staleness depends on the timing.
#[test]
fn a_real_cp_during_a_live_run_restores_to_the_same_verdict_as_its_simulated_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let (output, records) = cli_support::durlab_json(
        &[
            "crash",
            "--target",
            "redis,durlab-server",
            "--fault",
            "live-copy",
            "--policy",
            "everysec",
            "--persistence",
            "aof",
            "--real-copies",
            "2",
            "--trials",
            "1",
            "--trial-secs",
            "1.5",
            "--seed",
            "9",
        ],
        tmp.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(records.len(), 2, "{records:#?}");
    for r in &records {
        let real: Vec<&Value> = copied_by(r, "real-cp")
            .into_iter()
            .chain(copied_by(r, "real-tar"))
            .collect();
        assert_eq!(real.len(), 2, "one cp -r and one tar: {r:#}");
        // With real copies, the simulated copies are exactly their twins.
        assert_eq!(copied_by(r, "twin").len(), 2, "{r:#}");
        for t in &real {
            let twin = twin_of(r, t);
            assert_eq!(t["verdict"], "ok", "{t:#}");
            assert_eq!(twin["verdict"], t["verdict"], "real {t:#}\ntwin {twin:#}");
            assert!(t["recovered_lsn"].as_u64().unwrap() > 0, "{t:#}");
            assert!(twin["recovered_lsn"].as_u64().unwrap() > 0, "{twin:#}");
            assert!(first_note(t).contains("of the mount, moment"), "{t:#}");
        }
    }
    // The report sets them side by side and says they agree.
    let out = tmp.path().join("out");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_durlab"))
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("*real* `cp -r`"), "{md}");
    assert_eq!(
        md.matches("ground truth: 2 of 2 real copies").count(),
        2,
        "{md}"
    );
}

/// The companion: the same real copies judged against another seed's command sequence are
/// wrong states (violations), so the real copies' "ok" above is a real comparison.
#[test]
fn a_real_copy_that_differs_from_the_oracle_is_a_violation() {
    let tmp = tempfile::tempdir().unwrap();
    let records = run_expecting(
        &[
            "crash",
            "--target",
            "durlab-server",
            "--fault",
            "live-copy",
            "--policy",
            "everysec",
            "--real-copies",
            "1",
            "--trials",
            "1",
            "--trial-secs",
            "1",
            "--oracle-seed",
            "10",
        ],
        tmp.path(),
        true,
    );
    let r = &records[0];
    let real = copied_by(r, "real-cp");
    assert_eq!(real.len(), 1, "{r:#}");
    assert_eq!(real[0]["verdict"], "divergent", "{r:#}");
    assert_eq!(real[0]["violation"], true, "{r:#}");
}

/// The server's own safe procedure: BGREWRITEAOF, wait until INFO persistence says it is
/// done, then copy. At a copy rate at which copies taken at any moment are refused (the test
/// above), every copy restores a state the server had: the rewrite has finished and none
/// starts while the copy reads.
#[test]
fn redis_copies_after_a_waited_bgrewriteaof_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let records = run(
        &[
            "crash",
            "--target",
            "redis",
            "--fault",
            "live-copy",
            "--policy",
            "everysec",
            "--persistence",
            "hybrid",
            "--procedure",
            "safe",
            "--copy-rate-mib",
            "5",
            "--trials",
            "1",
            "--trial-secs",
            "2",
            "--states",
            "3",
        ],
        tmp.path(),
    );
    let r = &records[0];
    assert_eq!(r["case"], "live-copy-redis-everysec-hybrid-safe", "{r:#}");
    let copies = copied_by(r, "model");
    assert!(!copies.is_empty(), "{r:#}");
    assert_eq!(copies.len(), states(r).len(), "{r:#}");
    for t in &copies {
        assert_eq!(t["verdict"], "ok", "{t:#}");
        assert!(t["recovered_lsn"].as_u64().unwrap() > 0, "{t:#}");
    }
    let notes = states(r)[0]["notes"].to_string();
    assert!(
        notes.contains("BGREWRITEAOFs asked for and waited for"),
        "{notes}"
    );
}

/// Stop-copy-start: `durlab serve` stopped with SHUTDOWN, its directory copied once it has
/// exited: the copy restores every acknowledged command (staleness 0).
#[test]
fn a_copy_after_a_clean_stop_restores_everything_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let records = run(
        &[
            "crash",
            "--target",
            "durlab-server",
            "--fault",
            "live-copy",
            "--policy",
            "everysec",
            "--persistence",
            "hybrid",
            "--procedure",
            "stop-copy-start",
            "--trials",
            "1",
            "--trial-secs",
            "1",
        ],
        tmp.path(),
    );
    let r = &records[0];
    let copies = states(r);
    assert_eq!(copies.len(), 1, "one copy per trial: {r:#}");
    let t = &copies[0];
    assert_eq!(t["verdict"], "ok", "{t:#}");
    assert!(t["acked_lsn"].as_u64().unwrap() > 0, "{t:#}");
    assert_eq!(t["recovered_lsn"], t["acked_lsn"], "{t:#}");
    assert_eq!(t["loss_window_ms"], 0.0, "{t:#}");
}
