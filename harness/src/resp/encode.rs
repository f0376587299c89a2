//! RESP2 encoding of replies and commands.

use super::Value;

/// Appends `*n\r\n`.
pub fn array_header(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a bulk string.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
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
    fn line(out: &mut Vec<u8>, kind: u8, text: &str) {
        out.push(kind);
        out.extend(
            text.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        out.extend_from_slice(b"\r\n");
    }
    match value {
        Value::Simple(s) => line(out, b'+', s),
        Value::Error(e) => line(out, b'-', e),
        Value::Int(n) => line(out, b':', &n.to_string()),
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
