//! Sharing one connection among the managers of a page: every stream of the
//! same origin and identity (token, headers, credentials) that a server
//! announcing `mux` serves rides on one `fetch` stream to its multiplexing
//! endpoint. The set, positions and routing are the core's
//! [`MuxSet`](crate::mux::MuxSet); this module holds the hubs (one per
//! identity), the one transport each, and the debounce timer.
//!
//! A manager joins with its SSE transport's [`Handle`] and gets, through it,
//! exactly what its own transport would report: `SseOpen`, the hello, its
//! stream's events (their own names and ids), a refusal of its stream as an
//! HTTP status, and the end or failure of the shared connection. Joining or
//! leaving reconnects with every stream's position after [`DEBOUNCE_MS`].

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use super::input::{Handle, Input, Sink};
use super::stream::FetchTransport;
use super::timer::Timeout;
use crate::mux::{MuxSet, Routed, DEBOUNCE_MS};
use crate::options::Options;
use crate::parser::SseEvent;
use crate::protocol::{Hello, Protocol};

thread_local! {
    /// Origins known to multiplex, with their endpoint's absolute URL (a page
    /// knows a handful: a `Vec` is smaller in the wasm than a hash map).
    static KNOWN: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
    /// One hub per endpoint and identity.
    static HUBS: RefCell<Vec<Rc<Hub>>> = const { RefCell::new(Vec::new()) };
}

fn parse(url: &str) -> Option<web_sys::Url> {
    web_sys::Url::new(url).ok()
}

/// Whether a manager with `options` may share: a plain `GET` stream of a
/// Tidings server, with a fixed identity (no `getToken`, no `fetch` or
/// `onOpen` hook) and no query string of its own.
fn eligible(url: &web_sys::Url, options: &Options) -> bool {
    options.get_token.is_none()
        && options.method.eq_ignore_ascii_case("GET")
        && options.body.is_none()
        && !options.finite
        && !options.force_polling
        && options.protocol != Protocol::Plain
        && options.js.fetch.is_none()
        && options.js.on_open.is_none()
        && url.search().is_empty()
}

/// Remembers that the origin of `stream_url` multiplexes, when `ev` is a
/// hello announcing it; true when this is news.
pub(crate) fn learn(stream_url: &str, ev: &SseEvent) -> bool {
    let Some(hello) = Hello::from_event(ev) else {
        return false;
    };
    let (Some(path), true) = (hello.mux.as_deref(), hello.offers("mux")) else {
        return false;
    };
    let Some(endpoint) = web_sys::Url::new_with_base(path, stream_url).ok() else {
        return false;
    };
    let Some(stream) = parse(stream_url) else {
        return false;
    };
    if endpoint.origin() != stream.origin() {
        return false;
    }
    let origin = stream.origin();
    KNOWN.with(|k| {
        let mut k = k.borrow_mut();
        match k.iter_mut().find(|(o, _)| *o == origin) {
            Some((_, e)) => {
                *e = endpoint.href();
                false
            }
            None => {
                k.push((origin, endpoint.href()));
                true
            }
        }
    })
}

/// The endpoint that would carry the stream at `url`, if its origin is known
/// to multiplex and the manager may share.
pub(crate) fn endpoint_for(url: &str, options: &Options) -> Option<String> {
    let u = parse(url)?;
    if !eligible(&u, options) {
        return None;
    }
    let origin = u.origin();
    KNOWN.with(|k| {
        k.borrow()
            .iter()
            .find(|(o, _)| *o == origin)
            .map(|(_, e)| e.clone())
    })
}

/// A manager's place in a hub; dropping it leaves the set.
pub(crate) struct Membership {
    hub: Weak<Hub>,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.leave(self.id);
        }
    }
}

/// Joins the stream at `url` (on `endpoint`, already checked by
/// [`endpoint_for`]) at `position`; the hub reports through `handle`.
pub(crate) fn join(
    endpoint: &str,
    url: &str,
    options: &Rc<Options>,
    position: Option<&str>,
    handle: Handle,
) -> Membership {
    let mut key = [
        endpoint,
        "\n",
        options.token.as_deref().unwrap_or(""),
        if options.with_credentials {
            "\ntrue"
        } else {
            "\nfalse"
        },
    ]
    .concat();
    for (k, v) in &options.headers {
        key.push('\n');
        key.push_str(&k.to_ascii_lowercase());
        key.push(':');
        key.push_str(v);
    }
    let hub = HUBS.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(hub) = h.iter().find(|x| x.key == key) {
            return hub.clone();
        }
        let hub = Rc::new(Hub {
            key,
            endpoint: endpoint.to_owned(),
            options: Rc::clone(options),
            st: RefCell::new(HubSt::default()),
        });
        h.push(hub.clone());
        hub
    });
    let tag = parse(url).map(|u| u.pathname()).unwrap_or_default();
    let id = {
        let mut st = hub.st.borrow_mut();
        let id = st.set.join(&tag, position.map(str::to_owned));
        let ids = st.set.ids();
        st.handles.retain(|(m, _)| ids.contains(m));
        st.handles.push((id, handle));
        id
    };
    hub.schedule();
    Membership {
        hub: Rc::downgrade(&hub),
        id,
    }
}

#[derive(Default)]
struct HubSt {
    set: MuxSet,
    handles: Vec<(u64, Handle)>,
    transport: Option<FetchTransport>,
    generation: u64,
    timer: Option<Timeout>,
    /// The members told that the shared connection is open (with its hello).
    opened: Vec<u64>,
    /// The current connection's hello, for members opened after it came.
    hello: Option<SseEvent>,
    /// Opens every member not refused once the response's first chunk (the
    /// prelude: hello, then each stream's prelude or refusal) is handled.
    opening: Option<Timeout>,
}

/// One shared connection and the managers on it.
struct Hub {
    key: String,
    endpoint: String,
    options: Rc<Options>,
    st: RefCell<HubSt>,
}

impl Hub {
    fn leave(self: &Rc<Self>, id: u64) {
        let left = {
            let mut st = self.st.borrow_mut();
            st.handles.retain(|(m, _)| *m != id);
            st.set.leave(id)
        };
        if left {
            self.schedule();
        }
    }

    /// Reconnects with the new set after the debounce (one timer for a burst).
    fn schedule(self: &Rc<Self>) {
        let mut st = self.st.borrow_mut();
        if st.timer.is_some() {
            return;
        }
        let weak = Rc::downgrade(self);
        st.timer = Some(Timeout::new(DEBOUNCE_MS, move || {
            if let Some(hub) = weak.upgrade() {
                hub.reconnect();
            }
        }));
    }

    fn reconnect(self: &Rc<Self>) {
        let mut st = self.st.borrow_mut();
        st.timer = None;
        st.generation += 1;
        // Replacing the transport aborts the old request; its late reports
        // carry the old generation and are dropped.
        st.transport = None;
        if st.set.is_empty() {
            drop(st);
            HUBS.with(|h| h.borrow_mut().retain(|x| !Rc::ptr_eq(x, self)));
            return;
        }
        let (url, positions) = st.set.request(&self.endpoint);
        let sink: Weak<dyn Sink> = Rc::downgrade(self) as Weak<Self>;
        let handle = Handle::new(sink, st.generation);
        let token = self.options.token.clone();
        st.transport = Some(FetchTransport::open(
            handle,
            &url,
            &self.options,
            token.as_deref(),
            positions.as_deref(),
        ));
    }

    /// Every member's handle (sent to outside the borrow: a member may leave
    /// or join while handling the report).
    fn handles(&self) -> Vec<Handle> {
        self.st
            .borrow()
            .handles
            .iter()
            .map(|(_, h)| h.clone())
            .collect()
    }

    fn handle_of(&self, id: u64) -> Option<Handle> {
        self.st
            .borrow()
            .handles
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, h)| h.clone())
    }

    /// The response came: members are told it is open only when their stream
    /// is known not to be refused (its first frame, or the end of the
    /// prelude), so a refused stream never looks open, not even for a moment.
    fn connected(&self) {
        let mut st = self.st.borrow_mut();
        st.opened.clear();
        st.hello = None;
        st.opening = None;
    }

    /// The hello (the first connection-wide frame) came: the rest of the
    /// prelude is in the same chunk, so once that is handled every member
    /// not refused is open.
    fn hello(self: &Rc<Self>, ev: SseEvent) {
        let weak = Rc::downgrade(self);
        let mut st = self.st.borrow_mut();
        let generation = st.generation;
        st.hello = Some(ev);
        st.opening = Some(Timeout::new(0, move || {
            let Some(hub) = weak.upgrade() else {
                return;
            };
            {
                let mut st = hub.st.borrow_mut();
                if st.generation != generation {
                    return;
                }
                st.opening = None;
            }
            hub.open_all();
        }));
    }

    /// Opens every member the connection carries (its request listed it) not
    /// opened yet; one that joined since waits for the next request.
    fn open_all(&self) {
        let ids = self.st.borrow().set.listed();
        for id in ids {
            self.open_member(id);
        }
    }

    /// Tells member `id` (once per connection) that the connection is open,
    /// then gives it the connection's hello.
    fn open_member(&self, id: u64) {
        let hello = {
            let mut st = self.st.borrow_mut();
            if st.opened.contains(&id) {
                return;
            }
            st.opened.push(id);
            st.hello.clone()
        };
        if let Some(h) = self.handle_of(id) {
            h.send(Input::SseOpen);
            if let Some(hello) = hello {
                h.send(Input::SseEvent(hello));
            }
        }
    }

    /// The shared connection is over: every member hears it as its own
    /// transport's end and leaves (it joins again when it reconnects).
    fn end_all(&self, input: impl Fn() -> Input) {
        let handles = {
            let mut st = self.st.borrow_mut();
            st.transport = None;
            st.generation += 1;
            for id in st.set.ids() {
                st.set.leave(id);
            }
            std::mem::take(&mut st.handles)
        };
        for (_, h) in handles {
            h.send(input());
        }
    }
}

impl Sink for Hub {
    fn input(self: Rc<Self>, generation: u64, input: Input) -> bool {
        if generation != self.st.borrow().generation {
            return false;
        }
        // A member's event keeps the JS string of its data when that is a
        // copy (a `fetch` chunk's slice; routing renames events, never their
        // data); anything else reaches the members with its data in wasm.
        let (input, js) = match input {
            Input::SseEventJs {
                ev,
                js,
                lazy: false,
            } => (Input::SseEvent(ev), Some(js)),
            input => (input.plain(), None),
        };
        match input {
            Input::SseOpen => self.connected(),
            Input::RetryHint(ms) => {
                for h in self.handles() {
                    h.send(Input::RetryHint(ms));
                }
            }
            // The shared connection was refused with `Retry-After`: every member waits.
            Input::RetryAfter { delay, poll } => {
                for h in self.handles() {
                    h.send(Input::RetryAfter { delay, poll });
                }
            }
            Input::SseEvent(ev) => {
                let routed = self.st.borrow_mut().set.route(ev);
                match routed {
                    Routed::To(id, ev) => {
                        self.open_member(id);
                        if let Some(h) = self.handle_of(id) {
                            h.send(match js {
                                Some(js) => Input::SseEventJs {
                                    ev,
                                    js,
                                    lazy: false,
                                },
                                None => Input::SseEvent(ev),
                            });
                        }
                    }
                    // The first connection-wide frame is the hello: each member
                    // gets it when it is opened.
                    Routed::All(ev) if self.st.borrow().hello.is_none() => {
                        let opened = self.st.borrow().opened.clone();
                        for id in opened {
                            if let Some(h) = self.handle_of(id) {
                                h.send(Input::SseEvent(ev.clone()));
                            }
                        }
                        self.hello(ev);
                    }
                    Routed::All(ev) => {
                        self.open_all();
                        for h in self.handles() {
                            h.send(Input::SseEvent(ev.clone()));
                        }
                    }
                    Routed::Refused {
                        member,
                        status,
                        body,
                        retry_after,
                    } => {
                        let h = {
                            let mut st = self.st.borrow_mut();
                            let h = st.handles.iter().position(|(m, _)| *m == member);
                            h.map(|i| st.handles.remove(i).1)
                        };
                        if let Some(h) = h {
                            // The stream's own `Retry-After`, as its own URL's refusal
                            // would carry it: that stream alone waits.
                            let delay = retry_after
                                .as_deref()
                                .and_then(|v| super::http::retry_after_value(status, v));
                            if let Some(delay) = delay {
                                h.send(Input::RetryAfter { delay, poll: false });
                            }
                            h.send(Input::StreamRejected {
                                status,
                                body: Some(body),
                            });
                        }
                    }
                    Routed::Dropped => {}
                }
            }
            Input::StreamEnded => self.end_all(|| Input::StreamEnded),
            Input::StreamFailed(reason) => {
                self.end_all(|| Input::StreamFailed(reason.clone()));
            }
            Input::StreamRejected { status, body } => self.end_all(|| Input::StreamRejected {
                status,
                body: body.clone(),
            }),
            Input::StreamFatal(error) => self.end_all(|| Input::StreamFatal(error.clone())),
            Input::SseError => self.end_all(|| Input::SseError),
            Input::SseOpenFailed(m) => self.end_all(|| Input::SseOpenFailed(m.clone())),
            // Made an `SseEvent` above.
            Input::Token { .. } | Input::Poll(_) | Input::SseEventJs { .. } => {}
        }
        true
    }
}
