//! The last event id per stream in `sessionStorage` (option
//! `persistLastEventId`), so a reload of the page resumes where it stopped.
//! A stream is its manager's identity (URL, token, headers, method, body), so
//! another user in the same tab never starts from the previous user's position.
//!
//! `sessionStorage` is per tab and survives reloads, which is exactly the
//! scope of a resume position. Storage is best effort: where it is missing or
//! throws (sandboxed iframe, workers, quota), the manager works as if the
//! option were off; nothing else depends on it.

use wasm_bindgen::JsCast;

use super::platform;

const PREFIX: &str = "tidings:last-event-id:";

fn storage() -> Option<web_sys::Storage> {
    // A SecurityError thrown by the getter (sandboxed frame) gives `None`.
    platform::global_object("sessionStorage")?
        .dyn_into::<web_sys::Storage>()
        .ok()
}

/// The storage key of the stream with this identity: a hash, so no token
/// is written to storage.
pub(crate) fn key_for(identity: &str) -> String {
    format!(
        "{PREFIX}{:032x}",
        crate::tabs::fnv1a_128(identity.as_bytes())
    )
}

/// The stored resume position under `key` ([`key_for`]).
pub(crate) fn load(key: &str) -> Option<String> {
    storage()?
        .get_item(key)
        .ok()
        .flatten()
        .filter(|s| !s.is_empty())
}

/// Stores `id` as the resume position under `key` (empty ids are skipped).
pub(crate) fn remember(key: &str, id: Option<&str>) {
    let Some(id) = id.filter(|s| !s.is_empty()) else {
        return;
    };
    if let Some(s) = storage() {
        // Quota or security errors: resume after a reload is lost, the stream is not.
        let _ = s.set_item(key, id);
    }
}
