//! Scenario parsing: every shipped file loads, and each kind of mistake is reported with the
//! file, the line and the field.

use std::path::{Path, PathBuf};

use durlab_harness::scenario::model::{CommandKind, Fault, Persistence};
use durlab_harness::scenario::{ScenarioError, load, parse_str};

const VALID: &str = r#"name = "t"
question = "q?"

[workload]
seed = 1
writers = 2
duration_secs = 1.0
keys = { count = 10, distribution = "zipf", exponent = 0.9 }
values = { distribution = "fixed", bytes = 64 }

[[workload.ops]]
command = "set"
weight = 3

[[workload.ops]]
command = "get"
weight = 1
"#;

fn parse(text: &str) -> Result<durlab_harness::scenario::Scenario, ScenarioError> {
    parse_str(Path::new("scenarios/t.toml"), text)
}

fn error(text: &str) -> ScenarioError {
    parse(text).expect_err("expected an error")
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn shipped_scenarios_load() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                path.file_stem().unwrap().to_str().unwrap(),
                s.name,
                "file name matches `name`"
            );
            assert!(!s.question.is_empty());
            // Every shipped scenario states the rate its system runs at (crash trials use it).
            let rate = s
                .workload
                .rate()
                .unwrap_or_else(|| panic!("{} has no rate", s.name));
            assert!(rate.ops_per_sec >= 100.0, "{}: {rate:?}", s.name);
            names.push(s.name);
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "build-queue",
            "crawler-counters",
            "event-stream",
            "feature-cache",
            "llm-gateway",
            "quickstart",
            "redis-side-by-side"
        ]
    );
}

#[test]
fn llm_gateway_keeps_save_points_and_crash_plan() {
    let s = load(&scenarios_dir().join("llm-gateway.toml")).unwrap();
    assert_eq!(
        s.snapshot.unwrap().save,
        vec![(3600, 1), (300, 100), (60, 10000)]
    );
    let crash = s.crash.unwrap();
    assert!(crash.faults.contains(&Fault::Kill9) && crash.faults.contains(&Fault::PowerLoss));
    assert_eq!(
        s.matrix.persistence,
        vec![Persistence::Aof, Persistence::AofSnapshot]
    );
    assert!(
        s.workload
            .ops
            .get_ref()
            .iter()
            .any(|o| o.command == CommandKind::PExpireAt)
    );
}

#[test]
fn valid_base_parses() {
    let s = parse(VALID).unwrap();
    assert_eq!(*s.workload.writers.get_ref(), 2);
    // The sweeps' defaults.
    assert_eq!(s.group_commit.writers.get_ref(), &vec![1, 4, 16, 32]);
    assert_eq!(s.recovery.data_mb.get_ref(), &vec![32.0, 128.0, 512.0]);
    assert!(s.recovery.persistence.is_empty());
}

#[test]
fn sweep_tables_parse_and_are_checked() {
    let s = parse(&format!(
        "{VALID}\n[group_commit]\nwriters = [2, 8]\nduration_secs = 0.5\n\n[recovery]\n\
         data_mb = [1, 2.5]\npersistence = [\"aof\", \"hybrid\"]\n"
    ))
    .unwrap();
    assert_eq!(s.group_commit.writers.get_ref(), &vec![2, 8]);
    assert_eq!(s.recovery.data_mb.get_ref(), &vec![1.0, 2.5]);
    assert_eq!(
        s.recovery.persistence,
        vec![Persistence::Aof, Persistence::Hybrid]
    );

    let e = error(&format!("{VALID}\n[group_commit]\nwriters = [4, 0]\n"));
    assert_eq!(e.field, "group_commit.writers", "{e}");
    assert_eq!(e.line, 20, "{e}");
    let e = error(&format!("{VALID}\n[recovery]\ndata_mb = []\n"));
    assert_eq!(e.field, "recovery.data_mb", "{e}");
    let e = error(&format!("{VALID}\n[recovery]\npersistence = [\"rdb\"]\n"));
    assert_eq!(e.field, "recovery.persistence", "{e}");
}

#[test]
fn workload_rate_is_read_and_checked() {
    let rated = |r: &str| VALID.replace("writers = 2\n", &format!("writers = 2\nrate = {r}\n"));
    let s = parse(&rated("{ ops_per_sec = 250, arrivals = \"uniform\" }")).unwrap();
    let r = s.workload.rate().unwrap();
    assert_eq!((r.ops_per_sec, r.arrivals.name()), (250.0, "uniform"));
    // Poisson unless said otherwise; no rate: flat-out.
    let s = parse(&rated("{ ops_per_sec = 250 }")).unwrap();
    assert_eq!(s.workload.rate().unwrap().arrivals.name(), "poisson");
    assert!(parse(VALID).unwrap().workload.rate().is_none());
    let e = error(&rated("{ ops_per_sec = 0 }"));
    assert_eq!(
        (e.line, e.field.as_str()),
        (7, "workload.rate.ops_per_sec"),
        "{e}"
    );
    assert!(e.message.contains("outside"), "{e}");
    let e = error(&rated("{ ops_per_sec = 5, arrivals = \"bursty\" }"));
    assert_eq!(e.line, 7, "{e}");
    assert!(e.message.contains("bursty"), "{e}");
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let e = error(&VALID.replace("seed = 1", "seed = 1\nsede = 2"));
    assert_eq!(
        (e.line, e.file.as_path()),
        (6, Path::new("scenarios/t.toml"))
    );
    assert!(e.message.contains("unknown field `sede`"), "{e}");
    assert!(
        e.to_string()
            .starts_with("scenarios/t.toml:6:1: field `workload.sede`"),
        "{e}"
    );
}

#[test]
fn unknown_field_in_array_of_tables() {
    let e = error(&VALID.replace("weight = 3", "weight = 3\nwieght = 4"));
    assert_eq!(e.line, 14, "{e}");
    assert_eq!(e.field, "workload.ops[0].wieght", "{e}");
    assert!(e.message.contains("unknown field `wieght`"), "{e}");
}

#[test]
fn wrong_type() {
    let e = error(&VALID.replace("writers = 2", "writers = \"two\""));
    assert_eq!(e.line, 6, "{e}");
    assert_eq!(e.field, "workload.writers", "{e}");
    assert!(
        e.message.contains("invalid type") && e.message.contains("string"),
        "{e}"
    );
}

#[test]
fn missing_field() {
    let e = error(&VALID.replace("seed = 1\n", ""));
    assert_eq!(e.field, "workload.seed", "{e}");
    assert!(e.message.contains("missing field `seed`"), "{e}");
    assert!(e.line >= 4, "{e}");
    assert!(e.to_string().contains("scenarios/t.toml:"), "{e}");
}

#[test]
fn bad_enum_value() {
    let e = error(&VALID.replace("command = \"get\"", "command = \"gte\""));
    assert_eq!(e.line, 16, "{e}");
    assert_eq!(e.field, "workload.ops[1].command", "{e}");
    assert!(
        e.message.contains("gte") && e.message.contains("expected one of"),
        "{e}"
    );
}

#[test]
fn bad_policy_name_in_matrix() {
    let e = error(&format!(
        "{VALID}\n[matrix]\npolicies = [\"always\", \"sometimes\"]\n"
    ));
    assert_eq!(e.field, "matrix.policies", "{e}");
    assert_eq!(e.line, 20, "{e}");
    assert!(
        e.message.contains("sometimes") && e.message.contains("always, everysec, no, off"),
        "{e}"
    );
}

#[test]
fn bad_zipf_exponent() {
    let e = error(&VALID.replace("exponent = 0.9", "exponent = -1.0"));
    assert_eq!(e.line, 8, "{e}");
    assert_eq!(e.field, "workload.keys.exponent", "{e}");
    assert!(
        e.message.contains("expected a zipf exponent in (0, 10]"),
        "{e}"
    );
}

#[test]
fn zipf_without_exponent() {
    let e = error(&VALID.replace(", exponent = 0.9", ""));
    assert_eq!(e.field, "workload.keys.exponent", "{e}");
    assert_eq!(e.line, 8, "{e}");
}

#[test]
fn weights_all_zero() {
    let e = error(
        &VALID
            .replace("weight = 3", "weight = 0")
            .replace("weight = 1", "weight = 0"),
    );
    assert_eq!(e.field, "workload.ops", "{e}");
    assert!(e.message.contains("all weights are zero"), "{e}");
    assert!(e.line >= 11, "{e}");
}

#[test]
fn reads_only_is_rejected() {
    let e = error(&VALID.replace("weight = 3", "weight = 0"));
    assert!(e.message.contains("at least one write command"), "{e}");
}

#[test]
fn duration_and_commands_conflict() {
    let e = error(&VALID.replace("duration_secs = 1.0", "duration_secs = 1.0\ncommands = 5"));
    assert_eq!(e.field, "workload.commands", "{e}");
    assert_eq!(e.line, 8, "{e}");
}

#[test]
fn uniform_values_need_bounds() {
    let e = error(&VALID.replace(
        "values = { distribution = \"fixed\", bytes = 64 }",
        "values = { distribution = \"uniform\", min_bytes = 64, max_bytes = 8 }",
    ));
    assert_eq!(e.field, "workload.values.max_bytes", "{e}");
    assert_eq!(e.line, 9, "{e}");
}

#[test]
fn invalid_toml_syntax() {
    let e = error(&VALID.replace("seed = 1", "seed = = 1"));
    assert_eq!(e.line, 5, "{e}");
}

#[test]
fn unreadable_file() {
    let e = load(Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/x.toml: cannot read the file"),
        "{e}"
    );
}
