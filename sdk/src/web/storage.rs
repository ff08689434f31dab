//! The last event id per stream in `sessionStorage` (option
//! `persistLastEventId`), so a reload of the page resumes where it stopped.
//! A stream is its manager's identity (URL, token, headers, method, body), so
//! another user in the same tab never starts from the previous user's position.
//!
//! `sessionStorage` is per tab and survives reloads, which is exactly the
//! scope of a resume position. Storage is best effort: where it is missing or
//! throws (sandboxed iframe, workers, quota), the manager works as if the
//! option were off; nothing else depends on it.
//!
//! A `setItem` is a synchronous call into the browser's storage, far dearer
//! than delivering an event, so [`Saver`] writes the position at most once per
//! [`SAVE_DELAY_MS`], and at once when the page is hidden or left (`pagehide`,
//! `visibilitychange` to hidden: a reload, a navigation, a tab switch) and when
//! the manager stops or closes. A reload therefore always finds the last
//! delivered id; only a crash of the tab can lose up to [`SAVE_DELAY_MS`] of
//! position (the events are then delivered again, and a Tidings server's
//! numeric ids are de-duplicated).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_events::EventListener;
use wasm_bindgen::JsCast;

use super::platform;
use super::timer::Timeout;

/// How long a delivered position may wait before it is written.
pub(crate) const SAVE_DELAY_MS: u32 = 1000;

const PREFIX: &str = "tidings:last-event-id:";

fn storage() -> Option<web_sys::Storage> {
    // A SecurityError thrown by the getter (sandboxed frame) gives `None`.
    platform::global_object("sessionStorage")?
        .dyn_into::<web_sys::Storage>()
        .ok()
}

/// The storage key of the stream with this identity: a hash, so no token
/// is written to storage.
fn key_for(identity: &str) -> String {
    let mut key = PREFIX.to_owned();
    key.push_str(&crate::tabs::hex128(crate::tabs::fnv1a_128(
        identity.as_bytes(),
    )));
    key
}

/// The stored resume position under `key` ([`key_for`]).
fn load(key: &str) -> Option<String> {
    storage()?
        .get_item(key)
        .ok()
        .flatten()
        .filter(|s| !s.is_empty())
}

/// Stores `id` as the resume position under `key` (empty ids are skipped).
fn remember(key: &str, id: Option<&str>) {
    let Some(id) = id.filter(|s| !s.is_empty()) else {
        return;
    };
    if let Some(s) = storage() {
        // Quota or security errors: resume after a reload is lost, the stream is not.
        let _ = s.set_item(key, id);
    }
}

/// What the timer and the page listeners share with the [`Saver`].
struct Unsaved {
    key: String,
    id: RefCell<Option<String>>,
    armed: Cell<bool>,
}

impl Unsaved {
    fn write(&self) {
        self.armed.set(false);
        if let Some(id) = self.id.borrow_mut().take() {
            remember(&self.key, Some(&id));
        }
    }
}

/// The stored position of one stream, written late (see the module docs).
/// Owns its timer and its `pagehide` / `visibilitychange` listeners; dropping
/// it writes what is pending.
pub(crate) struct Saver {
    unsaved: Rc<Unsaved>,
    timer: RefCell<Option<Timeout>>,
    page: RefCell<Vec<EventListener>>,
}

impl Saver {
    /// The saver of the stream with this identity (see [`key_for`]).
    pub(crate) fn new(identity: &str) -> Saver {
        Saver {
            unsaved: Rc::new(Unsaved {
                key: key_for(identity),
                id: RefCell::new(None),
                armed: Cell::new(false),
            }),
            timer: RefCell::new(None),
            page: RefCell::new(Vec::new()),
        }
    }

    /// The stored position, if any.
    pub(crate) fn load(&self) -> Option<String> {
        load(&self.unsaved.key)
    }

    /// `id` was delivered: it is written within [`SAVE_DELAY_MS`], or sooner
    /// when the page is hidden or left (empty ids are skipped).
    pub(crate) fn note(&self, id: Option<&str>) {
        let Some(id) = id.filter(|s| !s.is_empty()) else {
            return;
        };
        match &mut *self.unsaved.id.borrow_mut() {
            // Once per event: the buffer is reused until it is written.
            Some(s) => {
                s.clear();
                s.push_str(id);
            }
            slot => *slot = Some(id.to_owned()),
        }
        if self.unsaved.armed.replace(true) {
            return;
        }
        let u = self.unsaved.clone();
        *self.timer.borrow_mut() = Some(Timeout::new(SAVE_DELAY_MS, move || u.write()));
        let mut page = self.page.borrow_mut();
        if page.is_empty() {
            if let Some(target) = platform::global_target() {
                let u = self.unsaved.clone();
                page.push(EventListener::new(&target, "pagehide", move |_| u.write()));
            }
            if let Some(doc) = platform::document() {
                let u = self.unsaved.clone();
                let d = doc.clone();
                page.push(EventListener::new(&doc, "visibilitychange", move |_| {
                    if !platform::is_visible(&d) {
                        u.write();
                    }
                }));
            }
        }
    }

    /// Writes the pending position now (the manager stops or closes).
    pub(crate) fn flush(&self) {
        self.timer.borrow_mut().take();
        self.unsaved.write();
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        self.flush();
    }
}
