//! The 64-byte header area at the start of every log file.
//!
//! Bytes 0..32, the header, written once at creation:
//! `magic[8] = "DURLAOF\0" | version u32 | flags u32 | base_lsn u64 | reserved u32 | crc32c u32`.
//! The first record of the file must carry LSN `base_lsn + 1`.
//!
//! Bytes 32..64, the sync hint, rewritten after each standalone sync of the file:
//! `magic[8] = "DURLSYN\0" | synced_lsn u64 | reserved[12] | crc32c u32`: every record up to
//! `synced_lsn` had been made durable before the hint was written. All zeros, or a checksum that
//! does not verify (a torn hint write), means no hint: it only ever adds information.

use crate::Lsn;

/// The header area: header (32 bytes) and sync hint (32 bytes); records follow it.
pub const FILE_HEADER_BYTES: usize = 64;
/// Where the sync hint lives.
pub const SYNC_HINT_OFFSET: u64 = 32;
const HEADER_BYTES: usize = 32;
const SYNC_MAGIC: [u8; 8] = *b"DURLSYN\0";
pub const MAGIC: [u8; 8] = *b"DURLAOF\0";
pub const VERSION: u32 = 1;

/// A decoded, verified file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// LSN of the record just before this file's first record.
    pub base_lsn: Lsn,
}

impl FileHeader {
    /// The whole header area, with no sync hint.
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
        let buf = &buf[..HEADER_BYTES];
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

/// Encodes the sync hint block claiming every record up to `synced_lsn` is durable.
pub fn encode_sync_hint(synced_lsn: Lsn) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[0..8].copy_from_slice(&SYNC_MAGIC);
    out[8..16].copy_from_slice(&synced_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&out[0..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The sync hint in a header area, if present and intact. Never fails: a missing or torn hint
/// is no hint.
pub fn decode_sync_hint(area: &[u8]) -> Option<Lsn> {
    let block = area.get(HEADER_BYTES..FILE_HEADER_BYTES)?;
    let crc = u32::from_le_bytes(block[28..32].try_into().expect("4 bytes"));
    if block[0..8] != SYNC_MAGIC || crc != crc32c::crc32c(&block[0..28]) {
        return None;
    }
    Some(u64::from_le_bytes(
        block[8..16].try_into().expect("8 bytes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_hint_round_trip_and_torn() {
        let mut area = FileHeader { base_lsn: 5 }.encode().to_vec();
        assert_eq!(decode_sync_hint(&area), None, "a new file has no hint");
        area[32..64].copy_from_slice(&encode_sync_hint(42));
        assert_eq!(decode_sync_hint(&area), Some(42));
        assert_eq!(FileHeader::decode(&area).unwrap().base_lsn, 5);
        area[40] ^= 1;
        assert_eq!(decode_sync_hint(&area), None, "a torn hint is no hint");
    }
}
