//! The `everysec` lag check end to end (docs/design.md, "The everysec lag"): with the first
//! background fdatasync stalled for 4 s, far past the 2 s bound, and the crash 2.7 s into the
//! stall (trial 1 of seed 5), the honest engine stops acknowledging while its last completed
//! sync is older than the bound, and the check passes; over a lying backend whose fdatasync
//! returns before the real one completes (`--broken-early-sync`), the engine goes on
//! acknowledging through the stall, and the same trial must be reported as violating it.
//!
//! (Both runs also lose acknowledged commands under power loss: no engine can keep acked(T −
//! 2 s) through a stall longer than 2 s, docs/design.md "Loss window", Gap. The lag check is
//! what tells the honest engine from the broken one.)

use serde_json::Value;

mod cli_support;

/// Runs trial 1 of the stalled power-loss case, `extra` flags added; returns the exit status
/// and the record.
fn stalled_trial(extra: &[&str]) -> (bool, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec![
        "crash",
        "--fault",
        "power-loss",
        "--policy",
        "everysec",
        "--stall",
        "--stall-ms",
        "4000",
        "--trial",
        "1",
        "--states",
        "4",
        "--rate",
        "1000",
        "--seed",
        "5",
    ];
    args.extend_from_slice(extra);
    let (output, records) = cli_support::durlab_json(&args, tmp.path());
    assert_eq!(records.len(), 1, "{records:#?}");
    (output.status.success(), records[0].clone())
}

/// The lag check carried by the trial's state at the end of its trace.
fn lag_check(r: &Value) -> Value {
    let checks: Vec<&Value> = r["trial_results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.get("everysec_lag"))
        .collect();
    assert_eq!(checks.len(), 1, "one check per trial: {r:#}");
    checks[0].clone()
}

#[test]
fn the_honest_engine_keeps_the_lag_bound_through_a_long_stall() {
    let (_, r) = stalled_trial(&[]);
    assert_eq!(r["everysec_lag_trials"], 1, "{r:#}");
    assert_eq!(r["everysec_lag_violations"], 0, "{r:#}");
    let check = lag_check(&r);
    assert!(check["violation"].is_null(), "{check:#}");
    // The crash came past the bound: a writer ignoring it would have been caught.
    assert_eq!(check["bound_crossed"], true, "{check:#}");
    assert!(check["acks_checked"].as_u64().unwrap() > 100, "{check:#}");
    // Its writers waited: acknowledgements stopped during the stall, so fewer than the
    // target's count were acknowledged before the crash.
    let rate = &r["rate"];
    assert!(rate["achieved_ratio"].as_f64().unwrap() < 0.9, "{rate:#}");
}

#[test]
fn a_writer_that_ignores_the_lag_bound_is_reported() {
    let (success, r) = stalled_trial(&["--broken-early-sync"]);
    assert!(!success, "a violation fails the run: {r:#}");
    assert_eq!(r["everysec_lag_trials"], 1, "{r:#}");
    assert_eq!(r["everysec_lag_violations"], 1, "{r:#}");
    assert_eq!(lag_check(&r)["bound_crossed"], true, "{r:#}");
    let why = lag_check(&r)["violation"].as_str().unwrap().to_string();
    assert!(
        why.contains("everysec lag bound broken") && why.contains("still unsynced"),
        "{why}"
    );
    let flagged: Vec<&Value> = r["trial_results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["violation"] == true && t["detail"].as_str().unwrap().contains(&why))
        .collect();
    assert_eq!(flagged.len(), 1, "{r:#}");
    let repro = flagged[0]["repro"].as_str().unwrap();
    assert!(repro.contains("--broken-early-sync"), "{repro}");
}
