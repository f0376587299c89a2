//! `INFO` and `CONFIG GET` replies of `durlab serve`: Redis's field names where they mean
//! the same, `durlab_*` for the engine's own figures.

use std::fmt::Write as _;

use durlab_engine::{Engine, FsyncPolicy, Persistence};

/// Status of background work, as `INFO persistence` reports it.
#[derive(Debug, Clone, Default)]
pub struct BgStatus {
    pub save_in_progress: bool,
    pub rewrite_in_progress: bool,
    /// Last BGSAVE/SAVE failed.
    pub last_save_failed: bool,
    /// Last BGREWRITEAOF failed.
    pub last_rewrite_failed: bool,
    /// Unix time (s) of the last completed save, or of the start.
    pub last_save_unix_secs: u64,
}

/// The Redis `save` directive's text for `points` (`"3600 1 300 100"`, `""` for none).
pub fn save_text(points: &[(u64, u64)]) -> String {
    points
        .iter()
        .map(|(s, c)| format!("{s} {c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Every `CONFIG GET` parameter durlab serve answers, with its value.
pub fn config_params(engine: &Engine, port: u16) -> Vec<(&'static str, String)> {
    let c = engine.config();
    let aof = c.persistence.has_log() && c.policy != FsyncPolicy::Off;
    vec![
        ("appendonly", yes(aof).into()),
        (
            "appendfsync",
            if c.policy == FsyncPolicy::Off {
                "no".into()
            } else {
                c.policy.name().into()
            },
        ),
        ("save", save_text(&c.save_points)),
        (
            "aof-use-rdb-preamble",
            yes(c.persistence == Persistence::Hybrid).into(),
        ),
        ("dir", c.dir.display().to_string()),
        ("port", port.to_string()),
        ("durlab-persistence", c.persistence.name().into()),
        ("durlab-backend", c.backend.name().into()),
        ("durlab-prealloc", c.prealloc.name().into()),
    ]
}

/// `CONFIG GET pattern`: `*` or an exact (lowercase) name.
pub fn config_get(engine: &Engine, port: u16, pattern: &str) -> Vec<(&'static str, String)> {
    config_params(engine, port)
        .into_iter()
        .filter(|(name, _)| pattern == "*" || *name == pattern)
        .collect()
}

/// The `# Persistence` section.
///
/// Guarantees: `aof_last_write_status` is `err` exactly when the engine is poisoned (it
/// acknowledges nothing more); `durlab_last_lsn`, `durlab_written_lsn` and
/// `durlab_durable_lsn` are the engine's assigned, written and fdatasync-covered LSNs.
pub fn persistence(engine: &Engine, bg: &BgStatus) -> String {
    let c = engine.config();
    let s = engine.stats();
    let poisoned = engine.execute_batch(Vec::new()).is_err();
    let ok = |failed: bool| if failed { "err" } else { "ok" };
    let mut t = String::from("# Persistence\r\n");
    let mut f = |k: &str, v: &dyn std::fmt::Display| {
        let _ = write!(t, "{k}:{v}\r\n");
    };
    f("loading", &0);
    f("async_loading", &0);
    f(
        "rdb_changes_since_last_save",
        &engine.last_lsn().saturating_sub(engine.last_save_lsn()),
    );
    f("rdb_bgsave_in_progress", &u8::from(bg.save_in_progress));
    f("rdb_last_save_time", &bg.last_save_unix_secs);
    f("rdb_last_bgsave_status", &ok(bg.last_save_failed));
    f(
        "aof_enabled",
        &u8::from(c.persistence.has_log() && c.policy != FsyncPolicy::Off),
    );
    f("aof_rewrite_in_progress", &u8::from(bg.rewrite_in_progress));
    f("aof_rewrite_scheduled", &0);
    f("aof_last_bgrewrite_status", &ok(bg.last_rewrite_failed));
    f("aof_last_write_status", &ok(poisoned));
    f("durlab_persistence", &c.persistence);
    f("durlab_appendfsync", &c.policy);
    f("durlab_backend", &c.backend);
    f("durlab_prealloc", &c.prealloc);
    f("durlab_last_lsn", &engine.last_lsn());
    f("durlab_written_lsn", &engine.written_lsn());
    f("durlab_durable_lsn", &engine.durable_lsn());
    f("durlab_last_save_lsn", &engine.last_save_lsn());
    f("durlab_records", &s.records);
    f("durlab_bytes_written", &s.bytes_written);
    f("durlab_write_batches", &s.write_batches);
    f("durlab_batch_records_max", &s.batch_records_max);
    f("durlab_syncs", &s.syncs);
    t
}

/// Parses `field:value` lines of an INFO reply (Redis's or durlab's) into pairs.
pub fn fields(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().split_once(':'))
        .collect()
}
