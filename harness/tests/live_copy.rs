//! `durlab crash --fault live-copy` over the real binary: backups copied from a live data
//! directory (simulated from the run's I/O trace, `crashlab::images::copy`, at any moment,
//! after the server's own save, or after a clean stop: `crashlab::backup`), and real `cp -r`,
//! `tar` and runbook `cp` copies beside them, restored by the real engine, `durlab serve` or a
//! real redis-server, and judged by the oracle.

use std::path::Path;

use serde_json::Value;

mod cli_support;

/// Runs `durlab crash --fault live-copy --trials 1 --seed 9` with `flags` (what each test
/// varies); asserts success unless `violating`, and returns every record (one per case).
fn live_copy_records(flags: &[&str], tmp: &Path, violating: bool) -> Vec<Value> {
    let args: Vec<&str> = [
        "crash",
        "--fault",
        "live-copy",
        "--trials",
        "1",
        "--seed",
        "9",
    ]
    .into_iter()
    .chain(flags.iter().copied())
    .collect();
    let (output, records) = cli_support::durlab_json(&args, tmp);
    assert_eq!(
        output.status.success(),
        !violating,
        "durlab: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    records
}

/// [`live_copy_records`] of one case: its one record.
fn live_copy_expecting(flags: &[&str], tmp: &Path, violating: bool) -> Value {
    let mut records = live_copy_records(flags, tmp, violating);
    assert_eq!(records.len(), 1, "{records:#?}");
    records.remove(0)
}

/// [`live_copy_expecting`] a run without violations.
fn live_copy(flags: &[&str], tmp: &Path) -> Value {
    live_copy_expecting(flags, tmp, false)
}

/// `durlab report` of the run in `tmp`: its report.md.
fn report_md(tmp: &Path) -> String {
    let out = tmp.join("out");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_durlab"))
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    std::fs::read_to_string(out.join("report.md")).unwrap()
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
    let r = &live_copy(
        &[
            "--policy",
            "everysec",
            "--persistence",
            "hybrid",
            "--phase",
            "rewrite",
            "--copy-rate-mib",
            "1",
            "--trial-secs",
            "1.5",
            "--states",
            "6",
        ],
        tmp.path(),
    );
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
    let r = &live_copy_expecting(
        &[
            "--policy",
            "always",
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
    let r = &live_copy(
        &[
            "--target",
            "redis",
            "--policy",
            "everysec",
            "--copy",
            "appendonly.aof,dump.rdb",
            "--trial-secs",
            "1",
            "--states",
            "4",
        ],
        tmp.path(),
    );
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
    let md = report_md(tmp.path());
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

/// Ground truth of the runbook: the real script (one `cp -r` line per named path, going on
/// past a failed line) run over Redis 7's mounted directory while the workload writes copies
/// nothing, as its simulated twin does: `cp` says each path is missing, and both restore an
/// empty server (the same verdict, nothing recovered).
#[test]
fn the_real_runbook_cp_of_redis_7_copies_nothing_like_its_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let r = &live_copy(
        &[
            "--target",
            "redis",
            "--policy",
            "everysec",
            "--copy",
            "appendonly.aof,dump.rdb",
            "--real-copies",
            "2",
            "--trial-secs",
            "1",
        ],
        tmp.path(),
    );
    let real = copied_by(r, "real-cp");
    assert_eq!(real.len(), 2, "a named-path copy is always cp: {r:#}");
    assert_eq!(copied_by(r, "twin").len(), 2, "{r:#}");
    for t in &real {
        let twin = twin_of(r, t);
        assert_eq!(twin["verdict"], t["verdict"], "real {t:#}\ntwin {twin:#}");
        assert_eq!(t["recovered_lsn"], 0, "{t:#}");
        assert_eq!(twin["recovered_lsn"], 0, "{twin:#}");
        let note = first_note(t);
        assert!(
            note.contains("real cp of appendonly.aof, dump.rdb from /")
                && note.contains("/mnt, moment"),
            "{note}"
        );
        for path in ["appendonly.aof", "dump.rdb"] {
            assert!(
                note.contains(&format!("cp -r {path} (exit status: 1)"))
                    && note.contains(&format!("cannot stat '{path}'")),
                "each missing path is cp's own error, and the script went on: {note}"
            );
        }
        assert!(
            first_note(twin).contains("missing: appendonly.aof, dump.rdb"),
            "{twin:#}"
        );
    }
}

/// A `cp -r` of Redis's directory while BGREWRITEAOF runs back to back: copies that span a
/// rewrite hold a manifest naming a base or increment they lack, and redis-server refuses
/// them with its own message.
#[test]
fn a_redis_copy_across_bgrewriteaof_is_refused_by_redis() {
    let tmp = tempfile::tempdir().unwrap();
    let r = &live_copy(
        &[
            "--target",
            "redis",
            "--policy",
            "everysec",
            "--persistence",
            "hybrid",
            "--phase",
            "rewrite",
            "--copy-rate-mib",
            "5",
            "--trial-secs",
            "1.5",
            "--states",
            "6",
        ],
        tmp.path(),
    );
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

/// Ground truth: a real `cp -r` and a real `tar` of the server's directory (a RESP server's
/// mount, the engine worker's data directory) while the workload writes, each restored by the
/// real server (or engine) beside the simulated copy of the same moment (its twin: same start,
/// the real copy's measured rate), land on the same verdict.
///
/// Deterministic by the choice of moment: in mode `aof` at phase steady, Redis's directory
/// holds a manifest, a base and one increment that only grows, and the engine's one log (in
/// `durlab serve` or the worker) only grows: no file appears, vanishes or is renamed while a
/// copy reads (no rewrite runs: the trials are far below Redis's 64 MB auto-rewrite size), so
/// any copy, however its reads fall, holds a prefix of the log and restores. Only its
/// staleness depends on the timing.
#[test]
fn a_real_cp_during_a_live_run_restores_to_the_same_verdict_as_its_simulated_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let records = live_copy_records(&real_aof_copies("redis,durlab-server"), tmp.path(), false);
    assert_eq!(records.len(), 2, "{records:#?}");
    for r in &records {
        real_copies_agree_with_their_twins(r, "/mnt, moment");
    }
    // The report sets them side by side and says they agree.
    let md = report_md(tmp.path());
    assert!(md.contains("*real* `cp -r`"), "{md}");
    assert_eq!(
        md.matches("ground truth: 2 of 2 real copies").count(),
        2,
        "{md}"
    );
}

/// The same on the engine's worker (its data directory copied directly; a run of its own: the
/// engine target runs apart from the RESP targets).
#[test]
fn a_real_cp_of_the_engine_workers_directory_restores_like_its_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let records = live_copy_records(&real_aof_copies("engine"), tmp.path(), false);
    assert_eq!(records.len(), 1, "{records:#?}");
    real_copies_agree_with_their_twins(&records[0], "/data, moment");
}

/// Two real copies a trial of a mode `aof` run of `targets`.
fn real_aof_copies(targets: &str) -> Vec<&str> {
    vec![
        "--target",
        targets,
        "--policy",
        "everysec",
        "--persistence",
        "aof",
        "--real-copies",
        "2",
        "--trial-secs",
        "1.5",
    ]
}

/// `r` holds one real `cp -r` and one real `tar` (their first notes naming the directory
/// copied, ending in `from`), each restored ok, with a twin that restored ok too.
fn real_copies_agree_with_their_twins(r: &Value, from: &str) {
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
        assert!(first_note(t).contains(from), "{from}: {t:#}");
    }
}

/// The companion: the same real copies judged against another seed's command sequence are
/// wrong states (violations), so the real copies' "ok" above is a real comparison.
#[test]
fn a_real_copy_that_differs_from_the_oracle_is_a_violation() {
    let tmp = tempfile::tempdir().unwrap();
    let r = &live_copy_expecting(
        &[
            "--target",
            "durlab-server",
            "--policy",
            "everysec",
            "--real-copies",
            "1",
            "--trial-secs",
            "1",
            "--oracle-seed",
            "10",
        ],
        tmp.path(),
        true,
    );
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
    let r = &live_copy(
        &[
            "--target",
            "redis",
            "--policy",
            "everysec",
            "--persistence",
            "hybrid",
            "--procedure",
            "safe",
            "--copy-rate-mib",
            "5",
            "--trial-secs",
            "2",
            "--states",
            "3",
        ],
        tmp.path(),
    );
    assert_eq!(r["case"], "live-copy-redis-everysec-hybrid-safe", "{r:#}");
    for t in model_copies_restore(r, 1, "BGREWRITEAOFs asked for and waited for") {
        assert!(t["recovered_lsn"].as_u64().unwrap() > 0, "{t:#}");
    }
}

/// Every state of `r` is a simulated copy (at least `min` of them) that restored `ok`, and the
/// first state's notes name the procedure that ran (contain `procedure`). Returns the copies.
fn model_copies_restore<'a>(r: &'a Value, min: usize, procedure: &str) -> Vec<&'a Value> {
    let copies = copied_by(r, "model");
    assert!(copies.len() >= min, "{r:#}");
    assert_eq!(copies.len(), states(r).len(), "{r:#}");
    for t in &copies {
        assert_eq!(t["verdict"], "ok", "{t:#}");
    }
    let notes = states(r)[0]["notes"].to_string();
    assert!(notes.contains(procedure), "{procedure}: {notes}");
    copies
}

/// The safe procedure on the engine's own worker process (target `engine`): the lab asks the
/// running worker for the engine's save through its ack page (a rewrite in mode hybrid, a
/// snapshot in mode snapshot), waits until the worker publishes it durable, then copies.
/// Open loop at 2,000 commands/s keeps the directory small, so that at 1 MiB/s each copy
/// reads for tens of ms while the workload goes on: every copy restores, in both modes.
#[test]
fn engine_copies_after_a_requested_save_restore_in_hybrid_and_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let records = live_copy_records(&safe_on_the_engine(&[]), tmp.path(), false);
    assert_eq!(records.len(), 2, "one per mode: {records:#?}");
    for r in &records {
        let copies = model_copies_restore(
            r,
            2,
            "asked of the worker through its ack page and waited for",
        );
        assert!(
            copies
                .iter()
                .any(|t| t["recovered_lsn"].as_u64().unwrap() > 0),
            "{r:#}"
        );
    }
}

/// The companion: the same procedure with the wait skipped (the test-only
/// `--broken-copy-before-save-done`: each copy starts as soon as the rewrite is asked for)
/// copies across the rewrite: the copy's manifest names the new base, which it lacks, and
/// recovery refuses it. So the "ok" above depends on the wait.
#[test]
fn an_engine_copy_taken_before_the_rewrite_is_done_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let records = live_copy_records(
        &safe_on_the_engine(&["--broken-copy-before-save-done"]),
        tmp.path(),
        false,
    );
    let hybrid = records
        .iter()
        .find(|r| r["case"].as_str().unwrap().contains("-hybrid-"))
        .expect("a hybrid record");
    let bad = states(hybrid)
        .iter()
        .filter(|t| t["verdict"] == "refused" || t["verdict"] == "divergent")
        .count();
    assert!(bad > 0, "{hybrid:#}");
    assert!(
        states(hybrid)[0]["notes"]
            .to_string()
            .contains("TEST ONLY --broken-copy-before-save-done"),
        "{hybrid:#}"
    );
}

/// The flags of the engine's safe procedure in modes hybrid and snapshot, plus `more`.
fn safe_on_the_engine<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec![
        "--policy",
        "everysec",
        "--persistence",
        "hybrid,snapshot",
        "--procedure",
        "safe",
        "--rate",
        "2000",
        "--copy-rate-mib",
        "1",
        "--trial-secs",
        "2",
        "--states",
        "3",
    ];
    flags.extend_from_slice(more);
    flags
}

/// Mode aof has no save: the safe procedure on the engine is refused, saying why.
#[test]
fn the_engine_safe_procedure_refuses_mode_aof() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "crash",
        "--fault",
        "live-copy",
        "--procedure",
        "safe",
        "--persistence",
        "aof",
        "--trials",
        "1",
        "--trial-secs",
        "0.5",
    ];
    let (output, records) = cli_support::durlab_json(&args, tmp.path());
    assert!(!output.status.success());
    assert_eq!(records.len(), 1, "{records:#?}");
    let failed = records[0]["failed_trials"].to_string();
    assert!(
        failed.contains("the engine in mode aof has no save or rewrite to wait for"),
        "{failed}"
    );
}

/// Stop-copy-start: `durlab serve` stopped with SHUTDOWN, its directory copied once it has
/// exited: the copy restores every acknowledged command (staleness 0).
#[test]
fn a_copy_after_a_clean_stop_restores_everything_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let r = &live_copy(
        &[
            "--target",
            "durlab-server",
            "--policy",
            "everysec",
            "--persistence",
            "hybrid",
            "--procedure",
            "stop-copy-start",
            "--trial-secs",
            "1",
        ],
        tmp.path(),
    );
    let copies = states(r);
    assert_eq!(copies.len(), 1, "one copy per trial: {r:#}");
    let t = &copies[0];
    assert_eq!(t["verdict"], "ok", "{t:#}");
    assert!(t["acked_lsn"].as_u64().unwrap() > 0, "{t:#}");
    assert_eq!(t["recovered_lsn"], t["acked_lsn"], "{t:#}");
    assert_eq!(t["loss_window_ms"], 0.0, "{t:#}");
}
