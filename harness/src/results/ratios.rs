//! Throughput ratios measured within one run: against the memory-only (`off`) run and
//! against the probe's matching raw pwrite+fdatasync rate.

use std::str::FromStr;

use durlab_engine::{FsyncPolicy, Prealloc};

use super::json::BenchRecord;
use crate::probe::{self, ProbeResult};
use crate::target::Target;

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
    let off: Vec<(String, String, String, u32, f64)> = records
        .iter()
        .filter(|r| r.config.policy == FsyncPolicy::Off.name())
        .map(|r| {
            (
                r.config.target.clone(),
                r.config.backend.clone(),
                r.config.prealloc.clone(),
                r.config.writers,
                r.ops_per_sec,
            )
        })
        .collect();
    let redis: Vec<(String, String, u32, u32, f64)> = records
        .iter()
        .filter(|r| r.config.target == Target::Redis.name())
        .map(|r| {
            let c = &r.config;
            (
                c.policy.clone(),
                c.persistence.clone(),
                c.writers,
                c.pipeline,
                r.ops_per_sec,
            )
        })
        .collect();
    for r in records.iter_mut() {
        let c = &r.config;
        r.ratio_to_redis = redis
            .iter()
            .find(|(po, pe, w, pi, _)| {
                c.target != Target::Redis.name()
                    && (po, pe, *w, *pi) == (&c.policy, &c.persistence, c.writers, c.pipeline)
            })
            .filter(|x| x.4 > 0.0)
            .map(|x| r.ops_per_sec / x.4);
        let same_target = off.iter().filter(|o| o.0 == r.config.target);
        let same_layout = same_target
            .clone()
            .filter(|(_, b, p, _, _)| *b == r.config.backend && *p == r.config.prealloc);
        let base = same_layout
            .clone()
            .find(|o| o.3 == r.config.writers)
            .or(same_layout.clone().next())
            .or(same_target.clone().next())
            .or(off.first())
            .map(|o| o.4);
        r.ratio_to_off = base.filter(|b| *b > 0.0).map(|b| r.ops_per_sec / b);
        if r.config.policy != FsyncPolicy::Always.name() {
            continue;
        }
        let (Some(p), Ok(prealloc)) = (probe, Prealloc::from_str(&r.config.prealloc)) else {
            continue;
        };
        let kind = probe::kind_for(prealloc);
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
