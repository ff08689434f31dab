//! The Rust API of the browser shell: [`Manager`] (one per stream URL and
//! token per page, kept in a registry), [`Subscription`] and [`Error`].

use std::fmt;
use std::rc::{Rc, Weak};

use super::driver::{registry, Inner};
use super::listeners::{Cb, Event, Kind};
use super::platform;
use crate::connection::{ErrorInfo, State};
use crate::dispatch::ListenerId;
use crate::messages::Decoder;
use crate::options::Options;

/// Why `Manager::connect` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be resolved against the page.
    InvalidUrl(String),
    /// The JS options object did not match `ConnectOptions`.
    InvalidOptions(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(u) => {
                f.write_str("tidings: invalid URL ")?;
                let mut quoted = String::new();
                crate::json::push_str(&mut quoted, u);
                f.write_str(&quoted)
            }
            Error::InvalidOptions(e) => {
                f.write_str("tidings: invalid options: ")?;
                f.write_str(e)
            }
        }
    }
}

impl std::error::Error for Error {}

/// Resolves `url` against the global `location` (window or worker).
fn absolute_url(url: &str) -> Result<String, Error> {
    let base = platform::global_object("location")
        .and_then(|l| js_sys::Reflect::get(&l, &"href".into()).ok())
        .and_then(|h| h.as_string());
    let parsed = match base {
        Some(b) => web_sys::Url::new_with_base(url, &b),
        None => web_sys::Url::new(url),
    };
    parsed
        .map(|u| u.href())
        .map_err(|_| Error::InvalidUrl(url.to_owned()))
}

/// A stream manager: one per (absolute URL, token) per page. Cloning gives
/// another handle to the same manager.
#[derive(Clone)]
pub struct Manager {
    inner: Rc<Inner>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("url", &self.inner.url)
            .field("state", &self.state())
            .finish()
    }
}

/// A Rust listener registration; dropping it unsubscribes (gloo style).
#[must_use = "dropping a Subscription unsubscribes at once; call .forget() to keep it"]
#[derive(Debug)]
pub struct Subscription {
    inner: Weak<Inner>,
    kind: Kind,
    id: ListenerId,
}

impl Subscription {
    /// Keeps the listener for the manager's lifetime.
    pub fn forget(self) {
        let _ = std::mem::ManuallyDrop::new(self);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.remove(self.kind, self.id);
        }
    }
}

impl Manager {
    /// The manager for `url` (relative URLs resolve against the page) and
    /// its identity (token, headers, method, body): the existing one if any
    /// (its options win), else a new one. The connection opens with the first
    /// `on` listener.
    pub fn connect(url: &str, options: Options) -> Result<Manager, Error> {
        Self::open(url, options.with_body_text())
    }

    /// [`Manager::connect`] with options whose body is text (the JS API's).
    pub(crate) fn open(url: &str, options: Options) -> Result<Manager, Error> {
        let url = absolute_url(url)?;
        let key = options.identity(&url);
        let inner = registry::get_or_insert_with(key, |key| Inner::new(key, url, options));
        Ok(Manager { inner })
    }

    /// Like [`Manager::connect`] with default options.
    pub fn connect_url(url: &str) -> Result<Manager, Error> {
        Self::connect(url, Options::default())
    }

    /// Listens for events of `ty` (an SSE event name, a payload `type`, or `*`).
    pub fn on(&self, ty: &str, f: impl Fn(&Event) + 'static) -> Subscription {
        self.inner
            .listeners
            .decode_typed(super::listeners::decode_for_rust);
        let f = move |d: &super::listeners::Delivery| {
            if let Some(event) = d.event() {
                f(&event);
            }
        };
        let id = self.inner.add_listener(ty, Cb::Rust(Rc::new(f)));
        self.subscription(Kind::Event, id)
    }

    /// Listens for state changes; `f` runs at once with the current state.
    /// After [`Manager::close`] that call is all: no listener is kept.
    pub fn on_state(&self, f: impl Fn(State) + 'static) -> Subscription {
        let id = self.inner.add_state_listener(Cb::Rust(Rc::new(f)));
        self.subscription(Kind::State, id)
    }

    /// Listens for errors (decode failures carry the raw text and the reason).
    /// After [`Manager::close`] no listener is kept (as with `on`).
    pub fn on_error(&self, f: impl Fn(&ErrorInfo) + 'static) -> Subscription {
        let id = self.inner.add_error_listener(Cb::Rust(Rc::new(f)));
        self.subscription(Kind::Error, id)
    }

    /// The connection state.
    pub fn state(&self) -> State {
        self.inner.shown_state()
    }

    /// The id of the last event received (the resume position).
    pub fn last_event_id(&self) -> Option<String> {
        self.inner.shown_last_event_id()
    }

    /// Events dropped as duplicates so far (only a Tidings server's numeric
    /// ids are ever taken for duplicates; nothing is dropped unsaid).
    pub fn duplicates(&self) -> u64 {
        self.inner.duplicates()
    }

    /// Whether the stream speaks the Tidings protocol: the server announced
    /// it, or `protocol: 'tidings'`.
    pub fn speaks_tidings(&self) -> bool {
        self.inner.speaks_tidings()
    }

    /// The absolute stream URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The decoder in use.
    pub fn decoder(&self) -> Decoder {
        self.inner.decoder
    }

    /// Closes the connection for good, drops every listener and removes the
    /// manager from the registry (a later `connect` makes a new one).
    pub fn close(&self) {
        registry::remove(&self.inner);
        self.inner.close();
    }

    /// Test hook: acts as if the SSE transport failed now (the browser shell
    /// then closes it and reconnects by the backoff policy). No-op without an
    /// SSE transport.
    #[doc(hidden)]
    pub fn debug_fail_sse(&self) {
        self.inner.fail_sse();
    }

    /// Whether two handles are the same manager.
    pub fn ptr_eq(&self, other: &Manager) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// This tab's part in sharing the connection: `"leader"` (holds the
    /// connection), `"follower"` (gets the leader's relays), `"idle"` (no
    /// listeners) or `"solo"` (`shareAcrossTabs: false`, or no Web Locks /
    /// `BroadcastChannel`: its own connection).
    pub fn tab_role(&self) -> &'static str {
        self.inner.tab_role()
    }

    /// The shared manager state (the JS API builds on it).
    pub(crate) fn inner(&self) -> &Rc<Inner> {
        &self.inner
    }

    fn subscription(&self, kind: Kind, id: ListenerId) -> Subscription {
        Subscription {
            inner: Rc::downgrade(&self.inner),
            kind,
            id,
        }
    }
}

/// Whether tabs can share one connection here (Web Locks and `BroadcastChannel`).
pub(crate) fn tab_sharing_supported() -> bool {
    super::tabs::is_supported()
}
