//! Installing a file atomically through the backend: temp file → write → fdatasync → rename
//! over the final name → fsync of the directory (snapshots, hybrid manifests).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Backend, BackendFile, OpenMode};
use crate::error::{Error, Result};

/// The temp name a file is written under before it is renamed to `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The named crash points (see [`crate::failpoint`]) one installation passes; `None`: no
/// point at that step.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CrashPoints {
    pub after_temp_create: Option<&'static str>,
    pub after_temp_write: Option<&'static str>,
    pub after_temp_sync: Option<&'static str>,
    pub after_rename: Option<&'static str>,
}

/// Fires `point` if it is named and armed.
fn reach(point: Option<&'static str>) -> Result<()> {
    #[cfg(feature = "failpoints")]
    if let Some(name) = point {
        crate::failpoint::hit(name)?;
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = point;
    Ok(())
}

/// Installs a new file at `path` atomically: creates its temp file ([`temp_path`], replacing
/// one an interrupted attempt left), lets `write` fill it (given the file and the temp path,
/// for error messages), fdatasyncs it, renames it over `path` and fsyncs the directory. On
/// success the new file and its directory entry are durable. A crash at any step leaves either
/// the previous file under `path` or the new, complete and synced one; a leftover temp file is
/// never read (recovery ignores it).
///
/// # Errors
/// I/O failures (naming the file, and the offset where `write` knows it), `write`'s error, or
/// an injected crash point of `points`; then `path` is unchanged (or already replaced, if the
/// failure came after the rename) and the temp file may remain.
pub(crate) fn rewrite_atomic<T>(
    backend: &dyn Backend,
    path: &Path,
    points: CrashPoints,
    write: impl FnOnce(&dyn BackendFile, &Path) -> Result<T>,
) -> Result<T> {
    let temp = temp_path(path);
    let file = create_temp(backend, &temp)?;
    reach(points.after_temp_create)?;
    let written = write(file.as_ref(), &temp)?;
    reach(points.after_temp_write)?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &temp, None, e))?;
    reach(points.after_temp_sync)?;
    backend
        .rename(&temp, path)
        .map_err(|e| Error::io("rename", &temp, None, e))?;
    reach(points.after_rename)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync dir", dir, None, e))?;
    Ok(written)
}

/// Creates the temp file, replacing one left by an interrupted earlier attempt.
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
