//! Named crash points inside multi-step file operations (snapshot writing, rewrite, manifest
//! installation, recovery's cut of most of a log).
//!
//! With the cargo feature `failpoints`, a test (or a crash lab) can [`arm`] a point by name;
//! the next time the engine reaches it, the operation returns [`crate::Error::Injected`] and
//! abandons its work right there, leaving every file as it is. Since the page cache survives a
//! process kill, that is the state a `kill -9` at that point leaves. Without the feature the
//! points compile to nothing.

/// Every crash point, in the order an operation reaches them.
pub const ALL: &[&str] = &[
    // Writing a snapshot file (save, aof+snapshot, and the base of a hybrid rewrite).
    "snapshot.after_temp_create",
    "snapshot.after_temp_write",
    "snapshot.after_temp_sync",
    "snapshot.after_rename",
    // Hybrid rewrite, step 1 (under the engine lock): new increment, manifest listing it.
    "rewrite.after_incr_create",
    "rewrite.switch_manifest.after_temp_write",
    "rewrite.switch_manifest.after_rename",
    "rewrite.after_switch",
    // Step 2: the new base is written (the `snapshot.*` points above), then
    "rewrite.after_base",
    // Step 3: the manifest listing only the new base and increment.
    "rewrite.final_manifest.after_temp_write",
    "rewrite.final_manifest.after_rename",
    // Step 4: removing the files no longer listed.
    "rewrite.after_first_remove",
    // Recovery cutting most of a log (`crate::recovery::cut`): the bytes before the cut
    // written to the temp file, the whole log linked to its quarantine name, the temp file
    // renamed over the log.
    "cut.after_temp_write",
    "cut.after_link",
    "cut.after_rename",
];

/// Returns `Err(Error::Injected)` from the enclosing function if the named point is armed.
/// A no-op unless the `failpoints` feature is on.
macro_rules! failpoint {
    ($name:literal) => {{
        #[cfg(feature = "failpoints")]
        $crate::failpoint::hit($name)?;
    }};
}
pub(crate) use failpoint;

#[cfg(feature = "failpoints")]
mod armed {
    use std::collections::HashSet;

    use parking_lot::Mutex;

    pub(super) static ARMED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
}

/// Arms `name`: the next time it is reached it fires once (and disarms itself).
///
/// # Panics
/// If `name` is not in [`ALL`].
#[cfg(feature = "failpoints")]
pub fn arm(name: &str) {
    let point = ALL
        .iter()
        .find(|p| **p == name)
        .unwrap_or_else(|| panic!("unknown failpoint {name}"));
    armed::ARMED
        .lock()
        .get_or_insert_with(Default::default)
        .insert(point);
}

/// Disarms every point.
#[cfg(feature = "failpoints")]
pub fn disarm_all() {
    *armed::ARMED.lock() = None;
}

/// True if `name` is armed (it has not fired yet).
#[cfg(feature = "failpoints")]
pub fn is_armed(name: &str) -> bool {
    armed::ARMED
        .lock()
        .as_ref()
        .is_some_and(|set| set.contains(name))
}

/// Fires `name` if armed.
///
/// # Errors
/// [`crate::Error::Injected`] when the point was armed.
#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &'static str) -> crate::Result<()> {
    debug_assert!(ALL.contains(&name), "failpoint {name} missing from ALL");
    let fired = armed::ARMED
        .lock()
        .as_mut()
        .is_some_and(|set| set.remove(name));
    if fired {
        Err(crate::Error::Injected { point: name })
    } else {
        Ok(())
    }
}
