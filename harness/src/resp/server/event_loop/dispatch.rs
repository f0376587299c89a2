//! A request's way through the event loop: a data command joins the round's batch; inside
//! MULTI it is queued, and EXEC puts the queue in the batch as one transaction; any other
//! request first runs the round so far (so it sees the connection's earlier writes) and is
//! answered now, in request order.

use std::sync::atomic::Ordering;

use durlab_engine::Command;

use super::EventLoop;
use crate::resp::commands::{self, Request};
use crate::resp::server::round::Owner;
use crate::resp::server::{admin, unix_ms};
use crate::resp::{Value, encode};

/// What a read says once the engine has failed.
const FAILED_READ: &str = "MISCONF durlab engine failed: reads are refused, since memory may hold writes that were never acknowledged (see INFO persistence)";

impl EventLoop {
    /// Runs the round's batch and appends each request's reply to its connection's output.
    pub(super) fn run_round(&mut self) {
        if self.round.owners.is_empty() {
            return;
        }
        let round = std::mem::take(&mut self.round);
        let mut acks = self
            .state
            .engine
            .execute_batch_at(round.cmds, unix_ms())
            .ok()
            .map(Vec::into_iter);
        // A connection gone or disconnected since its requests were read still consumes its
        // acks (so the next owner gets its own); its replies go to this scratch buffer.
        let mut gone = Vec::new();
        for owner in round.owners {
            let conn = owner.conn();
            let out = match self.conns[conn].as_mut() {
                Some(c) => {
                    c.in_round = false;
                    c.unsized_in_round = 0;
                    if c.discard {
                        gone.clear();
                        &mut gone
                    } else {
                        &mut c.out
                    }
                }
                None => {
                    gone.clear();
                    &mut gone
                }
            };
            owner.put(out, acks.as_mut());
            self.check_output(conn);
        }
    }

    /// Appends a reply computed now, after running the round if this connection has
    /// commands in it (replies stay in request order).
    pub(super) fn reply(&mut self, i: usize, v: Value) {
        if self.conns[i].as_ref().is_some_and(|c| c.in_round) {
            self.run_round();
        }
        if let Some(c) = self.conns[i].as_mut()
            && !c.discard
        {
            encode::value(&mut c.out, &v);
        }
        self.check_output(i);
    }

    pub(super) fn add_to_round(&mut self, i: usize, owner: Owner, cmds: Vec<Command>) {
        fn unsized_replies(c: &Command) -> usize {
            match c {
                Command::Get { .. } | Command::ZPopMin { .. } => 1,
                // Entries, pending lists and consumer lists, of any size.
                Command::XReadGroup { .. }
                | Command::XClaim { .. }
                | Command::XAutoClaim { .. }
                | Command::XPending { .. }
                | Command::XInfoGroups { .. }
                | Command::XInfoConsumers { .. } => 1,
                // `SET ... GET` replies with the old value, of any size.
                Command::SetOpts { opts, .. } if opts.get => 1,
                Command::Multi { cmds } => cmds.iter().map(unsized_replies).sum(),
                _ => 0,
            }
        }
        let big: usize = cmds.iter().map(unsized_replies).sum();
        self.round.cmds.extend(cmds);
        self.round.owners.push(owner);
        if let Some(c) = self.conns[i].as_mut() {
            c.in_round = true;
            c.unsized_in_round += big;
        }
    }

    /// Handles one parsed request of connection `i`.
    pub(super) fn request(&mut self, i: usize, parsed: Result<Request, Value>) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        if let Some((queue, dirty)) = &mut c.multi {
            match parsed {
                Ok(Request::Engine { cmds, sum }) => {
                    queue.push((cmds, sum));
                    return self.reply(i, Value::Simple("QUEUED".into()));
                }
                Ok(Request::Exec | Request::Discard | Request::Multi | Request::Quit) => {}
                Ok(_) => {
                    *dirty = true;
                    return self.reply(i, Value::err("durlab serve queues only data commands in MULTI (SET, GET, DEL, HSET, ZADD, XADD, ...)"));
                }
                Err(e) => {
                    *dirty = true;
                    return self.reply(i, e);
                }
            }
        }
        let req = match parsed {
            Ok(r) => r,
            Err(e) => return self.reply(i, e),
        };
        let st = self.state.clone();
        let engine = &st.engine;
        let reply = match req {
            Request::Engine { cmds, sum } => {
                let n = cmds.len();
                return self.add_to_round(i, Owner::Request { conn: i, n, sum }, cmds);
            }
            Request::Exec => match c.multi.take() {
                None => Value::err("EXEC without MULTI"),
                Some((_, true)) => Value::Error(
                    "EXECABORT Transaction discarded because of previous errors.".into(),
                ),
                Some((queue, false)) => {
                    let shape = queue.iter().map(|(c, s)| (c.len(), *s)).collect();
                    let mut cmds: Vec<Command> = queue.into_iter().flat_map(|(c, _)| c).collect();
                    // One command for the whole transaction, so one record: separate records
                    // could be split by a crash (the first kept, the second torn off). A single
                    // command is already all-or-nothing.
                    let multi = cmds.len() > 1;
                    if multi {
                        cmds = vec![Command::Multi { cmds }];
                    }
                    let owner = Owner::Exec {
                        conn: i,
                        shape,
                        multi,
                    };
                    return self.add_to_round(i, owner, cmds);
                }
            },
            Request::Multi => match c.multi {
                Some(_) => Value::err("MULTI calls can not be nested"),
                None => {
                    c.multi = Some((Vec::new(), false));
                    Value::ok()
                }
            },
            Request::Discard => match c.multi.take() {
                Some(_) => Value::ok(),
                None => Value::err("DISCARD without MULTI"),
            },
            Request::Quit => {
                c.close = true;
                Value::ok()
            }
            Request::Shutdown => {
                st.stop.store(true, Ordering::Release);
                c.close = true;
                return;
            }
            Request::Read(r) => {
                // Reads see this connection's earlier writes: run the round first. They see
                // only acknowledged writes: after an engine failure, none (the keyspace may
                // hold writes that were refused).
                self.run_round();
                engine
                    .read_acknowledged(|ks| commands::read(ks, &r, unix_ms()))
                    .unwrap_or_else(|_| Value::Error(FAILED_READ.into()))
            }
            other => {
                self.run_round();
                admin::server_request(&st, other)
            }
        };
        self.reply(i, reply);
    }
}
