//! kill -9 of a RESP server (durlab serve or redis-server): the harness drives the server
//! over one pipelined connection, sending write command n wrapped as
//! `MULTI; <command n>; SET __durlab:lsn n; EXEC`, so that the recovered LSN is the value
//! of that key on both servers. At a seeded time it sends SIGKILL to the server, restarts
//! it on the same directory, reads the whole state back over RESP and compares it with the
//! oracle at r (the recovered LSN), as the crash lab does for the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use durlab_engine::FsyncPolicy;
use rand::RngExt;
use serde::Serialize;

use super::readback;
use super::{ServerProcess, ServerSpec, for_resp};
use crate::oracle::{self, DIFFS_SHOWN, compare};
use crate::resp::Value;
use crate::workload::Workload;
use crate::workload::rng::SplitMix64;

/// The key holding the LSN of the last applied write command.
pub const LSN_KEY: &[u8] = b"__durlab:lsn";

/// Transactions in flight on the connection.
pub const PIPELINE_TXNS: usize = 8;

/// One trial's result.
#[derive(Debug, Clone, Serialize)]
pub struct Kill9Trial {
    pub trial: u64,
    pub seed: u64,
    /// `ok`, `lost-acked`, `divergent`, `phantom` or `refused` (docs/design.md).
    pub verdict: &'static str,
    /// Highest LSN whose EXEC reply arrived before the kill.
    pub acked: u64,
    /// What the kill -9 contract promises to keep (acked; 0 under `off`).
    pub promised: u64,
    /// Highest LSN sent.
    pub issued: u64,
    /// `__durlab:lsn` after the restart.
    pub recovered_lsn: u64,
    pub lost_acked_ops: u64,
    /// Kill time minus the ack time of command r+1, when r < acked; else 0.
    pub loss_window_ms: f64,
    /// RESP bytes of the lost acknowledged commands (a server's log format is its own).
    pub lost_bytes: u64,
    /// Restart (recovery included) plus read-back and comparison, seconds.
    pub verify_seconds: f64,
    pub notes: Vec<String>,
}

/// Runs trial `k` (seed `seed`) of `spec` in a fresh `spec.dir`: drives the workload for a
/// seeded time in (0.1, 1.0] × `trial_secs`, kill -9, restart, verify.
///
/// # Errors
/// A message when the trial could not run: a server that does not start, a client error
/// before the kill, or a state that cannot be read back. A verdict, even a violating one,
/// is not an error.
pub fn run_trial(
    spec: &ServerSpec,
    workload: &Workload,
    trial_secs: f64,
    seed: u64,
    k: u64,
) -> Result<Kill9Trial, String> {
    let mut rng = SplitMix64::new(seed);
    let after = trial_secs * rng.random_range(0.1..=1.0f64);
    let mut server = ServerProcess::start(spec).map_err(|e| e.to_string())?;
    let mut client = server.connect().map_err(|e| e.to_string())?;
    let auto = spec.target.auto_id();
    let start = Instant::now();
    let killed = Arc::new(AtomicBool::new(false));
    let max = Duration::from_secs_f64(trial_secs * 4.0 + 30.0);
    let driver = {
        let workload = workload.clone();
        let killed = killed.clone();
        std::thread::spawn(move || -> Result<(Vec<u64>, u64), String> {
            // ack_ns[n] = ns after start when EXEC n was answered (index 0 unused).
            let mut ack_ns = vec![0u64];
            let mut stream = workload.writer(0);
            let mut n = 0u64;
            let lsn_key = LSN_KEY.to_vec();
            while start.elapsed() < max {
                let first = n + 1;
                for _ in 0..PIPELINE_TXNS {
                    n += 1;
                    client.queue(&[b"MULTI"]);
                    client.queue_command(&for_resp(stream.write_command(n)), auto);
                    client.queue(&[b"SET".to_vec(), lsn_key.clone(), n.to_string().into_bytes()]);
                    client.queue(&[b"EXEC"]);
                }
                if let Err(e) = client.flush() {
                    return if killed.load(Ordering::Acquire) {
                        Ok((ack_ns, n))
                    } else {
                        Err(e.to_string())
                    };
                }
                for lsn in first..=n {
                    for part in 0..4 {
                        match client.read() {
                            Ok(Value::Error(e)) if part == 3 => {
                                return Err(format!("EXEC of LSN {lsn} failed: {e}"));
                            }
                            Ok(_) => {}
                            Err(e) if killed.load(Ordering::Acquire) => {
                                let _ = e;
                                return Ok((ack_ns, n));
                            }
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    ack_ns.push(start.elapsed().as_nanos() as u64);
                }
            }
            Err(format!("the server was not killed within {max:?}"))
        })
    };
    std::thread::sleep(Duration::from_secs_f64(after).saturating_sub(start.elapsed()));
    killed.store(true, Ordering::Release);
    let t_kill_ns = start.elapsed().as_nanos() as u64;
    server
        .kill9()
        .map_err(|e| format!("kill -9 of the server: {e}"))?;
    let (ack_ns, issued) = driver
        .join()
        .map_err(|_| "driver thread panicked".to_string())??;
    // One connection: acknowledgements arrive in LSN order.
    let acked = ack_ns
        .iter()
        .rposition(|&t| t != 0 && t <= t_kill_ns)
        .unwrap_or(0) as u64;
    let promised = if spec.policy == FsyncPolicy::Off {
        0
    } else {
        acked
    };
    let notes = vec![format!(
        "killed {:.0} ms after the first command",
        after * 1e3
    )];

    let verify = Instant::now();
    let restarted = match ServerProcess::start(spec) {
        Ok(s) => s,
        Err(e) => {
            return Ok(judged(
                k,
                seed,
                "refused",
                acked,
                promised,
                issued,
                0,
                0.0,
                0,
                verify,
                vec![e.to_string()],
            ));
        }
    };
    let mut c = restarted.connect().map_err(|e| e.to_string())?;
    let r = match c.call(&[b"GET", LSN_KEY]).map_err(|e| e.to_string())? {
        Value::Nil => 0,
        v => v
            .as_bytes()
            .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
            .ok_or(format!("{} holds {v:?}", String::from_utf8_lossy(LSN_KEY)))?,
    };
    let got = readback::read_state(&mut c, &[LSN_KEY])?;
    drop(restarted);
    let lost = promised.saturating_sub(r);
    let window_ms = if r < acked {
        t_kill_ns.saturating_sub(ack_ns[(r + 1) as usize]) as f64 / 1e6
    } else {
        0.0
    };
    let lost_bytes: u64 = if lost > 0 {
        let mut s = workload.writer(0);
        ((r + 1)..=promised)
            .map(|n| {
                let mut b = Vec::new();
                crate::resp::encode::command(
                    &mut b,
                    &crate::resp::commands::to_args(&s.write_command(n), auto),
                );
                b.len() as u64
            })
            .sum()
    } else {
        0
    };
    let mut notes = notes;
    let verdict = if r > issued {
        "phantom"
    } else if let Some(diff) = {
        let oracle = compare::from_model(&oracle::expected(workload, r));
        let cmp = compare::compare(&got, &oracle, DIFFS_SHOWN);
        (!cmp.equal()).then(|| cmp.describe())
    } {
        notes.push(diff);
        "divergent"
    } else if r < promised {
        "lost-acked"
    } else {
        "ok"
    };
    Ok(judged(
        k, seed, verdict, acked, promised, issued, r, window_ms, lost_bytes, verify, notes,
    ))
}

#[allow(clippy::too_many_arguments)]
fn judged(
    trial: u64,
    seed: u64,
    verdict: &'static str,
    acked: u64,
    promised: u64,
    issued: u64,
    recovered_lsn: u64,
    loss_window_ms: f64,
    lost_bytes: u64,
    verify: Instant,
    notes: Vec<String>,
) -> Kill9Trial {
    Kill9Trial {
        trial,
        seed,
        verdict,
        acked,
        promised,
        issued,
        recovered_lsn,
        lost_acked_ops: promised.saturating_sub(recovered_lsn),
        loss_window_ms,
        lost_bytes,
        verify_seconds: verify.elapsed().as_secs_f64(),
        notes,
    }
}
