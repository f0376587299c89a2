//! Append + acknowledgement per policy × backend × record size × preallocation, group commit,
//! and replay speed; each next to a raw baseline measured in the same run (a bare pwrite or
//! pwrite+fdatasync loop on the same kind of file, no engine), so overhead reads as a ratio.
//!
//! Run: `cargo bench -p durlab-engine --bench aof` (filter with a trailing substring, e.g.
//! `-- always/`). `scripts/bench-ratios.py` turns criterion's estimates into ratio tables.
//!
//! Files are rotated every `ROTATE_BYTES` outside the timed region, so a run writes a bounded
//! amount of data, and preallocation chunks (64 MiB) are laid out at open, as the raw baseline's
//! file is before its loop.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use durlab_engine::rawio::{self, FileKind, Limit};
use durlab_engine::{BackendKind, Command, Engine, EngineConfig, FsyncPolicy, Prealloc};

const RECORD_SIZES: [usize; 3] = [64, 1024, 16 << 10];
const ROTATE_BYTES: u64 = 32 << 20;
/// Record header (16) plus the SET encoding's opcode and length fields, approximately.
const RECORD_OVERHEAD_BYTES: usize = 32;

fn file_kind(p: Prealloc) -> FileKind {
    match p {
        Prealloc::None => FileKind::Append,
        Prealloc::Fallocate => FileKind::Fallocate,
        Prealloc::Zero => FileKind::Zeroed,
    }
}

fn value_len(record_bytes: usize) -> usize {
    record_bytes.saturating_sub(RECORD_OVERHEAD_BYTES).max(1)
}

/// An engine in a temporary directory, replaced by a fresh one (untimed) every ROTATE_BYTES.
struct Rig {
    config: EngineConfig,
    engine: Option<Engine>,
    _dir: Option<tempfile::TempDir>,
    value: Vec<u8>,
    n: u64,
}

impl Rig {
    fn new(
        policy: FsyncPolicy,
        backend: BackendKind,
        prealloc: Prealloc,
        record_bytes: usize,
    ) -> Rig {
        let mut config = EngineConfig::new("")
            .policy(policy)
            .backend(backend)
            .prealloc(prealloc);
        config.everysec_interval_ms = 1000;
        let mut rig = Rig {
            config,
            engine: None,
            _dir: None,
            value: vec![0xA5; value_len(record_bytes)],
            n: 0,
        };
        rig.rotate();
        rig
    }

    fn rotate(&mut self) {
        self.engine = None;
        let dir = tempfile::tempdir_in(bench_dir()).expect("tempdir");
        self.config.dir = dir.path().join("data");
        self.engine = Some(Engine::open(self.config.clone()).expect("open").0);
        self._dir = Some(dir);
    }

    fn command(&mut self) -> Command {
        self.n += 1;
        Command::Set {
            key: format!("key:{}", self.n % 100_000).into_bytes(),
            value: self.value.clone(),
        }
    }

    /// Runs `iters` acknowledged SETs from `writers` threads; returns the timed part.
    fn run(&mut self, iters: u64, writers: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let engine = self.engine.clone().expect("engine");
            let room = ROTATE_BYTES.saturating_sub(engine.stats().bytes_written)
                / (self.value.len() as u64 + 32);
            if room == 0 {
                self.rotate();
                continue;
            }
            let n = left.min(room.max(1));
            let cmds: Vec<Command> = (0..n).map(|_| self.command()).collect();
            total += timed_writers(&engine, cmds, writers);
            left -= n;
        }
        total
    }
}

fn timed_writers(engine: &Engine, cmds: Vec<Command>, writers: u64) -> Duration {
    if writers == 1 {
        let start = Instant::now();
        for c in cmds {
            engine.execute(c).expect("execute");
        }
        return start.elapsed();
    }
    let per = cmds.len().div_ceil(writers as usize).max(1);
    let mut chunks: Vec<Vec<Command>> = Vec::new();
    let mut it = cmds.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(per).collect());
    }
    let start = Instant::now();
    std::thread::scope(|s| {
        for chunk in chunks {
            s.spawn(move || {
                for c in chunk {
                    engine.execute(c).expect("execute");
                }
            });
        }
    });
    start.elapsed()
}

/// The raw loop on a fresh file of the same kind, re-prepared (untimed) every ROTATE_BYTES.
fn raw(kind: FileKind, record_bytes: usize, synced: bool, iters: u64) -> Duration {
    let dir = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let path = dir.path().join("raw");
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min((ROTATE_BYTES / record_bytes as u64).max(1));
        let file = rawio::prepare_file(&path, kind, 64 << 20).expect("prepare");
        let limit = Limit {
            ops: n,
            duration: Duration::from_secs(3600),
        };
        let run = if synced {
            rawio::pwrite_fdatasync_loop(&file, record_bytes, limit)
        } else {
            rawio::pwrite_loop(&file, record_bytes, limit)
        }
        .expect("raw loop");
        total += Duration::from_secs_f64(run.seconds);
        left -= n;
    }
    total
}

fn bench_dir() -> std::path::PathBuf {
    std::env::var_os("DURLAB_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir)
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

/// One writer: each policy against its raw floor, per backend × record size × preallocation.
fn append(c: &mut Criterion) {
    for size in RECORD_SIZES {
        let mut g = configure(c, &format!("append/{size}B"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("off", |b| {
            let mut rig = Rig::new(FsyncPolicy::Off, BackendKind::Pwrite, Prealloc::None, size);
            b.iter_custom(|iters| rig.run(iters, 1))
        });
        for prealloc in [Prealloc::None, Prealloc::Fallocate, Prealloc::Zero] {
            let kind = file_kind(prealloc);
            g.bench_function(BenchmarkId::new("raw-pwrite-fdatasync", kind.name()), |b| {
                b.iter_custom(|iters| raw(kind, size, true, iters))
            });
            g.bench_function(BenchmarkId::new("raw-pwrite", kind.name()), |b| {
                b.iter_custom(|iters| raw(kind, size, false, iters))
            });
            for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
                for backend in BackendKind::ALL {
                    if *backend == BackendKind::Mmap && prealloc == Prealloc::None {
                        continue; // refused: mmap stores only into preallocated space
                    }
                    let id = BenchmarkId::new(format!("{policy}/{backend}"), prealloc.name());
                    g.bench_function(id, |b| {
                        let mut rig = Rig::new(policy, *backend, prealloc, size);
                        b.iter_custom(|iters| rig.run(iters, 1))
                    });
                }
            }
        }
        g.finish();
    }
}

/// Many writers, 64 B records: group commit under `always`, batching under `everysec`/`no`,
/// against `off` with the same writers.
fn writers(c: &mut Criterion) {
    let mut g = configure(c, "writers/64B");
    g.throughput(Throughput::Elements(1));
    for n in [1u64, 8, 32] {
        g.bench_function(BenchmarkId::new("off", n), |b| {
            let mut rig = Rig::new(FsyncPolicy::Off, BackendKind::Pwrite, Prealloc::None, 64);
            b.iter_custom(|iters| rig.run(iters, n))
        });
        for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
            for backend in BackendKind::ALL {
                g.bench_function(BenchmarkId::new(format!("{policy}/{backend}"), n), |b| {
                    let mut rig = Rig::new(policy, *backend, Prealloc::Zero, 64);
                    b.iter_custom(|iters| rig.run(iters, n))
                });
            }
        }
    }
    g.finish();
}

/// Replay of a ~100 MB log (1 KiB records): open = read + verify + decode + apply.
fn replay(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let config = EngineConfig::new(dir.path().join("data")).policy(FsyncPolicy::No);
    let log_bytes = build_log(&config, 100_000_000);
    let mut g = c.benchmark_group("replay");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(log_bytes));
    g.bench_function("100MB-1KiB-records", |b| {
        b.iter(|| {
            let (_, report) = Engine::open(config.clone()).expect("open");
            assert!(report.records_replayed > 0);
        })
    });
    g.finish();
}

fn build_log(config: &EngineConfig, bytes: u64) -> u64 {
    let (engine, _) = Engine::open(config.clone()).expect("open");
    let value = vec![0x5Au8; value_len(1024)];
    let mut n = 0u64;
    while engine.stats().bytes_written < bytes {
        n += 1;
        engine
            .execute(Command::Set {
                key: format!("key:{}", n % 50_000).into_bytes(),
                value: value.clone(),
            })
            .expect("set");
    }
    engine.sync().expect("sync");
    std::fs::metadata(Path::new(&config.dir).join(durlab_engine::aof::LOG_FILE_NAME))
        .expect("stat")
        .len()
}

criterion_group!(benches, append, writers, replay);
criterion_main!(benches);
