//! Synthetic traces: each variant's rules checked byte by byte.

use std::path::{Path, PathBuf};

use durlab_engine::backend::recording::{Entry, Op, Segment, Trace};

use super::*;

const ROOT: &str = "/r";

fn p(name: &str) -> PathBuf {
    Path::new(ROOT).join(name)
}

fn trace(ops: Vec<Op>) -> Trace {
    Trace {
        start_ns: 1,
        entries: ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| Entry {
                seq: i as u64,
                t_ns: 10 + i as u64,
                op,
            })
            .collect(),
        torn_tail: None,
    }
}

fn write(offset: u64, bytes: Vec<u8>) -> Op {
    Op::Write {
        file: 0,
        offset,
        data: vec![Segment::Bytes(bytes)],
    }
}

fn sync_data(begin_seq: u64) -> Op {
    Op::SyncData {
        file: 0,
        begin_seq,
        begin_ns: 0,
    }
}

fn sync_dir(begin_seq: u64) -> Op {
    Op::SyncDir {
        dir: ROOT.into(),
        begin_seq,
        begin_ns: 0,
    }
}

/// A file `f` whose name is durable: entries 0 and 1.
fn durable_file() -> Vec<Op> {
    vec![
        Op::Create {
            file: 0,
            path: p("f"),
        },
        sync_dir(1),
    ]
}

/// The images of trace `t` (paths under [`ROOT`]) with `opts`, written under `dir`.
fn images_of(t: Trace, opts: &ImageOptions, dir: &Path) -> CrashImages {
    crash_images_from(t, Path::new("t"), Path::new(ROOT), opts, dir).unwrap()
}

/// Content of `f` in every image of `ops` at cut `k`, one per seed.
fn contents(ops: Vec<Op>, variant: Variant, k: u64, seeds: u64) -> Vec<Vec<u8>> {
    let tmp = tempfile::tempdir().unwrap();
    let t = trace(ops);
    (0..seeds)
        .map(|seed| {
            let opts = ImageOptions {
                seed,
                states: 0,
                ..ImageOptions::new(variant)
            };
            let mut images = images_of(t.clone(), &opts, tmp.path());
            let image = images
                .by_ref()
                .map(Result::unwrap)
                .find(|i| i.cut_op == k)
                .expect("the end is always a cut");
            std::fs::read(image.dir.join("f")).unwrap()
        })
        .collect()
}

#[test]
fn a_sync_covers_only_writes_that_returned_before_it_began() {
    let mut ops = durable_file();
    ops.push(write(0, vec![1; 10])); // 2
    ops.push(write(10, vec![2; 10])); // 3: raced with the sync below
    ops.push(sync_data(3)); // 4
    let got = contents(ops, Variant::PowerLoss, 5, 1);
    assert_eq!(got[0], vec![1; 10]);
}

/// Appends of 1000 bytes of value i + 1 at i * 1000, none synced.
fn appends(n: u8) -> Vec<Op> {
    let mut ops = durable_file();
    for i in 0..n {
        ops.push(write(u64::from(i) * 1000, vec![i + 1; 1000]));
    }
    ops
}

fn all_appends(n: u8) -> Vec<u8> {
    (0..n).flat_map(|i| vec![i + 1; 1000]).collect()
}

#[test]
fn prefix_keeps_whole_writes_in_order() {
    let full = all_appends(6);
    let got = contents(appends(6), Variant::Prefix, 8, 40);
    for c in &got {
        assert_eq!(c.len() % 1000, 0);
        assert_eq!(&full[..c.len()], &c[..]);
    }
    let mut lens: Vec<usize> = got.iter().map(Vec::len).collect();
    lens.sort_unstable();
    lens.dedup();
    assert!(lens.len() > 3, "seeds give different prefixes: {lens:?}");
}

#[test]
fn torn_cuts_the_last_write_at_a_sector_boundary() {
    let full = all_appends(6);
    let got = contents(appends(6), Variant::Torn, 8, 60);
    let mut rests = [0usize; 3];
    for c in &got {
        let diverge = c.iter().zip(&full).position(|(a, b)| a != b);
        let p = diverge.unwrap_or(c.len().min(full.len()));
        let write_start = p / 1000 * 1000;
        assert!(
            p % 512 == 0 || p == write_start,
            "surviving bytes end at {p}, neither a sector boundary nor a write start"
        );
        let end = (write_start + 1000).min(full.len());
        assert!(c.len() <= end, "nothing after the torn write survives");
        let rest = &c[p..];
        if rest.is_empty() {
            rests[2] += 1; // old bytes (here: nothing) or torn at the end
        } else if rest.iter().all(|&b| b == 0) {
            rests[0] += 1;
        } else {
            rests[1] += 1;
        }
    }
    assert!(
        rests.iter().all(|&n| n > 0),
        "zeros, garbage, old: {rests:?}"
    );
}

#[test]
fn reorder_sectors_hold_page_cache_versions_only() {
    let mut ops = durable_file();
    ops.push(write(0, vec![1; 300])); // sector 0
    ops.push(write(300, vec![2; 300])); // sectors 0 and 1
    let got = contents(ops, Variant::Reorder, 4, 200);
    let mut seen = std::collections::BTreeSet::new();
    for c in &got {
        let mut c = c.clone();
        c.resize(600, 0);
        let s0 = (c[0], c[299], c[300], c[511]);
        assert!(
            [(0, 0, 0, 0), (1, 1, 0, 0), (1, 1, 2, 2)].contains(&s0),
            "sector 0 in a state the page cache never held: {s0:?}"
        );
        seen.insert((s0, c[512]));
    }
    assert!(
        seen.contains(&((0, 0, 0, 0), 2)),
        "a hole: sector 1 survived without sector 0 ({seen:?})"
    );
    assert!(seen.len() >= 5, "{seen:?}");
}

#[test]
fn cut_points_surround_syncs_and_renames() {
    let mut ops = durable_file();
    ops.push(write(0, vec![1; 10])); // 2
    ops.push(sync_data(3)); // 3
    ops.push(Op::Rename {
        from: p("f"),
        to: p("g"),
    }); // 4
    ops.push(write(0, vec![1; 10])); // 5
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImageOptions {
        states: 0,
        ..ImageOptions::new(Variant::PowerLoss)
    };
    let images = images_of(trace(ops), &opts, tmp.path());
    assert_eq!(images.cut_ops(), &[1, 2, 3, 4, 5, 6]);
    let opts = ImageOptions {
        states: 1000,
        ..opts
    };
    let images = images_of(trace(durable_file()), &opts, tmp.path());
    assert_eq!(images.cut_ops(), &[0, 1, 2], "every point, once");
}

/// Cuts before `first_cut_ns` (where a policy's bound cannot be reached yet) are skipped,
/// except around directory syncs and renames and at the end; with 0 every cut is taken.
#[test]
fn cut_points_start_at_the_first_cut_time() {
    let mut ops = durable_file(); // 0 create, 1 directory sync
    for i in 0..2u64 {
        ops.push(write(i * 10, vec![1; 10])); // 2, 4
        ops.push(sync_data(3 + 2 * i)); // 3, 5
    }
    ops.push(write(20, vec![2; 10])); // 6
    let tmp = tempfile::tempdir().unwrap();
    let cuts = |states: usize, first_cut_ns: u64| {
        let opts = ImageOptions {
            states,
            first_cut_ns,
            ..ImageOptions::new(Variant::PowerLoss)
        };
        images_of(trace(ops.clone()), &opts, tmp.path())
            .cut_ops()
            .to_vec()
    };
    assert_eq!(cuts(0, 0), [1, 2, 3, 4, 5, 6, 7]);
    // Entry k - 1 is at 10 + (k - 1) ns: cut 5 is the first at 14 ns or later.
    assert_eq!(cuts(0, 14), [1, 2, 5, 6, 7]);
    assert_eq!(cuts(1000, 14), [1, 2, 5, 6, 7], "spread states too");
    assert_eq!(cuts(1000, 0), [0, 1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn operations_outside_the_root_are_refused_by_entry() {
    let ops = vec![Op::Create {
        file: 0,
        path: "/elsewhere/f".into(),
    }];
    let tmp = tempfile::tempdir().unwrap();
    let err = crash_images_from(
        trace(ops),
        Path::new("run.trace"),
        Path::new(ROOT),
        &ImageOptions::new(Variant::PowerLoss),
        tmp.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("run.trace") && err.contains("entry 0") && err.contains("/elsewhere/f"),
        "{err}"
    );
}

/// The names (files and directories, relative, directories with a trailing `/`) of the last
/// image of `ops` under `dir_model`.
fn names_at_end(ops: Vec<Op>, dir_model: DirModel) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let n = ops.len() as u64;
    let opts = ImageOptions {
        states: 0,
        dir_model,
        ..ImageOptions::new(Variant::PowerLoss)
    };
    let image = images_of(trace(ops), &opts, tmp.path())
        .map(Result::unwrap)
        .find(|i| i.cut_op == n)
        .expect("the end is a cut");
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let rel = e.path().strip_prefix(base).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(&e.path(), base, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(&image.dir, &image.dir, &mut out);
    out
}

/// `mkdir d`, a file `d/f` created, written and synced with its directory `d` synced too:
/// only the entry of `d` in the root is unsynced unless `sync_root`.
fn file_in_new_dir(sync_root: bool) -> Vec<Op> {
    let mut ops = vec![
        Op::MkDir { path: p("d") },
        Op::Create {
            file: 0,
            path: p("d/f"),
        },
        write(0, vec![7; 10]),
        sync_data(3),
        Op::SyncDir {
            dir: p("d"),
            begin_seq: 4,
            begin_ns: 0,
        },
    ];
    if sync_root {
        ops.push(sync_dir(5));
    }
    ops
}

#[test]
fn a_file_below_a_directory_whose_entry_was_never_synced_is_lost_with_it() {
    // POSIX: the entry of `d` lives in the root, which nobody synced: `d` and `d/f` are gone
    // although `d/f` and `d` themselves were synced (what Redis 7 does with appendonlydir).
    assert!(names_at_end(file_in_new_dir(false), DirModel::Pessimistic).is_empty());
    assert_eq!(
        names_at_end(file_in_new_dir(true), DirModel::Pessimistic),
        ["d/", "d/f"]
    );
    // ext4's journal commits the mkdir with the first later sync of anything.
    assert_eq!(
        names_at_end(file_in_new_dir(false), DirModel::Ext4Ordered),
        ["d/", "d/f"]
    );
}

#[test]
fn links_and_removed_directories_follow_their_directory_syncs() {
    let mut ops = durable_file(); // 0, 1
    ops.push(write(0, vec![3; 4])); // 2
    ops.push(sync_data(3)); // 3
    ops.push(Op::MkDir { path: p("e") }); // 4: made and synced, then removed unsynced
    ops.push(sync_dir(5)); // 5
    ops.push(Op::Link {
        from: p("f"),
        to: p("g"),
    }); // 6
    ops.push(Op::RemoveDir { path: p("e") }); // 7
    ops.push(Op::MkDir { path: p("h") }); // 8: never synced
    assert_eq!(
        names_at_end(ops.clone(), DirModel::Pessimistic),
        ["e/", "f"]
    );
    ops.push(sync_dir(9)); // 9
    assert_eq!(names_at_end(ops, DirModel::Pessimistic), ["f", "g", "h/"]);
}

/// Every image of `ops` under `variant` (all cuts): cut op, key, and `f`'s bytes (`None`: no
/// `f` in the image).
fn keyed(ops: Vec<Op>, variant: Variant) -> Vec<(u64, u128, Option<Vec<u8>>)> {
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImageOptions {
        states: 0,
        ..ImageOptions::new(variant)
    };
    let images = images_of(trace(ops), &opts, tmp.path());
    (0..images.cut_ops().len())
        .map(|i| {
            let prepared = images.prepare(i);
            let (cut, key) = (prepared.image().cut_op, prepared.key());
            let image = prepared.write().unwrap();
            let bytes = std::fs::read(image.dir.join("f")).ok();
            (cut, key, bytes)
        })
        .collect()
}

#[test]
fn image_keys_are_equal_exactly_when_the_images_are_byte_identical() {
    // Two synced appends, then three unsynced ones: every power-loss cut after the sync holds
    // the same bytes, so one recovery serves them all.
    let mut ops = appends(2);
    ops.push(sync_data(4));
    ops.extend((2..5u8).map(|i| write(u64::from(i) * 1000, vec![i + 1; 1000])));
    let images = keyed(ops.clone(), Variant::PowerLoss);
    assert!(images.len() >= 4, "cuts: {:?}", images.len());
    for (a_cut, a_key, a) in &images {
        for (b_cut, b_key, b) in &images {
            assert_eq!(
                a_key == b_key,
                a == b,
                "cuts {a_cut} and {b_cut}: keys equal {} but bytes equal {}",
                a_key == b_key,
                a == b
            );
        }
    }
    let synced: Vec<_> = images.iter().filter(|(cut, ..)| *cut > 4).collect();
    assert!(synced.len() >= 2);
    assert!(synced.iter().all(|(_, key, _)| *key == synced[0].1));
    // The known-bad case: images that differ by bytes the engine would read must never share
    // a key (here prefix images, which keep different numbers of the unsynced appends).
    let prefixes = keyed(ops, Variant::Prefix);
    let mut distinct: Vec<(u128, &Option<Vec<u8>>)> =
        prefixes.iter().map(|(_, k, b)| (*k, b)).collect();
    distinct.sort();
    distinct.dedup();
    let keys: std::collections::BTreeSet<u128> = distinct.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys.len(), distinct.len(), "one key per distinct content");
}

/// A trace over several snapshots of `f` ([`history::SNAPSHOT_OPS`]): appends of 100 bytes
/// with a data sync every 7 and a rewrite of its first bytes every 50; beside it `g`, whose
/// unsynced writes are followed by a `set_len` that ext4's journal commits with `f`'s next
/// sync (so `g`'s durable operations are not a prefix of its operations there); and a
/// truncation of `f` halfway.
fn snapshot_trace() -> Vec<Op> {
    let mut ops = durable_file();
    ops.push(Op::Create {
        file: 1,
        path: p("g"),
    });
    ops.push(sync_dir(ops.len() as u64));
    let g_write = |offset: u64, b: u8| Op::Write {
        file: 1,
        offset,
        data: vec![Segment::Bytes(vec![b; 300])],
    };
    let writes = 3 * history::SNAPSHOT_OPS as u64;
    for i in 0..writes {
        ops.push(write(i * 100, vec![(i % 251) as u8 + 1; 100]));
        if i % 50 == 49 {
            ops.push(write(8, vec![0xEE ^ (i as u8); 24]));
        }
        if i % 7 == 6 {
            ops.push(sync_data(ops.len() as u64));
        }
        if i % 97 == 0 {
            ops.push(g_write(i * 3, i as u8));
            ops.push(Op::SetLen {
                file: 1,
                len: i * 3 + 200,
            });
        }
        if i == writes / 2 {
            ops.push(Op::SetLen {
                file: 0,
                len: i * 50,
            });
        }
    }
    ops
}

/// The images of [`snapshot_trace`] (240 cuts around syncs, and 60 spread) whose snapshot
/// path ([`CrashImages::prepare`]) differs from the plain path in key (every byte, name and
/// size), description or size ([`CrashImages::size_bytes`]), per variant, directory model and
/// writeback, over two seeds; `spoil` runs on each set of images first.
fn snapshot_mismatches(spoil: &dyn Fn(&CrashImages)) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let mut bad = Vec::new();
    let mut compared = 0;
    for variant in Variant::ALL {
        for (dir_model, writeback) in [
            (DirModel::Pessimistic, false),
            (DirModel::Ext4Ordered, false),
            (DirModel::Pessimistic, true),
        ] {
            for seed in 0..2 {
                let opts = ImageOptions {
                    seed,
                    states: 60,
                    dir_model,
                    writeback,
                    dirty_expire_ns: 400,
                    ..ImageOptions::new(variant)
                };
                let images = images_of(trace(snapshot_trace()), &opts, tmp.path());
                spoil(&images);
                for i in 0..images.cut_ops().len() {
                    let fast = images.prepare(i);
                    let plain = images.prepare_as(i, Build::Plain);
                    compared += 1;
                    if fast.key() != plain.key()
                        || fast.image().description != plain.image().description
                        || images.size_bytes(i) != plain.size_bytes()
                    {
                        bad.push(format!(
                            "{variant} {dir_model} writeback {writeback} seed {seed} cut {}",
                            fast.image().cut_op
                        ));
                    }
                }
            }
        }
    }
    assert!(compared > 4 * 3 * 2 * 250, "{compared} images compared");
    bad
}

#[test]
fn snapshots_give_the_bytes_of_the_plain_path() {
    let bad = snapshot_mismatches(&|_| {});
    assert!(
        bad.is_empty(),
        "{} differ, first: {:?}",
        bad.len(),
        bad.first()
    );
}

/// The companion: a snapshot with one stale byte (inside `f`'s second snapshot, which every
/// later image holds) is caught.
#[test]
fn a_stale_snapshot_byte_is_caught() {
    let bad = snapshot_mismatches(&|images| {
        images.model.history.spoil(&images.model.ops, 0, 1, 4_000);
    });
    assert!(bad.len() > 100, "only {} images differ", bad.len());
}

#[test]
fn the_plain_path_writes_the_same_files() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImageOptions {
        seed: 3,
        states: 20,
        ..ImageOptions::new(Variant::Torn)
    };
    let images = images_of(trace(snapshot_trace()), &opts, tmp.path());
    for i in 0..images.cut_ops().len() {
        let (fast, plain) = (images.build(i).unwrap(), images.build_plain(i).unwrap());
        assert_ne!(fast.dir, plain.dir);
        for name in ["f", "g"] {
            assert_eq!(
                std::fs::read(fast.dir.join(name)).ok(),
                std::fs::read(plain.dir.join(name)).ok(),
                "cut {} file {name}",
                fast.cut_op
            );
        }
    }
}

/// A file of more pages than one `writev` takes, with a hole and a short last page, is
/// written byte for byte.
#[test]
fn long_runs_of_pages_are_written_whole() {
    let mut ops = durable_file();
    let big: Vec<u8> = (0..1500 * 4096u32).map(|i| (i % 253) as u8 + 1).collect();
    ops.push(write(0, big.clone()));
    ops.push(write(1600 * 4096, vec![7; 3000]));
    ops.push(sync_data(ops.len() as u64));
    let mut want = big;
    want.resize(1600 * 4096, 0);
    want.extend(vec![7; 3000]);
    let got = contents(ops, Variant::PowerLoss, 5, 1);
    assert!(got[0] == want, "the image's f differs from its writes");
}

/// Not a check: the thread CPU time of building the images of a policy-`no` log (every
/// image's pending list is the whole trace: 100,000 appends of 40 to 80 bytes), by step, for
/// comparing the cost of image building before and after a change on a busy machine. Run
/// with `cargo test --release -p durlab-harness --lib image_building_cost -- --ignored
/// --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn image_building_cost() {
    use nix::sys::resource::{UsageWho, getrusage};
    let cpu = || {
        let u = getrusage(UsageWho::RUSAGE_THREAD).unwrap();
        let t = |v: nix::sys::time::TimeVal| v.tv_sec() as f64 + v.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    };
    let mut ops = durable_file();
    let mut at = 0u64;
    let mut r = crate::workload::rng::SplitMix64::new(7);
    for i in 0..100_000u32 {
        let len = r.random_range(40..80usize);
        let mut rec = format!("*3\r\n$6\r\nINCRBY\r\n$8\r\nc:{i:06}\r\n$1\r\n1\r\n").into_bytes();
        rec.resize(len, b'.');
        ops.push(write(at, rec));
        at += len as u64;
    }
    let t = trace(ops);
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    for variant in [Variant::Reorder, Variant::Torn] {
        let opts = ImageOptions {
            seed: 3,
            states: 400,
            ..ImageOptions::new(variant)
        };
        let images = images_of(t.clone(), &opts, tmp.path());
        let n = images.cut_ops().len();
        let (mut size, mut prepare, mut key, mut write) = (0.0, 0.0, 0.0, 0.0);
        let mut keys = 0u128;
        for i in 0..n {
            let t0 = cpu();
            std::hint::black_box(images.size_bytes(i));
            let t1 = cpu();
            let p = images.prepare(i);
            let t2 = cpu();
            keys ^= p.key();
            let t3 = cpu();
            drop(p.write().unwrap());
            let t4 = cpu();
            size += t1 - t0;
            prepare += t2 - t1;
            key += t3 - t2;
            write += t4 - t3;
        }
        let ms = |s: f64| s * 1e3 / n as f64;
        println!(
            "{variant}: {n} images, ms per image: size_bytes {:.2}, prepare {:.2}, key {:.2}, \
             write {:.2}, total {:.2} (keys {keys:032x})",
            ms(size),
            ms(prepare),
            ms(key),
            ms(write),
            ms(size + prepare + key + write)
        );
    }
}
