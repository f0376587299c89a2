//! The round: the data commands of every connection read in one event-loop iteration, run
//! as one engine batch, and how the batch's acknowledgements become each request's reply
//! (one reply per request, a summed integer for multi-key DEL, EXEC's array, or the failure
//! reply when the engine refused the batch).

use durlab_engine::{Ack, Command, Reply};

use crate::resp::{Value, encode};

/// What a reply says once the engine has failed.
pub(super) const FAILED: &str =
    "MISCONF durlab engine failed, nothing more is acknowledged (see INFO persistence)";

/// The acknowledgements of a round's batch, in batch order; `None`: the batch failed.
pub(super) type Acks<'a> = Option<&'a mut std::vec::IntoIter<Ack>>;

/// Whose replies a part of the round's batch is.
#[derive(Debug)]
pub(super) enum Owner {
    /// One request (`Item`'s shape).
    Request { conn: usize, n: usize, sum: bool },
    /// An EXEC: one array reply over these requests. `multi`: their commands went to the
    /// batch as one [`Command::Multi`] (one ack, whose array reply holds theirs), else as
    /// themselves (a transaction of one command).
    Exec {
        conn: usize,
        shape: Vec<(usize, bool)>,
        multi: bool,
    },
}

/// The data commands of every connection read in this event-loop round, run as one engine
/// batch: one lock acquisition, one log write, one acknowledgement (under `always` one
/// fdatasync, overlapping with other loops' rounds through the engine's group commit).
#[derive(Debug, Default)]
pub(super) struct Round {
    pub(super) cmds: Vec<Command>,
    pub(super) owners: Vec<Owner>,
}

impl Owner {
    /// The connection the replies go to.
    pub(super) fn conn(&self) -> usize {
        match self {
            Owner::Request { conn, .. } | Owner::Exec { conn, .. } => *conn,
        }
    }

    /// Appends this part's reply to `out`, consuming its acknowledgements from `acks`.
    pub(super) fn put(self, out: &mut Vec<u8>, mut acks: Acks<'_>) {
        match self {
            Owner::Request { n, sum, .. } => put_reply(out, acks, n, sum),
            Owner::Exec {
                shape,
                multi: false,
                ..
            } => {
                encode::array_header(out, shape.len());
                for (n, sum) in shape {
                    put_reply(out, acks.as_deref_mut(), n, sum);
                }
            }
            Owner::Exec {
                shape, multi: true, ..
            } => put_transaction(out, acks, &shape),
        }
    }
}

/// Appends the reply of one request made of the next `n` acks (`sum`: one integer adding
/// their integer replies, as multi-key `DEL`); `None` acks: the batch failed.
fn put_reply(out: &mut Vec<u8>, acks: Acks<'_>, n: usize, sum: bool) {
    let Some(acks) = acks else {
        return encode::value(out, &Value::Error(FAILED.into()));
    };
    let mut part = acks.by_ref().take(n);
    if sum {
        let total = part
            .map(|a| match a.reply {
                Reply::Int(i) => i,
                _ => 0,
            })
            .sum();
        encode::reply(out, &Reply::Int(total));
    } else {
        match part.next() {
            Some(a) => encode::reply(out, &a.reply),
            None => encode::reply(out, &Reply::Nil),
        }
        part.for_each(drop);
    }
}

/// Appends EXEC's array reply for the requests of `shape` (as [`put_reply`]), from the next
/// ack: that of the one [`Command::Multi`] they were run as, whose array reply holds one
/// reply per command. If the engine refused the transaction as a whole (its record over the
/// size limit: nothing ran), each request's reply is that error.
fn put_transaction(out: &mut Vec<u8>, acks: Acks<'_>, shape: &[(usize, bool)]) {
    encode::array_header(out, shape.len());
    let Some(acks) = acks else {
        for &(n, sum) in shape {
            put_reply(out, None, n, sum);
        }
        return;
    };
    let total: usize = shape.iter().map(|(n, _)| n).sum();
    match acks.next() {
        Some(Ack {
            reply: Reply::Array(replies),
            lsn,
        }) if replies.len() == total => {
            let mut expanded = replies
                .into_iter()
                .map(|reply| Ack { reply, lsn })
                .collect::<Vec<_>>()
                .into_iter();
            for &(n, sum) in shape {
                put_reply(out, Some(&mut expanded), n, sum);
            }
        }
        refused => {
            let reply = refused.map_or(Reply::Nil, |a| a.reply);
            for _ in shape {
                encode::reply(out, &reply);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::parse::{Limits, parse_value};

    fn ack(reply: Reply) -> Ack {
        Ack {
            reply,
            lsn: Some(1),
        }
    }

    /// What `owner` writes for `acks` (`None`: the batch failed), decoded.
    fn put(owner: Owner, acks: Option<Vec<Ack>>) -> Value {
        let mut out = Vec::new();
        let mut acks = acks.map(Vec::into_iter);
        owner.put(&mut out, acks.as_mut());
        let (v, used) = parse_value(&out, &Limits::default()).unwrap().unwrap();
        assert_eq!(used, out.len(), "one reply per owner");
        v
    }

    fn request(n: usize, sum: bool) -> Owner {
        Owner::Request { conn: 3, n, sum }
    }

    #[test]
    fn a_request_answers_with_its_ack_and_a_multi_key_del_with_the_sum() {
        assert_eq!(request(1, false).conn(), 3);
        assert_eq!(
            put(request(1, false), Some(vec![ack(Reply::Ok)])),
            Value::ok()
        );
        let dels = vec![ack(Reply::Int(1)), ack(Reply::Int(0)), ack(Reply::Int(1))];
        assert_eq!(put(request(3, true), Some(dels)), Value::Int(2));
        assert_eq!(
            put(request(1, false), Some(vec![ack(Reply::Nil)])),
            Value::Nil
        );
    }

    #[test]
    fn each_owner_takes_only_its_own_acks() {
        let mut acks = vec![
            ack(Reply::Int(1)),
            ack(Reply::Int(1)),
            ack(Reply::Bulk(b"v".to_vec())),
        ]
        .into_iter();
        let mut out = Vec::new();
        request(2, true).put(&mut out, Some(&mut acks));
        request(1, false).put(&mut out, Some(&mut acks));
        assert_eq!(out, b":2\r\n$1\r\nv\r\n");
    }

    #[test]
    fn a_failed_batch_answers_every_request_with_the_failure() {
        let failed = Value::Error(FAILED.into());
        assert_eq!(put(request(2, true), None), failed);
        let exec = Owner::Exec {
            conn: 0,
            shape: vec![(1, false), (2, true)],
            multi: true,
        };
        assert_eq!(put(exec, None), Value::Array(vec![failed.clone(), failed]));
    }

    #[test]
    fn exec_of_one_command_is_an_array_of_its_reply() {
        let exec = Owner::Exec {
            conn: 0,
            shape: vec![(1, false)],
            multi: false,
        };
        assert_eq!(
            put(exec, Some(vec![ack(Reply::Int(7))])),
            Value::Array(vec![Value::Int(7)])
        );
    }

    #[test]
    fn exec_of_a_transaction_spreads_the_multi_reply_over_its_requests() {
        let exec = Owner::Exec {
            conn: 0,
            shape: vec![(1, false), (2, true), (1, false)],
            multi: true,
        };
        let replies = Reply::Array(vec![
            Reply::Ok,
            Reply::Int(1),
            Reply::Int(1),
            Reply::Error(
                "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
            ),
        ]);
        assert_eq!(
            put(exec, Some(vec![ack(replies)])),
            Value::Array(vec![
                Value::ok(),
                Value::Int(2),
                Value::Error(
                    "WRONGTYPE Operation against a key holding the wrong kind of value".into()
                ),
            ])
        );
    }

    #[test]
    fn a_transaction_the_engine_refused_answers_each_request_with_the_refusal() {
        let exec = Owner::Exec {
            conn: 0,
            shape: vec![(1, false), (1, false)],
            multi: true,
        };
        let refusal = Reply::Error("ERR record too large".into());
        assert_eq!(
            put(exec, Some(vec![ack(refusal)])),
            Value::Array(vec![
                Value::Error("ERR record too large".into()),
                Value::Error("ERR record too large".into()),
            ])
        );
    }
}
