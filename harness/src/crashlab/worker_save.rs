//! The backup procedures of `live-copy` on the engine's worker process (target `engine`,
//! docs/design.md, "Live copies"): the worker runs with its recording backend as for the
//! image faults, and the procedure runs beside it exactly as over RESP ([`backup::during`]),
//! real copies included (`cp -r` and `tar` of the worker's data directory, read directly: the
//! engine writes through the kernel's page cache, as the copying tools read).
//!
//! The safe procedure asks the running worker for the engine's own save through the ack page
//! ([`AckPage::request_save`]): the worker's saver thread calls [`durlab_engine::Engine::save`]
//! (a rewrite in mode `hybrid`: new base, manifest installed, old files removed), and publishes
//! the request served only after it returned, i.e. once the new snapshot or manifest and its
//! directory entry are synced ([`super::worker`]). That publication is the completion the
//! copy waits for, as `INFO persistence` is over RESP. Mode `aof` has no save: refused.

use std::path::Path;
use std::time::{Duration, Instant};

use durlab_engine::clock::now_ns;

use super::ackpage::AckPage;
use super::backup::{self, ProcedureCopies, SAVE_TIMEOUT, SafeSave};
use super::images::copy::Procedure;
use super::kill9::{self, Killed, Running};
use super::runner::Trial;
use crate::scenario::model::Persistence;

/// [`SafeSave`] through a running worker's ack page.
pub(crate) struct WorkerSave<'a> {
    running: &'a mut Running,
    mode: Persistence,
    /// The lab's own mapping of the worker's page.
    page: AckPage,
    /// The number of the last request made (0: none yet).
    asked: u64,
}

impl<'a> WorkerSave<'a> {
    /// Will ask `running`, an engine in `mode`.
    ///
    /// # Errors
    /// A page that cannot be mapped.
    pub(crate) fn new(running: &'a mut Running, mode: Persistence) -> Result<Self, String> {
        let page = AckPage::open(running.page()).map_err(|e| e.to_string())?;
        Ok(WorkerSave {
            running,
            mode,
            page,
            asked: 0,
        })
    }
}

/// The engine has a save in every mode but `aof`.
///
/// # Errors
/// Mode `aof`.
fn has_save(mode: Persistence) -> Result<(), String> {
    if mode == Persistence::Aof {
        return Err(
            "procedure safe: the engine in mode aof has no save or rewrite to wait for (Engine::save needs persistence snapshot, aof+snapshot or hybrid)".into(),
        );
    }
    Ok(())
}

impl SafeSave for WorkerSave<'_> {
    fn ask(&mut self) -> Result<(), String> {
        has_save(self.mode)?;
        self.asked = self.page.request_save();
        Ok(())
    }

    fn wait_done(&mut self) -> Result<(), String> {
        let (n, page) = (self.asked, &self.page);
        self.running
            .wait_for(
                SAVE_TIMEOUT,
                &format!("the end of save request {n}"),
                |_| page.save_requests_served() >= n,
            )
            .map(|_| ())
    }

    fn describe(&self, n: usize) -> String {
        format!(
            "{n} saves (a rewrite in mode hybrid) asked of the worker through its ack page and waited for (published once Engine::save returned durable)"
        )
    }
}

/// A `live-copy` trial of the worker with its procedure beside it (`safe`, or `live` with real
/// copies): starts the worker recording its I/O to `trace`, runs [`backup::during`] with a
/// [`WorkerSave`] for the trial's length, then kills the worker (SIGKILL; a copy needs no
/// crash, the kill only ends the trace).
///
/// # Errors
/// A worker that failed, a save that failed or did not finish, a mode without a save
/// (procedure `safe`), or a copying tool that could not be started.
pub(crate) fn run_procedure(
    trial: &mut Trial<'_>,
    trace: &Path,
) -> Result<(Killed, ProcedureCopies), String> {
    if trial.lab.stalls(trial.fault) {
        return Err(
            "--stall ends a live-copy trial inside a held fsync: it takes no procedure but live and no real copies"
                .into(),
        );
    }
    let plan = trial.plan();
    // Before the worker starts: a mode without a save is refused at once.
    if trial.lab.copy.procedure == Procedure::Safe {
        has_save(trial.setup.persistence)?;
    }
    let mut running = kill9::start(trial, Some(trace), None)?;
    let since_ready = Duration::from_nanos(now_ns().saturating_sub(running.ready_ns));
    let began = Instant::now()
        .checked_sub(since_ready)
        .unwrap_or_else(Instant::now);
    let copies = {
        let mut saver = WorkerSave::new(&mut running, trial.setup.persistence)?;
        backup::during(
            trial.lab,
            &mut saver,
            &trial.data,
            &trial.dir,
            &mut trial.rng,
            began,
            plan.crash_from_secs,
            plan.secs,
        )?
    };
    let notes = vec![format!(
        "killed at the end of the trial, {:.0} ms after the worker was ready",
        began.elapsed().as_secs_f64() * 1e3
    )];
    let killed = running.kill(trial, notes)?;
    Ok((killed, copies))
}
