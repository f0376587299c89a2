//! The trace's operations as the image builder resolves them: file ids become inodes, paths
//! become relative to the data directory, directories are interned. Shared by the model that
//! resolves them ([`super::model`]) and the directory-entry rules ([`super::direntry`]).

use std::path::PathBuf;

use durlab_engine::backend::recording::Segment;

/// An inode: a file's identity across renames.
pub(crate) type Ino = usize;
/// A directory, interned.
pub(crate) type DirId = usize;

/// One trace entry, resolved.
#[derive(Debug)]
pub(crate) enum MOp {
    /// No effect on images (an open of a known file, a sync of a directory outside the root).
    Nop,
    /// A file that existed before the trace: durable, name and content.
    Base {
        ino: Ino,
        path: PathBuf,
        len: u64,
    },
    BaseData {
        ino: Ino,
        offset: u64,
        data: Vec<Segment>,
    },
    Create {
        ino: Ino,
        path: PathBuf,
        dir: DirId,
    },
    Write {
        ino: Ino,
        offset: u64,
        data: Vec<Segment>,
    },
    SyncData {
        ino: Ino,
        begin_seq: u64,
    },
    SetLen {
        ino: Ino,
        len: u64,
    },
    Allocate {
        ino: Ino,
        offset: u64,
        len: u64,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
        from_dir: DirId,
        to_dir: DirId,
    },
    Remove {
        path: PathBuf,
        dir: DirId,
    },
    SyncDir {
        dir: DirId,
        begin_seq: u64,
    },
    /// A directory created during the trace: its entry lives in `dir` (its parent).
    MkDir {
        path: PathBuf,
        dir: DirId,
    },
    RemoveDir {
        path: PathBuf,
        dir: DirId,
    },
    /// A second name `path` (in `dir`) for inode `ino`.
    Link {
        ino: Ino,
        path: PathBuf,
        dir: DirId,
    },
}

impl MOp {
    /// Short name for descriptions.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            MOp::Nop => "open",
            MOp::Base { .. } | MOp::BaseData { .. } => "preexisting",
            MOp::Create { .. } => "create",
            MOp::Write { .. } => "write",
            MOp::SyncData { .. } => "fdatasync",
            MOp::SetLen { .. } => "set_len",
            MOp::Allocate { .. } => "fallocate",
            MOp::Rename { .. } => "rename",
            MOp::Remove { .. } => "remove",
            MOp::SyncDir { .. } => "fsync dir",
            MOp::MkDir { .. } => "mkdir",
            MOp::RemoveDir { .. } => "rmdir",
            MOp::Link { .. } => "link",
        }
    }

    /// A data or directory sync.
    pub(crate) fn is_sync(&self) -> bool {
        matches!(self, MOp::SyncData { .. } | MOp::SyncDir { .. })
    }

    /// An operation that adds, moves or removes a name ([`super::direntry::durable_names`]
    /// reads only these).
    pub(crate) fn names_a_file(&self) -> bool {
        matches!(
            self,
            MOp::Base { .. }
                | MOp::Create { .. }
                | MOp::Rename { .. }
                | MOp::Remove { .. }
                | MOp::Link { .. }
                | MOp::MkDir { .. }
                | MOp::RemoveDir { .. }
        )
    }

    /// Syncs and renames: the cut points always taken just before and just after.
    pub(crate) fn is_critical(&self) -> bool {
        matches!(self, MOp::SyncData { .. }) || self.is_namespace_step()
    }

    /// A rename or directory sync (or a directory made or removed): where snapshot, rewrite
    /// and manifest installs commit.
    pub(crate) fn is_namespace_step(&self) -> bool {
        matches!(
            self,
            MOp::SyncDir { .. } | MOp::Rename { .. } | MOp::MkDir { .. } | MOp::RemoveDir { .. }
        )
    }
}
