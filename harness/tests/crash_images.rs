//! Crash images built from traces of real engine runs: every image recovers to a prefix,
//! `always` never loses an acknowledged command, the deliberately broken engine is caught, and
//! directory entries without a directory sync are lost under the pessimistic model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use durlab_engine::backend::recording::RecordingBackend;
use durlab_engine::backend::{Backend, OpenMode, open_backend};
use durlab_engine::clock::now_ns;
use durlab_engine::keyspace::Entry;
use durlab_engine::{
    BackendKind, Engine, EngineConfig, Error, FsyncPolicy, Keyspace, Lsn, Prealloc, RecoveryMode,
};
use durlab_harness::crashlab::images::{CrashImage, DirModel, ImageOptions, Variant, crash_images};
use durlab_harness::crashlab::lying::Lies;
use durlab_harness::scenario::builtin;
use durlab_harness::workload::Workload;

type Dump = Vec<(Vec<u8>, Entry)>;

fn dump(ks: &Keyspace) -> Dump {
    let mut v: Dump = ks.iter().map(|(k, e)| (k.to_vec(), e.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A recorded run: the trace, the data directory it recorded, the ack time of every LSN.
struct Run {
    _tmp: tempfile::TempDir,
    trace: PathBuf,
    data: PathBuf,
    /// `acks[i]` = (LSN i + 1, `now_ns()` just after `execute` returned).
    acks: Vec<(Lsn, u64)>,
    /// `expected[r]` = state after commands 1..=r.
    expected: Vec<Dump>,
    workload: Workload,
}

impl Run {
    /// The highest LSN acknowledged at or before `t_ns`.
    fn acked_at(&self, t_ns: u64) -> Lsn {
        self.acks
            .iter()
            .take_while(|(_, at)| *at <= t_ns)
            .last()
            .map_or(0, |(lsn, _)| *lsn)
    }
}

fn record_run(
    kind: BackendKind,
    policy: FsyncPolicy,
    prealloc: Prealloc,
    commands: u64,
    broken: bool,
) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let trace = tmp.path().join("run.trace");
    let rec = RecordingBackend::new(open_backend(kind).unwrap(), &trace).unwrap();
    let mut config = EngineConfig::new(&data)
        .backend(kind)
        .policy(policy)
        .prealloc(prealloc);
    config.prealloc_chunk_bytes = 16 << 10;
    config.everysec_interval_ms = 2;
    config.backend_override = Some(Arc::new(rec));
    let lies = Lies {
        ack_before_sync: broken,
        ..Lies::default()
    };
    lies.install(&mut config).unwrap();
    let workload = Workload::new(&builtin::scenario().workload);
    let (engine, _) = Engine::open(config).unwrap();
    let mut acks = Vec::new();
    for n in 1..=commands {
        let ack = engine.execute_next(|lsn| workload.command(lsn)).unwrap();
        let at = now_ns();
        assert_eq!(ack.lsn, Some(n));
        acks.push((n, at));
        if n % 8 == 0 {
            // Let the everysec syncer run between batches so that syncs interleave.
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
    }
    drop(engine);
    let mut ks = Keyspace::new();
    let mut expected = vec![dump(&ks)];
    for n in 1..=commands {
        ks.apply(&workload.command(n));
        expected.push(dump(&ks));
    }
    Run {
        _tmp: tmp,
        trace,
        data,
        acks,
        expected,
        workload,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Recovers `dir` and returns the recovered LSN after checking that the state is the prefix
/// 1..=r of the run's commands. `Err` only for a refusal (`Error::Corrupt`).
fn recover(run: &Run, image: &CrashImage, dir: &Path, mode: RecoveryMode) -> Result<Lsn, Error> {
    let config = EngineConfig::new(dir)
        .policy(FsyncPolicy::No)
        .recovery(mode);
    let (engine, report) = match Engine::open(config) {
        Ok(opened) => opened,
        Err(e @ Error::Corrupt { .. }) => return Err(e),
        Err(e) => {
            image.keep();
            panic!(
                "{mode:?} recovery of {} failed: {e}\n{}",
                dir.display(),
                image.description
            )
        }
    };
    let r = report.recovered_lsn;
    if r as usize >= run.expected.len() {
        image.keep();
        panic!(
            "phantom: recovered LSN {r} was never issued\n{}",
            image.description
        );
    }
    let state = engine.read(dump);
    if state != run.expected[r as usize] {
        image.keep();
        panic!(
            "divergent: state after recovery of {} is not the state after commands 1..={r}\n{}",
            dir.display(),
            image.description
        );
    }
    let _ = &run.workload;
    Ok(r)
}

#[derive(Debug, Default)]
struct Tally {
    images: usize,
    below_acked: usize,
    recovered: Vec<Lsn>,
}

/// Checks every image of `run` for `opts`: strict and lenient recovery both yield a prefix
/// (strict refuses only reorder holes under `no`), and under `always` nothing acknowledged
/// before the cut is lost unless `expect_loss`.
fn check_images(run: &Run, opts: &ImageOptions, policy: FsyncPolicy, expect_loss: bool) -> Tally {
    let out = run._tmp.path().join(format!("images-{}", opts.variant));
    let scratch = run._tmp.path().join("lenient");
    let mut tally = Tally::default();
    let images = crash_images(&run.trace, &run.data, opts, &out).unwrap();
    assert!(images.cut_ops().len() > opts.states / 2);
    for image in images {
        let image = image.unwrap();
        tally.images += 1;
        let _ = std::fs::remove_dir_all(&scratch);
        copy_dir(&image.dir, &scratch);
        let strict = recover(run, &image, &image.dir, RecoveryMode::Strict);
        let lenient = recover(run, &image, &scratch, RecoveryMode::Lenient).unwrap_or_else(|e| {
            image.keep();
            panic!("lenient recovery refused: {e}\n{}", image.description)
        });
        match strict {
            Ok(r) => assert_eq!(r, lenient, "{}", image.description),
            Err(e) => {
                // Holes left by a power loss lie in unsynced data, which no later record
                // vouches for: strict recovery cuts them. Only under `no`, whose records carry
                // no sync information, does it refuse a hole (conservatively).
                if !(opts.variant == Variant::Reorder && policy == FsyncPolicy::No) {
                    image.keep();
                    panic!(
                        "strict recovery refused a crash image: {e}\n{}",
                        image.description
                    );
                }
            }
        }
        let acked = run.acked_at(image.cut_ns);
        if lenient < acked {
            tally.below_acked += 1;
            if policy == FsyncPolicy::Always && !expect_loss {
                image.keep();
                panic!(
                    "lost-acked under always: recovered {lenient} < acked {acked} at the cut\n{}",
                    image.description
                );
            }
        }
        tally.recovered.push(lenient);
    }
    tally
}

fn images_recover_to_prefixes(kind: BackendKind, policy: FsyncPolicy, prealloc: Prealloc) {
    let commands = 48;
    let run = record_run(kind, policy, prealloc, commands, false);
    for variant in Variant::ALL {
        for (writeback, dir_model) in [
            (false, DirModel::Pessimistic),
            (true, DirModel::Ext4Ordered),
        ] {
            let opts = ImageOptions {
                states: 40,
                seed: 7,
                writeback,
                dir_model,
                ..ImageOptions::new(variant)
            };
            let t = check_images(&run, &opts, policy, false);
            let mut distinct = t.recovered.clone();
            distinct.sort_unstable();
            distinct.dedup();
            eprintln!(
                "{kind} {policy} {variant} writeback={writeback}: {} images, {} distinct LSNs \
                 recovered, {} below acked",
                t.images,
                distinct.len(),
                t.below_acked
            );
            assert!(t.images > 0);
            // The images span the run: a crash at the start recovers nothing.
            assert!(t.recovered.contains(&0), "{variant}: {t:?}");
            if policy == FsyncPolicy::Always || variant != Variant::PowerLoss || writeback {
                // Some image recovers everything (the end of an `always` run is synced; other
                // variants let unsynced writes survive).
                assert!(
                    t.recovered.contains(&commands) || policy != FsyncPolicy::Always,
                    "{variant} {policy}: {t:?}"
                );
            }
            if policy == FsyncPolicy::No && variant == Variant::PowerLoss && !writeback {
                assert!(
                    t.recovered.iter().all(|&r| r == 0),
                    "nothing is ever synced under `no`"
                );
            }
            if variant != Variant::PowerLoss && policy != FsyncPolicy::Always {
                assert!(
                    t.recovered.iter().any(|&r| r > 0),
                    "{variant} {policy}: unsynced writes must survive in some image: {t:?}"
                );
            }
        }
    }
}

macro_rules! prefix_tests {
    ($($name:ident: $kind:ident, $policy:ident, $prealloc:ident;)+) => {
        $(
            #[test]
            fn $name() {
                images_recover_to_prefixes(BackendKind::$kind, FsyncPolicy::$policy, Prealloc::$prealloc);
            }
        )+
    };
}

prefix_tests! {
    always_pwrite: Pwrite, Always, None;
    always_uring: Uring, Always, Zero;
    everysec_pwrite: Pwrite, EverySec, Zero;
    everysec_uring: Uring, EverySec, Fallocate;
    no_pwrite: Pwrite, No, Fallocate;
    no_uring: Uring, No, None;
}

/// The checker can fail: an engine that acknowledges under `always` without syncing is caught
/// losing acknowledged commands.
#[test]
fn broken_ack_before_sync_is_caught() {
    for kind in [BackendKind::Pwrite, BackendKind::Uring] {
        let run = record_run(kind, FsyncPolicy::Always, Prealloc::None, 32, true);
        let opts = ImageOptions {
            states: 20,
            ..ImageOptions::new(Variant::PowerLoss)
        };
        let t = check_images(&run, &opts, FsyncPolicy::Always, true);
        assert!(
            t.below_acked > 0,
            "{kind}: no image showed the broken engine losing acknowledged commands: {t:?}"
        );
    }
}

fn write_file(b: &dyn Backend, path: &Path, bytes: &[u8]) {
    let f = b.open(path, OpenMode::CreateNew).unwrap();
    f.write_all_at(bytes, 0).unwrap();
    f.sync_data().unwrap();
}

fn image_files(image: &CrashImage) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(&image.dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn files(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
        .collect()
}

/// Creates, renames and removes survive a power loss only if their directory was synced
/// (pessimistic), or once any later sync committed the journal (ext4 data=ordered).
#[test]
fn directory_entries_need_a_directory_sync() {
    for kind in [BackendKind::Pwrite, BackendKind::Uring] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        std::fs::create_dir(&root).unwrap();
        let trace = tmp.path().join("t.trace");
        let b = RecordingBackend::new(open_backend(kind).unwrap(), &trace).unwrap();
        write_file(&b, &root.join("a"), b"hello");
        write_file(&b, &root.join("gone"), b"old");
        b.sync_dir(&root).unwrap();
        // Replace `a` by rename, create `lost`, remove `gone`: no directory sync.
        write_file(&b, &root.join("tmp"), b"new");
        b.rename(&root.join("tmp"), &root.join("a")).unwrap();
        write_file(&b, &root.join("lost"), b"x");
        b.remove(&root.join("gone")).unwrap();
        let before_dir_sync = b.entries();
        b.sync_dir(&root).unwrap();

        let at = |model: DirModel, cut: u64| {
            let opts = ImageOptions {
                dir_model: model,
                ..ImageOptions::new(Variant::PowerLoss)
            };
            let out = tmp.path().join(format!("img-{model:?}-{cut}"));
            let mut images = crash_images(&trace, &root, &opts, &out).unwrap();
            assert!(images.cut_ops().contains(&cut));
            let image = images
                .by_ref()
                .map(Result::unwrap)
                .find(|i| i.cut_op == cut)
                .unwrap();
            image_files(&image)
        };
        assert_eq!(
            at(DirModel::Pessimistic, before_dir_sync),
            files(&[("a", "hello"), ("gone", "old")]),
            "{kind}: without a directory sync the rename, create and remove are lost"
        );
        // ext4: the fdatasync of `lost` committed the rename and the create of `lost`; the
        // remove came after the last sync.
        assert_eq!(
            at(DirModel::Ext4Ordered, before_dir_sync),
            files(&[("a", "new"), ("gone", "old"), ("lost", "x")]),
            "{kind}"
        );
        for model in [DirModel::Pessimistic, DirModel::Ext4Ordered] {
            assert_eq!(
                at(model, before_dir_sync + 1),
                files(&[("a", "new"), ("lost", "x")]),
                "{kind} {model:?}: after the directory sync everything is durable"
            );
        }
    }
}

/// Data written without fdatasync is lost by a power loss but kept by writeback once old
/// enough; an image directory is removed when the image is dropped unless kept.
#[test]
fn writeback_and_image_lifetimes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    std::fs::create_dir(&root).unwrap();
    let trace = tmp.path().join("t.trace");
    let b = RecordingBackend::new(open_backend(BackendKind::Pwrite).unwrap(), &trace).unwrap();
    let f = b.open(&root.join("f"), OpenMode::CreateNew).unwrap();
    b.sync_dir(&root).unwrap();
    f.write_all_at(b"unsynced", 0).unwrap();
    b.sync_dir(&root).unwrap(); // a later entry, so the write has an age at the end
    let end = b.entries();
    let opts = |writeback, dirty_expire_ns| ImageOptions {
        writeback,
        dirty_expire_ns,
        ..ImageOptions::new(Variant::PowerLoss)
    };
    // The files of the image at the end of the trace.
    let last = |o: &ImageOptions, out: &str| {
        let mut images = crash_images(&trace, &root, o, &tmp.path().join(out)).unwrap();
        let image = images
            .by_ref()
            .map(Result::unwrap)
            .find(|i| i.cut_op == end)
            .unwrap();
        image_files(&image)
    };
    assert_eq!(last(&opts(false, 0), "a"), files(&[("f", "")]));
    assert_eq!(last(&opts(true, 0), "b"), files(&[("f", "unsynced")]));
    assert_eq!(last(&opts(true, u64::MAX / 2), "c"), files(&[("f", "")]));

    let mut images = crash_images(&trace, &root, &opts(false, 0), &tmp.path().join("d")).unwrap();
    let first = images.next().unwrap().unwrap();
    first.keep();
    let second = images.next().unwrap().unwrap();
    let third = images.next().unwrap().unwrap();
    assert!(first.dir.exists() && second.dir.exists() && third.dir.exists());
    let second_dir = second.dir.clone();
    drop(second);
    assert!(!second_dir.exists(), "removed when dropped");
    drop(images);
    assert!(third.dir.exists(), "an image outlives its iterator");
    let (first_dir, third_dir) = (first.dir.clone(), third.dir.clone());
    drop((first, third));
    assert!(first_dir.exists(), "kept");
    assert!(!third_dir.exists());
}

/// Child side of [`trace_survives_kill_9`]: writes forever, printing each acknowledged LSN.
fn child_writes_until_killed(dir: &Path) -> ! {
    use std::io::Write;
    let trace = dir.join("run.trace");
    let rec = RecordingBackend::new(open_backend(BackendKind::Pwrite).unwrap(), &trace).unwrap();
    let mut config = EngineConfig::new(dir.join("data")).policy(FsyncPolicy::No);
    config.backend_override = Some(Arc::new(rec));
    let workload = Workload::new(&builtin::scenario().workload);
    let (engine, _) = Engine::open(config).unwrap();
    let mut out = std::io::stdout().lock();
    loop {
        let ack = engine.execute_next(|lsn| workload.command(lsn)).unwrap();
        writeln!(out, "{}", ack.lsn.unwrap()).unwrap();
        out.flush().unwrap();
    }
}

/// A worker killed with SIGKILL in the middle of recording leaves a trace that reads (a torn
/// last entry ignored), whose writes rebuild the log as the page cache holds it, and whose
/// final images recover every command the worker acknowledged when nothing was lost.
#[test]
fn trace_survives_kill_9() {
    use std::io::BufRead;
    if let Some(dir) = std::env::var_os("DURLAB_KILL9_CHILD_DIR") {
        child_writes_until_killed(Path::new(&dir));
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "trace_survives_kill_9",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("DURLAB_KILL9_CHILD_DIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = 0u64;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while acked < 500 {
        match lines.next() {
            Some(Ok(line)) => acked = line.trim().parse().unwrap_or(acked),
            _ => break,
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(acked >= 500, "the child stopped early at {acked}");

    let trace = tmp.path().join("run.trace");
    let t = durlab_engine::backend::recording::read_trace(&trace).unwrap();
    let log = std::fs::read(tmp.path().join("data/durlab.aof")).unwrap();
    let mut replay = Vec::new();
    for e in &t.entries {
        if let durlab_engine::backend::recording::Op::Write { offset, data, .. } = &e.op {
            let mut at = *offset as usize;
            for s in data {
                let n = s.len() as usize;
                if replay.len() < at + n {
                    replay.resize(at + n, 0);
                }
                if let durlab_engine::backend::recording::Segment::Bytes(b) = s {
                    replay[at..at + n].copy_from_slice(b);
                }
                at += n;
            }
        }
    }
    // A write that returned just before the kill may be missing from the trace, never the
    // other way round.
    assert!(replay.len() <= log.len());
    assert!(
        replay == log[..replay.len()],
        "the trace disagrees with the page cache"
    );

    // Nothing is lost on kill -9: recovering the directory itself gives every acked command.
    let (engine, report) = Engine::open(EngineConfig::new(tmp.path().join("data"))).unwrap();
    assert!(
        report.recovered_lsn >= acked,
        "{} < {acked}",
        report.recovered_lsn
    );
    drop(engine);
}
