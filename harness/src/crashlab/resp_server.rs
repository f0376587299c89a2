//! A RESP server (`durlab serve` or redis-server, unmodified) in a crash trial: started and
//! driven with the workload over one pipelined connection ([`crate::servers::drive`]: write
//! command n as `MULTI; <command n>; SET __durlab:lsn n; EXEC`), killed with SIGKILL, then
//! restarted on what the crash left and read back over RESP for the one judge
//! ([`super::verdict::Recovered`]). Shared by the kill -9 runner ([`super::resp_kill9`]) and
//! the runner on the recording filesystem ([`super::resp_images`]).

use std::time::{Duration, Instant};

use durlab_engine::clock::now_ns;

use super::Lab;
use super::ackpage::AckLog;
use super::verdict::Recovered;
use crate::driver::pacing::Rate;
use crate::oracle::{DIFFS_SHOWN, compare};
use crate::servers::drive::{self, Driver};
use crate::servers::{ServerProcess, ServerSpec};

/// A server being driven with the workload; killed (SIGKILL) when dropped.
pub(crate) struct Driving {
    server: ServerProcess,
    driver: Driver,
    began: Instant,
    /// When the workload started ([`now_ns`]).
    pub began_ns: u64,
}

/// What a killed server's run left in the harness.
pub(crate) struct ServerKilled {
    /// The acknowledgements the driver saw (no saves: a RESP server does not say when a save
    /// became durable).
    pub acks: AckLog,
    /// T: just before the SIGKILL.
    pub t_kill_ns: u64,
    /// Seconds from the workload's start to the kill.
    pub ran_secs: f64,
}

impl Driving {
    /// Starts a server as `spec` says and drives `lab.workload` into it for at most `max`
    /// (a server still running then fails the run): flat-out, or with `pace` open loop at
    /// that rate (arrival times seeded with its second part, [`Driver::start_paced`]).
    ///
    /// # Errors
    /// A server that does not start (its log named), or a connection that fails.
    pub(crate) fn start(
        lab: &Lab,
        spec: &ServerSpec,
        max: Duration,
        pace: Option<(Rate, u64)>,
    ) -> Result<Driving, String> {
        let server = ServerProcess::start(spec).map_err(|e| e.to_string())?;
        let client = server.connect().map_err(|e| e.to_string())?;
        let began = Instant::now();
        let began_ns = now_ns();
        let driver = Driver::start_paced(client, &lab.workload, lab.target, max, pace);
        Ok(Driving {
            server,
            driver,
            began,
            began_ns,
        })
    }

    /// The server (for further connections).
    pub(crate) fn server(&self) -> &ServerProcess {
        &self.server
    }

    /// When the workload started.
    pub(crate) fn began(&self) -> Instant {
        self.began
    }

    /// Stops the server cleanly (`SHUTDOWN`, as an operator's stop does) and collects the
    /// acknowledgements; `t_kill_ns` is when it had exited.
    ///
    /// # Errors
    /// A server that did not exit within `timeout` (it is then killed), or the driver failing
    /// before the stop.
    pub(crate) fn stop(mut self, timeout: Duration) -> Result<ServerKilled, String> {
        self.driver.crashing();
        self.server.stop(timeout)?;
        let t_kill_ns = now_ns();
        let ran_secs = self.began.elapsed().as_secs_f64();
        let acks = self.driver.join()?.into_ack_log();
        Ok(ServerKilled {
            acks,
            t_kill_ns,
            ran_secs,
        })
    }

    /// Sends SIGKILL to the server's process group now, reaps it, and collects the
    /// acknowledgements.
    ///
    /// # Errors
    /// The kill failing, or the driver failing before the kill.
    pub(crate) fn kill(mut self) -> Result<ServerKilled, String> {
        self.driver.crashing();
        let t_kill_ns = now_ns();
        self.server
            .kill9()
            .map_err(|e| format!("kill -9 of the server: {e}"))?;
        let ran_secs = self.began.elapsed().as_secs_f64();
        let acks = self.driver.join()?.into_ack_log();
        Ok(ServerKilled {
            acks,
            t_kill_ns,
            ran_secs,
        })
    }
}

/// Starts a server on `spec.dir` (a crashed data directory), reads its whole state back and
/// compares it with `lab.oracle` at the recovered LSN (see [`Recovered`]): refused, with the
/// server's own words, if it does not start or cannot be read back. The server is killed on
/// return.
pub(crate) fn restart_and_recover(spec: &ServerSpec, lab: &Lab, issued: u64) -> Recovered {
    let restarted = match ServerProcess::start(spec) {
        Ok(s) => s,
        Err(e) => return Recovered::Refused(e.to_string()),
    };
    let (r, got) = match drive::read_back(&restarted) {
        Ok(read) => read,
        Err(e) => {
            return Recovered::Refused(format!("reading the restarted server back: {e}"));
        }
    };
    drop(restarted);
    Recovered::loaded(
        r,
        issued,
        || {
            lab.oracle.with_model(r, |m| {
                compare::compare(&got, &compare::untimed(compare::from_model(m)), DIFFS_SHOWN)
            })
        },
        "",
    )
    .with_groups(&lab.oracle, || compare::views_from_canon(&got))
}
