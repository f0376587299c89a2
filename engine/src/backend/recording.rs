//! A backend that records every mutating file operation to a trace, from which the crash lab
//! builds crash images (power loss, torn and reordered writes, lost directory entries).
//!
//! [`RecordingBackend`] wraps a real backend: every operation is performed by the inner
//! backend, then appended to the trace file with one `write(2)` on an `O_APPEND` descriptor
//! (no user-space buffering), before the call returns. The page cache survives `kill -9`, so
//! the trace holds every operation that returned before the process died, plus at most one
//! partial entry, which the reader detects and ignores. Byte layout: `docs/format.md`,
//! "I/O trace"; reader: [`read_trace`].
//!
//! # Ordering guarantees
//!
//! - A write (and `set_len`, `allocate`) is appended after it returned: its bytes were in the
//!   page cache by then.
//! - A sync (`sync_data`, `sync_dir`) is appended after it completed and carries `begin_seq`,
//!   the sequence number the next entry would have received when the sync started. It covers
//!   exactly the entries with `seq < begin_seq`; a write that raced with the sync is treated as
//!   not covered even if it was (pessimistic, never optimistic). The engine acknowledges after
//!   the backend call returns, hence after its entry was appended, so every write the engine
//!   counts as synced is before `begin_seq`.
//! - `write_all_at_sync` is appended as a write followed by a sync whose `begin_seq` is just
//!   after the write.
//! - Creates, opens, renames and removes are serialised with their entries, so the trace's
//!   order is the order in which they took effect.
//! - Failed operations are not recorded (a failed write may have left some bytes in the page
//!   cache; the engine is poisoned by it and acknowledges nothing after it).
//! - If appending to the trace fails, the operation returns an error naming the trace, and
//!   every later operation fails before reaching the inner backend: the trace never silently
//!   misses an operation that the engine saw succeed.
//!
//! Files the recorder has not seen created (a data directory from an earlier run) are copied
//! into the trace when first opened, renamed or removed ([`trace::Op::Preexisting`]), so that
//! images can be materialised without the original directory. Paths are recorded absolute
//! (`std::path::absolute`, without resolving symlinks); the image builder maps them to a new
//! root.

pub mod trace;

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Backend, BackendFile, OpenMode, read_exact_at};
use crate::clock::now_ns;
pub use trace::{
    Entry, FileId, Op, OpRef, Segment, TornTail, Trace, TraceError, data_len, decode_trace,
    read_trace,
};
use trace::{EntryBuf, WRITE_CHUNK_BYTES};

/// Most file handles one trace may open.
pub const MAX_FILES: u32 = 1 << 20;
/// Largest pre-existing file copied into a trace (64 GiB).
pub const MAX_PREEXISTING_BYTES: u64 = 64 << 30;

/// Wraps a real backend and records its mutating operations (see the module docs).
#[derive(Debug)]
pub struct RecordingBackend {
    inner: Arc<dyn Backend>,
    rec: Arc<TraceWriter>,
    /// Paths that exist as far as the trace knows; guards (and orders) namespace operations.
    known: Mutex<HashSet<PathBuf>>,
}

/// Appends entries to a trace file: what [`RecordingBackend`] records with, and what any
/// other recorder (the crash lab's recording filesystem) uses to write the same format.
///
/// Every entry is appended with one `write(2)` on an `O_APPEND` descriptor while a lock is
/// held, so entries are numbered in the order they were appended and the file survives a
/// SIGKILL of the process with at most one partial entry. Once an append fails, every later
/// append fails too ([`TraceWriter::check`]): a trace never silently misses an operation.
#[derive(Debug)]
pub struct TraceWriter {
    path: PathBuf,
    state: Mutex<RecState>,
}

#[derive(Debug)]
struct RecState {
    file: File,
    next_seq: u64,
    end_bytes: u64,
    next_file: FileId,
    buf: EntryBuf,
    failed: Option<String>,
}

impl RecordingBackend {
    /// Creates the trace file `trace_path` (it must not exist) and wraps `inner`.
    ///
    /// # Errors
    /// `AlreadyExists` if `trace_path` exists; any error creating or writing its header.
    pub fn new(inner: Arc<dyn Backend>, trace_path: &Path) -> io::Result<RecordingBackend> {
        Ok(RecordingBackend {
            inner,
            rec: Arc::new(TraceWriter::create(trace_path)?),
            known: Mutex::new(HashSet::new()),
        })
    }

    /// The trace file.
    pub fn trace_path(&self) -> &Path {
        self.rec.path()
    }

    /// Entries appended so far.
    pub fn entries(&self) -> u64 {
        self.rec.entries()
    }

    /// Copies the file at `path` (opened as `file`) into the trace as pre-existing.
    fn snapshot(&self, id: FileId, path: &Path, file: &dyn BackendFile) -> io::Result<()> {
        let len = file.len()?;
        self.rec
            .preexisting(id, path, len, |buf, at| read_exact_at(file, buf, at))
    }

    /// Snapshots `path` if it exists and the trace does not know it.
    fn snapshot_if_unknown(&self, known: &mut HashSet<PathBuf>, path: &Path) -> io::Result<()> {
        if known.contains(path) {
            return Ok(());
        }
        let file = match self.inner.open(path, OpenMode::Existing) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let id = self.rec.new_file_id()?;
        self.snapshot(id, path, file.as_ref())?;
        known.insert(path.to_path_buf());
        Ok(())
    }
}

impl Backend for RecordingBackend {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn BackendFile>> {
        self.rec.check()?;
        let path = std::path::absolute(path)?;
        let mut known = self.known.lock();
        let inner = self.inner.open(&path, mode)?;
        let id = self.rec.new_file_id()?;
        match mode {
            OpenMode::CreateNew => self.rec.append(|a| a.push(OpRef::Create(id, &path)))?,
            OpenMode::Existing if known.contains(&path) => {
                self.rec.append(|a| a.push(OpRef::Open(id, &path)))?
            }
            OpenMode::Existing => self.snapshot(id, &path, inner.as_ref())?,
        }
        known.insert(path);
        Ok(Arc::new(RecordingFile {
            inner,
            id,
            rec: self.rec.clone(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rec.check()?;
        let (from, to) = (std::path::absolute(from)?, std::path::absolute(to)?);
        let mut known = self.known.lock();
        self.snapshot_if_unknown(&mut known, &from)?;
        self.snapshot_if_unknown(&mut known, &to)?;
        self.inner.rename(&from, &to)?;
        self.rec.append(|a| a.push(OpRef::Rename(&from, &to)))?;
        known.remove(&from);
        known.insert(to);
        Ok(())
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rec.check()?;
        let (from, to) = (std::path::absolute(from)?, std::path::absolute(to)?);
        let mut known = self.known.lock();
        self.snapshot_if_unknown(&mut known, &from)?;
        self.inner.hard_link(&from, &to)?;
        self.rec.append(|a| a.push(OpRef::Link(&from, &to)))?;
        known.insert(to);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.rec.check()?;
        let path = std::path::absolute(path)?;
        let mut known = self.known.lock();
        self.snapshot_if_unknown(&mut known, &path)?;
        self.inner.remove(&path)?;
        self.rec.append(|a| a.push(OpRef::Remove(&path)))?;
        known.remove(&path);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.rec.check()?;
        let dir = std::path::absolute(dir)?;
        let (begin_seq, begin_ns) = self.rec.begin();
        self.inner.sync_dir(&dir)?;
        self.rec
            .append(|a| a.push(OpRef::SyncDir(&dir, begin_seq, begin_ns)))
    }

    fn name(&self) -> String {
        format!("recording({})", self.inner.name())
    }
}

/// A file opened through [`RecordingBackend`].
#[derive(Debug)]
struct RecordingFile {
    inner: Arc<dyn BackendFile>,
    id: FileId,
    rec: Arc<TraceWriter>,
}

impl BackendFile for RecordingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.rec.check()?;
        self.inner.write_all_at(buf, offset)?;
        if buf.is_empty() {
            return Ok(());
        }
        self.rec.append(|a| a.push_write(self.id, offset, buf))
    }

    fn write_all_at_sync(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.rec.check()?;
        self.inner.write_all_at_sync(buf, offset)?;
        self.rec.append(|a| {
            if !buf.is_empty() {
                a.push_write(self.id, offset, buf)?;
            }
            let begin_seq = a.next_seq();
            a.push(OpRef::SyncData(self.id, begin_seq, now_ns()))
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.rec.check()?;
        let (begin_seq, begin_ns) = self.rec.begin();
        self.inner.sync_data()?;
        self.rec
            .append(|a| a.push(OpRef::SyncData(self.id, begin_seq, begin_ns)))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.rec.check()?;
        self.inner.set_len(len)?;
        self.rec.append(|a| a.push(OpRef::SetLen(self.id, len)))
    }

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.rec.check()?;
        self.inner.allocate(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        self.rec
            .append(|a| a.push(OpRef::Allocate(self.id, offset, len)))
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

/// Appends entries while the writer's lock is held (see [`TraceWriter::append`]).
#[derive(Debug)]
pub struct Appender<'a> {
    st: &'a mut RecState,
    path: &'a Path,
}

impl Appender<'_> {
    /// The sequence number the next entry gets.
    pub fn next_seq(&self) -> u64 {
        self.st.next_seq
    }

    /// Appends `buf` written to `file` at `offset` as write entries of at most
    /// [`WRITE_CHUNK_BYTES`] each.
    ///
    /// # Errors
    /// As [`Appender::push`].
    pub fn push_write(&mut self, file: FileId, offset: u64, buf: &[u8]) -> io::Result<()> {
        for (i, chunk) in buf.chunks(WRITE_CHUNK_BYTES).enumerate() {
            let at = offset + (i * WRITE_CHUNK_BYTES) as u64;
            self.push(OpRef::Write(file, at, chunk))?;
        }
        Ok(())
    }

    /// Encodes and appends one entry with one `write(2)` (looping only on short writes).
    ///
    /// # Errors
    /// A path over the trace's limit, or the write error (naming the trace and the offset);
    /// after a write error the writer refuses every later append.
    pub fn push(&mut self, op: OpRef<'_>) -> io::Result<()> {
        let st = &mut *self.st;
        let offset = st.end_bytes;
        let entry = st.buf.encode(st.next_seq, now_ns(), op)?;
        if let Err(e) = (&st.file).write_all(entry) {
            let err = annotate(e, self.path, "append to", offset);
            st.failed = Some(err.to_string());
            return Err(err);
        }
        st.end_bytes += entry.len() as u64;
        st.next_seq += 1;
        Ok(())
    }
}

impl TraceWriter {
    /// Creates the trace file `trace_path` (it must not exist) and writes its header.
    ///
    /// # Errors
    /// `AlreadyExists` if `trace_path` exists; any error creating or writing its header.
    pub fn create(trace_path: &Path) -> io::Result<TraceWriter> {
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(trace_path)
            .map_err(|e| annotate(e, trace_path, "create", 0))?;
        let header = trace::encode_header(now_ns());
        file.write_all(&header)
            .map_err(|e| annotate(e, trace_path, "write header of", 0))?;
        Ok(TraceWriter {
            path: trace_path.to_path_buf(),
            state: Mutex::new(RecState {
                file,
                next_seq: 0,
                end_bytes: header.len() as u64,
                next_file: 0,
                buf: EntryBuf::default(),
                failed: None,
            }),
        })
    }

    /// The trace file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries appended so far.
    pub fn entries(&self) -> u64 {
        self.state.lock().next_seq
    }

    /// Fails once an append has failed.
    ///
    /// # Errors
    /// "recording stopped after an earlier failure", naming the first failure.
    pub fn check(&self) -> io::Result<()> {
        match &self.state.lock().failed {
            Some(cause) => Err(stopped(cause)),
            None => Ok(()),
        }
    }

    /// The sequence number and time at which a sync begins: the sync entry appended after
    /// it completes carries them, and covers exactly the entries numbered below.
    pub fn begin(&self) -> (u64, u64) {
        let st = self.state.lock();
        (st.next_seq, now_ns())
    }

    /// Records the file at `path` (id `id`, `len` bytes, read with `read_exact_at`) as
    /// pre-existing: a preexisting entry, then base data for every chunk that is not all zero.
    ///
    /// # Errors
    /// A file over [`MAX_PREEXISTING_BYTES`], a read error, or an append error.
    pub fn preexisting(
        &self,
        id: FileId,
        path: &Path,
        len: u64,
        mut read_exact_at: impl FnMut(&mut [u8], u64) -> io::Result<()>,
    ) -> io::Result<()> {
        if len > MAX_PREEXISTING_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} has {len} bytes, over the {MAX_PREEXISTING_BYTES}-byte limit for \
                     pre-existing files copied into the trace {}",
                    path.display(),
                    self.path.display()
                ),
            ));
        }
        self.append(|a| a.push(OpRef::Preexisting(id, path, len)))?;
        let mut buf = vec![0u8; WRITE_CHUNK_BYTES.min(len as usize)];
        let mut at = 0u64;
        while at < len {
            let n = buf.len().min((len - at) as usize);
            read_exact_at(&mut buf[..n], at)?;
            if buf[..n].iter().any(|&b| b != 0) {
                self.append(|a| a.push(OpRef::BaseData(id, at, &buf[..n])))?;
            }
            at += n as u64;
        }
        Ok(())
    }

    /// A new file id (dense from 0).
    ///
    /// # Errors
    /// Past [`MAX_FILES`] ids.
    pub fn new_file_id(&self) -> io::Result<FileId> {
        let mut st = self.state.lock();
        if st.next_file >= MAX_FILES {
            return Err(io::Error::other(format!(
                "trace {} reached its limit of {MAX_FILES} opened files",
                self.path.display()
            )));
        }
        st.next_file += 1;
        Ok(st.next_file - 1)
    }

    /// Runs `f` with the lock held, so its entries are consecutive.
    ///
    /// # Errors
    /// An earlier failure, or what `f` returns.
    pub fn append(&self, f: impl FnOnce(&mut Appender<'_>) -> io::Result<()>) -> io::Result<()> {
        let mut st = self.state.lock();
        if let Some(cause) = &st.failed {
            return Err(stopped(cause));
        }
        f(&mut Appender {
            st: &mut st,
            path: &self.path,
        })
    }
}

fn stopped(cause: &str) -> io::Error {
    io::Error::other(format!(
        "recording stopped after an earlier failure: {cause}"
    ))
}

/// An I/O error that names the trace file and the byte offset.
fn annotate(e: io::Error, path: &Path, op: &str, offset: u64) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("{op} trace {} at byte {offset} failed: {e}", path.display()),
    )
}
