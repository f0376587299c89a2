//! Reading a RESP server's whole state back (SCAN, TYPE, GET, HGETALL, ZRANGE WITHSCORES,
//! XRANGE, XINFO STREAM, PEXPIRETIME) into one canonical form, and the same form of an
//! in-process keyspace, so that a server recovered after kill -9 can be compared with the
//! state that commands 1..r produce.

use std::collections::BTreeMap;

use durlab_engine::Keyspace;
use durlab_engine::keyspace::{Value as Stored, format_score};

use super::client::Client;
use crate::resp::Value;

/// Added to every `PEXPIREAT` time sent to a RESP target, subtracted when read back: the
/// workload clock starts at 2026-01-01, and Redis deletes a key whose expiry time is past,
/// while durlab keeps expiry as metadata. 100 years ahead, no key expires during a run on
/// either server, and both hold the same times.
pub const EXPIRY_SHIFT_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// Field-value pairs.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One value in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canon {
    Str(Vec<u8>),
    /// Fields in byte order.
    Hash(Pairs),
    /// `(member, score text)` in member byte order (score as [`format_score`] prints it,
    /// parsed and reprinted so both servers' spellings compare).
    ZSet(Vec<(Vec<u8>, String)>),
    /// Last generated id and entries (`ms-seq` text, fields in order).
    Stream {
        last_id: String,
        entries: Vec<(String, Pairs)>,
    },
}

/// A whole state: key → (value, expiry ms).
pub type State = BTreeMap<Vec<u8>, (Canon, Option<u64>)>;

/// `ks` in canonical form, without the keys in `skip`.
pub fn from_keyspace(ks: &Keyspace, skip: &[&[u8]]) -> State {
    ks.iter()
        .filter(|(k, _)| !skip.contains(k))
        .map(|(k, e)| {
            let v = match &e.value {
                Stored::Str(s) => Canon::Str(s.clone()),
                Stored::Hash(h) => {
                    let mut p: Pairs = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                    p.sort();
                    Canon::Hash(p)
                }
                Stored::ZSet(z) => {
                    let mut p: Vec<_> = z
                        .iter()
                        .map(|(s, m)| (m.to_vec(), format_score(s)))
                        .collect();
                    p.sort();
                    Canon::ZSet(p)
                }
                Stored::Stream(s) => Canon::Stream {
                    last_id: s.last_id().to_string(),
                    entries: s
                        .iter()
                        .map(|(id, f)| (id.to_string(), f.to_vec()))
                        .collect(),
                },
            };
            (k.to_vec(), (v, e.expire_at_ms))
        })
        .collect()
}

fn call(c: &mut Client, args: &[&[u8]]) -> Result<Value, String> {
    match c.call(args).map_err(|e| e.to_string())? {
        Value::Error(e) => Err(format!("{} replied -{e}", String::from_utf8_lossy(args[0]))),
        v => Ok(v),
    }
}

fn array(v: Value, what: &str) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(format!("{what}: expected an array, got {other:?}")),
    }
}

fn bytes(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    v.as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| format!("{what}: expected a string, got {v:?}"))
}

fn pairs(items: Vec<Value>, what: &str) -> Result<Pairs, String> {
    items
        .chunks(2)
        .map(|p| {
            Ok((
                bytes(&p[0], what)?,
                bytes(p.get(1).unwrap_or(&Value::Nil), what)?,
            ))
        })
        .collect()
}

/// Reads every key but those in `skip` from the server behind `c` (which should be idle:
/// SCAN under writes may miss keys).
///
/// # Errors
/// A connection error, an error reply, or a reply of an unexpected shape, as text.
pub fn read_state(c: &mut Client, skip: &[&[u8]]) -> Result<State, String> {
    let mut keys = Vec::new();
    let mut cursor = b"0".to_vec();
    loop {
        let mut reply =
            array(call(c, &[b"SCAN", &cursor, b"COUNT", b"1000"])?, "SCAN")?.into_iter();
        let (Some(next), Some(batch)) = (reply.next(), reply.next()) else {
            return Err("SCAN: expected [cursor, keys]".into());
        };
        for k in array(batch, "SCAN keys")? {
            keys.push(bytes(&k, "SCAN key")?);
        }
        cursor = bytes(&next, "SCAN cursor")?;
        if cursor == b"0" {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    let mut state = State::new();
    for key in keys.into_iter().filter(|k| !skip.contains(&k.as_slice())) {
        let ty = bytes(&call(c, &[b"TYPE", &key])?, "TYPE")?;
        let value = match ty.as_slice() {
            b"string" => Canon::Str(bytes(&call(c, &[b"GET", &key])?, "GET")?),
            b"hash" => {
                let mut p = pairs(array(call(c, &[b"HGETALL", &key])?, "HGETALL")?, "HGETALL")?;
                p.sort();
                Canon::Hash(p)
            }
            b"zset" => {
                let items = array(
                    call(c, &[b"ZRANGE", &key, b"0", b"-1", b"WITHSCORES"])?,
                    "ZRANGE",
                )?;
                let mut p = Vec::new();
                for (m, s) in pairs(items, "ZRANGE")? {
                    let score: f64 = String::from_utf8_lossy(&s)
                        .parse()
                        .map_err(|_| format!("ZRANGE: bad score {s:?}"))?;
                    p.push((m, format_score(score + 0.0)));
                }
                p.sort();
                Canon::ZSet(p)
            }
            b"stream" => {
                let info = array(call(c, &[b"XINFO", b"STREAM", &key])?, "XINFO")?;
                let last_id = info
                    .chunks(2)
                    .find(|p| p[0].as_bytes() == Some(b"last-generated-id"))
                    .and_then(|p| p.get(1))
                    .and_then(Value::as_bytes)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .ok_or("XINFO STREAM: no last-generated-id")?;
                let mut entries = Vec::new();
                for e in array(call(c, &[b"XRANGE", &key, b"-", b"+"])?, "XRANGE")? {
                    let mut e = array(e, "XRANGE entry")?.into_iter();
                    let (Some(id), Some(fields)) = (e.next(), e.next()) else {
                        return Err("XRANGE: expected [id, fields]".into());
                    };
                    let id = String::from_utf8_lossy(&bytes(&id, "XRANGE id")?).into_owned();
                    entries.push((id, pairs(array(fields, "XRANGE fields")?, "XRANGE")?));
                }
                Canon::Stream { last_id, entries }
            }
            other => {
                return Err(format!(
                    "TYPE of {key:?}: unexpected {}",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        let at = call(c, &[b"PEXPIRETIME", &key])?
            .as_int()
            .ok_or("PEXPIRETIME: expected an integer")?;
        let expiry = u64::try_from(at)
            .ok()
            .map(|t| t.saturating_sub(EXPIRY_SHIFT_MS));
        state.insert(key, (value, expiry));
    }
    Ok(state)
}

/// Up to `n` keys whose values differ between `got` and `want`, described.
pub fn diff(got: &State, want: &State, n: usize) -> Vec<String> {
    let keys: std::collections::BTreeSet<&Vec<u8>> = got.keys().chain(want.keys()).collect();
    keys.into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .take(n)
        .map(|k| {
            let show = |s: &State| {
                s.get(k).map_or("missing".to_string(), |v| {
                    format!("{v:?}").chars().take(120).collect()
                })
            };
            format!(
                "{}: recovered {} / expected {}",
                String::from_utf8_lossy(k),
                show(got),
                show(want)
            )
        })
        .collect()
}
