//! The trace as the image builder sees it: file ids resolved to inodes ([`super::ops`]), paths
//! made relative to the data directory, and for a cut at op k the durable state and the
//! unsynced operations ([`super::state`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use durlab_engine::backend::recording::{MAX_FILES, Op, Trace};

use super::content::Content;
use super::direntry::{self, Syncs};
use super::history::{self, History};
use super::ops::{DirId, Ino, MOp};
use super::state::{CrashState, Pending, PendingOp, Source};
use super::{DirModel, ImageError, ImageOptions};

/// ext4's default journal commit interval (`commit=5`): with `writeback`, the
/// [`DirModel::Ext4Ordered`] model treats metadata older than this as committed.
pub(crate) const EXT4_COMMIT_INTERVAL_NS: u64 = 5_000_000_000;

/// A resolved trace.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) ops: Vec<MOp>,
    pub(crate) t_ns: Vec<u64>,
    pub(crate) start_ns: u64,
    pub(crate) inodes: usize,
    pub(crate) dirs: usize,
    /// Each inode's content operations and snapshots of their results.
    pub(crate) history: History,
    /// Trace indices of the syncs ([`MOp::is_sync`]), in order.
    sync_seqs: Vec<usize>,
    /// Trace indices of the operations that name files ([`MOp::names_a_file`]), in order.
    namespace_seqs: Vec<usize>,
}

/// What [`Model::crash_state`] builds the files of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// Every byte, each file from the snapshots of its history ([`super::history`]).
    Bytes,
    /// Only the files' sizes (ordering images by size).
    SizesOnly,
    /// Every byte, every operation applied again from an empty file: the plain path the
    /// snapshots must agree with ([`super::CrashImages::build_plain`]).
    Plain,
}

impl Model {
    /// Resolves `trace` (read from `trace_name`), whose paths must lie under `root`
    /// (directory syncs elsewhere are ignored).
    ///
    /// # Errors
    /// [`ImageError::Trace`] naming the entry for a file operation outside `root`, a file id
    /// used before it was opened, an open or rename of a path the trace never saw, or more
    /// than [`MAX_FILES`] files.
    pub(crate) fn build(trace: Trace, root: &Path, trace_name: &Path) -> Result<Model, ImageError> {
        let mut ops = Vec::with_capacity(trace.entries.len());
        let mut t_ns = Vec::with_capacity(trace.entries.len());
        let mut files: Vec<Option<Ino>> = Vec::new();
        let mut names: HashMap<PathBuf, Ino> = HashMap::new();
        let mut dirs: HashMap<PathBuf, DirId> = HashMap::new();
        let mut inodes = 0usize;
        for e in trace.entries {
            let seq = e.seq;
            let err = |reason: String| ImageError::Model {
                trace: trace_name.to_path_buf(),
                seq,
                reason,
            };
            let rel = |p: &Path| -> Result<PathBuf, ImageError> {
                match p.strip_prefix(root) {
                    Ok(r) if !r.as_os_str().is_empty() => Ok(r.to_path_buf()),
                    _ => Err(err(format!(
                        "{} is not inside the data directory {}",
                        p.display(),
                        root.display()
                    ))),
                }
            };
            // The directory holding a relative path (`""` is the root).
            let mut intern_dir = |dir: &Path| -> DirId {
                let n = dirs.len();
                *dirs.entry(dir.to_path_buf()).or_insert(n)
            };
            let parent = |p: &Path| p.parent().unwrap_or(Path::new("")).to_path_buf();
            let mut new_ino = |file: u32| -> Result<Ino, ImageError> {
                if file >= MAX_FILES {
                    return Err(err(format!("file id {file} over the limit {MAX_FILES}")));
                }
                let i = file as usize;
                if files.len() <= i {
                    files.resize(i + 1, None);
                }
                files[i] = Some(inodes);
                inodes += 1;
                Ok(inodes - 1)
            };
            let ino_of = |files: &[Option<Ino>], file: u32| -> Result<Ino, ImageError> {
                files
                    .get(file as usize)
                    .copied()
                    .flatten()
                    .ok_or_else(|| err(format!("file id {file} used before it was opened")))
            };
            let op = match e.op {
                Op::Create { file, path } => {
                    let path = rel(&path)?;
                    let ino = new_ino(file)?;
                    names.insert(path.clone(), ino);
                    let dir = intern_dir(&parent(&path));
                    MOp::Create { ino, path, dir }
                }
                Op::Open { file, path } => {
                    let path = rel(&path)?;
                    let ino = *names.get(&path).ok_or_else(|| {
                        err(format!(
                            "open of {} which the trace never saw",
                            path.display()
                        ))
                    })?;
                    if files.len() <= file as usize {
                        files.resize(file as usize + 1, None);
                    }
                    files[file as usize] = Some(ino);
                    MOp::Nop
                }
                Op::Preexisting { file, path, len } => {
                    let path = rel(&path)?;
                    let ino = new_ino(file)?;
                    names.insert(path.clone(), ino);
                    MOp::Base { ino, path, len }
                }
                Op::BaseData { file, offset, data } => MOp::BaseData {
                    ino: ino_of(&files, file)?,
                    offset,
                    data,
                },
                Op::Write { file, offset, data } => MOp::Write {
                    ino: ino_of(&files, file)?,
                    offset,
                    data,
                },
                Op::SyncData {
                    file, begin_seq, ..
                } => MOp::SyncData {
                    ino: ino_of(&files, file)?,
                    begin_seq,
                },
                Op::SetLen { file, len } => MOp::SetLen {
                    ino: ino_of(&files, file)?,
                    len,
                },
                Op::Allocate { file, offset, len } => MOp::Allocate {
                    ino: ino_of(&files, file)?,
                    offset,
                    len,
                },
                Op::Rename { from, to } => {
                    let (from, to) = (rel(&from)?, rel(&to)?);
                    let ino = names.remove(&from).ok_or_else(|| {
                        err(format!("rename of {} which does not exist", from.display()))
                    })?;
                    names.insert(to.clone(), ino);
                    let (from_dir, to_dir) = (intern_dir(&parent(&from)), intern_dir(&parent(&to)));
                    MOp::Rename {
                        from,
                        to,
                        from_dir,
                        to_dir,
                    }
                }
                Op::Remove { path } => {
                    let path = rel(&path)?;
                    names.remove(&path).ok_or_else(|| {
                        err(format!("remove of {} which does not exist", path.display()))
                    })?;
                    let dir = intern_dir(&parent(&path));
                    MOp::Remove { path, dir }
                }
                Op::MkDir { path } => {
                    let path = rel(&path)?;
                    intern_dir(&path);
                    let dir = intern_dir(&parent(&path));
                    MOp::MkDir { path, dir }
                }
                Op::RemoveDir { path } => {
                    let path = rel(&path)?;
                    let dir = intern_dir(&parent(&path));
                    MOp::RemoveDir { path, dir }
                }
                Op::Link { from, to } => {
                    let (from, to) = (rel(&from)?, rel(&to)?);
                    let ino = *names.get(&from).ok_or_else(|| {
                        err(format!("link of {} which does not exist", from.display()))
                    })?;
                    names.insert(to.clone(), ino);
                    let dir = intern_dir(&parent(&to));
                    MOp::Link { ino, path: to, dir }
                }
                Op::SyncDir { dir, begin_seq, .. } => match dir.strip_prefix(root) {
                    Ok(r) => MOp::SyncDir {
                        dir: intern_dir(r),
                        begin_seq,
                    },
                    Err(_) => MOp::Nop,
                },
                other => return Err(err(format!("unsupported trace entry {other:?}"))),
            };
            ops.push(op);
            t_ns.push(e.t_ns);
        }
        let history = History::of(&ops, inodes);
        let seqs_where = |f: fn(&MOp) -> bool| -> Vec<usize> {
            (0..ops.len()).filter(|&i| f(&ops[i])).collect()
        };
        let (sync_seqs, namespace_seqs) = (seqs_where(MOp::is_sync), seqs_where(MOp::names_a_file));
        Ok(Model {
            sync_seqs,
            namespace_seqs,
            ops,
            t_ns,
            start_ns: trace.start_ns,
            inodes,
            dirs: dirs.len(),
            history,
        })
    }

    /// Entries in the trace: cuts range over `0..=len()`.
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// The time of a crash just before op `k`: the timestamp of op `k - 1` (the last
    /// operation that happened), or the trace's start for `k = 0`.
    pub(crate) fn cut_ns(&self, k: usize) -> u64 {
        match k {
            0 => self.start_ns,
            k => self.t_ns[k - 1],
        }
    }

    /// The durable state after a crash just before op `k` (ops `0..k` happened), and the
    /// operations that were not yet durable, its files built as `build` says. See the module
    /// docs of `images` for the rules. The bytes do not depend on `build`: a file whose
    /// durable operations are the first n of its content operations (and its unsynced ones
    /// the rest, so that every later prefix is one too: [`CrashState::apply_first`]) is the
    /// history's content after n; any other file gets its durable operations applied in trace
    /// order to an empty file, as the plain path does for every file.
    pub(crate) fn crash_state(
        &self,
        k: usize,
        opts: &ImageOptions,
        build: Build,
    ) -> CrashState<'_> {
        let ops = &self.ops[..k];
        let plain = build == Build::Plain;
        // The plain path reads every operation; the others only those each step needs.
        let every: Vec<usize> = if plain { (0..k).collect() } else { Vec::new() };
        let below =
            |seqs: &'_ [usize]| -> Vec<usize> { seqs[..seqs.partition_point(|&s| s < k)].to_vec() };
        let (sync_steps, name_steps) = if plain {
            (every.clone(), every)
        } else {
            (below(&self.sync_seqs), below(&self.namespace_seqs))
        };
        let syncs = Syncs::completed(ops, &sync_steps, self.inodes, self.dirs);
        let cut_ns = self.cut_ns(k);
        let expired = |seq: usize, age_ns: u64| {
            opts.writeback && self.t_ns[seq].saturating_add(age_ns) <= cut_ns
        };
        let ext4 = opts.dir_model == DirModel::Ext4Ordered;
        // Metadata (names, sizes set by set_len/fallocate) committed by ext4's journal.
        let meta_durable = |seq: usize| {
            ext4 && (syncs.any_before > seq as u64 || expired(seq, EXT4_COMMIT_INTERVAL_NS))
        };
        let (names, dirs) =
            direntry::durable_names(ops, &name_steps, &syncs, opts.dir_model, &meta_durable);
        // Without writeback, a write is durable exactly when a completed sync of its file
        // covers it (and a size change also when ext4's journal committed it): per file, the
        // operations before a point, unless a size change is committed apart from them.
        let split = if !opts.writeback && !plain {
            let meta_synced = if ext4 { syncs.any_before } else { 0 };
            self.split_at_syncs(k, &syncs, meta_synced)
        } else {
            None
        };
        let Split {
            mut prefix,
            applied,
            pending,
            durable_ops,
        } = split.unwrap_or_else(|| {
            self.split_op_by_op(ops, |seq, ino, is_meta| {
                syncs.data_before[ino] > seq as u64
                    || expired(seq, opts.dirty_expire_ns)
                    || (is_meta && meta_durable(seq))
            })
        });
        if plain {
            prefix.fill(None);
        }
        let sizes_only = build == Build::SizesOnly;
        let mut files: Vec<Content> = (0..self.inodes)
            .map(|ino| match prefix[ino] {
                Some(n) if sizes_only => Content::sizes_only(self.history.size_after(ino, n)),
                Some(n) => self.history.content_after(&self.ops, ino, n),
                None if sizes_only => Content::sizes_only(0),
                None => Content::default(),
            })
            .collect();
        for &seq in &applied {
            let op = &self.ops[seq];
            if let Some(ino) = history::content_ino(op)
                && prefix[ino].is_none()
            {
                history::apply(op, &mut files[ino]);
            }
        }
        CrashState {
            files,
            names,
            dirs,
            pending,
            durable_ops,
            prefix,
            source: Some(Source {
                history: &self.history,
                ops: &self.ops,
                sizes_only,
            }),
        }
    }

    /// The durable and pending content operations of `ops` (those before the cut), reading
    /// each: `durable(seq, ino, is_meta)` says whether the data operation at `seq` on `ino`
    /// is durable (`is_meta`: a size change, not a write); the file as found before the trace
    /// always is.
    fn split_op_by_op<'a>(
        &self,
        ops: &'a [MOp],
        durable: impl Fn(usize, Ino, bool) -> bool,
    ) -> Split<'a> {
        let mut s = Split {
            prefix: vec![Some(0); self.inodes],
            applied: Vec::new(),
            pending: Vec::new(),
            durable_ops: 0,
        };
        let mut has_pending = vec![false; self.inodes];
        for (seq, op) in ops.iter().enumerate() {
            if let MOp::Base { ino, .. } | MOp::BaseData { ino, .. } = op {
                s.applied.push(seq);
                note_applied(&mut s.prefix, &has_pending, *ino);
                continue;
            }
            let Some(p) = pending_of(seq, op) else {
                continue;
            };
            if durable(seq, p.ino, !matches!(p.op, PendingOp::Write { .. })) {
                s.applied.push(seq);
                note_applied(&mut s.prefix, &has_pending, p.ino);
                s.durable_ops += 1;
            } else {
                has_pending[p.ino] = true;
                s.pending.push(p);
            }
        }
        s
    }

    /// [`Model::split_op_by_op`] where a data operation is durable exactly when a completed
    /// sync of its file covers it (`syncs`), or, for a size change, when it comes before
    /// trace index `meta_synced`; reading only the pending operations: each file's durable
    /// operations are its first n ([`History::split`]). `None` when some file's are not (a
    /// file found before the trace with its data after a pending operation, or a size change
    /// durable after a pending write): then read op by op.
    fn split_at_syncs(&self, k: usize, syncs: &Syncs, meta_synced: u64) -> Option<Split<'_>> {
        let meta_synced = usize::try_from(meta_synced).unwrap_or(usize::MAX);
        let mut prefix = Vec::with_capacity(self.inodes);
        let mut runs: Vec<&[usize]> = Vec::new();
        let mut durable_ops = 0;
        for ino in 0..self.inodes {
            let synced = usize::try_from(syncs.data_before[ino]).unwrap_or(usize::MAX);
            let (n, rest) = self.history.split(ino, k, synced, meta_synced)?;
            prefix.push(Some(n));
            durable_ops += self.history.data_ops_in(ino, n);
            if !rest.is_empty() {
                runs.push(rest);
            }
        }
        let of = |&seq: &usize| pending_of(seq, &self.ops[seq]).expect("a data operation");
        let pending = match runs[..] {
            [] => Vec::new(),
            // One file's (a policy-no log's whole tail): already in order.
            [run] => run.iter().map(of).collect(),
            _ => {
                // Each file's pending operations are in order: a stable sort merges the runs.
                let mut seqs = runs.concat();
                seqs.sort();
                seqs.iter().map(of).collect()
            }
        };
        Some(Split {
            prefix,
            applied: Vec::new(),
            pending,
            durable_ops,
        })
    }
}

/// Content operations of a cut, split into the durable and the pending.
struct Split<'a> {
    /// Per inode: how many of its content operations are applied, when they are its first
    /// ones and its pending ones the rest (`None`: applied one by one from `applied`).
    prefix: Vec<Option<usize>>,
    /// Trace indices of the applied operations, in order (read for the `None` inodes).
    applied: Vec<usize>,
    pending: Vec<Pending<'a>>,
    /// Data operations applied (not counting the files as found before the trace).
    durable_ops: usize,
}

/// The data operation at `seq` as a pending one (`None`: not a data operation).
fn pending_of(seq: usize, op: &MOp) -> Option<Pending<'_>> {
    let (ino, op) = match op {
        MOp::Write { ino, offset, data } => (
            *ino,
            PendingOp::Write {
                offset: *offset,
                data,
            },
        ),
        MOp::SetLen { ino, len } => (*ino, PendingOp::SetLen(*len)),
        MOp::Allocate { ino, offset, len } => (*ino, PendingOp::Allocate(*offset, *len)),
        _ => return None,
    };
    Some(Pending { seq, ino, op })
}

/// Notes that inode `ino`'s next content operation is applied: its applied operations stay
/// a prefix of its operations unless one of them was left unsynced before.
fn note_applied(prefix: &mut [Option<usize>], has_pending: &[bool], ino: Ino) {
    prefix[ino] = match prefix[ino] {
        Some(n) if !has_pending[ino] => Some(n + 1),
        _ => None,
    };
}
