//! Loading a snapshot file into a fresh keyspace, built while the file is read and its
//! checksum computed (`build.rs`), and handed out only after the footer checksum matched
//! and every entry decoded.

use std::path::Path;

use super::build;
use super::format::Header;
use crate::backend::{Backend, OpenMode};
use crate::error::{Error, Result};
use crate::keyspace::Keyspace;

/// What a loaded snapshot held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub header: Header,
    pub entries: u64,
    pub bytes: u64,
}

/// Reads and verifies the snapshot at `path` as [`read_keyspace`] does, without keeping the
/// keyspace: its header and entry count.
///
/// # Errors
/// As [`read_keyspace`].
pub fn check(backend: &dyn Backend, path: &Path) -> Result<Loaded> {
    read_keyspace(backend, path).map(|(_, loaded)| loaded)
}

/// Loads the snapshot at `path` into `keyspace`, which must be empty; on error `keyspace` is
/// left as it was.
///
/// # Errors
/// As [`read_keyspace`].
pub fn load(backend: &dyn Backend, path: &Path, keyspace: &mut Keyspace) -> Result<Loaded> {
    debug_assert!(
        keyspace.is_empty(),
        "a snapshot loads into an empty keyspace"
    );
    let (loaded_keyspace, loaded) = read_keyspace(backend, path)?;
    *keyspace = loaded_keyspace;
    Ok(loaded)
}

/// Reads the snapshot at `path` into a new keyspace, which exists only if every byte verified.
///
/// # Errors
/// [`Error::Corrupt`] naming the file and offset when the file is truncated, its checksum does
/// not match, an entry does not decode, a key repeats, or the entry count differs from the
/// footer's; I/O errors otherwise (`NotFound` included).
pub fn read_keyspace(backend: &dyn Backend, path: &Path) -> Result<(Keyspace, Loaded)> {
    let file = backend
        .open(path, OpenMode::Existing)
        .map_err(|e| Error::io("open", path, None, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, None, e))?;
    let len_usize = usize::try_from(len).map_err(|_| Error::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: format!("snapshot of {len} bytes does not fit in memory"),
    })?;
    let (keyspace, verified) = build::build(file.as_ref(), len_usize, path)?;
    let loaded = Loaded {
        header: verified.header,
        entries: verified.entries,
        bytes: len,
    };
    Ok((keyspace, loaded))
}
