//! Command generation speed: how many write commands per second a writer's
//! [`WriterStream`](durlab_harness::workload::WriterStream) builds for the event-stream scenario
//! (scenarios/event-stream.toml), with its consumer ops and with its producers alone. The engine
//! driver builds each write under the engine's lock (`Engine::execute_next`), so this cost is
//! part of every flat-out engine figure.
//!
//! Run: `cargo bench -p durlab-harness --bench generate` (filter with a trailing substring,
//! e.g. `-- consumers`). Variants:
//! - `generate/event-stream/consumers/every-lsn`: one writer builds every LSN (as with
//!   `writers = 1`);
//! - `.../consumers/every-2nd-lsn`: one writer builds every second LSN (as one of the scenario's
//!   two writers);
//! - `.../consumers/xack-only`: the `XACK`s among every LSN, each timed alone (an `XACK`'s own
//!   cost; the other commands are built untimed in between, as the stream would);
//! - `.../producers/every-lsn`: the scenario with its `xadd` op alone (no consumer op, so no
//!   setup and no `XACK`).
//!
//! Each variant continues one stream from LSN [`START_LSN`] on (past the setup and the
//! consumers' look-back windows), so it measures the steady state.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use durlab_engine::Command;
use durlab_harness::scenario::model::{CommandKind, WorkloadSpec};
use durlab_harness::scenario::{self, locate};
use durlab_harness::workload::Workload;

/// Where every variant's stream starts (well past the event-stream's 2000-LSN reclaim delay).
const START_LSN: u64 = 100_000;

fn event_stream() -> WorkloadSpec {
    let path = locate::find_scenario("event-stream").expect("scenario exists");
    scenario::load(&path).expect("scenario loads").workload
}

fn generate(c: &mut Criterion) {
    let spec = event_stream();
    let consumers = Workload::new(&spec);
    let mut producers_spec = spec.clone();
    producers_spec
        .ops
        .get_mut()
        .retain(|o| o.command == CommandKind::XAdd);
    let producers = Workload::new(&producers_spec);

    let mut g = c.benchmark_group("generate/event-stream");
    g.throughput(Throughput::Elements(1));
    for (name, w, step) in [
        ("consumers/every-lsn", &consumers, 1),
        ("consumers/every-2nd-lsn", &consumers, 2),
        ("producers/every-lsn", &producers, 1),
    ] {
        g.bench_function(name, |b| {
            let mut stream = w.writer(0);
            let mut n = START_LSN;
            b.iter(|| {
                n += step;
                black_box(stream.write_command(n))
            });
        });
    }
    g.bench_function("consumers/xack-only", |b| {
        let mut stream = consumers.writer(0);
        let mut n = START_LSN;
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                n += 1;
                let start = Instant::now();
                let cmd = stream.write_command(n);
                let took = start.elapsed();
                if matches!(cmd, Command::XAck { .. }) {
                    timed += took;
                    done += 1;
                }
                black_box(cmd);
            }
            timed
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = generate
}
criterion_main!(benches);
