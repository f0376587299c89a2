//! Writing a snapshot file atomically through the backend (`backend::atomic::rewrite_atomic`):
//! temp file → write → fdatasync → rename → fsync of the directory. A crash at any step leaves either the previous file under
//! the final name or the new, complete and synced one; a leftover temp file is never read.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::SnapshotInfo;
use super::format::{self, Header};
use crate::Lsn;
use crate::backend::atomic::{CrashPoints, rewrite_atomic};
use crate::backend::{Backend, BackendFile};
use crate::error::{Error, Result};
use crate::keyspace::SnapshotChunk;

/// Bytes buffered before each write call.
const WRITE_BYTES: usize = 1 << 20;

pub use crate::backend::atomic::temp_path;

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
    let points = CrashPoints {
        after_temp_create: Some("snapshot.after_temp_create"),
        after_temp_write: Some("snapshot.after_temp_write"),
        after_temp_sync: Some("snapshot.after_temp_sync"),
        after_rename: Some("snapshot.after_rename"),
    };
    let (entries, bytes) = rewrite_atomic(backend, path, points, |file, temp| {
        let mut out = Output {
            file,
            path: temp,
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
        Ok((entries, out.offset))
    })?;
    Ok(SnapshotInfo {
        path: path.to_path_buf(),
        lsn,
        entries,
        bytes,
        duration: started.elapsed(),
    })
}

struct Output<'p> {
    file: &'p dyn BackendFile,
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
