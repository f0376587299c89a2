//! Sequential reading of framed records from a log file, in large chunks.

use std::io;

use super::file_header::{FILE_HEADER_BYTES, FileHeader, decode_sync_hint};
use super::record::{self, RECORD_HEADER_BYTES, RawRecord, RecordFault};
use crate::backend::{BackendFile, read_exact_at};

/// Bytes read per refill, at most: large enough that replay runs at memory speed.
const CHUNK_BYTES: usize = 4 << 20;

/// Bytes read by a scanner's first refill; each later one reads twice as many, up to
/// [`CHUNK_BYTES`]. A scan that ends early (a crash image cut near its start, megabytes of
/// tail after it) then reads little more than it decodes, instead of 4 MiB.
// Equivalent mutant (`<<` to `>>`, .cargo/mutants.toml): a refill of chunk 0 still reads what
// is needed.
const FIRST_CHUNK_BYTES: usize = 64 << 10;

/// One step of a scan.
#[derive(Debug)]
pub enum Step<'a> {
    /// A record whose checksum verified, starting at `offset`.
    Record { offset: u64, record: RawRecord<'a> },
    /// The bytes at `offset` are not a valid record (`offset` may equal the file length for a
    /// log that ends exactly after its last record: then `fault` is `None`).
    End {
        offset: u64,
        fault: Option<RecordFault>,
    },
}

/// Reads records front to back. The caller checks LSN continuity and decodes payloads.
#[derive(Debug)]
pub struct Scanner<'f> {
    file: &'f dyn BackendFile,
    file_len: u64,
    max_payload_bytes: u32,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    /// Index in `buf` of the next record.
    pos: usize,
    bytes_read: u64,
    sync_hint: Option<crate::Lsn>,
    /// Bytes the next refill reads at least (while the file lasts).
    chunk: usize,
}

impl<'f> Scanner<'f> {
    /// Verifies the file header and positions the scanner on the first record.
    ///
    /// # Errors
    /// `Ok(Err(reason))` when the header does not verify; `Err` for I/O failures.
    pub fn open(
        file: &'f dyn BackendFile,
        max_payload_bytes: u32,
    ) -> io::Result<Result<(Scanner<'f>, FileHeader), String>> {
        let file_len = file.len()?;
        let mut head = [0u8; FILE_HEADER_BYTES];
        let have = (file_len as usize).min(FILE_HEADER_BYTES);
        read_exact_at(file, &mut head[..have], 0)?;
        let header = match FileHeader::decode(&head[..have]) {
            Ok(h) => h,
            Err(reason) => return Ok(Err(reason)),
        };
        let scanner = Scanner {
            file,
            file_len,
            max_payload_bytes,
            buf: Vec::new(),
            buf_offset: FILE_HEADER_BYTES as u64,
            pos: 0,
            bytes_read: FILE_HEADER_BYTES as u64,
            sync_hint: decode_sync_hint(&head[..have]),
            chunk: FIRST_CHUNK_BYTES,
        };
        Ok(Ok((scanner, header)))
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The header area's sync hint: every record up to it had been synced (None: no hint).
    pub fn sync_hint(&self) -> Option<crate::Lsn> {
        self.sync_hint
    }

    /// Bytes read from the file so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Offset of the next record.
    pub fn offset(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    /// Moves to the record at `offset` (past the header area and at most the file's
    /// length), counting the bytes before it as read: the caller has read and verified them
    /// another way (`crate::engine::ReplayBase`).
    pub fn skip_to(&mut self, offset: u64) {
        let offset = offset.clamp(FILE_HEADER_BYTES as u64, self.file_len);
        self.buf.clear();
        self.buf_offset = offset;
        self.pos = 0;
        self.bytes_read = offset;
    }

    /// Reads the next record, or where and why the valid records end.
    ///
    /// # Errors
    /// I/O failures only; bad bytes are reported as [`Step::End`].
    pub fn next_step(&mut self) -> io::Result<Step<'_>> {
        let offset = self.offset();
        if offset == self.file_len {
            return Ok(Step::End {
                offset,
                fault: None,
            });
        }
        if !self.fill(RECORD_HEADER_BYTES)? {
            return Ok(Step::End {
                offset,
                fault: Some(RecordFault::Truncated),
            });
        }
        let len = u32::from_le_bytes(
            self.buf[self.pos..self.pos + 4]
                .try_into()
                .expect("4 bytes"),
        );
        if len == 0 || len > self.max_payload_bytes {
            return Ok(Step::End {
                offset,
                fault: Some(RecordFault::BadLength(len)),
            });
        }
        if !self.fill(RECORD_HEADER_BYTES + len as usize)? {
            return Ok(Step::End {
                offset,
                fault: Some(RecordFault::Truncated),
            });
        }
        let start = self.pos;
        match record::decode(&self.buf[start..], self.max_payload_bytes) {
            Ok(rec) => {
                self.pos += rec.encoded_len();
                Ok(Step::Record {
                    offset,
                    record: rec,
                })
            }
            Err(fault) => Ok(Step::End {
                offset,
                fault: Some(fault),
            }),
        }
    }

    /// Makes at least `need` bytes available at `pos`; false if the file ends before.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        let available = self.buf.len() - self.pos;
        if available >= need {
            return Ok(true);
        }
        let remaining_in_file = self.file_len - self.buf_offset - self.buf.len() as u64;
        if (available as u64 + remaining_in_file) < need as u64 {
            return Ok(false);
        }
        self.buf.drain(..self.pos);
        self.buf_offset += self.pos as u64;
        self.pos = 0;
        // Equivalent mutant (`-` to `+`, .cargo/mutants.toml): reading further ahead (never
        // past the file's end) changes no decision, only when the bytes are read.
        let want = (need - available)
            .max(self.chunk)
            .min(remaining_in_file as usize);
        // Equivalent mutants (`*` to `+` or `/`, .cargo/mutants.toml): a refill reads at least
        // what is needed whatever the chunk; its size decides only when bytes are read.
        self.chunk = (self.chunk * 2).min(CHUNK_BYTES);
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        read_exact_at(
            self.file,
            &mut self.buf[old..],
            self.buf_offset + old as u64,
        )?;
        self.bytes_read += want as u64;
        Ok(true)
    }
}
