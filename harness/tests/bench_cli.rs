//! Runs the real `durlab bench` binary briefly over each backend, checks its JSON and result
//! files, and checks the oracle contract on disk: LSN n carries write command n.

use std::path::Path;
use std::process::Command;

use durlab_engine::aof;
use durlab_harness::scenario::builtin;
use durlab_harness::workload::Workload;
use serde_json::Value;

const SEED: u64 = 77;

fn bench(backend: &str, tmp: &Path, probe: bool) -> Vec<Value> {
    let out = tmp.join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_durlab"));
    cmd.args([
        "bench",
        "--policy",
        "always,everysec",
        "--backend",
        backend,
        "--writers",
        "2",
        "--duration",
        "1",
    ])
    .args([
        "--seed",
        &SEED.to_string(),
        "--run-id",
        "test",
        "--keep",
        "--json",
        "--quiet",
    ])
    .arg("--dir")
    .arg(tmp.join("data"))
    .arg("--out")
    .arg(&out);
    if !probe {
        cmd.arg("--no-probe");
    }
    let output = cmd.output().expect("durlab runs");
    assert!(
        output.status.success(),
        "durlab failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "--quiet prints nothing: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records: Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    let records = records.as_array().expect("a JSON array").clone();

    // Result files: one per configuration plus run.json.
    for r in &records {
        assert!(
            out.join(format!("{}.json", r["label"].as_str().unwrap()))
                .is_file()
        );
    }
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["seed"], SEED);
    for key in [
        "kernel",
        "cpu_model",
        "cpu_count",
        "memory_total_mb",
        "data_fs",
    ] {
        assert!(!run["machine"][key].is_null(), "machine.{key}");
    }
    assert!(
        run["versions"]["durlab_harness"].is_string()
            && run["versions"]["dependencies"]["rand"].is_string()
    );
    assert!(run["git_revision"].is_string());
    assert_eq!(run["probe"].is_null(), !probe);
    for r in &records {
        let h = &run["histograms"][r["label"].as_str().unwrap()];
        assert_eq!(h["format"], "hdrhistogram-v2-base64");
        assert!(h["data"].as_str().unwrap().len() > 10);
    }
    records
}

fn check_record(r: &Value, backend: &str, probe: bool) {
    let c = &r["config"];
    for key in [
        "policy",
        "backend",
        "prealloc",
        "writers",
        "value_size",
        "persistence",
        "scenario",
    ] {
        assert!(!c[key].is_null(), "config.{key} in {r}");
    }
    assert_eq!(c["writers"], 2);
    assert_eq!(c["persistence"], "aof");
    assert_eq!(c["scenario"], builtin::NAME);
    assert_eq!(c["value_size"], 64.0);
    if c["policy"] != "off" {
        assert_eq!(c["backend"], backend);
    }
    let num = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{k} is a number in {r}"))
    };
    assert!(num("ops") > 0.0 && num("seconds") > 0.0 && num("ops_per_sec") > 0.0);
    assert!((num("ops_per_sec") - num("ops") / num("seconds")).abs() < 1e-6 * num("ops_per_sec"));
    let lat = &r["latency_us"];
    let l = |k: &str| lat[k].as_f64().unwrap();
    assert!(
        l("p50") > 0.0
            && l("p50") <= l("p99")
            && l("p99") <= l("p999")
            && l("p999") <= l("max") * 1.001,
        "{lat}"
    );
    for k in [
        "syncs",
        "bytes_written",
        "avg_batch",
        "cpu_seconds",
        "max_rss_mb",
    ] {
        num(k);
    }
    assert!(num("max_rss_mb") > 0.0 && num("cpu_seconds") > 0.0);
    let policy = c["policy"].as_str().unwrap();
    if policy == "off" {
        assert_eq!(num("syncs"), 0.0);
        assert_eq!(num("ratio_to_off"), 1.0);
    } else {
        assert!(num("bytes_written") > 0.0 && num("avg_batch") >= 1.0);
        assert!(num("ratio_to_off") > 0.0);
    }
    if policy == "always" {
        assert!(num("syncs") > 0.0);
        assert_eq!(r["ratio_to_probe"].is_null(), !probe, "{r}");
    } else {
        assert!(r["ratio_to_probe"].is_null());
    }
}

/// Every logged LSN n carries write command n of the workload, densely from 1.
fn check_log(r: &Value) {
    let dir = Path::new(r["data_dir"].as_str().unwrap());
    let logged = aof::read_commands(dir)
        .unwrap_or_else(|e| panic!("reading the log in {}: {e}", dir.display()));
    assert!(!logged.is_empty());
    assert!(logged.len() as u64 >= r["last_lsn"].as_u64().unwrap().min(1));
    let mut scenario = builtin::scenario();
    scenario.workload.seed = SEED;
    let workload = Workload::new(&scenario.workload);
    for (i, (lsn, cmd)) in logged.iter().enumerate() {
        assert_eq!(*lsn, i as u64 + 1, "LSNs are dense from 1");
        assert_eq!(
            *cmd,
            workload.command(*lsn),
            "LSN {lsn} carries write command {lsn}"
        );
    }
}

fn run_backend(backend: &str, probe: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let records = bench(backend, tmp.path(), probe);
    let policies: Vec<&str> = records
        .iter()
        .map(|r| r["config"]["policy"].as_str().unwrap())
        .collect();
    assert_eq!(
        policies,
        ["always", "everysec", "off"],
        "matrix plus the off baseline"
    );
    for r in &records {
        check_record(r, backend, probe);
        if r["config"]["policy"] != "off" {
            check_log(r);
        }
    }
}

#[test]
fn bench_pwrite_end_to_end() {
    run_backend("pwrite", true);
}

#[test]
fn bench_uring_end_to_end() {
    run_backend("uring", false);
}

/// Runs `cmd`, which must succeed, and parses its stdout as one JSON document.
fn stdout_json(cmd: &mut Command) -> Value {
    let output = cmd.output().expect("durlab runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON document")
}

/// Every persistence mode runs through `bench` and leaves the files its mode promises.
#[test]
fn bench_runs_every_persistence_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_durlab"));
    cmd.args([
        "bench",
        "--persistence",
        "snapshot,aof+snapshot,hybrid",
        "--policy",
        "everysec",
    ])
    .args([
        "--commands",
        "2000",
        "--writers",
        "2",
        "--no-probe",
        "--quiet",
        "--json",
        "--keep",
    ])
    .arg("--dir")
    .arg(&data)
    .arg("--out")
    .arg(tmp.path().join("out"));
    let json = stdout_json(&mut cmd);
    let modes: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["config"]["persistence"].as_str().unwrap())
        .collect();
    for mode in ["snapshot", "aof+snapshot", "hybrid"] {
        assert!(modes.contains(&mode), "{mode} missing from {modes:?}");
    }
    let run = std::fs::read_dir(&data)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        run.join("everysec-pwrite-none-aof-snapshot")
            .join("durlab.aof")
            .exists()
    );
    assert!(
        run.join("everysec-pwrite-none-hybrid")
            .join("durlab.manifest")
            .exists()
    );
}

/// Several `--writers` counts: one record per configuration and count, labelled `-w<N>`,
/// without the `off` baseline under `--no-baseline`.
#[test]
fn bench_sweeps_writer_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let json = stdout_json(
        Command::new(env!("CARGO_BIN_EXE_durlab"))
            .args(["bench", "--policy", "always", "--writers", "1,3"])
            .args(["--commands", "300", "--no-probe", "--no-baseline"])
            .args(["--quiet", "--json", "--dir"])
            .arg(tmp.path().join("data"))
            .arg("--out")
            .arg(&out),
    );
    let got: Vec<(String, u64)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_string(),
                r["config"]["writers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("always-pwrite-none-aof-w1".to_string(), 1),
            ("always-pwrite-none-aof-w3".to_string(), 3)
        ]
    );
    for (label, _) in &got {
        assert!(out.join(format!("{label}.json")).is_file(), "{label}.json");
    }
}

#[test]
fn bench_names_scenario_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("broken.toml");
    std::fs::write(&path, "name = \"x\"\nquestion = \"q\"\nbogus = 1\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_durlab"))
        .arg("bench")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("broken.toml:3:1: field `bogus`: unknown field `bogus`"),
        "{err}"
    );
}
