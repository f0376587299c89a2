//! Loading a snapshot file: the whole file is read, its footer checksum verified, and only then
//! are its entries decoded into the keyspace.

use std::path::Path;

use super::format::{self, Header};
use crate::backend::{Backend, OpenMode, read_exact_at};
use crate::error::{Error, Result};
use crate::keyspace::Keyspace;

/// What a loaded snapshot held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub header: Header,
    pub entries: u64,
    pub bytes: u64,
}

/// Reads and verifies the snapshot at `path` without applying it: its header and entry count.
///
/// # Errors
/// As [`load`].
pub fn check(backend: &dyn Backend, path: &Path) -> Result<Loaded> {
    read_verified(backend, path, |_| {}, |_, _| {})
}

/// Loads the snapshot at `path` into `keyspace`, which must be empty.
///
/// # Errors
/// [`Error::Corrupt`] naming the file and offset when the file is truncated, its checksum does
/// not match, or an entry does not decode: then `keyspace` is left empty. I/O errors otherwise
/// (`NotFound` included).
pub fn load(backend: &dyn Backend, path: &Path, keyspace: &mut Keyspace) -> Result<Loaded> {
    debug_assert!(
        keyspace.is_empty(),
        "a snapshot loads into an empty keyspace"
    );
    // One keyspace, borrowed by both callbacks in turn.
    let keyspace = std::cell::RefCell::new(keyspace);
    let result = read_verified(
        backend,
        path,
        |keys| keyspace.borrow_mut().reserve(keys),
        |k, e| keyspace.borrow_mut().load_entry(k, e),
    );
    let keyspace = keyspace.into_inner();
    if result.is_err() {
        // The checksum vouched for the bytes, but an entry did not decode: load nothing.
        keyspace.clear();
    }
    result
}

/// Reads the whole file, verifies it, calls `reserve` with the number of entries (bounded by
/// what the body can hold), then hands each entry to `sink`.
fn read_verified(
    backend: &dyn Backend,
    path: &Path,
    reserve: impl FnOnce(usize),
    sink: impl FnMut(Vec<u8>, crate::keyspace::Entry),
) -> Result<Loaded> {
    let file = backend
        .open(path, OpenMode::Existing)
        .map_err(|e| Error::io("open", path, None, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, None, e))?;
    let len_usize = usize::try_from(len).map_err(|_| Error::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: format!("snapshot of {len} bytes does not fit in memory"),
    })?;
    let mut bytes = vec![0u8; len_usize];
    read_exact_at(file.as_ref(), &mut bytes, 0).map_err(|e| Error::io("read", path, Some(0), e))?;
    let corrupt = |e: format::FormatError| Error::Corrupt {
        path: path.to_path_buf(),
        offset: e.offset,
        reason: e.reason,
    };
    let verified = format::verify(&bytes).map_err(corrupt)?;
    reserve(verified.entries_bounded());
    let entries = verified.decode_entries(sink).map_err(corrupt)?;
    Ok(Loaded {
        header: verified.header,
        entries,
        bytes: len,
    })
}
