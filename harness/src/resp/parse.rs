//! Bounded, incremental RESP2 parsing: requests for the server and replies for the client.
//!
//! Both parse from the start of a buffer and return `Ok(None)` when the buffer does not yet
//! hold a whole request or reply (read more and call again), or the value and the number of
//! bytes it took. Nothing is copied before it is complete, and no length read from the
//! stream is trusted beyond [`Limits`]: a bad stream gets a [`ProtocolError`] with Redis's
//! wording, never a panic or an unbounded allocation.

use super::Value;

/// A request's arguments and the number of bytes it took.
pub type Parsed = (Vec<Vec<u8>>, usize);

/// Upper bounds on what one request or reply may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string (Redis's `proto-max-bulk-len`, default 512 MiB).
    pub max_bulk_bytes: usize,
    /// Most elements of one array (`*n`).
    pub max_array_len: usize,
    /// Longest inline command, and longest `*n`/`$n` header line (Redis: 64 KiB).
    pub max_inline_bytes: usize,
    /// Most bytes one whole request may take (Redis's `client-query-buffer-limit`, 1 GiB).
    pub max_request_bytes: usize,
    /// Deepest nesting of arrays in a reply.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_bytes: 512 << 20,
            max_array_len: 1 << 20,
            max_inline_bytes: 64 << 10,
            max_request_bytes: 1 << 30,
            max_depth: 32,
        }
    }
}

/// A stream that is not RESP2 (or exceeds [`Limits`]). `Display` is the text after `ERR`, as
/// Redis words it (`Protocol error: invalid bulk length`); the server replies with it and
/// closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

fn perr<T>(text: impl Into<String>) -> Result<T, ProtocolError> {
    Err(ProtocolError(text.into()))
}

/// The line starting at `pos` (without its `\r\n`) and the offset after it, or `None` if the
/// buffer has no `\r\n` yet. A line longer than `max` is an error named `what`.
fn line<'b>(
    buf: &'b [u8],
    pos: usize,
    max: usize,
    what: &str,
) -> Result<Option<(&'b [u8], usize)>, ProtocolError> {
    let rest = &buf[pos..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(i) if i > max => perr(format!("too big {what}")),
        Some(i) => Ok(Some((&rest[..i], pos + i + 2))),
        None if rest.len() > max => perr(format!("too big {what}")),
        None => Ok(None),
    }
}

/// Parses a decimal `i64` as Redis's `string2ll` does (optional `-`, no `+`, no spaces).
pub fn parse_i64(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A length header (`*n` or `$n`): `n` in `-1..=max`; `bad` names the error.
fn length(text: &[u8], max: usize, bad: &str) -> Result<i64, ProtocolError> {
    match parse_i64(text) {
        Some(n) if n >= -1 && usize::try_from(n).map_or(true, |n| n <= max) => Ok(n),
        _ => perr(format!("invalid {bad} length")),
    }
}

/// A bulk body of `len` bytes at `pos`, followed by `\r\n`.
fn bulk_body(buf: &[u8], pos: usize, len: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let end = pos + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return perr("bulk string not terminated by CRLF");
    }
    Ok(Some((&buf[pos..end], end + 2)))
}

/// Where [`scan_request`] found one request's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    /// An array of bulk strings: the arguments are the `(offset, length)` spans of the buffer
    /// that `scan_request` left in its `spans` (none for an empty array).
    Spans { used: usize },
    /// An inline command: its words, unescaped (none for a blank line).
    Inline { args: Vec<Vec<u8>>, used: usize },
}

/// Finds one request at the start of `buf`: an array of bulk strings (its arguments are left
/// as spans of `buf` in `spans`, so nothing is copied), or an inline command (words separated
/// by spaces, with Redis's quoting). `Ok(None)` until the whole request is there.
///
/// # Errors
/// [`ProtocolError`] for anything not RESP2 or over `limits`.
pub fn scan_request(
    buf: &[u8],
    limits: &Limits,
    spans: &mut Vec<(usize, usize)>,
) -> Result<Option<Scanned>, ProtocolError> {
    spans.clear();
    match buf.first() {
        None => Ok(None),
        Some(b'*') => scan_multibulk(buf, limits, spans),
        Some(_) => {
            let Some((text, used)) = line_lf(buf, limits.max_inline_bytes)? else {
                return Ok(None);
            };
            let args = split_inline(text)?;
            Ok(Some(Scanned::Inline { args, used }))
        }
    }
}

/// Parses one request at the start of `buf` as [`scan_request`] finds it, with the arguments
/// copied out (empty for an empty array or blank line, which the caller skips), and the bytes
/// consumed.
///
/// # Errors
/// [`ProtocolError`] for anything not RESP2 or over `limits`.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<Parsed>, ProtocolError> {
    let mut spans = Vec::new();
    Ok(scan_request(buf, limits, &mut spans)?.map(|s| match s {
        Scanned::Spans { used } => {
            let args = spans.iter().map(|&(at, len)| buf[at..at + len].to_vec());
            (args.collect(), used)
        }
        Scanned::Inline { args, used } => (args, used),
    }))
}

/// An inline line ends at `\n` (a `\r` before it is dropped), as in Redis.
fn line_lf(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i > max => perr("too big inline request"),
        Some(i) => {
            let text = &buf[..i];
            Ok(Some((text.strip_suffix(b"\r").unwrap_or(text), i + 1)))
        }
        None if buf.len() > max => perr("too big inline request"),
        None => Ok(None),
    }
}

fn scan_multibulk(
    buf: &[u8],
    limits: &Limits,
    spans: &mut Vec<(usize, usize)>,
) -> Result<Option<Scanned>, ProtocolError> {
    let Some((head, mut pos)) = line(buf, 1, limits.max_inline_bytes, "mbulk count string")? else {
        return Ok(None);
    };
    let n = length(head, limits.max_array_len, "multibulk")?;
    let mut total = 0usize;
    for _ in 0..n.max(0) {
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&c) => return perr(format!("expected '$', got '{}'", c as char)),
        }
        let Some((head, body)) = line(buf, pos + 1, limits.max_inline_bytes, "bulk count string")?
        else {
            return Ok(None);
        };
        let len = length(head, limits.max_bulk_bytes, "bulk")?;
        let len = usize::try_from(len).or_else(|_| perr("invalid bulk length"))?;
        total = total.saturating_add(len);
        if total > limits.max_request_bytes {
            return perr("request exceeds the query buffer limit");
        }
        let Some((_, next)) = bulk_body(buf, body, len)? else {
            return Ok(None);
        };
        spans.push((body, len));
        pos = next;
    }
    Ok(Some(Scanned::Spans { used: pos }))
}

/// Splits an inline command as Redis's `sdssplitargs` does: spaces separate words;
/// `"..."` with `\n \r \t \b \a \\ \" \xHH` escapes, and `'...'` with `\'`; a closing quote
/// must be followed by a space or the end.
///
/// # Errors
/// `unbalanced quotes in request`.
pub fn split_inline(text: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    let unbalanced = || perr("unbalanced quotes in request");
    loop {
        while i < text.len() && text[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == text.len() {
            return Ok(args);
        }
        let mut word = Vec::new();
        match text[i] {
            b'"' => {
                i += 1;
                loop {
                    match text.get(i) {
                        None => return unbalanced(),
                        Some(b'"') => break,
                        Some(b'\\')
                            if text.get(i + 1) == Some(&b'x')
                                && i + 3 < text.len()
                                && text[i + 2].is_ascii_hexdigit()
                                && text[i + 3].is_ascii_hexdigit() =>
                        {
                            let hex = std::str::from_utf8(&text[i + 2..i + 4]).expect("hex digits");
                            word.push(u8::from_str_radix(hex, 16).expect("hex digits"));
                            i += 4;
                            continue;
                        }
                        Some(b'\\') if i + 1 < text.len() => {
                            word.push(match text[i + 1] {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                c => c,
                            });
                            i += 2;
                            continue;
                        }
                        Some(&c) => word.push(c),
                    }
                    i += 1;
                }
                i += 1;
                if i < text.len() && !text[i].is_ascii_whitespace() {
                    return unbalanced();
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match text.get(i) {
                        None => return unbalanced(),
                        Some(b'\'') => break,
                        Some(b'\\') if text.get(i + 1) == Some(&b'\'') => {
                            word.push(b'\'');
                            i += 2;
                            continue;
                        }
                        Some(&c) => word.push(c),
                    }
                    i += 1;
                }
                i += 1;
                if i < text.len() && !text[i].is_ascii_whitespace() {
                    return unbalanced();
                }
            }
            _ => {
                while i < text.len() && !text[i].is_ascii_whitespace() {
                    word.push(text[i]);
                    i += 1;
                }
            }
        }
        args.push(word);
    }
}

/// Parses one reply at the start of `buf` (any RESP2 value, arrays nested up to
/// `limits.max_depth`). Returns the value and the bytes consumed.
///
/// # Errors
/// [`ProtocolError`] for anything not RESP2 or over `limits`.
pub fn parse_value(buf: &[u8], limits: &Limits) -> Result<Option<(Value, usize)>, ProtocolError> {
    value_at(buf, 0, limits, 0)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn value_at(
    buf: &[u8],
    pos: usize,
    limits: &Limits,
    depth: usize,
) -> Result<Option<(Value, usize)>, ProtocolError> {
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some((head, next)) = line(buf, pos + 1, limits.max_inline_bytes, "reply line")? else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some((Value::Simple(text(head)), next))),
        b'-' => Ok(Some((Value::Error(text(head)), next))),
        b':' => match parse_i64(head) {
            Some(n) => Ok(Some((Value::Int(n), next))),
            None => perr("invalid integer reply"),
        },
        b'$' => {
            let n = length(head, limits.max_bulk_bytes, "bulk")?;
            if n < 0 {
                return Ok(Some((Value::Nil, next)));
            }
            let len = usize::try_from(n).or_else(|_| perr("invalid bulk length"))?;
            Ok(bulk_body(buf, next, len)?.map(|(b, end)| (Value::Bulk(b.to_vec()), end)))
        }
        b'*' => {
            let n = length(head, limits.max_array_len, "multibulk")?;
            if n < 0 {
                return Ok(Some((Value::NilArray, next)));
            }
            if depth >= limits.max_depth {
                return perr("reply nested too deeply");
            }
            let mut items = Vec::new();
            let mut at = next;
            for _ in 0..n {
                let Some((v, end)) = value_at(buf, at, limits, depth + 1)? else {
                    return Ok(None);
                };
                items.push(v);
                at = end;
            }
            Ok(Some((Value::Array(items), at)))
        }
        c => perr(format!("unexpected reply type '{}'", c as char)),
    }
}
