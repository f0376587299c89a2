//! [`Variant::Torn`](super::Variant::Torn): a prefix of the unsynced operations survives, and
//! the last of them, a write, reached the disk only up to a sector boundary (512 B or 4 KiB,
//! seeded, as an offset in the file); the rest of that write reads as zeros, as garbage, or as
//! the bytes that were there before (seeded). A write with no boundary inside it is torn at its
//! start (nothing of it survives, then the rest is zeros/garbage/old over all of it).

use rand::{Rng, RngExt};

use super::power_loss::apply_first;
use super::state::{CrashState, Pending, PendingOp};
use crate::workload::rng::SplitMix64;

/// The sector sizes a tear may fall on.
const SECTOR_BYTES: [u64; 2] = [512, 4096];

pub(crate) fn torn(state: &mut CrashState<'_>, rng: &mut SplitMix64) -> String {
    let is_write = |p: &&Pending<'_>| matches!(p.op, PendingOp::Write { .. });
    let writes = state.pending.iter().filter(is_write).count();
    if writes == 0 {
        return format!(
            "torn: no unsynced write to tear; {} unsynced ops lost (as power loss)",
            state.pending.len()
        );
    }
    // The pending index of a seeded write (counted, not listed: a policy-no log's pending
    // list is the whole trace).
    let nth = rng.random_range(0..writes);
    let i = state
        .pending
        .iter()
        .enumerate()
        .filter(|(_, p)| is_write(p))
        .nth(nth)
        .map(|(i, _)| i)
        .expect("counted above");
    tear(state, i, rng)
}

/// Applies the pending operations before `i`, a write, then tears that write at a seeded
/// sector boundary (the rest seeded zeros, garbage or the old bytes); describes the image.
fn tear(state: &mut CrashState<'_>, i: usize, rng: &mut SplitMix64) -> String {
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

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::super::reorder::tests::{case, state};
    use super::super::state::{CrashState, PendingOp};
    use super::{tear, torn};
    use crate::workload::rng::SplitMix64;

    /// The torn image as first written (the pending writes listed, then one drawn from the
    /// list, torn as [`torn`] tears it): the reference for the write counted and found.
    fn reference(state: &mut CrashState<'_>, rng: &mut SplitMix64) -> String {
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
        tear(state, i, rng)
    }

    /// The cases whose torn image or description differs from the reference's, after
    /// `spoil` changed the image; and how many were compared.
    fn mismatches(spoil: &dyn Fn(&mut CrashState<'_>)) -> (usize, usize) {
        let (mut bad, mut compared) = (0, 0);
        for seed in 0..300 {
            let c = case(seed);
            for draw in 0..4u64 {
                let rng = SplitMix64::from_words(seed, draw);
                let (mut fast, mut slow) = (state(&c), state(&c));
                let said = torn(&mut fast, &mut rng.clone());
                let want = reference(&mut slow, &mut rng.clone());
                spoil(&mut fast);
                compared += 1;
                bad += usize::from(fast.files != slow.files || said != want);
            }
        }
        (bad, compared)
    }

    #[test]
    fn the_write_counted_and_found_is_the_one_listed() {
        assert_eq!(mismatches(&|_| {}).0, 0);
    }

    /// The companion: a file one byte longer in each image is caught.
    #[test]
    fn a_longer_file_is_caught() {
        let (bad, compared) = mismatches(&|s| {
            let f = &mut s.files[0];
            f.set_len(f.size() + 1);
        });
        assert_eq!(bad, compared);
    }
}
