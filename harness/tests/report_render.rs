//! `durlab report` on the fixture run: every plot is written as a decodable PNG of the
//! expected size and a well-formed SVG, and report.md carries the fixture's numbers.

mod common;

use std::process::Command;

use durlab_harness::report;
use durlab_harness::report::plots::{group_commit::GroupCommit, recovery::Recovery, style};

const PLOTS: [&str; 4] = [
    "loss-vs-throughput",
    "latency-cdf",
    "group-commit",
    "recovery",
];

#[test]
fn plots_decode_and_parse() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    let written = report::write_report(&dir).unwrap();
    assert_eq!(written.plots.len(), 8);
    for stem in PLOTS {
        let png = std::fs::File::open(dir.join(format!("{stem}.png"))).unwrap();
        let mut reader = png::Decoder::new(png).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.width, info.height),
            (style::WIDTH_PX, style::HEIGHT_PX),
            "{stem}.png"
        );
        // Not blank: some pixels are not white.
        assert!(buf.iter().any(|&b| b < 200), "{stem}.png has content");

        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{stem}.svg: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(
            doc.descendants().any(|n| n.has_tag_name("text")),
            "{stem}.svg has text"
        );
    }
    let loss = std::fs::read_to_string(dir.join("loss-vs-throughput.svg")).unwrap();
    for text in [
        "kill9",
        "power-loss",
        "0 ms",
        "everysec-pwrite-none-aof",
        "Pareto front",
    ] {
        assert!(loss.contains(text), "loss plot shows {text}");
    }
    // The group-commit sweep: one line of four points, each labelled with ops/s and batch.
    let gc = std::fs::read_to_string(dir.join("group-commit.svg")).unwrap();
    for text in [
        "always / pwrite / none / aof",
        "2k, batch 1.0",
        "7k, batch 3.2",
        "24k, batch 11.5",
        "41k, batch 21.8",
        "log2 scale",
    ] {
        assert!(gc.contains(text), "group-commit plot shows {text}");
    }
    assert!(!gc.contains("only one writer count"));
    // The recovery sweep: a line per mode plus the after-bench points.
    let rec = std::fs::read_to_string(dir.join("recovery.svg")).unwrap();
    for text in [
        "aof: sweep",
        "hybrid: sweep",
        "aof: after each bench",
        "330 ms",
        "250 ms",
        "everysec pwrite",
    ] {
        assert!(rec.contains(text), "recovery plot shows {text}");
    }
}

#[test]
fn sweeps_give_multi_point_series() {
    let results = report::load::load(&common::fixture("run-a")).unwrap();
    let gc = GroupCommit::new(&results);
    assert!(gc.from_sweep());
    assert_eq!(gc.writer_counts(), vec![1, 4, 16, 32]);
    let series = gc.series();
    assert_eq!(series.len(), 1);
    let points = &series["always / pwrite / none / aof"];
    assert_eq!(
        points.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
        vec![(1, 2000.0), (4, 7000.0), (16, 24000.0), (32, 41000.0)]
    );

    let rec = Recovery::new(&results).series();
    assert_eq!(rec.keys().collect::<Vec<_>>(), vec!["aof", "hybrid"]);
    let mib = |s: &[(f64, f64, String)]| s.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>();
    assert_eq!(
        mib(&rec["aof"].sweep),
        vec![(4.0, 20.0), (16.0, 80.0), (64.0, 330.0)]
    );
    assert_eq!(
        mib(&rec["hybrid"].sweep),
        vec![(4.0, 15.0), (16.0, 60.0), (64.0, 250.0)]
    );
    assert_eq!(rec["aof"].after_bench.len(), 3);
    assert!(rec["hybrid"].after_bench.is_empty());
}

#[test]
fn without_sweep_group_commit_has_one_point() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    std::fs::remove_dir_all(dir.join(report::load::GROUP_COMMIT_DIR)).unwrap();
    report::write_report(&dir).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("single writer count (2)"), "{md}");
    assert!(!md.contains("## Group commit"));
    let gc = std::fs::read_to_string(dir.join("group-commit.svg")).unwrap();
    assert!(gc.contains("only one writer count (2)"));
}

#[test]
fn report_table_matches_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_durlab"))
        .arg("report")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.trim(), dir.join("report.md").display().to_string());
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("How much throughput does each appendfsync policy cost"));
    // Ratios carry three significant digits, their interval and sample; loss windows their
    // intervals and sample; records without per-state rows say so instead of inventing one.
    let no_rows =
        "0 / 0 / 0 ms; n = 10 trials, no interval (no per-state rows); censoring not recorded";
    assert!(md.contains(&format!(
        "| always / pwrite / none / aof | 18000 | 0.0138 [0.0136–0.0141]; n = 25 / 25 intervals of ~100 ms | 0.9 (probe: mean of 2 quick runs) | 137.5 | 265.0 | {no_rows} | {no_rows} | 0 |"
    )), "{md}");
    assert!(md.contains(&format!(
        "| everysec / pwrite / none / aof | 500000 | 0.385 [0.377–0.392]; n = 25 / 25 intervals of ~100 ms | - | 1.7 | 11.5 | {no_rows} | 420 [250–680] / 950 [600–950] / 950 [600–950] ms; n = 30 states of 10 trials | 0 |"
    )), "{md}");
    assert!(md.contains(
        "| no / pwrite / none / aof | 520000 | 0.4; n = 1 run each, no interval (no per-interval rates recorded) |"
    ), "{md}");
    assert!(md.contains(
        "| off / pwrite / none / aof | 1300000 | 1; the baseline itself | - | 0.4 | 2.1 | not measured | not measured | not measured |"
    ), "{md}");
    // Column headings say what they count; bytes are human-readable.
    assert!(md.contains("| trials (runs) | crash states | ok (states) | lost-acked (states) |"));
    assert!(
        md.contains("| 21000 / 44000 / 47500 | 2 MiB / 4.2 MiB / 4.53 MiB |"),
        "{md}"
    );
    assert!(md.contains("| ops/s | 13118 | 8287 | 17772 | 8641 | 20311 | 17694 |"));
    for stem in PLOTS {
        assert!(
            md.contains(&format!("]({stem}.svg)")),
            "report links {stem}"
        );
    }
    assert!(md.contains("labelled \"0 ms\" at 10 ms"));
    // The sweeps' tables.
    assert!(
        md.contains("against the number of writers (1, 4, 16, 32; log2 axis)"),
        "{md}"
    );
    assert!(
        md.contains(
            "| always / pwrite / none / aof | 32 | 41000 | 20.5; n = 1 run each, no interval (no per-interval rates recorded) | 2100.0 | 21.8 | 1184 |"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "| `no-pwrite-none-hybrid` | sweep 64 MiB | 64.00 | 374267 | 374267 | 250.0 | 249.5 |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| `always-pwrite-none-aof` | after bench |"),
        "{md}"
    );
}

#[test]
fn without_crash_results_report_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    for f in report::load::crash_files(&dir).unwrap() {
        std::fs::remove_file(f).unwrap();
    }
    std::fs::remove_file(dir.join("recovery.json")).unwrap();
    report::write_report(&dir).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Crash results are missing from this run"));
    assert!(!md.contains("Decision:"));
    assert!(md.contains("No recovery measurements in this run"));
    let rec = std::fs::read_to_string(dir.join("recovery.svg")).unwrap();
    assert!(rec.contains("no recovery measurements in this run"));
}

#[test]
fn delivery_verdicts_get_their_section_only_when_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("run-a", tmp.path());
    report::write_report(&dir).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(!md.contains("## Deliveries to consumer groups"), "{md}");

    let file = dir.join("crash-power-loss-everysec-pwrite-none-aof.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    record["deliveries"] = serde_json::json!({
        "acked_redelivered": 3261, "delivered_lost": 0, "double_handed": 717,
        "last_delivered_regressions": 238, "states_with_anomalies": 32, "states_judged": 35
    });
    std::fs::write(&file, record.to_string()).unwrap();
    report::write_report(&dir).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Deliveries to consumer groups"), "{md}");
    assert!(
        md.contains("| everysec / pwrite / none / aof | power-loss | 35 | 32 | 3261 | 0 | 717 | 238 | 420 [250–680] / 950 [600–950] / 950 [600–950] ms; n = 30 states of 10 trials |"),
        "{md}"
    );
}
