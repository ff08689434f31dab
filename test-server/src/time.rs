//! Timestamps as the seeds write them.

/// Now as RFC 3339 UTC with seconds precision and `Z` (e.g. `2025-07-12T10:30:00Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Now as unix seconds.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}
