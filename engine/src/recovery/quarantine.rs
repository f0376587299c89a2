//! Keeping a copy of every byte that recovery cuts from a log.

use std::io;
use std::path::{Path, PathBuf};

use crate::backend::{Backend, BackendFile, OpenMode, read_exact_at};
use crate::error::{Error, Result};

/// Copies `[from, to)` of `file` (at `path`) into a new file next to it named
/// `<name>.<from>.quarantine` (or `.quarantine.<k>` if that exists), synced together with its
/// directory entry before this returns, so the cut that follows cannot lose the bytes. The
/// copy holds exactly the `to - from` bytes: those from `data_end` on are zeros (read back as
/// such from a hole, so a cut preallocated region costs no space).
///
/// # Errors
/// Any I/O failure (a full disk included); then nothing was cut, the caller must not cut, and
/// the incomplete copy has been removed: no empty or partial quarantine file is left.
pub(crate) fn keep_copy(
    backend: &dyn Backend,
    file: &dyn BackendFile,
    path: &Path,
    from: u64,
    data_end: u64,
    to: u64,
) -> Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (qpath, qfile) = create_unique(backend, dir, &format!("{name}.{from}.quarantine"))?;
    let copied = copy_range(file, path, qfile.as_ref(), &qpath, from, data_end, to);
    if let Err(e) = copied {
        drop(qfile);
        // The copy is ours and incomplete; the bytes it was to hold are still in the log.
        return Err(match backend.remove(&qpath) {
            Ok(()) => e,
            Err(rm) => Error::io("unlink incomplete quarantine copy", &qpath, None, rm),
        });
    }
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync dir", dir, None, e))?;
    Ok(qpath)
}

/// Writes `[from, data_end)` of `file` to `qfile` at offset 0, extends it to `to - from`
/// bytes (the rest are zeros) and syncs it.
fn copy_range(
    file: &dyn BackendFile,
    path: &Path,
    qfile: &dyn BackendFile,
    qpath: &Path,
    from: u64,
    data_end: u64,
    to: u64,
) -> Result<()> {
    // Equivalent mutants (`-` to `+` or `/` here, `-` to `/` in `n`, .cargo/mutants.toml): they
    // change only how many bytes each step copies (still at least one, and never past
    // `data_end`), not what is copied.
    let mut buf = vec![0u8; (1 << 20).min((data_end - from) as usize)];
    let mut at = from;
    while at < data_end {
        let n = buf.len().min((data_end - at) as usize);
        read_exact_at(file, &mut buf[..n], at).map_err(|e| Error::io("read", path, Some(at), e))?;
        let copy_at = at - from;
        qfile
            .write_all_at(&buf[..n], copy_at)
            .map_err(|e| Error::io("write", qpath, Some(copy_at), e))?;
        at += n as u64;
    }
    let len = to - from;
    qfile
        .set_len(len)
        .map_err(|e| Error::io("ftruncate", qpath, Some(len), e))?;
    qfile
        .sync_data()
        .map_err(|e| Error::io("fdatasync", qpath, None, e))
}

fn create_unique(
    backend: &dyn Backend,
    dir: &Path,
    base: &str,
) -> Result<(PathBuf, std::sync::Arc<dyn BackendFile>)> {
    for k in 0..1000 {
        let name = if k == 0 {
            base.to_string()
        } else {
            format!("{base}.{k}")
        };
        let path = dir.join(name);
        match backend.open(&path, OpenMode::CreateNew) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create", &path, None, e)),
        }
    }
    Err(Error::Config(format!(
        "too many quarantine files named {base}.* in {}",
        dir.display()
    )))
}
