//! The state of the disk at a cut, as the model computes it and the variants (power loss,
//! prefix, torn, reorder) extend it with unsynced operations.

use std::collections::BTreeMap;
use std::path::PathBuf;

use durlab_engine::backend::recording::Segment;

use super::content::Content;
use super::ops::Ino;

/// An operation not covered by a completed sync at the cut: what the variants choose from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending<'a> {
    pub(crate) seq: usize,
    pub(crate) ino: Ino,
    pub(crate) op: PendingOp<'a>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum PendingOp<'a> {
    Write { offset: u64, data: &'a [Segment] },
    SetLen(u64),
    Allocate(u64, u64),
}

impl Pending<'_> {
    /// Applies the whole operation.
    pub(crate) fn apply(&self, files: &mut [Content]) {
        let f = &mut files[self.ino];
        match self.op {
            PendingOp::Write { offset, data } => f.write_segments(offset, data),
            PendingOp::SetLen(len) => f.set_len(len),
            PendingOp::Allocate(offset, len) => f.allocate(offset, len),
        }
    }
}

/// The state of the disk at a cut, before a variant adds unsynced operations.
#[derive(Debug)]
pub(crate) struct CrashState<'a> {
    /// Content per inode (only inodes named in `names` are materialised).
    pub(crate) files: Vec<Content>,
    /// The durable directory entries: relative path to inode (only names whose directories
    /// are durable too).
    pub(crate) names: BTreeMap<PathBuf, Ino>,
    /// Directories created during the trace whose entries are durable (made even if empty).
    pub(crate) dirs: Vec<PathBuf>,
    /// Unsynced data operations, in trace order.
    pub(crate) pending: Vec<Pending<'a>>,
    /// Data operations that were durable (synced, or written back).
    pub(crate) durable_ops: usize,
}
