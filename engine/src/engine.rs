//! [`Engine`]: keyspace + log under one durability policy.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::Lsn;
use crate::aof::syncer::{self, StopSignal};
use crate::aof::writer::{Log, LogState};
use crate::aof::{self, LOG_FILE_NAME};
use crate::backend::{self, Backend, OpenMode};
use crate::config::{EngineConfig, FsyncPolicy};
use crate::error::{Error, Result};
use crate::keyspace::{Command, Keyspace, Reply};
use crate::recovery::{self, LogPosition, RecoveryReport};
use crate::stats::Stats;

/// The outcome of one command: its reply and, for write commands, the LSN it was logged under.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub reply: Reply,
    pub lsn: Option<Lsn>,
}

/// What the engine's one mutex guards: apply order, LSN order and log order are one order.
#[derive(Debug)]
pub(crate) struct Core {
    keyspace: Keyspace,
    last_lsn: Lsn,
    log: LogState,
}

impl AsMut<LogState> for Core {
    fn as_mut(&mut self) -> &mut LogState {
        &mut self.log
    }
}

#[derive(Debug)]
struct Shared {
    config: EngineConfig,
    core: Mutex<Core>,
    /// `None` under policy `off`.
    log: Option<Log>,
    last_lsn: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    stop: Arc<StopSignal>,
    syncer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(handle) = self.syncer.take() {
            let _ = handle.join();
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
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Opens the data directory `config.dir` (creating it if missing): replays the log, cuts a
    /// torn tail (keeping a copy), and starts the `everysec` syncer if configured. Policy `off`
    /// touches no files.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file and offset when recovery refuses the log,
    /// [`Error::UringUnavailable`] when io_uring is selected but refused by the kernel,
    /// [`Error::Config`] when data files exist but the log is missing, I/O errors otherwise.
    pub fn open(config: EngineConfig) -> Result<(Engine, RecoveryReport)> {
        let started = Instant::now();
        let mut keyspace = Keyspace::new();
        let mut report = RecoveryReport::default();
        let (log, pos) = if config.policy == FsyncPolicy::Off {
            (
                None,
                LogPosition {
                    next_offset: 0,
                    file_len: 0,
                    last_lsn: 0,
                },
            )
        } else {
            let backend = match &config.backend_override {
                Some(b) => b.clone(),
                None => backend::open_backend(config.backend)?,
            };
            let (log, pos) = open_log(backend.as_ref(), &config, &mut keyspace, &mut report)?;
            (Some(log), pos)
        };
        report.recovered_lsn = pos.last_lsn;
        let mut state = LogState::new(pos);
        if let Some(log) = &log {
            log.preallocate_initial(&mut state)?;
        }
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                keyspace,
                last_lsn: pos.last_lsn,
                log: state,
            }),
            log,
            last_lsn: AtomicU64::new(pos.last_lsn),
            config,
        });
        let stop = Arc::new(StopSignal::default());
        let syncer = if shared.config.policy == FsyncPolicy::EverySec {
            let (shared, stop) = (shared.clone(), stop.clone());
            let dir = shared.config.dir.clone();
            let interval = Duration::from_millis(shared.config.everysec_interval_ms.max(1));
            let spawned = std::thread::Builder::new()
                .name("durlab-everysec".into())
                .spawn(move || {
                    let log = shared.log.as_ref().expect("everysec has a log");
                    syncer::run(log, &shared.core, &stop, interval);
                });
            Some(spawned.map_err(|e| Error::io("spawn everysec thread for", dir, None, e))?)
        } else {
            None
        };
        report.duration = started.elapsed();
        Ok((
            Engine {
                inner: Arc::new(Inner {
                    shared,
                    stop,
                    syncer,
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
        let lsn = core.last_lsn + 1;
        let cmd = make(lsn);
        if !cmd.is_write() {
            return Ok(Ack {
                reply: core.keyspace.apply(&cmd),
                lsn: None,
            });
        }
        if let Some(err) = cmd.arg_error() {
            // Malformed whatever the state (e.g. a NaN score): rejected like Redis rejects a
            // bad argument list, before it is logged, so the log holds only decodable commands.
            return Ok(Ack {
                reply: Reply::Error(err.to_string()),
                lsn: None,
            });
        }
        if let Some(log) = &shared.log {
            log.append(&mut core.log, lsn, &cmd)?;
        }
        let reply = core.keyspace.apply_owned(cmd);
        core.last_lsn = lsn;
        shared.last_lsn.store(lsn, Ordering::Release);
        if let Some(log) = &shared.log {
            log.acknowledge(&mut core, lsn)?;
        }
        Ok(Ack {
            reply,
            lsn: Some(lsn),
        })
    }

    /// Highest LSN assigned so far (acknowledged, or about to be).
    pub fn last_lsn(&self) -> Lsn {
        self.inner.shared.last_lsn.load(Ordering::Acquire)
    }

    /// Highest LSN covered by a completed fdatasync (0 under `off`).
    pub fn durable_lsn(&self) -> Lsn {
        self.inner.shared.log.as_ref().map_or(0, Log::durable_lsn)
    }

    /// Highest LSN handed to the OS (0 under `off`).
    pub fn written_lsn(&self) -> Lsn {
        self.inner.shared.log.as_ref().map_or(0, Log::written_lsn)
    }

    /// Makes every acknowledged command durable now (one fdatasync if anything is unsynced),
    /// whatever the policy; returns the durable LSN. A no-op under `off`.
    ///
    /// # Errors
    /// [`Error::Poisoned`], or the fdatasync's error (which poisons the engine).
    pub fn sync(&self) -> Result<Lsn> {
        let shared = &*self.inner.shared;
        match &shared.log {
            Some(log) => log.sync_written(&shared.core),
            None => Ok(0),
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
    pub fn read<R>(&self, f: impl FnOnce(&Keyspace) -> R) -> R {
        f(&self.inner.shared.core.lock().keyspace)
    }
}

/// Opens and replays the log, or creates it in a directory holding no data files.
fn open_log(
    backend: &dyn Backend,
    config: &EngineConfig,
    keyspace: &mut Keyspace,
    report: &mut RecoveryReport,
) -> Result<(Log, LogPosition)> {
    let dir = &config.dir;
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("mkdir", dir, None, e))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            backend
                .sync_dir(parent)
                .map_err(|e| Error::io("fsync dir", parent, None, e))?;
        }
    }
    let path = dir.join(LOG_FILE_NAME);
    match backend.open(&path, OpenMode::Existing) {
        Ok(file) => {
            let pos = recovery::replay(backend, file.as_ref(), &path, config, keyspace, report)?;
            Ok((Log::new(file, path, config, pos), pos))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            refuse_if_data_files(dir)?;
            let file = aof::create_log(backend, &path, 0)?;
            report.created = true;
            let end = aof::FIRST_RECORD_OFFSET;
            let pos = LogPosition {
                next_offset: end,
                file_len: end,
                last_lsn: 0,
            };
            Ok((Log::new(file, path, config, pos), pos))
        }
        Err(e) => Err(Error::io("open", &path, None, e)),
    }
}

/// Never start empty when data files exist: a missing log next to other durlab files means
/// something removed it, and an empty start would silently drop their data.
fn refuse_if_data_files(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("readdir", dir, None, e))?;
    let mut found: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("durlab"))
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    Err(Error::Config(format!(
        "refusing to start empty: {} is missing from {} but data files exist ({})",
        LOG_FILE_NAME,
        dir.display(),
        found.join(", ")
    )))
}
