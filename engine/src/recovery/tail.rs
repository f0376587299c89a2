//! What lies after the last valid record: a clean end, a torn tail, or damage in the middle.

use std::io;

use crate::Lsn;
use crate::aof::record::{self, RECORD_HEADER_BYTES, RECORD_MIN_BYTES};
use crate::backend::{BackendFile, read_exact_at};

/// Bytes examined per read while looking for valid records past a bad one.
const WINDOW_BYTES: u64 = 16 << 20;

/// Classification of the bytes from the first bad offset to the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Only zeros (a preallocated region) or nothing: the clean end of the log.
    Clean,
    /// Non-zero bytes up to `data_end`, and no later record vouches that the bad one had been
    /// synced: an interrupted append, or a hole in unsynced data (valid later records written
    /// before the bad one was synced may follow: a power loss can keep them and lose it).
    Torn { data_end: u64 },
    /// The file's sync hint says LSN `synced_lsn` (beyond the last valid record) had been
    /// synced: synced data is damaged or lost (bytes up to `data_end` follow).
    SyncedLost { data_end: u64, synced_lsn: Lsn },
    /// A valid record at `next_offset` was encoded after the bad record's LSN was synced
    /// (its `synced_lsn` says so): damage to synced data, in the middle of the log.
    Damage {
        data_end: u64,
        next_offset: u64,
        next_lsn: Lsn,
    },
}

/// Classifies `[bad_offset, file_len)`. `last_lsn` is the LSN of the last good record.
///
/// # Errors
/// I/O failures reading the file.
pub(crate) fn classify(
    file: &dyn BackendFile,
    bad_offset: u64,
    file_len: u64,
    last_lsn: Lsn,
    max_payload_bytes: u32,
    sync_hint: Option<Lsn>,
) -> io::Result<Tail> {
    let data_end = nonzero_end(file, bad_offset, file_len)?;
    if let Some(synced_lsn) = sync_hint.filter(|&h| h > last_lsn) {
        return Ok(Tail::SyncedLost {
            data_end,
            synced_lsn,
        });
    }
    if data_end == bad_offset {
        return Ok(Tail::Clean);
    }
    Ok(
        match find_valid_after(file, bad_offset, data_end, last_lsn, max_payload_bytes)? {
            Some((next_offset, next_lsn)) => Tail::Damage {
                data_end,
                next_offset,
                next_lsn,
            },
            None => Tail::Torn { data_end },
        },
    )
}

/// The offset just past the last non-zero byte in `[from, to)`, or `from` if all are zero.
/// Bytes in a hole past the file's last data ([`BackendFile::data_end`]) are zeros, not read.
pub(crate) fn nonzero_end(file: &dyn BackendFile, from: u64, to: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut end = file.data_end(from, to)?.clamp(from, to);
    while end > from {
        let start = end.saturating_sub(buf.len() as u64).max(from);
        let chunk = &mut buf[..(end - start) as usize];
        read_exact_at(file, chunk, start)?;
        if let Some(i) = last_nonzero(chunk) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(from)
}

/// Bytes tested at once by [`last_nonzero`].
const ZERO_BLOCK_BYTES: usize = 64;

/// The index of the last non-zero byte of `bytes`, if any. Whole blocks of
/// [`ZERO_BLOCK_BYTES`] are tested with one OR each, a loop the compiler vectorizes (a byte
/// search that stops at its first hit is not): every recovery of a preallocated log scans its
/// zeros to the end of the file ([`nonzero_end`]), and the crash lab recovers one per image.
fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    let whole = bytes.len() - bytes.len() % ZERO_BLOCK_BYTES;
    let (blocks, rest) = bytes.split_at(whole);
    if let Some(i) = rest.iter().rposition(|&b| b != 0) {
        return Some(whole + i);
    }
    let block = blocks
        .chunks_exact(ZERO_BLOCK_BYTES)
        .rposition(|c| c.iter().fold(0, |acc, &b| acc | b) != 0)?;
    let start = block * ZERO_BLOCK_BYTES;
    blocks[start..start + ZERO_BLOCK_BYTES]
        .iter()
        .rposition(|&b| b != 0)
        .map(|i| start + i)
}

/// Where the LSN field sits in a record header (bytes 8..16, [`record::peek_lsn`]).
const LSN_FIELD_END: usize = 16;

/// The next position after `i` that can start a record, given that the LSN field of a
/// header at `i` is all zeros: no record has LSN 0, so no position whose LSN field lies in
/// the same run of zeros can either. That is the first position whose field reaches the next
/// non-zero byte, or, when none follows in `buf`, the first whose field `buf` does not hold
/// (where [`record::peek_lsn`] finds no field). A power loss under `no` leaves megabytes of
/// lost sectors, zeros, in the unsynced tail that [`find_valid_after`] searches; position by
/// position that search took a quarter of a crash image's recovery.
fn past_zero_lsn(buf: &[u8], i: usize) -> usize {
    let from = i + LSN_FIELD_END;
    match first_nonzero(&buf[from..]) {
        Some(k) => from + k + 1 - LSN_FIELD_END,
        None => buf.len() + 1 - LSN_FIELD_END,
    }
}

/// The index of the first non-zero byte of `bytes`, if any: whole blocks of
/// [`ZERO_BLOCK_BYTES`] tested with one OR each, as in [`last_nonzero`].
fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    // The byte is searched for within its block only (not from the block's start to the end
    // of `bytes`), so a wrong block start gives a wrong answer instead of the same one.
    bytes
        .chunks(ZERO_BLOCK_BYTES)
        .enumerate()
        .find(|(_, c)| c.iter().fold(0, |acc, &b| acc | b) != 0)
        .map(|(n, c)| n * ZERO_BLOCK_BYTES + c.iter().position(|&b| b != 0).expect("non-zero"))
}

/// The first record after `bad_offset` that vouches the missing LSN (`last_lsn + 1`) had been
/// synced before the record was encoded, or that carries no sync information (written under
/// policy `no`): its checksum verifies, its LSN is above `last_lsn` (and plausible for the
/// bytes left), and its `synced_lsn` reaches the missing LSN or is untracked. Valid
/// records that do not vouch for it (encoded before the missing one was synced: the unsynced
/// tail, where a power loss can leave holes) are stepped over. The LSN filter makes most
/// offsets cost a comparison, not a checksum.
fn find_valid_after(
    file: &dyn BackendFile,
    bad_offset: u64,
    end: u64,
    last_lsn: Lsn,
    max_payload_bytes: u32,
) -> io::Result<Option<(u64, Lsn)>> {
    let missing = last_lsn + 1;
    let max_lsn = last_lsn + (end - bad_offset) / RECORD_MIN_BYTES as u64 + 1;
    // Equivalent mutant (`+` to `*`, .cargo/mutants.toml): a larger overlap only reads bytes
    // past the end of the largest record any examined position can start.
    let overlap = (RECORD_HEADER_BYTES as u64 + max_payload_bytes as u64).min(end);
    let mut buf = Vec::new();
    let mut at = bad_offset + 1;
    while at + RECORD_MIN_BYTES as u64 <= end {
        // Equivalent mutants (either `+` to `*`, .cargo/mutants.toml): a later `read_end` only
        // reads more; the positions examined are bounded by `WINDOW_BYTES` below.
        let read_end = (at + WINDOW_BYTES + overlap).min(end);
        buf.resize((read_end - at) as usize, 0);
        read_exact_at(file, &mut buf, at)?;
        // Equivalent mutant (`-` to `+`, .cargo/mutants.toml): in the last window the loop
        // below stops where `peek_lsn` finds fewer than 16 bytes, before `read_end - at`.
        let positions = WINDOW_BYTES.min(read_end - at) as usize;
        let mut i = 0;
        // Equivalent mutant (`<` to `<=`, .cargo/mutants.toml): examining position
        // `WINDOW_BYTES` too finds what the next window, which starts there, would find.
        while i < positions {
            let Some(lsn) = record::peek_lsn(&buf[i..]) else {
                break;
            };
            if lsn > last_lsn
                && lsn <= max_lsn
                && let Ok(rec) = record::decode(&buf[i..], max_payload_bytes)
            {
                // Untracked: no information, so assume the worst (synced).
                if rec.synced_lsn.is_none_or(|s| s >= missing) {
                    return Ok(Some((at + i as u64, rec.lsn)));
                }
                i += rec.encoded_len();
                continue;
            }
            i = if lsn == 0 {
                past_zero_lsn(&buf, i)
            } else {
                i + 1
            };
        }
        at += i.max(1) as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::backend::pwrite::PwriteBackend;
    use crate::keyspace::Command;

    /// Every position of one non-zero byte, of two equal ones (an XOR of a block would cancel
    /// them) and of two different ones (the second at `second(i, len)`), in buffers of every
    /// length around a few blocks, and all zeros: `fast` gives the answer of `plain`, a
    /// byte-wise search.
    fn agrees_with_bytewise(
        fast: fn(&[u8]) -> Option<usize>,
        plain: fn(&[u8]) -> Option<usize>,
        second: fn(usize, usize) -> usize,
    ) {
        for len in 0..=200 {
            let zeros = vec![0u8; len];
            assert_eq!(fast(&zeros), None, "len {len}");
            for i in 0..len {
                for (a, b) in [(1u8, None), (0x80, Some(0x80)), (1, Some(2))] {
                    let mut v = zeros.clone();
                    v[i] = a;
                    if let Some(b) = b {
                        v[second(i, len)] = b;
                    }
                    assert_eq!(fast(&v), plain(&v), "len {len}, byte {i}");
                }
            }
        }
    }

    #[test]
    fn last_nonzero_agrees_with_a_bytewise_search() {
        agrees_with_bytewise(
            last_nonzero,
            |b| b.iter().rposition(|&x| x != 0),
            |i, _| i / 2,
        );
    }

    #[test]
    fn first_nonzero_agrees_with_a_bytewise_search() {
        agrees_with_bytewise(
            first_nonzero,
            |b| b.iter().position(|&x| x != 0),
            |i, len| (i + len) / 2,
        );
    }

    /// [`past_zero_lsn`] by its definition: the first later position whose LSN field holds a
    /// non-zero byte, or that `buf` does not hold a whole field for.
    fn plain_past_zero_lsn(buf: &[u8], i: usize) -> usize {
        (i + 1..)
            .find(|&p| p + LSN_FIELD_END > buf.len() || buf[p + 8..p + 16].iter().any(|&b| b != 0))
            .expect("some position")
    }

    /// Every position with a zero LSN field, in buffers with non-zero bytes at every offset
    /// around a few blocks (and none): the definition's answer.
    #[test]
    fn past_zero_lsn_skips_exactly_the_positions_with_zero_lsn_fields() {
        for len in 16..=160 {
            for one in (0..len).map(Some).chain([None]) {
                let mut buf = vec![0u8; len];
                if let Some(at) = one {
                    buf[at] = 7;
                    buf[(at + len) / 2] |= 1;
                }
                for i in 0..=len - LSN_FIELD_END {
                    if buf[i + 8..i + 16].iter().all(|&b| b == 0) {
                        assert_eq!(
                            past_zero_lsn(&buf, i),
                            plain_past_zero_lsn(&buf, i),
                            "len {len}, non-zero at {one:?}, from {i}"
                        );
                    }
                }
            }
        }
    }

    /// A vouching record (sync untracked) after a run of zeros, at every offset across a few
    /// blocks and past the first read window's positions, is found where it starts; with
    /// non-zero garbage instead of zeros in front, too. The companion: the same record with a
    /// wrong checksum byte is not found, so the check can fail.
    #[test]
    fn a_record_after_a_run_of_zeros_is_found_at_every_offset() {
        let dir = tempfile::tempdir().unwrap();
        let backend = PwriteBackend::new();
        let cmd = Command::Set {
            key: b"k".to_vec(),
            value: vec![0, 0, 0, 9],
        };
        let mut rec = Vec::new();
        record::encode(&mut rec, 41, None, &cmd, 1024).unwrap();
        for (n, at) in (1..300).chain([4096, 4097, 65_536 + 3]).enumerate() {
            for garbage in [0u8, 0xAB] {
                for broken in [false, true] {
                    let path = dir.path().join(format!("log-{n}-{garbage}-{broken}"));
                    let mut bytes = vec![garbage; at];
                    bytes[0] = 0xFF; // the bad record's first byte
                    bytes.extend_from_slice(&rec);
                    if broken {
                        bytes[at + 5] ^= 1;
                    }
                    bytes.extend_from_slice(&[0u8; 100]);
                    std::fs::write(&path, &bytes).unwrap();
                    let file = backend
                        .open(&path, crate::backend::OpenMode::Existing)
                        .unwrap();
                    let found =
                        find_valid_after(file.as_ref(), 0, bytes.len() as u64, 40, 1024).unwrap();
                    let want = (!broken).then_some((at as u64, 41));
                    assert_eq!(
                        found, want,
                        "record at {at}, garbage {garbage:#x}, broken {broken}"
                    );
                }
            }
        }
    }
}
