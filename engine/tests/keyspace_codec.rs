//! The command payload codec (`docs/format.md`, "Command payload").

mod keyspace_support;

use durlab_engine::keyspace::{Command, DecodeError};
use keyspace_support::*;
use proptest::prelude::*;

#[test]
fn codec_round_trips_every_variant() {
    for cmd in every_variant() {
        let bytes = encode(&cmd);
        assert_eq!(bytes.len(), cmd.encoded_len(), "{cmd:?}");
        let back = Command::decode(&bytes).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert_eq!(back, cmd);
        assert_eq!(encode(&back), bytes, "re-encoding differs for {cmd:?}");
    }
}

#[test]
fn encode_appends() {
    let mut out = vec![0xAA];
    get("k").encode(&mut out);
    assert_eq!(out[0], 0xAA);
    assert_eq!(Command::decode(&out[1..]), Ok(get("k")));
}

#[test]
fn decode_rejects_bad_payloads() {
    let reason = |bytes: &[u8]| Command::decode(bytes).unwrap_err().reason;
    assert_eq!(reason(&[]), "truncated");
    assert_eq!(reason(&[0]), "unknown opcode");
    assert_eq!(reason(&[31, 0, 0, 0, 0]), "unknown opcode");
    assert_eq!(reason(&[0xFF; 16]), "unknown opcode");
    let mut trailing = encode(&get("k"));
    trailing.push(0);
    assert_eq!(
        Command::decode(&trailing),
        Err(DecodeError {
            offset: trailing.len() - 1,
            reason: "trailing bytes after the command"
        })
    );
    // A key length beyond the payload.
    assert_eq!(
        reason(&[2, 5, 0, 0, 0, b'k']),
        "length exceeds the remaining bytes"
    );
    // An XADD id kind byte other than 0 to 3.
    let mut xadd_bytes = encode(&xadd("x", None, &[("f", "v")], None));
    xadd_bytes[6] = 4;
    assert_eq!(Command::decode(&xadd_bytes).unwrap_err().offset, 6);
    // SET option bytes out of range: condition, expiry kind, GET flag.
    let opts = encode(&set_opts(
        "k",
        "v",
        durlab_engine::keyspace::SetCond::Nx,
        durlab_engine::keyspace::SetTtl::Keep,
        true,
    ));
    for at in [11, 12, 13] {
        let mut bad = opts.clone();
        bad[at] = 3;
        assert_eq!(Command::decode(&bad).unwrap_err().offset, at, "byte {at}");
    }
    // FLUSHALL is its opcode alone.
    assert_eq!(reason(&[17, 0]), "trailing bytes after the command");
    // NaN scores, including non-canonical NaN bit patterns.
    for nan in [
        f64::NAN.to_bits(),
        0x7FF0_0000_0000_0001,
        0xFFF8_0000_0000_0000,
    ] {
        let mut p = vec![9, 0, 0, 0, 0, 1, 0, 0, 0];
        p.extend_from_slice(&nan.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            Command::decode(&p),
            Err(DecodeError {
                offset: 9,
                reason: "score is NaN"
            })
        );
    }
}

/// A transaction's encoding, byte by byte as `docs/format.md` gives it.
#[test]
fn multi_layout() {
    let bytes = encode(&multi(vec![get("k"), set("a", "b")]));
    let mut want = vec![13, 2, 0, 0, 0];
    want.extend_from_slice(&[6, 0, 0, 0, 2, 1, 0, 0, 0, b'k']);
    want.extend_from_slice(&[11, 0, 0, 0, 1, 1, 0, 0, 0, b'a', 1, 0, 0, 0, b'b']);
    assert_eq!(bytes, want);
}

#[test]
fn decode_rejects_bad_transactions() {
    let decode_err = |bytes: &[u8]| Command::decode(bytes).unwrap_err();
    let at = |offset, reason| DecodeError { offset, reason };
    // Nesting: refused at the nested opcode, even though its own encoding is fine.
    let nested = encode(&multi(vec![set("a", "1"), multi(vec![set("b", "2")])]));
    let inner_at = 5 + 4 + set("a", "1").encoded_len() + 4;
    assert_eq!(
        decode_err(&nested),
        at(inner_at, "transaction nested in a transaction")
    );
    let empty_nested = encode(&multi(vec![multi(vec![])]));
    assert_eq!(
        decode_err(&empty_nested),
        at(9, "transaction nested in a transaction")
    );
    // A count the remaining bytes cannot hold (9 bytes per sub-command at least).
    assert_eq!(
        decode_err(&[13, 2, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 0]),
        at(1, "count exceeds the remaining bytes")
    );
    let mut huge = vec![13];
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0; 64]);
    assert_eq!(
        decode_err(&huge),
        at(1, "count exceeds the remaining bytes")
    );
    // A nested length beyond the payload (the last sub-command truncated).
    let two = encode(&multi(vec![set("a", "1"), set("b", "2")]));
    let last = two.len() - set("b", "2").encoded_len() - 4;
    assert_eq!(
        decode_err(&two[..two.len() - 1]),
        at(last, "length exceeds the remaining bytes")
    );
    // A nested length shorter than its command: the command is truncated inside its bound,
    // reported at its offset in the whole payload.
    let mut short = two.clone();
    short[5] -= 1;
    assert_eq!(
        decode_err(&short),
        at(9 + 6, "length exceeds the remaining bytes")
    );
    // A nested length longer than its command: the command has trailing bytes.
    let mut long = encode(&multi(vec![get("k")]));
    long[5] += 1;
    long.push(0);
    assert_eq!(
        decode_err(&long),
        at(
            9 + get("k").encoded_len(),
            "trailing bytes after the command"
        )
    );
    // Bytes after the last sub-command.
    let mut trailing = encode(&multi(vec![get("k")]));
    trailing.push(0);
    assert_eq!(
        decode_err(&trailing),
        at(trailing.len() - 1, "trailing bytes after the command")
    );
    // A bad sub-command (NaN score, unknown opcode), at its offset in the whole payload.
    let nan = encode(&multi(vec![get("k"), zadd("z", &[(f64::NAN, "m")])]));
    let zadd_at = 5 + 4 + get("k").encoded_len() + 4;
    assert_eq!(decode_err(&nan), at(zadd_at + 10, "score is NaN"));
    let mut unknown = encode(&multi(vec![get("k")]));
    unknown[9] = 0;
    assert_eq!(decode_err(&unknown), at(9, "unknown opcode"));
}

#[test]
fn every_strict_prefix_fails() {
    for cmd in every_variant() {
        let bytes = encode(&cmd);
        for cut in 0..bytes.len() {
            assert!(
                Command::decode(&bytes[..cut]).is_err(),
                "{cmd:?} cut at {cut}"
            );
        }
    }
}

proptest! {
    #[test]
    fn prop_codec_round_trip(cmd in any_command()) {
        let bytes = encode(&cmd);
        prop_assert_eq!(bytes.len(), cmd.encoded_len());
        let back = Command::decode(&bytes);
        prop_assert_eq!(back.as_ref(), Ok(&cmd));
        prop_assert_eq!(encode(&back.unwrap()), bytes);
    }

    #[test]
    fn prop_strict_prefixes_fail(cmd in any_command()) {
        let bytes = encode(&cmd);
        for cut in 0..bytes.len() {
            prop_assert!(Command::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(cmd) = Command::decode(&bytes) {
            prop_assert_eq!(encode(&cmd), bytes);
        }
    }

    #[test]
    fn prop_mutated_encodings_never_panic(
        cmd in any_command(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&cmd);
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        for candidate in [&bytes[..], &bytes[..cut.index(bytes.len() + 1)]] {
            if let Ok(cmd) = Command::decode(candidate) {
                prop_assert_eq!(encode(&cmd), candidate.to_vec());
            }
        }
    }
}

/// `SET k v NX PXAT 7 GET`, byte by byte as `docs/format.md` gives it.
#[test]
fn set_options_layout() {
    let bytes = encode(&set_opts(
        "k",
        "v",
        durlab_engine::keyspace::SetCond::Nx,
        durlab_engine::keyspace::SetTtl::At(7),
        true,
    ));
    let mut want = vec![14, 1, 0, 0, 0, b'k', 1, 0, 0, 0, b'v', 1, 2];
    want.extend_from_slice(&7u64.to_le_bytes());
    want.push(1);
    assert_eq!(bytes, want);
    assert_eq!(bytes.len(), 22);
}
