//! The comparison in time proportional to what changed (`oracle::delta::compare_from`): it
//! finds a keyspace cloned from a verified base and replayed further equal to the oracle, and
//! it finds every planted difference the full comparison finds: in a key the replay wrote, in
//! a key only the oracle's commands wrote (a lost command), in a key nobody wrote since the
//! base (changed behind the replay's back), and a removed key.

use durlab_engine::keyspace::{Entry, Value};
use durlab_engine::{Keyspace, Lsn};
use durlab_harness::oracle::{self, Oracle, compare, delta};
use durlab_harness::scenario::{self, locate};
use durlab_harness::workload::Workload;

fn workload() -> Workload {
    let path = locate::find_scenario("quickstart").expect("scenario exists");
    Workload::new(&scenario::load(&path).expect("scenario loads").workload)
}

/// `ks` with commands `from + 1..=to` of `w` applied.
fn replayed(w: &Workload, mut ks: Keyspace, from: Lsn, to: Lsn) -> Keyspace {
    let mut seeds = w.command_seeds();
    for n in 1..=to {
        let cmd = w.write_command(&mut seeds, n);
        if n > from {
            ks.apply(&cmd);
        }
    }
    ks
}

/// `compare_from` and the full comparison agree on `ks` at `r`; returns whether equal.
fn judged(ks: &Keyspace, base: &Keyspace, b: Lsn, o: &Oracle, r: Lsn) -> bool {
    let fast = delta::compare_from(ks, base, b, o, r);
    let full = o.with_model(r, |m| compare::compare_keyspace(ks, m, oracle::DIFFS_SHOWN));
    assert_eq!(fast.equal(), full.equal(), "at LSN {r} from {b}");
    assert_eq!(
        fast, full,
        "a difference is described by the full comparison"
    );
    fast.equal()
}

/// A key of `base` that no command in `b + 1..=r` addresses.
fn untouched_key(o: &Oracle, base: &Keyspace, b: Lsn, r: Lsn) -> Vec<u8> {
    let mut written = std::collections::HashSet::new();
    assert!(o.keys_written(b, r, |k| {
        written.insert(k.to_vec());
    }));
    base.iter()
        .map(|(k, _)| k.to_vec())
        .find(|k| !written.contains(k))
        .expect("the base has keys the next commands leave alone")
}

#[test]
fn a_replay_from_a_verified_base_is_equal_and_every_planted_difference_is_found() {
    let w = workload();
    let o = Oracle::new(w.clone());
    let (b, r) = (3000, 3400);
    let base = replayed(&w, Keyspace::new(), 0, b);
    assert!(
        judged(&base, &Keyspace::new(), 0, &o, b),
        "the base is verified"
    );

    let good = replayed(&w, base.clone(), b, r);
    assert!(judged(&good, &base, b, &o, r));
    // At the base's own LSN, and below it (the full comparison then).
    assert!(judged(&base.clone(), &base, b, &o, b));
    assert!(!judged(&good, &base, b, &o, b - 10));
    // A keyspace that was not cloned from the base: every key is compared.
    assert!(judged(
        &replayed(&w, Keyspace::new(), 0, r),
        &base,
        b,
        &o,
        r
    ));

    // The last command lost: only the oracle's commands name the key that differs.
    let lost = replayed(&w, base.clone(), b, r - 1);
    assert!(!judged(&lost, &base, b, &o, r));

    // A key nobody wrote since the base, changed behind the replay's back.
    let key = untouched_key(&o, &base, b, r);
    let mut changed = replayed(&w, base.clone(), b, r);
    changed.insert_entry(
        key.clone(),
        Entry {
            value: Value::Str(b"planted".to_vec()),
            expire_at_ms: None,
        },
    );
    assert!(!judged(&changed, &base, b, &o, r));

    // The same key removed.
    let mut removed = replayed(&w, base.clone(), b, r);
    removed.remove_entry(&key);
    assert!(!judged(&removed, &base, b, &o, r));

    // A key added that the oracle never had.
    let mut added = replayed(&w, base.clone(), b, r);
    added.insert_entry(
        b"never-written".to_vec(),
        Entry {
            value: Value::Str(b"x".to_vec()),
            expire_at_ms: None,
        },
    );
    assert!(!judged(&added, &base, b, &o, r));

    // One more command than the oracle's LSN says.
    let extra = replayed(&w, base.clone(), b, r + 1);
    assert!(!judged(&extra, &base, b, &o, r));
}
