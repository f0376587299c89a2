//! Running the real `durlab` binary with JSON output, for the CLI tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `durlab <args> --json --quiet --dir <tmp>/data --out <tmp>/out` and parses stdout as
/// a JSON array (panicking with stderr if it is not one).
pub fn durlab_json(args: &[&str], tmp: &Path) -> (Output, Vec<Value>) {
    let output = Command::new(env!("CARGO_BIN_EXE_durlab"))
        .args(args)
        .args(["--json", "--quiet"])
        .arg("--dir")
        .arg(tmp.join("data"))
        .arg("--out")
        .arg(tmp.join("out"))
        .output()
        .expect("durlab runs");
    let records: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, records.as_array().expect("a JSON array").clone())
}
