//! A missing or malformed result file is an error naming the file (and the field).

mod common;

use durlab_harness::report;

fn error_of(dir: &std::path::Path) -> String {
    report::write_report(dir).unwrap_err().to_string()
}

#[test]
fn missing_bench_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    std::fs::remove_file(dir.join("no-pwrite-none-aof.json")).unwrap();
    let e = error_of(&dir);
    assert!(e.contains("no-pwrite-none-aof.json"), "{e}");
}

#[test]
fn missing_run_json_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    std::fs::remove_file(dir.join("run.json")).unwrap();
    let e = error_of(&dir);
    assert!(e.contains("run.json"), "{e}");
}

#[test]
fn malformed_field_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    let file = dir.join("always-pwrite-none-aof.json");
    common::edit_json(&file, |v| v["latency_us"]["p99"] = "slow".into());
    let e = error_of(&dir);
    assert!(e.contains("always-pwrite-none-aof.json"), "{e}");
    assert!(e.contains("latency_us.p99"), "{e}");
}

#[test]
fn missing_crash_field_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    let file = dir.join("crash-power-loss-everysec-pwrite-none-aof.json");
    common::edit_json(&file, |v| {
        v.as_object_mut().unwrap().remove("loss_window_ms");
    });
    let e = error_of(&dir);
    assert!(
        e.contains("crash-power-loss-everysec-pwrite-none-aof.json"),
        "{e}"
    );
    assert!(e.contains("loss_window_ms"), "{e}");
}

#[test]
fn not_json_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    std::fs::write(dir.join("recovery.json"), "{ not json").unwrap();
    let e = error_of(&dir);
    assert!(e.contains("recovery.json"), "{e}");
}

#[test]
fn bad_histogram_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    common::edit_json(&dir.join("run.json"), |v| {
        v["histograms"]["no-pwrite-none-aof"]["data"] = "!!!!".into();
    });
    let e = error_of(&dir);
    assert!(e.contains("run.json"), "{e}");
    assert!(e.contains("histograms.no-pwrite-none-aof.data"), "{e}");
}

#[test]
fn malformed_group_commit_sweep_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    let file = dir.join("group-commit/always-pwrite-none-aof-w16.json");
    common::edit_json(&file, |v| v["ops_per_sec"] = "fast".into());
    let e = error_of(&dir);
    assert!(
        e.contains("group-commit/always-pwrite-none-aof-w16.json"),
        "{e}"
    );
    assert!(e.contains("ops_per_sec"), "{e}");
}

#[test]
fn missing_group_commit_record_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    std::fs::remove_file(dir.join("group-commit/always-pwrite-none-aof-w4.json")).unwrap();
    let e = error_of(&dir);
    assert!(
        e.contains("group-commit/always-pwrite-none-aof-w4.json"),
        "{e}"
    );
}

#[test]
fn malformed_recovery_sweep_step_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    common::edit_json(&dir.join("recovery.json"), |v| {
        v[7]["fill_mb"] = "big".into();
    });
    let e = error_of(&dir);
    assert!(e.contains("recovery.json"), "{e}");
    assert!(e.contains("[7].fill_mb"), "{e}");
}
