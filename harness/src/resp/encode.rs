//! RESP2 encoding of replies and commands. Appends to a buffer without allocating.

use std::io::Write as _;

use durlab_engine::Reply;

use super::Value;

/// Appends `kind`, the decimal `n` and `\r\n` (`*3\r\n`, `$5\r\n`, `:42\r\n`).
fn header(out: &mut Vec<u8>, kind: u8, n: impl std::fmt::Display) {
    out.push(kind);
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}\r\n");
}

/// Appends `*n\r\n`.
pub fn array_header(out: &mut Vec<u8>, n: usize) {
    header(out, b'*', n);
}

/// Appends a bulk string.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    header(out, b'$', bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends `+text` or `-text` (`kind`); line breaks, which RESP cannot carry there, become
/// spaces.
fn line(out: &mut Vec<u8>, kind: u8, text: &str) {
    out.push(kind);
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Appends an engine reply, encoded as [`value`] encodes `Value::from(reply)`.
pub fn reply(out: &mut Vec<u8>, reply: &Reply) {
    match reply {
        Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
        Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
        Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
        Reply::Int(n) => header(out, b':', n),
        Reply::Bulk(b) => bulk(out, b),
        Reply::Error(e) => line(out, b'-', e),
        Reply::Array(items) => {
            array_header(out, items.len());
            for r in items {
                self::reply(out, r);
            }
        }
    }
}

/// Appends a command (an array of bulk strings), as clients send them.
pub fn command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    array_header(out, args.len());
    for a in args {
        bulk(out, a.as_ref());
    }
}

/// Appends `value`. Line breaks in simple strings and errors (which RESP cannot carry) are
/// replaced by spaces.
pub fn value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Simple(s) => line(out, b'+', s),
        Value::Error(e) => line(out, b'-', e),
        Value::Int(n) => header(out, b':', n),
        Value::Bulk(b) => bulk(out, b),
        Value::Nil => out.extend_from_slice(b"$-1\r\n"),
        Value::NilArray => out.extend_from_slice(b"*-1\r\n"),
        Value::Array(items) => {
            array_header(out, items.len());
            for v in items {
                self::value(out, v);
            }
        }
    }
}

/// `value` encoded into a new buffer.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    value(&mut out, v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_replies_encode_as_their_values() {
        let replies = [
            Reply::Ok,
            Reply::Nil,
            Reply::Int(-42),
            Reply::Bulk(b"a\r\nb".to_vec()),
            Reply::Error("WRONGTYPE x\r\ny".into()),
            Reply::Array(vec![Reply::Int(1), Reply::Array(vec![Reply::Nil])]),
        ];
        for r in replies {
            let mut direct = Vec::new();
            reply(&mut direct, &r);
            assert_eq!(direct, to_vec(&Value::from(r.clone())), "{r:?}");
        }
    }
}
