//! `durlab bench --target redis` and `--target durlab-server` (short runs) produce the usual
//! JSON fields plus target, pipeline and ratio_to_redis.

mod resp_support;

use std::process::Command;

use resp_support::require;
use serde_json::Value;

#[test]
fn bench_against_redis_and_durlab_server() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_durlab"))
        .args([
            "bench",
            "--target",
            "durlab-server,redis",
            "--policy",
            "everysec",
        ])
        .args([
            "--writers",
            "2",
            "--pipeline",
            "4",
            "--duration",
            "1",
            "--no-probe",
            "--json",
            "--quiet",
        ])
        .args(["--run-id", "t", "--seed", "5"])
        .arg("--dir")
        .arg(tmp.path().join("data"))
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let labels: Vec<&str> = records
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "durlab-server-everysec-pwrite-none-aof",
            "redis-everysec-aof",
            "durlab-server-off-pwrite-none-aof",
            "redis-off-aof"
        ]
    );
    for r in &records {
        for field in [
            "ops_per_sec",
            "writes_per_sec",
            "seconds",
            "cpu_seconds",
            "max_rss_mb",
        ] {
            assert!(
                r[field].as_f64().unwrap() > 0.0,
                "{field} of {}",
                r["label"]
            );
        }
        assert!(r["latency_us"]["p99"].as_f64().unwrap() > 0.0);
        assert_eq!(r["config"]["writers"], 2);
        assert_eq!(r["config"]["pipeline"], 4);
        assert!(r["ratio_to_off"].as_f64().is_some());
        let redis = r["config"]["target"] == "redis";
        assert_eq!(r["ratio_to_redis"].is_null(), redis, "{}", r["label"]);
        let file = tmp
            .path()
            .join("out")
            .join(format!("{}.json", r["label"].as_str().unwrap()));
        assert!(file.is_file(), "{}", file.display());
    }
    assert_eq!(records[0]["config"]["target"], "durlab-server");
    assert_eq!(records[1]["config"]["backend"], "redis");
    // How many background syncs fit in a short run depends on timing: only the field's
    // presence is asserted (the engine's own tests check the background sync).
    assert!(records[0]["syncs"].is_u64(), "syncs is reported");
    let run: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out/run.json")).unwrap()).unwrap();
    assert!(run["histograms"]["redis-everysec-aof"]["data"].is_string());
}

#[test]
fn kill9_smoke_durlab_server_has_no_violations_and_redis_is_measured() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_durlab"))
        .args([
            "crash",
            "--fault",
            "kill9",
            "scenarios/quickstart.toml",
            "--target",
            "durlab-server,redis",
        ])
        .args([
            "--policy",
            "always,everysec",
            "--trials",
            "2",
            "--trial-secs",
            "0.3",
            "--json",
            "--quiet",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let summaries: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let mut seen_redis = false;
    for s in &summaries {
        let label = s["label"].as_str().unwrap();
        assert_eq!(s["fault"], "kill9");
        assert!(
            s["failed_trials"].as_array().unwrap().is_empty(),
            "{label}: {}",
            s["failed_trials"]
        );
        assert_eq!(s["trials"], 2, "{label}");
        for field in ["lost_acked_ops", "loss_window_ms", "lost_bytes"] {
            assert!(s[field]["max"].as_f64().is_some(), "{label}: {field}");
        }
        for t in s["trial_results"].as_array().unwrap() {
            assert!(
                t["acked_lsn"].as_u64().unwrap() > 0,
                "{label}: nothing acknowledged before the kill"
            );
        }
        if s["config"]["target"] == "redis" {
            seen_redis = true;
        } else {
            assert_eq!(
                s["violations"],
                0,
                "{label}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(s["verdicts"]["ok"], 2, "{label}");
        }
        assert!(
            tmp.path()
                .join("out")
                .join(format!("crash-kill9-{label}.json"))
                .is_file()
        );
    }
    assert!(
        seen_redis && summaries.len() == 6,
        "2 policies x (2 backends + redis): {summaries:?}"
    );
}

/// The companion of the kill -9 smoke test: the same RESP kill -9 path (the crash lab's
/// `resp_kill9` runner) reports violations when a server cannot keep the promise it is judged
/// against. Policy `off` keeps nothing across a restart (durlab serve holds memory only; Redis
/// runs with `appendonly no` and no save points), so judged against `always` every trial loses
/// what was acknowledged; judged against its own policy, the same runs violate nothing.
#[test]
fn kill9_of_memory_only_servers_judged_against_always_is_reported_as_violating() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let kill9 = |contract: &[&str], out: &str| {
        Command::new(env!("CARGO_BIN_EXE_durlab"))
            .args(["crash", "--fault", "kill9", "scenarios/quickstart.toml"])
            .args(["--target", "durlab-server,redis", "--policy", "off"])
            .args(["--backend", "pwrite", "--prealloc", "none"])
            .args(contract)
            .args(["--trials", "2", "--trial-secs", "0.3", "--json", "--quiet"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .arg("--out")
            .arg(tmp.path().join(out))
            .arg("--dir")
            .arg(tmp.path().join(format!("{out}-data")))
            .output()
            .unwrap()
    };
    let records = |out: &std::process::Output| -> Vec<Value> {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };

    let broken = kill9(&["--contract", "always"], "broken");
    assert!(!broken.status.success(), "violations make the run fail");
    let stderr = String::from_utf8_lossy(&broken.stderr);
    let judged = records(&broken);
    assert_eq!(judged.len(), 2, "durlab-server and redis: {judged:#?}");
    for r in &judged {
        let label = r["label"].as_str().unwrap();
        assert_eq!(r["fault"], "kill9");
        assert!(r["failed_trials"].as_array().unwrap().is_empty(), "{r:#}");
        assert_eq!(r["verdicts"]["lost_acked"], 2, "{label}: {r:#}");
        assert_eq!(r["violations"], 2, "{label}: {r:#}");
        for t in r["trial_results"].as_array().unwrap() {
            let acked = t["acked_lsn"].as_u64().unwrap();
            assert!(acked > 0, "{label}: nothing acknowledged before the kill");
            assert_eq!(t["promised_lsn"].as_u64(), Some(acked), "{label}: {t:#}");
            assert_eq!(t["recovered_lsn"], 0, "{label}: {t:#}");
            assert!(t["repro"].as_str().unwrap().contains("--contract always"));
        }
        assert!(
            stderr.contains(&format!("VIOLATION kill9 {label} trial 0: lost-acked")),
            "{stderr}"
        );
    }

    let honest = kill9(&[], "honest");
    assert!(
        honest.status.success(),
        "{}",
        String::from_utf8_lossy(&honest.stderr)
    );
    for r in &records(&honest) {
        assert_eq!(r["violations"], 0, "{r:#}");
        assert_eq!(r["verdicts"]["ok"], 2, "{r:#}");
    }
}

/// `durlab run` on a scenario with RESP targets kills both servers too, so its report shows
/// Redis's loss window next to durlab's.
#[test]
fn run_with_resp_targets_reports_both_servers_kill9() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("side.toml");
    std::fs::write(
        &scenario,
        r#"
name = "side"
question = "Does durlab run kill both servers?"
loss_tolerance_ms = 1000
[workload]
seed = 3
writers = 2
duration_secs = 0.5
warmup_secs = 0.1
keys = { count = 100, distribution = "uniform" }
values = { distribution = "uniform", min_bytes = 16, max_bytes = 64 }
[[workload.ops]]
command = "set"
weight = 1
[matrix]
policies = ["everysec"]
backends = ["pwrite"]
prealloc = ["zero"]
persistence = ["aof"]
targets = ["durlab-server", "redis"]
[crash]
faults = ["kill-9", "power-loss"]
trials = 1
states = ["steady"]
dir_model = "ext4-ordered"
trial_secs = 2
image_states = 8
"#,
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_durlab"))
        .arg("run")
        .arg(&scenario)
        .args(["--quick", "--no-probe", "--quiet", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for label in [
        "durlab-server-everysec-pwrite-zero-aof",
        "redis-everysec-aof",
    ] {
        for fault in ["kill9", "power-loss"] {
            let path = out_dir.join(format!("crash-{fault}-{label}.json"));
            assert!(path.is_file(), "{} missing", path.display());
        }
    }
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    for row in [
        "| durlab-server / everysec / pwrite / zero / aof | kill9 |",
        "| redis-server / everysec / aof | kill9 |",
        "| durlab-server / everysec / pwrite / zero / aof | power-loss (ext4-ordered dirs) |",
        "| redis-server / everysec / aof | power-loss (ext4-ordered dirs) |",
        "Recording filesystem overhead",
    ] {
        assert!(report.contains(row), "no crash row {row} in:\n{report}");
    }
}
