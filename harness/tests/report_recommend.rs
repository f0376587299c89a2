//! The recommendation follows the numbers: in the fixture, everysec's worst power-loss
//! window is 950 ms. With a 500 ms tolerance only `always` qualifies; with 1000 ms the faster
//! `everysec` does; without crash results nothing is recommended.

mod common;

use durlab_harness::report::{load, recommend};

#[test]
fn tolerance_flips_the_recommended_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    let strict = load::load(&dir).unwrap();
    assert_eq!(
        recommend::recommended_label(&strict).as_deref(),
        Some("always-pwrite-none-aof")
    );
    let text = recommend::render(&strict);
    assert!(text.contains("use `appendfsync always`"), "{text}");
    assert!(
        text.contains("worst loss window 950 ms, beyond the 500 ms tolerance"),
        "{text}"
    );

    common::edit_json(&dir.join("run.json"), |v| {
        v["loss_tolerance_ms"] = 1000.into()
    });
    let relaxed = load::load(&dir).unwrap();
    assert_eq!(
        recommend::recommended_label(&relaxed).as_deref(),
        Some("everysec-pwrite-none-aof")
    );
    let text = recommend::render(&relaxed);
    assert!(text.contains("use `appendfsync everysec`"), "{text}");
    assert!(
        text.contains("worst observed loss window of 950 ms"),
        "{text}"
    );
}

#[test]
fn loss_numbers_flip_the_recommendation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    // The per-state rows are what the report judges (the summary is recomputed from them).
    common::edit_json(
        &dir.join("crash-power-loss-everysec-pwrite-none-aof.json"),
        |v| {
            for row in v["trial_results"].as_array_mut().unwrap() {
                let w = row["loss_window_ms"].as_f64().unwrap();
                row["loss_window_ms"] = w.min(450.0).into();
            }
        },
    );
    let r = load::load(&dir).unwrap();
    assert_eq!(
        recommend::recommended_label(&r).as_deref(),
        Some("everysec-pwrite-none-aof")
    );
}

#[test]
fn violations_disqualify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    common::edit_json(&dir.join("run.json"), |v| {
        v["loss_tolerance_ms"] = 1000.into()
    });
    common::edit_json(
        &dir.join("crash-kill-9-everysec-pwrite-none-aof.json"),
        |v| v["violations"] = 2.into(),
    );
    let r = load::load(&dir).unwrap();
    assert_eq!(
        recommend::recommended_label(&r).as_deref(),
        Some("always-pwrite-none-aof")
    );
    assert!(recommend::render(&r).contains("**2 contract violation(s)**"));
}

#[test]
fn no_crash_results_no_recommendation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    for f in load::crash_files(&dir).unwrap() {
        std::fs::remove_file(f).unwrap();
    }
    let r = load::load(&dir).unwrap();
    assert_eq!(recommend::recommended_label(&r), None);
    assert!(recommend::render(&r).contains("Crash results are missing"));
}
