//! The state of the disk at a cut, as the model computes it and the variants (power loss,
//! prefix, torn, reorder) extend it with unsynced operations.

use std::collections::BTreeMap;
use std::path::PathBuf;

use durlab_engine::backend::recording::Segment;

use super::content::Content;
use super::history::History;
use super::ops::{Ino, MOp};

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
    /// Per inode, when `files[ino]` is its content after exactly its first n content
    /// operations and its pending operations are the ones after those, in order: n
    /// ([`CrashState::apply_first`] then takes the content of a longer prefix from `source`).
    pub(crate) prefix: Vec<Option<usize>>,
    /// Where `prefix` contents come from (`None`: every file is built op by op).
    pub(crate) source: Option<Source<'a>>,
}

/// The trace a crash state was built from, and what its files keep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub(crate) history: &'a History,
    pub(crate) ops: &'a [MOp],
    /// The files keep only their sizes ([`Content::sizes_only`]).
    pub(crate) sizes_only: bool,
}

impl CrashState<'_> {
    /// Applies the first `n` pending operations, in order. A file whose content is a prefix
    /// of its operations ([`CrashState::prefix`]) and whose pending operations are the next
    /// ones gets the content after the longer prefix from the history: the same operations
    /// applied in the same order. Every other file gets them applied one by one.
    pub(crate) fn apply_first(&mut self, n: usize) {
        let Some(source) = self.source else {
            for p in &self.pending[..n] {
                p.apply(&mut self.files);
            }
            return;
        };
        let mut more = vec![0usize; self.files.len()];
        for p in &self.pending[..n] {
            match self.prefix[p.ino] {
                Some(_) => more[p.ino] += 1,
                None => p.apply(&mut self.files),
            }
        }
        for (ino, &m) in more.iter().enumerate() {
            let Some(from) = self.prefix[ino] else {
                continue;
            };
            if m > 0 {
                let to = from + m;
                self.files[ino] = if source.sizes_only {
                    Content::sizes_only(source.history.size_after(ino, to))
                } else {
                    source.history.content_after(source.ops, ino, to)
                };
            }
        }
        // The files now hold pending operations: later ones would apply on top of them.
        self.prefix.fill(None);
    }
}
