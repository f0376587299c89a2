//! Writing a snapshot file atomically through the backend: temp file → write → fdatasync →
//! rename → fsync of the directory. A crash at any step leaves either the previous file under
//! the final name or the new, complete and synced one; a leftover temp file is never read.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::SnapshotInfo;
use super::format::{self, Header};
use crate::Lsn;
use crate::backend::{Backend, BackendFile, OpenMode};
use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::keyspace::SnapshotChunk;

/// Bytes buffered before each write call.
const WRITE_BYTES: usize = 1 << 20;

/// The temp name a snapshot is written under before it is renamed to `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes the snapshot of the state at `lsn` to `path`. `next_chunk` appends the next entries
/// to its buffer and returns true after the last ones. Returns once the file and its directory
/// entry are durable.
///
/// # Errors
/// I/O failures (naming the file and offset) or an injected crash point; then `path` is
/// unchanged (or already replaced, if the failure came after the rename) and the temp file may
/// remain.
pub(crate) fn write_snapshot(
    backend: &dyn Backend,
    path: &Path,
    lsn: Lsn,
    mut next_chunk: impl FnMut(&mut SnapshotChunk) -> bool,
) -> Result<SnapshotInfo> {
    let started = Instant::now();
    let temp = temp_path(path);
    let file = create_temp(backend, &temp)?;
    failpoint!("snapshot.after_temp_create");
    let mut out = Output {
        file,
        path: &temp,
        buf: Vec::with_capacity(WRITE_BYTES + (64 << 10)),
        offset: 0,
        crc: 0,
    };
    let created_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    out.buf
        .extend_from_slice(&Header { lsn, created_ms }.encode());
    let mut entries = 0u64;
    let mut chunk = SnapshotChunk::new();
    loop {
        let done = next_chunk(&mut chunk);
        for (key, entry) in chunk.iter() {
            format::encode_entry(&mut out.buf, key, entry);
            entries += 1;
            if out.buf.len() >= WRITE_BYTES {
                out.flush()?;
            }
        }
        chunk.clear();
        if done {
            break;
        }
    }
    out.crc = crc32c::crc32c_append(out.crc, &out.buf);
    let crc = out.crc;
    out.buf.extend_from_slice(&format::footer(entries, crc));
    // The footer's CRC already covers the buffered bytes: write without re-hashing them.
    out.write_raw()?;
    failpoint!("snapshot.after_temp_write");
    out.file
        .sync_data()
        .map_err(|e| Error::io("fdatasync", &temp, None, e))?;
    failpoint!("snapshot.after_temp_sync");
    backend
        .rename(&temp, path)
        .map_err(|e| Error::io("rename", &temp, None, e))?;
    failpoint!("snapshot.after_rename");
    let dir = path.parent().unwrap_or(Path::new("."));
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync dir", dir, None, e))?;
    Ok(SnapshotInfo {
        path: path.to_path_buf(),
        lsn,
        entries,
        bytes: out.offset,
        duration: started.elapsed(),
    })
}

/// Creates the temp file, replacing one left by an interrupted earlier attempt (a temp file is
/// never a source of data: recovery ignores it).
fn create_temp(backend: &dyn Backend, temp: &Path) -> Result<Arc<dyn BackendFile>> {
    match backend.open(temp, OpenMode::CreateNew) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            backend
                .remove(temp)
                .map_err(|e| Error::io("remove", temp, None, e))?;
            backend
                .open(temp, OpenMode::CreateNew)
                .map_err(|e| Error::io("create", temp, None, e))
        }
        Err(e) => Err(Error::io("create", temp, None, e)),
    }
}

struct Output<'p> {
    file: Arc<dyn BackendFile>,
    path: &'p Path,
    buf: Vec<u8>,
    offset: u64,
    crc: u32,
}

impl Output<'_> {
    fn flush(&mut self) -> Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, &self.buf);
        self.write_raw()
    }

    fn write_raw(&mut self) -> Result<()> {
        self.file
            .write_all_at(&self.buf, self.offset)
            .map_err(|e| Error::io("write", self.path, Some(self.offset), e))?;
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}
