//! [`Variant::Torn`](super::Variant::Torn): a prefix of the unsynced operations survives, and
//! the last of them, a write, reached the disk only up to a sector boundary (512 B or 4 KiB,
//! seeded, as an offset in the file); the rest of that write reads as zeros, as garbage, or as
//! the bytes that were there before (seeded). A write with no boundary inside it is torn at its
//! start (nothing of it survives, then the rest is zeros/garbage/old over all of it).

use rand::{Rng, RngExt};

use super::power_loss::apply_first;
use super::state::{CrashState, PendingOp};
use crate::workload::rng::SplitMix64;

/// The sector sizes a tear may fall on.
const SECTOR_BYTES: [u64; 2] = [512, 4096];

pub(crate) fn torn(state: &mut CrashState<'_>, rng: &mut SplitMix64) -> String {
    let writes: Vec<usize> = state
        .pending
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.op, PendingOp::Write { .. }))
        .map(|(i, _)| i)
        .collect();
    if writes.is_empty() {
        return format!(
            "torn: no unsynced write to tear; {} unsynced ops lost (as power loss)",
            state.pending.len()
        );
    }
    let i = writes[rng.random_range(0..writes.len())];
    apply_first(state, i);
    let p = state.pending[i];
    let PendingOp::Write { offset, data } = p.op else {
        unreachable!("filtered to writes above")
    };
    let len: u64 = data.iter().map(|s| s.len()).sum();
    let end = offset + len;
    let sector = SECTOR_BYTES[rng.random_range(0..SECTOR_BYTES.len())];
    // Boundaries b * sector with offset < b * sector < end, or the write's start.
    let (first, last) = (offset / sector + 1, (end - 1) / sector);
    let cut = if first <= last {
        rng.random_range(first..=last) * sector
    } else {
        offset
    };
    let file = &mut state.files[p.ino];
    file.write_segments_range(offset, data, offset, cut);
    let rest = match rng.random_range(0..3u8) {
        0 => {
            file.zero(cut, end - cut);
            "zeros"
        }
        1 => {
            let mut garbage = vec![0u8; (end - cut) as usize];
            rng.fill_bytes(&mut garbage);
            file.write(cut, &garbage);
            "garbage"
        }
        _ => "the old bytes",
    };
    format!(
        "torn: {i} of {} unsynced ops survive whole, then op {} (write of {len} bytes at {offset}) \
         torn at byte {cut} ({sector}-byte sectors), the rest {rest}",
        state.pending.len(),
        p.seq
    )
}
