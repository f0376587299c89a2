//! Image faults on unmodified servers through the recording filesystem: real redis-server
//! and `durlab serve` run with their data directories on a FUSE mount, crash images are built
//! from its trace, and a fresh server is started on every image and judged by the crash lab;
//! kill -9 inside an fsync the filesystem holds restarts the server on what the kill left.
//! Companions show both paths reporting violations when a promise is broken.

mod resp_support;

use std::path::Path;
use std::process::Output;

use resp_support::require;
use serde_json::Value;

mod cli_support;

fn crash(args: &[&str], tmp: &Path) -> (Output, Vec<Value>) {
    let args: Vec<&str> = ["crash"]
        .into_iter()
        .chain(args.iter().copied())
        .chain(["--seed", "11", "--trials", "1"])
        .collect();
    cli_support::durlab_json(&args, tmp)
}

fn states(r: &Value) -> u64 {
    r["states"].as_u64().unwrap()
}

#[test]
fn redis_always_loses_no_acknowledged_write_over_200_power_loss_states() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, records) = crash(
        &[
            "--target",
            "redis",
            "--fault",
            "power-loss",
            "--policy",
            "always",
            "--states",
            "200",
            "--trial-secs",
            "3",
            // Redis 7 never syncs the directory that holds appendonlydir: under the POSIX
            // model its whole AOF directory may vanish; ext4 commits it with the first fsync.
            "--dir-model",
            "ext4-ordered",
        ],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["label"], "redis-always-aof");
    assert_eq!(r["config"]["target"], "redis");
    assert!(states(r) >= 200, "{} states", states(r));
    assert_eq!(r["violations"], 0, "{r:#}");
    assert_eq!(r["verdicts"]["ok"].as_u64(), Some(states(r)));
    assert_eq!(r["lost_acked_ops"]["max"], 0.0);
    // The trial wrote through the mount and the states recovered real data.
    let max_r = r["trial_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["recovered_lsn"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        max_r > 100,
        "the last states recovered only {max_r} commands"
    );
}

#[test]
fn redis_appendfsync_no_judged_against_the_always_contract_is_reported_as_violating() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, records) = crash(
        &[
            "--target",
            "redis",
            "--fault",
            "power-loss",
            "--policy",
            "no",
            "--contract",
            "always",
            "--states",
            "30",
            "--trial-secs",
            "2",
            "--dir-model",
            "ext4-ordered",
        ],
        tmp.path(),
    );
    assert!(!out.status.success(), "violations make the run fail");
    let r = &records[0];
    let lost = r["verdicts"]["lost_acked"].as_u64().unwrap();
    assert!(lost > 0, "{r:#}");
    assert_eq!(r["violations"].as_u64(), Some(lost), "{r:#}");
    assert!(r["lost_acked_ops"]["max"].as_f64().unwrap() > 0.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("VIOLATION power-loss redis-no-aof")
            && stderr.contains("--contract always"),
        "{stderr}"
    );
}

/// Every image fault, torn and reorder included: a MULTI/EXEC is one log record (one
/// checksum), so a torn or reordered write can drop a whole transaction but never keep half of
/// one (when each command of an EXEC was its own record, the lab found `divergent` states:
/// `__durlab:lsn` at n-1 with command n, queued before it, present).
#[test]
fn durlab_server_keeps_its_promises_under_power_loss_on_the_mount() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let (out, records) = crash(
        &[
            "--target",
            "durlab-server",
            "--fault",
            "power-loss,prefix,torn,reorder",
            "--policy",
            "always,everysec",
            "--states",
            "20",
            "--trial-secs",
            "1.5",
        ],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(records.len(), 8);
    for r in &records {
        assert_eq!(r["violations"], 0, "{r:#}");
        assert_eq!(r["config"]["target"], "durlab-server");
        assert!(states(r) >= 20, "{r:#}");
    }
    let everysec_power = records
        .iter()
        .find(|r| r["case"] == "power-loss-durlab-server-everysec-pwrite-none-aof")
        .expect("everysec power-loss record");
    assert!(
        everysec_power["loss_window_ms"]["max"].as_f64().unwrap() > 0.0,
        "everysec loses its unsynced tail in some state: {everysec_power:#}"
    );
}

/// kill -9 inside an fsync held by the recording filesystem (`--stall`): the RESP kill -9 path
/// on the mount (`crashlab/resp_images.rs`, restart on what the kill left) reports Redis's
/// `everysec` losing acknowledged writes — while its background fsync is in progress Redis
/// postpones writing its AOF buffer (up to 2 s) but keeps replying, so a process crash loses
/// what it acknowledged meanwhile — and durlab serve's `everysec`, which writes before it
/// acknowledges, losing none under the same stall.
#[test]
fn kill9_inside_a_held_fsync_loses_redis_everysec_acks_and_none_of_durlab_servers() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    // Option and value pairs: every RESP target, kill -9 inside a held fsync, everysec.
    let mut args = [
        ["--target", "durlab-server,redis"],
        ["--fault", "kill9"],
        ["--stall-ms", "1000"],
        ["--policy", "everysec"],
        ["--backend", "pwrite"],
        ["--prealloc", "none"],
        ["--trial-secs", "1"],
    ]
    .concat();
    args.push("--stall");
    let (out, records) = crash(&args, tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "Redis's loss fails the run: {stderr}"
    );
    assert_eq!(records.len(), 2, "{records:#?}");
    for r in &records {
        assert!(r["failed_trials"].as_array().unwrap().is_empty(), "{r:#}");
        let t = &r["trial_results"][0];
        assert!(
            t["notes"].to_string().contains("stall of an fsync"),
            "{t:#}"
        );
        if r["config"]["target"] == "redis" {
            assert_eq!(r["case"], "kill9-redis-everysec-aof-in-stall");
            assert_eq!(r["violations"], 1, "{r:#}");
            assert_eq!(t["verdict"], "lost-acked", "{t:#}");
            assert!(r["lost_acked_ops"]["max"].as_f64().unwrap() > 0.0, "{r:#}");
            assert!(
                stderr.contains("VIOLATION kill9 redis-everysec-aof"),
                "{stderr}"
            );
        } else {
            assert_eq!(r["violations"], 0, "{r:#}");
            assert_eq!(t["verdict"], "ok", "{t:#}");
        }
    }
}
