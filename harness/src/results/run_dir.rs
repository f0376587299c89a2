//! The run directory: `results/<scenario>/<run-id>/` with one JSON per configuration and
//! `run.json` (machine, probe, versions, seed, histograms).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::json::BenchRecord;
use super::machine::{Machine, Versions};
use crate::probe::ProbeResult;
use crate::scenario::model::{CrashPlan, SnapshotSpec};

/// A default run id: UTC timestamp plus a short random suffix (`20260301T120000Z-3f9a`).
pub fn new_run_id() -> String {
    let suffix: u16 = rand::rng().random();
    format!("{}-{suffix:04x}", super::time::compact_now())
}

/// A serialized latency histogram.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistogramRecord {
    /// Always `ns`.
    pub unit: String,
    /// Always `hdrhistogram-v2-base64`.
    pub format: String,
    pub data: String,
}

impl HistogramRecord {
    /// Wraps V2/base64 data.
    pub fn v2(data: String) -> Self {
        HistogramRecord {
            unit: "ns".into(),
            format: "hdrhistogram-v2-base64".into(),
            data,
        }
    }
}

/// How the workload was driven (the part of the scenario after CLI overrides).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadRecord {
    pub writers: u32,
    pub duration_secs: Option<f64>,
    pub commands: Option<u64>,
    pub warmup_secs: f64,
    pub read_fraction: f64,
    pub value_size_min: u32,
    pub value_size_max: u32,
    /// The crash trials' open-loop target rate (`[workload] rate`, or `--rate` for a crash
    /// run; absent: flat-out). Benchmarks always run flat-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_rate: Option<crate::driver::pacing::Rate>,
}

/// `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub scenario: String,
    pub scenario_file: Option<String>,
    pub question: String,
    pub seed: u64,
    pub started_utc: String,
    pub finished_utc: String,
    pub command_line: Vec<String>,
    pub git_revision: String,
    pub git_dirty: Option<bool>,
    pub versions: Versions,
    pub machine: Machine,
    pub probe: Option<ProbeResult>,
    pub workload: WorkloadRecord,
    pub loss_tolerance_ms: Option<u64>,
    pub snapshot: Option<SnapshotSpec>,
    pub crash: Option<CrashPlan>,
    /// Configuration labels, in run order (file `<label>.json` each).
    pub configs: Vec<String>,
    /// Latency histogram of each configuration, by label.
    pub histograms: BTreeMap<String, HistogramRecord>,
    /// Configurations that failed, by label, with the error.
    pub failures: BTreeMap<String, String>,
}

/// Writes `record` as pretty JSON to `path` (creating parent directories).
///
/// # Errors
/// I/O errors, naming the file.
pub fn write_json(path: &Path, value: &impl Serialize) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", parent.display())))?;
    }
    let text = serde_json::to_string_pretty(value).expect("result records serialize");
    std::fs::write(path, text + "\n")
        .map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
}

/// Writes every configuration's record and `run.json` into `dir`.
///
/// # Errors
/// I/O errors, naming the file.
pub fn write_all(dir: &Path, records: &[BenchRecord], run: &RunRecord) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for r in records {
        let path = dir.join(format!("{}.json", r.label));
        write_json(&path, r)?;
        written.push(path);
    }
    let path = dir.join("run.json");
    write_json(&path, run)?;
    written.push(path);
    Ok(written)
}
