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
    /// Longest bulk string. The default is Redis's `proto-max-bulk-len` (512 MiB): what the
    /// harness's client accepts in a reply from redis-server. `durlab serve` lowers it to the
    /// log's record limit (`--max-bulk-bytes`, at most 64 MiB, `durlab_engine::config::MAX_RECORD_BYTES`),
    /// the one limit a value stored there has.
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
/// Scans from the start of `buf` on every call; a server that calls again as more bytes of
/// one request arrive should keep a [`Scanner`], which resumes instead (linear work overall).
///
/// # Errors
/// [`ProtocolError`] for anything not RESP2 or over `limits`.
pub fn scan_request(
    buf: &[u8],
    limits: &Limits,
    spans: &mut Vec<(usize, usize)>,
) -> Result<Option<Scanned>, ProtocolError> {
    let mut scanner = Scanner {
        spans: std::mem::take(spans),
        state: ScanState::Start,
    };
    let scanned = scanner.scan(buf, limits);
    *spans = scanner.spans;
    scanned
}

/// Where a [`Scanner`] stopped inside an incomplete request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ScanState {
    /// Nothing of the current request examined yet.
    #[default]
    Start,
    /// Inside an array of `n` bulk strings: the next argument header starts at `pos`, and
    /// `total` bytes of arguments (the `spans` so far) have been accepted.
    MultiBulk { n: usize, pos: usize, total: usize },
    /// Inside an inline command: the first `searched` bytes hold no `\n`.
    Inline { searched: usize },
}

/// An incremental request scanner for one connection: like [`scan_request`], but a call on a
/// buffer that holds more of the same incomplete request resumes where the previous call
/// stopped, so a request that arrives in many reads (a million arguments sent slowly) is
/// examined once in total rather than once per read.
///
/// Guarantees: the same results and error texts as [`scan_request`] for the same bytes,
/// however they are split between calls, provided every call passes a buffer that starts at
/// the current request and extends the previous call's buffer (the caller may move the bytes,
/// not change them). After a complete request or an error the scanner starts afresh.
#[derive(Debug, Default)]
pub struct Scanner {
    spans: Vec<(usize, usize)>,
    state: ScanState,
}

impl Scanner {
    /// A scanner at the start of a request.
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// The `(offset, length)` spans of the arguments of the request the last call to
    /// [`Scanner::scan`] returned as [`Scanned::Spans`] (offsets into the buffer it was given).
    pub fn spans(&self) -> &[(usize, usize)] {
        &self.spans
    }

    /// True while part of a request has been examined but it is not complete yet.
    pub fn in_request(&self) -> bool {
        self.state != ScanState::Start
    }

    /// Frees the span list's memory if a request with many arguments grew it past `keep`
    /// entries (call between requests).
    pub fn shrink(&mut self, keep: usize) {
        if self.state == ScanState::Start && self.spans.capacity() > keep {
            self.spans = Vec::new();
        }
    }

    /// Scans the request at the start of `buf`, resuming the previous call's work.
    ///
    /// # Errors
    /// [`ProtocolError`] for anything not RESP2 or over `limits`, with Redis's wording.
    pub fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<Scanned>, ProtocolError> {
        let result = self.resume(buf, limits);
        if !matches!(result, Ok(None)) {
            self.state = ScanState::Start;
        }
        result
    }

    fn resume(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<Scanned>, ProtocolError> {
        let (n, mut pos, mut total) = match self.state {
            ScanState::Start => {
                self.spans.clear();
                match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => {}
                    Some(_) => return self.inline(buf, 0, limits),
                }
                let Some((head, pos)) =
                    line(buf, 1, limits.max_inline_bytes, "mbulk count string")?
                else {
                    return Ok(None);
                };
                let n = length(head, limits.max_array_len, "multibulk")?;
                // `n` is at most `max_array_len` here (or -1: no arguments).
                (usize::try_from(n).unwrap_or(0), pos, 0usize)
            }
            ScanState::MultiBulk { n, pos, total } => (n, pos, total),
            ScanState::Inline { searched } => return self.inline(buf, searched, limits),
        };
        while self.spans.len() < n {
            self.state = ScanState::MultiBulk { n, pos, total };
            match buf.get(pos) {
                None => return Ok(None),
                Some(b'$') => {}
                Some(&c) => return perr(format!("expected '$', got '{}'", c as char)),
            }
            let Some((head, body)) =
                line(buf, pos + 1, limits.max_inline_bytes, "bulk count string")?
            else {
                return Ok(None);
            };
            let len = length(head, limits.max_bulk_bytes, "bulk")?;
            let len = usize::try_from(len).or_else(|_| perr("invalid bulk length"))?;
            let with = total.saturating_add(len);
            if with > limits.max_request_bytes {
                return perr("request exceeds the query buffer limit");
            }
            // An incomplete body is waited for from its header (a short line) on the next call.
            let Some((_, next)) = bulk_body(buf, body, len)? else {
                return Ok(None);
            };
            self.spans.push((body, len));
            total = with;
            pos = next;
        }
        Ok(Some(Scanned::Spans { used: pos }))
    }

    /// An inline command whose first `searched` bytes are known to hold no `\n`.
    fn inline(
        &mut self,
        buf: &[u8],
        searched: usize,
        limits: &Limits,
    ) -> Result<Option<Scanned>, ProtocolError> {
        let max = limits.max_inline_bytes;
        match buf[searched..].iter().position(|&b| b == b'\n') {
            Some(i) if searched + i > max => perr("too big inline request"),
            Some(i) => {
                let end = searched + i;
                let text = &buf[..end];
                let args = split_inline(text.strip_suffix(b"\r").unwrap_or(text))?;
                Ok(Some(Scanned::Inline {
                    args,
                    used: end + 1,
                }))
            }
            None if buf.len() > max => perr("too big inline request"),
            None => {
                self.state = ScanState::Inline {
                    searched: buf.len(),
                };
                Ok(None)
            }
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
