//! Verdicts (docs/design.md, "Oracle and verdicts"): recover a crashed data directory with the
//! engine, check it against the oracle, and say what came back.

use std::fmt;
use std::sync::Arc;

use durlab_engine::aof::LOG_FILE_NAME;
use durlab_engine::{Engine, EngineConfig, Lsn, ReplayBase};
use serde::Serialize;

use super::FaultKind;
use super::bases::Bases;
use crate::oracle::deliveries::{self, DeliveryCounts, GroupViews};
use crate::oracle::{self, Comparison, Oracle, compare};

/// What recovery produced, judged against the oracle and the policy's promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The state equals the oracle at r, and r is at least what the policy promised.
    Ok,
    /// r is below the LSN that the policy promised to keep.
    LostAcked,
    /// The state differs from the oracle at r (holes, reordering, corruption loaded).
    Divergent,
    /// r is above the highest LSN ever issued.
    Phantom,
    /// Recovery stopped with an error naming file and offset.
    Refused,
}

impl Verdict {
    /// Every verdict, in report order.
    pub const ALL: [Verdict; 5] = [
        Verdict::Ok,
        Verdict::LostAcked,
        Verdict::Divergent,
        Verdict::Phantom,
        Verdict::Refused,
    ];

    /// `ok`, `lost-acked`, `divergent`, `phantom`, `refused`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::LostAcked => "lost-acked",
            Verdict::Divergent => "divergent",
            Verdict::Phantom => "phantom",
            Verdict::Refused => "refused",
        }
    }

    /// Whether this verdict breaks the promise of the configuration for `fault`: divergent
    /// and phantom always do; lost-acked does (r is below the promise by definition; the one
    /// documented exception, damage to the last record, is decided by the caller); refused
    /// does unless the fault may be refused ([`FaultKind::may_refuse`]: damaged synced data,
    /// where refusing is the correct answer, or a live copy, where it is the finding).
    pub fn is_violation(self, fault: FaultKind) -> bool {
        match self {
            Verdict::Ok => false,
            Verdict::LostAcked | Verdict::Divergent | Verdict::Phantom => true,
            Verdict::Refused => !fault.may_refuse(),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of recovering and verifying one crash state.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    /// r: the LSN recovery reached (0 when refused).
    pub recovered_lsn: Lsn,
    /// The recovery error (refused), the state difference (divergent), or what recovery cut.
    pub detail: String,
    pub comparison: Option<Comparison>,
    /// Consumer-group workloads, a loaded state: its groups and the oracle's at r, for the
    /// delivery verdicts ([`crate::oracle::deliveries`], counted by [`super::Lab::outcome`]
    /// against the acknowledged LSN).
    pub groups: Option<Arc<RecoveredGroups>>,
}

impl Judgement {
    /// Consumer-group workloads, a loaded state: its delivery anomalies against the oracle at
    /// `acked`, the highest LSN acknowledged before the crash ([`deliveries::count`]).
    pub fn deliveries(&self, oracle: &Oracle, acked: Lsn) -> Option<DeliveryCounts> {
        let g = self.groups.as_ref()?;
        let at_acked = oracle.with_model(acked, deliveries::from_model);
        Some(deliveries::count(&at_acked, &g.expected, &g.got))
    }
}

/// Whether delivery anomalies break the promise: any of them in a state recovered to at least
/// the acknowledged LSN (below it, the loss window explains them and the promise judges that
/// loss).
pub fn deliveries_violate(d: &DeliveryCounts, recovered: Lsn, acked: Lsn) -> bool {
    d.any() && recovered >= acked
}

/// The groups of a recovered state and of the oracle at its LSN r.
#[derive(Debug, Clone)]
pub struct RecoveredGroups {
    pub got: GroupViews,
    pub expected: GroupViews,
}

/// A crash state that could not be recovered: refused, with why (the recovery error, or a
/// server's own log line).
pub fn refused(detail: String) -> Judgement {
    Judgement {
        verdict: Verdict::Refused,
        recovered_lsn: 0,
        detail,
        comparison: None,
        groups: None,
    }
}

/// What recovering one crash state produced, before it is held against a promise: the costly
/// part of a judgement (a recovery, or a server's restart and read-back, and the comparison
/// with the oracle). It depends only on the state's bytes and on the trial's highest issued
/// LSN, never on when the crash happened, so byte-identical crash images share one.
#[derive(Debug, Clone)]
pub enum Recovered {
    /// The state could not be recovered: why (the recovery error, or a server's own log lines).
    Refused(String),
    /// Recovered to LSN `r`, past the trial's highest issued LSN `issued`: not compared (the
    /// oracle has no state there).
    Phantom { r: Lsn, issued: Lsn, cut: String },
    /// Recovered to LSN `r` and compared with the oracle at r; `cut` says what recovery cut,
    /// if anything.
    Loaded {
        r: Lsn,
        comparison: Comparison,
        cut: String,
        /// Consumer-group workloads: see [`Judgement::groups`].
        groups: Option<Arc<RecoveredGroups>>,
    },
}

impl Recovered {
    /// A state recovered to `r` in a trial that issued up to `issued`: compared with
    /// `compare()` (the recovered state against the oracle at r) unless r > `issued`.
    pub fn loaded(r: Lsn, issued: Lsn, compare: impl FnOnce() -> Comparison, cut: &str) -> Self {
        let cut = cut.trim().to_string();
        if r > issued {
            Recovered::Phantom { r, issued, cut }
        } else {
            Recovered::Loaded {
                r,
                comparison: compare(),
                cut,
                groups: None,
            }
        }
    }

    /// A loaded state with its groups for the delivery verdicts: `got()` (the recovered
    /// state's groups) and the oracle's at r, asked only when `oracle`'s workload has
    /// consumer groups (others are unchanged).
    pub fn with_groups(mut self, oracle: &Oracle, got: impl FnOnce() -> GroupViews) -> Self {
        if let Recovered::Loaded { r, groups, .. } = &mut self
            && oracle.workload().setup_len() > 0
        {
            *groups = Some(Arc::new(RecoveredGroups {
                got: got(),
                expected: oracle.with_model(*r, deliveries::from_model),
            }));
        }
        self
    }

    /// The one decision every target's crash states go through: refused stays refused;
    /// phantom if recovery reached past every issued LSN; divergent if the comparison found
    /// a difference; lost-acked if r < `promised`; else ok.
    pub fn judge(&self, promised: Lsn) -> Judgement {
        match self {
            Recovered::Refused(why) => refused(why.clone()),
            Recovered::Phantom { r, issued, cut } => Judgement {
                verdict: Verdict::Phantom,
                recovered_lsn: *r,
                detail: format!("recovered LSN {r} but only {issued} were ever issued. {cut}")
                    .trim()
                    .to_string(),
                comparison: None,
                groups: None,
            },
            Recovered::Loaded {
                r,
                comparison,
                cut,
                groups,
            } => {
                let r = *r;
                let (verdict, detail) = if !comparison.equal() {
                    (
                        Verdict::Divergent,
                        format!("at LSN {r}: {}", comparison.describe()),
                    )
                } else if r < promised {
                    (
                        Verdict::LostAcked,
                        format!("recovered LSN {r} < promised {promised}. {cut}"),
                    )
                } else {
                    (Verdict::Ok, cut.clone())
                };
                Judgement {
                    verdict,
                    recovered_lsn: r,
                    detail: detail.trim().to_string(),
                    comparison: Some(comparison.clone()),
                    groups: groups.clone(),
                }
            }
        }
    }
}

/// Opens `config.dir` with the engine (recovery) and compares what it loaded with the oracle
/// (see [`Recovered`]): refused if the engine will not open. The engine is closed on return.
pub fn recover(config: EngineConfig, oracle: &Oracle, issued: Lsn) -> Recovered {
    recover_from(config, oracle, issued, None)
}

/// [`recover`], resuming from one of `bases` where the log starts with its bytes (the engine
/// checks them: [`Engine::open_from`]; the result is the same as a recovery from the start),
/// and offering the recovered state to `bases` for later images of the same trace.
pub fn recover_from(
    config: EngineConfig,
    oracle: &Oracle,
    issued: Lsn,
    bases: Option<&Bases>,
) -> Recovered {
    let candidates = match bases {
        Some(b) => {
            let log_len = std::fs::metadata(config.dir.join(LOG_FILE_NAME)).map_or(0, |m| m.len());
            b.candidates(log_len)
        }
        None => Vec::new(),
    };
    let tried: Vec<&ReplayBase> = candidates.iter().map(|b| &**b).collect();
    let (engine, report) = match Engine::open_from(config, &tried) {
        Ok(opened) => opened,
        Err(e) => return Recovered::Refused(format!("recovery refused: {e}")),
    };

    let r = report.recovered_lsn;
    let cut = match (&report.cut_offset, &report.cut_reason) {
        (Some(at), Some(why)) => format!("recovery cut the log at byte {at} ({why})"),
        _ => String::new(),
    };
    let base = report.resumed_from.and_then(|i| tried.get(i).copied());
    let recovered = Recovered::loaded(
        r,
        issued,
        || match base {
            Some(b) => engine
                .read(|ks| oracle::delta::compare_from(ks, b.keyspace(), b.last_lsn(), oracle, r)),
            None => oracle::verify(&engine, oracle, r),
        },
        &cut,
    )
    .with_groups(oracle, || engine.read(compare::views_from_engine));
    if let (Some(bases), Some(base)) = (bases, base) {
        bases.used(base);
    }
    // Only a state found equal to the oracle becomes a base: `compare_from` relies on it.
    if let (Some(b), Recovered::Loaded { comparison, .. }) = (bases, &recovered)
        && comparison.equal()
    {
        b.offer(engine, &report);
    }
    recovered
}

/// [`recover`], then [`Recovered::judge`] against `promised`.
pub fn recover_and_judge(
    config: EngineConfig,
    oracle: &Oracle,
    promised: Lsn,
    issued: Lsn,
) -> Judgement {
    recover(config, oracle, issued).judge(promised)
}
