//! Timing recovery: `Engine::open` on a data directory, the one a bench left behind
//! ([`measure`]) or one filled by the recovery sweep ([`super::recovery_sweep`]).

use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use durlab_engine::{BackendKind, Engine, EngineConfig, FsyncPolicy, Persistence, Prealloc};

use crate::report::model::RecoveryRecord;
use crate::results::json::{BenchRecord, ConfigRecord};

/// Opens `record`'s data directory with its configuration (policy, backend, preallocation,
/// persistence), timing `Engine::open`, and closes it again. The directory must still exist
/// (the bench leaves it until its work directory is dropped). Returns `None` for policy
/// `off`, which writes no files, and for server targets.
///
/// # Errors
/// A configuration that does not parse, or what [`time_open`] returns.
pub fn measure(record: &BenchRecord) -> Result<Option<RecoveryRecord>, String> {
    let c = &record.config;
    let policy = FsyncPolicy::from_str(&c.policy)?;
    if policy == FsyncPolicy::Off || c.target != "engine" {
        return Ok(None);
    }
    let config = EngineConfig::new(&record.data_dir)
        .policy(policy)
        .backend(BackendKind::from_str(&c.backend)?)
        .prealloc(Prealloc::from_str(&c.prealloc)?)
        .persistence(Persistence::from_str(&c.persistence)?);
    time_open(&record.label, c, config).map(Some)
}

/// Times `Engine::open(config)` on the data directory `config.dir` (which holds data of the
/// configuration `record`), then closes the engine. `fill_mb` and `fill_commands` of the
/// result are `None`.
///
/// # Errors
/// A data directory that cannot be listed, or an open that fails (the message names the
/// directory).
pub fn time_open(
    label: &str,
    record: &ConfigRecord,
    config: EngineConfig,
) -> Result<RecoveryRecord, String> {
    let dir = config.dir.clone();
    let data_bytes = dir_bytes(&dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    let started = Instant::now();
    let (engine, report) =
        Engine::open(config).map_err(|e| format!("opening {}: {e}", dir.display()))?;
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    drop(engine);
    Ok(RecoveryRecord {
        label: label.to_string(),
        config: record.clone(),
        data_bytes,
        bytes_read: report.bytes_read,
        recovered_lsn: report.recovered_lsn,
        records_replayed: report.records_replayed,
        open_ms,
        replay_ms: report.duration.as_secs_f64() * 1000.0,
        fill_mb: None,
        fill_commands: None,
    })
}

/// Total size of the regular files under `dir`, bytes.
fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}
