//! Media damage to synced data (`bitflip`, `zero-sector`): after a clean run and a completed
//! sync, one bit is flipped or one 512-byte sector zeroed at a seeded offset of the log file,
//! offline; then the directory is recovered. Correct outcomes: `refused` naming file and
//! offset, or `ok` when the damage fell where it cannot matter (preallocated zeros past the
//! last record). `divergent` is a failure.
//!
//! A known limit, reported rather than hidden: damage confined to the last record(s), with
//! no intact record after it, looks exactly like a torn append in a log without a commit
//! marker, so recovery cuts it and synced commands are lost. Those trials get the verdict
//! `lost-acked` with `tail_damage = true`, are counted in `lost_acked_tail_damage`, and are
//! not counted as violations.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use durlab_engine::FsyncPolicy;
use durlab_engine::aof::record::RECORD_HEADER_BYTES;
use durlab_engine::aof::{self, FIRST_RECORD_OFFSET, LOG_FILE_NAME};
use durlab_engine::clock::now_ns;
use rand::RngExt;

use super::ackpage::AckLog;
use super::lying::Lies;
use super::runner::{Crashed, FaultRunner, Promise, Recovery, Trial};
use super::verdict::Verdict;
use super::{FaultKind, TrialOutcome};

/// Bytes zeroed by `zero-sector`.
pub const SECTOR_BYTES: u64 = 512;

/// The runner of the media faults (`bitflip`, `zero-sector`) on the engine: a clean run and
/// a final sync, then the damage, then recovery judged against what the sync made durable.
#[derive(Debug, Clone, Copy)]
pub struct MediaDamage;

/// Where the damage fell, for [`MediaDamage`]'s own checks.
#[derive(Debug, Clone, Default)]
pub struct Damage {
    /// The damaged byte range of the log `[lo, hi)` ((0, 0): nothing damaged).
    range: (u64, u64),
    /// Where each record of the log starts.
    record_starts: Vec<u64>,
    /// Where the records end.
    data_end: u64,
}

impl FaultRunner for MediaDamage {
    type Facts = Damage;

    fn crash(&self, trial: &mut Trial<'_>) -> Result<(Crashed, Damage), String> {
        let (lab, setup, fault) = (trial.lab, trial.setup, trial.fault);
        // The clean run before the damage never acknowledges unsynced records.
        let lies = Lies {
            ack_before_sync: false,
            ..lab.lies
        };
        let ((), page, engine) = trial.open_in_process(lies, |_| Ok(()))?;
        let run = trial.run_writers(&engine, &page);
        if let Some(e) = run.error {
            return Err(format!("clean run failed: {e}"));
        }
        let durable = engine.sync().map_err(|e| format!("final sync: {e}"))?;
        drop(engine);
        drop(page);

        let data = &trial.data;
        let rng = &mut trial.rng;
        let mut notes = Vec::new();
        let mut damage = Damage::default();
        if setup.policy == FsyncPolicy::Off {
            notes.push("policy off writes no log: nothing to damage".into());
        } else {
            let log = data.join(LOG_FILE_NAME);
            let commands = aof::read_commands(data).map_err(|e| e.to_string())?;
            let mut at = FIRST_RECORD_OFFSET;
            for (_, cmd) in &commands {
                damage.record_starts.push(at);
                at += (cmd.encoded_len() + RECORD_HEADER_BYTES) as u64;
            }
            let data_end = at;
            damage.data_end = data_end;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&log)
                .map_err(|e| format!("opening {}: {e}", log.display()))?;
            let file_len = file.metadata().map_err(|e| e.to_string())?.len();
            // Three times in four inside the records (header included), else anywhere in the
            // file.
            let span = if rng.random_range(0..4u32) != 0 {
                data_end
            } else {
                file_len
            }
            .max(1);
            let io_err = |e: std::io::Error| format!("damaging {}: {e}", log.display());
            match fault {
                FaultKind::BitFlip => {
                    let off = rng.random_range(0..span);
                    let bit = rng.random_range(0..8u32);
                    let mut b = [0u8; 1];
                    file.read_exact_at(&mut b, off).map_err(io_err)?;
                    b[0] ^= 1 << bit;
                    file.write_all_at(&b, off).map_err(io_err)?;
                    damage.range = (off, off + 1);
                    notes.push(format!("flipped bit {bit} of byte {off} of {} (records end at byte {data_end}, file {file_len} bytes)", log.display()));
                }
                FaultKind::ZeroSector => {
                    let sector = rng.random_range(0..span.div_ceil(SECTOR_BYTES));
                    let lo = sector * SECTOR_BYTES;
                    let hi = (lo + SECTOR_BYTES).min(file_len);
                    file.write_all_at(&vec![0u8; (hi - lo) as usize], lo)
                        .map_err(io_err)?;
                    damage.range = (lo, hi);
                    notes.push(format!("zeroed bytes {lo}..{hi} of {} (records end at byte {data_end}, file {file_len} bytes)", log.display()));
                }
                other => return Err(format!("fault {other} is not a media fault")),
            }
            file.sync_data().map_err(io_err)?;
        }

        let t_ns = now_ns();
        let acks = AckLog::read(&trial.page).map_err(|e| e.to_string())?;
        let promised = if setup.policy == FsyncPolicy::Off {
            0
        } else {
            durable
        };
        let crashed = Crashed {
            recovery: Recovery::Engine {
                data: data.clone(),
                promise: Promise::Lsn(promised),
            },
            acks,
            t_ns,
            notes,
        };
        Ok((crashed, damage))
    }

    fn review(&self, _trial: &Trial<'_>, damage: &Damage, out: &mut TrialOutcome) {
        // Damage with no intact record after it: indistinguishable from a torn append.
        let (lo, hi) = damage.range;
        let tail = lo >= FIRST_RECORD_OFFSET
            && lo < damage.data_end
            && !damage.record_starts.iter().any(|&s| s >= hi);
        if out.verdict == Verdict::LostAcked && tail {
            out.violation = false;
            out.tail_damage = true;
            out.notes.push("damage reached only the last record(s): a log without a commit marker cannot tell this from a torn append, so recovery cut it (counted in lost_acked_tail_damage, not a violation)".into());
        }
        if out.verdict == Verdict::Refused
            && !(out.detail.contains(LOG_FILE_NAME) && out.detail.contains("offset"))
        {
            out.violation = true;
            out.notes
                .push("VIOLATION: the refusal does not name the file and offset".into());
        }
    }
}
