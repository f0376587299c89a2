//! Transactions (`Command::Multi`): one record with one LSN, so recovery restores all of a
//! transaction or none of it, wherever a crash cuts the log.

mod common;

use std::fs;

use common::*;
use durlab_engine::aof::FIRST_RECORD_OFFSET;
use durlab_engine::aof::record::RECORD_HEADER_BYTES;
use durlab_engine::keyspace::{Reply, Value};
use durlab_engine::{BackendKind, Command, Engine, FsyncPolicy};

over_unpreallocated_backends!(torn_transaction_is_recovered_all_or_nothing);

fn set(k: &str, v: &str) -> Command {
    Command::Set {
        key: k.as_bytes().to_vec(),
        value: v.as_bytes().to_vec(),
    }
}

fn get(k: &str) -> Command {
    Command::Get {
        key: k.as_bytes().to_vec(),
    }
}

fn str_value(engine: &Engine, key: &str) -> Option<Vec<u8>> {
    engine.read(|ks| match &ks.get_entry(key.as_bytes())?.value {
        Value::Str(v) => Some(v.clone()),
        other => panic!("{key} holds a {}", other.type_name()),
    })
}

/// The end offsets of the log's records, from the records themselves.
fn record_ends(log: &[u8]) -> Vec<usize> {
    let mut ends = vec![FIRST_RECORD_OFFSET as usize];
    while *ends.last().unwrap() < log.len() {
        let at = *ends.last().unwrap();
        let len = u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        ends.push(at + RECORD_HEADER_BYTES + len);
    }
    assert_eq!(*ends.last().unwrap(), log.len());
    ends
}

/// A transaction of four writes (and a read and a malformed write, which are not logged) is
/// one record: cut anywhere inside it, recovery sees none of its writes; whole, all of them.
fn torn_transaction_is_recovered_all_or_nothing(kind: BackendKind) {
    let src = tempfile::tempdir().unwrap();
    let cfg = config(src.path(), kind, FsyncPolicy::Always);
    let (engine, _) = open(&cfg);
    engine.execute(set("before", "1")).unwrap();
    let tx = Command::Multi {
        cmds: vec![
            set("a", "1"),
            get("a"),
            Command::ZAdd {
                key: b"z".to_vec(),
                members: vec![(f64::NAN, b"m".to_vec())],
            },
            Command::IncrBy {
                key: b"n".to_vec(),
                delta: 7,
            },
            set("b", "2"),
            set("__durlab:lsn", "2"),
        ],
    };
    let ack = engine.execute_ack(tx).unwrap();
    assert_eq!(ack.lsn, Some(2), "one LSN for the whole transaction");
    let Reply::Array(replies) = &ack.reply else {
        panic!("not an array: {:?}", ack.reply);
    };
    assert_eq!(replies.len(), 6, "one reply per sub-command");
    assert_eq!(
        replies[1],
        Reply::Bulk(b"1".to_vec()),
        "reads see the writes before"
    );
    assert!(matches!(replies[2], Reply::Error(_)));
    assert_eq!(replies[3], Reply::Int(7));
    engine.execute(set("after", "3")).unwrap();
    assert_eq!(engine.last_lsn(), 3);
    drop(engine);

    let full = fs::read(log_path(src.path())).unwrap();
    let ends = record_ends(&full);
    assert_eq!(
        ends.len(),
        4,
        "three records: before, the transaction, after"
    );
    let tx_written = ["a", "n", "b", "__durlab:lsn"];
    for cut in ends[1]..=ends[2] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(log_path(dir.path()), &full[..cut]).unwrap();
        let (engine, report) = open(&config(dir.path(), kind, FsyncPolicy::Always));
        assert_eq!(str_value(&engine, "before"), Some(b"1".to_vec()));
        assert_eq!(str_value(&engine, "after"), None, "cut at {cut}");
        let visible: Vec<_> = tx_written
            .iter()
            .filter(|k| str_value(&engine, k).is_some())
            .collect();
        if cut == ends[2] {
            assert_eq!(report.recovered_lsn, 2);
            assert_eq!(
                visible.len(),
                tx_written.len(),
                "whole record, cut at {cut}"
            );
            assert_eq!(str_value(&engine, "n"), Some(b"7".to_vec()));
            assert_eq!(str_value(&engine, "__durlab:lsn"), Some(b"2".to_vec()));
        } else {
            assert_eq!(report.recovered_lsn, 1, "cut at {cut}");
            assert!(visible.is_empty(), "cut at {cut} kept {visible:?}");
        }
    }
    // The untouched log: everything, and the transaction's record replays as it ran.
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 3);
    for k in tx_written {
        assert!(str_value(&engine, k).is_some(), "{k}");
    }
    assert!(engine.read(|ks| ks.get_entry(b"z").is_none()));
}

/// In a batch, a transaction takes one LSN between its neighbours' and its array reply holds
/// one reply per sub-command; a transaction of reads only takes no LSN and logs nothing.
#[test]
fn transaction_in_a_batch_takes_one_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), BackendKind::Pwrite, FsyncPolicy::Always);
    let (engine, _) = open(&cfg);
    let acks = engine
        .execute_batch(vec![
            set("x", "0"),
            Command::Multi {
                cmds: vec![set("x", "1"), get("x"), set("y", "1")],
            },
            Command::Multi {
                cmds: vec![get("x"), get("y")],
            },
            set("z", "1"),
        ])
        .unwrap();
    let lsns: Vec<_> = acks.iter().map(|a| a.lsn).collect();
    assert_eq!(lsns, [Some(1), Some(2), None, Some(3)]);
    assert_eq!(
        acks[1].reply,
        Reply::Array(vec![Reply::Ok, Reply::Bulk(b"1".to_vec()), Reply::Ok])
    );
    assert_eq!(
        acks[2].reply,
        Reply::Array(vec![Reply::Bulk(b"1".to_vec()), Reply::Bulk(b"1".to_vec())])
    );
    // A nested transaction is refused as a whole, with no LSN.
    let nested = engine
        .execute_ack(Command::Multi {
            cmds: vec![
                set("w", "1"),
                Command::Multi {
                    cmds: vec![set("v", "1")],
                },
            ],
        })
        .unwrap();
    assert_eq!(nested.lsn, None);
    assert!(matches!(nested.reply, Reply::Error(ref e) if e.contains("nested")));
    drop(engine);
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 3);
    assert_eq!(report.records_replayed, 3);
    assert_eq!(str_value(&engine, "y"), Some(b"1".to_vec()));
    assert_eq!(str_value(&engine, "w"), None);
}

/// A transaction whose record would exceed the size limit is refused as a whole: nothing of
/// it runs and it takes no LSN.
#[test]
fn oversized_transaction_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), BackendKind::Pwrite, FsyncPolicy::No);
    cfg.max_record_bytes = 64;
    let (engine, _) = open(&cfg);
    let acks = engine
        .execute_batch(vec![Command::Multi {
            cmds: vec![set("small", "y"), set("big", &"x".repeat(100))],
        }])
        .unwrap();
    assert_eq!(acks[0].lsn, None);
    assert!(matches!(&acks[0].reply, Reply::Error(e) if e.starts_with("ERR ")));
    assert_eq!(str_value(&engine, "small"), None);
    assert_eq!(engine.last_lsn(), 0);
}
