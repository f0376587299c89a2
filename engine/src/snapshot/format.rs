//! The snapshot file format: a 32-byte header, typed entries, a 24-byte footer whose CRC32C
//! covers every byte before it. Byte layout: `docs/format.md`, "Snapshot file".
//!
//! Entries reuse the command payload's primitives (`u32`-length byte strings, `u32` counts,
//! little-endian integers, IEEE-754 score bits), so one reader implementation bounds every
//! allocation by the bytes that remain.

use crate::Lsn;
use crate::keyspace::codec::{self, MIN_PAIR, MIN_SCORED, Reader};
use crate::keyspace::{DecodeError, Entry, Hash, Stream, StreamId, Value, ZSet};

pub const HEADER_BYTES: usize = 32;
pub const FOOTER_BYTES: usize = 24;
pub const MAGIC: [u8; 8] = *b"DURLSNAP";
pub const FOOTER_MAGIC: [u8; 8] = *b"DURLSEND";
pub const VERSION: u32 = 1;

/// Entry type tags. 0 is never used, so that zeros are rejected.
mod tag {
    pub const STRING: u8 = 1;
    pub const HASH: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const STREAM: u8 = 4;
}

/// Smallest encoding of one stream entry: id (16), field count (4), one empty pair (8).
const MIN_STREAM_ENTRY: usize = 16 + 4 + MIN_PAIR;

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The snapshot holds the state after commands `1..=lsn`.
    pub lsn: Lsn,
    /// Wall-clock creation time, ms since the Unix epoch.
    pub created_ms: u64,
}

/// Why bytes are not a valid snapshot; `offset` is from the start of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub offset: u64,
    pub reason: String,
}

impl FormatError {
    fn at(offset: usize, reason: impl Into<String>) -> Self {
        FormatError {
            offset: offset as u64,
            reason: reason.into(),
        }
    }
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.lsn.to_le_bytes());
        out[24..32].copy_from_slice(&self.created_ms.to_le_bytes());
        out
    }
}

/// The footer for a file of `entries` entries whose bytes so far have CRC32C `crc_so_far`.
pub fn footer(entries: u64, crc_so_far: u32) -> [u8; FOOTER_BYTES] {
    let mut out = [0u8; FOOTER_BYTES];
    out[0..8].copy_from_slice(&FOOTER_MAGIC);
    out[8..16].copy_from_slice(&entries.to_le_bytes());
    let crc = crc32c::crc32c_append(crc_so_far, &out[..20]);
    out[20..24].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Appends the encoding of one entry.
///
/// # Panics
/// If a byte string or list exceeds the format's `u32` limits (as [`crate::Command::encode`]).
pub fn encode_entry(out: &mut Vec<u8>, key: &[u8], entry: &Entry) {
    let kind = match &entry.value {
        Value::Str(_) => tag::STRING,
        Value::Hash(_) => tag::HASH,
        Value::ZSet(_) => tag::ZSET,
        Value::Stream(_) => tag::STREAM,
    };
    out.push(kind);
    match entry.expire_at_ms {
        None => out.push(0),
        Some(at) => {
            out.push(1);
            codec::put_u64(out, at);
        }
    }
    codec::put_blob(out, key);
    match &entry.value {
        Value::Str(v) => codec::put_blob(out, v),
        Value::Hash(h) => {
            codec::put_len(out, h.len(), codec::MAX_COUNT, "hash field count");
            for (f, v) in h.iter() {
                codec::put_blob(out, f);
                codec::put_blob(out, v);
            }
        }
        Value::ZSet(z) => {
            codec::put_len(out, z.len(), codec::MAX_COUNT, "zset member count");
            for (score, m) in z.iter() {
                codec::put_u64(out, score.to_bits());
                codec::put_blob(out, m);
            }
        }
        Value::Stream(s) => {
            let last = s.last_id();
            codec::put_u64(out, last.ms);
            codec::put_u64(out, last.seq);
            codec::put_len(out, s.len(), codec::MAX_COUNT, "stream entry count");
            for (id, fields) in s.iter() {
                codec::put_u64(out, id.ms);
                codec::put_u64(out, id.seq);
                codec::put_pairs(out, fields);
            }
        }
    }
}

/// A verified snapshot image: header checked, footer checksum matched.
#[derive(Debug)]
pub struct Verified<'a> {
    pub header: Header,
    /// Entry count from the footer.
    pub entries: u64,
    body: &'a [u8],
}

/// Checks the header and the footer checksum of a whole snapshot file. Nothing in the body is
/// trusted before this succeeds.
///
/// # Errors
/// [`FormatError`] for a file too short, a bad magic or version, unknown flags, or a checksum
/// mismatch (offset of the footer).
pub fn verify(file: &[u8]) -> Result<Verified<'_>, FormatError> {
    if file.len() < HEADER_BYTES + FOOTER_BYTES {
        return Err(FormatError::at(
            file.len(),
            format!(
                "file of {} bytes is shorter than a header and a footer ({} bytes): truncated",
                file.len(),
                HEADER_BYTES + FOOTER_BYTES
            ),
        ));
    }
    if file[0..8] != MAGIC {
        return Err(FormatError::at(0, "bad magic (not a durlab snapshot)"));
    }
    let footer_at = file.len() - FOOTER_BYTES;
    let foot = &file[footer_at..];
    if foot[0..8] != FOOTER_MAGIC {
        return Err(FormatError::at(
            footer_at,
            "no footer magic at the end of the file (truncated or not a complete snapshot)",
        ));
    }
    let stored = u32::from_le_bytes(foot[20..24].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&file[..file.len() - 4]);
    if stored != computed {
        return Err(FormatError::at(
            footer_at,
            format!(
                "snapshot checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        ));
    }
    let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().expect("8 bytes"));
    let version = u32_at(8);
    if version != VERSION {
        return Err(FormatError::at(
            8,
            format!("unsupported snapshot version {version} (expected {VERSION})"),
        ));
    }
    if u32_at(12) != 0 {
        return Err(FormatError::at(12, "unknown header flags"));
    }
    if u32_at(footer_at + 16) != 0 {
        return Err(FormatError::at(
            footer_at + 16,
            "reserved footer field is not 0",
        ));
    }
    Ok(Verified {
        header: Header {
            lsn: u64_at(16),
            created_ms: u64_at(24),
        },
        entries: u64_at(footer_at + 8),
        body: &file[HEADER_BYTES..footer_at],
    })
}

/// Smallest encoding of an entry: type, expiry flag, empty key, empty string.
const MIN_ENTRY_BYTES: usize = 1 + 1 + 4 + 4;

impl Verified<'_> {
    /// The footer's entry count, capped by how many entries the body could hold, so that
    /// reserving room for it never allocates more than the input justifies.
    pub fn entries_bounded(&self) -> usize {
        usize::try_from(self.entries)
            .unwrap_or(usize::MAX)
            .min(self.body.len() / MIN_ENTRY_BYTES)
    }

    /// Decodes every entry in order, handing each to `sink`.
    ///
    /// # Errors
    /// [`FormatError`] with the file offset of the first entry that does not decode, or when
    /// the number of entries differs from the footer's count. Never panics; allocates at most
    /// a small multiple of the body's length.
    pub fn decode_entries(&self, mut sink: impl FnMut(Vec<u8>, Entry)) -> Result<u64, FormatError> {
        let mut r = Reader::new(self.body);
        let mut n = 0u64;
        while r.remaining() > 0 {
            let start = r.pos();
            let (key, entry) = decode_entry(&mut r).map_err(|e| match e {
                EntryError::Decode(d) => FormatError::at(HEADER_BYTES + d.offset, d.reason),
                EntryError::Invalid(reason) => FormatError::at(HEADER_BYTES + start, reason),
            })?;
            sink(key, entry);
            n += 1;
        }
        if n != self.entries {
            return Err(FormatError::at(
                HEADER_BYTES + self.body.len(),
                format!(
                    "footer counts {} entries but the body holds {n}",
                    self.entries
                ),
            ));
        }
        Ok(n)
    }
}

enum EntryError {
    Decode(DecodeError),
    Invalid(&'static str),
}

impl From<DecodeError> for EntryError {
    fn from(e: DecodeError) -> Self {
        EntryError::Decode(e)
    }
}

fn decode_entry(r: &mut Reader<'_>) -> Result<(Vec<u8>, Entry), EntryError> {
    let kind = r.u8()?;
    if !(tag::STRING..=tag::STREAM).contains(&kind) {
        return Err(EntryError::Invalid("unknown entry type"));
    }
    let expire_at_ms = match r.flag("expiry flag is neither 0 nor 1")? {
        false => None,
        true => Some(r.u64()?),
    };
    let key = r.blob()?;
    let value = match kind {
        tag::STRING => Value::Str(r.blob()?),
        tag::HASH => {
            let n = r.count(MIN_PAIR)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let field = r.blob()?;
                pairs.push((field, r.blob()?));
            }
            let hash: Hash = pairs.into_iter().collect();
            if hash.is_empty() || hash.len() != n {
                return Err(EntryError::Invalid("empty hash or duplicate field"));
            }
            Value::Hash(hash)
        }
        tag::ZSET => {
            let n = r.count(MIN_SCORED)?;
            let mut zset = ZSet::new();
            for _ in 0..n {
                let score = r.score()?;
                // NaN was rejected by `score`, so insert cannot fail.
                let _ = zset.insert(score, r.blob()?);
            }
            if zset.is_empty() || zset.len() != n {
                return Err(EntryError::Invalid("empty sorted set or duplicate member"));
            }
            Value::ZSet(zset)
        }
        _ => {
            let last_id = StreamId {
                ms: r.u64()?,
                seq: r.u64()?,
            };
            let n = r.count(MIN_STREAM_ENTRY)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let id = StreamId {
                    ms: r.u64()?,
                    seq: r.u64()?,
                };
                entries.push((id, r.pairs()?));
            }
            let stream = Stream::from_parts(last_id, entries)
                .map_err(|_| EntryError::Invalid("stream entries out of order or empty"))?;
            Value::Stream(stream)
        }
    };
    Ok((
        key,
        Entry {
            value,
            expire_at_ms,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::XAddId;

    fn sample() -> Vec<(Vec<u8>, Entry)> {
        let mut stream = Stream::new();
        stream
            .add(XAddId::Auto, vec![(b"f".to_vec(), b"v".to_vec())])
            .unwrap();
        stream.trim(0);
        stream
            .add(XAddId::Auto, vec![(b"a".to_vec(), b"b".to_vec())])
            .unwrap();
        vec![
            (b"s".to_vec(), Entry::new(Value::Str(b"hello".to_vec()))),
            (
                b"h".to_vec(),
                Entry {
                    value: Value::Hash([(b"f".to_vec(), b"v".to_vec())].into_iter().collect()),
                    expire_at_ms: Some(99),
                },
            ),
            (
                b"z".to_vec(),
                Entry::new(Value::ZSet(
                    ZSet::try_from_pairs([(1.5, b"m".to_vec()), (-2.0, b"n".to_vec())]).unwrap(),
                )),
            ),
            (b"x".to_vec(), Entry::new(Value::Stream(stream))),
            (b"e".to_vec(), Entry::new(Value::Stream(Stream::new()))),
        ]
    }

    pub(crate) fn image(entries: &[(Vec<u8>, Entry)]) -> Vec<u8> {
        let mut out = Header {
            lsn: 7,
            created_ms: 1234,
        }
        .encode()
        .to_vec();
        for (k, e) in entries {
            encode_entry(&mut out, k, e);
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&footer(entries.len() as u64, crc));
        out
    }

    type Decoded = (Header, Vec<(Vec<u8>, Entry)>);

    fn decode_all(file: &[u8]) -> Result<Decoded, FormatError> {
        let v = verify(file)?;
        let mut out = Vec::new();
        v.decode_entries(|k, e| out.push((k, e)))?;
        Ok((v.header, out))
    }

    #[test]
    fn round_trip_every_type() {
        let entries = sample();
        let (header, back) = decode_all(&image(&entries)).unwrap();
        assert_eq!(
            header,
            Header {
                lsn: 7,
                created_ms: 1234
            }
        );
        assert_eq!(back, entries);
    }

    #[test]
    fn every_bit_flip_and_truncation_is_detected() {
        let file = image(&sample());
        for byte in 0..file.len() {
            for bit in 0..8 {
                let mut bad = file.clone();
                bad[byte] ^= 1 << bit;
                assert!(decode_all(&bad).is_err(), "flip {bit} of byte {byte}");
            }
        }
        for len in 0..file.len() {
            assert!(decode_all(&file[..len]).is_err(), "prefix {len}");
        }
    }

    #[test]
    fn count_mismatch_is_refused() {
        let entries = sample();
        let mut file = image(&entries);
        let body_end = file.len() - FOOTER_BYTES;
        file.truncate(body_end);
        let crc = crc32c::crc32c(&file);
        file.extend_from_slice(&footer(entries.len() as u64 + 1, crc));
        let err = decode_all(&file).unwrap_err();
        assert!(err.reason.contains("footer counts"), "{err:?}");
    }

    proptest::proptest! {
        /// Arbitrary bytes, even with a valid checksum around them, never panic.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_all(&body);
            let mut file = Header { lsn: 1, created_ms: 0 }.encode().to_vec();
            file.extend_from_slice(&body);
            let crc = crc32c::crc32c(&file);
            file.extend_from_slice(&footer(3, crc));
            let _ = decode_all(&file);
        }

        /// A valid image with one byte changed and the checksum recomputed never panics (the
        /// decoder itself is exercised, not only the checksum).
        #[test]
        fn mutated_bodies_never_panic(at in proptest::num::usize::ANY, xor in 1u8..=255) {
            let mut file = image(&sample());
            let body_end = file.len() - FOOTER_BYTES;
            let at = HEADER_BYTES + at % (body_end - HEADER_BYTES);
            file[at] ^= xor;
            file.truncate(body_end);
            let crc = crc32c::crc32c(&file);
            file.extend_from_slice(&footer(5, crc));
            let _ = decode_all(&file);
        }
    }
}
