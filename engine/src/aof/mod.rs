//! The append-only log: file header ([`file_header`]), record framing ([`record`]), reading
//! ([`scan`]), the group-committing writer, preallocation, and the `everysec` syncer.

pub mod file_header;
mod prealloc;
pub mod record;
pub mod scan;
mod signal;
pub(crate) mod syncer;
pub(crate) mod writer;

use std::path::Path;
use std::sync::Arc;

use crate::Lsn;
use crate::backend::{Backend, BackendFile, BackendKind, OpenMode, open_backend};
use crate::error::{Error, Result};
use crate::keyspace::Command;
use file_header::{FILE_HEADER_BYTES, FileHeader};
use scan::{Scanner, Step};

/// File name of the single log inside the data directory (persistence mode `aof`).
pub const LOG_FILE_NAME: &str = "durlab.aof";

/// Creates a log file whose first record will carry `base_lsn + 1`: header written and
/// synced, directory entry synced, before this returns.
///
/// # Errors
/// I/O failures, or `AlreadyExists` if the file exists.
pub(crate) fn create_log(
    backend: &dyn Backend,
    path: &Path,
    base_lsn: Lsn,
) -> Result<Arc<dyn BackendFile>> {
    let file = backend
        .open(path, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", path, None, e))?;
    let header = FileHeader { base_lsn }.encode();
    file.write_all_at_sync(&header, 0)
        .map_err(|e| Error::io("write+fdatasync", path, Some(0), e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync dir", dir, None, e))?;
    Ok(file)
}

/// Offset of the first record in a log file.
pub const FIRST_RECORD_OFFSET: u64 = FILE_HEADER_BYTES as u64;

/// Reads every valid record of the log in `dir` (read-only, stopping at the first record that
/// fails its checks) and decodes its command: for tests and tools that check what was logged
/// under which LSN.
///
/// # Errors
/// I/O failures, a bad file header, or a verified record whose payload does not decode.
pub fn read_commands(dir: &Path) -> Result<Vec<(Lsn, Command)>> {
    let path = dir.join(LOG_FILE_NAME);
    let backend = open_backend(BackendKind::Pwrite)?;
    let file = backend
        .open(&path, OpenMode::Existing)
        .map_err(|e| Error::io("open", &path, None, e))?;
    let corrupt = |offset, reason| Error::Corrupt {
        path: path.clone(),
        offset,
        reason,
    };
    let (mut scanner, header) = Scanner::open(file.as_ref(), u32::MAX)
        .map_err(|e| Error::io("read", &path, Some(0), e))?
        .map_err(|reason| corrupt(0, reason))?;
    let mut out = Vec::new();
    let mut expected = header.base_lsn + 1;
    while let Step::Record { offset, record } = scanner
        .next_step()
        .map_err(|e| Error::io("read", &path, None, e))?
    {
        if record.lsn != expected {
            break;
        }
        let cmd = Command::decode(record.payload).map_err(|e| corrupt(offset, e.to_string()))?;
        out.push((record.lsn, cmd));
        expected += 1;
    }
    Ok(out)
}
