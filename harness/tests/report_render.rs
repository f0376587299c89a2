//! `durlab report` on the fixture run: every plot is written as a decodable PNG of the
//! expected size and a well-formed SVG, and report.md carries the fixture's numbers.

mod common;

use std::process::Command;

use durlab_harness::report::{self, plots::style};

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
    assert!(md.contains(
        "| always / pwrite / none / aof | 18000 | 0.014 | 0.900 | 137.5 | 265.0 | 0 / 0 / 0 | 0 / 0 / 0 | 0 |"
    ), "{md}");
    assert!(md.contains(
        "| everysec / pwrite / none / aof | 500000 | 0.385 | - | 1.7 | 11.5 | 0 / 0 / 0 | 420 / 880 / 950 | 0 |"
    ), "{md}");
    assert!(md.contains(
        "| off / pwrite / none / aof | 1300000 | 1.000 | - | 0.4 | 2.1 | not measured | not measured | not measured |"
    ), "{md}");
    assert!(md.contains("| ops/s | 13118 | 8287 | 17772 | 8641 | 20311 | 17694 |"));
    for stem in PLOTS {
        assert!(
            md.contains(&format!("]({stem}.svg)")),
            "report links {stem}"
        );
    }
    assert!(md.contains("single writer count (2)"));
    assert!(md.contains("labelled \"0 ms\" at 10 ms"));
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
