//! The recording filesystem's inode table: its own inode numbers (never reused, unlike the
//! backing filesystem's after an unlink), each with a path relative to the backing root and,
//! for regular files, the trace's file id.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use durlab_engine::backend::recording::FileId;

/// The root's inode number (FUSE's).
pub(crate) const ROOT_INO: u64 = 1;

/// Most inodes the table holds (bounds memory: a server under test makes a few dozen files).
pub(crate) const MAX_NODES: usize = 1 << 20;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    /// Symlinks, sockets, devices found in the backing directory: visible, not recorded.
    Other,
}

impl Kind {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Kind {
        let t = meta.file_type();
        if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Other
        }
    }
}

/// One inode.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// A current name of it, relative to the root (`""` for the root).
    pub(crate) rel: PathBuf,
    pub(crate) kind: Kind,
    /// Regular files: the id its trace entries carry (set once the trace knows the file).
    pub(crate) file: Option<FileId>,
}

/// Inodes by number and by path.
#[derive(Debug)]
pub(crate) struct Nodes {
    by_ino: HashMap<u64, Node>,
    by_path: HashMap<PathBuf, u64>,
    next_ino: u64,
}

impl Nodes {
    /// A table holding only the root directory.
    pub(crate) fn new() -> Nodes {
        let mut n = Nodes {
            by_ino: HashMap::new(),
            by_path: HashMap::new(),
            next_ino: ROOT_INO + 1,
        };
        n.by_ino.insert(
            ROOT_INO,
            Node {
                rel: PathBuf::new(),
                kind: Kind::Dir,
                file: None,
            },
        );
        n.by_path.insert(PathBuf::new(), ROOT_INO);
        n
    }

    pub(crate) fn get(&self, ino: u64) -> Option<&Node> {
        self.by_ino.get(&ino)
    }

    pub(crate) fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        self.by_ino.get_mut(&ino)
    }

    pub(crate) fn ino_of(&self, rel: &Path) -> Option<u64> {
        self.by_path.get(rel).copied()
    }

    /// The inode at `rel`, made with `kind` if the table has none (or has one of another
    /// kind: the backing directory changed behind the mount).
    ///
    /// # Errors
    /// `ENFILE` past [`MAX_NODES`].
    pub(crate) fn at(&mut self, rel: &Path, kind: Kind) -> Result<u64, i32> {
        if let Some(ino) = self.by_path.get(rel)
            && self.by_ino.get(ino).is_some_and(|n| n.kind == kind)
        {
            return Ok(*ino);
        }
        self.insert(rel, kind, None)
    }

    /// A new inode named `rel` (replacing whatever the name meant before).
    ///
    /// # Errors
    /// `ENFILE` past [`MAX_NODES`].
    pub(crate) fn insert(
        &mut self,
        rel: &Path,
        kind: Kind,
        file: Option<FileId>,
    ) -> Result<u64, i32> {
        if self.by_ino.len() >= MAX_NODES {
            return Err(libc::ENFILE);
        }
        self.unname(rel);
        let ino = self.next_ino;
        self.next_ino += 1;
        self.by_ino.insert(
            ino,
            Node {
                rel: rel.to_path_buf(),
                kind,
                file,
            },
        );
        self.by_path.insert(rel.to_path_buf(), ino);
        Ok(ino)
    }

    /// Adds the name `rel` to inode `ino` (a hard link).
    pub(crate) fn link(&mut self, ino: u64, rel: &Path) {
        self.unname(rel);
        self.by_path.insert(rel.to_path_buf(), ino);
    }

    /// Removes the name `rel`; its inode keeps another name if it has one, and stays
    /// reachable by number (open files) with its last name otherwise.
    pub(crate) fn unname(&mut self, rel: &Path) {
        let Some(ino) = self.by_path.remove(rel) else {
            return;
        };
        let other = self
            .by_path
            .iter()
            .find(|&(_, &i)| i == ino)
            .map(|(p, _)| p.clone());
        if let (Some(node), Some(other)) = (self.by_ino.get_mut(&ino), other) {
            node.rel = other;
        }
    }

    /// Moves the name `from` to `to` (replacing `to`).
    pub(crate) fn rename(&mut self, from: &Path, to: &Path) {
        let Some(ino) = self.by_path.get(from).copied() else {
            return;
        };
        self.unname(to);
        self.by_path.remove(from);
        self.by_path.insert(to.to_path_buf(), ino);
        if let Some(node) = self.by_ino.get_mut(&ino)
            && node.rel == from
        {
            node.rel = to.to_path_buf();
        }
    }

    /// Forgets inodes that have no name (after their last handle closed).
    pub(crate) fn forget(&mut self, ino: u64) {
        if ino != ROOT_INO && !self.by_path.values().any(|&i| i == ino) {
            self.by_ino.remove(&ino);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_renames_links_and_unlinks() {
        let mut n = Nodes::new();
        let a = n.insert(Path::new("a"), Kind::File, Some(0)).unwrap();
        assert_eq!(n.at(Path::new("a"), Kind::File), Ok(a));
        n.rename(Path::new("a"), Path::new("b"));
        assert_eq!(n.ino_of(Path::new("a")), None);
        assert_eq!(n.ino_of(Path::new("b")), Some(a));
        assert_eq!(n.get(a).unwrap().rel, Path::new("b"));
        n.link(a, Path::new("c"));
        n.unname(Path::new("b"));
        assert_eq!(n.get(a).unwrap().rel, Path::new("c"));
        // A rename over an existing name replaces it: the old inode loses that name.
        let d = n.insert(Path::new("d"), Kind::File, Some(1)).unwrap();
        n.rename(Path::new("c"), Path::new("d"));
        assert_eq!(n.ino_of(Path::new("d")), Some(a));
        n.forget(d);
        assert!(n.get(d).is_none());
        // A name of another kind is a new inode, never the old one.
        let dir = n.at(Path::new("d"), Kind::Dir).unwrap();
        assert_ne!(dir, a);
        assert!(dir > d, "inode numbers are never reused");
    }
}
