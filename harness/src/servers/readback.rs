//! Reading a RESP server's whole state back (SCAN, TYPE, GET, HGETALL, ZRANGE WITHSCORES,
//! XRANGE, XINFO STREAM, PEXPIRETIME) into the oracle's canonical form
//! ([`crate::oracle::compare::CanonState`]), so that a server recovered after kill -9 is
//! compared with the oracle exactly as a recovered engine is.

use durlab_engine::keyspace::StreamId;

use super::client::Client;
use crate::oracle::compare::{Canon, CanonEntry, CanonGroup, CanonPending, CanonState};
use crate::oracle::model::Pairs;
use crate::resp::Value;

/// Added to every `PEXPIREAT` time sent to a RESP target, subtracted when read back: the
/// workload clock starts at 2026-01-01, and Redis deletes a key whose expiry time is past,
/// while durlab keeps expiry as metadata. 100 years ahead, no key expires during a run on
/// either server, and both hold the same times.
pub const EXPIRY_SHIFT_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

fn call(c: &mut Client, args: &[&[u8]]) -> Result<Value, String> {
    match c.call(args).map_err(|e| e.to_string())? {
        Value::Error(e) => Err(format!("{} replied -{e}", String::from_utf8_lossy(args[0]))),
        v => Ok(v),
    }
}

/// Keys read back per pipelined batch.
const READ_BATCH_KEYS: usize = 256;

/// The next reply, an error reply as an error naming `what`.
fn reply(c: &mut Client, what: &str) -> Result<Value, String> {
    match c.read().map_err(|e| e.to_string())? {
        Value::Error(e) => Err(format!("{what} replied -{e}")),
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
    text(v, what).map(<[u8]>::to_vec)
}

/// The bytes of a bulk or simple string, borrowed.
fn text<'a>(v: &'a Value, what: &str) -> Result<&'a [u8], String> {
    v.as_bytes()
        .ok_or_else(|| format!("{what}: expected a string, got {v:?}"))
}

/// The bytes of a bulk or simple string, moved out of the reply (a read-back holds every
/// stream entry's fields: no copy of each).
fn owned(v: Value, what: &str) -> Result<Vec<u8>, String> {
    match v {
        Value::Bulk(b) => Ok(b),
        Value::Simple(s) => Ok(s.into_bytes()),
        other => Err(format!("{what}: expected a string, got {other:?}")),
    }
}

fn pairs(items: Vec<Value>, what: &str) -> Result<Pairs, String> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let Some(k) = items.next() {
        out.push((
            owned(k, what)?,
            owned(items.next().unwrap_or(Value::Nil), what)?,
        ));
    }
    Ok(out)
}

fn stream_id(text: &[u8], what: &str) -> Result<StreamId, String> {
    let bad = || format!("{what}: bad stream id {:?}", String::from_utf8_lossy(text));
    let t = std::str::from_utf8(text).map_err(|_| bad())?;
    let (ms, seq) = t.split_once('-').ok_or_else(bad)?;
    Ok(StreamId {
        ms: ms.parse().map_err(|_| bad())?,
        seq: seq.parse().map_err(|_| bad())?,
    })
}

/// Pending entries read per `XPENDING` call at most: a bound on one reply, far above what a
/// workload leaves pending.
const MAX_PENDING_READ: u64 = 10_000_000;

fn field<'a>(pairs: &'a [Value], name: &[u8]) -> Option<&'a Value> {
    pairs
        .chunks(2)
        .find(|p| p[0].as_bytes() == Some(name))
        .and_then(|p| p.get(1))
}

/// The consumer groups of each stream in `keys` (`XINFO GROUPS`, then per group `XPENDING` in
/// full and `XINFO CONSUMERS`), without times (a server's delivery and seen times are its own
/// clock's), in the order of `keys`. Pipelined: one round trip for the groups of every stream,
/// one for the pending entries and consumers of every group (a restarted server per crash
/// image is read back, many per second, and a round trip to a server that has to be scheduled
/// costs more than the reply).
///
/// # Errors
/// A connection error, an error reply, or a reply of an unexpected shape.
fn read_groups(c: &mut Client, keys: &[&[u8]]) -> Result<Vec<Vec<CanonGroup>>, String> {
    for key in keys {
        c.queue(&[b"XINFO".as_slice(), b"GROUPS", key]);
    }
    c.flush().map_err(|e| e.to_string())?;
    // Per stream: (name, last delivered id) of each group.
    let mut named = Vec::with_capacity(keys.len());
    for _ in keys {
        let mut groups = Vec::new();
        for g in array(reply(c, "XINFO")?, "XINFO GROUPS")? {
            let g = array(g, "XINFO GROUPS group")?;
            let name = bytes(field(&g, b"name").ok_or("XINFO GROUPS: no name")?, "name")?;
            let last =
                field(&g, b"last-delivered-id").ok_or("XINFO GROUPS: no last-delivered-id")?;
            let last_delivered = stream_id(&bytes(last, "last-delivered-id")?, "XINFO GROUPS")?;
            groups.push((name, last_delivered));
        }
        named.push(groups);
    }
    let max = MAX_PENDING_READ.to_string();
    for (key, groups) in keys.iter().zip(&named) {
        for (name, _) in groups {
            c.queue(&[
                b"XPENDING".as_slice(),
                key,
                name,
                b"-",
                b"+",
                max.as_bytes(),
            ]);
            c.queue(&[b"XINFO".as_slice(), b"CONSUMERS", key, name]);
        }
    }
    c.flush().map_err(|e| e.to_string())?;
    let mut all = Vec::with_capacity(keys.len());
    for groups in named {
        let mut out = Vec::with_capacity(groups.len());
        for (name, last_delivered) in groups {
            let mut pending = Vec::new();
            for p in array(reply(c, "XPENDING")?, "XPENDING")? {
                let p = array(p, "XPENDING entry")?;
                let [id, consumer, _idle, count] = p.as_slice() else {
                    return Err("XPENDING: expected [id, consumer, idle, count]".into());
                };
                pending.push(CanonPending {
                    id: stream_id(&bytes(id, "XPENDING id")?, "XPENDING")?,
                    consumer: bytes(consumer, "XPENDING consumer")?,
                    deliveries: count
                        .as_int()
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or("XPENDING: bad delivery count")?,
                    delivered_at_ms: None,
                });
            }
            let mut consumers = Vec::new();
            for k in array(reply(c, "XINFO")?, "XINFO CONSUMERS")? {
                let k = array(k, "XINFO CONSUMERS consumer")?;
                let n = field(&k, b"name").ok_or("XINFO CONSUMERS: no name")?;
                consumers.push((bytes(n, "consumer name")?, None));
            }
            consumers.sort();
            out.push(CanonGroup {
                name,
                last_delivered,
                pending,
                consumers,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        all.push(out);
    }
    Ok(all)
}

/// Reads every key but those in `skip` from the server behind `c` (which should be idle:
/// SCAN under writes may miss keys), expiry times shifted back by [`EXPIRY_SHIFT_MS`].
///
/// # Errors
/// A connection error, an error reply, or a reply of an unexpected shape, as text.
pub fn read_state(c: &mut Client, skip: &[&[u8]]) -> Result<CanonState, String> {
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
    keys.retain(|k| !skip.contains(&k.as_slice()));
    let mut state = CanonState::new();
    // Pipelined in batches: one round trip for the types of a batch, one for its values and
    // expiry times (a restarted server per crash image is read back this way, many per second).
    for batch in keys.chunks(READ_BATCH_KEYS) {
        for key in batch {
            c.queue(&[b"TYPE".as_slice(), key]);
        }
        c.flush().map_err(|e| e.to_string())?;
        let mut types = Vec::with_capacity(batch.len());
        for _ in batch {
            types.push(bytes(&reply(c, "TYPE")?, "TYPE")?);
        }
        for (key, ty) in batch.iter().zip(&types) {
            let key = key.as_slice();
            match ty.as_slice() {
                b"string" => c.queue(&[b"GET".as_slice(), key]),
                b"hash" => c.queue(&[b"HGETALL".as_slice(), key]),
                b"zset" => c.queue(&[b"ZRANGE".as_slice(), key, b"0", b"-1", b"WITHSCORES"]),
                b"stream" => {
                    c.queue(&[b"XINFO".as_slice(), b"STREAM", key]);
                    c.queue(&[b"XRANGE".as_slice(), key, b"-", b"+"]);
                }
                other => {
                    return Err(format!(
                        "TYPE of {key:?}: unexpected {}",
                        String::from_utf8_lossy(other)
                    ));
                }
            }
            c.queue(&[b"PEXPIRETIME".as_slice(), key]);
        }
        c.flush().map_err(|e| e.to_string())?;
        for (key, ty) in batch.iter().zip(&types) {
            let value = match ty.as_slice() {
                b"string" => Canon::Str(owned(reply(c, "GET")?, "GET")?),
                b"hash" => {
                    let mut p = pairs(array(reply(c, "HGETALL")?, "HGETALL")?, "HGETALL")?;
                    p.sort();
                    Canon::Hash(p)
                }
                b"zset" => {
                    let items = array(reply(c, "ZRANGE")?, "ZRANGE")?;
                    let mut p = Vec::new();
                    for (m, s) in pairs(items, "ZRANGE")? {
                        let score: f64 = String::from_utf8_lossy(&s)
                            .parse()
                            .map_err(|_| format!("ZRANGE: bad score {s:?}"))?;
                        p.push((m, (score + 0.0).to_bits()));
                    }
                    p.sort();
                    Canon::ZSet(p)
                }
                _ => {
                    let info = array(reply(c, "XINFO")?, "XINFO")?;
                    let last_id = info
                        .chunks(2)
                        .find(|p| p[0].as_bytes() == Some(b"last-generated-id"))
                        .and_then(|p| p.get(1))
                        .and_then(Value::as_bytes)
                        .ok_or("XINFO STREAM: no last-generated-id")?;
                    let last_id = stream_id(last_id, "XINFO STREAM")?;
                    let range = array(reply(c, "XRANGE")?, "XRANGE")?;
                    let mut entries = Vec::with_capacity(range.len());
                    for e in range {
                        let mut e = array(e, "XRANGE entry")?.into_iter();
                        let (Some(id), Some(fields)) = (e.next(), e.next()) else {
                            return Err("XRANGE: expected [id, fields]".into());
                        };
                        let id = stream_id(text(&id, "XRANGE id")?, "XRANGE")?;
                        entries.push((id, pairs(array(fields, "XRANGE fields")?, "XRANGE")?));
                    }
                    Canon::Stream {
                        last_id,
                        entries,
                        // Filled in after the batch's pipelined replies.
                        groups: Vec::new(),
                    }
                }
            };
            let at = reply(c, "PEXPIRETIME")?
                .as_int()
                .ok_or("PEXPIRETIME: expected an integer")?;
            let expiry = u64::try_from(at)
                .ok()
                .map(|t| t.saturating_sub(EXPIRY_SHIFT_MS));
            state.insert(
                key.clone(),
                CanonEntry {
                    value,
                    expire_at_ms: expiry,
                },
            );
        }
        let streams: Vec<&[u8]> = batch
            .iter()
            .zip(&types)
            .filter(|(_, ty)| ty.as_slice() == b"stream")
            .map(|(key, _)| key.as_slice())
            .collect();
        if !streams.is_empty() {
            for (key, read) in streams.iter().zip(read_groups(c, &streams)?) {
                if let Some(CanonEntry {
                    value: Canon::Stream { groups, .. },
                    ..
                }) = state.get_mut(*key)
                {
                    *groups = read;
                }
            }
        }
    }
    Ok(state)
}
