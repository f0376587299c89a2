//! The trace file written by [`super::RecordingBackend`]: a 32-byte header, then one framed
//! entry per mutating file operation. Byte layout: `docs/format.md`, "I/O trace".
//!
//! Each entry is `len u32 | crc32c u32 | seq u64 | t_ns u64 | kind u8 | body`, where `len`
//! counts `kind` and `body` and the CRC32C covers `len`, `seq`, `t_ns`, `kind` and `body`
//! ([`entry_checksum`]). The framing and checksum are the trace's own, sharing no code with the
//! AOF's record encoder: the crash lab judges the AOF from images built from traces, so a bug in
//! the AOF's encoder must not be able to hide in the trace too. The reader ([`read_trace`], [`decode_trace`]) accepts an
//! entry only when its checksum verifies and its sequence number is the next one; a last entry
//! cut short (the writer was killed in the middle of appending it) is reported as
//! [`Trace::torn_tail`] and ignored. It never panics, and allocates at most
//! [`MAX_ENTRY_BYTES`] beyond the entries it returns.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Bytes of the file header.
pub const TRACE_HEADER_BYTES: usize = 32;
/// `"DURLTRC\0"`.
pub const TRACE_MAGIC: [u8; 8] = *b"DURLTRC\0";
/// Format version written and accepted.
pub const TRACE_VERSION: u32 = 1;
/// Bytes before an entry's `kind`.
pub const ENTRY_HEADER_BYTES: usize = 24;
/// Largest `len` (kind + body) of one entry. Writes are split so that every entry fits.
pub const MAX_ENTRY_BYTES: u32 = 8 << 20;
/// Most bytes of a write (or of a pre-existing file's content) described by one entry.
pub const WRITE_CHUNK_BYTES: usize = 4 << 20;
/// Longest path, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Largest offset + length a data entry may reach (256 TiB).
pub const MAX_FILE_BYTES: u64 = 1 << 48;
/// Zero runs at least this long are stored as a length instead of bytes.
pub const ZERO_RUN_MIN_BYTES: usize = 256;

/// Identifies one open file handle within a trace (dense from 0, one per successful open).
pub type FileId = u32;

/// A piece of written data.
#[derive(Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal bytes (never empty).
    Bytes(Vec<u8>),
    /// A run of zero bytes of this length (never 0).
    Zeros(u64),
}

impl Segment {
    /// Bytes this segment covers.
    pub fn len(&self) -> u64 {
        match self {
            Segment::Bytes(b) => b.len() as u64,
            Segment::Zeros(n) => *n,
        }
    }

    /// Never true for a decoded segment.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Bytes(b) => write!(f, "Bytes({})", b.len()),
            Segment::Zeros(n) => write!(f, "Zeros({n})"),
        }
    }
}

/// Total length of a list of segments.
pub fn data_len(data: &[Segment]) -> u64 {
    data.iter().map(Segment::len).sum()
}

/// One recorded operation. Paths are absolute, as the backend saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `open(CreateNew)` created an empty file at `path`, opened as `file`.
    Create { file: FileId, path: PathBuf },
    /// `open(Existing)` of a path the trace already knows (created or snapshotted earlier).
    Open { file: FileId, path: PathBuf },
    /// A file the trace had not seen existed at `path` with `len` bytes: its content follows
    /// in [`Op::BaseData`] entries. It is taken as durable as it was found.
    Preexisting {
        file: FileId,
        path: PathBuf,
        len: u64,
    },
    /// Content of a [`Op::Preexisting`] file (durable by definition; zero ranges are implicit).
    BaseData {
        file: FileId,
        offset: u64,
        data: Vec<Segment>,
    },
    /// A write that returned: its bytes were in the page cache when this entry was appended.
    Write {
        file: FileId,
        offset: u64,
        data: Vec<Segment>,
    },
    /// An `fdatasync` of `file` that completed. It covers the file's writes, `set_len` and
    /// `allocate` entries with `seq < begin_seq` (those that had returned when it started).
    SyncData {
        file: FileId,
        begin_seq: u64,
        begin_ns: u64,
    },
    /// `ftruncate(len)` returned.
    SetLen { file: FileId, len: u64 },
    /// `fallocate(offset, len)` returned (the size grew to at least `offset + len`).
    Allocate { file: FileId, offset: u64, len: u64 },
    /// `rename(from, to)` returned.
    Rename { from: PathBuf, to: PathBuf },
    /// `unlink(path)` returned.
    Remove { path: PathBuf },
    /// An `fsync` of directory `dir` that completed; covers the directory's creates, renames
    /// and removes with `seq < begin_seq`.
    SyncDir {
        dir: PathBuf,
        begin_seq: u64,
        begin_ns: u64,
    },
    /// `mkdir(path)` returned: an empty directory whose entry lives in its parent (durable as
    /// a create in the parent is).
    MkDir { path: PathBuf },
    /// `rmdir(path)` returned.
    RemoveDir { path: PathBuf },
    /// `link(from, to)` returned: a second name for the file at `from`.
    Link { from: PathBuf, to: PathBuf },
}

mod kind {
    pub const CREATE: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const PREEXISTING: u8 = 3;
    pub const BASE_DATA: u8 = 4;
    pub const WRITE: u8 = 5;
    pub const SYNC_DATA: u8 = 6;
    pub const SET_LEN: u8 = 7;
    pub const ALLOCATE: u8 = 8;
    pub const RENAME: u8 = 9;
    pub const REMOVE: u8 = 10;
    pub const SYNC_DIR: u8 = 11;
    pub const MKDIR: u8 = 12;
    pub const REMOVE_DIR: u8 = 13;
    pub const LINK: u8 = 14;
}

const SEG_BYTES: u8 = 0;
const SEG_ZEROS: u8 = 1;

/// One decoded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Dense from 0, in file order (the order the operations were recorded).
    pub seq: u64,
    /// [`crate::clock::now_ns`] when the entry was appended (after the operation returned).
    pub t_ns: u64,
    pub op: Op,
}

/// Bytes at the end of a trace that are not a whole entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Offset of the partial entry.
    pub offset: u64,
    /// Bytes of it that were present.
    pub bytes: u64,
}

/// A whole trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// [`crate::clock::now_ns`] when the trace was created.
    pub start_ns: u64,
    pub entries: Vec<Entry>,
    /// A partial last entry (the recorder was killed while appending it), ignored.
    pub torn_tail: Option<TornTail>,
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    #[error("reading trace {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The bytes at `offset` are not what a recorder writes, and a kill in the middle of an
    /// append cannot explain them.
    #[error("corrupt trace {path} at byte offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// Encodes the file header.
pub fn encode_header(start_ns: u64) -> [u8; TRACE_HEADER_BYTES] {
    let mut out = [0u8; TRACE_HEADER_BYTES];
    out[0..8].copy_from_slice(&TRACE_MAGIC);
    out[8..12].copy_from_slice(&TRACE_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&start_ns.to_le_bytes());
    let crc = crc32c::crc32c(&out[0..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_header(buf: &[u8; TRACE_HEADER_BYTES]) -> Result<u64, String> {
    if buf[0..8] != TRACE_MAGIC {
        return Err("bad magic (not a durlab trace)".into());
    }
    if le_u32(&buf[28..32]) != crc32c::crc32c(&buf[0..28]) {
        return Err("trace header checksum mismatch".into());
    }
    let version = le_u32(&buf[8..12]);
    if version != TRACE_VERSION {
        return Err(format!(
            "unsupported trace version {version} (expected {TRACE_VERSION})"
        ));
    }
    if le_u32(&buf[12..16]) != 0 {
        return Err("unknown trace header flags".into());
    }
    Ok(le_u64(&buf[16..24]))
}

/// The checksum of a complete entry `frame` (header and body): CRC32C of `len` (bytes 0..4)
/// followed by everything after the checksum field (bytes 8..), skipping the checksum itself.
///
/// # Panics
/// Never for a frame of at least [`ENTRY_HEADER_BYTES`] (the only frames built or read).
fn entry_checksum(frame: &[u8]) -> u32 {
    let len_crc = crc32c::crc32c(&frame[0..4]);
    crc32c::crc32c_append(len_crc, &frame[8..])
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

/// Builds entries into a reusable buffer.
#[derive(Debug, Default)]
pub(crate) struct EntryBuf {
    buf: Vec<u8>,
}

impl EntryBuf {
    /// Starts an entry of `kind`; the body follows through the `put_*` methods.
    pub(crate) fn begin(&mut self, seq: u64, t_ns: u64, kind: u8) {
        self.buf.clear();
        self.buf.extend_from_slice(&[0u8; 8]);
        self.buf.extend_from_slice(&seq.to_le_bytes());
        self.buf.extend_from_slice(&t_ns.to_le_bytes());
        self.buf.push(kind);
    }

    fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn put_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn put_path(&mut self, path: &Path) -> io::Result<()> {
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() > MAX_PATH_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "path {} is longer than the trace limit of {MAX_PATH_BYTES} bytes",
                    path.display()
                ),
            ));
        }
        self.put_u32(bytes.len() as u32);
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// `data` as segments, zero runs of [`ZERO_RUN_MIN_BYTES`] or more as lengths.
    /// `data.len()` must be at most [`WRITE_CHUNK_BYTES`].
    fn put_data(&mut self, data: &[u8]) {
        debug_assert!(data.len() <= WRITE_CHUNK_BYTES);
        let count_at = self.buf.len();
        self.put_u32(0);
        let mut count = 0u32;
        let mut lit_start = 0;
        let mut i = 0;
        while i < data.len() {
            if data[i] == 0 {
                let run = data[i..]
                    .iter()
                    .position(|&b| b != 0)
                    .unwrap_or(data.len() - i);
                if run >= ZERO_RUN_MIN_BYTES {
                    if lit_start < i {
                        self.put_literal(&data[lit_start..i]);
                        count += 1;
                    }
                    self.buf.push(SEG_ZEROS);
                    self.put_u64(run as u64);
                    count += 1;
                    lit_start = i + run;
                }
                i += run;
            } else {
                i += data[i..]
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(data.len() - i);
            }
        }
        if lit_start < data.len() {
            self.put_literal(&data[lit_start..]);
            count += 1;
        }
        self.buf[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    }

    fn put_literal(&mut self, bytes: &[u8]) {
        self.buf.push(SEG_BYTES);
        self.put_u32(bytes.len() as u32);
        self.buf.extend_from_slice(bytes);
    }

    /// Fills in length and checksum; returns the finished entry.
    pub(crate) fn finish(&mut self) -> &[u8] {
        let len = (self.buf.len() - ENTRY_HEADER_BYTES) as u32;
        debug_assert!(len <= MAX_ENTRY_BYTES);
        self.buf[0..4].copy_from_slice(&len.to_le_bytes());
        let crc = entry_checksum(&self.buf);
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        &self.buf
    }
}

/// What a [`super::TraceWriter`] appends; mirrors [`Op`] but borrows. Data ops carry at most
/// [`WRITE_CHUNK_BYTES`] (the writer splits longer writes).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum OpRef<'a> {
    Create(FileId, &'a Path),
    Open(FileId, &'a Path),
    Preexisting(FileId, &'a Path, u64),
    BaseData(FileId, u64, &'a [u8]),
    Write(FileId, u64, &'a [u8]),
    SyncData(FileId, u64, u64),
    SetLen(FileId, u64),
    Allocate(FileId, u64, u64),
    Rename(&'a Path, &'a Path),
    Remove(&'a Path),
    SyncDir(&'a Path, u64, u64),
    MkDir(&'a Path),
    RemoveDir(&'a Path),
    Link(&'a Path, &'a Path),
}

impl EntryBuf {
    /// Encodes one entry (a data op must carry at most [`WRITE_CHUNK_BYTES`]).
    ///
    /// # Errors
    /// `InvalidInput` for a path over [`MAX_PATH_BYTES`].
    pub(crate) fn encode(&mut self, seq: u64, t_ns: u64, op: OpRef<'_>) -> io::Result<&[u8]> {
        match op {
            OpRef::Create(file, path) | OpRef::Open(file, path) => {
                let k = if matches!(op, OpRef::Create(..)) {
                    kind::CREATE
                } else {
                    kind::OPEN
                };
                self.begin(seq, t_ns, k);
                self.put_u32(file);
                self.put_path(path)?;
            }
            OpRef::Preexisting(file, path, len) => {
                self.begin(seq, t_ns, kind::PREEXISTING);
                self.put_u32(file);
                self.put_path(path)?;
                self.put_u64(len);
            }
            OpRef::BaseData(file, offset, data) | OpRef::Write(file, offset, data) => {
                let k = if matches!(op, OpRef::Write(..)) {
                    kind::WRITE
                } else {
                    kind::BASE_DATA
                };
                self.begin(seq, t_ns, k);
                self.put_u32(file);
                self.put_u64(offset);
                self.put_data(data);
            }
            OpRef::SyncData(file, begin_seq, begin_ns) => {
                self.begin(seq, t_ns, kind::SYNC_DATA);
                self.put_u32(file);
                self.put_u64(begin_seq);
                self.put_u64(begin_ns);
            }
            OpRef::SetLen(file, len) => {
                self.begin(seq, t_ns, kind::SET_LEN);
                self.put_u32(file);
                self.put_u64(len);
            }
            OpRef::Allocate(file, offset, len) => {
                self.begin(seq, t_ns, kind::ALLOCATE);
                self.put_u32(file);
                self.put_u64(offset);
                self.put_u64(len);
            }
            OpRef::Rename(from, to) | OpRef::Link(from, to) => {
                let k = if matches!(op, OpRef::Rename(..)) {
                    kind::RENAME
                } else {
                    kind::LINK
                };
                self.begin(seq, t_ns, k);
                self.put_path(from)?;
                self.put_path(to)?;
            }
            OpRef::Remove(path) | OpRef::MkDir(path) | OpRef::RemoveDir(path) => {
                let k = match op {
                    OpRef::Remove(_) => kind::REMOVE,
                    OpRef::MkDir(_) => kind::MKDIR,
                    _ => kind::REMOVE_DIR,
                };
                self.begin(seq, t_ns, k);
                self.put_path(path)?;
            }
            OpRef::SyncDir(dir, begin_seq, begin_ns) => {
                self.begin(seq, t_ns, kind::SYNC_DIR);
                self.put_path(dir)?;
                self.put_u64(begin_seq);
                self.put_u64(begin_ns);
            }
        }
        Ok(self.finish())
    }
}

/// Reads and verifies the whole trace at `path`.
///
/// # Errors
/// [`TraceError::Io`] if the file cannot be read; [`TraceError::Corrupt`] naming the offset for
/// a bad header, an entry whose checksum fails while more bytes follow it, a wrong sequence
/// number, or a verified entry whose body is malformed. A partial last entry is not an error.
pub fn read_trace(path: &Path) -> Result<Trace, TraceError> {
    let file = std::fs::File::open(path).map_err(|source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_from(io::BufReader::with_capacity(1 << 20, file), path)
}

/// [`read_trace`] on bytes in memory (`name` appears in errors).
///
/// # Errors
/// As [`read_trace`].
pub fn decode_trace(bytes: &[u8], name: &Path) -> Result<Trace, TraceError> {
    read_from(bytes, name)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_from(mut r: impl Read, path: &Path) -> Result<Trace, TraceError> {
    let io_err = |source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let corrupt = |offset: u64, reason: String| TraceError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let mut header = [0u8; TRACE_HEADER_BYTES];
    let got = read_full(&mut r, &mut header).map_err(io_err)?;
    if got < TRACE_HEADER_BYTES {
        return Err(corrupt(
            0,
            format!("{got} bytes, shorter than the {TRACE_HEADER_BYTES}-byte trace header"),
        ));
    }
    let start_ns = decode_header(&header).map_err(|reason| corrupt(0, reason))?;
    let mut trace = Trace {
        start_ns,
        entries: Vec::new(),
        torn_tail: None,
    };
    let mut offset = TRACE_HEADER_BYTES as u64;
    let mut frame = Vec::new();
    loop {
        let mut head = [0u8; ENTRY_HEADER_BYTES];
        let got = read_full(&mut r, &mut head).map_err(io_err)?;
        if got == 0 {
            return Ok(trace);
        }
        if got < ENTRY_HEADER_BYTES {
            trace.torn_tail = Some(TornTail {
                offset,
                bytes: got as u64,
            });
            return Ok(trace);
        }
        let len = le_u32(&head[0..4]);
        if len == 0 || len > MAX_ENTRY_BYTES {
            return Err(corrupt(offset, format!("invalid entry length {len}")));
        }
        frame.clear();
        frame.extend_from_slice(&head);
        let body_got = (&mut r)
            .take(u64::from(len))
            .read_to_end(&mut frame)
            .map_err(io_err)?;
        if body_got < len as usize {
            trace.torn_tail = Some(TornTail {
                offset,
                bytes: (ENTRY_HEADER_BYTES + body_got) as u64,
            });
            return Ok(trace);
        }
        if le_u32(&head[4..8]) != entry_checksum(&frame) {
            return Err(corrupt(
                offset,
                "entry checksum mismatch (not a torn last entry: the whole entry is present)"
                    .into(),
            ));
        }
        let seq = le_u64(&head[8..16]);
        let expected = trace.entries.len() as u64;
        if seq != expected {
            return Err(corrupt(
                offset,
                format!("entry sequence number {seq} where {expected} was expected"),
            ));
        }
        let op = decode_op(&frame[ENTRY_HEADER_BYTES..])
            .and_then(|op| match op {
                Op::SyncData { begin_seq, .. } | Op::SyncDir { begin_seq, .. }
                    if begin_seq > seq =>
                {
                    Err(format!(
                        "sync began at sequence number {begin_seq}, after itself"
                    ))
                }
                op => Ok(op),
            })
            .map_err(|reason| corrupt(offset, format!("entry {seq}: {reason}")))?;
        trace.entries.push(Entry {
            seq,
            t_ns: le_u64(&head[16..24]),
            op,
        });
        offset += (ENTRY_HEADER_BYTES + len as usize) as u64;
    }
}

/// A bounds-checked reader over an entry's body.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("truncated {what} at body byte {}", self.at))?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(le_u32(self.take(4, what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(le_u64(self.take(8, what)?))
    }

    fn path(&mut self) -> Result<PathBuf, String> {
        let len = self.u32("path length")? as usize;
        if len == 0 || len > MAX_PATH_BYTES {
            return Err(format!("path length {len} outside 1..={MAX_PATH_BYTES}"));
        }
        let bytes = self.take(len, "path")?;
        if bytes.contains(&0) {
            return Err("path contains a NUL byte".into());
        }
        Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes.to_vec())))
    }

    /// An offset and a list of segments covering at most [`WRITE_CHUNK_BYTES`], checked
    /// against [`MAX_FILE_BYTES`].
    fn data(&mut self) -> Result<(u64, Vec<Segment>), String> {
        let offset = self.u64("offset")?;
        let count = self.u32("segment count")? as usize;
        // Every segment takes at least 6 bytes, so `count` cannot exceed what remains.
        if count > (self.buf.len() - self.at) / 6 {
            return Err(format!("segment count {count} exceeds the remaining bytes"));
        }
        let mut data = Vec::with_capacity(count);
        let mut end = offset;
        for _ in 0..count {
            let seg = match self.u8("segment tag")? {
                SEG_BYTES => {
                    let n = self.u32("segment length")? as usize;
                    Segment::Bytes(self.take(n, "segment bytes")?.to_vec())
                }
                SEG_ZEROS => Segment::Zeros(self.u64("zero run length")?),
                t => return Err(format!("unknown segment tag {t}")),
            };
            if seg.is_empty() {
                return Err("empty segment".into());
            }
            end = end
                .checked_add(seg.len())
                .filter(|&e| e <= MAX_FILE_BYTES)
                .ok_or_else(|| format!("data reaches past the {MAX_FILE_BYTES}-byte file limit"))?;
            data.push(seg);
        }
        if end - offset > WRITE_CHUNK_BYTES as u64 {
            return Err(format!(
                "data entry covers {} bytes, more than the {WRITE_CHUNK_BYTES} a recorder writes",
                end - offset
            ));
        }
        Ok((offset, data))
    }

    /// A file length, at most [`MAX_FILE_BYTES`].
    fn size(&mut self) -> Result<u64, String> {
        let len = self.u64("file length")?;
        if len > MAX_FILE_BYTES {
            return Err(format!(
                "file length {len} exceeds the {MAX_FILE_BYTES}-byte file limit"
            ));
        }
        Ok(len)
    }

    fn range(&mut self) -> Result<(u64, u64), String> {
        let offset = self.u64("offset")?;
        let len = self.u64("length")?;
        match offset.checked_add(len) {
            Some(end) if end <= MAX_FILE_BYTES => Ok((offset, len)),
            _ => Err(format!(
                "range {offset}+{len} exceeds the {MAX_FILE_BYTES}-byte file limit"
            )),
        }
    }
}

fn decode_op(body: &[u8]) -> Result<Op, String> {
    let mut c = Cursor { buf: body, at: 0 };
    let k = c.u8("kind")?;
    let op = match k {
        kind::CREATE => Op::Create {
            file: c.u32("file id")?,
            path: c.path()?,
        },
        kind::OPEN => Op::Open {
            file: c.u32("file id")?,
            path: c.path()?,
        },
        kind::PREEXISTING => Op::Preexisting {
            file: c.u32("file id")?,
            path: c.path()?,
            len: c.size()?,
        },
        kind::BASE_DATA | kind::WRITE => {
            let file = c.u32("file id")?;
            let (offset, data) = c.data()?;
            if k == kind::WRITE {
                Op::Write { file, offset, data }
            } else {
                Op::BaseData { file, offset, data }
            }
        }
        kind::SYNC_DATA => Op::SyncData {
            file: c.u32("file id")?,
            begin_seq: c.u64("begin_seq")?,
            begin_ns: c.u64("begin_ns")?,
        },
        kind::SET_LEN => Op::SetLen {
            file: c.u32("file id")?,
            len: c.size()?,
        },
        kind::ALLOCATE => {
            let file = c.u32("file id")?;
            let (offset, len) = c.range()?;
            Op::Allocate { file, offset, len }
        }
        kind::RENAME => Op::Rename {
            from: c.path()?,
            to: c.path()?,
        },
        kind::REMOVE => Op::Remove { path: c.path()? },
        kind::MKDIR => Op::MkDir { path: c.path()? },
        kind::REMOVE_DIR => Op::RemoveDir { path: c.path()? },
        kind::LINK => Op::Link {
            from: c.path()?,
            to: c.path()?,
        },
        kind::SYNC_DIR => Op::SyncDir {
            dir: c.path()?,
            begin_seq: c.u64("begin_seq")?,
            begin_ns: c.u64("begin_ns")?,
        },
        other => return Err(format!("unknown entry kind {other}")),
    };
    if c.at != body.len() {
        return Err(format!(
            "{} trailing bytes after the entry body",
            body.len() - c.at
        ));
    }
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_ops() -> Vec<(u64, OpRef<'static>)> {
        static DATA: [u8; 3000] = {
            let mut d = [0u8; 3000];
            let mut i = 0;
            while i < 100 {
                d[i] = i as u8 + 1;
                d[2900 + i] = 7;
                i += 1;
            }
            d
        };
        vec![
            (0, OpRef::Create(0, Path::new("/d/durlab.aof"))),
            (0, OpRef::Write(0, 0, &DATA)),
            (0, OpRef::Write(0, 4096, &DATA[..50])),
            (0, OpRef::Write(0, 8192, &DATA[200..2900])),
            (0, OpRef::SyncData(0, 2, 99)),
            (0, OpRef::SetLen(0, 12)),
            (0, OpRef::Allocate(0, 12, 1 << 20)),
            (0, OpRef::Rename(Path::new("/d/a"), Path::new("/d/b"))),
            (0, OpRef::Remove(Path::new("/d/b"))),
            (0, OpRef::SyncDir(Path::new("/d"), 9, 1234)),
            (0, OpRef::Preexisting(1, Path::new("/d/old"), 77)),
            (0, OpRef::BaseData(1, 0, &DATA[..77])),
            (0, OpRef::Open(2, Path::new("/d/old"))),
            (0, OpRef::MkDir(Path::new("/d/sub"))),
            (0, OpRef::Link(Path::new("/d/old"), Path::new("/d/sub/new"))),
            (0, OpRef::RemoveDir(Path::new("/d/empty"))),
        ]
    }

    /// One entry laid out by hand from docs/format.md ("I/O trace", "Entry"), with its
    /// checksum pinned as a number: the encoder must produce exactly these bytes and the
    /// reader must accept them, whatever the AOF's record code does.
    #[test]
    fn an_entry_is_the_documented_bytes() {
        let mut want = Vec::new();
        want.extend_from_slice(&13u32.to_le_bytes()); // len: kind + file u32 + len u64
        want.extend_from_slice(&[0; 4]); // crc, filled below
        want.extend_from_slice(&0u64.to_le_bytes()); // seq
        want.extend_from_slice(&1000u64.to_le_bytes()); // t_ns
        want.push(kind::SET_LEN);
        want.extend_from_slice(&3u32.to_le_bytes()); // file
        want.extend_from_slice(&12u64.to_le_bytes()); // len
        let mut covered = want[0..4].to_vec();
        covered.extend_from_slice(&want[8..]);
        let crc = crc32c::crc32c(&covered);
        assert_eq!(crc, ENTRY_CRC_PINNED, "{crc:#010x}");
        want[4..8].copy_from_slice(&crc.to_le_bytes());
        let mut buf = EntryBuf::default();
        assert_eq!(
            buf.encode(0, 1000, OpRef::SetLen(3, 12)).unwrap(),
            &want[..]
        );
        let mut file = encode_header(5).to_vec();
        file.extend_from_slice(&want);
        let trace = decode_trace(&file, name()).unwrap();
        assert_eq!(trace.entries[0].op, Op::SetLen { file: 3, len: 12 });
        // A wholly present entry whose checksum does not verify is refused.
        let mut bad = file.clone();
        bad[TRACE_HEADER_BYTES + 4] ^= 1;
        assert!(decode_trace(&bad, name()).is_err());
    }

    /// [`an_entry_is_the_documented_bytes`]'s checksum, computed once by a separate CRC32C
    /// (Castagnoli, reflected polynomial 0x82F63B78) written from its definition.
    const ENTRY_CRC_PINNED: u32 = 0x943c_55d6;

    fn encode_all(ops: &[(u64, OpRef<'_>)]) -> Vec<u8> {
        let mut out = encode_header(5).to_vec();
        let mut buf = EntryBuf::default();
        for (seq, (_, op)) in ops.iter().enumerate() {
            out.extend_from_slice(buf.encode(seq as u64, 1000 + seq as u64, *op).unwrap());
        }
        out
    }

    fn name() -> &'static Path {
        Path::new("test.trace")
    }

    fn flatten(data: &[Segment]) -> Vec<u8> {
        let mut v = Vec::new();
        for s in data {
            match s {
                Segment::Bytes(b) => v.extend_from_slice(b),
                Segment::Zeros(n) => v.resize(v.len() + *n as usize, 0),
            }
        }
        v
    }

    #[test]
    fn round_trip_every_kind() {
        let ops = sample_ops();
        let bytes = encode_all(&ops);
        let trace = decode_trace(&bytes, name()).unwrap();
        assert_eq!(trace.start_ns, 5);
        assert_eq!(trace.torn_tail, None);
        assert_eq!(trace.entries.len(), ops.len());
        for (e, (_, op)) in trace.entries.iter().zip(&ops) {
            assert_eq!(e.t_ns, 1000 + e.seq);
            match (&e.op, op) {
                (Op::Write { offset, data, .. }, OpRef::Write(_, o, d))
                | (Op::BaseData { offset, data, .. }, OpRef::BaseData(_, o, d)) => {
                    assert_eq!(offset, o);
                    assert_eq!(flatten(data), d.to_vec());
                }
                (decoded, _) => assert!(!matches!(decoded, Op::Write { .. })),
            }
        }
        // The 3000-byte write: 100 bytes, 2800 zeros, 100 bytes.
        let Op::Write { data, .. } = &trace.entries[1].op else {
            panic!()
        };
        assert_eq!(
            data,
            &vec![
                Segment::Bytes((1..=100).collect()),
                Segment::Zeros(2800),
                Segment::Bytes(vec![7; 100])
            ]
        );
        assert_eq!(
            trace.entries[9].op,
            Op::SyncDir {
                dir: "/d".into(),
                begin_seq: 9,
                begin_ns: 1234
            }
        );
        assert_eq!(
            trace.entries[13..],
            [
                Entry {
                    seq: 13,
                    t_ns: 1013,
                    op: Op::MkDir {
                        path: "/d/sub".into()
                    }
                },
                Entry {
                    seq: 14,
                    t_ns: 1014,
                    op: Op::Link {
                        from: "/d/old".into(),
                        to: "/d/sub/new".into()
                    }
                },
                Entry {
                    seq: 15,
                    t_ns: 1015,
                    op: Op::RemoveDir {
                        path: "/d/empty".into()
                    }
                },
            ]
        );
    }

    #[test]
    fn every_truncation_is_a_torn_tail_of_a_prefix() {
        let ops = sample_ops();
        let bytes = encode_all(&ops);
        let full = decode_trace(&bytes, name()).unwrap();
        let mut ends = vec![TRACE_HEADER_BYTES];
        let mut at = TRACE_HEADER_BYTES;
        while at < bytes.len() {
            at += ENTRY_HEADER_BYTES + le_u32(&bytes[at..at + 4]) as usize;
            ends.push(at);
        }
        for len in 0..bytes.len() {
            let r = decode_trace(&bytes[..len], name());
            if len < TRACE_HEADER_BYTES {
                assert!(r.is_err());
                continue;
            }
            let t = r.unwrap();
            let whole = ends.iter().filter(|&&e| e <= len).count() - 1;
            assert_eq!(t.entries, full.entries[..whole], "cut at {len}");
            let torn = len != ends[whole];
            assert_eq!(t.torn_tail.is_some(), torn, "cut at {len}");
            if let Some(tail) = t.torn_tail {
                assert_eq!(tail.offset as usize, ends[whole]);
                assert_eq!((tail.offset + tail.bytes) as usize, len);
            }
        }
    }

    #[test]
    fn a_damaged_middle_entry_is_an_error_naming_its_offset() {
        let bytes = encode_all(&sample_ops());
        let mut bad = bytes.clone();
        bad[TRACE_HEADER_BYTES + 30] ^= 1;
        let err = decode_trace(&bad, name()).unwrap_err().to_string();
        assert!(err.contains("at byte offset 32"), "{err}");
        assert!(err.contains("test.trace"), "{err}");
    }

    #[test]
    fn sequence_gaps_and_bad_headers_are_refused() {
        let mut out = encode_header(1).to_vec();
        let mut buf = EntryBuf::default();
        out.extend_from_slice(buf.encode(1, 0, OpRef::SetLen(0, 1)).unwrap());
        assert!(decode_trace(&out, name()).is_err());
        let mut hdr = encode_header(1);
        hdr[3] ^= 1;
        assert!(decode_trace(&hdr, name()).is_err());
        let mut sync = encode_header(1).to_vec();
        sync.extend_from_slice(buf.encode(0, 0, OpRef::SyncData(0, 1, 0)).unwrap());
        assert!(
            decode_trace(&sync, name()).is_err(),
            "a sync cannot begin after itself"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_trace(&bytes, name());
            let mut with_header = encode_header(0).to_vec();
            with_header.extend_from_slice(&bytes);
            let _ = decode_trace(&with_header, name());
        }

        /// A mutated trace reads as an error or as a prefix of the original entries: nothing
        /// the checksums did not vouch for is ever returned.
        #[test]
        fn mutations_yield_errors_or_verified_prefixes(
            at in proptest::num::usize::ANY,
            xor in 1u8..=255,
            cut in proptest::num::usize::ANY,
        ) {
            let bytes = encode_all(&sample_ops());
            let full = decode_trace(&bytes, name()).unwrap();
            let mut bad = bytes.clone();
            let at = at % bad.len();
            bad[at] ^= xor;
            bad.truncate(at + 1 + cut % (bytes.len() - at));
            if let Ok(t) = decode_trace(&bad, name()) {
                proptest::prop_assert!(t.entries.len() <= full.entries.len());
                proptest::prop_assert_eq!(&t.entries[..], &full.entries[..t.entries.len()]);
            }
        }
    }
}
