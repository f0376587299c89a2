//! Crash images: the data directories a machine could hold after a power loss at some point of
//! a recorded run, built from the I/O trace of
//! [`RecordingBackend`](durlab_engine::backend::recording::RecordingBackend).
//!
//! # API
//!
//! ```no_run
//! use std::path::Path;
//! use durlab_harness::crashlab::images::{crash_images, ImageOptions, Variant};
//!
//! # fn main() -> Result<(), durlab_harness::crashlab::images::ImageError> {
//! let opts = ImageOptions::new(Variant::Torn); // seed 0, 100 spread states, pessimistic dirs
//! for image in crash_images(Path::new("run.trace"), Path::new("/data/run"), &opts, Path::new("/tmp/imgs"))? {
//!     let image = image?;
//!     // recover image.dir with the engine, compare with the oracle at the recovered LSN,
//!     // compare with the acknowledgements made before image.cut_ns ...
//!     if false { image.keep(); } // keep the directory of a failing image
//! } // each image directory is removed when the image is dropped, unless kept
//! # Ok(()) }
//! ```
//!
//! `root_in_trace` is the data directory as the recorded engine saw it; every file operation in
//! the trace must be under it. Each image is a directory `out_dir/img-<n>-op<k>-<variant>` that
//! replaces `root_in_trace`.
//!
//! # Cut points
//!
//! A cut at op k means the entries `0..k` of the trace happened and nothing after. Its time
//! `cut_ns` is the timestamp of entry k − 1 (the trace's start for k = 0), on the clock of
//! [`durlab_engine::clock::now_ns`]: an acknowledgement recorded at or before `cut_ns` happened
//! before the crash. The cuts are, sorted and without duplicates: the end of the trace; just
//! before and just after every sync (fdatasync, directory fsync) and every rename, because that
//! is where bugs live (renames and directory syncs sampled apart from data syncs, so that
//! snapshot and manifest installs are always aimed at); and [`ImageOptions::states`] more, one drawn (seeded) from each of that
//! many equal slices of the trace. [`CrashImages::cut_ops`] lists them before any image is
//! built; one image is built per cut.
//!
//! # What is durable at a cut
//!
//! - File data: a write, `set_len` or `fallocate` is durable if an fdatasync of the same file
//!   completed before the cut and began after the operation returned (the trace's `begin_seq`).
//! - Directory entries (create, rename, remove): per [`DirModel`], see [`direntry`]'s docs.
//!   Files whose name is not durable are absent from the image, whatever their data.
//! - Files that existed before the trace started are durable as they were found.
//! - Directories the trace does not make are taken as durable (the engine creates its data
//!   directory with `mkdir` before any file, then syncs the parent). Directories made or
//!   removed during the trace (recorded by the recording filesystem, `crate::recfs`) are
//!   entries of their parent, durable as a create there is; a file below a lost directory is
//!   lost with it.
//! - With [`ImageOptions::writeback`], unsynced data operations older than
//!   [`ImageOptions::dirty_expire_ns`] at the cut are durable too (the kernel's flusher wrote
//!   them back), so policy `no` can be judged at its realistic bound as well as its worst case.
//!
//! # Variants (what else survives)
//!
//! | variant | unsynced operations that survive |
//! |---|---|
//! | [`Variant::PowerLoss`] | none |
//! | [`Variant::Prefix`] | a seeded prefix, in trace order |
//! | [`Variant::Torn`] | a seeded prefix ending in a write that is cut at a 512 B or 4 KiB boundary; the rest of it zeros, garbage or old bytes |
//! | [`Variant::Reorder`] | any seeded subset of dirty 512 B sectors, each at one of its page-cache versions (holes possible) |
//!
//! [`Variant::LiveCopy`] is not a crash: its "image" is a backup copied from the live
//! directory, started at the cut and read as [`copy`] describes ([`ImageOptions::copy`]); its
//! `cut_ns` is when the copy ended.
//!
//! Every choice is a pure function of ([`ImageOptions::seed`], cut, variant), so an image can
//! be rebuilt from the trace and the seed alone.

mod content;
pub mod copy;
pub mod direntry;
mod history;
mod materialize;
mod model;
mod ops;
mod power_loss;
mod reorder;
pub mod scratch;
mod state;
mod torn;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use durlab_engine::backend::recording::{Trace, TraceError, read_trace};
use rand::RngExt;

use crate::workload::rng::SplitMix64;
use model::{Build, Model};
use state::CrashState;

/// Which unsynced operations survive (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    PowerLoss,
    Prefix,
    Torn,
    Reorder,
    /// Not a crash: a copy of the live directory started at the cut ([`copy`]).
    LiveCopy,
}

impl Variant {
    /// The crash variants (what survives a power loss).
    pub const ALL: [Variant; 4] = [
        Variant::PowerLoss,
        Variant::Prefix,
        Variant::Torn,
        Variant::Reorder,
    ];

    /// `power-loss`, `prefix`, `torn`, `reorder`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::PowerLoss => "power-loss",
            Variant::Prefix => "prefix",
            Variant::Torn => "torn",
            Variant::Reorder => "reorder",
            Variant::LiveCopy => "live-copy",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When a create, rename or remove is durable (see [`direntry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DirModel {
    /// Only after an fsync of its directory (POSIX; what a portable engine must assume).
    #[default]
    Pessimistic,
    /// After any later completed sync on the file system (ext4 `data=ordered` journal commit).
    Ext4Ordered,
}

impl DirModel {
    /// `pessimistic` or `ext4-ordered`: the name on the command line and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            DirModel::Pessimistic => "pessimistic",
            DirModel::Ext4Ordered => "ext4-ordered",
        }
    }
}

/// Serialized by name, as on the command line.
impl serde::Serialize for DirModel {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

impl fmt::Display for DirModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DirModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [DirModel::Pessimistic, DirModel::Ext4Ordered]
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown directory model '{s}': expected pessimistic or ext4-ordered")
            })
    }
}

/// How to build images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOptions {
    pub variant: Variant,
    /// Treat unsynced data older than `dirty_expire_ns` at the cut as written back.
    pub writeback: bool,
    pub dir_model: DirModel,
    /// Cut points spread over the trace, in addition to those around syncs and renames (of
    /// which at most [`CRITICAL_CUTS_PER_STATE`] x `states` are taken).
    pub states: usize,
    pub seed: u64,
    /// Age at which the kernel writes dirty data back; see [`default_dirty_expire_ns`].
    pub dirty_expire_ns: u64,
    /// Spread cut points and those around data syncs are taken only where the crash time
    /// (`cut_ns`) is at least this ([`durlab_engine::clock::now_ns`] clock; 0: anywhere):
    /// where a policy's loss bound can be reached (`crate::crashlab::trial`). The end of the
    /// trace and the points around renames and directory syncs are always taken.
    pub first_cut_ns: u64,
    /// How [`Variant::LiveCopy`] copies (ignored by the other variants).
    pub copy: copy::CopyProcedure,
    /// [`Variant::LiveCopy`]: when not empty, exactly these copies, in this order (the
    /// moments a procedure ran, or the twins of real copies), instead of one per cut point;
    /// each image's `cut_op` is the number of entries that had happened at its start.
    pub copies: Vec<copy::CopyPlan>,
}

impl ImageOptions {
    /// `variant` with: no writeback, [`DirModel::Pessimistic`], 100 spread states, seed 0,
    /// [`default_dirty_expire_ns`], cuts anywhere.
    pub fn new(variant: Variant) -> Self {
        ImageOptions {
            variant,
            writeback: false,
            dir_model: DirModel::Pessimistic,
            states: 100,
            seed: 0,
            dirty_expire_ns: default_dirty_expire_ns(),
            first_cut_ns: 0,
            copy: copy::CopyProcedure::default(),
            copies: Vec::new(),
        }
    }
}

/// `vm.dirty_expire_centisecs + vm.dirty_writeback_centisecs` of this machine (a page is
/// written back at most one flusher period after it expires), or 30 s + 5 s (the Linux
/// defaults) where `/proc` cannot be read.
pub fn default_dirty_expire_ns() -> u64 {
    let read = |name: &str, default_cs: u64| {
        std::fs::read_to_string(format!("/proc/sys/vm/{name}"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(default_cs)
    };
    (read("dirty_expire_centisecs", 3000) + read("dirty_writeback_centisecs", 500)) * 10_000_000
}

/// Why images could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The trace is well-formed but describes something the model cannot place.
    #[error("trace {trace}, entry {seq}: {reason}")]
    Model {
        trace: PathBuf,
        seq: u64,
        reason: String,
    },
    #[error("crash image: {op} {path} failed: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One materialised crash image. Its directory is removed when it is dropped, unless kept.
#[derive(Debug)]
pub struct CrashImage {
    /// The image: use it as the engine's data directory.
    pub dir: PathBuf,
    /// Time of the crash ([`durlab_engine::clock::now_ns`] clock): the timestamp of the last
    /// trace entry that happened.
    pub cut_ns: u64,
    /// Entries `0..cut_op` of the trace happened.
    pub cut_op: u64,
    pub variant: Variant,
    /// What survived, for reports and failure messages.
    pub description: String,
    kept: AtomicBool,
}

impl CrashImage {
    /// Keeps [`CrashImage::dir`] on disk after the image is dropped (e.g. a failing image).
    pub fn keep(&self) {
        self.kept.store(true, Ordering::Relaxed);
    }

    /// Keeps the image under `dir`: where it is if it is already there, else as a copy in
    /// `dir/<its name>` (the original is then removed when dropped). Returns where it is kept.
    ///
    /// # Errors
    /// [`ImageError::Io`] naming the file that could not be copied.
    pub fn keep_in(&self, dir: &Path) -> Result<PathBuf, ImageError> {
        if self.dir.starts_with(dir) {
            self.keep();
            return Ok(self.dir.clone());
        }
        let to = dir.join(self.dir.file_name().unwrap_or_default());
        materialize::copy_tree(&self.dir, &to)?;
        Ok(to)
    }
}

impl Drop for CrashImage {
    fn drop(&mut self) {
        if !self.kept.load(Ordering::Relaxed) {
            // Best effort: a leftover image is only disk space under the trial's directory.
            let _ = materialize::remove(&self.dir);
        }
    }
}

/// The images of one trace, built lazily, one per cut point.
#[derive(Debug)]
pub struct CrashImages {
    model: Model,
    opts: ImageOptions,
    out_dir: PathBuf,
    cuts: Vec<u64>,
    next: usize,
}

/// Reads the trace at `trace` and returns an iterator over its crash images (see the module
/// docs). Nothing is written until the iterator is advanced; `out_dir` is created if missing.
///
/// # Errors
/// [`ImageError::Trace`] when the trace cannot be read or is corrupt (a torn last entry is
/// not an error); [`ImageError::Model`] when an operation is outside `root_in_trace` or
/// inconsistent. Each image may fail with [`ImageError::Io`].
pub fn crash_images(
    trace: &Path,
    root_in_trace: &Path,
    opts: &ImageOptions,
    out_dir: &Path,
) -> Result<CrashImages, ImageError> {
    let t = read_trace(trace)?;
    crash_images_from(t, trace, root_in_trace, opts, out_dir)
}

/// [`crash_images`] for a trace already read (`trace_name` appears in errors).
///
/// # Errors
/// As [`crash_images`].
pub fn crash_images_from(
    trace: Trace,
    trace_name: &Path,
    root_in_trace: &Path,
    opts: &ImageOptions,
    out_dir: &Path,
) -> Result<CrashImages, ImageError> {
    let root = std::path::absolute(root_in_trace).map_err(|source| ImageError::Io {
        op: "resolve",
        path: root_in_trace.to_path_buf(),
        source,
    })?;
    let model = Model::build(trace, &root, trace_name)?;
    let first = (0..=model.len())
        .find(|&k| model.cut_ns(k) >= opts.first_cut_ns)
        .unwrap_or(model.len()) as u64;
    let cuts = if opts.variant == Variant::LiveCopy && !opts.copies.is_empty() {
        let happened = |t: u64| model.t_ns.partition_point(|&e| e <= t) as u64;
        opts.copies.iter().map(|p| happened(p.start_ns)).collect()
    } else {
        cut_points(&model, opts.states, opts.seed, first)
    };
    Ok(CrashImages {
        model,
        opts: opts.clone(),
        out_dir: out_dir.to_path_buf(),
        cuts,
        next: 0,
    })
}

/// The end, both sides of every rename and directory sync, both sides of every data sync
/// from cut `first` on, and one seeded point in each of `states` equal slices of
/// `first..=len` (every point if `states` is at least the number of points).
/// With `states` > 0, the points around data syncs and those around renames and directory
/// syncs are each capped at [`CRITICAL_CUTS_PER_STATE`] x `states` (a seeded sample when
/// there are more: an `always` run has two data syncs per command), so that the rare
/// namespace steps of snapshot and manifest installs are never crowded out by data syncs;
/// with `states` = 0 all of them are taken.
fn cut_points(model: &Model, states: usize, seed: u64, first: u64) -> Vec<u64> {
    let n = model.len() as u64;
    let mut set = BTreeSet::from([n]);
    let (mut namespace, mut data): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
    for (i, op) in model.ops.iter().enumerate() {
        let pool = if op.is_namespace_step() {
            &mut namespace
        } else if op.is_critical() && i as u64 >= first {
            &mut data
        } else {
            continue;
        };
        pool.extend([i as u64, i as u64 + 1]);
    }
    let mut rng = SplitMix64::new(seed);
    let cap = states.saturating_mul(CRITICAL_CUTS_PER_STATE);
    for mut pool in [namespace, data] {
        if states > 0 && pool.len() > cap {
            // Partial Fisher-Yates: a seeded sample of `cap` points.
            for i in 0..cap {
                let j = rng.random_range(i as u64..pool.len() as u64) as usize;
                pool.swap(i, j);
            }
            pool.truncate(cap);
        }
        set.extend(pool);
    }
    let slots = n + 1 - first;
    let states = states as u64;
    if states >= slots {
        set.extend(first..=n);
    } else {
        for s in 0..states {
            let (from, to) = (s * slots / states, (s + 1) * slots / states);
            set.insert(first + rng.random_range(from..to));
        }
    }
    set.into_iter().collect()
}

/// How many cut points around data syncs (and, apart, around renames and directory syncs) per
/// requested state, at most.
pub const CRITICAL_CUTS_PER_STATE: usize = 4;

impl CrashImages {
    /// The cut points (`cut_op` of each image), in the order the images come.
    pub fn cut_ops(&self) -> &[u64] {
        &self.cuts
    }

    /// The variant the images are built as.
    pub fn variant(&self) -> Variant {
        self.opts.variant
    }

    /// Entries in the trace.
    pub fn trace_len(&self) -> u64 {
        self.model.len() as u64
    }

    /// Builds image `index` (of [`CrashImages::cut_ops`]), independently of the iterator:
    /// several threads may build different images at once.
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn build(&self, index: usize) -> Result<CrashImage, ImageError> {
        self.prepare(index).write()
    }

    /// Builds image `index` as [`CrashImages::build`] does, into its directory with `-plain`
    /// appended, with every file made by applying its durable and surviving operations to an
    /// empty file one by one, without the snapshots that [`CrashImages::build`] starts from:
    /// the reference that the snapshots are tested against (the bytes must be the same). Its
    /// cost grows with the trace's bytes for every image.
    ///
    /// # Errors
    /// As [`CrashImages::build`].
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn build_plain(&self, index: usize) -> Result<CrashImage, ImageError> {
        let mut prepared = self.prepare_as(index, Build::Plain);
        let mut dir = prepared.image.dir.clone().into_os_string();
        dir.push("-plain");
        prepared.image.dir = dir.into();
        prepared.write()
    }

    /// Decides image `index` (which bytes survive) without writing it: its
    /// [`PreparedImage::key`] tells byte-identical images apart before any is written.
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn prepare(&self, index: usize) -> PreparedImage<'_> {
        self.prepare_as(index, Build::Bytes)
    }

    /// The size in bytes of image `index` ([`PreparedImage::size_bytes`]), deciding only
    /// sizes: the same choices as [`CrashImages::prepare`], without copying a byte.
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn size_bytes(&self, index: usize) -> u64 {
        self.prepare_as(index, Build::SizesOnly).size_bytes()
    }

    /// [`CrashImages::prepare`] with the files built as `build` says.
    fn prepare_as(&self, index: usize, build: Build) -> PreparedImage<'_> {
        let k = self.cuts[index];
        let variant = self.opts.variant;
        let dir = self
            .out_dir
            .join(format!("img-{index:06}-op{k}-{}", variant.name()));
        if variant == Variant::LiveCopy {
            let plan = match self.opts.copies.get(index) {
                Some(plan) => plan.clone(),
                None => self.opts.copy.plan(self.model.cut_ns(k as usize)),
            };
            return self.prepare_copy(k, &plan, dir);
        }
        let mut rng = SplitMix64::from_words(self.opts.seed, k ^ ((variant as u64) << 56));
        let mut state = self.model.crash_state(k as usize, &self.opts, build);
        let what = match variant {
            Variant::PowerLoss => power_loss::power_loss(&state),
            Variant::Prefix => power_loss::prefix(&mut state, &mut rng),
            Variant::Torn => torn::torn(&mut state, &mut rng),
            Variant::Reorder => reorder::reorder(&mut state, &mut rng),
            Variant::LiveCopy => unreachable!("copies are prepared above"),
        };
        let cut_ns = self.model.cut_ns(k as usize);
        let last = match k {
            0 => "the start".to_string(),
            k => format!("op {} ({})", k - 1, self.model.ops[k as usize - 1].name()),
        };
        let description = format!(
            "cut after {last}, {k} of {} ops, t = {cut_ns} ns; {} durable data ops{}; {} files \
             named; {what}",
            self.model.len(),
            state.durable_ops,
            if self.opts.writeback {
                " (with writeback)"
            } else {
                ""
            },
            state.names.len(),
        );
        PreparedImage {
            key: OnceLock::new(),
            state,
            image: CrashImage {
                dir,
                cut_ns,
                cut_op: k,
                variant,
                description,
                kept: AtomicBool::new(false),
            },
        }
    }
}

impl CrashImages {
    /// The copy `plan` of the live directory, started after `k` entries: its image's
    /// `cut_ns` is when the copy ended (its state is as fresh as that, at best).
    fn prepare_copy(&self, k: u64, plan: &copy::CopyPlan, dir: PathBuf) -> PreparedImage<'_> {
        let c = copy::live_copy(&self.model, plan);
        let last_ns = self.model.cut_ns(self.model.len());
        let how = copy::CopyProcedure {
            source: plan.source.clone(),
            rate_bytes_per_sec: plan.rate_bytes_per_sec,
            ..self.opts.copy.clone()
        };
        let mut description = format!(
            "{how} started at op {k} of {} (t = {} ns), {} files, {} bytes, took {:.1} ms",
            self.model.len(),
            c.start_ns,
            c.reads.len(),
            c.reads.iter().map(|r| r.bytes).sum::<u64>(),
            (c.end_ns - c.start_ns) as f64 / 1e6,
        );
        if !c.missing.is_empty() {
            let names: Vec<String> = c.missing.iter().map(|p| p.display().to_string()).collect();
            description.push_str(&format!("; missing: {}", names.join(", ")));
        }
        if c.end_ns > last_ns {
            description.push_str("; ran past the end of the trace (the server was idle after it)");
        }
        PreparedImage {
            key: OnceLock::from(c.key()),
            image: CrashImage {
                dir,
                cut_ns: c.end_ns,
                cut_op: k,
                variant: Variant::LiveCopy,
                description,
                kept: AtomicBool::new(false),
            },
            state: c.state,
        }
    }
}

/// A crash image decided but not yet on disk ([`CrashImages::prepare`]).
#[derive(Debug)]
pub struct PreparedImage<'a> {
    /// Computed when first asked ([`PreparedImage::key`]): hashing every byte of the image
    /// is wasted on one prepared only to be sized.
    key: OnceLock<u128>,
    state: CrashState<'a>,
    image: CrashImage,
}

impl PreparedImage<'_> {
    /// Equal for byte-identical images (directories, names, sizes, bytes): what recovering
    /// one says of all of them.
    pub fn key(&self) -> u128 {
        *self.key.get_or_init(|| materialize::key(&self.state))
    }

    /// The bytes of the image's named files (a name per inode counted once per name): in a
    /// trace's torn, prefix and reorder images of an append-only log, an image of more bytes
    /// mostly holds more of the log, and so starts with the records that one of fewer bytes
    /// recovers.
    pub fn size_bytes(&self) -> u64 {
        self.state
            .names
            .values()
            .map(|&ino| self.state.files[ino].size())
            .sum()
    }

    /// The image's cut and description; its [`CrashImage::dir`] does not exist until
    /// [`PreparedImage::write`].
    pub fn image(&self) -> &CrashImage {
        &self.image
    }

    /// Writes the image into its directory (replacing whatever is there).
    ///
    /// # Errors
    /// [`ImageError::Io`] naming the file and operation.
    pub fn write(self) -> Result<CrashImage, ImageError> {
        materialize::materialize(&self.state, &self.image.dir)?;
        Ok(self.image)
    }
}

impl Iterator for CrashImages {
    type Item = Result<CrashImage, ImageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.cuts.len() {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(self.build(index))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.cuts.len() - self.next;
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests;
