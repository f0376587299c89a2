//! Open-loop target rates over the real `durlab` binary (docs/results.md, "Target rate"): a
//! rated run issues at about the stated rate, judged from the result's own counters (the
//! acknowledged write commands per second before each kill); a rate no target can reach is
//! reported as not achieved, with a warning.
//!
//! The bounds are on the schedule, not on the machine's speed: an open-loop driver never
//! issues before an arrival, so the achieved rate cannot exceed the target by more than the
//! Poisson count's noise, and a low rate (a few hundred a second) is far below what any
//! machine acknowledges flat-out, so falling under half of it would mean the driver does not
//! follow its schedule.

use std::path::Path;

use serde_json::Value;

mod cli_support;

/// Asserts that `r` ran open loop at `target` ops/s and achieved it, within loose bounds.
fn assert_achieved(r: &Value, target: f64, write_fraction: f64) {
    let rate = &r["rate"];
    assert_eq!(rate["target_ops_per_sec"], target, "{r:#}");
    assert_eq!(rate["arrivals"], "poisson", "{rate:#}");
    let wanted = rate["target_write_ops_per_sec"].as_f64().unwrap();
    assert!((wanted - target * write_fraction).abs() < 1e-6, "{rate:#}");
    let achieved = rate["achieved_write_ops_per_sec"].as_f64().unwrap();
    assert_eq!(r["write_ops_per_sec"].as_f64().unwrap(), achieved, "{r:#}");
    let ratio = achieved / wanted;
    assert!((ratio - rate["achieved_ratio"].as_f64().unwrap()).abs() < 1e-9);
    // A few hundred arrivals per trial: a Poisson count within 30% of its mean by far.
    assert!(
        (0.5..1.3).contains(&ratio),
        "achieved {achieved} of {wanted} write commands/s: {rate:#}"
    );
    assert_eq!(rate["achieved"], ratio >= 0.9, "{rate:#}");
    for t in r["trial_results"].as_array().unwrap() {
        assert!(t["verdict"].is_string());
    }
}

fn crash(args: &[&str], tmp: &Path) -> Vec<Value> {
    let args: Vec<&str> = args.iter().copied().chain(["--seed", "5"]).collect();
    let (output, records) = cli_support::durlab_json(&args, tmp);
    assert!(
        output.status.success(),
        "durlab failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    records
}

#[test]
fn a_rated_engine_run_issues_at_about_its_rate_and_flat_out_records_no_rate() {
    let tmp = tempfile::tempdir().unwrap();
    // The built-in workload is 80% SET, 20% GET: writes at 0.8 of the rate.
    let records = crash(
        &[
            "crash",
            "--fault",
            "kill9,power-loss",
            "--policy",
            "everysec",
            "--rate",
            "1000",
            "--trials",
            "2",
            "--trial-secs",
            "2",
            "--states",
            "4",
        ],
        tmp.path(),
    );
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_achieved(r, 1000.0, 0.8);
        // At 800 writes/s the trace of a 2 s trial holds a few hundred records, not the
        // tens of thousands of a flat-out one: its highest issued LSN says so.
        for t in r["trial_results"].as_array().unwrap() {
            let issued = t["issued_lsn"].as_u64().unwrap();
            assert!(issued <= 2 * 800 * 13 / 10 + 50, "issued {issued}: {t:#}");
        }
    }
    // The same run flat-out: no rate, and a measured write rate.
    let tmp = tempfile::tempdir().unwrap();
    let records = crash(
        &[
            "crash", "--fault", "kill9", "--policy", "everysec", "--trials", "1",
        ],
        tmp.path(),
    );
    assert!(records[0]["rate"].is_null(), "{:#}", records[0]);
    assert!(records[0]["write_ops_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn an_unreachable_rate_is_reported_as_not_achieved() {
    let tmp = tempfile::tempdir().unwrap();
    // Ten million commands a second under `always` (an fdatasync per acknowledgement): no
    // disk keeps up, so the driver runs behind its schedule the whole trial.
    let args = [
        "crash",
        "--fault",
        "kill9",
        "--policy",
        "always",
        "--rate",
        "10000000",
        "--arrivals",
        "uniform",
        "--trials",
        "1",
        "--seed",
        "5",
    ];
    let (output, records) = cli_support::durlab_json(&args, tmp.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let rate = &records[0]["rate"];
    assert_eq!(rate["arrivals"], "uniform", "{rate:#}");
    assert_eq!(rate["achieved"], false, "{rate:#}");
    assert!(rate["achieved_ratio"].as_f64().unwrap() < 0.9, "{rate:#}");
    let warning = rate["warning"].as_str().unwrap();
    assert!(warning.contains("target rate not achieved"), "{warning}");
    // Said on stderr even under --quiet.
    assert!(
        stderr.contains("WARNING kill9-always") && stderr.contains("not achieved"),
        "{stderr}"
    );
}

#[test]
fn a_rated_resp_run_issues_at_about_its_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "kill9",
        "--target",
        "durlab-server",
        "--policy",
        "everysec",
        "--rate",
        "1000",
        "--trials",
        "2",
        "--trial-secs",
        "2",
        "--seed",
        "5",
    ];
    let (output, records) = cli_support::durlab_json(&args, tmp.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_achieved(&records[0], 1000.0, 0.8);
}

#[test]
fn arrivals_without_a_rate_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_durlab"))
        .args(["crash", "--fault", "kill9", "--arrivals", "uniform"])
        .arg("--dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a target rate"), "{stderr}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_durlab"))
        .args(["crash", "--fault", "kill9", "--rate", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("outside"), "{stderr}");
}
