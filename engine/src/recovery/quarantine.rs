//! Keeping every byte that recovery cuts from a log: a copy of them, or the whole log under a
//! second name.

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
    let (dir, name) = dir_and_name(path);
    let (qpath, qfile) = create_unique(dir, &format!("{name}.{from}.quarantine"), "create", |p| {
        backend.open(p, OpenMode::CreateNew)
    })?;
    let copied =
        copy_range(file, path, qfile.as_ref(), &qpath, from, data_end, to).and_then(|()| {
            qfile
                .sync_data()
                .map_err(|e| Error::io("fdatasync", &qpath, None, e))
        });
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

/// Keeps the whole of `file` (at `path`), the bytes a cut at `from` removes included, under
/// a second name next to it, `<name>.<from>.whole.quarantine` (or `.whole.quarantine.<k>` if
/// that exists): a hard link, so no byte is copied. The file's data is synced first and the
/// new name with its directory after, so before this returns the bytes recovery read are
/// durable under that name, whatever then happens to `path`.
///
/// # Errors
/// Any I/O failure; then the caller must not cut, and no new name is left.
pub(crate) fn keep_whole(
    backend: &dyn Backend,
    file: &dyn BackendFile,
    path: &Path,
    from: u64,
) -> Result<PathBuf> {
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", path, None, e))?;
    let (dir, name) = dir_and_name(path);
    let (qpath, ()) = create_unique(
        dir,
        &format!("{name}.{from}.whole.quarantine"),
        "link",
        |p| backend.hard_link(path, p),
    )?;
    if let Err(e) = backend.sync_dir(dir) {
        // The name may not be durable; the bytes are all still in the log.
        let e = Error::io("fsync dir", dir, None, e);
        return Err(match backend.remove(&qpath) {
            Ok(()) => e,
            Err(rm) => Error::io("unlink quarantine link", &qpath, None, rm),
        });
    }
    Ok(qpath)
}

/// The directory of `path` and its file name.
fn dir_and_name(path: &Path) -> (&Path, String) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

/// Writes `[from, data_end)` of `file` (at `path`) to `qfile` (at `qpath`) at offset 0 and
/// sets its length to `to - from` bytes (the rest are zeros); does not sync it.
///
/// # Errors
/// I/O failures, naming the file and offset.
pub(crate) fn copy_range(
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
        .map_err(|e| Error::io("ftruncate", qpath, Some(len), e))
}

/// Makes a new file in `dir` with `make(path)`, at the first free name of `base`,
/// `base.1`, ... (`make` fails with `AlreadyExists` on a taken one).
fn create_unique<T>(
    dir: &Path,
    base: &str,
    what: &'static str,
    make: impl Fn(&Path) -> io::Result<T>,
) -> Result<(PathBuf, T)> {
    for k in 0..1000 {
        let name = if k == 0 {
            base.to_string()
        } else {
            format!("{base}.{k}")
        };
        let path = dir.join(name);
        match make(&path) {
            Ok(made) => return Ok((path, made)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(what, &path, None, e)),
        }
    }
    Err(Error::Config(format!(
        "too many quarantine files named {base}.* in {}",
        dir.display()
    )))
}
