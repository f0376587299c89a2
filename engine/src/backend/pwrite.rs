//! pwrite(2) + fdatasync(2) backend.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{Backend, BackendFile, OpenMode};

/// Plain POSIX I/O.
#[derive(Debug, Default)]
pub struct PwriteBackend;

impl PwriteBackend {
    pub fn new() -> Self {
        PwriteBackend
    }
}

impl Backend for PwriteBackend {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn BackendFile>> {
        let _ = (path, mode);
        unimplemented!("backend helper")
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _ = (from, to);
        unimplemented!("backend helper")
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let _ = path;
        unimplemented!("backend helper")
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let _ = dir;
        unimplemented!("backend helper")
    }
    fn name(&self) -> String {
        "pwrite".into()
    }
}
