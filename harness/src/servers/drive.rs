//! Driving a RESP server with the workload for a crash trial, and reading back what a server
//! recovered.
//!
//! Write command n goes over one pipelined connection as `MULTI; <command n>; SET
//! __durlab:lsn n; EXEC`, so that the recovered LSN is the value of that key on any server
//! (each transaction is applied whole or not at all, by Redis and by `durlab serve`). One
//! connection: acknowledgements arrive in LSN order. Times are [`now_ns`] (CLOCK_MONOTONIC),
//! the clock of the crash lab's traces, so an acknowledgement can be placed against a crash
//! image's cut.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use durlab_engine::Lsn;
use durlab_engine::clock::now_ns;

use super::client::Client;
use super::{ServerProcess, Target, for_resp, readback};
use crate::crashlab::ackpage::AckLog;
use crate::driver::pacing::{Pacer, Rate};
use crate::oracle::compare::CanonState;
use crate::resp::Value;
use crate::resp::commands::AutoId;
use crate::workload::Workload;

/// The key holding the LSN of the last applied write command.
pub const LSN_KEY: &[u8] = b"__durlab:lsn";

/// Transactions in flight on the connection.
pub const PIPELINE_TXNS: usize = 8;

/// Most write commands one driven run may issue (bounds the acknowledgement vectors).
pub const MAX_LSNS: u64 = 1 << 26;

/// A workload running against a server in a thread of its own.
#[derive(Debug)]
pub struct Driver {
    handle: JoinHandle<Result<Driven, String>>,
    crashed: Arc<AtomicBool>,
}

/// What a driven run issued and had acknowledged.
#[derive(Debug, Clone, Default)]
pub struct Driven {
    /// `ack_ns[n - 1]`: when EXEC n was answered (0: not answered).
    pub ack_ns: Vec<u64>,
    /// `issued_ns[n - 1]`: when transaction n was sent.
    pub issued_ns: Vec<u64>,
    /// When the driver started.
    pub start_ns: u64,
}

impl Driven {
    /// The acknowledgements as the crash lab's [`AckLog`] (no saves published: a RESP server
    /// does not tell when a save became durable).
    pub fn into_ack_log(self) -> AckLog {
        let issued = self.issued_ns.len() as Lsn;
        AckLog {
            capacity: issued,
            ready_ns: self.start_ns,
            highest_acked: self
                .ack_ns
                .iter()
                .rposition(|&t| t != 0)
                .map_or(0, |i| i as Lsn + 1),
            highest_issued: issued,
            full_at_lsn: 0,
            stall_started_ns: 0,
            pid: 0,
            ack_ns: self.ack_ns,
            issued_ns: self.issued_ns,
            saves: Vec::new(),
            saves_begun: 0,
            saves_done: 0,
        }
    }
}

impl Driver {
    /// Starts driving `workload` (writer 0) through `client` flat-out for at most `max`.
    pub fn start(client: Client, workload: &Workload, target: Target, max: Duration) -> Driver {
        Driver::start_paced(client, workload, target, max, None)
    }

    /// As [`Driver::start`], open loop at `rate` (arrival times seeded with the second) when
    /// given. The driver sends the write commands of the mix only (the reads would change
    /// nothing durable), so it paces them at the rate's write share
    /// ([`write_rate`]).
    pub fn start_paced(
        client: Client,
        workload: &Workload,
        target: Target,
        max: Duration,
        rate: Option<(Rate, u64)>,
    ) -> Driver {
        let crashed = Arc::new(AtomicBool::new(false));
        let workload = workload.clone();
        let flag = crashed.clone();
        let handle = std::thread::spawn(move || match rate {
            Some((rate, seed)) => drive_paced(
                client,
                &workload,
                target,
                max,
                write_rate(rate, &workload),
                seed,
                &flag,
            ),
            None => drive(client, &workload, target, max, &flag),
        });
        Driver { handle, crashed }
    }

    /// Says that the server is about to be crashed: connection errors from now on end the
    /// run instead of failing it.
    pub fn crashing(&self) {
        self.crashed.store(true, Ordering::Release);
    }

    /// Waits for the run to end (the server was crashed, or `max` passed).
    ///
    /// # Errors
    /// A client error before [`Driver::crashing`], an EXEC that failed, or a server that was
    /// not crashed within `max`.
    pub fn join(self) -> Result<Driven, String> {
        self.handle
            .join()
            .map_err(|_| "driver thread panicked".to_string())?
    }
}

fn drive(
    mut client: Client,
    workload: &Workload,
    target: Target,
    max: Duration,
    crashed: &AtomicBool,
) -> Result<Driven, String> {
    let auto = target.auto_id();
    let mut run = Run::new(crashed);
    let mut stream = workload.writer(0);
    let mut n = 0u64;
    while run.started.elapsed() < max && n + (PIPELINE_TXNS as u64) <= MAX_LSNS {
        let first = n + 1;
        for _ in 0..PIPELINE_TXNS {
            n += 1;
            queue_txn(&mut client, stream.write_command(n), n, auto);
        }
        run.sent(n);
        if let Err(e) = client.flush() {
            return run.end(e.to_string());
        }
        for lsn in first..=n {
            if let Err(e) = read_txn(&mut client, lsn) {
                return run.end(e);
            }
            run.acked(lsn);
        }
    }
    run.end(format!("the server was not crashed within {max:?}"))
}

/// What both drive loops share: when the run started, the record being filled, and how an
/// error ends it.
struct Run<'a> {
    started: Instant,
    out: Driven,
    crashed: &'a AtomicBool,
}

impl<'a> Run<'a> {
    fn new(crashed: &'a AtomicBool) -> Self {
        Run {
            started: Instant::now(),
            out: Driven {
                start_ns: now_ns(),
                ..Driven::default()
            },
            crashed,
        }
    }

    /// Transactions up to `n` were sent now.
    fn sent(&mut self, n: Lsn) {
        let sent = now_ns();
        self.out.issued_ns.resize(n as usize, sent);
        self.out.ack_ns.resize(n as usize, 0);
    }

    /// Transaction `lsn` was answered now.
    fn acked(&mut self, lsn: Lsn) {
        self.out.ack_ns[lsn as usize - 1] = now_ns();
    }

    /// The end of the run on error `e`: after [`Driver::crashing`] the broken connection is the
    /// crash itself and the record so far is the result; before it, `e` is a failure.
    fn end(self, e: String) -> Result<Driven, String> {
        if self.crashed.load(Ordering::Acquire) {
            Ok(self.out)
        } else {
            Err(e)
        }
    }
}

/// The rate of write commands `rate` implies for `workload`: its commands per second times
/// the mix's write share, same arrivals.
pub fn write_rate(rate: Rate, workload: &Workload) -> Rate {
    Rate {
        ops_per_sec: (rate.ops_per_sec * (1.0 - workload.read_fraction()))
            .max(crate::driver::pacing::MIN_OPS_PER_SEC),
        arrivals: rate.arrivals,
    }
}

/// [`drive`] open loop: transaction n is sent at its arrival of `rate` (seeded with `seed`),
/// or at once when the driver is late; with [`PIPELINE_TXNS`] unanswered it reads a reply
/// before sending more, and with none due it reads replies or sleeps until the next arrival.
fn drive_paced(
    mut client: Client,
    workload: &Workload,
    target: Target,
    max: Duration,
    rate: Rate,
    seed: u64,
    crashed: &AtomicBool,
) -> Result<Driven, String> {
    let auto = target.auto_id();
    let mut run = Run::new(crashed);
    let started = run.started;
    let mut pacer = Pacer::new(rate, 1, 0, seed, started);
    let mut stream = workload.writer(0);
    // Sent: 1..=n; answered: 1..answered.
    let (mut n, mut answered) = (0u64, 0u64);
    while started.elapsed() < max && n < MAX_LSNS {
        let now = Instant::now();
        let mut queued = false;
        while n - answered < PIPELINE_TXNS as u64 && pacer.peek() <= now && n < MAX_LSNS {
            pacer.take();
            n += 1;
            queue_txn(&mut client, stream.write_command(n), n, auto);
            queued = true;
        }
        if queued {
            run.sent(n);
            if let Err(e) = client.flush() {
                return run.end(e.to_string());
            }
        }
        if n == answered {
            // Nothing in flight: wait for the next arrival (a crash ends the wait).
            Pacer::sleep_until(pacer.peek().min(started + max), || {
                crashed.load(Ordering::Acquire)
            });
            continue;
        }
        answered += 1;
        if let Err(e) = read_txn(&mut client, answered) {
            return run.end(e);
        }
        run.acked(answered);
    }
    run.end(format!("the server was not crashed within {max:?}"))
}

/// Queues write command `n` as `MULTI; <command>; SET __durlab:lsn n; EXEC`.
fn queue_txn(client: &mut Client, command: durlab_engine::Command, n: Lsn, auto: AutoId) {
    client.queue(&[b"MULTI"]);
    client.queue_command(&for_resp(command), auto);
    client.queue(&[
        b"SET".to_vec(),
        LSN_KEY.to_vec(),
        n.to_string().into_bytes(),
    ]);
    client.queue(&[b"EXEC"]);
}

/// Reads the four replies of transaction `lsn`.
///
/// # Errors
/// A connection error, or an EXEC that failed.
fn read_txn(client: &mut Client, lsn: Lsn) -> Result<(), String> {
    for part in 0..4 {
        match client.read() {
            Ok(Value::Error(e)) if part == 3 => {
                return Err(format!("EXEC of LSN {lsn} failed: {e}"));
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// The LSN a restarted server recovered (`__durlab:lsn`, 0 when absent) and its whole state
/// without that key.
///
/// # Errors
/// A connection error, or a state that cannot be read back (naming the command).
pub fn read_back(server: &ServerProcess) -> Result<(Lsn, CanonState), String> {
    let mut c = server.connect().map_err(|e| e.to_string())?;
    let r = match c.call(&[&b"GET"[..], LSN_KEY]).map_err(|e| e.to_string())? {
        Value::Nil => 0,
        v => v
            .as_bytes()
            .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
            .ok_or(format!("{} holds {v:?}", String::from_utf8_lossy(LSN_KEY)))?,
    };
    let got = readback::read_state(&mut c, &[LSN_KEY])?;
    Ok((r, got))
}
