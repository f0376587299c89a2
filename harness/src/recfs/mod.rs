//! The recording filesystem (`durlab fs`): a passthrough FUSE filesystem over a backing
//! directory that records every operation changing what survives a crash (create, open with
//! `O_TRUNC`, write with its offset and bytes, fsync and fdatasync, directory fsync, rename,
//! unlink, mkdir, rmdir, truncate, fallocate, link) into the crash lab's I/O trace
//! (`docs/format.md`, "I/O trace"), in order, each with a monotonic timestamp. Reads pass
//! through. A server run with its data directory on the mount, unmodified, then gets the same
//! crash images as the engine's recording backend gives the engine.
//!
//! ```no_run
//! use std::path::Path;
//! use durlab_harness::recfs::RecordingMount;
//! # fn main() -> Result<(), durlab_harness::recfs::FsError> {
//! let mount = RecordingMount::mount(Path::new("/tmp/backing"), Path::new("/tmp/mnt"), Path::new("/tmp/io.trace"))?;
//! // ... run redis-server --dir /tmp/mnt, kill it ...
//! mount.unmount()?;
//! # Ok(()) }
//! ```
//!
//! The trace is a file outside the mount, appended with one `write(2)` per entry: it survives
//! SIGKILL of the server and of this process. Paths in it are the mount point's (what the
//! server saw). Failure is never silent: without `/dev/fuse` or the right to mount, mounting
//! fails with the cause; if an append to the trace fails, every later mutating request fails
//! with `EIO` (the server sees an I/O error, the trace misses nothing it acknowledged).
//!
//! Unmounting happens on [`RecordingMount::unmount`] and on drop. A mount left behind by a
//! killed run (its daemon gone: "Transport endpoint is not connected") is detected when the
//! mount point is used again, detached, and reported on stderr.

mod fs;
mod nodes;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use durlab_engine::backend::recording::TraceWriter;
use durlab_engine::clock::now_ns;
use parking_lot::Mutex;

/// Threads serving requests: a stalled fsync holds one, and the server's other threads keep
/// writing through the others (Redis fsyncs from a background thread).
pub const FS_THREADS: usize = 4;

/// Longest sync stall that can be armed.
pub const MAX_STALL: Duration = Duration::from_secs(600);

/// Why the recording filesystem could not be mounted or unmounted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    #[error(
        "FUSE is not available: {path}: {source} (load the fuse kernel module, or run where /dev/fuse exists; durlab never falls back to unrecorded I/O)"
    )]
    NoFuse {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "mounting the recording filesystem at {mountpoint}: {source} (needs root, or fusermount3 from Debian's fuse3 package)"
    )]
    Mount {
        mountpoint: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unmounting {mountpoint}: {source}")]
    Unmount {
        mountpoint: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Counters of what the filesystem recorded.
#[derive(Debug, Default)]
pub struct Stats {
    /// Mutating operations recorded (writes, creates, renames, ...), syncs apart.
    pub ops: AtomicU64,
    /// File and directory syncs recorded.
    pub syncs: AtomicU64,
    /// Bytes written through the mount.
    pub bytes_written: AtomicU64,
    /// Trace appends that failed (after the first, every change is refused).
    pub trace_failures: AtomicU64,
}

/// A sync stall: once armed, the next file fsync or fdatasync is held this long before it
/// reaches the backing file (a disk that stops answering for a while).
#[derive(Debug, Default)]
pub struct Stall {
    armed: Mutex<Option<Duration>>,
    /// [`now_ns`] when the last stall began (0: none yet).
    began_ns: AtomicU64,
}

impl Stall {
    /// Holds the next file sync for `hold` (at most [`MAX_STALL`]).
    pub fn arm(&self, hold: Duration) {
        *self.armed.lock() = Some(hold.min(MAX_STALL));
    }

    /// When the last armed stall began holding a sync ([`now_ns`]), if one has.
    pub fn began_ns(&self) -> Option<u64> {
        match self.began_ns.load(Ordering::Acquire) {
            0 => None,
            t => Some(t),
        }
    }

    fn hold_if_armed(&self) {
        let hold = self.armed.lock().take();
        if let Some(hold) = hold {
            self.began_ns.store(now_ns(), Ordering::Release);
            std::thread::sleep(hold);
        }
    }
}

/// A mounted recording filesystem; unmounted on [`RecordingMount::unmount`] or drop.
#[derive(Debug)]
pub struct RecordingMount {
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
    trace: Arc<TraceWriter>,
    stall: Arc<Stall>,
    stats: Arc<Stats>,
}

impl RecordingMount {
    /// Mounts `backing` (a directory) at `mountpoint` (created if missing; must be empty),
    /// recording to a new trace file `trace` (outside the mount). Files already in `backing`
    /// are recorded as pre-existing. A stale mount at `mountpoint` left by a killed run is
    /// detached first (said on stderr).
    ///
    /// # Errors
    /// [`FsError::NoFuse`] without a usable `/dev/fuse`; [`FsError::Mount`] when the kernel
    /// refuses; [`FsError::Invalid`] for a mount point inside the backing directory or not
    /// empty, or a live mount already there; [`FsError::Io`] naming the path otherwise.
    pub fn mount(
        backing: &Path,
        mountpoint: &Path,
        trace: &Path,
    ) -> Result<RecordingMount, FsError> {
        let io = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| FsError::Io { what, path, source }
        };
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .map_err(|source| FsError::NoFuse {
                path: "/dev/fuse".into(),
                source,
            })?;
        let backing = backing
            .canonicalize()
            .map_err(io("backing directory", backing))?;
        if !backing.is_dir() {
            return Err(FsError::Invalid(format!(
                "backing directory {} is not a directory",
                backing.display()
            )));
        }
        clean_stale(mountpoint)?;
        std::fs::create_dir_all(mountpoint).map_err(io("creating mount point", mountpoint))?;
        let shown = mountpoint
            .canonicalize()
            .map_err(io("mount point", mountpoint))?;
        if shown.starts_with(&backing) || backing.starts_with(&shown) {
            return Err(FsError::Invalid(format!(
                "mount point {} and backing directory {} must not contain each other",
                shown.display(),
                backing.display()
            )));
        }
        if is_mount_point(&shown) {
            return Err(FsError::Invalid(format!(
                "{} is already a mount point (unmount it first: umount {0})",
                shown.display()
            )));
        }
        if std::fs::read_dir(&shown)
            .map_err(io("listing mount point", &shown))?
            .next()
            .is_some()
        {
            return Err(FsError::Invalid(format!(
                "mount point {} is not empty",
                shown.display()
            )));
        }
        if let Some(parent) = trace.parent().filter(|p| !p.as_os_str().is_empty()) {
            let parent = parent
                .canonicalize()
                .map_err(io("trace directory", parent))?;
            if parent.starts_with(&shown) {
                return Err(FsError::Invalid(format!(
                    "the trace {} must be outside the mount point {}",
                    trace.display(),
                    shown.display()
                )));
            }
        }
        let writer = Arc::new(TraceWriter::create(trace).map_err(io("creating trace", trace))?);
        let stall = Arc::new(Stall::default());
        let stats = Arc::new(Stats::default());
        let fs = fs::RecFs::new(
            backing.clone(),
            shown.clone(),
            writer.clone(),
            stall.clone(),
            stats.clone(),
        )
        .map_err(io("recording the existing files of", &backing))?;
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName(format!("durlab:{}", backing.display())),
            fuser::MountOption::Subtype("durlab".into()),
            fuser::MountOption::DefaultPermissions,
            fuser::MountOption::NoAtime,
        ];
        config.n_threads = Some(FS_THREADS);
        config.clone_fd = true;
        let session = fuser::spawn_mount(fs, &shown, &config).map_err(|source| FsError::Mount {
            mountpoint: shown.clone(),
            source,
        })?;
        Ok(RecordingMount {
            session: Some(session),
            mountpoint: shown,
            trace: writer,
            stall,
            stats,
        })
    }

    /// Where it is mounted (canonical): the paths in the trace start here.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The trace file.
    pub fn trace_path(&self) -> &Path {
        self.trace.path()
    }

    /// Entries recorded so far.
    pub fn entries(&self) -> u64 {
        self.trace.entries()
    }

    /// The sync stall control.
    pub fn stall(&self) -> Arc<Stall> {
        self.stall.clone()
    }

    /// What was recorded so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Unmounts and waits for the filesystem's threads. Processes using the mount must have
    /// exited (a killed server has once it was reaped).
    ///
    /// # Errors
    /// [`FsError::Unmount`]; the mount is then detached lazily so that it goes away once
    /// the last user does.
    pub fn unmount(mut self) -> Result<(), FsError> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), FsError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        // A killed process's files are closed once it is gone; its children killed with it
        // may take a moment more: wait for the mount to be free before unmounting.
        let deadline = std::time::Instant::now() + UNMOUNT_WAIT;
        while std::time::Instant::now() < deadline && mount_busy(&self.mountpoint) {
            std::thread::sleep(Duration::from_millis(10));
        }
        session.umount_and_join().map_err(|source| {
            let _ = detach(&self.mountpoint);
            FsError::Unmount {
                mountpoint: self.mountpoint.clone(),
                source,
            }
        })
    }
}

impl Drop for RecordingMount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_inner() {
            eprintln!("durlab fs: {e}");
        }
    }
}

/// How long [`RecordingMount::unmount`] waits for processes to let go of the mount.
const UNMOUNT_WAIT: Duration = Duration::from_secs(10);

/// Whether some process has a file open below `mountpoint` (a scan of `/proc/*/fd`).
fn mount_busy(mountpoint: &Path) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        std::fs::read_dir(p.path().join("fd")).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(mountpoint)))
        })
    })
}

/// Lazily detaches the mount at `path` (`umount -l`).
fn detach(path: &Path) -> io::Result<()> {
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)
}

/// Whether `path` (canonical) is listed as a mount point in `/proc/self/mountinfo`.
fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = escape_mountinfo(path);
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == want))
}

/// `/proc/self/mountinfo` escapes space, tab, newline and backslash as octal.
fn escape_mountinfo(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Detaches a stale FUSE mount at `mountpoint` (one whose daemon is gone), saying so on stderr.
///
/// # Errors
/// [`FsError::Unmount`] when a stale mount is there and cannot be detached.
pub fn clean_stale(mountpoint: &Path) -> Result<(), FsError> {
    match std::fs::metadata(mountpoint) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            detach(mountpoint).map_err(|source| FsError::Unmount {
                mountpoint: mountpoint.to_path_buf(),
                source,
            })?;
            eprintln!(
                "durlab fs: removed a stale mount at {} (left by a run that was killed: \"{e}\")",
                mountpoint.display()
            );
            Ok(())
        }
        _ => Ok(()),
    }
}
