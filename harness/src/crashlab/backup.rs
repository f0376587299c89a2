//! Backup procedures during a trial (docs/design.md, "Live copies"), of a RESP server on the
//! recording filesystem or of the engine's recorded worker ([`super::worker_save`]): the
//! moments a [`Procedure`] copies at, and real `cp -r`, `tar` and runbook `cp` processes run
//! over the live directory beside the simulated copies (the model's ground truth).
//!
//! Every copy the crash lab judges comes from the trial's I/O trace
//! ([`super::images::copy`]); a procedure only decides *when* copies start:
//!
//! - [`Procedure::Live`]: at the crash lab's cut points (nothing to do during the trial).
//! - [`Procedure::Safe`]: the harness asks the server for its save or rewrite at seeded
//!   moments, learns from the server that it has finished ([`SafeSave`]: `INFO persistence`
//!   over RESP, the worker's ack page for the engine), and the copy starts then. The
//!   next request waits until that copy would have ended, so copies never overlap a requested
//!   rewrite (only what the server starts by itself can).
//! - [`Procedure::StopCopyStart`]: the trial ends with a clean stop (`SHUTDOWN`) instead of a
//!   kill, and the copy starts once the server has exited.
//!
//! With `--real-copies N`, N real copies (alternately `cp -r` and `tar`; for a named-path
//! list, the runbook's `cp` lines, [`copy_paths`]) are taken at the procedure's moments (for
//! `live`, at seeded moments of the trial), of the server's data directory as an operator's
//! script sees it: for a RESP server, through the mount, the same filesystem the server writes
//! through (the backing directory holds the same bytes, but reading it would bypass the daemon
//! the server's own requests queue in); for the engine, the worker's directory itself. Each real copy is judged beside the
//! simulated copy started at the same moment at the real copy's measured rate (its twin).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use durlab_engine::clock::now_ns;

use super::images::copy::{CopiedBy, CopyPlan, CopyProcedure, CopySource, Procedure};
use super::resp_server::Driving;
use super::verdict::Recovered;
use super::{Lab, TrialOutcome, fraction};
use crate::resp::Value;
use crate::scenario::model::Persistence;
use crate::servers::Target;
use crate::workload::rng::SplitMix64;

/// Most real copies one trial may take (each is restored by starting a server).
pub const MAX_REAL_COPIES: u32 = 64;

/// How long a requested save or rewrite may take before the trial fails.
pub(crate) const SAVE_TIMEOUT: Duration = Duration::from_secs(60);

/// A real copy taken during the trial.
#[derive(Debug, Clone)]
pub struct RealCopy {
    pub by: CopiedBy,
    /// The tool as run, for notes: `real cp -r of DIR`, `real tar of DIR`, or `real cp of a, b
    /// from DIR` (named paths), DIR the directory copied (a RESP server's mount point, the
    /// engine's data directory).
    pub tool: String,
    /// The copy, ready to start a server on (a tar archive is extracted here).
    pub dir: PathBuf,
    /// When the copying process was started and when it exited ([`now_ns`]).
    pub start_ns: u64,
    pub end_ns: u64,
    /// Bytes of regular files in the copy.
    pub bytes: u64,
    /// The moment it shares with its simulated twin.
    pub moment: u32,
    /// What the tool said (exit status and stderr) when it did not succeed quietly.
    pub complaint: Option<String>,
}

/// Who made a judged copy and at which moment: attached to each outcome of a procedure's
/// copies, so that a real copy and its twin can be found side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyTag {
    pub by: CopiedBy,
    /// The moment's number within its trial; `None` for copies at cut points.
    pub moment: Option<u32>,
}

/// What a procedure made during one trial: the copies to simulate (in order, each with its
/// tag) and the real copies.
#[derive(Debug, Clone, Default)]
pub struct ProcedureCopies {
    pub plans: Vec<(CopyPlan, CopyTag)>,
    pub real: Vec<RealCopy>,
    pub notes: Vec<String>,
}

impl ProcedureCopies {
    /// The one copy of stop-copy-start: `copy` started once the server stopped at
    /// `stopped_ns`.
    pub fn stopped_at(copy: &CopyProcedure, stopped_ns: u64) -> ProcedureCopies {
        ProcedureCopies {
            plans: vec![(
                copy.plan(stopped_ns),
                CopyTag {
                    by: CopiedBy::Model,
                    moment: Some(0),
                },
            )],
            ..ProcedureCopies::default()
        }
    }

    /// Adds a real copy and its simulated twin (same start, the real copy's rate; the
    /// procedure's rate when the real copy read nothing, so that it has no rate: a twin at
    /// 1 byte/s would take days over a file the real copy never saw).
    fn add_real(&mut self, copy: &CopyProcedure, real: RealCopy) {
        let secs = (real.end_ns.saturating_sub(real.start_ns)).max(1) as f64 / 1e9;
        let rate = if real.bytes == 0 {
            copy.rate_bytes_per_sec
        } else {
            ((real.bytes as f64 / secs) as u64).max(1)
        };
        let twin = CopyPlan {
            rate_bytes_per_sec: rate,
            ..copy.plan(real.start_ns)
        };
        let tag = CopyTag {
            by: CopiedBy::Twin,
            moment: Some(real.moment),
        };
        self.plans.push((twin, tag));
        self.real.push(real);
    }
}

/// The save or rewrite a safe procedure asks `target` in `mode` for, and the `INFO
/// persistence` fields that say it is still running.
///
/// # Errors
/// A mode with nothing to wait for (`durlab serve` in mode `aof` has no rewrite).
pub fn safe_command(
    target: Target,
    mode: Persistence,
) -> Result<(&'static str, &'static [&'static str]), String> {
    const REWRITE: (&str, &[&str]) = (
        "BGREWRITEAOF",
        &["aof_rewrite_in_progress", "aof_rewrite_scheduled"],
    );
    const SAVE: (&str, &[&str]) = (
        "BGSAVE",
        &["rdb_bgsave_in_progress", "aof_rewrite_in_progress"],
    );
    match (target, mode) {
        (_, Persistence::Snapshot) => Ok(SAVE),
        // Redis restarts from the AOF whenever it has one: the rewrite makes it whole.
        (Target::Redis, _) => Ok(REWRITE),
        (_, Persistence::Hybrid) => Ok(REWRITE),
        (_, Persistence::AofSnapshot) => Ok(SAVE),
        (target, mode) => Err(format!(
            "procedure safe: {} in mode {} has no save or rewrite to wait for",
            target.name(),
            mode.name()
        )),
    }
}

/// How the safe procedure asks the running server for its save or rewrite and learns that it
/// has finished, by the server's own word (never a sleep): over RESP ([`RespSave`]:
/// BGSAVE or BGREWRITEAOF, then `INFO persistence`), or through the engine worker's ack page
/// ([`super::worker_save::WorkerSave`]: the engine's own save, published once durable). The
/// procedure itself ([`during`]) is the same for every target.
pub(crate) trait SafeSave {
    /// Asks for one save or rewrite.
    ///
    /// # Errors
    /// The server refused (its message), or cannot be asked (a mode without a save).
    fn ask(&mut self) -> Result<(), String>;

    /// Returns once the save or rewrite asked for last has finished.
    ///
    /// # Errors
    /// It failed (the server's word), the server died, or it still ran after [`SAVE_TIMEOUT`].
    fn wait_done(&mut self) -> Result<(), String>;

    /// What `n` requests were and how their end was learned, for the trial's notes.
    fn describe(&self, n: usize) -> String;
}

/// [`SafeSave`] over RESP: `target`'s command of [`safe_command`] on a connection of its own
/// (opened at the first request), then `INFO persistence` polled until its busy fields are 0.
pub(crate) struct RespSave<'a> {
    driving: &'a Driving,
    command: Result<(&'static str, &'static [&'static str]), String>,
    conn: Option<crate::servers::client::Client>,
}

impl<'a> RespSave<'a> {
    pub(crate) fn new(driving: &'a Driving, target: Target, mode: Persistence) -> RespSave<'a> {
        RespSave {
            driving,
            command: safe_command(target, mode),
            conn: None,
        }
    }

    fn conn(&mut self) -> Result<&mut crate::servers::client::Client, String> {
        if self.conn.is_none() {
            let c = self.driving.server().connect().map_err(|e| e.to_string())?;
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }
}

impl SafeSave for RespSave<'_> {
    fn ask(&mut self) -> Result<(), String> {
        let (command, busy) = self.command.clone()?;
        let c = self.conn()?;
        match c.call(&[command]).map_err(|e| e.to_string())? {
            // One the server started by itself (an automatic rewrite): as an operator
            // would, wait for it and ask again.
            Value::Error(e) if e.contains("in progress") => {
                wait_idle(c, busy)?;
                if let Value::Error(e) = c.call(&[command]).map_err(|e| e.to_string())? {
                    return Err(format!("{command} replied -{e}"));
                }
                Ok(())
            }
            Value::Error(e) => Err(format!("{command} replied -{e}")),
            _ => Ok(()),
        }
    }

    fn wait_done(&mut self) -> Result<(), String> {
        let (_, busy) = self.command.clone()?;
        wait_idle(self.conn()?, busy)
    }

    fn describe(&self, n: usize) -> String {
        match &self.command {
            Ok((command, busy)) => format!(
                "{n} {command}s asked for and waited for (INFO persistence: {} 0)",
                busy.join(" and ")
            ),
            Err(e) => e.clone(),
        }
    }
}

/// Runs the procedure of `lab.copy` on the running server for `trial_secs` (the workload keeps
/// running), asking `saver` for its saves (procedure `safe`) and taking `lab.real_copies` real
/// copies of `mount` (the data directory as a copying tool reads it), into `dir`; returns when
/// the trial's time is up (the caller then kills or stops the server). `began` is when the
/// workload started; moments fall in [`from_secs`, `trial_secs`] after it.
///
/// With `lab.copy_before_save_done` (test only), the safe procedure copies as soon as it has
/// asked, without waiting for the save to finish, to show that a copy across it can fail.
///
/// # Errors
/// A save or rewrite the server refused or that did not finish, or a copying tool that could
/// not be started.
#[allow(clippy::too_many_arguments)]
pub(crate) fn during(
    lab: &Lab,
    saver: &mut dyn SafeSave,
    mount: &Path,
    dir: &Path,
    rng: &mut SplitMix64,
    began: Instant,
    from_secs: f64,
    trial_secs: f64,
) -> Result<ProcedureCopies, String> {
    let mut out = ProcedureCopies::default();
    let until = |secs: f64| {
        let at = began + Duration::from_secs_f64(secs);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
    };
    let moments = |n: usize, rng: &mut SplitMix64| -> Vec<f64> {
        // One seeded moment in each of n equal slices of the window.
        let slice = (trial_secs - from_secs).max(0.0) / n.max(1) as f64;
        (0..n)
            .map(|i| from_secs + slice * (i as f64 + fraction(rng, 0.0, 1.0)))
            .collect()
    };
    match lab.copy.procedure {
        Procedure::Live => {
            for (i, at) in moments(lab.real_copies as usize, rng)
                .into_iter()
                .enumerate()
            {
                until(at);
                let real = real_copy(&lab.copy.source, mount, dir, i as u32)?;
                out.add_real(&lab.copy, real);
            }
        }
        Procedure::Safe => {
            if lab.phase.churns() {
                return Err(format!(
                    "procedure safe asks for its own saves: run it at phase steady, not {}",
                    lab.phase
                ));
            }
            let n = lab.states.max(1);
            let mut done = 0usize;
            for (i, at) in moments(n, rng).into_iter().enumerate() {
                if began.elapsed().as_secs_f64() > trial_secs {
                    break; // the previous copy ran past the trial
                }
                until(at);
                saver.ask()?;
                if !lab.copy_before_save_done {
                    saver.wait_done()?;
                }
                let copy_ns = now_ns();
                done += 1;
                let plan = lab.copy.plan(copy_ns);
                out.plans.push((
                    plan,
                    CopyTag {
                        by: CopiedBy::Model,
                        moment: Some(i as u32),
                    },
                ));
                if (i as u32) < lab.real_copies {
                    let real = real_copy(&lab.copy.source, mount, dir, i as u32)?;
                    out.add_real(&lab.copy, real);
                }
                if lab.copy_before_save_done {
                    // The next request must not find this one still running.
                    saver.wait_done()?;
                }
                // The operator waits for the copy before the next request.
                wait_for_copy(mount, lab.copy.rate_bytes_per_sec, began, trial_secs);
            }
            let mut note = format!(
                "safe procedure: {}, each followed by a copy",
                saver.describe(done)
            );
            if lab.copy_before_save_done {
                note.push_str(
                    " (TEST ONLY --broken-copy-before-save-done: each copy started as soon as the save was asked for, before it finished)",
                );
            }
            out.notes.push(note);
        }
        Procedure::StopCopyStart => {}
    }
    until(trial_secs);
    Ok(out)
}

/// After the server stopped at `stopped_ns` (`how` it was stopped, for the notes): the
/// stopped directory's copy, and `lab.real_copies` real copies of `mount` into `dir`
/// ([`real_copy`]).
///
/// # Errors
/// A copying tool that could not be started.
pub(crate) fn after_stop(
    lab: &Lab,
    mount: &Path,
    dir: &Path,
    stopped_ns: u64,
    how: &str,
) -> Result<ProcedureCopies, String> {
    let mut out = ProcedureCopies::stopped_at(&lab.copy, stopped_ns);
    for i in 0..lab.real_copies {
        let real = real_copy(&lab.copy.source, mount, dir, i)?;
        out.add_real(&lab.copy, real);
    }
    out.notes.push(format!("stop-copy-start: {how}"));
    Ok(out)
}

/// Waits until a copy of `mount` started now at `rate_bytes_per_sec` would have ended, or
/// until `trial_secs` after `began`. A copy reads until it catches up with files that keep
/// growing (the workload goes on), so its length is not the directory's size now over the
/// rate: this follows the directory's size as it grows and waits until bytes read at the
/// rate reach it, then a fifth more. Bytes appended to a file already read count too, so the
/// wait is at least as long as the model's copy (which reads each file once, to its end).
fn wait_for_copy(mount: &Path, rate_bytes_per_sec: u64, began: Instant, trial_secs: f64) {
    let start = Instant::now();
    let end = began + Duration::from_secs_f64(trial_secs);
    loop {
        let read = start.elapsed().as_secs_f64() * rate_bytes_per_sec as f64;
        if read >= tree_bytes(mount) as f64 || Instant::now() >= end {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let slack = start.elapsed().mul_f64(0.2) + Duration::from_millis(5);
    std::thread::sleep(slack.min(end.saturating_duration_since(Instant::now())));
}

/// Polls `INFO persistence` until every field of `busy` is 0 (each poll 2 ms apart).
fn wait_idle(c: &mut crate::servers::client::Client, busy: &[&str]) -> Result<(), String> {
    let deadline = Instant::now() + SAVE_TIMEOUT;
    loop {
        let info = match c
            .call(&["INFO", "persistence"])
            .map_err(|e| e.to_string())?
        {
            Value::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => return Err(format!("INFO persistence replied {other:?}")),
        };
        let fields = crate::resp::info::fields(&info);
        let running = busy
            .iter()
            .any(|b| fields.iter().any(|(k, v)| k == b && *v != "0"));
        if !running {
            for status in ["aof_last_bgrewrite_status", "rdb_last_bgsave_status"] {
                if let Some((_, v)) = fields.iter().find(|(k, _)| *k == status)
                    && *v != "ok"
                {
                    return Err(format!("INFO persistence says {status}:{v}"));
                }
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the save or rewrite was still running after {SAVE_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Copy number `moment` of `mount` into `dir`/real-`moment`, as `source` says. The whole
/// directory: `cp -r` for even numbers, `tar` for odd ones (extracted after it exits; only the
/// copying process is timed). Named paths: the runbook's script, one `cp -r` line per path in
/// order ([`copy_paths`]).
///
/// # Errors
/// A tool that could not be started, or an archive that could not be extracted.
pub fn real_copy(
    source: &CopySource,
    mount: &Path,
    dir: &Path,
    moment: u32,
) -> Result<RealCopy, String> {
    let to = dir.join(format!("real-{moment}"));
    if let CopySource::Paths(paths) = source {
        return copy_paths(paths, mount, &to, moment);
    }
    let by = if moment.is_multiple_of(2) {
        CopiedBy::RealCp
    } else {
        CopiedBy::RealTar
    };
    let archive = dir.join(format!("real-{moment}.tar"));
    let mut cmd = match by {
        CopiedBy::RealTar => {
            let mut c = Command::new("tar");
            c.arg("-cf").arg(&archive).arg("-C").arg(mount).arg(".");
            c
        }
        _ => {
            let mut c = Command::new("cp");
            c.arg("-r").arg(mount).arg(&to);
            c
        }
    };
    let start_ns = now_ns();
    let out = cmd
        .output()
        .map_err(|e| format!("starting {}: {e}", by.describe()))?;
    let end_ns = now_ns();
    let complaint = complaint(by.describe(), &out);
    if by == CopiedBy::RealTar {
        std::fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?;
        let x = Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&to)
            .output()
            .map_err(|e| format!("starting tar -x: {e}"))?;
        if !x.status.success() {
            return Err(format!(
                "extracting {}: {}",
                archive.display(),
                String::from_utf8_lossy(&x.stderr).trim()
            ));
        }
        let _ = std::fs::remove_file(&archive);
    } else if !to.exists() {
        // cp failed before making anything: an empty copy, as a script would be left with.
        std::fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    Ok(RealCopy {
        by,
        tool: format!("{} of {}", by.describe(), mount.display()),
        bytes: tree_bytes(&to),
        dir: to,
        start_ns,
        end_ns,
        moment,
        complaint,
    })
}

/// The runbook's backup script over `mount`, into `to` (made first, as `$BACKUP_DIR`): one
/// `cp -r --parents PATH to/` per path, in order, each run from `mount`, so that a path
/// keeps its place under the copy (`appendonlydir/x` lands in `to/appendonlydir/x`). A path
/// that is missing when its line runs makes that `cp` fail ("No such file or directory"),
/// which is recorded in the copy's complaint, and **the script goes on** with the next line,
/// as a script without `set -e` does (and as one `cp a b dest` with several sources does):
/// the same rule as the simulated copy's missing paths ([`super::images::copy`]). The copy's
/// time runs from the first line's start to the last line's exit.
///
/// # Errors
/// `to` cannot be made, or `cp` cannot be started.
fn copy_paths(paths: &[PathBuf], mount: &Path, to: &Path, moment: u32) -> Result<RealCopy, String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut complaints = Vec::new();
    let start_ns = now_ns();
    for path in paths {
        let out = Command::new("cp")
            .arg("-r")
            .arg("--parents")
            .arg("--")
            .arg(path)
            .arg(to)
            .current_dir(mount)
            .output()
            .map_err(|e| format!("starting cp -r {}: {e}", path.display()))?;
        complaints.extend(complaint(&format!("cp -r {}", path.display()), &out));
    }
    let end_ns = now_ns();
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Ok(RealCopy {
        by: CopiedBy::RealCp,
        tool: format!("real cp of {} from {}", names.join(", "), mount.display()),
        bytes: tree_bytes(to),
        dir: to.to_path_buf(),
        start_ns,
        end_ns,
        moment,
        complaint: (!complaints.is_empty()).then(|| complaints.join("; ")),
    })
}

/// What a copying tool said when it did not succeed quietly: `what (exit status): stderr`.
fn complaint(what: &str, out: &std::process::Output) -> Option<String> {
    (!out.status.success() || !out.stderr.is_empty()).then(|| {
        format!(
            "{what} ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

/// Bytes of the regular files under `dir` (0 where it cannot be read).
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// At most [`MAX_REAL_COPIES`] real copies per trial.
///
/// # Errors
/// Too many.
pub fn check_real_copies(real_copies: u32) -> Result<(), String> {
    if real_copies > MAX_REAL_COPIES {
        return Err(format!(
            "--real-copies {real_copies}: at most {MAX_REAL_COPIES} per trial"
        ));
    }
    Ok(())
}

/// Tags the outcomes of `copies.plans` (judged in that order, when given) and judges every
/// real copy of `copies` after them: `recover` starts the target on a copy's directory
/// (returning the recovery and the seconds it took), `conclude` judges a recovery at a crash
/// time. A real copy's crash time is when its tool exited; a violating one is kept where it
/// is (in the trial's directory).
pub(crate) fn judge_real(
    outcomes: &mut Vec<TrialOutcome>,
    copies: &ProcedureCopies,
    recover: impl Fn(&Path) -> (Recovered, f64),
    conclude: impl Fn(u64, &Recovered, f64) -> TrialOutcome,
) {
    if outcomes.len() == copies.plans.len() {
        for (out, (_, tag)) in outcomes.iter_mut().zip(&copies.plans) {
            out.copied_by = Some(tag.by);
            out.copy_moment = tag.moment;
        }
    }
    for real in &copies.real {
        let (recovered, secs) = recover(&real.dir);
        let mut out = conclude(real.end_ns, &recovered, secs);
        let mut note = format!(
            "{}, moment {}: started at t = {} ns, {} bytes, took {:.1} ms",
            real.tool,
            real.moment,
            real.start_ns,
            real.bytes,
            (real.end_ns - real.start_ns) as f64 / 1e6
        );
        if let Some(c) = &real.complaint {
            note.push_str(&format!("; {c}"));
        }
        out.notes.insert(0, note);
        out.copied_by = Some(real.by);
        out.copy_moment = Some(real.moment);
        if out.violation {
            out.kept_dir = Some(real.dir.display().to_string());
        }
        outcomes.push(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runbook's script copies each named path in order into its place under the copy
    /// (a directory as a tree), records each missing path with `cp`'s own words, and goes on.
    #[test]
    fn named_paths_are_copied_in_place_and_a_missing_one_is_recorded_and_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("live");
        std::fs::create_dir_all(live.join("appendonlydir")).unwrap();
        std::fs::write(live.join("appendonlydir/a.manifest"), b"m").unwrap();
        std::fs::write(live.join("appendonlydir/a.incr.aof"), b"1234").unwrap();
        std::fs::write(live.join("dump.rdb"), b"R").unwrap();
        std::fs::write(live.join("other"), b"not named").unwrap();
        let source: CopySource = "appendonly.aof,appendonlydir,dump.rdb".parse().unwrap();
        let real = real_copy(&source, &live, tmp.path(), 3).unwrap();
        assert_eq!(real.by, CopiedBy::RealCp, "named paths are always cp");
        assert_eq!(real.dir, tmp.path().join("real-3"));
        assert_eq!(real.bytes, 6);
        let read = |p: &str| std::fs::read(real.dir.join(p)).unwrap();
        assert_eq!(read("appendonlydir/a.incr.aof"), b"1234");
        assert_eq!(read("appendonlydir/a.manifest"), b"m");
        assert_eq!(read("dump.rdb"), b"R");
        assert!(!real.dir.join("other").exists(), "only the named paths");
        let complaint = real.complaint.unwrap();
        assert!(
            complaint.starts_with("cp -r appendonly.aof (exit status: 1)")
                && complaint.contains("No such file or directory")
                && !complaint.contains("dump.rdb"),
            "{complaint}"
        );
        assert!(
            real.tool
                .contains("appendonly.aof, appendonlydir, dump.rdb"),
            "{}",
            real.tool
        );

        // Nothing there: an empty copy (the backup directory the script made), two errors.
        let empty = tmp.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let source: CopySource = "appendonly.aof,dump.rdb".parse().unwrap();
        let real = real_copy(&source, &empty, tmp.path(), 4).unwrap();
        assert_eq!(real.bytes, 0);
        assert!(real.dir.is_dir());
        assert_eq!(real.complaint.unwrap().matches("No such file").count(), 2);
    }

    /// A real copy that read nothing has no rate: its twin reads at the procedure's rate.
    #[test]
    fn a_twin_takes_the_real_copys_rate_or_the_procedures_when_it_read_nothing() {
        let copy = CopyProcedure::default();
        let real = |bytes: u64| RealCopy {
            by: CopiedBy::RealCp,
            tool: String::new(),
            dir: PathBuf::new(),
            start_ns: 1_000_000_000,
            end_ns: 1_500_000_000,
            bytes,
            moment: 0,
            complaint: None,
        };
        let mut out = ProcedureCopies::default();
        out.add_real(&copy, real(1000));
        out.add_real(&copy, real(0));
        let rates: Vec<u64> = out
            .plans
            .iter()
            .map(|(p, _)| p.rate_bytes_per_sec)
            .collect();
        assert_eq!(rates, [2000, copy.rate_bytes_per_sec]);
        assert!(
            out.plans
                .iter()
                .all(|(p, t)| p.start_ns == 1_000_000_000 && t.by == CopiedBy::Twin)
        );
    }
}
