//! A data directory at open: created durably when missing, and the temporary files an earlier
//! run left in it noted in the recovery report. Every persistence mode's opening uses these
//! (`engine/open.rs`, `hybrid/recovery.rs`).

use std::path::Path;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::recovery::RecoveryReport;

/// Creates `dir` if missing (and syncs its parent so that the new entry is durable), noting it
/// in `report`.
///
/// # Errors
/// I/O failures.
pub(crate) fn ensure_dir(
    backend: &dyn Backend,
    dir: &Path,
    report: &mut RecoveryReport,
) -> Result<()> {
    if !dir.exists() {
        report
            .changes
            .push(format!("{}: directory created", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| Error::io("mkdir", dir, None, e))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            backend
                .sync_dir(parent)
                .map_err(|e| Error::io("fsync dir", parent, None, e))?;
        }
    }
    Ok(())
}

/// Records temp leftovers (names in `dir`) in the report.
pub(crate) fn note_leftovers(report: &mut RecoveryReport, dir: &Path, names: Vec<String>) {
    report
        .leftover_files
        .extend(names.into_iter().map(|n| dir.join(n)));
}
