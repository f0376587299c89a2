//! Snapshots, rewrite and hybrid recovery, each next to its baseline measured in the same run,
//! so the figures read as ratios.
//!
//! Run: `cargo bench -p durlab-engine --bench snapshot`. First a figures pass prints one line
//! per target (`DURLAB_BENCH_KEYS`, default 1,000,000 keys; `DURLAB_BENCH_ROUNDS`, default 5,
//! alternated rounds per comparison, medians or pooled percentiles reported):
//! - `load`: snapshot write and load MB/s, and load time against replaying the AOF that
//!   produced the same state (see [`figures_snapshot`] for what exactly is compared);
//! - `hybrid`: rewrite duration, and recovery of `hybrid` after a rewrite against a single
//!   `aof` holding the same history (10 SETs per key);
//! - `latency`: write latency p99 during a snapshot against without one, and peak RSS during
//!   the snapshot against the steady state (`/proc/self/status` VmHWM after resetting it
//!   through `/proc/self/clear_refs`).
//!
//! `DURLAB_BENCH_FIGURES` selects them: unset or `1` all, `0` none, or a comma list such as
//! `load,latency`. Then criterion measures snapshot write, load, the AOF replay of the same
//! state, and rewrite at `DURLAB_BENCH_CRITERION_KEYS` (default 200,000) keys;
//! `scripts/bench-ratios.py` prints load against replay from its estimates. Filter criterion
//! with a trailing substring (`-- --noplot snapshot/`), or skip it with a filter that matches
//! nothing (`-- none`).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
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

/// CPU time (user + system) of this process so far, all threads (ended ones included).
fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the rusage that the pointer designates (zeroed, properly sized
    // and aligned) and reads nothing else; RUSAGE_SELF is always a valid target.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Set to a data directory, the bench binary only recovers it in mode
/// [`OPEN_MODE_VAR`] and prints `<wall ns> <cpu ns> <recovered lsn>` ([`open_once`]).
const OPEN_DIR_VAR: &str = "DURLAB_BENCH_OPEN_DIR";
const OPEN_MODE_VAR: &str = "DURLAB_BENCH_OPEN_MODE";

/// The child side of [`reopen_in_child`]: opens the directory that the environment names,
/// prints the wall and CPU time of `Engine::open` and the recovered LSN, and exits without
/// dropping the engine.
fn open_once(dir: std::ffi::OsString) -> ! {
    let mode = std::env::var(OPEN_MODE_VAR)
        .ok()
        .and_then(|m| m.parse().ok())
        .expect("DURLAB_BENCH_OPEN_MODE names a persistence mode");
    let (wall, cpu, lsn) = reopen_time(&cfg(Path::new(&dir), mode, FsyncPolicy::No));
    println!("{} {} {lsn}", wall.as_nanos(), cpu.as_nanos());
    std::process::exit(0)
}

/// Recovers `config`'s directory in a fresh process running this binary, as a restart does
/// (empty heap, file in the page cache): wall and CPU time of `Engine::open`, recovered LSN.
fn reopen_in_child(config: &EngineConfig) -> (Duration, Duration, u64) {
    let out = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env(OPEN_DIR_VAR, &config.dir)
        .env(OPEN_MODE_VAR, config.persistence.name())
        .output()
        .expect("run the bench binary to open");
    assert!(out.status.success(), "open failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<u64> = text
        .split_whitespace()
        .map(|f| f.parse().expect("a number"))
        .collect();
    let ns = |i: usize| Duration::from_nanos(fields[i]);
    (ns(0), ns(1), fields[2])
}

/// Opens `config` (recovery) and drops the engine untimed: wall and process CPU time of the
/// open, and the recovered LSN.
fn reopen_time(config: &EngineConfig) -> (Duration, Duration, u64) {
    let cpu = process_cpu();
    let started = Instant::now();
    let (engine, report) = Engine::open(config.clone()).expect("reopen");
    let elapsed = started.elapsed();
    let cpu = process_cpu() - cpu;
    drop(engine);
    (elapsed, cpu, report.recovered_lsn)
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// True if both engines hold the same keyspace, entry for entry.
fn same_state(a: &Engine, b: &Engine) -> bool {
    a.read(|ka| {
        b.read(|kb| ka.len() == kb.len() && ka.iter().all(|(k, e)| kb.get_entry(k) == Some(e)))
    })
}

/// A single-AOF directory holding one SET per key for `keys` keys: its directory (removed on
/// drop), configuration and log size in bytes.
fn aof_of(keys: u64) -> (tempfile::TempDir, EngineConfig, u64) {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let config = cfg(dir.path(), Persistence::Aof, FsyncPolicy::No);
    drop(fill(&config, keys, keys));
    let bytes = std::fs::metadata(dir.path().join("durlab.aof"))
        .unwrap()
        .len();
    (dir, config, bytes)
}

/// Snapshot write, and snapshot load against replaying an AOF of the same state.
///
/// What is compared: one final keyspace (`keys` keys, one 100-byte SET each) recovered by
/// `Engine::open` in mode `snapshot` from the snapshot of it, and in mode `aof` from the AOF
/// that produced it (one record per key: the shortest history of that state, the case most
/// favourable to the AOF). Both recovered keyspaces are checked equal before timing. Both files
/// are freshly written and read once untimed, so both come from the page cache. The two
/// recoveries then alternate for `rounds` rounds, each in a fresh process as at a restart
/// ([`reopen_in_child`]: no heap left over from earlier opens), timed from the call to
/// `Engine::open` to its return. Reported: the median wall time of each, the median of the
/// per-round wall ratios, and the median ratio of CPU time (all threads). The snapshot loader
/// uses two threads, the replay one: on a machine with no idle core the wall ratio falls toward
/// the CPU ratio.
fn figures_snapshot(keys: u64, rounds: usize) {
    let snap_dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let snap_cfg = cfg(snap_dir.path(), Persistence::Snapshot, FsyncPolicy::No);
    let engine = fill(&snap_cfg, keys, keys);
    let info = engine.save().expect("save");
    drop(engine);

    let (_aof_dir, aof_cfg, aof_bytes) = aof_of(keys);
    {
        let from_snapshot = Engine::open(snap_cfg.clone()).expect("open snapshot").0;
        let from_aof = Engine::open(aof_cfg.clone()).expect("open aof").0;
        assert!(
            same_state(&from_snapshot, &from_aof),
            "snapshot and AOF recover different states"
        );
    }
    let (mut loads, mut replays, mut ratios, mut cpu_ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        let (load, load_cpu, lsn) = reopen_in_child(&snap_cfg);
        assert_eq!(lsn, keys);
        let (replay, replay_cpu, lsn) = reopen_in_child(&aof_cfg);
        assert_eq!(lsn, keys);
        loads.push(load.as_secs_f64());
        replays.push(replay.as_secs_f64());
        ratios.push(replay.as_secs_f64() / load.as_secs_f64());
        cpu_ratios.push(replay_cpu.as_secs_f64() / load_cpu.as_secs_f64().max(1e-6));
    }
    let (load, replay) = (median(loads), median(replays));
    println!(
        "figure snapshot_write: {keys} keys, {} bytes in {:.3} s = {:.0} MB/s",
        info.bytes,
        info.duration.as_secs_f64(),
        mb_s(info.bytes, info.duration)
    );
    println!(
        "figure snapshot_load: same {keys}-key state, {} rounds alternated, each open in a fresh process, medians: snapshot load {load:.3} s = {:.0} MB/s; replay of the AOF that produced it ({aof_bytes} bytes, one SET per key) {replay:.3} s; replay/load = {:.2}x wall (per-round {}), {:.2}x CPU time (target >= 2x)",
        ratios.len(),
        info.bytes as f64 / 1e6 / load,
        median(ratios.clone()),
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" "),
        median(cpu_ratios),
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
    let (hybrid, _, lsn) = reopen_time(&hybrid_cfg);
    assert_eq!(lsn, writes);

    let aof_dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let aof_cfg = cfg(aof_dir.path(), Persistence::Aof, FsyncPolicy::No);
    drop(fill(&aof_cfg, keys, writes));
    let (aof, _, lsn) = reopen_time(&aof_cfg);
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

/// The nearest-rank `q`-quantile of `latencies_ns` in µs (sorts them; 0 when empty): the same
/// statistic as the probe's and the harness's (`durlab_engine::quantile`).
fn quantile_us(latencies_ns: &mut [u64], q: f64) -> f64 {
    durlab_engine::quantile::quantile_of(latencies_ns, q).unwrap_or(0) as f64 / 1e3
}

fn p99_us(latencies_ns: &mut [u64]) -> f64 {
    quantile_us(latencies_ns, 0.99)
}

/// Phase value that stops [`timed_writes`]; any other value `p` files a write's latency under
/// period `p`.
const STOP: usize = usize::MAX;

/// One writer overwrites random existing keys, timing each SET, until `phase` is [`STOP`].
/// Each latency goes to the period that `phase` named when the SET started.
fn timed_writes(engine: &Engine, keys: u64, phase: &AtomicUsize, periods: usize) -> Vec<Vec<u64>> {
    let mut latencies = vec![Vec::new(); periods];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    loop {
        let period = phase.load(Ordering::Relaxed);
        if period == STOP {
            return latencies;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let cmd = set(x % keys, x);
        let started = Instant::now();
        engine.execute(cmd).expect("set");
        latencies[period].push(started.elapsed().as_nanos() as u64);
    }
}

/// Write p99 and peak RSS during a snapshot against the same writer without one.
///
/// One writer overwrites random existing keys of a `keys`-key state without pause, for
/// `rounds` rounds of two periods: no snapshot for as long as the last snapshot took, then
/// `Engine::save` on this thread. Each SET counts for the period in which it started. The two
/// kinds of periods interleave in one run, so a burst of load from elsewhere on the machine
/// lands in both alike; latencies are pooled per kind. Reported: p99 of each pool, their ratio,
/// and the per-round ratios.
fn figures_latency(keys: u64, mode: Persistence, policy: FsyncPolicy, rounds: usize) {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let config = cfg(dir.path(), mode, policy);
    let engine = fill(&config, keys, keys);
    let rounds = rounds.max(1);
    // Period 0 is a warm-up snapshot (not counted); round r is periods 2r+1 (without) and
    // 2r+2 (during).
    let phase = AtomicUsize::new(0);
    let mut snapshot_s = Vec::new();
    let (mut steady_peak_kib, mut peak_kib, mut steady_rss_kib) = (0, 0, 0);
    let mut peak_reset = true;
    let mut periods = std::thread::scope(|s| {
        let w = s.spawn(|| timed_writes(&engine, keys, &phase, 2 * rounds + 1));
        let mut window = engine.save().expect("warm-up save").duration;
        for round in 0..rounds {
            peak_reset &= reset_peak_rss();
            steady_rss_kib = steady_rss_kib.max(status_kib("VmRSS:"));
            phase.store(2 * round + 1, Ordering::Relaxed);
            std::thread::sleep(window);
            steady_peak_kib = steady_peak_kib.max(status_kib("VmHWM:"));

            peak_reset &= reset_peak_rss();
            phase.store(2 * round + 2, Ordering::Relaxed);
            let info = engine.save().expect("save");
            peak_kib = peak_kib.max(status_kib("VmHWM:"));
            window = info.duration;
            snapshot_s.push(info.duration.as_secs_f64());
        }
        phase.store(STOP, Ordering::Relaxed);
        w.join().unwrap()
    });
    let mut round_ratios = Vec::new();
    let (mut without, mut during) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (alone, with) = (2 * round + 1, 2 * round + 2);
        round_ratios.push(p99_us(&mut periods[with]) / p99_us(&mut periods[alone]).max(1e-3));
        without.append(&mut periods[alone]);
        during.append(&mut periods[with]);
    }
    let (p99_without, p99_during) = (p99_us(&mut without), p99_us(&mut during));
    println!(
        "figure latency[{mode}/{policy}]: {keys} keys, {} rounds, snapshot median {:.3} s; SET p99 without snapshot {p99_without:.2} us ({} ops), during {p99_during:.2} us ({} ops); during/without = {:.2}x (per-round ratios {}; target <= 2x)",
        round_ratios.len(),
        median(snapshot_s),
        without.len(),
        during.len(),
        p99_during / p99_without.max(1e-3),
        round_ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let spread = |l: &mut Vec<u64>| {
        let (p50, p90, p999) = (
            quantile_us(l, 0.50),
            quantile_us(l, 0.90),
            quantile_us(l, 0.999),
        );
        format!("p50 {p50:.2} p90 {p90:.2} p99.9 {p999:.2} us")
    };
    println!(
        "figure latency[{mode}/{policy}] distribution: without snapshot {}; during {}",
        spread(&mut without),
        spread(&mut during)
    );
    println!(
        "figure memory[{mode}/{policy}]: steady RSS {} MiB (peak without snapshot {} MiB), peak during snapshot {} MiB; peak/steady = {:.3}x (target <= 1.3x){}",
        steady_rss_kib / 1024,
        steady_peak_kib / 1024,
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
    // Load and replay recover the same state (see `figures_snapshot`); each opened engine is
    // dropped outside the timed region, before the next open. `scripts/bench-ratios.py`
    // divides their mean times.
    let open_untimed_drop = |b: &mut criterion::Bencher<'_>, config: &EngineConfig| {
        b.iter_batched(
            || (),
            |()| Engine::open(config.clone()).unwrap(),
            BatchSize::PerIteration,
        )
    };
    group.bench_function(format!("load/{keys}"), |b| open_untimed_drop(b, &snap_cfg));
    let (_aof_dir, aof_cfg, aof_bytes) = aof_of(keys);
    group.throughput(criterion::Throughput::Bytes(aof_bytes));
    group.bench_function(format!("replay-aof/{keys}"), |b| {
        open_untimed_drop(b, &aof_cfg)
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

/// Whether the figure `name` was asked for in `DURLAB_BENCH_FIGURES`.
fn figure_wanted(name: &str) -> bool {
    match std::env::var("DURLAB_BENCH_FIGURES").as_deref() {
        Err(_) | Ok("1") | Ok("all") => true,
        Ok(list) => list.split(',').any(|n| n.trim() == name),
    }
}

fn main() {
    if let Some(dir) = std::env::var_os(OPEN_DIR_VAR) {
        open_once(dir);
    }
    let keys = env_u64("DURLAB_BENCH_KEYS", 1_000_000);
    let rounds = env_u64("DURLAB_BENCH_ROUNDS", 5) as usize;
    if figure_wanted("load") {
        figures_snapshot(keys, rounds);
    }
    if figure_wanted("hybrid") {
        figures_hybrid(keys);
    }
    if figure_wanted("latency") {
        figures_latency(
            keys,
            Persistence::AofSnapshot,
            FsyncPolicy::EverySec,
            rounds,
        );
        figures_latency(keys, Persistence::Snapshot, FsyncPolicy::No, rounds);
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, env_u64("DURLAB_BENCH_CRITERION_KEYS", 200_000));
    c.final_summary();
}
