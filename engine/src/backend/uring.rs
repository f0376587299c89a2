//! io_uring backend.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{Backend, BackendFile, OpenMode};
use crate::error::Result;

/// io_uring I/O.
#[derive(Debug)]
pub struct UringBackend;

impl UringBackend {
    /// # Errors
    /// [`crate::Error::UringUnavailable`] if the kernel refuses io_uring.
    pub fn new() -> Result<Self> {
        unimplemented!("backend helper")
    }
}

impl Backend for UringBackend {
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
        "uring".into()
    }
}
