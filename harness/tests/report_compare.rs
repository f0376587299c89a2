//! `durlab report A B`: ratios B/A per configuration. Fixture run-b has 1.1× the ops/s,
//! 0.8× the p99 latency and 0.5× the loss windows of run-a.

mod common;

use std::process::Command;

use durlab_harness::report::{compare, load};

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn ratios_per_configuration() {
    let a = load::load(&common::fixture("run-a")).unwrap();
    let b = load::load(&common::fixture("run-b")).unwrap();
    let rows = compare::rows(&a, &b);
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert!(close(compare::ratio(r.ops_per_sec), 1.1), "{r:?}");
        assert!(close(compare::ratio(r.latency_us_p99), 0.8), "{r:?}");
    }
    let everysec = rows
        .iter()
        .find(|r| r.label == "everysec-pwrite-none-aof")
        .unwrap();
    let power = everysec
        .loss_window_ms_max
        .iter()
        .find(|l| l.0 == "power-loss")
        .unwrap();
    assert_eq!((power.1, power.2), (Some(950.0), Some(475.0)));
    assert!(close(compare::ratio((power.1, power.2)), 0.5));

    let md = compare::render(&a, &b);
    assert!(md.contains(
        "| everysec-pwrite-none-aof | 500000 | 550000 | 1.1; n = 1 run each, no interval (no per-interval rates recorded) | 11.5 | 9.2 | 0.8 | 0 | 0 | same (0) | 950 | 475 | 0.5 |"
    ), "{md}");
    assert!(
        md.contains("| off-pwrite-none-aof | 1300000 | 1430000 | 1.1; n = 1 run each,"),
        "{md}"
    );
    // A censored maximum is a lower bound, and a ratio of it bounds nothing.
    assert!(md.contains("| ≥ 4500 | 2250 | censored |"), "{md}");
}

#[test]
fn cli_prints_and_writes_the_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("cmp.md");
    let out = Command::new(env!("CARGO_BIN_EXE_durlab"))
        .arg("report")
        .arg(common::fixture("run-a"))
        .arg(common::fixture("run-b"))
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("# Compare: `run-a` (A) vs `run-b` (B)"));
    assert_eq!(std::fs::read_to_string(out_file).unwrap(), printed);
}
