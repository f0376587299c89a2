//! Engine configurations: one cell of the matrix, and the matrix itself.

use std::path::Path;

use durlab_engine::{BackendKind, EngineConfig, FsyncPolicy, Prealloc};

use crate::scenario::model::{MatrixSpec, Persistence};

/// One engine configuration to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EngineSetup {
    pub policy: FsyncPolicy,
    pub backend: BackendKind,
    pub prealloc: Prealloc,
    pub persistence: Persistence,
    /// True when the harness added this `off` run only as the baseline for `ratio_to_off`.
    pub baseline_only: bool,
}

impl EngineSetup {
    /// The engine configuration of this cell on `dir`, with the scenario's snapshot save
    /// points (used by the persistence modes that snapshot).
    pub fn engine_config(&self, dir: &Path, save_points: &[(u64, u64)]) -> EngineConfig {
        let mut config = EngineConfig::new(dir)
            .policy(self.policy)
            .backend(self.backend)
            .prealloc(self.prealloc);
        config.persistence = self.persistence;
        config.save_points = save_points.to_vec();
        config
    }

    /// `policy-backend-prealloc-persistence`: the configuration's file and directory name.
    pub fn label(&self) -> String {
        let persistence = self.persistence.name().replace('+', "-");
        format!(
            "{}-{}-{}-{}",
            self.policy, self.backend, self.prealloc, persistence
        )
    }
}

/// The cross product of `spec` in order policies × backends × prealloc × persistence, plus an
/// `off` baseline (first backend, prealloc `none`) when no cell has policy `off`. Backend
/// `mmap` with prealloc `none` and a log is left out when the spec also lists a preallocation
/// (the engine refuses that cell); listed alone, it stays, so the run fails with the engine's
/// error instead of running nothing.
pub fn expand(spec: &MatrixSpec) -> Vec<EngineSetup> {
    let some_prealloc = spec.prealloc.iter().any(|&p| p != Prealloc::None);
    let refused = |c: &EngineSetup| {
        c.backend == BackendKind::Mmap
            && c.prealloc == Prealloc::None
            && c.policy != FsyncPolicy::Off
            && c.persistence.has_log()
    };
    let mut cells = Vec::new();
    for &policy in &spec.policies {
        for &backend in &spec.backends {
            for &prealloc in &spec.prealloc {
                for &persistence in &spec.persistence {
                    let cell = EngineSetup {
                        policy,
                        backend,
                        prealloc,
                        persistence,
                        baseline_only: false,
                    };
                    let skip = some_prealloc && refused(&cell);
                    if !skip && !cells.contains(&cell) {
                        cells.push(cell);
                    }
                }
            }
        }
    }
    if !cells.iter().any(|c| c.policy == FsyncPolicy::Off) {
        cells.push(EngineSetup {
            policy: FsyncPolicy::Off,
            backend: spec
                .backends
                .first()
                .copied()
                .unwrap_or(BackendKind::Pwrite),
            prealloc: Prealloc::None,
            persistence: Persistence::Aof,
            baseline_only: true,
        });
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_off_baseline_once() {
        let spec = MatrixSpec {
            policies: vec![FsyncPolicy::Always, FsyncPolicy::EverySec],
            backends: vec![BackendKind::Pwrite, BackendKind::Uring],
            ..MatrixSpec::default()
        };
        let cells = expand(&spec);
        assert_eq!(cells.len(), 5);
        assert!(cells[4].baseline_only && cells[4].policy == FsyncPolicy::Off);
        assert_eq!(cells[0].label(), "always-pwrite-none-aof");
        let with_off = MatrixSpec {
            policies: vec![FsyncPolicy::Off],
            ..MatrixSpec::default()
        };
        assert_eq!(expand(&with_off).len(), 1);
    }

    #[test]
    fn mmap_without_prealloc_left_out_only_beside_a_prealloc() {
        let spec = MatrixSpec {
            policies: vec![FsyncPolicy::No],
            backends: vec![BackendKind::Pwrite, BackendKind::Mmap],
            prealloc: vec![Prealloc::None, Prealloc::Zero],
            ..MatrixSpec::default()
        };
        let labels: Vec<String> = expand(&spec).iter().map(EngineSetup::label).collect();
        assert_eq!(
            labels,
            [
                "no-pwrite-none-aof",
                "no-pwrite-zero-aof",
                "no-mmap-zero-aof",
                "off-pwrite-none-aof"
            ]
        );
        let alone = MatrixSpec {
            policies: vec![FsyncPolicy::No],
            backends: vec![BackendKind::Mmap],
            prealloc: vec![Prealloc::None],
            ..MatrixSpec::default()
        };
        assert_eq!(expand(&alone)[0].label(), "no-mmap-none-aof");
    }
}
