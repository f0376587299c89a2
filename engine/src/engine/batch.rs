//! [`Engine::execute_batch`]: several commands under one acquisition of the engine's lock,
//! with consecutive LSNs, acknowledged together (MULTI/EXEC and pipelined requests).

use super::{Ack, Engine};
use crate::error::{Error, Result};
use crate::keyspace::{Command, Reply};

impl Engine {
    /// Executes `cmds` in order under one acquisition of the engine's lock: no other writer's
    /// command is applied or logged between them, the write commands get consecutive LSNs in
    /// this order, and the call returns once the last of them is acknowledged under the policy
    /// (under `always`: one fdatasync, shared with other writers by group commit, covers the
    /// whole batch). Reads see the writes before them in the batch. No reply is returned
    /// before every write it could see (this batch's or another's) is acknowledged.
    ///
    /// Guarantees: a crash recovers a prefix of the log, so it may keep the first k write
    /// commands of a batch whose acknowledgement it never returned (as for any unacknowledged
    /// command); once this returns `Ok`, all of them survive as the policy promises. Commands
    /// that must survive all or none together belong in one [`Command::Multi`] (one LSN, one
    /// record), not in separate commands of a batch. Per-command
    /// failures do not stop the batch, as in Redis's EXEC: a command whose arguments are
    /// malformed ([`Command::arg_error`]) or whose payload exceeds the record size limit gets
    /// an error reply and no LSN, and the others still run.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after an earlier write or sync failure (nothing in the batch ran);
    /// the I/O error of the flush this call led (the engine is then poisoned). On error no
    /// command of the batch is acknowledged, though some may be in memory and even on disk.
    pub fn execute_batch(&self, cmds: Vec<Command>) -> Result<Vec<Ack>> {
        self.execute_batch_clocked(cmds, None)
    }

    /// [`Engine::execute_batch`] for a caller with a clock: `now_ms` (ms since the Unix epoch)
    /// is the time the batch runs at. Keys that have expired by then are invisible to its
    /// commands: each command that addresses one is logged and applied as one record that
    /// first deletes it ([`super::expiry`]), as Redis propagates a `DEL` when it expires a key
    /// on access. Replies are those of the commands as given.
    ///
    /// # Errors
    /// As [`Engine::execute_batch`].
    pub fn execute_batch_at(&self, cmds: Vec<Command>, now_ms: u64) -> Result<Vec<Ack>> {
        self.execute_batch_clocked(cmds, Some(now_ms))
    }

    fn execute_batch_clocked(&self, cmds: Vec<Command>, now_ms: Option<u64>) -> Result<Vec<Ack>> {
        let shared = &*self.inner.shared;
        let mut core = shared.core.lock();
        core.log.check_poisoned()?;
        let mut acks = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            match shared.apply_locked(&mut core, cmd, now_ms) {
                Ok(ack) => acks.push(ack),
                Err(Error::InvalidCommand(why)) => acks.push(Ack {
                    reply: Reply::Error(format!("ERR {why}")),
                    lsn: None,
                }),
                Err(e) => return Err(e),
            }
        }
        // A reply may show writes of other batches that are applied but whose flush is still
        // in flight (or about to fail): acknowledge up to the last LSN applied, not only this
        // batch's own, so no reply depends on a write that was never acknowledged.
        let seen = (!acks.is_empty()).then_some(core.last_lsn);
        if let (Some(log), Some(lsn)) = (&shared.log, seen) {
            log.acknowledge(&shared.core, core, lsn)?;
        }
        Ok(acks)
    }
}

#[cfg(test)]
mod tests {
    use crate::keyspace::{Command, Reply};
    use crate::{Engine, EngineConfig, FsyncPolicy};

    fn set(k: &str, v: &str) -> Command {
        Command::Set {
            key: k.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        }
    }

    #[test]
    fn consecutive_lsns_one_sync_and_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EngineConfig::new(dir.path()).policy(FsyncPolicy::Always);
        let (engine, _) = Engine::open(cfg.clone()).unwrap();
        engine.execute(set("a", "0")).unwrap();
        let acks = engine
            .execute_batch(vec![
                set("a", "1"),
                Command::Get { key: b"a".to_vec() },
                Command::ZAdd {
                    key: b"z".to_vec(),
                    members: vec![(f64::NAN, b"m".to_vec())],
                },
                Command::IncrBy {
                    key: b"n".to_vec(),
                    delta: 5,
                },
            ])
            .unwrap();
        let lsns: Vec<_> = acks.iter().map(|a| a.lsn).collect();
        assert_eq!(lsns, [Some(2), None, None, Some(3)]);
        assert_eq!(
            acks[1].reply,
            Reply::Bulk(b"1".to_vec()),
            "reads see the batch"
        );
        assert!(matches!(acks[2].reply, Reply::Error(_)));
        assert_eq!(acks[3].reply, Reply::Int(5));
        assert_eq!(engine.stats().syncs, 2, "one sync for the whole batch");
        assert!(engine.durable_lsn() >= 3);
        drop(engine);
        let (engine, report) = Engine::open(cfg).unwrap();
        assert_eq!(report.recovered_lsn, 3);
        assert_eq!(
            engine.execute(Command::Get { key: b"n".to_vec() }).unwrap(),
            Reply::Bulk(b"5".to_vec())
        );
    }

    #[test]
    fn batches_are_not_interleaved() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EngineConfig::new(dir.path()).policy(FsyncPolicy::No);
        let (engine, _) = Engine::open(cfg).unwrap();
        std::thread::scope(|s| {
            for t in 0..3 {
                let engine = &engine;
                s.spawn(move || {
                    for i in 0..200 {
                        let batch = (0..5).map(|j| set(&format!("{t}:{i}:{j}"), "v")).collect();
                        let acks = engine.execute_batch(batch).unwrap();
                        let first = acks[0].lsn.unwrap();
                        for (j, a) in acks.iter().enumerate() {
                            assert_eq!(a.lsn, Some(first + j as u64));
                        }
                    }
                });
            }
        });
        assert_eq!(engine.last_lsn(), 3 * 200 * 5);
    }

    #[test]
    fn empty_and_read_only_batches_log_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(EngineConfig::new(dir.path())).unwrap();
        assert!(engine.execute_batch(Vec::new()).unwrap().is_empty());
        let acks = engine
            .execute_batch(vec![Command::Get { key: b"x".to_vec() }])
            .unwrap();
        assert_eq!(acks[0].reply, Reply::Nil);
        assert_eq!(engine.last_lsn(), 0);
        assert_eq!(engine.stats().syncs, 0);
    }

    #[test]
    fn oversized_command_gets_error_reply_and_others_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = EngineConfig::new(dir.path()).policy(FsyncPolicy::No);
        cfg.max_record_bytes = 64;
        let (engine, _) = Engine::open(cfg).unwrap();
        let acks = engine
            .execute_batch(vec![set("big", &"x".repeat(200)), set("small", "y")])
            .unwrap();
        assert!(matches!(&acks[0].reply, Reply::Error(e) if e.starts_with("ERR ")));
        assert_eq!(acks[0].lsn, None);
        assert_eq!(acks[1].lsn, Some(1));
    }
}
