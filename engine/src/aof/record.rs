//! Record framing: `len u32 | crc32c u32 | lsn u64 | synced_lsn u64 | payload[len]`,
//! little-endian.
//!
//! The CRC32C covers the length field, the LSNs and the payload, so a damaged length is caught
//! like damaged data. `synced` is the highest LSN the writer knew to be durable when it encoded
//! the record, with bit 63 set when the writer tracks its syncs (every policy with a log: under
//! `no`, what explicit syncs and the sync at open covered; clear means no information, as in
//! hand-made files). Recovery uses it to tell damage to synced
//! data (a later record vouches that the bad one had been synced, or carries no information:
//! refuse) from a hole in unsynced data that a power loss can leave (later records were all
//! encoded before the bad one was synced: cut, keeping a copy). A length of 0 never occurs in a valid record: an all-zero header is how a
//! preallocated (zero-filled) region reads, and recovery treats it as the clean end of the log.
//! Byte layout: `docs/format.md`.

use crate::Lsn;
use crate::keyspace::Command;

/// Bytes before the payload.
pub const RECORD_HEADER_BYTES: usize = 24;

/// Smallest possible record: a header and a one-byte payload.
pub const RECORD_MIN_BYTES: usize = RECORD_HEADER_BYTES + 1;

/// Set in the `synced` field when the writer tracks its syncs.
const SYNC_TRACKED_BIT: u64 = 1 << 63;

/// Why bytes at some offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFault {
    /// Fewer bytes remain than a header, or than the header's length announces.
    Truncated,
    /// Length 0 or above the limit.
    BadLength(u32),
    /// The checksum does not match.
    BadChecksum,
    /// The checksum matches but `synced_lsn >= lsn` (a record cannot vouch for itself).
    BadSyncedLsn,
}

impl RecordFault {
    pub fn describe(self) -> String {
        match self {
            RecordFault::Truncated => "truncated record".into(),
            RecordFault::BadLength(len) => format!("invalid record length {len}"),
            RecordFault::BadChecksum => "record checksum mismatch".into(),
            RecordFault::BadSyncedLsn => "record claims its own LSN was already synced".into(),
        }
    }
}

/// A record that passed its checksum, borrowed from the scan buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub lsn: Lsn,
    /// Highest LSN known durable when the record was encoded (always below `lsn`), or `None`
    /// when the writer did not track its syncs (policy `no`).
    pub synced_lsn: Option<Lsn>,
    pub payload: &'a [u8],
}

impl RawRecord<'_> {
    /// Bytes the record occupies in the file.
    pub fn encoded_len(&self) -> usize {
        RECORD_HEADER_BYTES + self.payload.len()
    }
}

/// Appends one framed record for `cmd` to `out`. `synced_lsn` (below `lsn`) is the highest LSN
/// known durable now, or `None` when the writer does not track its syncs.
///
/// # Errors
/// Returns the payload length, leaving `out` unchanged, when it exceeds `max_payload_bytes`.
pub fn encode(
    out: &mut Vec<u8>,
    lsn: Lsn,
    synced_lsn: Option<Lsn>,
    cmd: &Command,
    max_payload_bytes: u32,
) -> Result<(), usize> {
    debug_assert!(
        synced_lsn.is_none_or(|s| s < lsn),
        "a record cannot vouch for itself"
    );
    let len = cmd.encoded_len();
    if len == 0 || len > max_payload_bytes as usize {
        return Err(len);
    }
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_BYTES]);
    cmd.encode(out);
    debug_assert_eq!(
        out.len() - start - RECORD_HEADER_BYTES,
        len,
        "encoded_len must match encode"
    );
    let frame = &mut out[start..];
    frame[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    frame[8..16].copy_from_slice(&lsn.to_le_bytes());
    // Equivalent mutant (`|` to `^`, excluded in .cargo/mutants.toml): a synced LSN is below
    // `lsn` and never reaches bit 63, so setting the bit and toggling it are the same.
    let synced = synced_lsn.map_or(0, |s| s | SYNC_TRACKED_BIT);
    frame[16..24].copy_from_slice(&synced.to_le_bytes());
    let crc = checksum(frame);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// CRC32C over the length field (bytes 0..4) and everything after the checksum field (bytes
/// 8..) of a complete frame. The I/O trace frames its entries the same way.
pub(crate) fn checksum(frame: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&frame[0..4]), &frame[8..])
}

/// Decodes the record at the start of `buf`.
///
/// # Errors
/// [`RecordFault`] when `buf` does not start with a complete record whose checksum matches.
/// Never panics on any input.
pub fn decode(buf: &[u8], max_payload_bytes: u32) -> Result<RawRecord<'_>, RecordFault> {
    if buf.len() < RECORD_HEADER_BYTES {
        return Err(RecordFault::Truncated);
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    if len == 0 || len > max_payload_bytes {
        return Err(RecordFault::BadLength(len));
    }
    let total = RECORD_HEADER_BYTES + len as usize;
    if buf.len() < total {
        return Err(RecordFault::Truncated);
    }
    let frame = &buf[..total];
    let stored = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
    if stored != checksum(frame) {
        return Err(RecordFault::BadChecksum);
    }
    let lsn = u64::from_le_bytes(frame[8..16].try_into().expect("8 bytes"));
    let synced = u64::from_le_bytes(frame[16..24].try_into().expect("8 bytes"));
    let synced_lsn = match synced {
        0 => None,
        s if s & SYNC_TRACKED_BIT != 0 && s & !SYNC_TRACKED_BIT < lsn => {
            Some(s & !SYNC_TRACKED_BIT)
        }
        _ => return Err(RecordFault::BadSyncedLsn),
    };
    Ok(RawRecord {
        lsn,
        synced_lsn,
        payload: &frame[RECORD_HEADER_BYTES..],
    })
}

/// The LSN field of a header, read without verifying anything (for cheap filtering).
pub fn peek_lsn(buf: &[u8]) -> Option<Lsn> {
    buf.get(8..16)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: u8) -> Command {
        Command::Set {
            key: vec![b'k', n],
            value: vec![n; n as usize],
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, Some(6), &set(3), 1 << 20).unwrap();
        encode(&mut buf, 8, Some(7), &set(200), 1 << 20).unwrap();
        let first = decode(&buf, 1 << 20).unwrap();
        assert_eq!(first.lsn, 7);
        assert_eq!(Command::decode(first.payload).unwrap(), set(3));
        assert_eq!(
            u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize,
            first.payload.len()
        );
        assert_eq!(peek_lsn(&buf), Some(7));
        let second = decode(&buf[first.encoded_len()..], 1 << 20).unwrap();
        assert_eq!(
            (second.lsn, Command::decode(second.payload).unwrap()),
            (8, set(200))
        );
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, 42, Some(41), &set(20), 1 << 20).unwrap();
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    decode(&bad, 1 << 20).is_err(),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn every_strict_prefix_is_truncated() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, Some(0), &set(50), 1 << 20).unwrap();
        for len in 0..buf.len() {
            assert_eq!(
                decode(&buf[..len], 1 << 20),
                Err(RecordFault::Truncated),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn zero_header_and_limits_are_bad_lengths() {
        assert_eq!(decode(&[0u8; 64], 1 << 20), Err(RecordFault::BadLength(0)));
        let mut buf = Vec::new();
        encode(&mut buf, 1, Some(0), &set(100), 1 << 20).unwrap();
        assert!(matches!(decode(&buf, 50), Err(RecordFault::BadLength(_))));
        let before = buf.len();
        assert!(encode(&mut buf, 2, Some(1), &set(100), 50).is_err());
        assert_eq!(
            buf.len(),
            before,
            "a rejected record leaves the buffer unchanged"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode(&bytes, 1 << 20);
        }

        #[test]
        fn mutated_frames_are_rejected(
            n in 0u8..=255,
            at in proptest::num::usize::ANY,
            xor in 1u8..=255,
        ) {
            let mut buf = Vec::new();
            encode(&mut buf, 9, Some(8), &set(n), 1 << 20).unwrap();
            let at = at % buf.len();
            buf[at] ^= xor;
            proptest::prop_assert!(decode(&buf, 1 << 20).is_err(), "byte {} ^ {:#x} accepted", at, xor);
        }
    }
}
