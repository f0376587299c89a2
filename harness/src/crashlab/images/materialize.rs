//! Writing a crash state out as a real directory: every durable directory made during the
//! trace, and one file per durable name, holding the surviving bytes (zero pages left as
//! holes) and the surviving size. Two names of one inode become two files of equal content.

use std::fs::{self, File};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::path::Path;

use super::ImageError;
use super::state::CrashState;

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { op, path, source }
}

/// Replaces `dir` (if present) with the image of `state`.
///
/// # Errors
/// [`ImageError::Io`] naming the file and operation.
pub(crate) fn materialize(state: &CrashState<'_>, dir: &Path) -> Result<(), ImageError> {
    remove(dir)?;
    fs::create_dir_all(dir).map_err(io_err("mkdir", dir))?;
    for rel in &state.dirs {
        let path = dir.join(rel);
        fs::create_dir_all(&path).map_err(io_err("mkdir", &path))?;
    }
    for (rel, &ino) in &state.names {
        let path = dir.join(rel);
        if let Some(parent) = path.parent().filter(|p| *p != dir) {
            fs::create_dir_all(parent).map_err(io_err("mkdir", parent))?;
        }
        let mut file = File::create(&path).map_err(io_err("create", &path))?;
        let content = &state.files[ino];
        for (offset, pages) in content.page_runs() {
            write_run(&mut file, offset, &pages).map_err(|source| ImageError::Io {
                op: "write",
                path: path.clone(),
                source: io::Error::new(source.kind(), format!("at byte {offset}: {source}")),
            })?;
        }
        file.set_len(content.size())
            .map_err(io_err("set length of", &path))?;
    }
    Ok(())
}

/// Slices handed to one `writev`, at most (Linux's `IOV_MAX`).
const SLICES_PER_WRITE: usize = 1024;

/// Writes `pages` end to end at `offset` of `file`, straight from the pages (no copy into
/// one buffer: the log of a fast trace is megabytes per image).
///
/// # Errors
/// The I/O error of a seek or write (a write of nothing is [`io::ErrorKind::WriteZero`]).
fn write_run(file: &mut File, offset: u64, pages: &[&[u8]]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    let mut slices: Vec<IoSlice<'_>> = pages.iter().map(|p| IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let upto = rest.len().min(SLICES_PER_WRITE);
        let n = file.write_vectored(&rest[..upto])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// The identity of what [`materialize`] writes for `state`: directories, names, and each
/// named file's size and bytes, hashed twice with different seeds into 128 bits (foldhash:
/// several times faster than std's SipHash over the megabytes of a log, and no adversary
/// chooses these bytes). Equal keys mean byte-identical images (an accidental collision is
/// about a 2^-128 chance per pair, not a risk a crash lab of thousands of images takes);
/// different keys may still read alike (a page of zeros against a hole), which only costs a
/// second recovery.
pub(crate) fn key(state: &CrashState<'_>) -> u128 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let half = |salt: u64| {
        let mut h = foldhash::quality::FixedState::with_seed(salt).build_hasher();
        state.dirs.hash(&mut h);
        for (rel, &ino) in &state.names {
            rel.hash(&mut h);
            state.files[ino].hash_into(&mut h);
        }
        h.finish()
    };
    (u128::from(half(0x5eed_0001)) << 64) | u128::from(half(0x5eed_0002))
}

/// Removes an image directory; a missing one is fine.
///
/// # Errors
/// [`ImageError::Io`] for any other failure.
pub(crate) fn remove(dir: &Path) -> Result<(), ImageError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", dir)(e)),
        _ => Ok(()),
    }
}

/// Copies the image at `from` to `to` (created), files and subdirectories.
///
/// # Errors
/// [`ImageError::Io`] naming the path that failed.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), ImageError> {
    fs::create_dir_all(to).map_err(io_err("mkdir", to))?;
    for entry in fs::read_dir(from).map_err(io_err("list", from))? {
        let entry = entry.map_err(io_err("list", from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(io_err("stat", &src))?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(io_err("copy", &src))?;
        }
    }
    Ok(())
}
