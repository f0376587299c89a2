//! Throughput ratios measured within one run: against the memory-only (`off`) run and
//! against the probe's matching raw pwrite+fdatasync rate.

use durlab_engine::rawio::FileKind;

use super::json::{BenchRecord, ConfigRecord};
use crate::probe::{self, ProbeResult};
use crate::servers::Target;

/// The spellings of a record's `config.policy` and `config.prealloc` (docs/results.md) that the
/// ratios depend on: their own, read from the records as written, so that which record is a
/// baseline does not depend on the engine's policy types.
mod spelling {
    /// The memory-only policy: the baseline of `ratio_to_off`.
    pub const POLICY_OFF: &str = "off";
    /// The only policy whose acknowledgements wait for fdatasync: `ratio_to_probe`'s.
    pub const POLICY_ALWAYS: &str = "always";
}

/// The probe's file layout that matches a record's `prealloc` (`none`, `fallocate`, `zero`);
/// `None` for any other spelling (no probe ratio then).
fn probe_kind(prealloc: &str) -> Option<FileKind> {
    match prealloc {
        "none" => Some(FileKind::Append),
        "fallocate" => Some(FileKind::Fallocate),
        "zero" => Some(FileKind::Zeroed),
        _ => None,
    }
}

/// Fills `ratio_to_off`, `ratio_to_probe` and `probe_case` of every record.
///
/// `ratio_to_off` divides by the `off` run of the same target with the same backend,
/// preallocation and writers if there is one, else with the same backend and preallocation,
/// else by the target's first `off` run, else the first `off` run. `ratio_to_redis` divides by the `redis` run with the same policy, persistence,
/// connections and pipeline. `ratio_to_probe` applies to policy `always` only (the
/// only policy whose acknowledgements wait for fdatasync) and divides by the probe's
/// fdatasync rate for the matching file layout (the adjacent probe in `probe_fdatasync_iops`
/// when measured, else the run-start probe) (write commands per second over it, since reads
/// never sync) and the record size nearest the mean value size.
pub fn apply(records: &mut [BenchRecord], probe: Option<&ProbeResult>) {
    let bases: Vec<(Option<f64>, Option<f64>)> = records
        .iter()
        .map(|r| {
            let rate = |b: &BenchRecord| b.ops_per_sec;
            (
                off_baseline(records, &r.config).map(rate),
                redis_baseline(records, &r.config).map(rate),
            )
        })
        .collect();
    for (r, (off, redis)) in records.iter_mut().zip(bases) {
        r.ratio_to_redis = redis.filter(|b| *b > 0.0).map(|b| r.ops_per_sec / b);
        r.ratio_to_off = off.filter(|b| *b > 0.0).map(|b| r.ops_per_sec / b);
        if r.config.policy != spelling::POLICY_ALWAYS {
            continue;
        }
        let (Some(p), Some(kind)) = (probe, probe_kind(&r.config.prealloc)) else {
            continue;
        };
        let rate = r
            .probe_fdatasync_iops
            .unwrap_or_else(|| p.fdatasync_iops.get(kind, r.config.value_size));
        if rate > 0.0 {
            r.ratio_to_probe = Some(r.writes_per_sec / rate);
            r.probe_fdatasync_iops = Some(rate);
            let size = if probe::nearest_record(r.config.value_size) == 64 {
                "64"
            } else {
                "4k"
            };
            r.probe_case = Some(format!("{}_{size}", kind.name()));
        }
    }
}

/// The record `ratio_to_off` of a configuration `c` divides by (rule in [`apply`]).
pub fn off_baseline<'a>(records: &'a [BenchRecord], c: &ConfigRecord) -> Option<&'a BenchRecord> {
    let off = records
        .iter()
        .filter(|r| r.config.policy == spelling::POLICY_OFF);
    let same_target = off.clone().filter(|o| o.config.target == c.target);
    let same_layout = same_target
        .clone()
        .filter(|o| o.config.backend == c.backend && o.config.prealloc == c.prealloc);
    same_layout
        .clone()
        .find(|o| o.config.writers == c.writers)
        .or(same_layout.clone().next())
        .or(same_target.clone().next())
        .or(off.clone().next())
}

/// The `redis` record `ratio_to_redis` of a configuration `c` divides by (rule in [`apply`]).
pub fn redis_baseline<'a>(records: &'a [BenchRecord], c: &ConfigRecord) -> Option<&'a BenchRecord> {
    if c.target == Target::Redis.name() {
        return None;
    }
    records.iter().find(|r| {
        let o = &r.config;
        o.target == Target::Redis.name()
            && (&o.policy, &o.persistence, o.writers, o.pipeline)
                == (&c.policy, &c.persistence, c.writers, c.pipeline)
    })
}

#[cfg(test)]
mod tests {
    use durlab_engine::{FsyncPolicy, Prealloc};

    use super::*;

    /// The ratios' own spellings are the ones the engine's setups are written with (checked
    /// here, at the boundary, not shared): a renamed policy or preallocation fails this test
    /// instead of silently dropping a ratio.
    #[test]
    fn own_spellings_match_what_records_are_written_with() {
        assert_eq!(spelling::POLICY_OFF, FsyncPolicy::Off.name());
        assert_eq!(spelling::POLICY_ALWAYS, FsyncPolicy::Always.name());
        for p in [Prealloc::None, Prealloc::Fallocate, Prealloc::Zero] {
            assert_eq!(
                probe_kind(p.name()),
                Some(probe::kind_for(p)),
                "{}",
                p.name()
            );
        }
        assert_eq!(probe_kind("zeroed"), None);
    }
}
