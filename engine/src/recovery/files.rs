//! What the files in a data directory are: durlab data, temp leftovers, quarantine copies;
//! and the one decision on whether a directory without its primary file may start empty,
//! which the engine's startup and `durlab recover` ([`crate::inspect`]) both follow.

use std::path::Path;

use crate::aof::FIRST_RECORD_OFFSET;
use crate::backend::{Backend, OpenMode};
use crate::error::{Error, Result};
use crate::snapshot::format::{FOOTER_BYTES, HEADER_BYTES};

/// Names of the files in `dir` that belong to durlab (starting with `durlab`), sorted.
///
/// # Errors
/// The directory cannot be read.
pub(crate) fn durlab_files(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("readdir", dir, None, e))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("durlab"))
        .collect();
    names.sort();
    Ok(names)
}

/// A file written under a temporary name by an operation that did not complete (snapshot,
/// manifest): never a source of data.
pub(crate) fn is_temp(name: &str) -> bool {
    name.ends_with(".tmp")
}

/// A copy of bytes that recovery cut from a log.
pub(crate) fn is_quarantine(name: &str) -> bool {
    name.contains(".quarantine")
}

/// True when the file `name` in `dir`, a leftover recovery never loads, provably holds no key:
/// a temp file that is empty or all zeros, a manifest's temp file (a manifest lists files and
/// holds no key itself), a snapshot's temp file no longer than an empty snapshot (header and
/// footer: what a directory's first start writes in mode `snapshot`), or a log increment
/// without records (what a crash while creating a hybrid directory leaves). Any other file, or
/// one that cannot be read, may hold data.
fn holds_no_key(backend: &dyn Backend, dir: &Path, name: &str) -> bool {
    let Ok(file) = backend.open(&dir.join(name), OpenMode::Existing) else {
        return false;
    };
    let Ok(len) = file.len() else { return false };
    let zeros_from =
        |from: u64| super::tail::nonzero_end(file.as_ref(), from, len).is_ok_and(|end| end == from);
    if is_temp(name) {
        name.ends_with(".manifest.tmp")
            || (name.ends_with(".snap.tmp") && len <= (HEADER_BYTES + FOOTER_BYTES) as u64)
            || zeros_from(0)
    } else {
        name.ends_with(".incr.aof")
            && (len <= FIRST_RECORD_OFFSET || zeros_from(FIRST_RECORD_OFFSET))
    }
}

/// Never start empty when data may exist: `names` are the durlab files in `dir`, where
/// `primary` (the file, or the files, that say how to load the mode's data) is missing. An
/// empty start is allowed only when every file there provably holds no key ([`holds_no_key`]);
/// those files are returned (ignored, never removed).
///
/// # Errors
/// [`Error::RefusingEmptyStart`] naming `primary`, the directory and each file that may hold data: data
/// files, or leftovers of interrupted operations (which are never loaded, but may then be the
/// only copy of the data: moving them out of the directory is the explicit way to start
/// empty).
pub(crate) fn fresh_start(
    backend: &dyn Backend,
    dir: &Path,
    primary: &str,
    names: Vec<String>,
) -> Result<Vec<String>> {
    let (empty, data): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| holds_no_key(backend, dir, n));
    if data.is_empty() {
        return Ok(empty);
    }
    let (temps, others): (Vec<&String>, Vec<&String>) = data.iter().partition(|n| is_temp(n));
    let list = |names: &[&String]| {
        names
            .iter()
            .map(|n| {
                let bytes = std::fs::metadata(dir.join(n)).map_or(0, |m| m.len());
                format!("{n}: {bytes} bytes")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Error::RefusingEmptyStart(if others.is_empty() {
        format!(
            "refusing to start empty: {primary} is missing from {}, which holds only leftovers of \
             interrupted operations that may hold data ({}); they are never loaded, but may be \
             the only copy of it: to start empty, move them out of the directory",
            dir.display(),
            list(&temps)
        )
    } else {
        format!(
            "refusing to start empty: {primary} is missing from {} but data files exist ({})",
            dir.display(),
            list(&others)
        )
    }))
}
