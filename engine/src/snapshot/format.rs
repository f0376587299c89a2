//! The snapshot file format: a 32-byte header, typed entries, a 24-byte footer whose CRC32C
//! covers every byte before it. Byte layout: `docs/format.md`, "Snapshot file".
//!
//! Entries reuse the command payload's primitives (`u32`-length byte strings, `u32` counts,
//! little-endian integers, IEEE-754 score bits), so one reader implementation bounds every
//! allocation by the bytes that remain.

use std::ops::ControlFlow;

use crate::Lsn;
use crate::keyspace::codec::{self, MIN_PAIR, MIN_SCORED, Reader};
use crate::keyspace::{DecodeError, Entry, Group, Hash, Pending, Stream, StreamId, Value, ZSet};

pub const HEADER_BYTES: usize = 32;
pub const FOOTER_BYTES: usize = 24;
pub const MAGIC: [u8; 8] = *b"DURLSNAP";
pub const FOOTER_MAGIC: [u8; 8] = *b"DURLSEND";
/// The version written. Version 2 added the entry type [`tag::STREAM_GROUPS`]; a version 1
/// file (which never holds one) reads as before.
pub const VERSION: u32 = 2;
/// The oldest version read.
pub const OLDEST_VERSION: u32 = 1;

/// Entry type tags. 0 is never used, so that zeros are rejected.
mod tag {
    pub const STRING: u8 = 1;
    pub const HASH: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const STREAM: u8 = 4;
    /// A stream with its counters and consumer groups (version 2). Streams whose counters
    /// are what [`super::Stream::from_parts`] gives and that have no group keep [`STREAM`].
    pub const STREAM_GROUPS: u8 = 5;
}

/// Smallest encoding of a consumer group: empty name (4), last id (16), entries-read flag
/// (1), consumer count (4), pending count (4).
const MIN_GROUP: usize = 4 + 16 + 1 + 4 + 4;
/// Smallest encoding of a consumer: empty name (4), seen time (8).
const MIN_CONSUMER: usize = 4 + 8;
/// Smallest (and only) size of a pending entry: id (16), consumer index (4), delivery time
/// (8), delivery count (8).
const PENDING_BYTES: usize = 16 + 4 + 8 + 8;

/// True if `s` needs [`tag::STREAM_GROUPS`]: it has groups, or counters that
/// [`Stream::from_parts`] would not rebuild.
fn needs_groups_tag(s: &Stream) -> bool {
    s.groups().len() > 0
        || s.entries_added() != s.len() as u64
        || s.max_deleted_id() != StreamId::default()
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
        Value::Stream(s) if needs_groups_tag(s) => tag::STREAM_GROUPS,
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
            if kind == tag::STREAM_GROUPS {
                encode_groups(out, s);
            }
        }
    }
}

/// The part of a [`tag::STREAM_GROUPS`] entry after the stream's entries.
fn encode_groups(out: &mut Vec<u8>, s: &Stream) {
    codec::put_u64(out, s.entries_added());
    codec::put_id(out, s.max_deleted_id());
    codec::put_len(
        out,
        s.groups().len(),
        codec::MAX_COUNT,
        "consumer group count",
    );
    for (name, g) in s.groups() {
        codec::put_blob(out, name);
        codec::put_id(out, g.last_id);
        codec::put_opt_u64(out, g.entries_read);
        let consumers = g.consumers();
        codec::put_len(out, consumers.len(), codec::MAX_COUNT, "consumer count");
        for (name, c) in consumers {
            codec::put_blob(out, name);
            codec::put_u64(out, c.seen_time_ms);
        }
        codec::put_len(out, g.pel().len(), codec::MAX_COUNT, "pending entry count");
        // Consumers are in name order: a pending entry names its holder by index.
        let names: Vec<&[u8]> = consumers.keys().map(Vec::as_slice).collect();
        for (id, p) in g.pel() {
            let index = names
                .binary_search(&p.consumer.as_slice())
                .expect("group invariant: a pending entry's holder is a consumer");
            codec::put_id(out, *id);
            // At most MAX_COUNT consumers (checked above), so the index fits in a u32.
            codec::put_len(out, index, codec::MAX_COUNT, "consumer index");
            codec::put_u64(out, p.delivery_time_ms);
            codec::put_u64(out, p.delivery_count);
        }
    }
}

/// Reads what [`encode_groups`] wrote into `stream`.
fn decode_groups(r: &mut Reader<'_>, stream: &mut Stream) -> Result<(), EntryError> {
    let entries_added = r.u64()?;
    let max_deleted = r.id()?;
    stream
        .set_counters(entries_added, max_deleted)
        .map_err(EntryError::Invalid)?;
    let groups = r.count(MIN_GROUP)?;
    for _ in 0..groups {
        let name = r.blob()?;
        let last_id = r.id()?;
        let entries_read = r.opt_u64("entries-read flag is neither 0 nor 1")?;
        let n = r.count(MIN_CONSUMER)?;
        let mut consumers = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.blob()?;
            consumers.push((name, r.u64()?));
        }
        if consumers.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(EntryError::Invalid(
                "consumers not in strictly increasing name order",
            ));
        }
        let n = r.count(PENDING_BYTES)?;
        let mut pel = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.id()?;
            let index = r.u32()?;
            let Some((holder, _)) = consumers.get(index) else {
                return Err(EntryError::Invalid(
                    "pending entry names a consumer index out of range",
                ));
            };
            let pending = Pending {
                consumer: holder.clone(),
                delivery_time_ms: r.u64()?,
                delivery_count: r.u64()?,
            };
            pel.push((id, pending));
        }
        let group = Group::from_parts(last_id, entries_read, consumers, pel)
            .map_err(|_| EntryError::Invalid("pending entries out of order"))?;
        stream
            .insert_group(name, group)
            .map_err(EntryError::Invalid)?;
    }
    Ok(())
}

/// What a verified snapshot image holds: header checked, footer checksum matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub header: Header,
    /// Entry count from the footer.
    pub entries: u64,
    /// Length of the entries part ([`body`]).
    body_bytes: usize,
}

/// Checks the header and the footer checksum of a whole snapshot file. Nothing in the body is
/// trusted before this succeeds.
///
/// # Errors
/// As [`verify_frame`].
pub fn verify(file: &[u8]) -> Result<Verified, FormatError> {
    let len = file.len();
    if len < HEADER_BYTES + FOOTER_BYTES {
        return Err(too_short(len));
    }
    let crc = crc32c::crc32c(&file[..len - 4]);
    verify_frame(len, &file[..HEADER_BYTES], &file[len - FOOTER_BYTES..], crc)
}

/// Checks a snapshot file of `len` bytes from its `header` and `footer` bytes and `crc`, the
/// CRC32C of its first `len - 4` bytes (everything before the footer's crc field): what
/// [`verify`] does, for a reader that computed the CRC while streaming the file.
///
/// # Errors
/// [`FormatError`] for a file too short, a bad magic, no footer magic (truncated), a checksum
/// mismatch (at the footer's offset), an unsupported version, unknown flags, or a reserved
/// footer field that is not 0; in that order, so damage anywhere in the body is a checksum
/// mismatch.
///
/// # Panics
/// If `header` or `footer` does not have its format's length.
pub fn verify_frame(
    len: usize,
    header: &[u8],
    footer: &[u8],
    crc: u32,
) -> Result<Verified, FormatError> {
    assert_eq!(
        (header.len(), footer.len()),
        (HEADER_BYTES, FOOTER_BYTES),
        "a whole header and footer"
    );
    if len < HEADER_BYTES + FOOTER_BYTES {
        return Err(too_short(len));
    }
    if header[0..8] != MAGIC {
        return Err(FormatError::at(0, "bad magic (not a durlab snapshot)"));
    }
    let footer_at = len - FOOTER_BYTES;
    if footer[0..8] != FOOTER_MAGIC {
        return Err(FormatError::at(
            footer_at,
            "no footer magic at the end of the file (truncated or not a complete snapshot)",
        ));
    }
    let u32_in = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4"));
    let u64_in = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
    let stored = u32_in(footer, 20);
    if stored != crc {
        return Err(FormatError::at(
            footer_at,
            format!("snapshot checksum mismatch (stored {stored:#010x}, computed {crc:#010x})"),
        ));
    }
    let version = u32_in(header, 8);
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(FormatError::at(
            8,
            format!(
                "unsupported snapshot version {version} (this build reads {OLDEST_VERSION} to {VERSION})"
            ),
        ));
    }
    if u32_in(header, 12) != 0 {
        return Err(FormatError::at(12, "unknown header flags"));
    }
    if u32_in(footer, 16) != 0 {
        return Err(FormatError::at(
            footer_at + 16,
            "reserved footer field is not 0",
        ));
    }
    Ok(Verified {
        header: Header {
            lsn: u64_in(header, 16),
            created_ms: u64_in(header, 24),
        },
        entries: u64_in(footer, 8),
        body_bytes: footer_at - HEADER_BYTES,
    })
}

fn too_short(len: usize) -> FormatError {
    FormatError::at(
        len,
        format!(
            "file of {len} bytes is shorter than a header and a footer ({} bytes): truncated",
            HEADER_BYTES + FOOTER_BYTES
        ),
    )
}

/// Smallest encoding of an entry: type, expiry flag, empty key, empty string.
const MIN_ENTRY_BYTES: usize = 1 + 1 + 4 + 4;

/// The entry count in `footer` (not verified yet), for presizing a keyspace: capped by how
/// many entries a file of `len` bytes could hold, so that reserving room for it never
/// allocates more than the input justifies; 0 without the footer magic.
///
/// # Panics
/// If `footer` does not have the footer's length.
pub fn entries_hint(len: usize, footer: &[u8]) -> usize {
    assert_eq!(footer.len(), FOOTER_BYTES, "a whole footer");
    if footer[0..8] != FOOTER_MAGIC {
        return 0;
    }
    let count = u64::from_le_bytes(footer[8..16].try_into().expect("8 bytes"));
    let body_bytes = len.saturating_sub(HEADER_BYTES + FOOTER_BYTES);
    usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min(body_bytes / MIN_ENTRY_BYTES)
}

impl Verified {
    /// Checks that `decoded`, the number of entries [`decode_entries`] found in the whole
    /// body, is the footer's count.
    ///
    /// # Errors
    /// [`FormatError`] at the footer's offset when they differ.
    pub fn check_count(&self, decoded: u64) -> Result<(), FormatError> {
        if decoded == self.entries {
            return Ok(());
        }
        Err(FormatError::at(
            HEADER_BYTES + self.body_bytes,
            format!(
                "footer counts {} entries but the body holds {decoded}",
                self.entries
            ),
        ))
    }
}

/// The entries of a whole snapshot file: the bytes between its header and its footer (empty
/// when the file is too short to hold both). Not verified.
pub fn body(file: &[u8]) -> &[u8] {
    match file.len().checked_sub(FOOTER_BYTES) {
        Some(end) if end >= HEADER_BYTES => &file[HEADER_BYTES..end],
        _ => &[],
    }
}

/// How far [`decode_entries`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes taken by the entries handed to the sink: the next entry starts there.
    pub bytes: usize,
    /// Entries handed to the sink.
    pub entries: u64,
    /// True if the sink stopped the decoding.
    pub stopped: bool,
    /// Why the entry at `bytes` does not decode, if decoding ended there; when `entries` is
    /// only a prefix of the body, that entry may merely be incomplete.
    pub error: Option<FormatError>,
}

/// Decodes the entries packed in `entries` (from file offset `offset`) in order, handing each
/// to `sink` with its file offset, until the end, an entry that does not decode, or `sink`
/// returns [`ControlFlow::Break`].
///
/// Trusts nothing: it runs on bytes that no checksum has vouched for yet without panicking,
/// and allocates at most a small multiple of the input's length (lengths and counts are
/// checked against the bytes that remain first). Only what a verified file yields may be used.
pub fn decode_entries(
    entries: &[u8],
    offset: u64,
    mut sink: impl FnMut(u64, Vec<u8>, Entry) -> ControlFlow<()>,
) -> Decoded {
    let mut r = Reader::new(entries);
    let mut out = Decoded {
        bytes: 0,
        entries: 0,
        stopped: false,
        error: None,
    };
    let at = |pos: usize| offset + pos as u64;
    while r.remaining() > 0 {
        let start = r.pos();
        match decode_entry(&mut r) {
            Ok((key, entry)) => {
                out.bytes = r.pos();
                out.entries += 1;
                if sink(at(start), key, entry).is_break() {
                    out.stopped = true;
                    break;
                }
            }
            Err(e) => {
                let (pos, reason) = match e {
                    EntryError::Decode(d) => (d.offset, d.reason),
                    EntryError::Invalid(reason) => (start, reason),
                };
                out.error = Some(FormatError {
                    offset: at(pos),
                    reason: reason.into(),
                });
                break;
            }
        }
    }
    out
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
    if !(tag::STRING..=tag::STREAM_GROUPS).contains(&kind) {
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
            let mut stream = Stream::from_parts(last_id, entries)
                .map_err(|_| EntryError::Invalid("stream entries out of order or empty"))?;
            if kind == tag::STREAM_GROUPS {
                decode_groups(r, &mut stream)?;
            }
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
pub(crate) mod tests {
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
            (b"g".to_vec(), grouped_stream()),
        ]
    }

    /// A stream with two groups, consumers, pending entries (one of them deleted from the
    /// stream) and non-default counters: every field of [`tag::STREAM_GROUPS`].
    fn grouped_stream() -> Entry {
        use crate::keyspace::{Command, GroupStart, Keyspace, ReadStart};
        let mut ks = Keyspace::new();
        let key = b"g".to_vec();
        for ms in 1..=3 {
            ks.apply(&Command::XAdd {
                key: key.clone(),
                id: XAddId::Explicit(StreamId { ms, seq: 0 }),
                fields: vec![(b"f".to_vec(), b"v".to_vec())],
                maxlen: None,
            });
        }
        for (group, entries_read) in [(b"g1", None), (b"g2", Some(7))] {
            ks.apply(&Command::XGroupCreate {
                key: key.clone(),
                group: group.to_vec(),
                id: GroupStart::Id(StreamId::default()),
                mkstream: false,
                entries_read,
            });
        }
        for (consumer, now_ms) in [(b"b", 10), (b"a", 20)] {
            ks.apply(&Command::XReadGroup {
                key: key.clone(),
                group: b"g1".to_vec(),
                consumer: consumer.to_vec(),
                count: Some(1),
                start: ReadStart::New,
                noack: false,
                now_ms,
            });
        }
        ks.apply(&Command::XDel {
            key: key.clone(),
            ids: vec![StreamId { ms: 1, seq: 0 }],
        });
        let entry = ks.get_entry(&key).unwrap().clone();
        let Value::Stream(s) = &entry.value else {
            unreachable!()
        };
        assert_eq!(s.groups().len(), 2);
        entry
    }

    #[test]
    fn version_1_is_read_and_later_versions_refused() {
        // A version 1 file: the entry types it knew (tag 4 for a plain stream).
        let mut plain = Stream::new();
        plain
            .add(XAddId::Auto, vec![(b"f".to_vec(), b"v".to_vec())])
            .unwrap();
        let entries = vec![(b"x".to_vec(), Entry::new(Value::Stream(plain)))];
        let mut v1 = image(&entries);
        assert_eq!(v1[HEADER_BYTES], tag::STREAM, "a plain stream keeps tag 4");
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        let body_end = v1.len() - 4;
        let crc = crc32c::crc32c(&v1[..body_end]);
        v1[body_end..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_all(&v1).unwrap().1, entries);
        let mut v3 = v1.clone();
        v3[8..12].copy_from_slice(&3u32.to_le_bytes());
        let crc = crc32c::crc32c(&v3[..body_end]);
        v3[body_end..].copy_from_slice(&crc.to_le_bytes());
        let e = decode_all(&v3).unwrap_err();
        assert_eq!(
            (e.offset, e.reason.as_str()),
            (
                8,
                "unsupported snapshot version 3 (this build reads 1 to 2)"
            )
        );
    }

    #[test]
    fn pending_entry_naming_a_missing_consumer_is_refused() {
        let mut out = Vec::new();
        encode_entry(&mut out, b"g", &grouped_stream());
        // Group g2 comes last: name (4 + 2), last id (16), entries-read (9), no consumers (4),
        // nothing pending (4). Before it, g1's last pending entry: id, index (4), time and
        // count (16).
        let g2_bytes = 6 + 16 + 9 + 4 + 4;
        let index_at = out.len() - g2_bytes - 20;
        out[index_at..index_at + 4].copy_from_slice(&9u32.to_le_bytes());
        let d = decode_entries(&out, 0, |_, _, _| ControlFlow::Continue(()));
        assert_eq!(
            d.error.map(|e| e.reason),
            Some("pending entry names a consumer index out of range".into())
        );
    }

    pub(crate) fn image(entries: &[(Vec<u8>, Entry)]) -> Vec<u8> {
        image_with(
            Header {
                lsn: 7,
                created_ms: 1234,
            },
            entries,
            entries.len() as u64,
        )
    }

    /// A valid image of `entries` under `header`, its footer counting `count` entries.
    pub(crate) fn image_with(header: Header, entries: &[(Vec<u8>, Entry)], count: u64) -> Vec<u8> {
        let mut out = header.encode().to_vec();
        for (k, e) in entries {
            encode_entry(&mut out, k, e);
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&footer(count, crc));
        out
    }

    type DecodedImage = (Header, Vec<(Vec<u8>, Entry)>);

    fn decode_all(file: &[u8]) -> Result<DecodedImage, FormatError> {
        let v = verify(file)?;
        let mut out = Vec::new();
        let d = decode_entries(body(file), HEADER_BYTES as u64, |_, k, e| {
            out.push((k, e));
            ControlFlow::Continue(())
        });
        if let Some(e) = d.error {
            return Err(e);
        }
        v.check_count(d.entries)?;
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
    fn sink_gets_file_offsets_and_can_stop() {
        let entries = sample();
        let file = image(&entries);
        let mut offsets = Vec::new();
        let d = decode_entries(body(&file), HEADER_BYTES as u64, |at, _, _| {
            offsets.push(at);
            ControlFlow::Continue(())
        });
        assert_eq!(d.error, None);
        assert_eq!(d.entries, entries.len() as u64);
        assert_eq!(d.bytes, body(&file).len());
        let mut want = Vec::new();
        let mut at = HEADER_BYTES as u64;
        for (k, e) in &entries {
            want.push(at);
            let mut one = Vec::new();
            encode_entry(&mut one, k, e);
            at += one.len() as u64;
        }
        assert_eq!(offsets, want);

        let d = decode_entries(body(&file), 0, |_, _, _| ControlFlow::Break(()));
        assert_eq!(
            (d.entries, d.stopped),
            (1, true),
            "stopped after the first entry"
        );
        assert!(body(&file[..HEADER_BYTES + FOOTER_BYTES - 1]).is_empty());

        // A prefix yields its complete entries and an error at or after the incomplete one.
        let second = (offsets[1] - HEADER_BYTES as u64) as usize;
        let d = decode_entries(&body(&file)[..second + 3], 100, |_, _, _| {
            ControlFlow::Continue(())
        });
        assert_eq!((d.entries, d.bytes), (1, second));
        let error_at = d.error.expect("incomplete entry").offset;
        assert!(error_at >= 100 + second as u64, "{error_at}");
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
