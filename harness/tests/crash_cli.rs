//! Crash smoke tests over the real `durlab` binary: every implemented fault under every
//! policy must report zero violations for the real engine; a planted divergence must be
//! reported as a violation with a reproduction line that repeats it.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod cli_support;

fn durlab(args: &[&str], tmp: &Path) -> (Output, Vec<Value>) {
    let args: Vec<&str> = args.iter().copied().chain(["--seed", "5"]).collect();
    cli_support::durlab_json(&args, tmp)
}

/// Runs `args`, asserts success and zero violations in every record, returns the records.
fn clean(args: &[&str]) -> Vec<Value> {
    let tmp = tempfile::tempdir().unwrap();
    let (output, records) = durlab(args, tmp.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for r in &records {
        assert_eq!(r["violations"], 0, "{} {}: {r:#}", r["fault"], r["label"]);
        assert!(r["failed_trials"].as_array().unwrap().is_empty(), "{r:#}");
        let (states, trials) = (r["states"].as_u64().unwrap(), r["trials"].as_u64().unwrap());
        assert!(trials >= 1 && states >= trials, "{r:#}");
        assert!(r["short_trial"].is_boolean(), "{r:#}");
        assert!(
            r.as_object().unwrap().contains_key("loss_bound_ms"),
            "{r:#}"
        );
        for key in ["ok", "lost_acked", "divergent", "phantom", "refused"] {
            assert!(r["verdicts"][key].is_u64(), "verdicts.{key}");
        }
        for key in ["lost_acked_ops", "loss_window_ms", "lost_bytes"] {
            for q in ["p50", "p99", "max"] {
                assert!(r[key][q].is_number(), "{key}.{q}");
            }
        }
        assert!(r["states_per_sec"].is_array());
    }
    assert!(output.status.success(), "durlab failed: {stderr}");
    assert!(stderr.is_empty(), "--quiet prints nothing: {stderr}");
    // Result files: one per configuration × fault, plus run.json with machine facts.
    let out = tmp.path().join("out");
    for r in &records {
        let name = format!("crash-{}.json", r["case"].as_str().unwrap());
        assert!(out.join(name).is_file());
    }
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["seed"], 5);
    assert!(run["machine"]["kernel"].is_string());
    records
}

#[test]
fn kill9_every_policy_both_backends() {
    let records = clean(&[
        "crash",
        "--fault",
        "kill9",
        "--policy",
        "always,everysec,no",
        "--backend",
        "pwrite,uring",
        "--trials",
        "2",
        "--trial-secs",
        "0.3",
    ]);
    assert_eq!(records.len(), 6);
    for r in &records {
        assert_eq!(r["verdicts"]["ok"], 2, "{r:#}");
        assert_eq!(r["lost_acked_ops"]["max"], 0.0);
        // Trials run at once on every core; their results come back in trial order.
        let order: Vec<u64> = r["trial_results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["trial"].as_u64().unwrap())
            .collect();
        assert_eq!(order, [0, 1], "{r:#}");
        for t in r["trial_results"].as_array().unwrap() {
            let acked = t["acked_lsn"].as_u64().unwrap();
            assert!(acked > 0, "a 0.3 s trial acknowledges something: {t:#}");
            assert!(t["recovered_lsn"].as_u64().unwrap() >= acked, "{t:#}");
        }
    }
}

/// The mmap backend (stores into preallocated log space) keeps every policy's promise under
/// kill -9 and power loss, like the syscall backends.
#[test]
fn mmap_backend_keeps_its_promises() {
    let records = clean(&[
        "crash",
        "--fault",
        "kill9,power-loss",
        "--policy",
        "always,everysec,no",
        "--backend",
        "mmap",
        "--prealloc",
        "fallocate",
        "--trials",
        "1",
        "--trial-secs",
        "0.3",
        "--states",
        "40",
    ]);
    assert_eq!(records.len(), 6);
    for r in &records {
        assert_eq!(r["violations"], 0, "{r:#}");
        assert!(
            r["case"].as_str().unwrap().contains("-mmap-fallocate-"),
            "{r:#}"
        );
    }
}

#[test]
fn backend_faults_every_policy() {
    let records = clean(&[
        "crash",
        "--fault",
        "fsync-eio,enospc,short-write",
        "--policy",
        "always,everysec,no",
        "--trials",
        "2",
        "--trial-secs",
        "0.2",
    ]);
    assert_eq!(records.len(), 9);
    for r in &records {
        for t in r["trial_results"].as_array().unwrap() {
            let notes = t["notes"].to_string();
            assert!(
                notes.contains("engine error"),
                "the fault fired and was reported: {t:#}"
            );
            assert_eq!(t["verdict"], "ok", "{t:#}");
        }
    }
}

#[test]
fn media_damage_is_refused_or_harmless() {
    let records = clean(&[
        "crash",
        "--fault",
        "bitflip,zero-sector",
        "--policy",
        "always,everysec,no",
        "--prealloc",
        "none,zero",
        "--trials",
        "2",
        "--trial-secs",
        "0.2",
    ]);
    for r in &records {
        assert_eq!(r["verdicts"]["divergent"], 0);
        for t in r["trial_results"].as_array().unwrap() {
            if t["verdict"] == "refused" {
                assert!(t["detail"].as_str().unwrap().contains("offset"), "{t:#}");
            }
        }
    }
}

#[test]
fn everysec_loses_nothing_when_killed_during_a_sync_stall() {
    let records = clean(&[
        "crash",
        "--fault",
        "fsync-stall",
        "--policy",
        "always,everysec,no",
        "--trials",
        "1",
        "--trial-secs",
        "0.2",
        "--stall-ms",
        "300",
    ]);
    for r in &records {
        assert_eq!(r["lost_acked_ops"]["max"], 0.0, "{r:#}");
        let stall = &r["stall"];
        let policy = r["config"]["policy"].as_str().unwrap();
        assert_eq!(stall["stall_fired"], policy != "no", "{r:#}");
        if policy == "always" {
            // Not a timing threshold: the stall sleeps 300 ms, so some acknowledgement waited
            // at least that long.
            assert!(
                stall["stalled_latency_us"]["max"].as_f64().unwrap() >= 300_000.0,
                "{r:#}"
            );
        }
        if policy != "no" {
            let notes = r["trial_results"][0]["notes"].to_string();
            assert!(
                notes.contains("into a 300 ms stall"),
                "killed during the stall: {notes}"
            );
        }
    }
}

/// Companion of `backend_faults_every_policy`: over a lying backend that reports failed
/// fdatasyncs as done (the engine is never told), the `fsync-eio` check must report that no
/// caller was told, under `always` and under `everysec` (whose failing sync is the background
/// one, possibly after the run's writers stopped: the check then asks the next caller).
#[test]
fn a_swallowed_fsync_error_is_a_violation() {
    // Honest: 1 s trials end about when everysec's first background sync fails, after the
    // writers stopped; the next caller is told (this once read as a violation).
    let args = [
        "crash",
        "--fault",
        "fsync-eio",
        "--policy",
        "always,everysec",
        "--trials",
        "2",
        "--trial-secs",
        "1",
    ];
    let honest = clean(&args);
    assert_eq!(honest.len(), 2);
    let lying: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--broken-swallow-sync-errors"])
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let (output, records) = durlab(&lying, tmp.path());
    assert!(!output.status.success(), "violations fail the run");
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r["violations"], 2, "{} {r:#}", r["label"]);
        for t in r["trial_results"].as_array().unwrap() {
            let notes = t["notes"].to_string();
            assert!(notes.contains("not reported to any caller"), "{t:#}");
        }
    }
}

/// Power loss inside a sync stall: the everysec promise (what was acknowledged
/// `everysec_max_lag_ms` before the crash) still holds, and the kill note shows the crash
/// landed in the stall.
#[test]
fn power_loss_inside_a_sync_stall_keeps_the_promise() {
    let records = clean(&[
        "crash",
        "--fault",
        "power-loss",
        "--policy",
        "always,everysec",
        "--stall",
        "--stall-ms",
        "300",
        "--trials",
        "1",
        "--trial-secs",
        "0.2",
        "--states",
        "4",
    ]);
    assert_eq!(records.len(), 2);
    for r in &records {
        assert!(r["case"].as_str().unwrap().ends_with("-in-stall"), "{r:#}");
        let notes = r["trial_results"][0]["notes"].to_string();
        assert!(notes.contains("into a 300 ms stall"), "{notes}");
    }
}

#[test]
fn planted_divergence_is_a_violation_with_a_working_reproduction() {
    let tmp = tempfile::tempdir().unwrap();
    let (output, records) = durlab(
        &[
            "crash",
            "--fault",
            "kill9",
            // `no` acknowledges thousands of commands in the first 50 ms even on a loaded
            // machine; with none acknowledged both sequences would agree (empty states).
            "--policy",
            "no",
            "--trials",
            "2",
            "--trial-secs",
            "0.5",
            "--oracle-seed",
            "6",
        ],
        tmp.path(),
    );
    assert!(!output.status.success(), "violations make durlab fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reproduce: durlab crash"), "{stderr}");
    let r = &records[0];
    assert_eq!(r["verdicts"]["divergent"], 2, "{r:#}");
    assert_eq!(r["violations"], 2);
    let t = &r["trial_results"][1];
    assert_eq!(t["verdict"], "divergent");
    assert!(
        t["detail"]
            .as_str()
            .unwrap()
            .contains("differs from the oracle")
    );
    let kept = Path::new(t["kept_dir"].as_str().unwrap());
    assert!(kept.join("ack.page").is_file() && kept.join("data/durlab.aof").is_file());

    // The reproduction line runs trial 1 alone, with the same derived seed.
    let repro = t["repro"].as_str().unwrap();
    assert!(
        repro.contains("--trial 1") && repro.contains("--oracle-seed 6"),
        "{repro}"
    );
    let mut words = repro.split_whitespace().skip(1);
    let out = Command::new(env!("CARGO_BIN_EXE_durlab"))
        .args(words.by_ref())
        .args(["--json", "--quiet", "--out"])
        .arg(tmp.path().join("out2"))
        .output()
        .unwrap();
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t2 = &again[0]["trial_results"][0];
    assert_eq!(t2["trial"], 1);
    assert_eq!(t2["trial_seed"], t["trial_seed"]);
    assert_eq!(t2["verdict"], "divergent");
}

#[test]
fn power_loss_images_every_policy() {
    let records = clean(&[
        "crash",
        "--fault",
        "power-loss,prefix,torn,reorder",
        "--policy",
        "always,everysec,no",
        "--trials",
        "1",
        "--trial-secs",
        "0.1",
        "--states",
        "4",
    ]);
    assert_eq!(records.len(), 12);
    for r in &records {
        assert!(
            r["states"].as_u64().unwrap() >= 1,
            "many images per trace: {}",
            r["states"]
        );
        assert_eq!(r["trials"], 1);
        if r["config"]["policy"] == "always" {
            assert_eq!(
                r["lost_acked_ops"]["max"], 0.0,
                "{} {}",
                r["fault"], r["label"]
            );
        }
    }
}

#[test]
fn broken_ack_before_sync_is_caught_by_power_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let (output, records) = durlab(
        &[
            "crash",
            "--fault",
            "power-loss",
            "--policy",
            "always",
            "--trials",
            "1",
            // 1 s (the default for always): a 0.1 s trial on a loaded machine could end
            // before the lying engine acknowledged anything, leaving nothing to lose.
            "--trial-secs",
            "1",
            "--states",
            "4",
            "--broken-ack-before-sync",
            "--image-dir",
            tmp.path().join("scratch").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(!output.status.success());
    let scratch: Vec<_> = std::fs::read_dir(tmp.path().join("scratch"))
        .unwrap()
        .collect();
    assert!(
        scratch.is_empty(),
        "the image scratch is removed: {scratch:?}"
    );
    let r = &records[0];
    assert!(r["violations"].as_u64().unwrap() > 0, "{r:#}");
    assert!(r["verdicts"]["lost_acked"].as_u64().unwrap() > 0);
    assert!(r["lost_acked_ops"]["max"].as_f64().unwrap() > 0.0);
    assert!(r["loss_window_ms"]["max"].as_f64().unwrap() > 0.0);
    let bad: Vec<_> = r["trial_results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["violation"] == true)
        .collect();
    // The first violating images of each verdict to be judged are kept, the others say how
    // to rebuild them; which come first depends on the judging threads' timing.
    let mut kept = 0;
    for t in &bad {
        assert!(
            t["repro"]
                .as_str()
                .unwrap()
                .contains("--broken-ack-before-sync")
        );
        let dir = t["kept_dir"].as_str().unwrap();
        if dir.starts_with("not kept (the first 3 violating images of each verdict are") {
            continue;
        }
        let dir = Path::new(dir);
        assert!(
            dir.is_dir() && dir.starts_with(tmp.path().join("data")),
            "a failing image is kept in its trial directory: {dir:?}"
        );
        assert!(dir.join("durlab.aof").is_file(), "{dir:?}");
        kept += 1;
    }
    assert!(
        kept >= 1 && kept >= bad.len().min(3),
        "{kept} of {} kept",
        bad.len()
    );
}

#[test]
fn unknown_faults_and_impossible_phases_are_clear_errors() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_durlab"))
            .args(args)
            .output()
            .unwrap()
    };
    let bad = run(&["crash", "--fault", "meteor"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected one of kill9"));
    let rewrite = run(&[
        "crash",
        "--fault",
        "kill9",
        "--persistence",
        "aof",
        "--phase",
        "rewrite",
        "--quiet",
    ]);
    assert!(!rewrite.status.success());
    let err = String::from_utf8_lossy(&rewrite.stderr);
    assert!(
        err.contains("phase 'rewrite' needs persistence 'hybrid'"),
        "{err}"
    );
    let phase = run(&["crash", "--fault", "kill9", "--phase", "lunch"]);
    assert!(String::from_utf8_lossy(&phase.stderr).contains("expected one of steady"));
    // A fault that acts inside the engine's process has no runner for a RESP server.
    let resp = run(&["crash", "--fault", "kill9,fsync-eio", "--target", "redis"]);
    assert!(!resp.status.success());
    let err = String::from_utf8_lossy(&resp.stderr);
    assert!(
        err.contains("fault fsync-eio acts inside the engine's process"),
        "{err}"
    );
}

/// Every persistence mode, with crashes aimed at snapshots and rewrites: nothing the mode
/// promised is lost (snapshot-only: the last snapshot published durable before the crash).
#[test]
fn snapshot_modes_and_phases_keep_their_promise() {
    let records = clean(
        &[
            "crash",
            "--fault",
            "kill9,power-loss",
            "--policy",
            "always",
            "--persistence",
            "snapshot,aof+snapshot,hybrid",
            "--phase",
            "snapshot,rewrite",
        ]
        .iter()
        .chain(&ONE_SHORT_TRIAL)
        .copied()
        .collect::<Vec<_>>(),
    );
    // 2 faults x (3 modes during snapshot + hybrid during rewrite).
    assert_eq!(records.len(), 8);
    for r in &records {
        let phase = r["phase"].as_str().unwrap();
        assert!(phase == "snapshot" || phase == "rewrite", "{r:#}");
        assert!(
            r["case"]
                .as_str()
                .unwrap()
                .ends_with(&format!("-during-{phase}"))
        );
        let notes: Vec<&str> = r["trial_results"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["notes"].as_array().unwrap())
            .filter_map(|n| n.as_str())
            .collect();
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("crashed during save")
                    || n.starts_with("crashed between saves")),
            "{} {}: the notes place each crash relative to the saves: {notes:?}",
            r["fault"],
            r["case"]
        );
        if r["fault"] == "kill9" {
            // The kill clock starts once the first save is durable: there is one to keep.
            assert!(
                notes
                    .iter()
                    .all(|n| !n.contains("; 0 completed") && !n.contains("(0 completed")),
                "{}: {notes:?}",
                r["case"]
            );
        }
    }
}

/// The companion: an engine that skips the directory fsync after a rename is caught by
/// power-loss images under the pessimistic directory-entry model.
#[test]
fn broken_skip_dir_sync_is_caught_by_the_directory_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (output, records) = durlab(
        &[
            "crash",
            "--fault",
            "power-loss",
            "--policy",
            "always",
            "--persistence",
            "snapshot,hybrid",
            "--phase",
            "snapshot",
            // Two traces and every rename's surroundings (40 states cap the namespace cut
            // points at 160): on a loaded machine one short trace may hold a single completed
            // install, whose unsafe window a small sample of cut points can miss.
            "--trials",
            "2",
            "--trial-secs",
            "0.3",
            "--states",
            "40",
            "--broken-skip-dir-sync",
        ],
        tmp.path(),
    );
    assert!(!output.status.success());
    assert_eq!(records.len(), 2);
    for r in &records {
        assert!(r["violations"].as_u64().unwrap() > 0, "{r:#}");
        assert_eq!(r["dir_model"], "pessimistic");
        let bad = r["trial_results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["violation"] == true)
            .unwrap();
        let repro = bad["repro"].as_str().unwrap();
        assert!(repro.contains("--broken-skip-dir-sync"), "{repro}");
        assert!(repro.contains("--phase snapshot"), "{repro}");
    }
}

/// One 0.3 s trial per configuration and fault, 4 spread image states.
const ONE_SHORT_TRIAL: [&str; 6] = ["--trials", "1", "--trial-secs", "0.3", "--states", "4"];

/// `durlab crash` of `faults` × `policies`, [`ONE_SHORT_TRIAL`].
fn one_short_trial<'a>(faults: &'a str, policies: &'a str) -> Vec<&'a str> {
    [
        &["crash", "--fault", faults, "--policy", policies][..],
        &ONE_SHORT_TRIAL,
    ]
    .concat()
}

/// Policy `off` persists nothing, so every fault loses everything it acknowledged: under
/// power loss too (the only image of its empty trace is judged at the kill, not at the
/// trace's start). The companion is `always` in the same run, which loses nothing: the
/// "lost everything" check tells the two apart.
#[test]
fn policy_off_loses_everything_under_every_fault() {
    let records = clean(&one_short_trial("kill9,power-loss", "off,always"));
    assert_eq!(records.len(), 4);
    let lost_everything = |t: &Value| {
        let acked = t["acked_lsn"].as_u64().unwrap();
        acked > 0
            && t["recovered_lsn"] == 0
            && t["lost_acked_ops"].as_u64() == Some(acked)
            && t["loss_window_ms"].as_f64().unwrap() > 0.0
    };
    for r in &records {
        let trials = r["trial_results"].as_array().unwrap();
        match r["config"]["policy"].as_str().unwrap() {
            "off" => {
                assert_eq!(r["loss_bound_ms"], Value::Null, "{r:#}");
                for t in trials {
                    assert!(lost_everything(t), "{} {t:#}", r["fault"]);
                }
            }
            "always" => {
                assert_eq!(r["loss_bound_ms"], 0, "{r:#}");
                let last = trials.last().unwrap();
                assert!(!lost_everything(last), "{} {last:#}", r["fault"]);
                assert_eq!(last["lost_acked_ops"], 0, "{last:#}");
            }
            other => panic!("unexpected policy {other}"),
        }
    }
}

/// A `--trial-secs` shorter than the everysec bound needs is honoured and marked in the
/// results; `always`, which loses nothing acknowledged, has nothing to wait for and is not
/// marked. Kill notes give the range the crash time was drawn from.
#[test]
fn short_trials_are_marked_with_the_bound() {
    let records = clean(&one_short_trial("power-loss", "always,everysec"));
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r["trial_secs"], 0.3, "{r:#}");
        let everysec = r["config"]["policy"] == "everysec";
        assert_eq!(r["short_trial"], everysec, "{r:#}");
        assert_eq!(r["loss_bound_ms"], if everysec { 2000 } else { 0 }, "{r:#}");
        let notes = r["trial_results"][0]["notes"].to_string();
        assert!(notes.contains("(drawn in [30, 300] ms)"), "{notes}");
    }
}

/// `durlab report` reads a `durlab kill9` result directory (its run.json is written beside
/// the summaries), as kill9's help says; the companion: without that run.json the same
/// directory is refused, naming the file.
#[test]
fn report_reads_a_kill9_result_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (output, records) = cli_support::durlab_json(
        &[
            "kill9",
            "--policy",
            "always",
            "--trials",
            "1",
            "--trial-secs",
            "0.2",
        ],
        tmp.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["loss_bound_ms"], 0);
    let report = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_durlab"))
            .arg("report")
            .arg(dir)
            .output()
            .unwrap()
    };
    let shown = report(&out);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| kill9 |") && md.contains("durlab-server / always"),
        "{md}"
    );
    std::fs::remove_file(out.join("run.json")).unwrap();
    let refused = report(&out);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("run.json"));
}

/// The scenario's checks run again after `--target` replaces its targets: a reclaimer with a
/// min idle time, fine for the engine's workload clock, is refused for redis-server, whose own
/// clock would decide what it claims.
#[test]
fn target_flags_are_checked_against_the_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("scenarios/event-stream.toml")).unwrap();
    assert!(
        text.contains("min_idle_ms = 0"),
        "the scenario's reclaimer changed"
    );
    let scenario = tmp.path().join("idle.toml");
    let engine_only = text
        .replace("min_idle_ms = 0", "min_idle_ms = 500")
        .replace(
            r#"targets = ["engine", "redis"]"#,
            r#"targets = ["engine"]"#,
        );
    std::fs::write(&scenario, engine_only).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_durlab"))
        .args(["crash", scenario.to_str().unwrap(), "--target", "redis"])
        .args(["--fault", "kill9", "--policy", "always", "--trials", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("after applying the command-line flags") && stderr.contains("min_idle_ms"),
        "{stderr}"
    );
}
