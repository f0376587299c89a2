//! UTC timestamps for run ids and results.

use std::time::SystemTime;

/// RFC 3339 in UTC, e.g. `2026-03-01T12:00:00Z`.
pub fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Compact, sortable, file-name safe: `20260301T120000Z`.
pub fn compact_now() -> String {
    rfc3339_now().replace(['-', ':'], "")
}
