//! Which directory entries (creates, renames, removes) survive a crash.
//!
//! - [`DirModel::Pessimistic`] (POSIX): an entry change in directory D is durable only if an
//!   fsync of D completed that began after the change (`begin_seq > seq`). A rename between two
//!   directories needs both. An fdatasync of the file itself does not make its name durable.
//! - [`DirModel::Ext4Ordered`]: ext4 with `data=ordered` logs every namespace change in its
//!   journal, and any fsync or fdatasync on the file system commits the running transaction
//!   (including all earlier namespace changes). Modelled as: a change is durable once any sync
//!   (of any file or directory in the trace) completed that began after it; with `writeback`,
//!   also once it is older than the 5 s journal commit interval at the cut. Not modelled:
//!   ext4's `auto_da_alloc` flush of a file's data on rename-over and truncate; delayed
//!   allocation's effect on which data reach the disk with a commit (data stays governed by
//!   the file's own syncs and by `writeback`). Both make the model pessimistic about data.
//!
//! Durable changes are applied in trace order to the durable namespace, which starts with the
//! files that existed before the trace (taken as durable). A rename whose source is not in the
//! durable namespace (possible only across directories) is skipped.
//!
//! Directories made (`mkdir`) or removed (`rmdir`) during the trace follow the same rule as a
//! create or remove in their parent. A directory the trace never makes or removes existed
//! before it and is durable. A name survives only if every directory above it survives: a
//! file in a directory whose own entry was lost is gone with it. A link is a create of a
//! second name for the same inode.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::DirModel;
use super::ops::{DirId, Ino, MOp};

/// The completed syncs in a prefix of the trace, as "covers every entry with `seq <` this".
#[derive(Debug)]
pub(crate) struct Syncs {
    /// Per inode: the largest `begin_seq` of a completed fdatasync.
    pub(crate) data_before: Vec<u64>,
    /// Per directory: the largest `begin_seq` of a completed directory fsync.
    pub(crate) dir_before: Vec<u64>,
    /// The largest `begin_seq` of any completed sync (a journal commit on ext4).
    pub(crate) any_before: u64,
}

impl Syncs {
    /// Scans the operations of `ops` at indices `steps` (all of which happened before the
    /// cut; every sync among them must be listed, other operations may be).
    pub(crate) fn completed(ops: &[MOp], steps: &[usize], inodes: usize, dirs: usize) -> Syncs {
        let mut s = Syncs {
            data_before: vec![0; inodes],
            dir_before: vec![0; dirs],
            any_before: 0,
        };
        for &at in steps {
            match ops[at] {
                MOp::SyncData { ino, begin_seq } => {
                    s.data_before[ino] = s.data_before[ino].max(begin_seq);
                    s.any_before = s.any_before.max(begin_seq);
                }
                MOp::SyncDir { dir, begin_seq } => {
                    s.dir_before[dir] = s.dir_before[dir].max(begin_seq);
                    s.any_before = s.any_before.max(begin_seq);
                }
                _ => {}
            }
        }
        s
    }

    fn dir_synced(&self, dir: DirId, seq: usize) -> bool {
        self.dir_before[dir] > seq as u64
    }
}

/// The durable namespace after `ops`: relative path to inode, and the directories made during
/// the trace that survive. `meta_durable(seq)` says whether the ext4 model committed the
/// change at `seq` (unused by the pessimistic model). Only the operations at indices `steps`
/// (in order) are read: every namespace operation ([`MOp::names_a_file`]) must be listed,
/// other operations may be.
pub(crate) fn durable_names(
    ops: &[MOp],
    steps: &[usize],
    syncs: &Syncs,
    model: DirModel,
    meta_durable: &dyn Fn(usize) -> bool,
) -> (BTreeMap<PathBuf, Ino>, Vec<PathBuf>) {
    let durable = |seq: usize, dirs: &[DirId]| match model {
        DirModel::Pessimistic => dirs.iter().all(|&d| syncs.dir_synced(d, seq)),
        DirModel::Ext4Ordered => meta_durable(seq),
    };
    let mut names = BTreeMap::new();
    // Directories the trace makes or removes: present or not (absent before their first mkdir,
    // present before their first rmdir).
    let mut dir_present: BTreeMap<PathBuf, bool> = BTreeMap::new();
    for &at in steps {
        if let MOp::MkDir { path, .. } | MOp::RemoveDir { path, .. } = &ops[at] {
            dir_present
                .entry(path.clone())
                .or_insert(matches!(ops[at], MOp::RemoveDir { .. }));
        }
    }
    for &seq in steps {
        match &ops[seq] {
            MOp::Base { ino, path, .. } => {
                names.insert(path.clone(), *ino);
            }
            MOp::Create { ino, path, dir } if durable(seq, &[*dir]) => {
                names.insert(path.clone(), *ino);
            }
            MOp::Rename {
                from,
                to,
                from_dir,
                to_dir,
            } if durable(seq, &[*from_dir, *to_dir]) => {
                if let Some(ino) = names.remove(from) {
                    names.insert(to.clone(), ino);
                }
            }
            MOp::Remove { path, dir } if durable(seq, &[*dir]) => {
                names.remove(path);
            }
            MOp::Link { ino, path, dir } if durable(seq, &[*dir]) => {
                names.insert(path.clone(), *ino);
            }
            MOp::MkDir { path, dir } if durable(seq, &[*dir]) => {
                dir_present.insert(path.clone(), true);
            }
            MOp::RemoveDir { path, dir } if durable(seq, &[*dir]) => {
                dir_present.insert(path.clone(), false);
            }
            _ => {}
        }
    }
    let reachable = |p: &Path| {
        p.ancestors()
            .skip(1)
            .all(|a| dir_present.get(a).copied().unwrap_or(true))
    };
    names.retain(|p, _| reachable(p));
    let dirs = dir_present
        .iter()
        .filter(|&(p, &present)| present && reachable(p))
        .map(|(p, _)| p.clone())
        .collect();
    (names, dirs)
}
