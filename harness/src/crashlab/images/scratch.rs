//! Where crash images are built and recovered: scratch space that needs no durability. An
//! image's recovery fsyncs its files (the engine settles a recovered tail); on a disk that
//! writes every image out to the device and makes its removal wait for discards, which is
//! most of the cost of a check. On tmpfs the same recovery runs over the same system calls,
//! and the verdict cannot depend on where the image lives.

use std::io;
use std::path::{Path, PathBuf};

use crate::results::machine;

/// The default scratch root, when it is a tmpfs.
pub const DEFAULT_SCRATCH_ROOT: &str = "/dev/shm";

/// A fresh directory for the images of one run, removed when dropped: inside `given`, else
/// inside [`DEFAULT_SCRATCH_ROOT`] when that is a writable tmpfs; `None` means inside each
/// trial's own directory.
///
/// # Errors
/// When `given` cannot be created or written (the error names it).
pub fn scratch_dir(given: Option<&Path>) -> io::Result<Option<tempfile::TempDir>> {
    let root = match given {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| named(dir, e))?;
            dir.to_path_buf()
        }
        None => {
            let shm = PathBuf::from(DEFAULT_SCRATCH_ROOT);
            if machine::fs_type(&shm) != "tmpfs" {
                return Ok(None);
            }
            shm
        }
    };
    match tempfile::Builder::new()
        .prefix("durlab-images-")
        .tempdir_in(&root)
    {
        Ok(t) => Ok(Some(t)),
        Err(_) if given.is_none() => Ok(None),
        Err(e) => Err(named(&root, e)),
    }
}

fn named(dir: &Path, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("crash image directory {}: {e}", dir.display()),
    )
}
