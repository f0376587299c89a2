//! Snapshots, rewrite and hybrid recovery, each next to its baseline measured in the same run,
//! so the figures read as ratios.
//!
//! Run: `cargo bench -p durlab-engine --bench snapshot`. First a figures pass prints one line
//! per target (`DURLAB_BENCH_KEYS`, default 1,000,000 keys):
//! - snapshot write and load MB/s, and load time against replaying an AOF of the same state;
//! - rewrite duration, and recovery of `hybrid` after a rewrite against a single `aof` holding
//!   the same history (10 SETs per key);
//! - write latency p99 during a snapshot against without one, and peak RSS during the
//!   snapshot against the steady state (`/proc/self/status` VmHWM after resetting it through
//!   `/proc/self/clear_refs`).
//!
//! Then criterion measures snapshot write, load and rewrite at `DURLAB_BENCH_CRITERION_KEYS`
//! (default 200,000) keys. Skip the figures with `DURLAB_BENCH_FIGURES=0`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use durlab_engine::{Command, Engine, EngineConfig, FsyncPolicy, Persistence};

const VALUE_BYTES: usize = 100;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_dir() -> std::path::PathBuf {
    std::env::var_os("DURLAB_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir)
}

fn set(key: u64, round: u64) -> Command {
    let mut value = vec![b'v'; VALUE_BYTES];
    value[..8].copy_from_slice(&round.to_le_bytes());
    Command::Set {
        key: format!("key:{key:010}").into_bytes(),
        value,
    }
}

fn cfg(dir: &Path, mode: Persistence, policy: FsyncPolicy) -> EngineConfig {
    let mut c = EngineConfig::new(dir).persistence(mode).policy(policy);
    c.auto_rewrite_percentage = 0;
    c.everysec_interval_ms = 1000;
    c
}

/// Opens `config` and applies `writes` SETs: write `i` sets key `i % keys`.
fn fill(config: &EngineConfig, keys: u64, writes: u64) -> Engine {
    let engine = Engine::open(config.clone()).expect("open").0;
    for i in 0..writes {
        engine.execute(set(i % keys, i / keys)).expect("set");
    }
    engine
}

fn reopen_time(config: &EngineConfig) -> (Duration, u64) {
    let started = Instant::now();
    let (engine, report) = Engine::open(config.clone()).expect("reopen");
    let elapsed = started.elapsed();
    drop(engine);
    (elapsed, report.recovered_lsn)
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Snapshot write and load against replaying an AOF of the same state.
fn figures_snapshot(keys: u64) {
    let snap_dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let snap_cfg = cfg(snap_dir.path(), Persistence::Snapshot, FsyncPolicy::No);
    let engine = fill(&snap_cfg, keys, keys);
    let info = engine.save().expect("save");
    drop(engine);
    let (load, lsn) = reopen_time(&snap_cfg);
    assert_eq!(lsn, keys);

    let aof_dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let aof_cfg = cfg(aof_dir.path(), Persistence::Aof, FsyncPolicy::No);
    drop(fill(&aof_cfg, keys, keys));
    let aof_bytes = std::fs::metadata(aof_dir.path().join("durlab.aof"))
        .unwrap()
        .len();
    let (replay, lsn) = reopen_time(&aof_cfg);
    assert_eq!(lsn, keys);
    println!(
        "figure snapshot_write: {keys} keys, {} bytes in {:.3} s = {:.0} MB/s",
        info.bytes,
        info.duration.as_secs_f64(),
        mb_s(info.bytes, info.duration)
    );
    println!(
        "figure snapshot_load: {:.3} s = {:.0} MB/s; AOF replay of the same state ({aof_bytes} bytes): {:.3} s; replay/load = {:.2}x (target >= 2x)",
        load.as_secs_f64(),
        mb_s(info.bytes, load),
        replay.as_secs_f64(),
        replay.as_secs_f64() / load.as_secs_f64()
    );
}

/// Rewrite duration, and recovery of hybrid after a rewrite against a single AOF holding the
/// same history.
fn figures_hybrid(writes: u64) {
    let keys = (writes / 10).max(1);
    let hybrid_dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let hybrid_cfg = cfg(hybrid_dir.path(), Persistence::Hybrid, FsyncPolicy::No);
    let engine = fill(&hybrid_cfg, keys, writes);
    let info = engine.rewrite().expect("rewrite");
    drop(engine);
    let (hybrid, lsn) = reopen_time(&hybrid_cfg);
    assert_eq!(lsn, writes);

    let aof_dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let aof_cfg = cfg(aof_dir.path(), Persistence::Aof, FsyncPolicy::No);
    drop(fill(&aof_cfg, keys, writes));
    let (aof, lsn) = reopen_time(&aof_cfg);
    assert_eq!(lsn, writes);
    println!(
        "figure rewrite: {writes} SETs over {keys} keys; rewrite {:.3} s (writers blocked {:.1} ms for the switch), base {} bytes",
        info.duration.as_secs_f64(),
        info.switch_duration.as_secs_f64() * 1e3,
        info.base.bytes
    );
    println!(
        "figure hybrid_recovery: hybrid after rewrite {:.3} s, single aof {:.3} s; aof/hybrid = {:.2}x (target >= 3x)",
        hybrid.as_secs_f64(),
        aof.as_secs_f64(),
        aof.as_secs_f64() / hybrid.as_secs_f64()
    );
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux >= 4.0); false if the kernel refuses.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn p99_us(latencies_ns: &mut [u64]) -> f64 {
    latencies_ns.sort_unstable();
    let i = (latencies_ns.len() * 99 / 100).min(latencies_ns.len().saturating_sub(1));
    latencies_ns.get(i).copied().unwrap_or(0) as f64 / 1e3
}

/// One writer overwrites random existing keys, timing each SET, until `stop`.
fn timed_writes(engine: &Engine, keys: u64, stop: &AtomicBool, max_ops: usize) -> Vec<u64> {
    let mut latencies = Vec::with_capacity(max_ops);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while !stop.load(Ordering::Relaxed) && latencies.len() < max_ops {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let cmd = set(x % keys, x);
        let started = Instant::now();
        engine.execute(cmd).expect("set");
        latencies.push(started.elapsed().as_nanos() as u64);
    }
    latencies
}

/// Write p99 and peak RSS during a snapshot against the same writer without one.
fn figures_latency(keys: u64, mode: Persistence, policy: FsyncPolicy) {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let config = cfg(dir.path(), mode, policy);
    let engine = fill(&config, keys, keys);
    let stop = AtomicBool::new(false);
    // The snapshot's duration sets how long both runs last.
    let started = Instant::now();
    engine.save().expect("warm-up save");
    let window = started.elapsed();

    reset_peak_rss();
    let steady_rss_kib = status_kib("VmRSS:");
    let mut without = std::thread::scope(|s| {
        let w = s.spawn(|| timed_writes(&engine, keys, &stop, 50_000_000));
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        w.join().unwrap()
    });
    let steady_peak_kib = status_kib("VmHWM:");
    let ops_without = without.len();

    stop.store(false, Ordering::Relaxed);
    let peak_reset = reset_peak_rss();
    let before_kib = status_kib("VmRSS:");
    let (mut during, info) = std::thread::scope(|s| {
        let w = s.spawn(|| timed_writes(&engine, keys, &stop, 50_000_000));
        let info = engine.save().expect("save");
        stop.store(true, Ordering::Relaxed);
        (w.join().unwrap(), info)
    });
    let peak_kib = status_kib("VmHWM:");
    println!(
        "figure latency[{mode}/{policy}]: {keys} keys, snapshot {:.3} s; SET p99 without snapshot {:.2} us ({ops_without} ops), during {:.2} us ({} ops); during/without = {:.2}x (target <= 2x)",
        info.duration.as_secs_f64(),
        p99_us(&mut without),
        p99_us(&mut during),
        during.len(),
        p99_us(&mut during) / p99_us(&mut without).max(1e-3),
    );
    println!(
        "figure memory[{mode}/{policy}]: steady RSS {} MiB (peak without snapshot {} MiB), before snapshot {} MiB, peak during snapshot {} MiB; peak/steady = {:.3}x (target <= 1.3x){}",
        steady_rss_kib / 1024,
        steady_peak_kib / 1024,
        before_kib / 1024,
        peak_kib / 1024,
        peak_kib as f64 / steady_peak_kib.max(1) as f64,
        if peak_reset {
            ""
        } else {
            " [VmHWM could not be reset: peak is since start]"
        }
    );
}

fn criterion_benches(c: &mut Criterion, keys: u64) {
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let snap_cfg = cfg(dir.path(), Persistence::Snapshot, FsyncPolicy::No);
    let engine = fill(&snap_cfg, keys, keys);
    let bytes = engine.save().unwrap().bytes;
    group.throughput(criterion::Throughput::Bytes(bytes));
    group.bench_function(format!("write/{keys}"), |b| {
        b.iter(|| engine.save().unwrap())
    });
    drop(engine);
    group.bench_function(format!("load/{keys}"), |b| {
        b.iter(|| Engine::open(snap_cfg.clone()).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("hybrid");
    group.sample_size(10);
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let hybrid_cfg = cfg(dir.path(), Persistence::Hybrid, FsyncPolicy::No);
    let engine = fill(&hybrid_cfg, keys, keys);
    group.bench_function(format!("rewrite/{keys}"), |b| {
        b.iter(|| engine.rewrite().unwrap())
    });
    group.finish();
}

fn main() {
    if env_u64("DURLAB_BENCH_FIGURES", 1) == 1 {
        let keys = env_u64("DURLAB_BENCH_KEYS", 1_000_000);
        figures_snapshot(keys);
        figures_hybrid(keys);
        figures_latency(keys, Persistence::AofSnapshot, FsyncPolicy::EverySec);
        figures_latency(keys, Persistence::Snapshot, FsyncPolicy::No);
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, env_u64("DURLAB_BENCH_CRITERION_KEYS", 200_000));
    c.final_summary();
}
