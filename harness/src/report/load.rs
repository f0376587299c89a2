//! Reading a run directory: `run.json`, each `<label>.json` it lists, `crash-*.json`,
//! `recovery.json`, and the group-commit sweep's run directory `group-commit/`. Unknown fields are ignored; a missing file or a missing or malformed
//! required field is an error naming the file and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::ReportError;
use super::model::{CrashRecord, LossFigures, RecoveryRecord, RunResults};
use crate::crashlab::FaultKind;
use crate::driver::latency::Latency;
use crate::results::json::BenchRecord;
use crate::results::run_dir::RunRecord;

/// Name of the recovery measurements file in a run directory.
pub const RECOVERY_FILE: &str = "recovery.json";

/// Name of the group-commit sweep's run directory inside a run directory.
pub const GROUP_COMMIT_DIR: &str = "group-commit";

/// Loads the run directory `dir`.
///
/// Guarantees: every label in `run.json`'s `configs` has its record, and every histogram in
/// `run.json` decodes; crash summaries are all `crash-*.json` files, sorted by name; the
/// sweep in `group-commit/` is loaded the same way when it has a `run.json`.
///
/// # Errors
/// [`ReportError::Io`] for a missing or unreadable file (named), [`ReportError::Json`] for a
/// file that is not JSON or lacks a required field or has one of the wrong type (file and
/// field named).
pub fn load(dir: &Path) -> Result<RunResults, ReportError> {
    let run: RunRecord = read_json(&dir.join("run.json"))?;
    let benches = run
        .configs
        .iter()
        .map(|label| read_json::<BenchRecord>(&dir.join(format!("{label}.json"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut latencies = BTreeMap::new();
    for (label, h) in &run.histograms {
        let latency = Latency::from_v2_base64(&h.data).map_err(|message| ReportError::Json {
            path: dir.join("run.json"),
            field: format!("histograms.{label}.data"),
            message,
        })?;
        latencies.insert(label.clone(), latency);
    }
    let (backups, crashes): (Vec<CrashRecord>, Vec<CrashRecord>) = crash_files(dir)?
        .iter()
        .map(|p| {
            // Aimed and stalled cases are columns of their own.
            read_json::<CrashRecord>(p).map(|mut r| {
                r.window = LossFigures::of(&r);
                r
            })
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .partition(|r| r.fault == FaultKind::LiveCopy.name());
    let crashes = crashes
        .into_iter()
        .map(|mut r| {
            r.fault = r.column();
            r
        })
        .collect();
    let recovery_path = dir.join(RECOVERY_FILE);
    let recovery: Vec<RecoveryRecord> = if recovery_path.exists() {
        read_json(&recovery_path)?
    } else {
        Vec::new()
    };
    let sweep_dir = dir.join(GROUP_COMMIT_DIR);
    let group_commit = if sweep_dir.join("run.json").exists() {
        Some(Box::new(load(&sweep_dir)?))
    } else {
        None
    };
    Ok(RunResults {
        dir: dir.to_owned(),
        run,
        benches,
        crashes,
        backups,
        recovery,
        latencies,
        group_commit,
    })
}

/// The `crash-*.json` files of `dir`, sorted by name.
///
/// # Errors
/// [`ReportError::Io`] when the directory cannot be listed.
pub fn crash_files(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ReportError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("crash-") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads and deserializes one JSON file.
///
/// # Errors
/// [`ReportError::Io`] naming the file; [`ReportError::Json`] naming the file and the path of
/// the offending field (`.` for the top level).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| ReportError::Json {
        path: path.to_owned(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}
