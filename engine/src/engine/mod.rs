//! [`Engine`]: keyspace + log under one durability policy.

mod batch;
mod expiry;
mod maintenance;
mod open;
mod persist;
mod resume;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::Lsn;
use crate::aof::syncer::{self, StopSignal};
use crate::aof::writer::{Log, LogState, Segment};
use crate::backend::{self, Backend, BackendKind};
use crate::config::{EngineConfig, FsyncPolicy, Persistence, Prealloc};
use crate::error::{Error, Result};
use crate::hybrid::{self, RewriteInfo};
use crate::keyspace::{Command, Keyspace, Reply};
use crate::recovery::{LogPosition, RecoveryReport};
use crate::snapshot::SnapshotInfo;
use crate::stats::Stats;
use persist::{LastSave, Persist, rewrite_locked, save_locked};
pub use resume::ReplayBase;
use resume::{Copies, Replayed};

/// The outcome of one command: its reply and, for write commands, the LSN it was logged under.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub reply: Reply,
    pub lsn: Option<Lsn>,
}

/// What the engine's one mutex guards: apply order, LSN order and log order are one order.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) keyspace: Keyspace,
    pub(crate) last_lsn: Lsn,
    pub(crate) log: LogState,
}

impl AsMut<LogState> for Core {
    fn as_mut(&mut self) -> &mut LogState {
        &mut self.log
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: EngineConfig,
    pub(crate) core: Mutex<Core>,
    /// `None` without a log (mode `snapshot`, or policy `off`).
    pub(crate) log: Option<Log>,
    pub(crate) last_lsn: AtomicU64,
    /// `None` only when nothing touches files (mode `aof` under policy `off`).
    pub(crate) backend: Option<Arc<dyn Backend>>,
    pub(crate) persist: Mutex<Persist>,
    /// Mirrors `Persist::last_save.lsn` for lock-free reads.
    saved_lsn: AtomicU64,
    /// Mode `aof` with a log: what open replayed ([`Engine::replay_base`]).
    replayed: Option<Replayed>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    stop: Arc<StopSignal>,
    threads: Vec<JoinHandle<()>>,
    /// Where the keyspace goes back to when it was lent by a replay base
    /// ([`ReplayBase`]).
    lent_from: Option<Arc<Copies>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.stop();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
        // No thread reads the keyspace any more: the engine's last handle is going.
        if let Some(copies) = &self.lent_from {
            let keyspace = std::mem::take(&mut self.shared.core.lock().keyspace);
            copies.put_back(keyspace);
        }
    }
}

/// A durable keyspace. Cheap to clone; `Send + Sync`: share it across threads. Concurrent
/// writers under `always` share one write and one fdatasync (group commit).
///
/// Every write command (anything but `GET`), including one whose reply is an error such as
/// WRONGTYPE, gets the next LSN and a log record: replay reproduces the same reply and the
/// same (unchanged) state, and LSN n stays the n-th write a driver issued. Only a command whose
/// arguments are malformed in themselves ([`Command::arg_error`]: empty field list, NaN score,
/// XADD id 0-0) is answered with an error reply and no LSN.
///
/// A [`Command::Multi`] (a transaction) that contains a write is one record with one LSN:
/// recovery restores all of it or none of it, never part of it. The record holds only its
/// sub-commands that can change state (well-formed writes); every sub-command still gets its
/// reply in the array.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Shared {
    /// Under the engine's lock: applies a read; gives a write the next LSN, appends its record
    /// to the pending batch and applies it. Does not wait for the acknowledgement.
    ///
    /// # Errors
    /// [`Error::InvalidCommand`] for a record over the size limit: nothing applied, no LSN
    /// used. A write with malformed arguments ([`Command::arg_error`]) is answered with an
    /// error reply and no LSN, like Redis rejects a bad argument list, before it is logged, so
    /// the log holds only decodable commands.
    ///
    /// With `now_ms` (a caller with a clock, such as `durlab serve`), keys `cmd` addresses
    /// that have expired are removed first, in the same record ([`expiry`]).
    fn apply_locked(&self, core: &mut Core, cmd: Command, now_ms: Option<u64>) -> Result<Ack> {
        let (cmd, shown) = match now_ms {
            Some(now_ms) => expiry::remove_expired_first(&core.keyspace, cmd, now_ms),
            None => (cmd, expiry::Shown::All),
        };
        let mut ack = self.apply_locked_now(core, cmd)?;
        ack.reply = shown.reply(ack.reply);
        Ok(ack)
    }

    fn apply_locked_now(&self, core: &mut Core, cmd: Command) -> Result<Ack> {
        if !cmd.is_write() {
            return Ok(Ack {
                reply: core.keyspace.apply(&cmd),
                lsn: None,
            });
        }
        if let Some(err) = cmd.arg_error() {
            return Ok(Ack {
                reply: Reply::Error(err.to_string()),
                lsn: None,
            });
        }
        let lsn = core.last_lsn + 1;
        let reply = match cmd {
            Command::Multi { cmds } => self.log_and_apply_multi(core, lsn, cmds)?,
            cmd => {
                if let Some(log) = &self.log {
                    log.append(&mut core.log, lsn, &cmd)?;
                }
                core.keyspace.apply_owned(cmd)
            }
        };
        core.last_lsn = lsn;
        self.last_lsn.store(lsn, Ordering::Release);
        Ok(Ack {
            reply,
            lsn: Some(lsn),
        })
    }
}

impl Shared {
    /// Under the engine's lock: logs the transaction `cmds` (containing at least one write and
    /// no nested transaction) as one record under `lsn`, then applies every sub-command in
    /// order and returns the array of their replies. The record holds only the sub-commands
    /// that can change state (writes whose arguments are well formed): reads and malformed
    /// writes change nothing, so replaying the record without them gives the same state, and
    /// a malformed write (a NaN score) might not decode. One record, one checksum: recovery
    /// keeps the whole transaction or none of it.
    ///
    /// # Errors
    /// [`Error::InvalidCommand`] if the record exceeds the size limit: nothing applied.
    fn log_and_apply_multi(&self, core: &mut Core, lsn: Lsn, cmds: Vec<Command>) -> Result<Reply> {
        let total = cmds.len();
        let mut logged = Vec::with_capacity(total);
        // Not logged, with their positions in `cmds`, in order.
        let mut unlogged = Vec::new();
        for (i, c) in cmds.into_iter().enumerate() {
            if c.is_write() && c.arg_error().is_none() {
                logged.push(c);
            } else {
                unlogged.push((i, c));
            }
        }
        let record = Command::Multi { cmds: logged };
        if let Some(log) = &self.log {
            log.append(&mut core.log, lsn, &record)?;
        }
        let Command::Multi { cmds: logged } = record else {
            unreachable!("built as a Multi above");
        };
        // Apply in the transaction's order: a read sees exactly the writes queued before it.
        let mut logged = logged.into_iter();
        let mut unlogged = unlogged.into_iter().peekable();
        let mut replies = Vec::with_capacity(total);
        for i in 0..total {
            let reply = match unlogged.next_if(|(at, _)| *at == i) {
                Some((_, c)) => core.keyspace.apply(&c),
                None => core
                    .keyspace
                    .apply_owned(logged.next().expect("every position is logged or not")),
            };
            replies.push(reply);
        }
        Ok(Reply::Array(replies))
    }
}

impl Engine {
    /// Opens the data directory `config.dir` (creating it if missing) in the configured
    /// persistence mode: loads the snapshot or base and replays the log or increments, cuts a
    /// torn tail (keeping a copy), and starts the `everysec` syncer and the background thread
    /// for save points and automatic rewrites if configured. Mode `aof` under policy `off`
    /// touches no files.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file and offset when recovery refuses a log, snapshot or
    /// manifest; [`Error::MissingFile`] for a file the manifest lists but the directory lacks;
    /// [`Error::UringUnavailable`] when io_uring is selected but refused by the kernel;
    /// [`Error::RefusingEmptyStart`] when files that may hold data exist without the file that
    /// would say how to load them; [`Error::Config`] for policy `off` with a mode that keeps a
    /// log, or for backend `mmap` with a log but no preallocation; I/O errors otherwise.
    pub fn open(config: EngineConfig) -> Result<(Engine, RecoveryReport)> {
        Engine::open_from(config, &[])
    }

    /// [`Engine::open`], resuming in mode `aof` from the first of `bases` (in the order
    /// given) whose bytes the log starts with exactly (see [`ReplayBase`]): that base's records
    /// are verified but not replayed again, the rest of the log is recovered as by
    /// [`Engine::open`], and the result is the same. Any other log, and other modes, are
    /// recovered from their start; [`RecoveryReport::resumed_records`] says which happened.
    /// Each base tried costs a read of the log up to its first differing byte.
    ///
    /// # Errors
    /// As [`Engine::open`].
    pub fn open_from(
        config: EngineConfig,
        bases: &[&ReplayBase],
    ) -> Result<(Engine, RecoveryReport)> {
        let started = Instant::now();
        let mut keyspace = Keyspace::new();
        let mut report = RecoveryReport::default();
        let mode = config.persistence;
        let off = config.policy == FsyncPolicy::Off;
        if off && matches!(mode, Persistence::AofSnapshot | Persistence::Hybrid) {
            return Err(Error::Config(format!(
                "persistence {mode} keeps a log: choose policy always, everysec or no"
            )));
        }
        if config.backend == BackendKind::Mmap
            && mode.has_log()
            && !off
            && config.prealloc == Prealloc::None
        {
            return Err(Error::Config(
                "backend mmap stores log records only into preallocated space (a store into a \
                 file hole would fault with SIGBUS on a full disk): choose prealloc fallocate \
                 or zero"
                    .into(),
            ));
        }
        let backend = if mode == Persistence::Aof && off {
            None
        } else {
            Some(match &config.backend_override {
                Some(b) => b.clone(),
                None => backend::open_backend(config.backend)?,
            })
        };
        let mut hybrid_state = None;
        let mut last_save_lsn = 0;
        let mut lent_from = None;
        let opened: Option<(Arc<Segment>, LogPosition)> = match (&backend, mode) {
            (None, _) => None,
            (Some(b), Persistence::Aof | Persistence::AofSnapshot) => {
                let (segment, pos, lent) = open::open_log(
                    b.as_ref(),
                    &config,
                    if mode == Persistence::Aof { bases } else { &[] },
                    &mut keyspace,
                    &mut report,
                )?;
                lent_from = lent;
                Some((segment, pos))
            }
            (Some(b), Persistence::Snapshot) => {
                last_save_lsn =
                    open::open_snapshot(b.as_ref(), &config, &mut keyspace, &mut report)?;
                None
            }
            (Some(b), Persistence::Hybrid) => {
                let o = hybrid::recovery::open(b.as_ref(), &config, &mut keyspace, &mut report)?;
                hybrid_state = Some(o.state);
                Some((o.segment, o.pos))
            }
        };
        let last_lsn = opened.as_ref().map_or(last_save_lsn, |(_, p)| p.last_lsn);
        let replayed = match &opened {
            Some((segment, pos)) if mode == Persistence::Aof => Some(Replayed {
                segment: segment.clone(),
                end_offset: pos.next_offset,
                records: report.records_replayed,
                last_lsn: pos.last_lsn,
            }),
            _ => None,
        };
        report.recovered_lsn = last_lsn;
        let (log, state) = match opened {
            Some((segment, pos)) => {
                let log = Log::new(&config, pos);
                let mut state = LogState::new(segment, pos);
                log.preallocate_initial(&mut state)?;
                (Some(log), state)
            }
            None => (None, LogState::detached(last_lsn)),
        };
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                keyspace,
                last_lsn,
                log: state,
            }),
            log,
            last_lsn: AtomicU64::new(last_lsn),
            backend,
            persist: Mutex::new(Persist {
                last_save: LastSave {
                    lsn: last_save_lsn,
                    at: Instant::now(),
                },
                hybrid: hybrid_state,
            }),
            saved_lsn: AtomicU64::new(last_save_lsn),
            replayed,
            config,
        });
        let stop = Arc::new(StopSignal::default());
        let mut threads = Vec::new();
        if shared.config.policy == FsyncPolicy::EverySec && shared.log.is_some() {
            let (shared, stop) = (shared.clone(), stop.clone());
            let interval = Duration::from_millis(shared.config.everysec_interval_ms.max(1));
            threads.push(spawn(
                "durlab-everysec",
                &shared.config.dir.clone(),
                move || {
                    let log = shared.log.as_ref().expect("everysec has a log");
                    syncer::run(log, &shared.core, &stop, interval);
                },
            )?);
        }
        if maintenance::needed(&shared.config) {
            let (shared, stop) = (shared.clone(), stop.clone());
            threads.push(spawn(
                "durlab-maintenance",
                &shared.config.dir.clone(),
                move || {
                    maintenance::run(&shared, &stop);
                },
            )?);
        }
        report.duration = started.elapsed();
        Ok((
            Engine {
                inner: Arc::new(Inner {
                    shared,
                    stop,
                    threads,
                    lent_from,
                }),
            },
            report,
        ))
    }

    /// Executes `cmd`; returns once it is acknowledged under the configured policy.
    ///
    /// # Errors
    /// See [`Engine::execute_next`].
    pub fn execute(&self, cmd: Command) -> Result<Reply> {
        self.execute_ack(cmd).map(|a| a.reply)
    }

    /// Like [`Engine::execute`], also returning the LSN a write command was logged under.
    ///
    /// # Errors
    /// See [`Engine::execute_next`].
    pub fn execute_ack(&self, cmd: Command) -> Result<Ack> {
        self.execute_next(|_| cmd)
    }

    /// Builds the next command under the engine's lock from the LSN it will receive if it is
    /// a write, so a driver can make the command with LSN n be command n of its sequence.
    /// `make` must be cheap: other writers wait while it runs. Returns when the command is
    /// acknowledged under the policy.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after an earlier write or sync failure; the I/O error of the flush
    /// this call led (then the engine is poisoned too); [`Error::InvalidCommand`] for a command
    /// over the record size limit (not applied, no LSN used). On error the command is not
    /// acknowledged, though it may be in memory and even on disk.
    pub fn execute_next(&self, make: impl FnOnce(Lsn) -> Command) -> Result<Ack> {
        let shared = &*self.inner.shared;
        let mut core = shared.core.lock();
        core.log.check_poisoned()?;
        let cmd = make(core.last_lsn + 1);
        let ack = shared.apply_locked(&mut core, cmd, None)?;
        if let (Some(log), Some(lsn)) = (&shared.log, ack.lsn) {
            log.acknowledge(&shared.core, core, lsn)?;
        }
        Ok(ack)
    }

    /// Highest LSN assigned so far (acknowledged, or about to be).
    pub fn last_lsn(&self) -> Lsn {
        self.inner.shared.last_lsn.load(Ordering::Acquire)
    }

    /// Highest LSN that survives a power loss: covered by a completed fdatasync of the log,
    /// or, in mode `snapshot`, by the last completed snapshot (0 under `off`).
    pub fn durable_lsn(&self) -> Lsn {
        let shared = &self.inner.shared;
        match &shared.log {
            Some(log) => log.durable_lsn(),
            None => shared.saved_lsn.load(Ordering::Acquire),
        }
    }

    /// Highest LSN handed to the OS (0 under `off`).
    pub fn written_lsn(&self) -> Lsn {
        self.inner.shared.log.as_ref().map_or(0, Log::written_lsn)
    }

    /// Makes every acknowledged command durable now (one fdatasync if anything is unsynced),
    /// whatever the policy; returns the durable LSN. A no-op without a log (policy `off`, mode
    /// `snapshot`: use [`Engine::save`] there).
    ///
    /// # Errors
    /// [`Error::Poisoned`], or the fdatasync's error (which poisons the engine).
    pub fn sync(&self) -> Result<Lsn> {
        let shared = &*self.inner.shared;
        match &shared.log {
            Some(log) => log.sync_written(&shared.core),
            None => Ok(self.durable_lsn()),
        }
    }

    /// Counters since open.
    pub fn stats(&self) -> Stats {
        self.inner
            .shared
            .log
            .as_ref()
            .map(|l| l.counters.snapshot())
            .unwrap_or_default()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.shared.config
    }

    /// Runs `f` on the current keyspace under the engine's lock (writers wait: keep it short).
    ///
    /// `f` sees every applied write, including ones whose acknowledgement is still pending
    /// or failed; a server answering clients uses [`Engine::read_acknowledged`].
    pub fn read<R>(&self, f: impl FnOnce(&Keyspace) -> R) -> R {
        f(&self.inner.shared.core.lock().keyspace)
    }

    /// Runs `f` on the current keyspace under the engine's lock, and returns its result only
    /// once every write `f` could see is acknowledged under the policy (it waits for the
    /// flush in flight, or leads one, as a writer would).
    ///
    /// Guarantees: a result is never returned that depends on a write that was not
    /// acknowledged: writes are applied to memory before their log write and sync, and one
    /// whose write or sync fails stays in memory (it is gone only after a restart).
    ///
    /// # Errors
    /// [`Error::Poisoned`] after a write or sync failure (memory may then hold writes that
    /// were never acknowledged), or the I/O error of a flush this call led (which poisons the
    /// engine).
    pub fn read_acknowledged<R>(&self, f: impl FnOnce(&Keyspace) -> R) -> Result<R> {
        let shared = &*self.inner.shared;
        let core = shared.core.lock();
        core.log.check_poisoned()?;
        let result = f(&core.keyspace);
        let seen = core.last_lsn;
        match &shared.log {
            Some(log) => log.acknowledge(&shared.core, core, seen)?,
            None => drop(core),
        }
        Ok(result)
    }
}

impl Engine {
    /// Writes a point-in-time snapshot of the current state while writers go on, and returns
    /// once it is durable (file and directory entry synced). Mode `snapshot` and
    /// `aof+snapshot`: replaces `durlab.snap`. Mode `hybrid`: a rewrite (the snapshot is the
    /// new base). One save or rewrite runs at a time; a second call waits for the first.
    ///
    /// # Errors
    /// [`Error::Config`] in mode `aof`; I/O errors naming the file, or an injected crash point
    /// (feature `failpoints`). A failed save leaves the previous snapshot in force and does
    /// not poison the engine: it wrote nothing that acknowledgements depend on.
    pub fn save(&self) -> Result<SnapshotInfo> {
        let shared = &*self.inner.shared;
        match shared.config.persistence {
            Persistence::Aof => Err(Error::Config(
                "save needs persistence snapshot, aof+snapshot or hybrid".into(),
            )),
            Persistence::Hybrid => self.rewrite().map(|r| r.base),
            Persistence::Snapshot | Persistence::AofSnapshot => {
                let mut persist = shared.persist.lock();
                save_locked(shared, &mut persist)
            }
        }
    }

    /// Mode `hybrid`: the BGREWRITEAOF analogue. Appends switch to a new increment at the
    /// current LSN `s`, a new base holding the state at `s` is written while writers go on,
    /// a manifest listing only the new base and increment is installed atomically, and the
    /// files no longer listed are removed. Returns when the new manifest is durable.
    ///
    /// # Errors
    /// [`Error::Config`] in other modes; I/O errors naming the file, or an injected crash
    /// point. A failure to write or sync the log poisons the engine; any other failure leaves
    /// a consistent directory (the previous manifest, or one listing the new increment after
    /// the old files) and the engine usable.
    pub fn rewrite(&self) -> Result<RewriteInfo> {
        let shared = &*self.inner.shared;
        let mut persist = shared.persist.lock();
        rewrite_locked(shared, &mut persist)
    }

    /// LSN of the last completed snapshot (`save`, save point, or hybrid base) since open, or
    /// the one loaded at open.
    pub fn last_save_lsn(&self) -> Lsn {
        self.inner.shared.saved_lsn.load(Ordering::Acquire)
    }
}

fn spawn(
    name: &str,
    dir: &std::path::Path,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map_err(|e| Error::io("spawn thread for", dir, None, e))
}
