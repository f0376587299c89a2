//! Timing recovery: `Engine::open` on a data directory a bench left behind.

use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use durlab_engine::{BackendKind, Engine, EngineConfig, FsyncPolicy, Prealloc};

use crate::report::model::RecoveryRecord;
use crate::results::json::BenchRecord;

/// Opens `record`'s data directory with its configuration, timing `Engine::open`, and closes
/// it again. The directory must still exist (the bench leaves it until its work directory
/// is dropped). Returns `None` for policy `off`, which writes no files.
///
/// # Errors
/// A configuration that does not parse, a data directory that cannot be listed, or an open
/// that fails (the message names the directory).
pub fn measure(record: &BenchRecord) -> Result<Option<RecoveryRecord>, String> {
    let c = &record.config;
    let policy = FsyncPolicy::from_str(&c.policy)?;
    if policy == FsyncPolicy::Off || c.target != "engine" {
        return Ok(None);
    }
    let dir = Path::new(&record.data_dir);
    let data_bytes = dir_bytes(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    let config = EngineConfig::new(dir)
        .policy(policy)
        .backend(BackendKind::from_str(&c.backend)?)
        .prealloc(Prealloc::from_str(&c.prealloc)?);
    let started = Instant::now();
    let (engine, report) =
        Engine::open(config).map_err(|e| format!("opening {}: {e}", dir.display()))?;
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    drop(engine);
    Ok(Some(RecoveryRecord {
        label: record.label.clone(),
        config: c.clone(),
        data_bytes,
        bytes_read: report.bytes_read,
        recovered_lsn: report.recovered_lsn,
        records_replayed: report.records_replayed,
        open_ms,
        replay_ms: report.duration.as_secs_f64() * 1000.0,
    }))
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
