//! Lazy expiry for a caller with a clock ([`super::Engine::execute_batch_at`]): a command that
//! addresses a key whose expiry time has passed runs as one transaction that first deletes
//! that key, and its reply is taken back out of the transaction's. The deletion is logged in
//! the same record as the command, as Redis propagates a `DEL` before the command when it
//! expires a key on access, so a replay (which reads no clock) reaches the same state, and a
//! crash keeps both or neither.
//!
//! There is no active expiry: an expired key nothing touches stays in memory and in the
//! files (readers with a clock never see it: [`crate::Keyspace::live_entry`]) until a write
//! or read of it, `FLUSHALL`, or a `DEL`.

use crate::keyspace::{Command, Keyspace, Reply};

/// Which part of the reply of the command actually run is the reply of the command given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shown {
    /// The command ran as given.
    All,
    /// A single command ran as the last sub-command of a transaction after `dels` deletions.
    Last,
    /// A transaction ran with `dels` deletions in front of its own sub-commands.
    Tail { dels: usize },
}

impl Shown {
    /// The reply of the command as given, out of `reply` (the command as run).
    pub(super) fn reply(self, reply: Reply) -> Reply {
        match (self, reply) {
            (Shown::All, reply) => reply,
            (Shown::Last, Reply::Array(mut replies)) => replies.pop().unwrap_or(Reply::Nil),
            (Shown::Tail { dels }, Reply::Array(replies)) => {
                Reply::Array(replies.into_iter().skip(dels).collect())
            }
            // A transaction always replies with an array; anything else is passed on as is.
            (_, other) => other,
        }
    }
}

/// `cmd` as it must run at `now_ms` on `ks`: unchanged if it addresses no expired key (or
/// is refused whatever the keyspace holds), else a transaction of a `DEL` per expired key
/// followed by `cmd` (or `cmd`'s sub-commands).
pub(super) fn remove_expired_first(ks: &Keyspace, cmd: Command, now_ms: u64) -> (Command, Shown) {
    // The lookup first: it is what almost every command needs (nothing expired), and the
    // argument check it would otherwise repeat runs again when the command is applied.
    let expired = ks.expired_keys(&cmd, now_ms);
    if expired.is_empty() || cmd.arg_error().is_some() {
        return (cmd, Shown::All);
    }
    let dels = expired.len();
    let mut cmds: Vec<Command> = expired
        .into_iter()
        .map(|key| Command::Del { key })
        .collect();
    let shown = match cmd {
        Command::Multi { cmds: inner } => {
            cmds.extend(inner);
            Shown::Tail { dels }
        }
        single => {
            cmds.push(single);
            Shown::Last
        }
    };
    (Command::Multi { cmds }, shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{SetOptions, SetTtl};
    use crate::{Engine, EngineConfig, FsyncPolicy};

    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    fn set_px_at(k: &str, v: &str, at_ms: u64) -> Command {
        Command::SetOpts {
            key: b(k),
            value: b(v),
            opts: SetOptions {
                ttl: SetTtl::At(at_ms),
                ..SetOptions::default()
            },
        }
    }

    /// An expired key is absent to every command run at a later time, and the deletion that
    /// makes it so is in the log: a replay (no clock) reaches the same state.
    #[test]
    fn expired_keys_are_absent_and_their_deletion_is_logged() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EngineConfig::new(dir.path()).policy(FsyncPolicy::Always);
        let (engine, _) = Engine::open(cfg.clone()).unwrap();
        let at = |cmds, now| {
            engine
                .execute_batch_at(cmds, now)
                .unwrap()
                .into_iter()
                .map(|a| a.reply)
                .collect::<Vec<_>>()
        };
        at(vec![set_px_at("k", "v", 100), set_px_at("n", "5", 100)], 50);
        // At its expiry time the key still exists (Redis's rule), one ms later it does not.
        assert_eq!(
            at(vec![Command::Get { key: b("k") }], 100),
            [Reply::Bulk(b("v"))]
        );
        assert_eq!(at(vec![Command::Get { key: b("k") }], 101), [Reply::Nil]);
        let replies = at(
            vec![
                Command::SetNx {
                    key: b("k"),
                    value: b("new"),
                },
                Command::Multi {
                    cmds: vec![
                        Command::IncrBy {
                            key: b("n"),
                            delta: 1,
                        },
                        Command::Get { key: b("n") },
                    ],
                },
            ],
            200,
        );
        assert_eq!(
            replies,
            [
                Reply::Int(1),
                Reply::Array(vec![Reply::Int(1), Reply::Bulk(b("1"))])
            ]
        );
        // Without a clock the same commands see the expired keys.
        assert_eq!(
            engine
                .execute(Command::SetNx {
                    key: b("k"),
                    value: b("x")
                })
                .unwrap(),
            Reply::Int(0)
        );
        let want: Vec<_> = engine.read(|ks| {
            let mut all: Vec<_> = ks.iter().map(|(k, e)| (k.to_vec(), e.clone())).collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        });
        drop(engine);
        let (engine, _) = Engine::open(cfg).unwrap();
        let got: Vec<_> = engine.read(|ks| {
            let mut all: Vec<_> = ks.iter().map(|(k, e)| (k.to_vec(), e.clone())).collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        });
        assert_eq!(got, want);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, e)| e.expire_at_ms.is_none()));
    }

    /// Expiry times survive a snapshot and a hybrid rewrite (both write each entry's expiry)
    /// and the replay of the log after them.
    #[test]
    fn snapshots_and_rewrites_keep_expiry_times() {
        use crate::Persistence;
        for persistence in [Persistence::AofSnapshot, Persistence::Hybrid] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = EngineConfig::new(dir.path())
                .policy(FsyncPolicy::Always)
                .persistence(persistence);
            let (engine, _) = Engine::open(cfg.clone()).unwrap();
            engine.execute(set_px_at("a", "v", 1_000)).unwrap();
            engine
                .execute(Command::Set {
                    key: b("b"),
                    value: b("v"),
                })
                .unwrap();
            engine
                .execute(Command::PExpireAt {
                    key: b("b"),
                    at_ms: 2_000,
                })
                .unwrap();
            match persistence {
                Persistence::Hybrid => drop(engine.rewrite().unwrap()),
                _ => drop(engine.save().unwrap()),
            }
            // After the snapshot or rewrite: one more in the log.
            engine.execute(set_px_at("c", "v", 3_000)).unwrap();
            drop(engine);
            let (engine, _) = Engine::open(cfg).unwrap();
            let times: Vec<Option<u64>> = engine.read(|ks| {
                ["a", "b", "c"]
                    .iter()
                    .map(|k| ks.get_entry(k.as_bytes()).and_then(|e| e.expire_at_ms))
                    .collect()
            });
            assert_eq!(
                times,
                [Some(1_000), Some(2_000), Some(3_000)],
                "{persistence:?}"
            );
        }
    }

    #[test]
    fn refused_commands_and_live_keys_run_unchanged() {
        let mut ks = Keyspace::new();
        ks.apply(&set_px_at("k", "v", 10));
        let hset = Command::HSet {
            key: b("k"),
            fields: vec![],
        };
        assert_eq!(
            remove_expired_first(&ks, hset.clone(), 20),
            (hset, Shown::All)
        );
        let get = Command::Get { key: b("k") };
        assert_eq!(
            remove_expired_first(&ks, get.clone(), 10),
            (get.clone(), Shown::All)
        );
        let (run, shown) = remove_expired_first(&ks, get.clone(), 11);
        assert_eq!(shown, Shown::Last);
        assert_eq!(
            run,
            Command::Multi {
                cmds: vec![Command::Del { key: b("k") }, get]
            }
        );
        assert_eq!(
            Shown::Tail { dels: 1 }.reply(Reply::Array(vec![Reply::Int(1), Reply::Nil])),
            Reply::Array(vec![Reply::Nil])
        );
    }
}
