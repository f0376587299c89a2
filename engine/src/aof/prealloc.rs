//! Keeping the log file extended ahead of the write position.
//!
//! fdatasync on a file whose size changed must also commit the new size (a journal commit on
//! ext4). Extending the file in large chunks ahead of the writes removes that cost from most
//! syncs: with `zero`, the chunk is written with zeros and synced once, so later syncs carry
//! data only; with `fallocate`, blocks are reserved as unwritten extents (cheaper to create, but
//! the first write into each still changes metadata). Recovery reads the zeros past the last
//! record as the clean end of the log.

use std::path::Path;

use crate::backend::BackendFile;
use crate::config::Prealloc;
use crate::error::{Error, Result};

/// Zeros written per call when filling a chunk.
const ZERO_WRITE_BYTES: usize = 1 << 20;

/// Extends the file from its preallocated end `prealloc_end` to the first chunk boundary at or
/// after `need_end`. Returns the new preallocated end and the bytes added.
///
/// # Errors
/// I/O failures (ENOSPC as [`Error::DiskFull`]); the caller poisons itself.
pub(crate) fn extend(
    file: &dyn BackendFile,
    path: &Path,
    mode: Prealloc,
    chunk_bytes: u64,
    prealloc_end: u64,
    need_end: u64,
) -> Result<(u64, u64)> {
    if mode == Prealloc::None || need_end <= prealloc_end {
        return Ok((prealloc_end, 0));
    }
    let chunk = chunk_bytes.max(1);
    let new_end = need_end.div_ceil(chunk) * chunk;
    match mode {
        Prealloc::None => unreachable!("returned above"),
        Prealloc::Fallocate => file
            .allocate(prealloc_end, new_end - prealloc_end)
            .map_err(|e| Error::io("fallocate", path, Some(prealloc_end), e))?,
        Prealloc::Zero => {
            let zeros = vec![0u8; ZERO_WRITE_BYTES.min((new_end - prealloc_end) as usize)];
            let mut at = prealloc_end;
            while at < new_end {
                let n = zeros.len().min((new_end - at) as usize);
                file.write_all_at(&zeros[..n], at)
                    .map_err(|e| Error::io("pwrite", path, Some(at), e))?;
                at += n as u64;
            }
            file.sync_data()
                .map_err(|e| Error::io("fdatasync", path, None, e))?;
        }
    }
    Ok((new_end, new_end - prealloc_end))
}
