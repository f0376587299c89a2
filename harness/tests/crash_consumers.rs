//! The consumer workload (scenarios/event-stream.toml: producers, consumers in a group, acks,
//! a reclaimer) against real redis-server in the crash lab: kill -9, and power loss through the
//! recording filesystem. Every recovered state is read back with its groups (last-delivered
//! ids, pending entries with owners and delivery counts, consumers), compared with the oracle,
//! and judged for deliveries; Redis keeps its promises here, so no state has an anomaly.
//! (The companion that shows the delivery check failing is tests/crash_deliveries.rs.)

mod resp_support;

use std::path::Path;
use std::process::Output;

use resp_support::require;
use serde_json::Value;

mod cli_support;

fn crash(args: &[&str], tmp: &Path) -> (Output, Vec<Value>) {
    let args: Vec<&str> = ["crash", "event-stream", "--target", "redis"]
        .into_iter()
        .chain(args.iter().copied())
        .chain(["--seed", "3", "--backend", "pwrite", "--prealloc", "none"])
        .collect();
    cli_support::durlab_json(&args, tmp)
}

/// The record's states all loaded, equal to the oracle, judged for deliveries with none.
fn check(out: &Output, records: &[Value], label: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["label"], label);
    let states = r["states"].as_u64().unwrap();
    assert!(states >= 2, "{r:#}");
    assert_eq!(r["violations"], 0, "{r:#}");
    assert_eq!(r["verdicts"]["ok"].as_u64(), Some(states), "{r:#}");
    let d = &r["deliveries"];
    assert_eq!(d["states_judged"].as_u64(), Some(states), "{r:#}");
    assert_eq!(d["states_with_anomalies"], 0, "{r:#}");
    let trials = r["trial_results"].as_array().unwrap();
    let max_r = trials
        .iter()
        .map(|t| t["recovered_lsn"].as_u64().unwrap())
        .max()
        .unwrap();
    // Past the 8 XGROUP CREATEs: the states held deliveries and acknowledgements.
    assert!(max_r > 500, "the states recovered only {max_r} commands");
}

#[test]
fn redis_consumer_groups_survive_kill9() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, records) = crash(
        &[
            "--fault",
            "kill-9",
            "--policy",
            "everysec",
            "--trials",
            "2",
            "--trial-secs",
            "2",
        ],
        tmp.path(),
    );
    check(&out, &records, "redis-everysec-aof");
}

#[test]
fn redis_consumer_groups_survive_power_loss_on_the_recording_filesystem() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, records) = crash(
        &[
            "--fault",
            "power-loss",
            "--policy",
            "always",
            "--trials",
            "1",
            "--states",
            "40",
            "--trial-secs",
            "2",
            // As scenarios/event-stream.toml: Redis never syncs appendonlydir's parent.
            "--dir-model",
            "ext4-ordered",
        ],
        tmp.path(),
    );
    check(&out, &records, "redis-always-aof");
}
