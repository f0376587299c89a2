//! Opening a data directory in each persistence mode: recovery, or a fresh start when the
//! directory holds no data.

use std::sync::Arc;

use crate::aof::writer::Segment;
use crate::aof::{self, LOG_FILE_NAME};
use crate::backend::{Backend, OpenMode};
use crate::config::EngineConfig;
use crate::datadir::{ensure_dir, note_leftovers};
use crate::error::{Error, Result};
use crate::keyspace::Keyspace;
use crate::recovery::{self, LogPosition, RecoveryReport, files};
use crate::snapshot::{SNAPSHOT_FILE_NAME, loader};

/// Modes `aof` and `aof+snapshot`: opens and replays the log, or creates it in a directory
/// holding no data files.
///
/// # Errors
/// As [`crate::Engine::open`].
pub(crate) fn open_log(
    backend: &dyn Backend,
    config: &EngineConfig,
    keyspace: &mut Keyspace,
    report: &mut RecoveryReport,
) -> Result<(Arc<Segment>, LogPosition)> {
    let dir = &config.dir;
    ensure_dir(backend, dir)?;
    let path = dir.join(LOG_FILE_NAME);
    match backend.open(&path, OpenMode::Existing) {
        Ok(file) => {
            let pos = recovery::replay(backend, file.as_ref(), &path, config, keyspace, report)?;
            let temps = files::durlab_files(dir)?
                .into_iter()
                .filter(|n| files::is_temp(n))
                .collect();
            note_leftovers(report, dir, temps);
            Ok((Arc::new(Segment { file, path }), pos))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let temps = files::refuse_if_data_files(dir, LOG_FILE_NAME)?;
            note_leftovers(report, dir, temps);
            let file = aof::create_log(backend, &path, 0)?;
            report.created = true;
            let end = aof::FIRST_RECORD_OFFSET;
            let pos = LogPosition {
                next_offset: end,
                file_len: end,
                last_lsn: 0,
            };
            Ok((Arc::new(Segment { file, path }), pos))
        }
        Err(e) => Err(Error::io("open", &path, None, e)),
    }
}

/// Mode `snapshot`: loads `durlab.snap` if present; a directory without it must hold no other
/// data file. Returns the snapshot's LSN (0 for a fresh start).
///
/// # Errors
/// [`Error::Corrupt`] for a snapshot that does not verify (never a silent empty start),
/// [`Error::Config`] when data files exist without a snapshot, I/O errors.
pub(crate) fn open_snapshot(
    backend: &dyn Backend,
    config: &EngineConfig,
    keyspace: &mut Keyspace,
    report: &mut RecoveryReport,
) -> Result<u64> {
    let dir = &config.dir;
    ensure_dir(backend, dir)?;
    let path = dir.join(SNAPSHOT_FILE_NAME);
    let names = files::durlab_files(dir)?;
    if !names.iter().any(|n| n == SNAPSHOT_FILE_NAME) {
        let temps = files::refuse_if_data_files(dir, SNAPSHOT_FILE_NAME)?;
        note_leftovers(report, dir, temps);
        report.created = true;
        return Ok(0);
    }
    let loaded = loader::load(backend, &path, keyspace)?;
    report.snapshot_path = Some(path);
    report.snapshot_lsn = Some(loaded.header.lsn);
    report.snapshot_entries = loaded.entries;
    report.bytes_read = loaded.bytes;
    report.recovered_lsn = loaded.header.lsn;
    let temps = names.into_iter().filter(|n| files::is_temp(n)).collect();
    note_leftovers(report, dir, temps);
    Ok(loaded.header.lsn)
}
