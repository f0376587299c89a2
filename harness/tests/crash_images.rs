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

/// With `--writeback`, dirty data this old at a cut counts as written back in these tests
/// (so that `no`'s writeback promise covers commands of a short run).
const TEST_DIRTY_EXPIRE_NS: u64 = 2_000_000;

/// A recorded run: the trace, the data directory it recorded, the ack time of every LSN.
struct Run {
    policy: FsyncPolicy,
    /// When the run's final sync began: trace entries before it happened before it.
    final_sync_ns: u64,
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
    // The run ends synced under every policy: the image at the end of the trace holds every
    // command, whatever the policy (an assertion for each of them).
    let final_sync_ns = now_ns();
    engine.sync().unwrap();
    drop(engine);
    let mut ks = Keyspace::new();
    let mut expected = vec![dump(&ks)];
    for n in 1..=commands {
        ks.apply(&workload.command(n));
        expected.push(dump(&ks));
    }
    Run {
        policy,
        final_sync_ns,
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
    /// Images that recovered less than `contract` promised.
    below_promise: usize,
    /// The most any image was promised (0: the promise check could not fail).
    max_promised: Lsn,
    recovered: Vec<Lsn>,
    /// What the images cut before the run's final sync began recovered.
    before_final_sync: Vec<Lsn>,
}

/// What `contract` promises after a power loss at `cut_ns` of `run` (docs/design.md,
/// "Durability contracts"), with images that count data older than `writeback_ns` as
/// written back: `always` every acknowledged command; `everysec` and `no` those acknowledged
/// `writeback_ns` before (nothing without writeback); `off` nothing. `everysec`'s own lag bound
/// is not checked here: the engine counts it from the start of the last completed sync, and
/// on a loaded machine the syncer of a millisecond-scale run can be starved past any
/// millisecond lag (the crash lab judges it at 2 s: `crash_cli`).
fn promised(run: &Run, contract: FsyncPolicy, writeback_ns: Option<u64>, cut_ns: u64) -> Lsn {
    match contract {
        FsyncPolicy::Always => run.acked_at(cut_ns),
        FsyncPolicy::EverySec | FsyncPolicy::No => {
            writeback_ns.map_or(0, |ns| run.acked_at(cut_ns.saturating_sub(ns)))
        }
        FsyncPolicy::Off => 0,
    }
}

/// The writeback age of images built with `opts`, if they count written-back data.
fn writeback_ns(opts: &ImageOptions) -> Option<u64> {
    opts.writeback.then_some(opts.dirty_expire_ns)
}

/// Checks every image of `run` for `opts`: strict and lenient recovery both yield a prefix
/// (strict refuses only reorder holes under `no`), and nothing `promise(cut_ns)` promised at
/// the cut is lost unless `expect_loss`.
fn check_images(
    run: &Run,
    opts: &ImageOptions,
    promise: impl Fn(u64) -> Lsn,
    expect_loss: bool,
) -> Tally {
    let policy = run.policy;
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
        let promise = promise(image.cut_ns);
        tally.max_promised = tally.max_promised.max(promise);
        if lenient < promise {
            tally.below_promise += 1;
            if !expect_loss {
                image.keep();
                panic!(
                    "lost-acked: recovered {lenient} < promised {promise} at the cut\n{}",
                    image.description
                );
            }
        }
        tally.recovered.push(lenient);
        if image.cut_ns < run.final_sync_ns {
            tally.before_final_sync.push(lenient);
        }
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
                dirty_expire_ns: TEST_DIRTY_EXPIRE_NS,
                ..ImageOptions::new(variant)
            };
            let t = check_images(
                &run,
                &opts,
                |cut| promised(&run, policy, writeback_ns(&opts), cut),
                false,
            );
            let mut distinct = t.recovered.clone();
            distinct.sort_unstable();
            distinct.dedup();
            eprintln!(
                "{kind} {policy} {variant} writeback={writeback}: {} images, {} distinct LSNs \
                 recovered, most promised {}",
                t.images,
                distinct.len(),
                t.max_promised
            );
            assert!(t.images > 0);
            // The images span the run: a crash at the start recovers nothing.
            assert!(t.recovered.contains(&0), "{variant}: {t:?}");
            // check_images held every image to the policy's promise; that check could fail
            // only where something was promised: always, and with writeback every policy
            // (commands older than the expiry).
            if policy == FsyncPolicy::Always || writeback {
                assert!(t.max_promised > 0, "{variant} {policy}: {t:?}");
            }
            // Every run ends with a sync: the image at the end recovers every command.
            assert!(t.recovered.contains(&commands), "{variant} {policy}: {t:?}");
            if policy == FsyncPolicy::No && variant == Variant::PowerLoss && !writeback {
                assert!(
                    t.before_final_sync.iter().all(|&r| r == 0),
                    "nothing is synced under `no` before the final sync: {t:?}"
                );
            }
            if variant != Variant::PowerLoss && policy != FsyncPolicy::Always {
                assert!(
                    t.before_final_sync.iter().any(|&r| r > 0),
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

/// 20 spread power-loss images of `run`, held to what `contract` promises with writeback at
/// `writeback_ns` (losses expected: the companions of the promise checks).
fn power_loss_against(run: &Run, contract: FsyncPolicy, writeback_ns: Option<u64>) -> Tally {
    let opts = ImageOptions {
        states: 20,
        ..ImageOptions::new(Variant::PowerLoss)
    };
    check_images(
        run,
        &opts,
        |cut| promised(run, contract, writeback_ns, cut),
        true,
    )
}

/// The checker can fail: an engine that acknowledges under `always` without syncing is caught
/// losing acknowledged commands.
#[test]
fn broken_ack_before_sync_is_caught() {
    for kind in [BackendKind::Pwrite, BackendKind::Uring] {
        let run = record_run(kind, FsyncPolicy::Always, Prealloc::None, 32, true);
        let t = power_loss_against(&run, FsyncPolicy::Always, None);
        assert!(
            t.below_promise > 0,
            "{kind}: no image showed the broken engine losing acknowledged commands: {t:?}"
        );
    }
}

/// The companion of the writeback promise check: images built without writeback, from a
/// run that syncs only at its end (policy `no`), fall short of what writeback promises, so
/// holding images with writeback to it can fail.
#[test]
fn writeback_promise_check_catches_images_without_writeback() {
    let run = record_run(
        BackendKind::Pwrite,
        FsyncPolicy::No,
        Prealloc::None,
        48,
        false,
    );
    let t = power_loss_against(&run, FsyncPolicy::No, Some(TEST_DIRTY_EXPIRE_NS));
    assert!(
        t.below_promise > 0 && t.max_promised > 0,
        "unsynced data that was never written back must fall short of the writeback promise: {t:?}"
    );
}

/// Same seed, same result: the images of one trace, built twice with the same seed, get the
/// same verdicts from the crash lab's judge for every image fault; the companion: another seed
/// gives other images (so the comparison can fail).
#[test]
fn image_verdicts_repeat_for_the_same_seed() {
    use durlab_harness::crashlab::verdict::recover_and_judge;
    use durlab_harness::oracle::Oracle;

    let run = record_run(
        BackendKind::Pwrite,
        FsyncPolicy::EverySec,
        Prealloc::None,
        48,
        false,
    );
    let oracle = Oracle::new(run.workload.clone());
    let judged = |variant: Variant, seed: u64, round: &str| -> Vec<String> {
        let opts = ImageOptions {
            states: 6,
            seed,
            ..ImageOptions::new(variant)
        };
        let out = run
            ._tmp
            .path()
            .join(format!("same-{variant}-{seed}-{round}"));
        crash_images(&run.trace, &run.data, &opts, &out)
            .unwrap()
            .map(|image| {
                let image = image.unwrap();
                let promise = promised(&run, FsyncPolicy::EverySec, None, image.cut_ns);
                let config = EngineConfig::new(&image.dir).policy(FsyncPolicy::EverySec);
                let j = recover_and_judge(config, &oracle, promise, run.acks.len() as Lsn);
                format!(
                    "op {} r {} {} promised {promise}",
                    image.cut_op, j.recovered_lsn, j.verdict
                )
            })
            .collect()
    };
    let mut differs = false;
    for variant in Variant::ALL {
        let first = judged(variant, 7, "a");
        assert!(first.len() >= 6, "{variant}: {first:?}");
        assert_eq!(first, judged(variant, 7, "b"), "{variant}");
        differs |= first != judged(variant, 8, "c");
    }
    assert!(differs, "another seed must give other crash states");
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

/// Recoveries that resume from replay bases shared by a trace's images (as the crash lab runs
/// them, [`durlab_harness::crashlab::bases::Bases`]: the closed engine's keyspace kept, the
/// least recently used base evicted) give every image exactly the verdict, LSN and detail of a
/// recovery from the log's start, for every image fault, judged in cut order (the crash lab's
/// for power-loss and reorder) and by size (its order for torn and prefix); the companion: an
/// image whose log differs from a base inside the base's bytes (its first record, or the base's last byte) is
/// never resumed from that base and gets the plain path's result.
#[test]
fn replay_bases_give_the_verdicts_of_a_recovery_from_the_start() {
    use durlab_engine::aof::LOG_FILE_NAME;
    use durlab_harness::crashlab::bases::Bases;
    use durlab_harness::crashlab::verdict::{Recovered, recover, recover_from};
    use durlab_harness::oracle::Oracle;

    let run = record_run(
        BackendKind::Pwrite,
        FsyncPolicy::EverySec,
        Prealloc::None,
        240,
        false,
    );
    let oracle = Oracle::new(run.workload.clone());
    let issued = run.acks.len() as Lsn;
    let config = |dir: &Path| EngineConfig::new(dir).policy(FsyncPolicy::EverySec);
    let shown = |r: &Recovered, promise: Lsn| {
        let j = r.judge(promise);
        format!("r {} {} {}", j.recovered_lsn, j.verdict, j.detail)
    };
    for variant in Variant::ALL {
        let opts = ImageOptions {
            states: 40,
            seed: 7,
            ..ImageOptions::new(variant)
        };
        let out = run._tmp.path().join(format!("bases-{variant}"));
        let images = crash_images(&run.trace, &run.data, &opts, &out).unwrap();
        let n = images.cut_ops().len();
        // In cut order, and by size.
        let mut by_size: Vec<usize> = (0..n).collect();
        by_size.sort_by_key(|&i| (images.prepare(i).size_bytes(), i));
        for order in [(0..n).collect::<Vec<usize>>(), by_size] {
            // A base from every recovery that replayed a record of its own.
            let bases = Bases::with_new_base_records(1);
            let mut judged = 0;
            for i in order {
                let image = images.build(i).unwrap();
                let promise = promised(&run, FsyncPolicy::EverySec, None, image.cut_ns);
                // Recovery settles a torn tail in place: each path gets its own copy.
                let copy = out.join(format!("plain-{}", image.cut_op));
                copy_dir(&image.dir, &copy);
                let plain = recover(config(&copy), &oracle, issued);
                std::fs::remove_dir_all(&copy).unwrap();
                let resumed_before = bases.resumed();
                let cached = recover_from(config(&image.dir), &oracle, issued, Some(&bases));
                assert_eq!(
                    shown(&cached, promise),
                    shown(&plain, promise),
                    "{variant}, cut at op {}",
                    image.cut_op
                );
                judged += 1;
                if bases.resumed() == resumed_before {
                    continue;
                }
                // This image resumed from a base: the same log with a byte changed inside the
                // bytes that base spans must not.
                let log = std::fs::read(image.dir.join(LOG_FILE_NAME)).unwrap();
                let base_len = bases
                    .candidates(log.len() as u64)
                    .first()
                    .map(|b| b.len_bytes())
                    .expect("a base this log may start with");
                for at in [66, base_len as usize - 1] {
                    let mut changed = log.clone();
                    changed[at] ^= 0x5A;
                    let dir = out.join(format!("changed-{}-{at}", image.cut_op));
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(dir.join(LOG_FILE_NAME), &changed).unwrap();
                    let plain = shown(&recover(config(&dir), &oracle, issued), promise);
                    std::fs::write(dir.join(LOG_FILE_NAME), &changed).unwrap();
                    let resumed_before = bases.resumed();
                    let cached = shown(
                        &recover_from(config(&dir), &oracle, issued, Some(&bases)),
                        promise,
                    );
                    assert_eq!(cached, plain, "{variant}, op {}, byte {at}", image.cut_op);
                    // Every base spans byte 66 (the header is 64 bytes, and a base holds at least
                    // one record); a shorter base may still serve a change past it.
                    assert!(
                        at != 66 || bases.resumed() == resumed_before,
                        "{variant}: a log differing in its first record resumed from a base"
                    );
                    std::fs::remove_dir_all(&dir).unwrap();
                }
            }
            assert!(judged >= 40, "{variant}: {judged} images");
            assert!(
                bases.resumed() > 0,
                "{variant}: no image resumed from a base, the test shows nothing"
            );
        }
    }
}

/// Every image of `run` (30 spread states per image fault, seed 11) built as the crash lab
/// builds it ([`CrashImages::build`]: each file from snapshots of its history) against the
/// plain path ([`CrashImages::build_plain`]: every operation applied again from an empty
/// file): the images that differ in any file's bytes, or in the verdict, recovered LSN or
/// detail the crash lab's judge gives them, after `spoil` ran on each built image (returning
/// whether it changed it); and how many images were compared and spoiled.
fn differences_from_the_plain_path(
    run: &Run,
    spoil: &dyn Fn(&Path) -> bool,
) -> (Vec<String>, usize, usize) {
    use durlab_harness::crashlab::verdict::recover_and_judge;
    use durlab_harness::oracle::Oracle;

    let oracle = Oracle::new(run.workload.clone());
    let judge = |image: &CrashImage| {
        let promise = promised(run, FsyncPolicy::EverySec, None, image.cut_ns);
        let config = EngineConfig::new(&image.dir).policy(FsyncPolicy::EverySec);
        let j = recover_and_judge(config, &oracle, promise, run.acks.len() as Lsn);
        format!("r {} {} {}", j.recovered_lsn, j.verdict, j.detail)
    };
    let (mut differ, mut compared, mut spoiled) = (Vec::new(), 0, 0);
    for variant in Variant::ALL {
        let opts = ImageOptions {
            states: 30,
            seed: 11,
            ..ImageOptions::new(variant)
        };
        let out = run._tmp.path().join(format!("plain-{variant}"));
        let images = crash_images(&run.trace, &run.data, &opts, &out).unwrap();
        for i in 0..images.cut_ops().len() {
            let (fast, plain) = (images.build(i).unwrap(), images.build_plain(i).unwrap());
            spoiled += usize::from(spoil(&fast.dir));
            compared += 1;
            let what = format!("{variant} cut at op {}", fast.cut_op);
            if image_files(&fast) != image_files(&plain) {
                differ.push(format!("{what}: bytes"));
            }
            let (a, b) = (judge(&fast), judge(&plain));
            if a != b {
                differ.push(format!("{what}: {a} against {b}"));
            }
        }
    }
    (differ, compared, spoiled)
}

/// The crash lab's images of a real run spanning several snapshots of its log's history
/// hold the plain path's bytes and get its verdicts, for every image fault; the companion: a
/// stale byte (the log's last, flipped) in each built image is caught.
#[test]
fn snapshot_images_give_the_bytes_and_verdicts_of_the_plain_path() {
    use durlab_engine::aof::LOG_FILE_NAME;

    let run = record_run(
        BackendKind::Pwrite,
        FsyncPolicy::EverySec,
        Prealloc::None,
        1200,
        false,
    );
    let (differ, compared, _) = differences_from_the_plain_path(&run, &|_| false);
    assert!(compared >= 4 * 30, "{compared} images compared");
    assert!(differ.is_empty(), "{} differ: {differ:?}", differ.len());

    let flip_last_log_byte = |dir: &Path| {
        let log = dir.join(LOG_FILE_NAME);
        let Ok(mut bytes) = std::fs::read(&log) else {
            return false;
        };
        let Some(last) = bytes.last_mut() else {
            return false;
        };
        *last ^= 0x5A;
        std::fs::write(&log, &bytes).unwrap();
        true
    };
    let (differ, compared, spoiled) = differences_from_the_plain_path(&run, &flip_last_log_byte);
    assert!(spoiled >= compared / 2, "{spoiled} of {compared} spoiled");
    let caught = differ.iter().filter(|d| d.ends_with(": bytes")).count();
    assert_eq!(caught, spoiled, "{differ:?}");
}
