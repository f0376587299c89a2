//! Loading a snapshot file into a fresh keyspace on two threads. The calling thread (the
//! reader) reads the file in large pieces, computes its CRC32C as the pieces arrive, decodes
//! the entries whose bytes are in, allocates them and hashes their keys
//! ([`crate::keyspace::bulk`]), and sends them in batches; meanwhile an inserter thread inserts
//! the batches into a private keyspace (no hashing; a read-only probe of a group of keys, whose
//! cache misses overlap, then one insert per key). The entries are allocated on the calling
//! thread, whose allocator state the engine goes on using; the inserter allocates only the
//! map's two large arrays.
//!
//! Verify first: decoding runs on bytes no checksum has vouched for yet, which is safe because
//! it trusts nothing ([`format::decode_entries`]), but the keyspace is private to [`build`]: it
//! is returned only once the footer checksum matched ([`format::verify_frame`] over the bytes
//! actually read), every entry decoded, no key repeated and the count matched the footer. On
//! any failure it is dropped, so nothing unverified ever becomes the engine's state. Errors
//! come in file order, the checksum first: a damaged body is a checksum mismatch, whatever the
//! damage did to decoding.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use super::format::{self, FOOTER_BYTES, FormatError, HEADER_BYTES, Verified};
use crate::backend::{BackendFile, read_exact_at};
use crate::error::{Error, Result};
use crate::keyspace::bulk::{Prepared, Preparer};
use crate::keyspace::{Entry, Keyspace};

/// Bytes per read call: large, so that a load costs few calls, small enough that decoding
/// starts soon after the first one. A failed read names its offset to within this.
const READ_BYTES: usize = 4 << 20;

/// Entries per batch sent to the inserter: large enough that channel operations are
/// rare, small enough that a batch (48 KiB) is reused rather than mapped and unmapped.
const BATCH_ENTRIES: usize = 1024;

/// Batches the reader may run ahead of the inserter.
const BATCHES_IN_FLIGHT: usize = 64;

/// Entries inserted together after one read-only probe of them all
/// ([`Keyspace::insert_prepared_group`]): enough misses in flight to overlap, few enough that
/// the memory they bring in is still cached when the inserts come.
const GROUP_ENTRIES: usize = 16;

/// Decoded entries with their file offsets.
type Batch = Vec<(u64, Prepared)>;

/// Reads the snapshot `file` of `len` bytes (at `path`) into a new keyspace, which exists only
/// if the whole file verified (see the module docs).
///
/// # Errors
/// [`Error::Corrupt`] naming `path` and the byte offset when the file does not verify
/// ([`format::verify_frame`]), a key appears twice, an entry does not decode, or the entry
/// count differs from the footer's (in that order of precedence); [`Error::Io`] for a failed
/// read (with its offset) or if the inserter thread cannot be started.
pub(crate) fn build(
    file: &dyn BackendFile,
    len: usize,
    path: &Path,
) -> Result<(Keyspace, Verified)> {
    build_reading(file, len, path, READ_BYTES)
}

/// [`build`], reading `read_bytes` per call.
fn build_reading(
    file: &dyn BackendFile,
    len: usize,
    path: &Path,
    read_bytes: usize,
) -> Result<(Keyspace, Verified)> {
    let corrupt = |e: FormatError| Error::Corrupt {
        path: path.to_path_buf(),
        offset: e.offset,
        reason: e.reason,
    };
    let mut keyspace = Keyspace::new();
    if len >= HEADER_BYTES + FOOTER_BYTES {
        // Presized from the footer's count before it is verified: bounded by the file length.
        let mut footer = [0u8; FOOTER_BYTES];
        let at = (len - FOOTER_BYTES) as u64;
        read_exact_at(file, &mut footer, at).map_err(|e| Error::io("read", path, Some(at), e))?;
        keyspace.reserve(format::entries_hint(len, &footer));
    }
    let preparer = keyspace.preparer();
    let (full_tx, full_rx) = sync_channel(BATCHES_IN_FLIGHT);
    let (empty_tx, empty_rx) = channel();
    let (inserted, scanned) = std::thread::scope(|s| {
        let batches = Batcher {
            preparer: &preparer,
            batch: Vec::with_capacity(BATCH_ENTRIES),
            full: full_tx,
            empty: empty_rx,
        };
        let keyspace = &mut keyspace;
        // Returns at the first repeated key, dropping the receiver: the reader then stops
        // decoding but still reads to the end, for the checksum.
        let inserter = std::thread::Builder::new()
            .name("durlab-snapload".into())
            .spawn_scoped(s, move || insert_all(keyspace, full_rx, empty_tx))
            .map_err(|e| Error::io("spawn inserter thread for", path, None, e))?;
        // The entries are allocated here, on the caller's thread (with the allocator state
        // the engine's threads go on using); returning drops the sender, which ends the
        // inserter's loop, even after a failed read.
        let scanned = read_and_decode(file, len, path, read_bytes, batches);
        let inserted = inserter
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((inserted, scanned))
    })?;
    let scanned = scanned?;
    let verified = format::verify_frame(len, &scanned.header, &scanned.footer, scanned.crc)
        .map_err(corrupt)?;
    inserted.map_err(corrupt)?;
    let decoded = scanned.decoded.map_err(corrupt)?;
    verified.check_count(decoded).map_err(corrupt)?;
    Ok((keyspace, verified))
}

/// What the reader found.
struct Scanned {
    /// CRC32C of every byte before the footer's crc field.
    crc: u32,
    /// Header and footer bytes as read (zeros if the file is too short to hold them).
    header: [u8; HEADER_BYTES],
    footer: [u8; FOOTER_BYTES],
    /// Entries decoded, or why the entry where decoding stopped does not decode.
    decoded: Result<u64, FormatError>,
}

/// Where the reader's decoding stands.
enum Decoding {
    Running,
    /// The inserter hung up: it has failed, nothing more is needed but the checksum.
    Stopped,
    /// An entry of the whole body does not decode.
    Failed(FormatError),
}

/// The reader: reads the whole file in order, checksumming each piece and decoding the
/// entries it completes. Only a window of the file is held: the entry not complete yet, then
/// the last piece read.
///
/// # Errors
/// [`Error::Io`] for a failed read, naming its offset.
fn read_and_decode(
    file: &dyn BackendFile,
    len: usize,
    path: &Path,
    read_bytes: usize,
    mut batches: Batcher<'_>,
) -> Result<Scanned> {
    let read_bytes = read_bytes.max(1);
    let crc_end = len.saturating_sub(4);
    let framed = len >= HEADER_BYTES + FOOTER_BYTES;
    let body_end = if framed { len - FOOTER_BYTES } else { 0 };
    let mut scanned = Scanned {
        crc: 0,
        header: [0; HEADER_BYTES],
        footer: [0; FOOTER_BYTES],
        decoded: Ok(0),
    };
    // `window[..filled]` holds the file's bytes from offset `base` to `read`.
    let mut window = vec![0u8; read_bytes.min(len)];
    let (mut base, mut filled, mut read) = (0usize, 0usize, 0usize);
    // File offset of the next entry, how many entries went out, and (after an entry that
    // did not decode from a prefix) how far to read before trying it again: twice as far,
    // so that a large entry is re-decoded only a logarithmic number of times.
    let (mut next, mut decoded, mut retry_at) = (HEADER_BYTES.min(body_end), 0u64, 0usize);
    let mut state = Decoding::Running;
    while read < len {
        // Keep only what decoding still needs: the bytes from the next entry on.
        let keep_from = match state {
            Decoding::Running => next.min(read),
            Decoding::Stopped | Decoding::Failed(_) => read,
        };
        window.copy_within(keep_from - base..filled, 0);
        filled -= keep_from - base;
        base = keep_from;
        let n = read_bytes.min(len - read);
        if filled + n > window.len() {
            window.resize(filled + n, 0);
        }
        let piece = &mut window[filled..filled + n];
        read_exact_at(file, piece, read as u64)
            .map_err(|e| Error::io("read", path, Some(read as u64), e))?;
        if read < crc_end {
            scanned.crc = crc32c::crc32c_append(scanned.crc, &piece[..n.min(crc_end - read)]);
        }
        if framed {
            copy_overlap(&mut scanned.header, 0, piece, read);
            copy_overlap(&mut scanned.footer, body_end, piece, read);
        }
        filled += n;
        read += n;
        let ready = read.min(body_end);
        let whole = ready == body_end;
        if !matches!(state, Decoding::Running) || ready <= next || (ready < retry_at && !whole) {
            continue;
        }
        let entries = &window[next - base..ready - base];
        let d = format::decode_entries(entries, next as u64, |at, key, entry| {
            batches.push(at, key, entry)
        });
        next += d.bytes;
        decoded += d.entries;
        if d.stopped {
            state = Decoding::Stopped;
        } else if let Some(error) = d.error {
            if whole {
                state = Decoding::Failed(error);
            } else {
                retry_at = next + 2 * (ready - next);
            }
        }
    }
    batches.flush();
    scanned.decoded = match state {
        Decoding::Failed(error) => Err(error),
        Decoding::Running | Decoding::Stopped => Ok(decoded),
    };
    Ok(scanned)
}

/// Copies into `dst`, the file's bytes from offset `dst_at`, the part of `piece`, the file's
/// bytes from offset `piece_at`, that overlaps it.
fn copy_overlap(dst: &mut [u8], dst_at: usize, piece: &[u8], piece_at: usize) {
    let from = dst_at.max(piece_at);
    let to = (dst_at + dst.len()).min(piece_at + piece.len());
    if from < to {
        dst[from - dst_at..to - dst_at].copy_from_slice(&piece[from - piece_at..to - piece_at]);
    }
}

/// The reader's side of the channel: prepares entries and sends them in batches, reusing the
/// batches the inserter sends back.
struct Batcher<'p> {
    preparer: &'p Preparer,
    batch: Batch,
    full: SyncSender<Batch>,
    empty: Receiver<Batch>,
}

impl Batcher<'_> {
    /// Adds one entry; breaks once the inserter has hung up.
    fn push(&mut self, offset: u64, key: Vec<u8>, entry: Entry) -> ControlFlow<()> {
        self.batch.push((offset, self.preparer.prepare(key, entry)));
        if self.batch.len() < BATCH_ENTRIES {
            return ControlFlow::Continue(());
        }
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH_ENTRIES));
        match self.full.send(std::mem::replace(&mut self.batch, next)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }

    /// Sends what remains (if the inserter is gone, it has failed: nothing to do).
    fn flush(self) {
        if !self.batch.is_empty() {
            let _ = self.full.send(self.batch);
        }
    }
}

/// The inserter thread: inserts every batch the reader sends, in order, until it hangs up,
/// [`GROUP_ENTRIES`] at a time. Returns at the first repeated key.
fn insert_all(
    keyspace: &mut Keyspace,
    full: Receiver<Batch>,
    empty: Sender<Batch>,
) -> Result<(), FormatError> {
    let mut group = Vec::with_capacity(GROUP_ENTRIES);
    for mut batch in full {
        let mut entries = batch.drain(..);
        loop {
            group.extend(entries.by_ref().take(GROUP_ENTRIES));
            if group.is_empty() {
                break;
            }
            keyspace
                .insert_prepared_group(&mut group)
                .map_err(|(offset, _)| FormatError {
                    offset,
                    reason: "key already present in an earlier entry".into(),
                })?;
        }
        drop(entries);
        // The reader may have finished: then the batch is simply dropped.
        let _ = empty.send(batch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::pwrite::PwriteBackend;
    use crate::backend::{Backend, OpenMode};
    use crate::keyspace::Value;
    use format::Header;

    /// Loads `image` from a file, reading `read_bytes` per call.
    fn load_reading(
        image: &[u8],
        read_bytes: usize,
    ) -> (std::path::PathBuf, Result<(Keyspace, Verified)>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("durlab.snap");
        std::fs::write(&path, image).unwrap();
        let file = PwriteBackend::new()
            .open(&path, OpenMode::Existing)
            .unwrap();
        let result = build_reading(file.as_ref(), image.len(), &path, read_bytes);
        (path, result)
    }

    /// Loads `image` from a file in reads of a size that splits entries (a few per read), so
    /// that decoding follows the reads.
    fn load_image(image: &[u8]) -> (std::path::PathBuf, Result<(Keyspace, Verified)>) {
        load_reading(image, 4099)
    }

    fn entry(i: usize) -> (Vec<u8>, Entry) {
        let value = Value::Str(format!("value {i}").into_bytes());
        (format!("key:{i:06}").into_bytes(), Entry::new(value))
    }

    /// A valid image of `entries`, with its footer counting `count` entries.
    fn image_counting(entries: &[(Vec<u8>, Entry)], count: u64) -> Vec<u8> {
        let header = Header {
            lsn: 9,
            created_ms: 1,
        };
        format::tests::image_with(header, entries, count)
    }

    fn image(entries: &[(Vec<u8>, Entry)]) -> Vec<u8> {
        image_counting(entries, entries.len() as u64)
    }

    /// Entries spanning several batches, so that the decoder runs ahead of the checksum.
    fn many() -> Vec<(Vec<u8>, Entry)> {
        (0..BATCH_ENTRIES * 5 + 17).map(entry).collect()
    }

    /// Offset of entry `i` in `image(entries)`.
    fn offset_of(entries: &[(Vec<u8>, Entry)], i: usize) -> u64 {
        let mut out = Vec::new();
        for (k, e) in &entries[..i] {
            format::encode_entry(&mut out, k, e);
        }
        (HEADER_BYTES + out.len()) as u64
    }

    /// The refusal of `file`: path, offset and reason. Panics if it loads.
    fn refusal(file: &[u8]) -> (u64, String) {
        match load_image(file) {
            (
                want,
                Err(Error::Corrupt {
                    path,
                    offset,
                    reason,
                }),
            ) => {
                assert_eq!(path, want);
                (offset, reason)
            }
            (_, Ok((ks, _))) => panic!("loaded {} keys from a bad image", ks.len()),
            (_, Err(e)) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn several_batches_load_in_full() {
        let entries = many();
        let (ks, verified) = load_image(&image(&entries)).1.unwrap();
        assert_eq!(verified.header.lsn, 9);
        assert_eq!(verified.entries, entries.len() as u64);
        assert_eq!(ks.len(), entries.len());
        for (k, e) in &entries {
            assert_eq!(ks.get_entry(k), Some(e));
        }
        let (ks, _) = load_image(&image(&[])).1.unwrap();
        assert!(ks.is_empty());
    }

    /// Reads of any size, down to one byte, and entries larger than many reads, load the same.
    #[test]
    fn any_read_size_loads_the_same() {
        let mut entries: Vec<_> = (0..300).map(entry).collect();
        let big = Value::Str(vec![7; 50_000]);
        entries[100].1 = Entry::new(big.clone());
        entries[299].1 = Entry::new(big);
        let file = image(&entries);
        for read_bytes in [1, 7, 64, 1000, 65536, file.len()] {
            let (ks, _) = load_reading(&file, read_bytes).1.unwrap();
            assert_eq!(ks.len(), entries.len(), "reads of {read_bytes}");
            for (k, e) in &entries {
                assert_eq!(ks.get_entry(k), Some(e), "reads of {read_bytes}");
            }
        }
    }

    /// A flipped bit anywhere, even one that leaves every entry decodable, yields no keyspace:
    /// the decoder has run ahead, but its entries are dropped.
    #[test]
    fn a_flipped_bit_never_yields_a_keyspace() {
        let file = image(&many());
        let footer_at = (file.len() - FOOTER_BYTES) as u64;
        let mut at = 0;
        while at < file.len() {
            for bit in [0, 7] {
                let mut bad = file.clone();
                bad[at] ^= 1 << bit;
                let (offset, reason) = refusal(&bad);
                assert!(offset <= footer_at, "flip at {at}: offset {offset}");
                if at >= HEADER_BYTES && at < footer_at as usize {
                    // The body decodes or not, but the checksum is checked first.
                    assert_eq!(offset, footer_at, "flip at {at}: {reason}");
                    assert!(reason.contains("checksum mismatch"), "{reason}");
                }
            }
            at += 997;
        }
    }

    #[test]
    fn a_truncated_image_is_refused_at_an_offset_within_it() {
        let file = image(&many());
        for len in [
            0,
            10,
            HEADER_BYTES + FOOTER_BYTES,
            file.len() / 3,
            file.len() - 1,
        ] {
            let (offset, _) = refusal(&file[..len]);
            assert!(offset <= len as u64, "len {len}: offset {offset}");
        }
    }

    #[test]
    fn a_repeated_key_is_refused_at_its_second_entry() {
        let mut entries = many();
        let dup = BATCH_ENTRIES * 3 + 5;
        entries[dup].0 = entries[2].0.clone();
        let (offset, reason) = refusal(&image(&entries));
        assert_eq!(offset, offset_of(&entries, dup));
        assert!(reason.contains("already present"), "{reason}");
    }

    #[test]
    fn an_entry_that_does_not_decode_is_refused_at_its_offset() {
        let entries = many();
        for bad_entry in [1, BATCH_ENTRIES * 2 + 3, entries.len() - 1] {
            let mut file = image(&entries);
            let at = offset_of(&entries, bad_entry) as usize;
            file[at] = 0x7f; // no such entry type
            let body_end = file.len() - FOOTER_BYTES;
            file.truncate(body_end);
            let crc = crc32c::crc32c(&file);
            file.extend_from_slice(&format::footer(entries.len() as u64, crc));
            let (offset, reason) = refusal(&file);
            assert_eq!(offset, at as u64, "entry {bad_entry}");
            assert!(reason.contains("unknown entry type"), "{reason}");
        }
    }

    #[test]
    fn a_count_that_differs_from_the_footer_is_refused() {
        let entries = many();
        let file = image_counting(&entries, entries.len() as u64 - 1);
        let (offset, reason) = refusal(&file);
        assert_eq!(offset, (file.len() - FOOTER_BYTES) as u64);
        assert!(reason.contains("footer counts"), "{reason}");
    }
}
