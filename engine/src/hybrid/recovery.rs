//! Recovery of a hybrid directory: manifest → base → increments in order. Each increment's
//! records must continue the LSN sequence; only the last may end in a torn tail, which is
//! handled exactly as for the single log ([`crate::recovery::settle_tail`]).

use std::path::Path;
use std::sync::Arc;

use super::HybridState;
use super::manifest::{self, IncrFile, Install, MANIFEST_FILE_NAME, Manifest};
use crate::Lsn;
use crate::aof::writer::Segment;
use crate::aof::{self, FIRST_RECORD_OFFSET};
use crate::backend::{Backend, OpenMode};
use crate::config::EngineConfig;
use crate::datadir::{ensure_dir, note_leftovers};
use crate::error::{Error, Result};
use crate::keyspace::Keyspace;
use crate::recovery::{self, LogPosition, RecoveryReport, Tail, files};
use crate::snapshot::loader;

/// A recovered (or new) hybrid directory, ready for appends.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) segment: Arc<Segment>,
    pub(crate) pos: LogPosition,
    pub(crate) state: HybridState,
}

/// Opens the hybrid directory `config.dir`: recovers it, or creates `durlab.1.incr.aof` and a
/// manifest listing it when the directory holds no data file.
///
/// # Errors
/// [`Error::RefusingEmptyStart`] when files that may hold data exist without a manifest;
/// [`Error::Corrupt`] for a manifest, base or increment that does not verify or does not
/// continue the LSN sequence; [`Error::MissingFile`] for a listed file that is missing.
pub(crate) fn open(
    backend: &dyn Backend,
    config: &EngineConfig,
    keyspace: &mut Keyspace,
    report: &mut RecoveryReport,
) -> Result<Opened> {
    let dir = &config.dir;
    ensure_dir(backend, dir, report)?;
    let names = files::durlab_files(dir)?;
    let next_seq = names
        .iter()
        .filter_map(|n| manifest::seq_of(n))
        .max()
        .unwrap_or(0)
        + 1;
    if !names.iter().any(|n| n == MANIFEST_FILE_NAME) {
        // An increment without records is what a crash while creating a new directory leaves
        // (the manifest comes after it): nothing was acknowledged, so it holds no data.
        let temps = files::fresh_start(backend, dir, MANIFEST_FILE_NAME, names)?;
        note_leftovers(report, dir, temps);
        return create(backend, dir, next_seq, report);
    }
    let manifest_path = dir.join(MANIFEST_FILE_NAME);
    let manifest = manifest::read(backend, &manifest_path)?;
    report.manifest_generation = Some(manifest.generation);
    let listed = manifest.files();
    if let Some(missing) = listed.iter().find(|n| !names.iter().any(|m| m == *n)) {
        return Err(Error::MissingFile {
            path: dir.join(missing),
            manifest: manifest_path,
        });
    }
    let leftovers = names
        .iter()
        .filter(|n| {
            *n != MANIFEST_FILE_NAME && !files::is_quarantine(n) && !listed.contains(&n.as_str())
        })
        .cloned()
        .collect();
    note_leftovers(report, dir, leftovers);

    let mut expected: Lsn = 0;
    let mut base_bytes = 0;
    if let Some(base) = &manifest.base {
        let path = dir.join(&base.name);
        let loaded = loader::load(backend, &path, keyspace)?;
        if loaded.header.lsn != base.lsn {
            return Err(Error::Corrupt {
                path,
                offset: 16,
                reason: format!(
                    "base holds the state at LSN {} but the manifest says {}",
                    loaded.header.lsn, base.lsn
                ),
            });
        }
        report.snapshot_path = Some(path);
        report.snapshot_lsn = Some(base.lsn);
        report.snapshot_entries = loaded.entries;
        report.bytes_read += loaded.bytes;
        base_bytes = loaded.bytes;
        expected = base.lsn;
    }
    let (last, earlier) = manifest
        .incrs
        .split_last()
        .expect("a manifest lists an increment");
    let mut incr_bytes = 0;
    for incr in earlier {
        let scanned = replay_incr(dir, backend, config, incr, expected, keyspace)?.1;
        let path = dir.join(&incr.name);
        if scanned.tail != Tail::Clean {
            return Err(Error::Corrupt {
                path,
                offset: scanned.end_offset,
                reason: format!(
                    "{}: only the last increment may end in a torn tail (this one was synced \
                     before the next was started)",
                    scanned.fault
                ),
            });
        }
        recovery::note_scanned(report, &scanned);
        incr_bytes += scanned.end_offset - FIRST_RECORD_OFFSET;
        expected = scanned.last_lsn;
    }
    let (file, scanned) = replay_incr(dir, backend, config, last, expected, keyspace)?;
    let path = dir.join(&last.name);
    let settled = recovery::settle_tail(backend, file.as_ref(), &path, &scanned, config, report)?;
    let (file, pos) = (settled.reopened.unwrap_or(file), settled.pos);
    incr_bytes += pos.next_offset - FIRST_RECORD_OFFSET;
    Ok(Opened {
        segment: Arc::new(Segment { file, path }),
        pos,
        state: HybridState {
            generation_high: manifest.generation,
            manifest,
            next_seq,
            base_bytes,
            incr_bytes_at_mark: incr_bytes,
            written_counter_at_mark: 0,
        },
    })
}

/// Replays one increment, checking that it continues at `expected + 1`.
fn replay_incr(
    dir: &Path,
    backend: &dyn Backend,
    config: &EngineConfig,
    incr: &IncrFile,
    expected: Lsn,
    keyspace: &mut Keyspace,
) -> Result<(Arc<dyn crate::backend::BackendFile>, recovery::Scanned)> {
    let path = dir.join(&incr.name);
    let file = backend
        .open(&path, OpenMode::Existing)
        .map_err(|e| Error::io("open", &path, None, e))?;
    let scanned = recovery::scan_log(file.as_ref(), &path, config.max_record_bytes, |cmd| {
        keyspace.apply_owned(cmd);
    })?
    .map_err(|reason| Error::Corrupt {
        path: path.clone(),
        offset: 0,
        reason,
    })?;
    if scanned.base_lsn != expected || incr.base_lsn != expected {
        return Err(Error::Corrupt {
            path,
            offset: 16,
            reason: format!(
                "increment starts after LSN {} (manifest: {}) but the files before it end at LSN {expected}",
                scanned.base_lsn, incr.base_lsn
            ),
        });
    }
    Ok((file, scanned))
}

/// A new hybrid directory: the first increment (synced with its directory entry) and a
/// manifest listing it.
fn create(
    backend: &dyn Backend,
    dir: &Path,
    seq: u64,
    report: &mut RecoveryReport,
) -> Result<Opened> {
    let name = manifest::incr_name(seq);
    let path = dir.join(&name);
    let file = aof::create_log(backend, &path, 0)?;
    let manifest = Manifest {
        generation: 1,
        base: None,
        incrs: vec![IncrFile { name, base_lsn: 0 }],
    };
    manifest::install(backend, dir, &manifest, Install::Create)?;
    report.created = true;
    report.changes.push(format!(
        "{}: created (a new, empty increment) with {MANIFEST_FILE_NAME} listing it",
        path.display()
    ));
    report.manifest_generation = Some(1);
    let pos = LogPosition {
        next_offset: FIRST_RECORD_OFFSET,
        file_len: FIRST_RECORD_OFFSET,
        last_lsn: 0,
    };
    Ok(Opened {
        segment: Arc::new(Segment { file, path }),
        pos,
        state: HybridState {
            manifest,
            generation_high: 1,
            next_seq: seq + 1,
            base_bytes: 0,
            incr_bytes_at_mark: 0,
            written_counter_at_mark: 0,
        },
    })
}
