//! The FUSE side of the recording filesystem: the one module that touches `fuser` (pinned:
//! its API changed in 0.17 and 0.18).
//!
//! Every request is served from the backing directory with ordinary system calls. Mutating
//! requests are recorded after the backing call returned and before the reply, so a server
//! that returned from `write(2)` or `fsync(2)` has its operation in the trace. Decisions that
//! keep the record complete:
//!
//! - Files are opened with `FOPEN_DIRECT_IO` and the writeback cache is off: every write
//!   reaches this daemon as it happens, never later from the kernel's cache.
//! - Attribute and entry timeouts are zero, so the kernel asks again after every change.
//! - Backing files are opened without `O_APPEND`: the kernel passes the offset of each write
//!   (the file's size for an `O_APPEND` writer), and that offset is what is recorded.
//! - `fsync`, `fsyncdir` and `flush` are implemented: fuser's defaults answer `ENOSYS`, which
//!   the kernel takes as "success" for every later call, so syncs would go unrecorded.
//! - Namespace operations (create, mkdir, rename, unlink, rmdir, link) run one at a time under
//!   the table's lock, so their order in the trace is the order they took effect. Writes and
//!   syncs run concurrently (the session has several threads): Redis fsyncs from a background
//!   thread while its main thread writes.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use durlab_engine::backend::recording::{FileId, OpRef, TraceWriter};
use durlab_engine::clock::now_ns;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};
use parking_lot::Mutex;

use super::nodes::{Kind, Node, Nodes, ROOT_INO};
use super::{Stall, Stats};

/// Attribute and entry timeout: none (see the module docs).
const TTL: Duration = Duration::ZERO;

/// Most file handles open at once.
const MAX_HANDLES: usize = 1 << 16;

/// An open regular file.
#[derive(Debug)]
struct Handle {
    file: File,
    /// The trace's id of the file.
    id: FileId,
    /// Opened with `O_SYNC` or `O_DSYNC`: every write is also a completed sync.
    sync: bool,
}

/// The filesystem: a backing directory shown at `shown` (the mount point), recorded to
/// `trace`.
#[derive(Debug)]
pub(crate) struct RecFs {
    backing: PathBuf,
    shown: PathBuf,
    trace: Arc<TraceWriter>,
    nodes: Mutex<Nodes>,
    handles: Mutex<std::collections::HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    stall: Arc<Stall>,
    stats: Arc<Stats>,
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Replies with the error of `r` or runs `ok` with its value.
macro_rules! tri {
    ($r:expr, $reply:expr) => {
        match $r {
            Ok(v) => v,
            Err(e) => {
                $reply.error(e);
                return;
            }
        }
    };
}

impl RecFs {
    /// A filesystem over `backing` whose trace paths are under `shown`; records every file
    /// already in `backing` as pre-existing.
    ///
    /// # Errors
    /// A backing file that cannot be read, or a trace append that fails.
    pub(crate) fn new(
        backing: PathBuf,
        shown: PathBuf,
        trace: Arc<TraceWriter>,
        stall: Arc<Stall>,
        stats: Arc<Stats>,
    ) -> io::Result<RecFs> {
        let fs = RecFs {
            backing,
            shown,
            trace,
            nodes: Mutex::new(Nodes::new()),
            handles: Mutex::new(Default::default()),
            next_fh: AtomicU64::new(1),
            stall,
            stats,
        };
        fs.record_existing(Path::new(""))?;
        Ok(fs)
    }

    /// Walks the backing directory below `rel`: every regular file becomes a node known to
    /// the trace (pre-existing, with its content); directories are durable as found.
    fn record_existing(&self, rel: &Path) -> io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(self.backing.join(rel))?
            .collect::<Result<_, _>>()
            .map_err(|e| io::Error::new(e.kind(), format!("listing {}: {e}", rel.display())))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let child = rel.join(e.file_name());
            let meta = fs::symlink_metadata(self.backing.join(&child))?;
            match Kind::of(&meta) {
                Kind::Dir => {
                    self.nodes.lock().at(&child, Kind::Dir).map_err(os)?;
                    self.record_existing(&child)?;
                }
                Kind::File => {
                    let mut nodes = self.nodes.lock();
                    self.known_file(&mut nodes, &child)?;
                }
                Kind::Other => {}
            }
        }
        Ok(())
    }

    /// The node of the regular file at `rel`, recorded as pre-existing if the trace has not
    /// seen it (a file that appeared in the backing directory behind the mount).
    fn known_file(&self, nodes: &mut Nodes, rel: &Path) -> io::Result<(u64, FileId)> {
        let ino = nodes.at(rel, Kind::File).map_err(os)?;
        if let Some(id) = nodes.get(ino).and_then(|n| n.file) {
            return Ok((ino, id));
        }
        let id = self.trace.new_file_id()?;
        let file = File::open(self.backing.join(rel))?;
        let len = file.metadata()?.len();
        self.trace
            .preexisting(id, &self.shown.join(rel), len, |buf, at| {
                file.read_exact_at(buf, at)
            })?;
        if let Some(n) = nodes.get_mut(ino) {
            n.file = Some(id);
        }
        Ok((ino, id))
    }

    fn node(&self, ino: INodeNo) -> Result<Node, Errno> {
        self.nodes.lock().get(ino.0).cloned().ok_or(Errno::ENOENT)
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<Handle>, Errno> {
        self.handles.lock().get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn add_handle(&self, h: Handle) -> Result<FileHandle, Errno> {
        let mut handles = self.handles.lock();
        if handles.len() >= MAX_HANDLES {
            return Err(Errno::from_i32(libc::ENFILE));
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        handles.insert(fh, Arc::new(h));
        Ok(FileHandle(fh))
    }

    /// The child `name` of directory `parent`, relative to the root.
    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        let p = self.node(parent)?;
        if p.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(p.rel.join(name))
    }

    fn attr(&self, ino: u64, meta: &fs::Metadata) -> FileAttr {
        let time = |s: i64, ns: i64| {
            if s >= 0 {
                UNIX_EPOCH + Duration::new(s as u64, ns as u32)
            } else {
                UNIX_EPOCH
            }
        };
        let kind = if meta.is_dir() {
            FileType::Directory
        } else if meta.file_type().is_symlink() {
            FileType::Symlink
        } else {
            FileType::RegularFile
        };
        FileAttr {
            ino: INodeNo(ino),
            size: meta.len(),
            blocks: meta.blocks(),
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind,
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev() as u32,
            blksize: meta.blksize() as u32,
            flags: 0,
        }
    }

    /// Looks `rel` up in the backing directory and returns its node and attributes.
    fn entry(&self, nodes: &mut Nodes, rel: &Path) -> Result<FileAttr, Errno> {
        let meta = fs::symlink_metadata(self.backing.join(rel)).map_err(|e| errno(&e))?;
        let ino = match Kind::of(&meta) {
            Kind::File => self.known_file(nodes, rel).map_err(|e| self.failed(e))?.0,
            kind => nodes.at(rel, kind).map_err(Errno::from_i32)?,
        };
        Ok(self.attr(ino, &meta))
    }

    /// Appends trace entries; a failure is reported on stderr once (the writer then refuses
    /// every later append, and every later mutating request fails with `EIO`).
    fn record(
        &self,
        f: impl FnOnce(&mut durlab_engine::backend::recording::Appender<'_>) -> io::Result<()>,
    ) -> Result<(), Errno> {
        self.trace.append(f).map_err(|e| self.failed(e))
    }

    fn failed(&self, e: io::Error) -> Errno {
        if self.stats.trace_failures.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("durlab fs: recording failed, refusing further changes: {e}");
        }
        Errno::EIO
    }

    fn shown(&self, rel: &Path) -> PathBuf {
        self.shown.join(rel)
    }

    /// Opens the backing file `rel` for `flags` (access mode, `O_SYNC`/`O_DSYNC`; never
    /// `O_APPEND`: offsets come from the kernel).
    fn open_backing(&self, rel: &Path, flags: i32, create_mode: Option<u32>) -> io::Result<File> {
        let acc = flags & libc::O_ACCMODE;
        let mut o = OpenOptions::new();
        o.read(acc == libc::O_RDONLY || acc == libc::O_RDWR)
            .write(acc == libc::O_WRONLY || acc == libc::O_RDWR)
            .custom_flags(libc::O_CLOEXEC | (flags & (libc::O_SYNC | libc::O_DSYNC)));
        if let Some(mode) = create_mode {
            o.create_new(true).mode(mode).write(true);
        }
        o.open(self.backing.join(rel))
    }
}

fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Filesystem for RecFs {
    fn init(&mut self, _req: &Request, _config: &mut KernelConfig) -> io::Result<()> {
        // fuser's defaults ask for neither the writeback cache nor atomic O_TRUNC: writes
        // arrive as they happen and O_TRUNC arrives as a setattr of size 0.
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let rel = tri!(self.child(parent, name), reply);
        let mut nodes = self.nodes.lock();
        let attr = tri!(self.entry(&mut nodes, &rel), reply);
        reply.entry(&TTL, &attr, Generation(0));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let meta = match fh.map(|fh| self.handle(fh)) {
            Some(Ok(h)) => h.file.metadata(),
            _ => {
                let node = tri!(self.node(ino), reply);
                fs::symlink_metadata(self.backing.join(&node.rel))
            }
        };
        let meta = tri!(meta.map_err(|e| errno(&e)), reply);
        reply.attr(&TTL, &self.attr(ino.0, &meta));
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let node = tri!(self.node(ino), reply);
        let path = self.backing.join(&node.rel);
        if let Some(len) = size {
            if node.kind != Kind::File {
                reply.error(Errno::EISDIR);
                return;
            }
            let file = match fh.map(|fh| self.handle(fh)) {
                Some(Ok(h)) => h,
                _ => {
                    let f = tri!(
                        OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(|e| errno(&e)),
                        reply
                    );
                    let id = {
                        let mut nodes = self.nodes.lock();
                        tri!(
                            self.known_file(&mut nodes, &node.rel)
                                .map_err(|e| self.failed(e)),
                            reply
                        )
                        .1
                    };
                    Arc::new(Handle {
                        file: f,
                        id,
                        sync: false,
                    })
                }
            };
            tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
            tri!(file.file.set_len(len).map_err(|e| errno(&e)), reply);
            tri!(self.record(|a| a.push(OpRef::SetLen(file.id, len))), reply);
            self.stats.ops.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(mode) = mode {
            tri!(
                fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(|e| errno(&e)),
                reply
            );
        }
        if atime.is_some() || mtime.is_some() {
            let t = |t: Option<TimeOrNow>| match t {
                None => nix::sys::time::TimeSpec::new(0, libc::UTIME_OMIT),
                Some(TimeOrNow::Now) => nix::sys::time::TimeSpec::new(0, libc::UTIME_NOW),
                Some(TimeOrNow::SpecificTime(st)) => {
                    let d = st.duration_since(UNIX_EPOCH).unwrap_or_default();
                    nix::sys::time::TimeSpec::new(d.as_secs() as i64, d.subsec_nanos() as i64)
                }
            };
            tri!(
                nix::sys::stat::utimensat(
                    nix::fcntl::AT_FDCWD,
                    &path,
                    &t(atime),
                    &t(mtime),
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| Errno::from_i32(e as i32)),
                reply
            );
        }
        let meta = tri!(fs::symlink_metadata(&path).map_err(|e| errno(&e)), reply);
        reply.attr(&TTL, &self.attr(ino.0, &meta));
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // Regular files are made by `create`; special files have no place in a data directory.
        reply.error(Errno::EPERM);
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let rel = tri!(self.child(parent, name), reply);
        let mut nodes = self.nodes.lock();
        tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
        tri!(
            fs::DirBuilder::new()
                .mode(mode & !umask & 0o7777)
                .create(self.backing.join(&rel))
                .map_err(|e| errno(&e)),
            reply
        );
        tri!(
            self.record(|a| a.push(OpRef::MkDir(&self.shown(&rel)))),
            reply
        );
        self.stats.ops.fetch_add(1, Ordering::Relaxed);
        let ino = tri!(
            nodes.insert(&rel, Kind::Dir, None).map_err(Errno::from_i32),
            reply
        );
        let meta = tri!(
            fs::symlink_metadata(self.backing.join(&rel)).map_err(|e| errno(&e)),
            reply
        );
        reply.entry(&TTL, &self.attr(ino, &meta), Generation(0));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let rel = tri!(self.child(parent, name), reply);
        let mut nodes = self.nodes.lock();
        let meta = tri!(
            fs::symlink_metadata(self.backing.join(&rel)).map_err(|e| errno(&e)),
            reply
        );
        if Kind::of(&meta) == Kind::File {
            tri!(
                self.known_file(&mut nodes, &rel)
                    .map_err(|e| self.failed(e)),
                reply
            );
        }
        tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
        tri!(
            fs::remove_file(self.backing.join(&rel)).map_err(|e| errno(&e)),
            reply
        );
        if Kind::of(&meta) == Kind::File {
            tri!(
                self.record(|a| a.push(OpRef::Remove(&self.shown(&rel)))),
                reply
            );
            self.stats.ops.fetch_add(1, Ordering::Relaxed);
        }
        // The inode stays while the kernel may still use it (open handles); `release`
        // forgets it once it has no name.
        nodes.unname(&rel);
        reply.ok();
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let rel = tri!(self.child(parent, name), reply);
        let mut nodes = self.nodes.lock();
        tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
        tri!(
            fs::remove_dir(self.backing.join(&rel)).map_err(|e| errno(&e)),
            reply
        );
        tri!(
            self.record(|a| a.push(OpRef::RemoveDir(&self.shown(&rel)))),
            reply
        );
        self.stats.ops.fetch_add(1, Ordering::Relaxed);
        if let Some(ino) = nodes.ino_of(&rel) {
            nodes.unname(&rel);
            nodes.forget(ino);
        }
        reply.ok();
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let from = tri!(self.child(parent, name), reply);
        let to = tri!(self.child(newparent, newname), reply);
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            reply.error(Errno::EINVAL);
            return;
        }
        let mut nodes = self.nodes.lock();
        let (bf, bt) = (self.backing.join(&from), self.backing.join(&to));
        let meta = tri!(fs::symlink_metadata(&bf).map_err(|e| errno(&e)), reply);
        if Kind::of(&meta) == Kind::Dir {
            // Not modelled by the crash images (every name below would move); `mv` copies
            // across "devices" instead, which is recorded file by file.
            reply.error(Errno::from_i32(libc::EXDEV));
            return;
        }
        if flags.contains(RenameFlags::RENAME_NOREPLACE) && fs::symlink_metadata(&bt).is_ok() {
            reply.error(Errno::EEXIST);
            return;
        }
        let file = Kind::of(&meta) == Kind::File;
        if file {
            tri!(
                self.known_file(&mut nodes, &from)
                    .map_err(|e| self.failed(e)),
                reply
            );
            if fs::symlink_metadata(&bt).is_ok_and(|m| m.is_file()) {
                tri!(
                    self.known_file(&mut nodes, &to).map_err(|e| self.failed(e)),
                    reply
                );
            }
        }
        tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
        tri!(fs::rename(&bf, &bt).map_err(|e| errno(&e)), reply);
        if file {
            tri!(
                self.record(|a| a.push(OpRef::Rename(&self.shown(&from), &self.shown(&to)))),
                reply
            );
            self.stats.ops.fetch_add(1, Ordering::Relaxed);
        }
        nodes.rename(&from, &to);
        reply.ok();
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let node = tri!(self.node(ino), reply);
        let to = tri!(self.child(newparent, newname), reply);
        if node.kind != Kind::File {
            reply.error(Errno::EPERM);
            return;
        }
        let mut nodes = self.nodes.lock();
        tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
        tri!(
            fs::hard_link(self.backing.join(&node.rel), self.backing.join(&to))
                .map_err(|e| errno(&e)),
            reply
        );
        tri!(
            self.record(|a| a.push(OpRef::Link(&self.shown(&node.rel), &self.shown(&to)))),
            reply
        );
        self.stats.ops.fetch_add(1, Ordering::Relaxed);
        nodes.link(ino.0, &to);
        let meta = tri!(
            fs::symlink_metadata(self.backing.join(&to)).map_err(|e| errno(&e)),
            reply
        );
        reply.entry(&TTL, &self.attr(ino.0, &meta), Generation(0));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let node = tri!(self.node(ino), reply);
        if node.kind != Kind::File {
            reply.error(Errno::EISDIR);
            return;
        }
        let id = {
            let mut nodes = self.nodes.lock();
            tri!(
                self.known_file(&mut nodes, &node.rel)
                    .map_err(|e| self.failed(e)),
                reply
            )
            .1
        };
        let file = tri!(
            self.open_backing(&node.rel, flags.0, None)
                .map_err(|e| errno(&e)),
            reply
        );
        let sync = flags.0 & (libc::O_SYNC | libc::O_DSYNC) != 0;
        let fh = tri!(self.add_handle(Handle { file, id, sync }), reply);
        reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO);
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let rel = tri!(self.child(parent, name), reply);
        let mut nodes = self.nodes.lock();
        tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
        let exists = fs::symlink_metadata(self.backing.join(&rel)).is_ok();
        let (file, ino, id) = if exists {
            // Raced with a name that appeared: an open of the existing file.
            if flags & libc::O_EXCL != 0 {
                reply.error(Errno::EEXIST);
                return;
            }
            let (ino, id) = tri!(
                self.known_file(&mut nodes, &rel)
                    .map_err(|e| self.failed(e)),
                reply
            );
            let f = tri!(
                self.open_backing(&rel, flags, None).map_err(|e| errno(&e)),
                reply
            );
            if flags & libc::O_TRUNC != 0 {
                tri!(f.set_len(0).map_err(|e| errno(&e)), reply);
                tri!(self.record(|a| a.push(OpRef::SetLen(id, 0))), reply);
            }
            (f, ino, id)
        } else {
            let f = tri!(
                self.open_backing(&rel, flags, Some(mode & !umask & 0o7777))
                    .map_err(|e| errno(&e)),
                reply
            );
            let id = tri!(self.trace.new_file_id().map_err(|e| self.failed(e)), reply);
            tri!(
                self.record(|a| a.push(OpRef::Create(id, &self.shown(&rel)))),
                reply
            );
            let ino = tri!(
                nodes
                    .insert(&rel, Kind::File, Some(id))
                    .map_err(Errno::from_i32),
                reply
            );
            (f, ino, id)
        };
        self.stats.ops.fetch_add(1, Ordering::Relaxed);
        drop(nodes);
        let meta = tri!(file.metadata().map_err(|e| errno(&e)), reply);
        let attr = self.attr(ino, &meta);
        let sync = flags & (libc::O_SYNC | libc::O_DSYNC) != 0;
        let fh = tri!(self.add_handle(Handle { file, id, sync }), reply);
        reply.created(&TTL, &attr, Generation(0), fh, FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let h = tri!(self.handle(fh), reply);
        let mut buf = vec![0u8; size as usize];
        let mut got = 0;
        while got < buf.len() {
            match h.file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    reply.error(errno(&e));
                    return;
                }
            }
        }
        reply.data(&buf[..got]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let h = tri!(self.handle(fh), reply);
        tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
        tri!(
            h.file.write_all_at(data, offset).map_err(|e| errno(&e)),
            reply
        );
        tri!(
            self.record(|a| {
                if !data.is_empty() {
                    a.push_write(h.id, offset, data)?;
                }
                if h.sync {
                    // O_SYNC: the write returned synced; the sync covers it and nothing later.
                    let begin_seq = a.next_seq();
                    a.push(OpRef::SyncData(h.id, begin_seq, now_ns()))?;
                }
                Ok(())
            }),
            reply
        );
        self.stats.ops.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_written
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        reply.written(data.len() as u32);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2): nothing is buffered here (direct I/O), so nothing to write.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.handles.lock().remove(&fh.0);
        self.nodes.lock().forget(ino.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let h = tri!(self.handle(fh), reply);
        tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
        // The sync covers what was recorded before it began (pessimistic for racing writes).
        let (begin_seq, begin_ns) = self.trace.begin();
        self.stall.hold_if_armed();
        let r = if datasync {
            h.file.sync_data()
        } else {
            h.file.sync_all()
        };
        tri!(r.map_err(|e| errno(&e)), reply);
        tri!(
            self.record(|a| a.push(OpRef::SyncData(h.id, begin_seq, begin_ns))),
            reply
        );
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let node = tri!(self.node(ino), reply);
        if node.kind != Kind::Dir {
            reply.error(Errno::ENOTDIR);
            return;
        }
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let node = tri!(self.node(ino), reply);
        let list = tri!(
            fs::read_dir(self.backing.join(&node.rel))
                .and_then(|d| d.collect::<Result<Vec<_>, _>>())
                .map_err(|e| errno(&e)),
            reply
        );
        let mut names: Vec<_> = list.into_iter().map(|e| e.file_name()).collect();
        names.sort();
        let mut nodes = self.nodes.lock();
        let parent = if ino.0 == ROOT_INO {
            ROOT_INO
        } else {
            node.rel
                .parent()
                .and_then(|p| nodes.ino_of(p))
                .unwrap_or(ROOT_INO)
        };
        let mut entries = vec![
            (ino.0, FileType::Directory, OsStr::new(".").to_os_string()),
            (parent, FileType::Directory, OsStr::new("..").to_os_string()),
        ];
        for name in names {
            let rel = node.rel.join(&name);
            let Ok(meta) = fs::symlink_metadata(self.backing.join(&rel)) else {
                continue;
            };
            let kind = Kind::of(&meta);
            let Ok(child) = nodes.at(&rel, kind) else {
                break;
            };
            let t = match kind {
                Kind::Dir => FileType::Directory,
                Kind::File => FileType::RegularFile,
                Kind::Other => FileType::Symlink,
            };
            entries.push((child, t, name));
        }
        drop(nodes);
        for (i, (child, t, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), (i + 1) as u64, t, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let node = tri!(self.node(ino), reply);
        tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
        let (begin_seq, begin_ns) = self.trace.begin();
        tri!(
            File::open(self.backing.join(&node.rel))
                .and_then(|d| d.sync_all())
                .map_err(|e| errno(&e)),
            reply
        );
        tri!(
            self.record(|a| a.push(OpRef::SyncDir(&self.shown(&node.rel), begin_seq, begin_ns))),
            reply
        );
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = tri!(
            nix::sys::statvfs::statvfs(&self.backing).map_err(|e| Errno::from_i32(e as i32)),
            reply
        );
        reply.statfs(
            s.blocks(),
            s.blocks_free(),
            s.blocks_available(),
            s.files(),
            s.files_free(),
            s.block_size() as u32,
            s.name_max() as u32,
            s.fragment_size() as u32,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        tri!(self.node(ino), reply);
        reply.ok();
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let h = tri!(self.handle(fh), reply);
        // Mode 0 grows the file (recorded); KEEP_SIZE only reserves blocks (nothing a crash
        // image can show). Punching or zeroing ranges is refused rather than left unrecorded.
        if mode != 0 && mode != libc::FALLOC_FL_KEEP_SIZE {
            reply.error(Errno::from_i32(libc::EOPNOTSUPP));
            return;
        }
        tri!(self.trace.check().map_err(|e| self.failed(e)), reply);
        let flags = nix::fcntl::FallocateFlags::from_bits_truncate(mode);
        tri!(
            nix::fcntl::fallocate(&h.file, flags, offset as i64, length as i64)
                .map_err(|e| Errno::from_i32(e as i32)),
            reply
        );
        if mode == 0 && length > 0 {
            tri!(
                self.record(|a| a.push(OpRef::Allocate(h.id, offset, length))),
                reply
            );
            self.stats.ops.fetch_add(1, Ordering::Relaxed);
        }
        reply.ok();
    }
}
