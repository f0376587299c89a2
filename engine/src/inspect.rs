//! Read-only inspection of a data directory in any persistence mode (the engine side of
//! `durlab recover DIR --check`), and the one repair it allows: cutting a torn tail
//! (`--fix`), with the cut bytes kept in a quarantine file.
//!
//! Inspection never changes a file. It reuses recovery's own readers and decisions (log scan
//! and tail classification, a blank log's re-initialisation, whether a directory without its
//! primary file may start empty, snapshot verification, manifest parsing), so what it reports
//! is what recovery in strict mode (`durlab serve`'s) would do.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Lsn;
use crate::aof::LOG_FILE_NAME;
use crate::backend::pwrite::PwriteBackend;
use crate::backend::{Backend, OpenMode};
use crate::config::MAX_RECORD_BYTES;
use crate::error::{Error, Result};
use crate::hybrid::manifest::{self, MANIFEST_FILE_NAME, Manifest};
use crate::recovery::{self, Tail, files};
use crate::snapshot::{SNAPSHOT_FILE_NAME, loader};

/// Which layout the directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// No durlab file, or only files that provably hold no key (recovery starts empty and
    /// ignores them: [`DirReport::leftovers`]).
    Empty,
    /// `durlab.aof`, possibly with `durlab.snap` (modes `aof`, `aof+snapshot`).
    Aof,
    /// `durlab.snap` alone (mode `snapshot`).
    Snapshot,
    /// `durlab.manifest` and the files it lists (mode `hybrid`).
    Hybrid,
    /// Data files, but none of the files that say how to load them.
    Unknown,
}

/// How a log's valid records end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// At the end of the file, or followed only by zeros.
    Clean,
    /// Followed by non-zero bytes holding no valid record: an interrupted append. Recovery
    /// cuts the file at `offset`: `bytes` go (to its end, zeros after `data_end` included).
    Torn {
        offset: u64,
        data_end: u64,
        bytes: u64,
        /// Why the record at `offset` is not valid.
        reason: String,
    },
    /// Followed by a valid record further on: damage in the middle.
    Damage {
        offset: u64,
        next_offset: u64,
        next_lsn: Lsn,
    },
    /// The file header does not verify.
    BadHeader { reason: String },
    /// The file is empty or all zeros (`bytes` long): a crash between creating it and syncing
    /// its header. Recovery writes a fresh header to `durlab.aof` (mode `aof`), as no record
    /// can have been acknowledged; a hybrid increment the manifest lists is refused.
    Blank { bytes: u64 },
    /// A record passed its checksum but does not decode.
    Undecodable { offset: u64, reason: String },
}

/// One file and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileInfo {
    Log {
        base_lsn: Lsn,
        records: u64,
        /// LSN of the last valid record (`base_lsn` if none).
        last_lsn: Lsn,
        end: LogEnd,
    },
    Snapshot {
        lsn: Lsn,
        entries: u64,
        created_ms: u64,
    },
    /// A snapshot that does not verify.
    BadSnapshot {
        offset: u64,
        reason: String,
    },
    Manifest {
        generation: u64,
        files: usize,
    },
    BadManifest {
        offset: u64,
        reason: String,
    },
    /// A temp file of an interrupted operation, or a file no manifest lists.
    Leftover,
    /// Bytes a recovery cut from a log.
    Quarantine,
}

/// A file in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub info: FileInfo,
}

/// Something recovery would cut or refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub offset: Option<u64>,
    pub what: String,
    /// True for a torn tail of the log receiving appends: recovery (or
    /// [`fix_torn_tail`]) cuts it, keeping a copy.
    pub repairable: bool,
}

/// What [`inspect_dir`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirReport {
    pub dir: PathBuf,
    pub layout: Layout,
    pub files: Vec<FileReport>,
    pub problems: Vec<Problem>,
    /// The LSN recovery would reach (after cutting a torn tail), if it would succeed.
    pub recoverable_lsn: Option<Lsn>,
    /// Names of the files in the directory that are not durlab's (a Redis data directory's
    /// `appendonlydir` and `dump.rdb`, anything else), sorted: recovery ignores them.
    pub other_files: Vec<String>,
}

impl DirReport {
    /// True when recovery would load everything as it is: no damage, no torn tail, no
    /// missing or broken file. Leftover temp files do not count: recovery ignores them.
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }

    /// True when the directory holds no durlab file at all.
    pub fn has_no_durlab_files(&self) -> bool {
        self.files.is_empty()
    }

    /// Temp files and unlisted files left by interrupted operations.
    pub fn leftovers(&self) -> impl Iterator<Item = &Path> {
        self.files
            .iter()
            .filter(|f| f.info == FileInfo::Leftover)
            .map(|f| f.path.as_path())
    }
}

/// Inspects `dir` without changing anything.
///
/// # Errors
/// Only when the directory itself cannot be read; every problem with a file is in the report.
pub fn inspect_dir(dir: &Path) -> Result<DirReport> {
    let backend = PwriteBackend::new();
    let names = files::durlab_files(dir)?;
    let mut other_files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("readdir", dir, None, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("durlab"))
        .collect();
    other_files.sort();
    let mut report = DirReport {
        dir: dir.to_path_buf(),
        layout: Layout::Empty,
        files: Vec::new(),
        problems: Vec::new(),
        recoverable_lsn: None,
        other_files,
    };
    let has = |n: &str| names.iter().any(|m| m == n);
    let manifest = if has(MANIFEST_FILE_NAME) {
        report.layout = Layout::Hybrid;
        let path = dir.join(MANIFEST_FILE_NAME);
        match manifest::read(&backend, &path) {
            Ok(m) => Some(m),
            Err(e) => {
                report.problem(&path, corrupt_offset(&e), e.to_string(), false);
                None
            }
        }
    } else if has(LOG_FILE_NAME) {
        report.layout = Layout::Aof;
        None
    } else if has(SNAPSHOT_FILE_NAME) {
        report.layout = Layout::Snapshot;
        None
    } else {
        // The engine's own decision: an empty start only if no file may hold a key.
        let primary = format!("{LOG_FILE_NAME} (or {SNAPSHOT_FILE_NAME}, {MANIFEST_FILE_NAME})");
        if let Err(e) = files::fresh_start(&backend, dir, &primary, names.clone()) {
            report.layout = Layout::Unknown;
            report.problem(dir, None, e.to_string(), false);
        }
        None
    };
    let listed: Vec<&str> = manifest.as_ref().map(Manifest::files).unwrap_or_default();
    let appending = match (&manifest, report.layout) {
        (Some(m), _) => m.incrs.last().map(|i| i.name.clone()),
        (None, Layout::Aof) => Some(LOG_FILE_NAME.to_string()),
        _ => None,
    };
    for name in &names {
        let path = dir.join(name);
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        let info = if name == MANIFEST_FILE_NAME {
            match &manifest {
                Some(m) => FileInfo::Manifest {
                    generation: m.generation,
                    files: m.files().len(),
                },
                None => {
                    let (offset, reason) = report
                        .problems
                        .first()
                        .map(|p| (p.offset.unwrap_or(0), p.what.clone()))
                        .unwrap_or_default();
                    FileInfo::BadManifest { offset, reason }
                }
            }
        } else if files::is_quarantine(name) {
            FileInfo::Quarantine
        } else if files::is_temp(name) || (manifest.is_some() && !listed.contains(&name.as_str())) {
            FileInfo::Leftover
        } else if name.ends_with(".aof") {
            inspect_log(&backend, &path)
        } else if name.ends_with(".snap") {
            inspect_snapshot(&backend, &path)
        } else {
            FileInfo::Leftover
        };
        report.note_file_problem(&path, &info, appending.as_deref() == Some(name.as_str()));
        report.files.push(FileReport { path, bytes, info });
    }
    if let Some(m) = &manifest {
        report.check_sequence(m);
    } else if report.layout == Layout::Aof {
        report.recoverable_lsn = report.file(LOG_FILE_NAME).and_then(log_last_lsn);
    } else if report.layout == Layout::Snapshot {
        report.recoverable_lsn = match report.file(SNAPSHOT_FILE_NAME) {
            Some(FileInfo::Snapshot { lsn, .. }) => Some(*lsn),
            _ => None,
        };
    } else if report.layout == Layout::Empty {
        report.recoverable_lsn = Some(0);
    }
    if report.problems.iter().any(|p| !p.repairable) {
        report.recoverable_lsn = None;
    }
    Ok(report)
}

/// A torn tail that [`fix_torn_tail`] cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailFix {
    pub path: PathBuf,
    pub cut_offset: u64,
    /// Bytes removed from the log, all of them in the quarantine copy.
    pub bytes_cut: u64,
    pub quarantine_path: PathBuf,
    /// The log kept its (preallocated) length: zeros were written over the cut data
    /// ([`recovery::Cut::length_kept`]).
    pub length_kept: bool,
    /// The quarantine file is the whole log as it was, and the log was written anew with the
    /// bytes before the cut ([`recovery::Cut::whole_log_kept`]).
    pub whole_log_kept: bool,
    /// Why the record at `cut_offset` was not valid.
    pub reason: String,
}

impl TailFix {
    /// The sentence recovery at startup writes for the same cut.
    pub fn describe(&self) -> String {
        recovery::Cut {
            bytes: self.bytes_cut,
            quarantine_path: self.quarantine_path.clone(),
            length_kept: self.length_kept,
            whole_log_kept: self.whole_log_kept,
        }
        .describe(&self.path, self.cut_offset, &self.reason)
    }
}

/// Cuts the torn tail of the log that receives appends (`durlab.aof`, or the last increment
/// of a hybrid directory), after keeping the cut bytes in a quarantine file
/// ([`recovery::cut`]: a copy of them, or the whole log when they are more than what stays),
/// and nothing else.
/// Returns `None` when there is no torn tail.
///
/// # Errors
/// I/O failures (then nothing was cut unless the copy completed).
pub fn fix_torn_tail(dir: &Path) -> Result<Option<TailFix>> {
    let report = inspect_dir(dir)?;
    let Some(problem) = report.problems.iter().find(|p| p.repairable) else {
        return Ok(None);
    };
    let Some(FileReport {
        info:
            FileInfo::Log {
                end:
                    LogEnd::Torn {
                        offset,
                        data_end,
                        reason,
                        ..
                    },
                ..
            },
        path,
        ..
    }) = report.files.iter().find(|f| f.path == problem.path)
    else {
        return Ok(None);
    };
    let backend = PwriteBackend::new();
    let file = backend
        .open(path, OpenMode::Existing)
        .map_err(|e| Error::io("open", path, None, e))?;
    // Truncated, as without preallocation: this directory's configuration is not known here,
    // and a writer that preallocates extends the log again when it opens it.
    let (done, _) = recovery::cut(&backend, file.as_ref(), path, *offset, *data_end, false)?;
    Ok(Some(TailFix {
        path: path.clone(),
        cut_offset: *offset,
        bytes_cut: done.bytes,
        quarantine_path: done.quarantine_path,
        length_kept: done.length_kept,
        whole_log_kept: done.whole_log_kept,
        reason: reason.clone(),
    }))
}

fn corrupt_offset(e: &Error) -> Option<u64> {
    match e {
        Error::Corrupt { offset, .. } => Some(*offset),
        Error::Io { offset, .. } => *offset,
        _ => None,
    }
}

fn inspect_log(backend: &dyn Backend, path: &Path) -> FileInfo {
    let opened = backend.open(path, OpenMode::Existing);
    let scanned = opened
        .map_err(|e| Error::io("open", path, None, e))
        .and_then(|file| recovery::scan_log(file.as_ref(), path, MAX_RECORD_BYTES, |_| {}));
    let scanned = match scanned {
        Ok(Ok(s)) => s,
        Ok(Err(reason)) => {
            let blank = backend
                .open(path, OpenMode::Existing)
                .map_err(|e| Error::io("open", path, None, e))
                .and_then(|file| recovery::blank_len(file.as_ref(), path));
            return FileInfo::Log {
                base_lsn: 0,
                records: 0,
                last_lsn: 0,
                end: match blank {
                    Ok(Some(bytes)) => LogEnd::Blank { bytes },
                    Ok(None) => LogEnd::BadHeader { reason },
                    Err(e) => LogEnd::BadHeader {
                        reason: format!("{reason} ({e})"),
                    },
                },
            };
        }
        Err(e) => {
            return FileInfo::Log {
                base_lsn: 0,
                records: 0,
                last_lsn: 0,
                end: LogEnd::Undecodable {
                    offset: corrupt_offset(&e).unwrap_or(0),
                    reason: e.to_string(),
                },
            };
        }
    };
    let end = match scanned.tail {
        Tail::Clean => LogEnd::Clean,
        Tail::Torn { data_end } => LogEnd::Torn {
            offset: scanned.end_offset,
            data_end,
            bytes: scanned.file_len - scanned.end_offset,
            reason: scanned.fault.clone(),
        },
        Tail::SyncedLost { synced_lsn, .. } => LogEnd::Damage {
            offset: scanned.end_offset,
            next_offset: scanned.end_offset,
            next_lsn: synced_lsn,
        },
        Tail::Damage {
            next_offset,
            next_lsn,
            ..
        } => LogEnd::Damage {
            offset: scanned.end_offset,
            next_offset,
            next_lsn,
        },
    };
    FileInfo::Log {
        base_lsn: scanned.base_lsn,
        records: scanned.records,
        last_lsn: scanned.last_lsn,
        end,
    }
}

fn inspect_snapshot(backend: &dyn Backend, path: &Path) -> FileInfo {
    match loader::check(backend, path) {
        Ok(l) => FileInfo::Snapshot {
            lsn: l.header.lsn,
            entries: l.entries,
            created_ms: l.header.created_ms,
        },
        Err(e) => FileInfo::BadSnapshot {
            offset: corrupt_offset(&e).unwrap_or(0),
            reason: e.to_string(),
        },
    }
}

fn log_last_lsn(info: &FileInfo) -> Option<Lsn> {
    match info {
        FileInfo::Log { last_lsn, .. } => Some(*last_lsn),
        _ => None,
    }
}

impl DirReport {
    fn problem(&mut self, path: &Path, offset: Option<u64>, what: String, repairable: bool) {
        self.problems.push(Problem {
            path: path.to_path_buf(),
            offset,
            what,
            repairable,
        });
    }

    fn file(&self, name: &str) -> Option<&FileInfo> {
        self.files
            .iter()
            .find(|f| f.path.file_name().is_some_and(|n| n == name))
            .map(|f| &f.info)
    }

    /// Records what recovery would do about `info`; `appending` marks the log whose torn tail
    /// recovery cuts.
    fn note_file_problem(&mut self, path: &Path, info: &FileInfo, appending: bool) {
        match info {
            FileInfo::Log { end, .. } => match end {
                LogEnd::Clean => {}
                LogEnd::Torn {
                    offset,
                    data_end,
                    bytes,
                    reason,
                } => self.problem(
                    path,
                    Some(*offset),
                    format!(
                        "torn tail ({reason}): {bytes} bytes from there to the end of the file, \
                         the last non-zero one at byte {}{}",
                        data_end - 1,
                        if appending {
                            "; recovery cuts them, keeping a copy (--fix does it now)"
                        } else {
                            ", in an increment that is not the last: recovery refuses"
                        }
                    ),
                    appending,
                ),
                // Only `durlab.aof` is re-initialised; a listed increment always had its
                // header synced before the manifest named it.
                LogEnd::Blank { .. } if appending && self.layout == Layout::Aof => {}
                LogEnd::Blank { bytes } => self.problem(
                    path,
                    Some(0),
                    format!("{bytes} bytes, empty or all zeros: no valid header"),
                    false,
                ),
                LogEnd::Damage {
                    offset,
                    next_offset,
                    next_lsn,
                } => self.problem(
                    path,
                    Some(*offset),
                    format!(
                        "damage in the middle: a valid record (LSN {next_lsn}) follows at byte {next_offset}"
                    ),
                    false,
                ),
                LogEnd::BadHeader { reason } => self.problem(path, Some(0), reason.clone(), false),
                LogEnd::Undecodable { offset, reason } => {
                    self.problem(path, Some(*offset), reason.clone(), false)
                }
            },
            FileInfo::BadSnapshot { offset, reason } => {
                self.problem(path, Some(*offset), reason.clone(), false)
            }
            _ => {}
        }
    }

    /// Hybrid: every listed file present, and the LSN sequence continuous across them.
    fn check_sequence(&mut self, m: &Manifest) {
        let mut expected = 0;
        if let Some(base) = &m.base {
            match self.file(&base.name).cloned() {
                None => self.missing(&base.name),
                Some(FileInfo::Snapshot { lsn, .. }) if lsn != base.lsn => {
                    let path = self.dir.join(&base.name);
                    self.problem(
                        &path,
                        Some(16),
                        format!("base holds LSN {lsn} but the manifest says {}", base.lsn),
                        false,
                    );
                }
                _ => {}
            }
            expected = base.lsn;
        }
        for incr in &m.incrs {
            match self.file(&incr.name).cloned() {
                None => self.missing(&incr.name),
                Some(FileInfo::Log {
                    base_lsn, last_lsn, ..
                }) => {
                    if base_lsn != expected || incr.base_lsn != expected {
                        let path = self.dir.join(&incr.name);
                        self.problem(
                            &path,
                            Some(16),
                            format!(
                                "starts after LSN {base_lsn} (manifest: {}) but the files before end at {expected}",
                                incr.base_lsn
                            ),
                            false,
                        );
                    }
                    expected = last_lsn;
                }
                _ => {}
            }
        }
        self.recoverable_lsn = Some(expected);
    }

    fn missing(&mut self, name: &str) {
        let path = self.dir.join(name);
        self.problem(
            &path,
            None,
            format!("listed in {MANIFEST_FILE_NAME} but missing"),
            false,
        );
    }
}

impl fmt::Display for DirReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layout = match self.layout {
            Layout::Empty => "empty",
            Layout::Aof => "aof",
            Layout::Snapshot => "snapshot",
            Layout::Hybrid => "hybrid",
            Layout::Unknown => "unknown",
        };
        writeln!(f, "{} ({layout})", self.dir.display())?;
        for file in &self.files {
            let name = file.path.file_name().unwrap_or_default().to_string_lossy();
            write!(f, "  {name:<32} {:>12} B  ", file.bytes)?;
            match &file.info {
                FileInfo::Log {
                    base_lsn,
                    records,
                    last_lsn,
                    end,
                } => {
                    write!(f, "log: {records} records")?;
                    if *records > 0 {
                        write!(f, ", LSN {}..={last_lsn}", base_lsn + 1)?;
                    }
                    match end {
                        LogEnd::Clean => writeln!(f, ", clean end"),
                        LogEnd::Torn { offset, bytes, .. } => {
                            writeln!(f, ", torn tail at byte {offset} ({bytes} bytes)")
                        }
                        LogEnd::Blank { bytes: 0 } => writeln!(
                            f,
                            ", empty: no header yet (recovery writes one: nothing was ever logged)"
                        ),
                        LogEnd::Blank { .. } => writeln!(
                            f,
                            ", all zeros: no header yet (recovery writes one: nothing was ever logged)"
                        ),
                        LogEnd::Damage { offset, .. } => writeln!(f, ", DAMAGE at byte {offset}"),
                        LogEnd::BadHeader { reason } => writeln!(f, ", BAD HEADER: {reason}"),
                        LogEnd::Undecodable { offset, .. } => {
                            writeln!(f, ", UNDECODABLE record at byte {offset}")
                        }
                    }?;
                }
                FileInfo::Snapshot { lsn, entries, .. } => {
                    writeln!(f, "snapshot: LSN {lsn}, {entries} keys, checksum ok")?
                }
                FileInfo::BadSnapshot { offset, .. } => {
                    writeln!(f, "snapshot: INVALID at byte {offset}")?
                }
                FileInfo::Manifest { generation, files } => {
                    writeln!(f, "manifest: generation {generation}, {files} files")?
                }
                FileInfo::BadManifest { offset, .. } => {
                    writeln!(f, "manifest: INVALID at byte {offset}")?
                }
                FileInfo::Leftover => {
                    writeln!(f, "leftover of an interrupted operation (ignored)")?
                }
                FileInfo::Quarantine => writeln!(f, "quarantine copy of cut bytes")?,
            }
        }
        if self.files.is_empty() {
            writeln!(f, "no durlab files")?;
        } else if self.problems.is_empty() {
            writeln!(f, "healthy")?;
        } else {
            writeln!(f, "problems:")?;
            for p in &self.problems {
                let at = p
                    .offset
                    .map(|o| format!(" at byte {o}"))
                    .unwrap_or_default();
                let fix = if p.repairable { " [repairable]" } else { "" };
                writeln!(f, "  {}{at}: {}{fix}", p.path.display(), p.what)?;
            }
        }
        match self.recoverable_lsn {
            Some(_) if self.layout == Layout::Empty => write!(f, "recovery would start empty"),
            Some(lsn) => write!(f, "recovery would reach LSN {lsn}"),
            None => write!(f, "recovery would refuse to start"),
        }
    }
}
