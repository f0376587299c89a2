//! Comparing a recovered keyspace with the oracle in time proportional to what changed since a
//! verified state, instead of to the size of the state: how the crash lab checks hundreds of
//! crash images of one trace, most of which share most of their state
//! ([`crate::crashlab::bases`]).
//!
//! The argument: `ks` was cloned from `base` (then changed by replaying more records), and
//! `base` was compared in full with the oracle at `base_lsn` and found equal. For a key `k`
//! outside `ks.changed_keys(base)` (every key written, added or removed since the clone,
//! found through the engine's copy-on-write: [`Keyspace::changed_keys`]) and outside the keys
//! that commands `base_lsn + 1..=r` address ([`Oracle::keys_written`]): `ks` holds at `k`
//! what `base` holds (presence and value), which is what the oracle holds at `base_lsn`, which
//! is what it holds at `r`. So `ks` equals the oracle at `r` exactly when it does on the listed
//! keys, which are compared one by one (each once), both ways, with the same equality as
//! [`compare::compare_keyspace`]. A difference is described by that full comparison.

use durlab_engine::{Keyspace, Lsn};
use foldhash::HashSet;

use super::compare::{self, Comparison};
use super::{DIFFS_SHOWN, Oracle};

/// [`compare::compare_keyspace`] of `ks` against the oracle at `r`, given that `ks` was
/// cloned from `base`, which equals the oracle at `base_lsn` (the caller compared it in full).
/// Falls back to the full comparison when `r < base_lsn` or a command in between may change
/// any key.
pub fn compare_from(
    ks: &Keyspace,
    base: &Keyspace,
    base_lsn: Lsn,
    oracle: &Oracle,
    r: Lsn,
) -> Comparison {
    oracle.with_model(r, |model| {
        let mut same = r >= base_lsn;
        if same {
            let entry_matches = |key: &[u8]| match (ks.get_entry(key), model.map.get(key)) {
                (None, None) => true,
                (Some(got), Some(want)) => compare::entry_equals(got, want),
                _ => false,
            };
            // Each key is compared once: the commands since the base address a few keys
            // over and over (a stream workload appends to eight streams), and comparing a
            // large entry costs as much as its size.
            let mut checked: HashSet<&[u8]> = HashSet::default();
            same = ks
                .changed_keys(base)
                .into_iter()
                .all(|k| !checked.insert(k) || entry_matches(k));
            if same {
                let mut written_same = true;
                let mut written_checked: HashSet<Vec<u8>> = HashSet::default();
                let complete = oracle.keys_written(base_lsn, r, |k| {
                    if written_same && !checked.contains(k) && !written_checked.contains(k) {
                        written_same = entry_matches(k);
                        written_checked.insert(k.to_vec());
                    }
                });
                same = complete && written_same;
            }
        }
        if same {
            Comparison {
                digest_engine: None,
                digest_oracle: None,
                keys_engine: ks.len(),
                keys_oracle: model.map.len(),
                differing_keys: 0,
                first_diffs: Vec::new(),
            }
        } else {
            compare::compare_keyspace(ks, model, DIFFS_SHOWN)
        }
    })
}
