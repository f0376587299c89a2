//! The 32-byte header at the start of every log file.
//!
//! `magic[8] = "DURLAOF\0" | version u32 | flags u32 | base_lsn u64 | reserved u32 | crc32c u32`
//! The first record of the file must carry LSN `base_lsn + 1`.

use crate::Lsn;

pub const FILE_HEADER_BYTES: usize = 32;
pub const MAGIC: [u8; 8] = *b"DURLAOF\0";
pub const VERSION: u32 = 1;

/// A decoded, verified file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// LSN of the record just before this file's first record.
    pub base_lsn: Lsn,
}

impl FileHeader {
    pub fn encode(&self) -> [u8; FILE_HEADER_BYTES] {
        let mut out = [0u8; FILE_HEADER_BYTES];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.base_lsn.to_le_bytes());
        let crc = crc32c::crc32c(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// # Errors
    /// A description of the first check that failed (magic, version, checksum, flags).
    pub fn decode(buf: &[u8]) -> Result<FileHeader, String> {
        let Some(buf) = buf.get(..FILE_HEADER_BYTES) else {
            return Err(format!(
                "file shorter than its {FILE_HEADER_BYTES}-byte header"
            ));
        };
        if buf[0..8] != MAGIC {
            return Err("bad magic (not a durlab log file)".into());
        }
        let crc = u32::from_le_bytes(buf[28..32].try_into().expect("4 bytes"));
        if crc != crc32c::crc32c(&buf[0..28]) {
            return Err("file header checksum mismatch".into());
        }
        let version = u32::from_le_bytes(buf[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(format!(
                "unsupported log format version {version} (expected {VERSION})"
            ));
        }
        let flags = u32::from_le_bytes(buf[12..16].try_into().expect("4 bytes"));
        if flags != 0 {
            return Err(format!("unknown header flags {flags:#x}"));
        }
        Ok(FileHeader {
            base_lsn: u64::from_le_bytes(buf[16..24].try_into().expect("8 bytes")),
        })
    }
}
