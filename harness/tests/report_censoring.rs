//! Censored loss windows (docs/design.md, "Censoring") stay marked from the crash lab's JSON
//! through the tables, the plot and the recommendation, and the report's intervals separate
//! configurations or say that they cannot. The fixture run-a has a censored cell (policy `no`
//! under power loss: its 12 longest windows of 30 reach the trial's first acknowledgement)
//! and an uncensored one (`everysec`); each check also runs on a copy with the marks removed,
//! where it must come out the other way.

mod cli_support;
mod common;

use std::path::{Path, PathBuf};

use durlab_harness::report::{self, load, recommend};

const NO_POWER: &str = "crash-power-loss-no-pwrite-none-aof.json";
const EVERYSEC_POWER: &str = "crash-power-loss-everysec-pwrite-none-aof.json";

/// run-a, optionally with every censored mark of `no` removed (rows marked false with a
/// recovered LSN, so that old-file inference finds nothing either).
fn run_a(tmp: &Path, strip_marks: bool) -> PathBuf {
    let dir = common::copy_fixture("run-a", tmp);
    if strip_marks {
        common::edit_json(&dir.join(NO_POWER), |v| {
            for row in v["trial_results"].as_array_mut().unwrap() {
                row["censored"] = false.into();
                row["recovered_lsn"] = 7.into();
            }
            v["censored"] = 0.into();
        });
    }
    dir
}

/// `dir` loaded with a 5 s loss tolerance: above every observed window of run-a, so only
/// the censored mark can keep `no` out.
fn with_tolerance_5s(dir: &Path) -> durlab_harness::report::model::RunResults {
    common::edit_json(&dir.join("run.json"), |v| {
        v["loss_tolerance_ms"] = 5000.into()
    });
    load::load(dir).unwrap()
}

/// The table row of `label` in report.md.
fn row<'a>(md: &'a str, label: &str) -> &'a str {
    md.lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row {label} in {md}"))
}

#[test]
fn censored_cell_is_marked_in_tables_and_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_a(tmp.path(), false);
    report::write_report(&dir).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let no = row(&md, "no / pwrite / none / aof");
    // p50 has no censored window at or below it; p99 and max do.
    assert!(
        no.contains(
            "2600 [1700–3400] / ≥ 4500 [3200–4500] / ≥ 4500 [3200–4500] ms; n = 30 states of 10 trials; **censored 12/30**"
        ),
        "{no}"
    );
    let everysec = row(&md, "everysec / pwrite / none / aof");
    assert!(
        !everysec.contains('≥') && !everysec.contains("censored"),
        "{everysec}"
    );
    let svg = std::fs::read_to_string(dir.join("loss-vs-throughput.svg")).unwrap();
    assert!(svg.contains("no-pwrite-none-aof (censored 12/30)"));
    assert!(svg.contains("only a lower bound"));
}

#[test]
fn without_marks_nothing_is_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_a(tmp.path(), true);
    report::write_report(&dir).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let no = row(&md, "no / pwrite / none / aof");
    assert!(!no.contains('≥') && !no.contains("censored"), "{no}");
    let svg = std::fs::read_to_string(dir.join("loss-vs-throughput.svg")).unwrap();
    assert!(!svg.contains("censored"));
}

#[test]
fn a_censored_window_is_never_within_the_tolerance() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_a(tmp.path(), false);
    let r = with_tolerance_5s(&dir);
    assert_eq!(
        recommend::recommended_label(&r).as_deref(),
        Some("everysec-pwrite-none-aof")
    );
    let text = recommend::render(&r);
    assert!(
        text.contains("worst loss window ≥ 4500 ms (censored: only a lower bound"),
        "{text}"
    );
    assert!(
        text.contains("**censored: not known to be within the tolerance**"),
        "{text}"
    );
}

#[test]
fn without_marks_the_faster_policy_would_be_chosen() {
    // The companion: the same numbers unmarked put `no` within the tolerance, so the test
    // above fails if the mark is dropped anywhere between the JSON and the recommendation.
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_a(tmp.path(), true);
    let r = with_tolerance_5s(&dir);
    assert_eq!(
        recommend::recommended_label(&r).as_deref(),
        Some("no-pwrite-none-aof")
    );
}

#[test]
fn rows_older_than_the_mark_are_censored_when_nothing_was_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_a(tmp.path(), false);
    // As written before the mark existed: no `censored` anywhere; r = 0 stays on the rows
    // that lost everything.
    common::edit_json(&dir.join(NO_POWER), |v| {
        for row in v["trial_results"].as_array_mut().unwrap() {
            row.as_object_mut().unwrap().remove("censored");
        }
        let o = v.as_object_mut().unwrap();
        o.remove("censored");
        o.remove("loss_window_lower_bound");
    });
    let r = load::load(&dir).unwrap();
    let no = r
        .crashes
        .iter()
        .find(|c| c.config.policy == "no" && c.fault == "power-loss");
    assert_eq!(no.unwrap().window.censored, Some(12));

    // Companion: the same rows with something recovered are not censored.
    common::edit_json(&dir.join(NO_POWER), |v| {
        for row in v["trial_results"].as_array_mut().unwrap() {
            row["recovered_lsn"] = 1.into();
        }
    });
    let r = load::load(&dir).unwrap();
    let no = r
        .crashes
        .iter()
        .find(|c| c.config.policy == "no" && c.fault == "power-loss");
    assert_eq!(no.unwrap().window.censored, Some(0));
}

#[test]
fn overlapping_intervals_are_reported_as_indistinguishable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_a(tmp.path(), false);
    // run-a's intervals separate `everysec` (p50 420 [250–680]) from `no` (2600 [1700–3400]).
    let text = recommend::render(&load::load(&dir).unwrap());
    assert!(!text.contains("Cannot be told apart"), "{text}");

    // Companion: `no` given everysec's windows cannot be told apart from it.
    let everysec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(EVERYSEC_POWER)).unwrap()).unwrap();
    common::edit_json(&dir.join(NO_POWER), |v| {
        v["trial_results"] = everysec["trial_results"].clone();
    });
    let text = recommend::render(&load::load(&dir).unwrap());
    assert!(
        text.contains(
            "**Cannot be told apart** on the p50 loss window (their 95% intervals overlap): \
             `everysec / pwrite / none / aof` (420 [250–680] ms) and `no / pwrite / none / aof` \
             (420 [250–680] ms) under power-loss."
        ),
        "{text}"
    );
}

/// The power-loss record of one short `durlab crash` trial of `policy` (real engine, real
/// I/O trace, every image judged).
fn crash(tmp: &Path, policy: &str) -> serde_json::Value {
    let (output, mut records) = cli_support::durlab_json(
        &[
            "crash",
            "--fault",
            "power-loss",
            "--policy",
            policy,
            "--trials",
            "1",
            "--trial-secs",
            "0.3",
            "--states",
            "4",
            "--seed",
            "7",
        ],
        tmp,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(records.len(), 1);
    records.remove(0)
}

#[test]
fn the_crash_lab_marks_a_trial_that_lost_its_whole_history() {
    // Policy `no` never syncs, so a power loss keeps nothing of a fresh trial: every state
    // with a loss lost all of it, and must be marked.
    let tmp = tempfile::tempdir().unwrap();
    let no = crash(&tmp.path().join("no"), "no");
    let rows = no["trial_results"].as_array().unwrap();
    let lossy: Vec<_> = rows
        .iter()
        .filter(|r| r["loss_window_ms"].as_f64().unwrap() > 0.0)
        .collect();
    assert!(!lossy.is_empty(), "{no}");
    assert!(lossy.iter().all(|r| r["censored"] == true), "{no}");
    assert_eq!(no["censored"].as_u64().unwrap(), lossy.len() as u64);
    assert_eq!(no["loss_window_lower_bound"]["max"], true);

    // Companion: `always` loses nothing acknowledged, so nothing is censored.
    let always = crash(&tmp.path().join("always"), "always");
    assert_eq!(always["censored"], 0);
    assert_eq!(always["loss_window_lower_bound"]["max"], false);
    assert!(
        always["trial_results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["censored"] == false)
    );
}
