//! The workload used when `durlab bench` is given no scenario: small, SET-heavy.

use std::path::Path;

use super::model::Scenario;

/// Name of the built-in scenario (results go to `results/adhoc/`).
pub const NAME: &str = "adhoc";

const TEXT: &str = r#"
name = "adhoc"
question = "What does one engine configuration cost on a small SET-heavy workload?"

[workload]
seed = 1
writers = 2
duration_secs = 5.0
keys = { count = 100000, distribution = "uniform" }
values = { distribution = "fixed", bytes = 64 }
ops = [
  { command = "set", weight = 80 },
  { command = "get", weight = 20 },
]
"#;

/// The built-in scenario.
pub fn scenario() -> Scenario {
    super::parse_str(Path::new("<built-in adhoc scenario>"), TEXT)
        .expect("built-in scenario is valid")
}
