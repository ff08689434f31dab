//! The last event id per stream URL in `sessionStorage` (option
//! `persistLastEventId`), so a reload of the page resumes where it stopped.
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

/// The stored resume position of the stream at (absolute) `url`.
pub(crate) fn load(url: &str) -> Option<String> {
    storage()?
        .get_item(&format!("{PREFIX}{url}"))
        .ok()
        .flatten()
        .filter(|s| !s.is_empty())
}

/// Stores `id` as the resume position of `url` (ids that are empty are skipped).
pub(crate) fn remember(url: &str, id: Option<&str>) {
    let Some(id) = id.filter(|s| !s.is_empty()) else {
        return;
    };
    if let Some(s) = storage() {
        // Quota or security errors: resume after a reload is lost, the stream is not.
        let _ = s.set_item(&format!("{PREFIX}{url}"), id);
    }
}
