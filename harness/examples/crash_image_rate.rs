//! Measures how fast crash images are built and materialised (no recovery), for traces of a
//! few thousand operations recorded from real engine runs.
//!
//! `cargo run --release -p durlab-harness --example crash_image_rate [commands]`
//!
//! Prints images per second per policy and variant. A benchmark, not a test: the machine is
//! shared, so read the figures as orders of magnitude.

use std::sync::Arc;
use std::time::Instant;

use durlab_engine::backend::open_backend;
use durlab_engine::backend::recording::{RecordingBackend, read_trace};
use durlab_engine::{BackendKind, Engine, EngineConfig, FsyncPolicy, Prealloc};
use durlab_harness::crashlab::images::{ImageOptions, Variant, crash_images_from};
use durlab_harness::scenario::builtin;
use durlab_harness::workload::Workload;

fn main() {
    let commands: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("commands: a number"))
        .unwrap_or(1500);
    let tmp = tempfile::tempdir().expect("tempdir");
    let workload = Workload::new(&builtin::scenario().workload);
    for (policy, prealloc) in [
        (FsyncPolicy::Always, Prealloc::None),
        (FsyncPolicy::EverySec, Prealloc::Zero),
        (FsyncPolicy::No, Prealloc::Fallocate),
    ] {
        let data = tmp.path().join(format!("data-{policy}"));
        let trace = tmp.path().join(format!("{policy}.trace"));
        let rec = RecordingBackend::new(open_backend(BackendKind::Pwrite).unwrap(), &trace)
            .expect("trace");
        let mut config = EngineConfig::new(&data).policy(policy).prealloc(prealloc);
        config.everysec_interval_ms = 1;
        config.backend_override = Some(Arc::new(rec));
        let (engine, _) = Engine::open(config).expect("open");
        for _ in 1..=commands {
            engine
                .execute_next(|lsn| workload.command(lsn))
                .expect("execute");
        }
        drop(engine);
        let t = read_trace(&trace).expect("read trace");
        let ops = t.entries.len();
        let trace_bytes = std::fs::metadata(&trace).map(|m| m.len()).unwrap_or(0);
        for variant in Variant::ALL {
            let opts = ImageOptions {
                states: 1000,
                ..ImageOptions::new(variant)
            };
            let out = tmp.path().join(format!("img-{policy}-{variant}"));
            let images = crash_images_from(t.clone(), &trace, &data, &opts, &out).expect("images");
            let started = Instant::now();
            let mut n = 0u64;
            for image in images {
                image.expect("image");
                n += 1;
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{policy:>8} {variant:>10}: {ops} ops ({trace_bytes} trace bytes), {n} images in \
                 {secs:.2} s = {:.0} images/s",
                n as f64 / secs
            );
        }
    }
}
