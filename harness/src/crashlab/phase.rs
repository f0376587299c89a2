//! When during the engine's life a crash is aimed: `steady` (the workload runs, the scenario's
//! own save points and auto-rewrite apply), `snapshot` (the worker saves back to back, so a
//! kill or a cut lands in a snapshot being written or installed), `rewrite` (`hybrid`: the
//! worker rewrites back to back: new increment, base, manifest switch, removal of old files).
//! Image faults also always cut just before and after every rename and directory sync.

use std::fmt;
use std::str::FromStr;

use crate::scenario::model::Persistence;

/// A phase to crash in (the scenario's `[crash] states`, `durlab crash --phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Phase {
    /// While the workload runs and the log just grows.
    #[default]
    Steady,
    /// While a snapshot is written.
    Snapshot,
    /// While the log is rewritten or a manifest installed.
    Rewrite,
    /// While recovery runs after an earlier crash (not run by the crash lab yet).
    Recovery,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Steady,
        Phase::Snapshot,
        Phase::Rewrite,
        Phase::Recovery,
    ];

    /// The name on the command line and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Steady => "steady",
            Phase::Snapshot => "snapshot",
            Phase::Rewrite => "rewrite",
            Phase::Recovery => "recovery",
        }
    }

    /// Whether the crash lab can aim at this phase under `mode`.
    ///
    /// # Errors
    /// A sentence saying why not (the phase needs another mode, or is not supported).
    pub fn check(self, mode: Persistence) -> Result<(), String> {
        match (self, mode) {
            (Phase::Steady, _) => Ok(()),
            (Phase::Snapshot, Persistence::Aof) => Err(format!(
                "phase 'snapshot' needs a mode that snapshots (snapshot, aof+snapshot, hybrid), not '{}'",
                mode.name()
            )),
            (Phase::Snapshot, _) => Ok(()),
            (Phase::Rewrite, Persistence::Hybrid) => Ok(()),
            (Phase::Rewrite, _) => Err(format!(
                "phase 'rewrite' needs persistence 'hybrid', not '{}'",
                mode.name()
            )),
            (Phase::Recovery, _) => Err(
                "phase 'recovery' (a crash during recovery) is not run by the crash lab yet".into(),
            ),
        }
    }

    /// True when the worker keeps saving or rewriting in the background.
    pub fn churns(self) -> bool {
        matches!(self, Phase::Snapshot | Phase::Rewrite)
    }
}

/// Serialized by name, as on the command line.
impl serde::Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Phase::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!("unknown phase '{s}': expected one of steady, snapshot, rewrite, recovery")
            })
    }
}
