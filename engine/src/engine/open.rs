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
use crate::snapshot::{SNAPSHOT_FILE_NAME, loader, writer};

use super::resume::{Copies, ReplayBase};

/// Modes `aof` and `aof+snapshot`: opens and replays the log, or creates it in a directory
/// holding no data files.
///
/// # Errors
/// As [`crate::Engine::open`].
/// A log that starts with the bytes of one of `bases` (mode `aof` only; the first that
/// matches, in the order given) is replayed from the end of them into a copy of that base's
/// keyspace ([`ReplayBase`]), lent: the engine puts it back to the [`Copies`] returned when
/// it is dropped. Any other log is replayed from its start.
pub(crate) fn open_log(
    backend: &dyn Backend,
    config: &EngineConfig,
    bases: &[&ReplayBase],
    keyspace: &mut Keyspace,
    report: &mut RecoveryReport,
) -> Result<(Arc<Segment>, LogPosition, Option<Arc<Copies>>)> {
    let dir = &config.dir;
    ensure_dir(backend, dir, report)?;
    let path = dir.join(LOG_FILE_NAME);
    match backend.open(&path, OpenMode::Existing) {
        Ok(file) => {
            let mut resume = None;
            let mut lent = None;
            for (i, base) in bases.iter().enumerate() {
                if base.starts(file.as_ref(), &path)? {
                    let (copy, copies) = base.lend();
                    *keyspace = copy;
                    lent = Some(copies);
                    resume = Some(base.resume());
                    report.resumed_records = base.records();
                    report.resumed_from = Some(i);
                    break;
                }
            }
            let settled = recovery::replay(
                backend,
                file.as_ref(),
                &path,
                config,
                resume,
                keyspace,
                report,
            )?;
            let temps = files::durlab_files(dir)?
                .into_iter()
                .filter(|n| files::is_temp(n))
                .collect();
            note_leftovers(report, dir, temps);
            // A cut may have replaced the log: the new one is the file to write.
            let file = settled.reopened.unwrap_or(file);
            Ok((Arc::new(Segment { file, path }), settled.pos, lent))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let names = files::durlab_files(dir)?;
            let temps = files::fresh_start(backend, dir, LOG_FILE_NAME, names)?;
            note_leftovers(report, dir, temps);
            let file = aof::create_log(backend, &path, 0)?;
            report.created = true;
            report
                .changes
                .push(format!("{}: created (a new, empty log)", path.display()));
            let end = aof::FIRST_RECORD_OFFSET;
            let pos = LogPosition {
                next_offset: end,
                file_len: end,
                last_lsn: 0,
            };
            Ok((Arc::new(Segment { file, path }), pos, None))
        }
        Err(e) => Err(Error::io("open", &path, None, e)),
    }
}

/// Mode `snapshot`: loads `durlab.snap` if present; a directory without it must hold no other
/// data file ([`files::fresh_start`]), and gets the snapshot of the empty state. Returns the
/// snapshot's LSN (0 for a fresh start).
///
/// # Errors
/// [`Error::Corrupt`] for a snapshot that does not verify (never a silent empty start),
/// [`Error::RefusingEmptyStart`] when files that may hold data exist without a snapshot, I/O
/// errors.
pub(crate) fn open_snapshot(
    backend: &dyn Backend,
    config: &EngineConfig,
    keyspace: &mut Keyspace,
    report: &mut RecoveryReport,
) -> Result<u64> {
    let dir = &config.dir;
    ensure_dir(backend, dir, report)?;
    let path = dir.join(SNAPSHOT_FILE_NAME);
    let names = files::durlab_files(dir)?;
    if !names.iter().any(|n| n == SNAPSHOT_FILE_NAME) {
        let temps = files::fresh_start(backend, dir, SNAPSHOT_FILE_NAME, names)?;
        note_leftovers(report, dir, temps);
        // The empty state's snapshot marks the directory as started: from now on a directory
        // without it but with a snapshot's temp file was not left by a crash of this start.
        writer::write_snapshot(backend, &path, 0, |_| true)?;
        report.created = true;
        report.changes.push(format!(
            "{}: created (the snapshot of the empty state, LSN 0)",
            path.display()
        ));
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
