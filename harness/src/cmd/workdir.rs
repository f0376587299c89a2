//! The directory that data goes to: given by `--dir`, or a fresh temporary one.

use std::path::{Path, PathBuf};

use super::CliError;
use crate::results::machine;

/// A base directory, removed on drop unless kept.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
    remove: bool,
}

impl WorkDir {
    /// `<dir>/<sub>` when `dir` is given, else a temporary directory (in $TMPDIR). Removed on
    /// drop unless `keep`.
    ///
    /// # Errors
    /// When the directory exists and is not empty, or cannot be created.
    pub fn new(dir: Option<&Path>, sub: &str, keep: bool) -> Result<WorkDir, CliError> {
        let (path, temp) = match dir {
            Some(d) => (d.join(sub), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("durlab-")
                    .tempdir()
                    .map_err(|e| CliError(format!("creating a temporary directory: {e}")))?;
                (t.path().join(sub), Some(t))
            }
        };
        if path.exists()
            && std::fs::read_dir(&path)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(CliError(format!(
                "{} exists and is not empty; pick another --dir or run id",
                path.display()
            )));
        }
        std::fs::create_dir_all(&path)
            .map_err(|e| CliError(format!("creating {}: {e}", path.display())))?;
        let temp = match temp {
            Some(t) if keep => {
                let _ = t.keep();
                None
            }
            other => other,
        };
        Ok(WorkDir {
            path,
            _temp: temp,
            remove: !keep,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory after all (e.g. because it holds a violating trial).
    pub fn retain(&mut self) {
        self.remove = false;
        if let Some(t) = self._temp.take() {
            let _ = t.keep();
        }
    }

    /// A warning when the file system makes fdatasync meaningless (tmpfs, ramfs).
    pub fn fs_warning(&self) -> Option<String> {
        let fs = machine::fs_type(&self.path);
        matches!(fs.as_str(), "tmpfs" | "ramfs").then(|| {
            format!("warning: {} is on {fs}: fdatasync does nothing there; pass --dir on the disk to measure", self.path.display())
        })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
