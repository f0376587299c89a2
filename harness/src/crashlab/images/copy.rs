//! Live copies: what a backup made by copying a data directory while the server runs holds,
//! built from the same I/O trace as crash images.
//!
//! A crash image asks what the *disk* held; a live copy asks what a *reader* saw. A copying
//! tool reads through the page cache, so it sees every write that had returned, synced or
//! not, but it reads one file after another while the server keeps writing, renaming and
//! deleting. The rules, each a fact about `cp -r`, `tar` and a list of `cp` lines:
//!
//! - **Order.** A [`CopySource::Tree`] copy lists the root when it starts and copies its
//!   entries one by one, a directory's entries listed when the copy reaches that directory.
//!   Names are taken in byte order (the model's choice of readdir order: ext4 lists in hash
//!   order, which a trace does not record). A [`CopySource::Paths`] copy takes the named
//!   paths in the given order, each a file or a directory copied as a tree.
//! - **Missing names.** A name that does not exist when the copy reaches it is not copied and
//!   is recorded in [`LiveCopy::missing`], as `cp` prints "No such file or directory" and a
//!   script without `set -e` goes on.
//! - **Open files follow their inode.** A file is opened when the copy reaches it; a rename
//!   or unlink after that does not change what is read, as with an open descriptor.
//! - **Reads take time.** A file is read in chunks of [`CopyPlan::chunk_bytes`]; reading `n`
//!   bytes takes `n / rate` seconds, so later chunks and later files see later content. Each
//!   chunk holds the live bytes at the moment it is read, and a file's copy ends at the first
//!   read that starts at or past the file's size at that moment (EOF), so a file growing
//!   while it is read is copied up to where the copy caught it.
//! - **What a trace entry means in time.** Entry `k` happened at its timestamp `t_ns[k]`: a
//!   read at time `t` sees every entry with `t_ns <= t`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::content::Content;
use super::materialize;
use super::model::Model;
use super::ops::{Ino, MOp};
use super::state::CrashState;

/// What a copy reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CopySource {
    /// The whole data directory, recursively (`cp -r`, `tar`).
    #[default]
    Tree,
    /// These paths (relative to the data directory), in order; a directory is copied as a
    /// tree.
    Paths(Vec<PathBuf>),
}

/// When copies are taken and what the server is doing meanwhile (docs/design.md, "Live
/// copies").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Procedure {
    /// Copy while the server runs, at any moment (the crash lab's spread cut points).
    #[default]
    Live,
    /// The server's own safe procedure: ask for its save or rewrite (Redis: BGREWRITEAOF, or
    /// BGSAVE without an AOF; `durlab serve` the same in its modes, waiting on `INFO
    /// persistence`; the crash lab's engine worker through its ack page, which the worker
    /// marks served once `Engine::save` has returned), wait until it has finished, then copy
    /// while the server keeps running.
    Safe,
    /// Stop the server cleanly (`SHUTDOWN`), copy, start it again: the copy reads an idle
    /// directory.
    StopCopyStart,
}

impl Procedure {
    pub const ALL: [Procedure; 3] = [Procedure::Live, Procedure::Safe, Procedure::StopCopyStart];

    /// `live`, `safe`, `stop-copy-start`: the name on the command line and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Procedure::Live => "live",
            Procedure::Safe => "safe",
            Procedure::StopCopyStart => "stop-copy-start",
        }
    }
}

impl std::fmt::Display for Procedure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Serialized by name, as on the command line.
impl serde::Serialize for Procedure {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

impl std::str::FromStr for Procedure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Procedure::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!("unknown copy procedure '{s}': expected live, safe or stop-copy-start")
            })
    }
}

/// Who made a copy that was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopiedBy {
    /// This module, from the trial's I/O trace, at a procedure's moment or a cut point.
    Model,
    /// This module, at a real copy's start and measured rate: the real copy's twin.
    Twin,
    /// A real `cp -r` process run over the live directory during the trial.
    RealCp,
    /// A real `tar` process run over the live directory during the trial.
    RealTar,
}

impl CopiedBy {
    /// `simulated`, `real cp -r`, `real tar`: as reports name them.
    pub fn describe(self) -> &'static str {
        match self {
            CopiedBy::Model => "simulated",
            CopiedBy::Twin => "simulated twin",
            CopiedBy::RealCp => "real cp -r",
            CopiedBy::RealTar => "real tar",
        }
    }
}

/// One copy to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    pub source: CopySource,
    /// When the copy starts, on the trace's clock ([`durlab_engine::clock::now_ns`]).
    pub start_ns: u64,
    /// Read throughput of the copying tool; at least 1.
    pub rate_bytes_per_sec: u64,
    /// Bytes per read call (`cp` reads 128 KiB at a time); at least 1.
    pub chunk_bytes: u64,
}

/// How copies of a fault are made, whatever their start: a [`CopyPlan`] without its time,
/// and the [`Procedure`] that decides the starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyProcedure {
    pub procedure: Procedure,
    pub source: CopySource,
    pub rate_bytes_per_sec: u64,
    pub chunk_bytes: u64,
}

/// The default copy rate: 100 MiB/s, a copy onto a backup disk or over a gigabit link.
pub const DEFAULT_RATE_BYTES_PER_SEC: u64 = 100 << 20;

impl Default for CopyProcedure {
    /// `cp -r` of the whole directory at [`DEFAULT_RATE_BYTES_PER_SEC`] in
    /// [`DEFAULT_CHUNK_BYTES`] reads.
    fn default() -> Self {
        CopyProcedure {
            procedure: Procedure::Live,
            source: CopySource::Tree,
            rate_bytes_per_sec: DEFAULT_RATE_BYTES_PER_SEC,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }
}

impl CopyProcedure {
    /// This procedure started at `start_ns`.
    pub fn plan(&self, start_ns: u64) -> CopyPlan {
        CopyPlan {
            source: self.source.clone(),
            start_ns,
            rate_bytes_per_sec: self.rate_bytes_per_sec,
            chunk_bytes: self.chunk_bytes,
        }
    }
}

impl std::fmt::Display for CopyProcedure {
    /// `cp -r of the directory at 100 MiB/s`, or `cp of a, b at ...`; prefixed with
    /// `safe procedure, then ` or `stop-copy-start: ` for those procedures.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.procedure {
            Procedure::Live => {}
            Procedure::Safe => f.write_str("save or rewrite and wait, then ")?,
            Procedure::StopCopyStart => f.write_str("stop, then ")?,
        }
        match &self.source {
            CopySource::Tree => f.write_str("cp -r of the directory")?,
            CopySource::Paths(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "cp of {}", names.join(", "))?
            }
        }
        // Whole MiB/s as given (`100`); a measured rate to a tenth (`325.5`).
        let mib = self.rate_bytes_per_sec as f64 / f64::from(1u32 << 20);
        if mib.fract() == 0.0 {
            write!(f, " at {mib:.0} MiB/s")
        } else {
            write!(f, " at {mib:.1} MiB/s")
        }
    }
}

impl std::fmt::Display for CopySource {
    /// As parsed: `tree` or the comma-separated paths.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopySource::Tree => f.write_str("tree"),
            CopySource::Paths(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

/// Serialized as parsed (`tree`, or the comma-separated paths).
impl serde::Serialize for CopySource {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

impl std::str::FromStr for CopySource {
    type Err = String;
    /// `tree`, or a comma-separated list of paths relative to the data directory.
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "tree" {
            return Ok(CopySource::Tree);
        }
        let paths: Vec<PathBuf> = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        if paths.is_empty() {
            return Err(format!(
                "copy source '{s}': expected `tree` or a comma-separated list of paths"
            ));
        }
        if let Some(bad) = paths.iter().find(|p| {
            p.is_absolute()
                || p.components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
        }) {
            return Err(format!(
                "copy source path '{}' must be relative to the data directory and stay inside it",
                bad.display()
            ));
        }
        Ok(CopySource::Paths(paths))
    }
}

/// `cp`'s read size on Linux (coreutils uses at least 128 KiB buffers).
pub const DEFAULT_CHUNK_BYTES: u64 = 128 * 1024;

/// One file as the copy read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRead {
    pub path: PathBuf,
    /// When the copy opened it.
    pub open_ns: u64,
    /// When the read that found EOF happened.
    pub end_ns: u64,
    pub bytes: u64,
}

/// A simulated copy: the files and directories it holds, and when it ended.
#[derive(Debug)]
pub struct LiveCopy {
    pub(crate) state: CrashState<'static>,
    /// Paths the copy was asked for (or listed) that did not exist when it reached them.
    pub missing: Vec<PathBuf>,
    /// Every file copied, in copy order.
    pub reads: Vec<FileRead>,
    /// When the copy started and ended (trace clock).
    pub start_ns: u64,
    pub end_ns: u64,
}

impl LiveCopy {
    /// Equal keys: byte-identical copies (see the crash images' key).
    pub fn key(&self) -> u128 {
        materialize::key(&self.state)
    }
}

/// The live namespace and page-cache content after the first `applied` trace entries.
struct Live<'m> {
    model: &'m Model,
    applied: usize,
    files: Vec<Content>,
    names: BTreeMap<PathBuf, Ino>,
    /// Directories made during the trace and not removed (pre-existing ones are implied by
    /// the names below them).
    dirs: BTreeSet<PathBuf>,
}

impl<'m> Live<'m> {
    fn new(model: &'m Model) -> Self {
        Live {
            model,
            applied: 0,
            files: vec![Content::default(); model.inodes],
            names: BTreeMap::new(),
            dirs: BTreeSet::new(),
        }
    }

    /// Applies every entry that happened at or before `t_ns`.
    fn advance(&mut self, t_ns: u64) {
        while self.applied < self.model.len() && self.model.t_ns[self.applied] <= t_ns {
            self.apply(&self.model.ops[self.applied]);
            self.applied += 1;
        }
    }

    fn apply(&mut self, op: &'m MOp) {
        match op {
            MOp::Nop | MOp::SyncData { .. } | MOp::SyncDir { .. } => {}
            MOp::Base { ino, path, len } => {
                self.names.insert(path.clone(), *ino);
                self.files[*ino].allocate(0, *len);
            }
            MOp::BaseData { ino, offset, data } | MOp::Write { ino, offset, data } => {
                self.files[*ino].write_segments(*offset, data)
            }
            MOp::Create { ino, path, .. } | MOp::Link { ino, path, .. } => {
                self.names.insert(path.clone(), *ino);
            }
            MOp::SetLen { ino, len } => self.files[*ino].set_len(*len),
            MOp::Allocate { ino, offset, len } => self.files[*ino].allocate(*offset, *len),
            MOp::Rename { from, to, .. } => {
                if let Some(ino) = self.names.remove(from) {
                    self.names.insert(to.clone(), ino);
                }
            }
            MOp::Remove { path, .. } => {
                self.names.remove(path);
            }
            MOp::MkDir { path, .. } => {
                self.dirs.insert(path.clone());
            }
            MOp::RemoveDir { path, .. } => {
                self.dirs.remove(path);
            }
        }
    }

    /// Whether `path` is a directory now: made during the trace, or holding a name.
    fn is_dir(&self, path: &Path) -> bool {
        path.as_os_str().is_empty()
            || self.dirs.contains(path)
            || self.names.keys().any(|n| n.starts_with(path) && n != path)
    }

    /// The entries of directory `dir` now (full relative paths, byte order), each with
    /// whether it is a directory.
    fn list(&self, dir: &Path) -> Vec<(PathBuf, bool)> {
        let mut out: BTreeMap<PathBuf, bool> = BTreeMap::new();
        let below = self.names.keys().chain(self.dirs.iter());
        for path in below {
            let Ok(rest) = path.strip_prefix(dir) else {
                continue;
            };
            let mut parts = rest.components();
            let Some(first) = parts.next() else {
                continue; // `dir` itself
            };
            let child = dir.join(first);
            let deeper = parts.next().is_some() || self.dirs.contains(&child);
            *out.entry(child).or_insert(false) |= deeper;
        }
        out.into_iter().collect()
    }
}

/// Builds the copy `plan` describes from `model`.
pub(crate) fn live_copy(model: &Model, plan: &CopyPlan) -> LiveCopy {
    assert!(
        plan.rate_bytes_per_sec >= 1 && plan.chunk_bytes >= 1,
        "{plan:?}"
    );
    let mut run = CopyRun {
        live: Live::new(model),
        plan,
        t_ns: plan.start_ns,
        out: CrashState {
            files: Vec::new(),
            names: BTreeMap::new(),
            dirs: Vec::new(),
            pending: Vec::new(),
            durable_ops: 0,
            prefix: Vec::new(),
            source: None,
        },
        missing: Vec::new(),
        reads: Vec::new(),
    };
    match &plan.source {
        CopySource::Tree => run.copy_dir(Path::new("")),
        CopySource::Paths(paths) => {
            for path in paths {
                run.copy_path(path);
            }
        }
    }
    LiveCopy {
        state: run.out,
        missing: run.missing,
        reads: run.reads,
        start_ns: plan.start_ns,
        end_ns: run.t_ns,
    }
}

/// A copy in progress: the clock moves as bytes are read.
struct CopyRun<'m, 'p> {
    live: Live<'m>,
    plan: &'p CopyPlan,
    t_ns: u64,
    out: CrashState<'static>,
    missing: Vec<PathBuf>,
    reads: Vec<FileRead>,
}

impl CopyRun<'_, '_> {
    fn copy_path(&mut self, path: &Path) {
        self.live.advance(self.t_ns);
        if self.live.names.contains_key(path) {
            self.copy_file(path);
        } else if self.live.is_dir(path) {
            self.copy_dir(path);
        } else {
            self.missing.push(path.to_path_buf());
        }
    }

    /// Lists `dir` now and copies each entry in turn (each re-checked when reached).
    fn copy_dir(&mut self, dir: &Path) {
        self.live.advance(self.t_ns);
        if !dir.as_os_str().is_empty() {
            self.out.dirs.push(dir.to_path_buf());
        }
        for (path, is_dir) in self.live.list(dir) {
            self.live.advance(self.t_ns);
            if is_dir {
                if self.live.is_dir(&path) {
                    self.copy_dir(&path);
                } else {
                    self.missing.push(path);
                }
            } else if self.live.names.contains_key(&path) {
                self.copy_file(&path);
            } else {
                self.missing.push(path);
            }
        }
    }

    /// Opens `path` (which exists now) and reads it to EOF, chunk by chunk.
    fn copy_file(&mut self, path: &Path) {
        let ino = self.live.names[path];
        let open_ns = self.t_ns;
        let mut copy = Content::default();
        let mut at = 0u64;
        loop {
            self.live.advance(self.t_ns);
            let src = &self.live.files[ino];
            if at >= src.size() {
                break;
            }
            let n = (src.size() - at).min(self.plan.chunk_bytes);
            copy.copy_range(src, at, at + n);
            at += n;
            let ns = u128::from(n) * 1_000_000_000 / u128::from(self.plan.rate_bytes_per_sec);
            self.t_ns = self.t_ns.saturating_add(ns.max(1) as u64);
        }
        copy.set_len(at);
        self.reads.push(FileRead {
            path: path.to_path_buf(),
            open_ns,
            end_ns: self.t_ns,
            bytes: at,
        });
        self.out
            .names
            .insert(path.to_path_buf(), self.out.files.len());
        self.out.files.push(copy);
    }
}

#[cfg(test)]
mod tests {
    use durlab_engine::backend::recording::{Entry, Op, Segment, Trace};

    use super::*;

    const ROOT: &str = "/r";

    fn p(name: &str) -> PathBuf {
        Path::new(ROOT).join(name)
    }

    /// Entry `i` happens at 1000 × (i + 1) ns.
    fn model(ops: Vec<Op>) -> Model {
        let t = Trace {
            start_ns: 0,
            entries: ops
                .into_iter()
                .enumerate()
                .map(|(i, op)| Entry {
                    seq: i as u64,
                    t_ns: 1000 * (i as u64 + 1),
                    op,
                })
                .collect(),
            torn_tail: None,
        };
        Model::build(t, Path::new(ROOT), Path::new("t")).unwrap()
    }

    fn write(file: u32, offset: u64, bytes: &[u8]) -> Op {
        Op::Write {
            file,
            offset,
            data: vec![Segment::Bytes(bytes.to_vec())],
        }
    }

    fn create(file: u32, name: &str) -> Op {
        Op::Create {
            file,
            path: p(name),
        }
    }

    /// The copy's files by name, as bytes.
    fn files(c: &LiveCopy) -> BTreeMap<String, Vec<u8>> {
        c.state
            .names
            .iter()
            .map(|(n, &i)| (n.display().to_string(), c.state.files[i].to_vec()))
            .collect()
    }

    /// 1 byte per µs: a read of n bytes takes n µs.
    fn plan(source: CopySource, start_ns: u64, chunk_bytes: u64) -> CopyPlan {
        CopyPlan {
            source,
            start_ns,
            rate_bytes_per_sec: 1_000_000,
            chunk_bytes,
        }
    }

    #[test]
    fn a_copy_sees_unsynced_writes_that_happened_before_each_read() {
        // a: 4 bytes at 1 µs, 4 more at 3 µs (never synced).
        let m = model(vec![
            create(0, "a"),
            write(0, 0, b"AAAA"),
            write(0, 4, b"BBBB"),
        ]);
        // Starting at 2.5 µs with 1-byte chunks: each byte takes 1 µs, so the read of byte 4
        // happens at 6.5 µs, after the second write (at 3 µs): the copy holds all 8 bytes.
        let c = live_copy(&m, &plan(CopySource::Tree, 2500, 1));
        assert_eq!(files(&c)["a"], b"AAAABBBB");
        assert_eq!(c.end_ns, 2500 + 8 * 1000);
        // One read at 2.5 µs gets 4 bytes; the next read (at 6.5 µs) finds the file grown,
        // as `cp` reads until a read returns nothing.
        let c = live_copy(&m, &plan(CopySource::Tree, 2500, 1024));
        assert_eq!(files(&c)["a"], b"AAAABBBB");
        // A copy fast enough to finish before the second write holds only the first.
        let fast = CopyPlan {
            rate_bytes_per_sec: 1_000_000_000,
            ..plan(CopySource::Tree, 2500, 1024)
        };
        let c = live_copy(&m, &fast);
        assert_eq!(files(&c)["a"], b"AAAA");
        assert_eq!((c.reads[0].bytes, c.end_ns), (4, 2504));
    }

    #[test]
    fn files_are_read_in_name_order_at_later_times() {
        // b is created first but copied second; it grows between the two reads.
        let m = model(vec![
            create(0, "b"),
            write(0, 0, b"1"),
            create(1, "a"),
            write(1, 0, &[7u8; 10]),
            write(0, 1, b"2"),
        ]);
        // At 4 µs: a holds 10 bytes, b "1". Reading a (10 µs with 1 MB/s) moves to 14 µs,
        // past b's second write at 5 µs.
        let c = live_copy(&m, &plan(CopySource::Tree, 4000, 1 << 20));
        assert_eq!(
            c.reads.iter().map(|r| r.path.clone()).collect::<Vec<_>>(),
            [PathBuf::from("a"), PathBuf::from("b")]
        );
        assert_eq!(files(&c)["b"], b"12");
        assert_eq!(c.reads[1].open_ns, 14_000);
    }

    #[test]
    fn a_named_path_that_does_not_exist_is_missing_and_the_copy_goes_on() {
        let m = model(vec![create(0, "dump.rdb"), write(0, 0, b"R")]);
        let c = live_copy(
            &m,
            &plan(
                CopySource::Paths(vec!["appendonly.aof".into(), "dump.rdb".into()]),
                10_000,
                64,
            ),
        );
        assert_eq!(c.missing, [PathBuf::from("appendonly.aof")]);
        assert_eq!(files(&c).keys().collect::<Vec<_>>(), ["dump.rdb"]);
    }

    /// A rewrite across the copy: the directory listing names the old increment, which is
    /// renamed away before the copy reaches it, while the manifest is read after it names the
    /// new files: the copy holds a manifest naming a file it does not have.
    #[test]
    fn a_copy_across_a_rewrite_holds_a_manifest_naming_files_it_lacks() {
        let m = model(vec![
            Op::MkDir { path: p("d") },
            create(0, "d/inc.1"),
            write(0, 0, &[1u8; 100]),
            create(1, "d/manifest"),
            write(1, 0, b"inc.1"),
            // 6 µs on: the rewrite.
            create(2, "d/inc.2"),
            write(2, 0, &[2u8; 10]),
            create(3, "d/manifest.tmp"),
            write(3, 0, b"inc.2"),
            Op::Rename {
                from: p("d/manifest.tmp"),
                to: p("d/manifest"),
            },
            Op::Remove { path: p("d/inc.1") },
        ]);
        // Start at 5.5 µs: the listing holds inc.1 and manifest (inc.2 does not exist yet).
        // Reading inc.1 (100 bytes, 100 µs) ends past every entry; the manifest is then the
        // new one, naming inc.2, which the listing did not hold.
        let c = live_copy(&m, &plan(CopySource::Tree, 5500, 1 << 20));
        let f = files(&c);
        assert_eq!(f.keys().collect::<Vec<_>>(), ["d/inc.1", "d/manifest"]);
        assert_eq!(f["d/manifest"], b"inc.2");
        assert_eq!(f["d/inc.1"], [1u8; 100]);
        assert!(c.state.dirs.contains(&PathBuf::from("d")));
        // Started after the rewrite, the copy is consistent.
        let c = live_copy(&m, &plan(CopySource::Tree, 11_500, 1 << 20));
        let f = files(&c);
        assert_eq!(f.keys().collect::<Vec<_>>(), ["d/inc.2", "d/manifest"]);
        assert_eq!(f["d/manifest"], b"inc.2");
    }

    #[test]
    fn an_open_file_follows_its_inode_and_a_listed_file_removed_before_its_turn_is_missing() {
        let m = model(vec![
            create(0, "a"),
            write(0, 0, &[1u8; 50]),
            create(1, "b"),
            write(1, 0, b"bb"),
            // 5 µs: a is renamed while being read, b is removed before its turn.
            Op::Rename {
                from: p("a"),
                to: p("z"),
            },
            Op::Remove { path: p("b") },
            write(0, 50, &[2u8; 5]),
        ]);
        // At 4.5 µs: list a, b. Reading a in 10-byte chunks: reads at 4.5, 14.5, ... µs; the
        // append at 7 µs is seen (a's inode, now named z).
        let c = live_copy(&m, &plan(CopySource::Tree, 4500, 10));
        let f = files(&c);
        assert_eq!(f["a"].len(), 55);
        assert_eq!(c.missing, [PathBuf::from("b")]);
        assert!(!f.contains_key("z"), "z was not in the listing");
    }

    /// A procedure's copies replace the cut points: one image per plan, in the given order
    /// (duplicates kept: a real copy's twin may share its start), each after the entries
    /// that had happened at its start, and each built at its own rate.
    #[test]
    fn explicit_copies_are_built_in_order_at_their_own_starts_and_rates() {
        use super::super::{ImageOptions, Variant, crash_images_from};
        let trace = Trace {
            start_ns: 0,
            entries: [create(0, "a"), write(0, 0, b"AAAA"), write(0, 4, b"BBBB")]
                .into_iter()
                .enumerate()
                .map(|(i, op)| Entry {
                    seq: i as u64,
                    t_ns: 1000 * (i as u64 + 1),
                    op,
                })
                .collect(),
            torn_tail: None,
        };
        let mut opts = ImageOptions::new(Variant::LiveCopy);
        let slow = plan(CopySource::Tree, 2500, 1);
        let fast = CopyPlan {
            rate_bytes_per_sec: 1_000_000_000,
            ..slow.clone()
        };
        opts.copies = vec![plan(CopySource::Tree, 3500, 64), slow, fast];
        let out = tempfile::tempdir().unwrap();
        let images =
            crash_images_from(trace, Path::new("t"), Path::new(ROOT), &opts, out.path()).unwrap();
        assert_eq!(images.cut_ops(), [3, 2, 2]);
        let ends: Vec<u64> = (0..3).map(|i| images.prepare(i).image().cut_ns).collect();
        // 8 bytes at 1 byte/µs from 3.5 µs; 1-byte reads from 2.5 µs see the second write;
        // 1 GB/s from 2.5 µs reads 4 bytes in 4 ns.
        assert_eq!(ends, [11_500, 10_500, 2504]);
        assert!(
            images
                .prepare(2)
                .image()
                .description
                .contains("953.7 MiB/s")
        );
    }

    #[test]
    fn procedures_parse_by_name() {
        for p in Procedure::ALL {
            assert_eq!(p.name().parse::<Procedure>(), Ok(p));
        }
        let err = "nightly".parse::<Procedure>().unwrap_err();
        assert!(err.contains("live, safe or stop-copy-start"), "{err}");
    }
}
