//! Property tests of the two decoders that read what a crash left behind: the log record
//! decoder and the I/O trace reader. Neither may panic on any bytes, and neither may return
//! anything its checksums did not vouch for.

use std::path::Path;

use durlab_engine::BackendKind;
use durlab_engine::Command;
use durlab_engine::aof::record::{self, RECORD_HEADER_BYTES};
use durlab_engine::backend::recording::{RecordingBackend, decode_trace};
use durlab_engine::backend::{Backend, OpenMode, open_backend};
use proptest::prelude::*;

const MAX: u32 = 1 << 20;

fn set(key: &[u8], value: &[u8]) -> Command {
    Command::Set {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn frames(cmds: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (k, v)) in cmds.iter().enumerate() {
        record::encode(&mut out, i as u64 + 1, Some(i as u64), &set(k, v), MAX).unwrap();
    }
    out
}

/// If `decode` accepts `buf`, the accepted frame re-encodes to exactly the bytes it covered.
fn accepted_is_vouched_for(buf: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(rec) = record::decode(buf, MAX) {
        prop_assert!(rec.encoded_len() <= buf.len());
        prop_assert!(rec.payload.len() + RECORD_HEADER_BYTES == rec.encoded_len());
        if let Ok(cmd) = Command::decode(rec.payload) {
            let mut again = Vec::new();
            record::encode(&mut again, rec.lsn, rec.synced_lsn, &cmd, MAX).unwrap();
            prop_assert_eq!(&again[..], &buf[..rec.encoded_len()]);
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn record_decode_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        accepted_is_vouched_for(&bytes)?;
    }

    #[test]
    fn record_decode_mutated_streams(
        cmds in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..20), prop::collection::vec(any::<u8>(), 0..300)),
            1..6),
        at in any::<usize>(),
        xor in 1u8..=255,
        cut in any::<usize>(),
    ) {
        let good = frames(&cmds);
        let mut bad = good.clone();
        let at = at % bad.len();
        bad[at] ^= xor;
        bad.truncate(at + 1 + cut % (good.len() - at));
        // Walk the stream as recovery does: every accepted record lies wholly before the
        // damage and is the original record.
        let mut off = 0;
        while let Ok(rec) = record::decode(&bad[off..], MAX) {
            let end = off + rec.encoded_len();
            prop_assert!(end <= at, "a record covering the damaged byte {} was accepted", at);
            prop_assert_eq!(&bad[off..end], &good[off..end]);
            off = end;
        }
        accepted_is_vouched_for(&bad[off..])?;
    }

    #[test]
    fn trace_reader_arbitrary_tails(
        keep in any::<usize>(),
        tail in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let good = recorded_trace();
        let full = decode_trace(&good, Path::new("t")).unwrap();
        let keep = keep % (good.len() + 1);
        let mut bytes = good[..keep].to_vec();
        bytes.extend_from_slice(&tail);
        if let Ok(t) = decode_trace(&bytes, Path::new("t")) {
            // Whatever follows `keep` is random: only entries wholly before it can be accepted
            // (a random entry passing its CRC32C is a 2^-32 event).
            prop_assert!(t.entries.len() <= full.entries.len());
            for (a, b) in t.entries.iter().zip(&full.entries) {
                prop_assert_eq!(a, b);
            }
        }
    }
}

/// A small real trace, recorded once.
fn recorded_trace() -> Vec<u8> {
    static TRACE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TRACE
        .get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("t.trace");
            let b =
                RecordingBackend::new(open_backend(BackendKind::Pwrite).unwrap(), &path).unwrap();
            let f = b.open(&tmp.path().join("f"), OpenMode::CreateNew).unwrap();
            for i in 0..20u64 {
                f.write_all_at(&[i as u8 + 1; 40], i * 40).unwrap();
                if i % 5 == 0 {
                    f.sync_data().unwrap();
                }
            }
            b.rename(&tmp.path().join("f"), &tmp.path().join("g"))
                .unwrap();
            b.sync_dir(tmp.path()).unwrap();
            std::fs::read(&path).unwrap()
        })
        .clone()
}
