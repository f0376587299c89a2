//! What the files in a data directory are: durlab data, temp leftovers, quarantine copies.

use std::path::Path;

use crate::error::{Error, Result};

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

/// Never start empty when data files exist: if `primary` is missing from `dir` but other
/// durlab files (temp leftovers aside) are there, something removed it, and an empty start
/// would silently drop their data. Returns the temp leftovers found.
///
/// # Errors
/// [`Error::Config`] naming the missing file and the data files found.
pub(crate) fn refuse_if_data_files(dir: &Path, primary: &str) -> Result<Vec<String>> {
    refuse_if_data_files_among(dir, primary, durlab_files(dir)?)
}

/// [`refuse_if_data_files`] over the given names of files in `dir`.
///
/// # Errors
/// As [`refuse_if_data_files`].
pub(crate) fn refuse_if_data_files_among(
    dir: &Path,
    primary: &str,
    names: Vec<String>,
) -> Result<Vec<String>> {
    let (temps, data): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| is_temp(n));
    if data.is_empty() {
        return Ok(temps);
    }
    Err(Error::Config(format!(
        "refusing to start empty: {primary} is missing from {} but data files exist ({})",
        dir.display(),
        data.join(", ")
    )))
}
