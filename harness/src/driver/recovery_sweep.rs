//! The recovery sweep's data: a data directory filled with the workload's write commands
//! 1..=n ([`fill`]), for n chosen so that their log records take a given number of MiB
//! ([`commands_for`]). `durlab run` reopens the directory after each step and times it with
//! [`super::recovery::time_open`].

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use durlab_engine::aof::record::RECORD_HEADER_BYTES;
use durlab_engine::{Engine, EngineConfig, Persistence};

use super::bench::{NoHook, WriterLimits, drive};
use crate::workload::Workload;

const MIB: f64 = 1024.0 * 1024.0;

/// For each of `steps_mb` (ascending), the smallest n such that the log records of write
/// commands 1..=n of `workload` (header and payload, as the AOF frames them) take at least
/// that many MiB. Deterministic: the same seed gives the same counts.
pub fn commands_for(workload: &Workload, steps_mb: &[f64]) -> Vec<u64> {
    let mut stream = workload.writer(0);
    let (mut n, mut bytes) = (0u64, 0u64);
    steps_mb
        .iter()
        .map(|&mb| {
            let target = (mb * MIB).ceil() as u64;
            while bytes < target {
                n += 1;
                bytes += (stream.write_command(n).encoded_len() + RECORD_HEADER_BYTES) as u64;
            }
            n
        })
        .collect()
}

/// Opens `config` (recovering what its directory already holds), lets `writers` threads of
/// the bench driver's writer loop issue `workload`'s commands until write command `commands`
/// is acknowledged, and closes the engine. In mode `snapshot` it then saves a snapshot first
/// (nothing else would persist the state).
///
/// # Errors
/// An open, a command or a save that fails, with the data directory named.
pub fn fill(
    config: EngineConfig,
    workload: &Workload,
    writers: u32,
    commands: u64,
) -> Result<(), String> {
    let dir = config.dir.clone();
    let snapshot_only = config.persistence == Persistence::Snapshot;
    let (engine, _) =
        Engine::open(config).map_err(|e| format!("opening {}: {e}", dir.display()))?;
    if engine.last_lsn() < commands {
        let stop = AtomicBool::new(false);
        let limits = WriterLimits {
            measure_from: Instant::now(),
            deadline: None,
            target_lsn: commands,
            stop: &stop,
            pace: None,
        };
        let error = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..writers.max(1))
                .map(|id| {
                    let engine = &engine;
                    scope.spawn(move || drive(engine, workload, id, limits, &NoHook).1)
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().expect("writer thread panicked"))
                .next()
        });
        if let Some(e) = error {
            return Err(format!("filling {}: {e}", dir.display()));
        }
    }
    if snapshot_only {
        engine
            .save()
            .map_err(|e| format!("saving a snapshot in {}: {e}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_grow_with_steps_and_are_deterministic() {
        let w = Workload::new(&crate::scenario::builtin::scenario().workload);
        let counts = commands_for(&w, &[0.1, 0.5, 1.0]);
        assert!(counts[0] > 0 && counts[0] < counts[1] && counts[1] < counts[2]);
        assert_eq!(counts, commands_for(&w, &[0.1, 0.5, 1.0]));
        // 64 B SET values: each record is a little over 64 + 24 bytes.
        let per = MIB / counts[2] as f64;
        assert!(per > 88.0 && per < 200.0, "{per} bytes per record");
    }
}
