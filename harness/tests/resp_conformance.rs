//! The conformance corpus (`tests/conformance/corpus.txt`): every request in it is sent to
//! `durlab serve` and to a real `redis-server`, each started as a child process on a free
//! loopback port, and the replies are compared byte for byte. The corpus lists, with a
//! reason each, the known differences; the test fails on any other.

mod resp_support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use durlab_engine::{FsyncPolicy, Persistence};
use durlab_harness::resp::parse::{Limits, parse_value};
use durlab_harness::servers::Target;
use resp_support::{require, start};

const CORPUS: &str = include_str!("conformance/corpus.txt");

/// How a line's replies are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Byte for byte.
    Exact,
    /// `~`: with every run of digits replaced (time-dependent numbers: ids, TTLs).
    Digits,
    /// `?`: a known difference, documented above the line; not compared.
    Known,
}

#[derive(Debug)]
struct Line {
    number: usize,
    compare: Compare,
    /// A request's arguments, or for `raw` the bytes sent as they are.
    request: Request,
}

#[derive(Debug)]
enum Request {
    Args(Vec<Vec<u8>>),
    Raw(Vec<u8>),
}

/// `\s` space, `\r`, `\n`, `\\`, `\xNN`.
fn unescape(word: &str, number: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = word.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b's') => out.push(b' '),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let hex = std::str::from_utf8(&hex).unwrap();
                out.push(
                    u8::from_str_radix(hex, 16)
                        .unwrap_or_else(|_| panic!("corpus line {number}: bad \\x{hex}")),
                );
            }
            other => panic!("corpus line {number}: unknown escape {other:?}"),
        }
    }
    out
}

/// Parses the corpus. Panics on a malformed line, and on a known difference (`?`) without
/// a `# difference:` comment directly above it (or above the run of `?` lines it is in).
fn corpus() -> Vec<Line> {
    let mut lines = Vec::new();
    let mut reason = false;
    for (i, text) in CORPUS.lines().enumerate() {
        let number = i + 1;
        let text = text.trim_end();
        if text.is_empty() {
            reason = false;
            continue;
        }
        if let Some(comment) = text.strip_prefix('#') {
            reason |= comment.trim_start().starts_with("difference:");
            continue;
        }
        let (compare, rest) = match text.as_bytes()[0] {
            b'~' => (Compare::Digits, &text[1..]),
            b'?' => (Compare::Known, &text[1..]),
            _ => (Compare::Exact, text),
        };
        assert!(
            compare != Compare::Known || reason,
            "corpus line {number}: a known difference needs a '# difference: reason' comment directly above"
        );
        let rest = rest.trim_start();
        let request = match rest.strip_prefix("raw ") {
            Some(raw) => Request::Raw(unescape(raw, number)),
            None => Request::Args(
                rest.split(' ')
                    .filter(|w| !w.is_empty())
                    .map(|w| unescape(w, number))
                    .collect(),
            ),
        };
        lines.push(Line {
            number,
            compare,
            request,
        });
        // Consecutive known differences share the comment above the first.
        reason = compare == Compare::Known;
    }
    lines
}

fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends every line to the server at `addr` and returns each line's reply bytes: exactly
/// one reply for a request; for a raw frame whatever arrives until the server closes the
/// connection or is silent for 500 ms (then the next line uses a new connection).
fn replies(addr: SocketAddr, lines: &[Line]) -> Vec<Vec<u8>> {
    let mut conn = connect(addr);
    let mut pending: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    for line in lines {
        match &line.request {
            Request::Args(args) => {
                conn.write_all(&encode(args)).unwrap();
                loop {
                    if let Some((_, used)) = parse_value(&pending, &Limits::default())
                        .unwrap_or_else(|e| panic!("line {}: bad reply: {e}", line.number))
                    {
                        out.push(pending.drain(..used).collect());
                        break;
                    }
                    let mut buf = [0u8; 65536];
                    let n = conn
                        .read(&mut buf)
                        .unwrap_or_else(|e| panic!("line {}: reading: {e}", line.number));
                    assert!(
                        n > 0,
                        "line {}: the server closed the connection",
                        line.number
                    );
                    pending.extend_from_slice(&buf[..n]);
                }
            }
            Request::Raw(bytes) => {
                conn.write_all(bytes).unwrap();
                conn.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let mut got = std::mem::take(&mut pending);
                let mut buf = [0u8; 65536];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            break;
                        }
                        Err(e) => panic!("line {}: reading: {e}", line.number),
                    }
                }
                out.push(got);
                conn = connect(addr);
            }
        }
    }
    out
}

fn digits_as_n(bytes: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for &b in bytes {
        if b.is_ascii_digit() {
            if out.last() != Some(&b'N') {
                out.push(b'N');
            }
        } else {
            out.push(b);
        }
    }
    out
}

fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

#[test]
fn corpus_replies_match_redis() {
    require(&["redis-server"]);
    let lines = corpus();
    assert!(lines.len() >= 100, "the corpus has {} lines", lines.len());
    let tmp = tempfile::tempdir().unwrap();
    let durlab = start(
        Target::DurlabServer,
        FsyncPolicy::Always,
        Persistence::Aof,
        tmp.path(),
    );
    let redis = start(
        Target::Redis,
        FsyncPolicy::Always,
        Persistence::Aof,
        tmp.path(),
    );
    let got = replies(durlab.addr(), &lines);
    let want = replies(redis.addr(), &lines);
    for (line, (got, want)) in lines.iter().zip(got.iter().zip(&want)) {
        if line.compare == Compare::Known {
            eprintln!(
                "line {} (known difference): durlab {} redis {}",
                line.number,
                show(got),
                show(want)
            );
        }
    }
    let bad = mismatches(&lines, &got, &want);
    assert!(
        bad.is_empty(),
        "{} of {} replies differ from Redis's:\n{}",
        bad.len(),
        lines.len(),
        bad.join("\n")
    );
}

/// One message per line whose replies differ under its comparison.
fn mismatches(lines: &[Line], got: &[Vec<u8>], want: &[Vec<u8>]) -> Vec<String> {
    assert_eq!((got.len(), want.len()), (lines.len(), lines.len()));
    lines
        .iter()
        .zip(got.iter().zip(want))
        .filter(|(line, (got, want))| match line.compare {
            Compare::Exact => got != want,
            Compare::Digits => digits_as_n(got) != digits_as_n(want),
            Compare::Known => false,
        })
        .map(|(line, (got, want))| {
            format!(
                "line {}: durlab {} redis {}",
                line.number,
                show(got),
                show(want)
            )
        })
        .collect()
}

/// The comparison can fail: differing replies are reported, except on a known difference.
#[test]
fn a_differing_reply_is_reported() {
    let line = |number, compare| Line {
        number,
        compare,
        request: Request::Args(vec![b"PING".to_vec()]),
    };
    let lines = [
        line(1, Compare::Exact),
        line(2, Compare::Digits),
        line(3, Compare::Digits),
        line(4, Compare::Known),
        line(5, Compare::Exact),
    ];
    let got: Vec<Vec<u8>> = [
        ":12\r\n",
        "$6\r\n1700-0\r\n",
        ":1\r\n",
        "-ERR x\r\n",
        "+OK\r\n",
    ]
    .map(|r| r.as_bytes().to_vec())
    .to_vec();
    let want: Vec<Vec<u8>> = [
        ":13\r\n",
        "$6\r\n1800-0\r\n",
        "$1\r\n1\r\n",
        ":0\r\n",
        "+OK\r\n",
    ]
    .map(|r| r.as_bytes().to_vec())
    .to_vec();
    let bad = mismatches(&lines, &got, &want);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].starts_with("line 1:") && bad[1].starts_with("line 3:"));
    assert_eq!(unescape(r"a\sb\r\n\x00\\", 1), b"a b\r\n\x00\\");
}
