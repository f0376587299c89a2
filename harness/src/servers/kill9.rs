//! kill -9 of a RESP server (durlab serve or redis-server): the harness drives the server
//! with [`super::drive`] (write command n wrapped as `MULTI; <command n>; SET __durlab:lsn n;
//! EXEC`, so that the recovered LSN is the value of that key on both servers). At a seeded
//! time it sends SIGKILL to the server, restarts it on the same directory, reads the whole
//! state back over RESP and judges it with the crash lab's one judge
//! ([`crate::crashlab::verdict::Recovered::judge`]) against the oracle at r, the recovered LSN.

use std::time::{Duration, Instant};

use durlab_engine::FsyncPolicy;
use durlab_engine::clock::now_ns;
use rand::RngExt;
use serde::Serialize;

use super::drive::{self, Driver};
use super::{ServerProcess, ServerSpec};
use crate::crashlab::verdict::{self, Verdict};
use crate::driver::pacing::Rate;
use crate::oracle::{DIFFS_SHOWN, Oracle, compare};
use crate::workload::Workload;
use crate::workload::rng::SplitMix64;

pub use super::drive::{LSN_KEY, PIPELINE_TXNS};

/// One trial's result.
#[derive(Debug, Clone, Serialize)]
pub struct Kill9Trial {
    pub trial: u64,
    pub seed: u64,
    /// The crash lab's verdict (docs/design.md, "Oracle and verdicts").
    pub verdict: Verdict,
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
    /// The window reaches back to the trial's first acknowledgement: only a lower bound
    /// (docs/design.md, "Censoring").
    pub censored: bool,
    /// RESP bytes of the lost acknowledged commands (a server's log format is its own).
    pub lost_bytes: u64,
    /// Restart (recovery included) plus read-back and comparison, seconds.
    pub verify_seconds: f64,
    /// Write commands acknowledged from the first command to the kill, and the seconds in
    /// between.
    pub acked_writes: crate::driver::pacing::AckedWrites,
    pub notes: Vec<String>,
}

/// Restarts a server on `spec` (its data directory as the crash left it), reads its state
/// back and compares it with `oracle` (see [`verdict::Recovered`]): refused (with the server's
/// own words) if it does not start.
///
/// # Errors
/// A state that cannot be read back from a server that started.
pub fn restart_and_recover(
    spec: &ServerSpec,
    oracle: &Oracle,
    issued: u64,
) -> Result<verdict::Recovered, String> {
    let restarted = match ServerProcess::start(spec) {
        Ok(s) => s,
        Err(e) => return Ok(verdict::Recovered::Refused(e.to_string())),
    };
    let (r, got) = drive::read_back(&restarted)?;
    drop(restarted);
    Ok(verdict::Recovered::loaded(
        r,
        issued,
        || {
            oracle.with_model(r, |m| {
                compare::compare(&got, &compare::from_model(m), DIFFS_SHOWN)
            })
        },
        "",
    ))
}

/// Runs trial `k` (seed `seed`) of `spec` in a fresh `spec.dir`: drives the workload (open
/// loop at `rate` when given, `driver::pacing`) for a seeded time in (0.1, 1.0] ×
/// `trial_secs`, kill -9, restart, verify.
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
    rate: Option<Rate>,
) -> Result<Kill9Trial, String> {
    let mut rng = SplitMix64::new(seed);
    let after = trial_secs * rng.random_range(0.1..=1.0f64);
    let mut server = ServerProcess::start(spec).map_err(|e| e.to_string())?;
    let client = server.connect().map_err(|e| e.to_string())?;
    let max = Duration::from_secs_f64(trial_secs * 4.0 + 30.0);
    let start = Instant::now();
    let driver = Driver::start_paced(client, workload, spec.target, max, rate.map(|r| (r, seed)));
    std::thread::sleep(Duration::from_secs_f64(after).saturating_sub(start.elapsed()));
    driver.crashing();
    let t_kill_ns = now_ns();
    server
        .kill9()
        .map_err(|e| format!("kill -9 of the server: {e}"))?;
    let driven = driver.join()?;
    let acks = driven.into_ack_log();
    let acked = acks.acked_before(t_kill_ns);
    let acked_writes = crate::crashlab::acked_writes(&acks, acks.ready_ns, t_kill_ns);
    let issued = acks.highest_issued;
    let promised = if spec.policy == FsyncPolicy::Off {
        0
    } else {
        acked
    };
    let mut notes = vec![format!(
        "killed {:.0} ms after the first command",
        after * 1e3
    )];
    let verify = Instant::now();
    let j = restart_and_recover(spec, &Oracle::new(workload.clone()), issued)?.judge(promised);
    let r = j.recovered_lsn;
    // The crash lab's definition, so both targets' windows and censoring agree.
    let window = crate::crashlab::loss::window(&acks, t_kill_ns, acked, r);
    let lost = promised.saturating_sub(r);
    let lost_bytes: u64 = if lost > 0 && j.verdict != Verdict::Refused {
        let mut s = workload.writer(0);
        let auto = spec.target.auto_id();
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
    if !j.detail.is_empty() {
        notes.push(j.detail.clone());
    }
    Ok(Kill9Trial {
        trial: k,
        seed,
        verdict: j.verdict,
        acked,
        promised,
        issued,
        recovered_lsn: r,
        lost_acked_ops: if j.verdict == Verdict::Refused {
            0
        } else {
            lost
        },
        loss_window_ms: if j.verdict == Verdict::Refused {
            0.0
        } else {
            window.ms
        },
        censored: j.verdict != Verdict::Refused && window.censored,
        lost_bytes,
        verify_seconds: verify.elapsed().as_secs_f64(),
        acked_writes,
        notes,
    })
}
