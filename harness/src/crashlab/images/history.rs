//! Each inode's content after its first n content operations, without replaying the trace
//! for every image: the crash states of one trace mostly hold, for each file, a prefix of its
//! operations (everything a completed sync covered, then a survived prefix of the unsynced
//! ones), and those prefixes grow with the cut. A [`History`] keeps, per inode, copies of its
//! content every [`SNAPSHOT_OPS`] operations (pages shared between copies,
//! [`Content`]'s copy on write), so the content after n operations is a copy of the nearest
//! snapshot below plus at most [`SNAPSHOT_OPS`] - 1 operations applied again: the same
//! function of the same operations in the same order as applying all n from an empty file.

use std::sync::{Mutex, PoisonError};

use super::content::Content;
use super::ops::{Ino, MOp};

/// Operations of one inode between two snapshots of its content. Each snapshot shares its
/// pages with the one before except those these operations wrote, so this bounds both the
/// operations applied again per state and the memory a trace's snapshots take.
pub(crate) const SNAPSHOT_OPS: usize = 512;

/// The content operations of every inode of a trace, and snapshots of their results.
#[derive(Debug, Default)]
pub(crate) struct History {
    inodes: Vec<InodeHistory>,
}

#[derive(Debug, Default)]
struct InodeHistory {
    /// Trace indices of the inode's content operations, in trace order.
    seqs: Vec<usize>,
    /// Positions in `seqs` of the inode's [`MOp::Base`] and [`MOp::BaseData`] (the file as
    /// found before the trace: always applied, whatever the syncs).
    base_positions: Vec<usize>,
    /// Positions in `seqs` of its size changes ([`MOp::SetLen`], [`MOp::Allocate`]), which
    /// ext4's journal may commit before the writes around them.
    meta_positions: Vec<usize>,
    /// The size after the first n of them (`sizes[0]` = 0), for images judged by size only.
    sizes: Vec<u64>,
    /// `snapshots[j]`: the content after the first `j * SNAPSHOT_OPS`, built as far as asked.
    snapshots: Mutex<Vec<Content>>,
}

/// Whether `op` changes a file's content or size (what [`apply`] applies), and to which inode.
pub(crate) fn content_ino(op: &MOp) -> Option<Ino> {
    match op {
        MOp::Base { ino, .. }
        | MOp::BaseData { ino, .. }
        | MOp::Write { ino, .. }
        | MOp::SetLen { ino, .. }
        | MOp::Allocate { ino, .. } => Some(*ino),
        _ => None,
    }
}

/// Applies the content operation `op` to `c`: a file found before the trace gets its size,
/// writes their segments, `set_len` and `fallocate` theirs. Other operations change nothing.
pub(crate) fn apply(op: &MOp, c: &mut Content) {
    match op {
        MOp::Base { len, .. } => c.allocate(0, *len),
        MOp::BaseData { offset, data, .. } | MOp::Write { offset, data, .. } => {
            c.write_segments(*offset, data)
        }
        MOp::SetLen { len, .. } => c.set_len(*len),
        MOp::Allocate { offset, len, .. } => c.allocate(*offset, *len),
        _ => {}
    }
}

impl History {
    /// The history of `ops` (a resolved trace of `inodes` inodes).
    pub(crate) fn of(ops: &[MOp], inodes: usize) -> History {
        let mut h: Vec<InodeHistory> = (0..inodes)
            .map(|_| InodeHistory {
                sizes: vec![0],
                ..InodeHistory::default()
            })
            .collect();
        let mut size = vec![Content::sizes_only(0); inodes];
        for (seq, op) in ops.iter().enumerate() {
            if let Some(ino) = content_ino(op) {
                let i = &mut h[ino];
                apply(op, &mut size[ino]);
                if matches!(op, MOp::Base { .. } | MOp::BaseData { .. }) {
                    i.base_positions.push(i.seqs.len());
                }
                if matches!(op, MOp::SetLen { .. } | MOp::Allocate { .. }) {
                    i.meta_positions.push(i.seqs.len());
                }
                i.seqs.push(seq);
                i.sizes.push(size[ino].size());
            }
        }
        History { inodes: h }
    }

    /// Inode `ino`'s content operations before trace index `k`, split at trace index `synced`
    /// (a completed data sync covers those before it): `(n, ops)`, where `n` of them come
    /// before `synced` and `ops` are the trace indices of the others, in order. `None` when
    /// the durable ones are not those n: one of the others is a [`MOp::Base`] or
    /// [`MOp::BaseData`] (applied whatever the syncs), or a size change before
    /// `meta_synced` (durable through ext4's journal; `meta_synced` <= `synced`: none is).
    pub(crate) fn split(
        &self,
        ino: Ino,
        k: usize,
        synced: usize,
        meta_synced: usize,
    ) -> Option<(usize, &[usize])> {
        let i = &self.inodes[ino];
        let end = i.seqs.partition_point(|&s| s < k);
        let n = i.seqs[..end].partition_point(|&s| s < synced);
        let first_after = |positions: &[usize]| {
            positions
                .get(positions.partition_point(|&at| at < n))
                .copied()
        };
        if first_after(&i.base_positions).is_some_and(|at| at < end) {
            return None;
        }
        if first_after(&i.meta_positions).is_some_and(|at| at < end && i.seqs[at] < meta_synced) {
            return None;
        }
        Some((n, &i.seqs[n..end]))
    }

    /// How many of inode `ino`'s first `n` content operations are data operations (not the
    /// file as found before the trace).
    pub(crate) fn data_ops_in(&self, ino: Ino, n: usize) -> usize {
        n - self.inodes[ino]
            .base_positions
            .partition_point(|&at| at < n)
    }

    /// The size of inode `ino` after its first `n` content operations.
    ///
    /// # Panics
    /// If the inode has fewer than `n`.
    pub(crate) fn size_after(&self, ino: Ino, n: usize) -> u64 {
        self.inodes[ino].sizes[n]
    }

    /// The content of inode `ino` after its first `n` content operations of `ops` (the
    /// operations this history was made of), as applying them in order to an empty file
    /// makes it.
    ///
    /// # Panics
    /// If the inode has fewer than `n`.
    pub(crate) fn content_after(&self, ops: &[MOp], ino: Ino, n: usize) -> Content {
        let i = &self.inodes[ino];
        assert!(
            n < i.sizes.len(),
            "inode {ino} has fewer than {n} operations"
        );
        let j = n / SNAPSHOT_OPS;
        let mut c = {
            let mut snaps = i.snapshots.lock().unwrap_or_else(PoisonError::into_inner);
            while snaps.len() <= j {
                let built = snaps.len();
                let mut next = match snaps.last() {
                    Some(c) => c.clone(),
                    None => Content::default(),
                };
                if built > 0 {
                    for &seq in &i.seqs[(built - 1) * SNAPSHOT_OPS..built * SNAPSHOT_OPS] {
                        apply(&ops[seq], &mut next);
                    }
                }
                snaps.push(next);
            }
            snaps[j].clone()
        };
        for &seq in &i.seqs[j * SNAPSHOT_OPS..n] {
            apply(&ops[seq], &mut c);
        }
        c
    }

    /// Test hook: builds inode `ino`'s snapshot `j` and changes its byte at `at` (a stale
    /// snapshot, which the tests comparing with the plain path must catch).
    #[cfg(test)]
    pub(crate) fn spoil(&self, ops: &[MOp], ino: Ino, j: usize, at: u64) {
        drop(self.content_after(ops, ino, j * SNAPSHOT_OPS));
        let mut snaps = self.inodes[ino]
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let old = snaps[j].byte(at);
        snaps[j].write(at, &[old ^ 0x5A]);
    }
}
