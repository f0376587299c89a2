//! Saves: SAVE in the calling loop, BGSAVE and BGREWRITEAOF on a thread of their own, one
//! at a time, with their status kept for `INFO persistence` ([`crate::resp::info::BgStatus`])
//! and Redis's replies and error texts.

use std::sync::Arc;

use durlab_engine::Persistence;

use super::{State, unix_secs};
use crate::resp::Value;

/// SAVE: a snapshot (mode `hybrid`: a rewrite) before replying.
pub(super) fn save(st: &State) -> Value {
    match st.engine.save() {
        Ok(_) => {
            st.bg.lock().last_save_unix_secs = unix_secs();
            Value::ok()
        }
        Err(e) => Value::err(e),
    }
}

/// Starts BGSAVE (`rewrite` false) or BGREWRITEAOF in a thread.
pub(super) fn start(st: &Arc<State>, rewrite: bool) -> Value {
    let mode = st.engine.config().persistence;
    let allowed = if rewrite {
        mode == Persistence::Hybrid
    } else {
        mode != Persistence::Aof
    };
    if !allowed {
        let what = if rewrite {
            "BGREWRITEAOF needs persistence hybrid"
        } else {
            "BGSAVE needs persistence snapshot, aof+snapshot or hybrid"
        };
        return Value::err(format!("durlab serve runs persistence {mode}: {what}"));
    }
    {
        let mut bg = st.bg.lock();
        if bg.save_in_progress || bg.rewrite_in_progress {
            return Value::err(if rewrite {
                "Background append only file rewriting already in progress"
            } else {
                "Background save already in progress"
            });
        }
        if rewrite {
            bg.rewrite_in_progress = true;
        } else {
            bg.save_in_progress = true;
        }
    }
    let st2 = st.clone();
    let spawned = std::thread::Builder::new()
        .name("durlab-bgsave".into())
        .spawn(move || {
            let failed = if rewrite {
                st2.engine.rewrite().is_err()
            } else {
                st2.engine.save().is_err()
            };
            let mut bg = st2.bg.lock();
            if rewrite {
                bg.rewrite_in_progress = false;
                bg.last_rewrite_failed = failed;
            } else {
                bg.save_in_progress = false;
                bg.last_save_failed = failed;
            }
            if !failed {
                bg.last_save_unix_secs = unix_secs();
            }
        });
    match spawned {
        Ok(_) if rewrite => Value::Simple("Background append only file rewriting started".into()),
        Ok(_) => Value::Simple("Background saving started".into()),
        Err(e) => {
            let mut bg = st.bg.lock();
            bg.save_in_progress = false;
            bg.rewrite_in_progress = false;
            Value::err(format!("cannot start a background thread: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use durlab_engine::{EngineConfig, FsyncPolicy, Persistence};

    use super::*;
    use crate::resp::server::test_state;

    /// A server state over an engine in `mode` (policy `no`) in a new temporary directory.
    fn in_mode(mode: Persistence) -> (tempfile::TempDir, Arc<State>) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::new(dir.path().join("data")).policy(FsyncPolicy::No);
        config.persistence = mode;
        (dir, test_state(config, 1))
    }

    fn err(text: &str) -> Value {
        Value::Error(format!("ERR {text}"))
    }

    #[test]
    fn saves_are_refused_in_modes_without_them_with_the_reason() {
        let st = test_state(
            EngineConfig::new("/nonexistent/durlab-bg-test").policy(FsyncPolicy::Off),
            1,
        );
        assert_eq!(
            start(&st, false),
            err(
                "durlab serve runs persistence aof: BGSAVE needs persistence snapshot, aof+snapshot or hybrid"
            )
        );
        assert_eq!(
            start(&st, true),
            err("durlab serve runs persistence aof: BGREWRITEAOF needs persistence hybrid")
        );
        assert!(save(&st).is_error());
        let bg = st.bg.lock();
        assert!(!bg.save_in_progress && !bg.rewrite_in_progress);
    }

    #[test]
    fn one_background_save_at_a_time_with_redis_texts() {
        let (_dir, st) = in_mode(Persistence::Hybrid);
        st.bg.lock().save_in_progress = true;
        assert_eq!(
            start(&st, false),
            err("Background save already in progress")
        );
        assert_eq!(
            start(&st, true),
            err("Background append only file rewriting already in progress")
        );
        st.bg.lock().save_in_progress = false;
        st.bg.lock().rewrite_in_progress = true;
        assert_eq!(
            start(&st, false),
            err("Background save already in progress")
        );
        st.bg.lock().rewrite_in_progress = false;
    }

    #[test]
    fn bgsave_runs_on_its_own_thread_and_reports_in_the_status() {
        let (dir, st) = in_mode(Persistence::Snapshot);
        st.bg.lock().last_save_unix_secs = 0;
        assert_eq!(
            start(&st, false),
            Value::Simple("Background saving started".into())
        );
        while st.bg.lock().save_in_progress {
            std::thread::yield_now();
        }
        let bg = st.bg.lock().clone();
        assert!(!bg.last_save_failed);
        assert!(bg.last_save_unix_secs > 0);
        assert!(dir.path().join("data/durlab.snap").exists());
        assert_eq!(save(&st), Value::ok());
    }

    #[test]
    fn bgrewriteaof_in_hybrid_mode_installs_a_new_base() {
        let (dir, st) = in_mode(Persistence::Hybrid);
        assert_eq!(
            start(&st, true),
            Value::Simple("Background append only file rewriting started".into())
        );
        while st.bg.lock().rewrite_in_progress {
            std::thread::yield_now();
        }
        assert!(!st.bg.lock().last_rewrite_failed);
        assert!(st.engine.last_save_lsn() == st.engine.last_lsn());
        assert!(dir.path().join("data/durlab.2.base.snap").exists());
    }
}
