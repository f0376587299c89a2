//! kill -9 of a RESP server (`durlab serve` or redis-server) on a plain data directory: the
//! server is driven with the workload ([`super::resp_server`]), killed with SIGKILL at a seeded
//! time in the trial's crash range ([`super::trial`]), restarted on the same directory (the page
//! cache survives a process crash), read back and judged by the one judge against the kill -9
//! promise (acked(T) under `always`, `everysec` and `no`; nothing under `off`; with
//! `--contract`, the contract's). With `--stall` or a phase to aim at, kill -9 runs on the
//! recording filesystem instead ([`super::resp_images`]).

use std::time::Duration;

use super::fraction;
use super::resp_server::Driving;
use super::runner::{Crashed, FaultRunner, Promise, Recovery, Trial};
use crate::servers::ServerSpec;

/// The runner of `kill9` on a RESP target without the recording filesystem.
#[derive(Debug, Clone, Copy)]
pub struct RespKill9;

impl FaultRunner for RespKill9 {
    type Facts = ();

    fn crash(&self, trial: &mut Trial<'_>) -> Result<(Crashed, ()), String> {
        let lab = trial.lab;
        let plan = trial.plan();
        let mut spec =
            ServerSpec::for_config(lab.target, &trial.config()).map_err(|e| e.to_string())?;
        spec.log = trial.dir.join("server.log");
        spec.redis_config = lab.redis_config.clone();
        let after = fraction(&mut trial.rng, plan.crash_from_secs, plan.secs);
        let max = Duration::from_secs_f64(plan.secs * 4.0 + 30.0);
        let pace = lab.rate_for(trial.fault).map(|r| (r, trial.seed));
        let driving = Driving::start(lab, &spec, max, pace)?;
        std::thread::sleep(Duration::from_secs_f64(after));
        let killed = driving.kill()?;
        let notes = vec![format!(
            "killed {:.0} ms after the first command (drawn in [{:.0}, {:.0}] ms)",
            after * 1e3,
            plan.crash_from_secs * 1e3,
            plan.secs * 1e3
        )];
        spec.log = trial.dir.join("restart.log");
        let crashed = Crashed {
            recovery: Recovery::Server {
                spec,
                promise: Promise::Kill9,
            },
            acks: killed.acks,
            t_ns: killed.t_kill_ns,
            notes,
        };
        Ok((crashed, ()))
    }
}
