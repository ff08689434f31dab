//! Browser glue of multi-tab sharing: one Web Lock and one `BroadcastChannel`
//! per stream (absolute URL + token hash, see [`crate::tabs::share_name`]).
//! Every decision is in the sans-IO [`TabCore`]; this file owns it, posts what
//! it asks for, and reports lock grants, channel messages, catch-up answers and
//! page lifecycle events to the manager as [`TabInput`]s.
//!
//! Ownership (gloo style): the channel, its `message` listener, the lock
//! request's `AbortController`, the grant callback `Closure`, the resolver
//! of the promise that holds the lock and the timer that posts the queued
//! relay messages as one batch (see `TabLink::post`) all live in one [`TabLink`], owned by the
//! manager while it takes part. Dropping it leaves: resolves the held promise
//! (releasing the lock), aborts a pending request, closes the channel. A new
//! link is made for each start, the old one dropped: nothing is forgotten.
//! The `pagehide`/`pageshow` (and, with `pauseWhenHidden`, `visibilitychange`)
//! listeners live as long as the manager.
//!
//! Fallback: without `navigator.locks` or `BroadcastChannel` (or with
//! `shareAcrossTabs: false`) the manager runs its own connection ("solo").

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::json::parse_js;
use super::platform::error_text;
use super::timer::Timeout;
use super::{http, platform};
use crate::connection::{Output, State};
use crate::messages::PollResponse;
use crate::options::Options;
use crate::protocol::Protocol;
use crate::tabs::{post_all, share_name, Relay, RelayError, Role, TabCore, TabOutput};

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (bound by hand: only `request` is needed, with a
    /// plain callback, and this works the same in windows and workers).
    type LockManager;
    #[wasm_bindgen(method, js_name = request)]
    fn request(
        this: &LockManager,
        name: &str,
        options: &JsValue,
        callback: &js_sys::Function,
    ) -> JsValue;
}

/// Whether this browser can share a connection across tabs (Web Locks and
/// `BroadcastChannel`). Without them each tab opens its own connection.
pub(crate) fn is_supported() -> bool {
    lock_manager().is_some()
        && js_sys::Reflect::has(&platform::global(), &"BroadcastChannel".into()).unwrap_or(false)
}

fn lock_manager() -> Option<LockManager> {
    let nav = js_sys::Reflect::get(&platform::global(), &"navigator".into())
        .ok()
        .filter(|n| n.is_object())?;
    let locks = js_sys::Reflect::get(&nav, &"locks".into())
        .ok()
        .filter(|l| l.is_object())?;
    let has_request = js_sys::Reflect::get(&locks, &"request".into())
        .ok()
        .is_some_and(|r| r.is_function());
    has_request.then(|| locks.unchecked_into())
}

/// What the sharing glue reports to its manager.
#[derive(Debug)]
pub(crate) enum TabInput {
    /// The Web Lock was granted: this tab leads.
    LockGranted,
    /// A message from another tab.
    Relay(Relay),
    /// A channel message that is not a relay message (with its text, if any).
    BadRelay(RelayError, Option<String>),
    /// A catch-up request finished (the events after the position asked for).
    CatchUp {
        /// Which request (only the latest one counts).
        number: u64,
        /// Its events, or why there are none.
        result: Result<PollResponse, String>,
    },
    /// `pagehide`: the page goes away or into the back/forward cache.
    PageHide,
    /// `pageshow` from the back/forward cache.
    PageShow,
    /// `visibilitychange` with `pauseWhenHidden`: whether the page is visible.
    Visibility(bool),
}

/// Where the sharing glue reports: the manager.
pub(crate) trait TabSink {
    /// Takes one input.
    fn tab_input(self: Rc<Self>, input: TabInput);
}

/// The sharing part of a manager: the tab core (none when solo), the link
/// while taking part, the catch-up request in flight and the page listeners.
pub(crate) struct Tabs {
    /// `None`: solo (opted out or unsupported).
    core: RefCell<Option<TabCore>>,
    link: RefCell<Option<TabLink>>,
    /// The catch-up request in flight (a follower fetching what it missed)
    /// and its deadline (`pollTimeoutMs`); aborted when replaced, dropped or
    /// late, its answer dropped when it is not the latest.
    catch_up: RefCell<Option<(web_sys::AbortController, Timeout)>>,
    catch_ups: Cell<u64>,
    name: String,
    /// `pagehide` / `pageshow` (and `visibilitychange`), installed with the first join.
    page: RefCell<Vec<EventListener>>,
}

impl Tabs {
    /// The sharing part for the stream at `absolute_url`; solo when sharing
    /// is off, unsupported, the credentials come from `getToken` (the user
    /// is only known at connect time), or the request is not a plain `GET`
    /// (a POST answer belongs to the tab that asked).
    pub(crate) fn new(absolute_url: &str, options: &Options) -> Tabs {
        let shared = options.share_across_tabs
            && options.get_token.is_none()
            && options.is_plain_get()
            && is_supported();
        let tidings = options.protocol == Protocol::Tidings;
        Tabs {
            core: RefCell::new(shared.then(|| TabCore::new(platform::random_u64(), tidings))),
            link: RefCell::new(None),
            catch_up: RefCell::new(None),
            catch_ups: Cell::new(0),
            name: share_name(absolute_url, options.token.as_deref(), &options.headers),
            page: RefCell::new(Vec::new()),
        }
    }

    fn role(&self) -> Option<Role> {
        self.core.borrow().as_ref().map(TabCore::role)
    }

    /// Whether sharing is on (not solo).
    pub(crate) fn is_shared(&self) -> bool {
        self.core.borrow().is_some()
    }

    /// Whether this tab takes part (follower or leader).
    pub(crate) fn is_active(&self) -> bool {
        matches!(self.role(), Some(Role::Follower | Role::Leader))
    }

    /// Whether sharing is on and this tab does not take part now.
    pub(crate) fn is_idle(&self) -> bool {
        self.role() == Some(Role::Idle)
    }

    /// Whether this tab holds the lock and the connection.
    pub(crate) fn is_leader(&self) -> bool {
        self.role() == Some(Role::Leader)
    }

    /// `solo`, `idle`, `follower` or `leader`.
    pub(crate) fn role_name(&self) -> &'static str {
        match self.role() {
            None => "solo",
            Some(Role::Idle) => "idle",
            Some(Role::Follower) => "follower",
            Some(Role::Leader) => "leader",
        }
    }

    /// Takes part as a follower and asks for the lock. `names`: this tab's
    /// listener types; `resume`: where it was (kept across a reload). Returns
    /// false when running solo, also for good when the link cannot be made.
    pub(crate) fn join(
        &self,
        sink: Weak<dyn TabSink>,
        names: &[String],
        resume: Option<&str>,
        pause_when_hidden: bool,
    ) -> bool {
        match self.role() {
            None => return false,
            Some(Role::Idle) => {}
            Some(_) => return true, // already taking part
        }
        let link = match TabLink::open(&self.name, sink.clone()) {
            Ok(l) => l,
            Err(e) => {
                web_sys::console::warn_1(
                    &["tidings: sharing across tabs off: ", e.as_str()]
                        .concat()
                        .into(),
                );
                *self.core.borrow_mut() = None;
                return false;
            }
        };
        *self.link.borrow_mut() = Some(link);
        self.install_page_listeners(sink, pause_when_hidden);
        if let Some(core) = self.core.borrow_mut().as_mut() {
            core.start(names, resume);
        }
        true
    }

    /// Stops taking part in the core (it queues `leave`); the caller then
    /// flushes and calls [`Tabs::unlink`]. False when not taking part.
    pub(crate) fn leave(&self) -> bool {
        if !self.is_active() {
            return false;
        }
        self.cancel_catch_up();
        if let Some(core) = self.core.borrow_mut().as_mut() {
            core.stop();
        }
        true
    }

    /// Aborts the catch-up request in flight, if any, and cancels its
    /// deadline; its answer (an abort error, or one already under way) then
    /// carries a stale number and is dropped, so it never reaches the next
    /// participation's core.
    fn cancel_catch_up(&self) {
        self.catch_ups.set(self.catch_ups.get() + 1);
        if let Some((abort, deadline)) = self.catch_up.borrow_mut().take() {
            deadline.cancel();
            abort.abort();
        }
    }

    /// Closes the channel and releases (or stops asking for) the lock.
    pub(crate) fn unlink(&self) {
        drop(self.link.borrow_mut().take());
    }

    /// A listener type was added.
    pub(crate) fn add_name(&self, ty: &str) {
        if let Some(core) = self.core.borrow_mut().as_mut() {
            core.add_name(ty);
        }
    }

    /// Leader: what the connection produced, before local delivery (see
    /// [`TabCore::handle_local`]). Returns whether to deliver it locally.
    pub(crate) fn local(&self, output: &Output) -> bool {
        self.core
            .borrow_mut()
            .as_mut()
            .is_none_or(|core| core.handle_local(output))
    }

    /// Whether this tab relays the data of the events it delivers (see
    /// [`TabCore::relays_events`]).
    pub(crate) fn relays_events(&self) -> bool {
        self.core
            .borrow()
            .as_ref()
            .is_some_and(TabCore::relays_events)
    }

    /// Leader: event names followers listen for (the `EventSource` adds them).
    pub(crate) fn peer_names(&self) -> Vec<String> {
        self.core
            .borrow()
            .as_ref()
            .map(TabCore::peer_names)
            .unwrap_or_default()
    }

    /// The state shown: the leader's while following, else the connection's.
    pub(crate) fn shown_state(&self, connection: State) -> State {
        match self.core.borrow().as_ref() {
            Some(c) if c.role() == Role::Follower => c.state(),
            _ => connection,
        }
    }

    /// The position: the tab core's while sharing, else the connection's.
    pub(crate) fn shown_last_event_id(&self, connection: Option<&str>) -> Option<String> {
        match self.core.borrow().as_ref() {
            Some(c) if c.role() != Role::Idle => c.last_event_id().map(str::to_owned),
            _ => connection.map(str::to_owned),
        }
    }

    /// Relayed events this tab dropped as duplicates.
    pub(crate) fn duplicates(&self) -> u64 {
        self.core.borrow().as_ref().map_or(0, TabCore::duplicates)
    }

    /// The lock was granted. `Some(resume)`: lead, with a fresh connection
    /// from this tab's own position (what it delivered, or the id kept in
    /// `sessionStorage` that [`Tabs::join`] gave the core); `None`: nothing to
    /// do (no longer following, or the stream ended).
    pub(crate) fn lock_granted(&self) -> Option<Option<String>> {
        let mut core = self.core.borrow_mut();
        let core = core.as_mut()?;
        if !core.handle_lock_granted() {
            return None;
        }
        (!core.is_ended()).then(|| core.last_event_id().map(str::to_owned))
    }

    /// A message from another tab.
    pub(crate) fn relay(&self, msg: Relay) {
        if let Some(core) = self.core.borrow_mut().as_mut() {
            core.handle_relay(msg);
        }
    }

    /// Follower: fetches the events after `after` of the stream at `url`
    /// (one request of the polling form, same token and headers); the answer
    /// comes back as [`TabInput::CatchUp`].
    pub(crate) fn start_catch_up(
        &self,
        sink: Weak<dyn TabSink>,
        url: &str,
        options: &Rc<Options>,
        after: &str,
    ) {
        let number = self.catch_ups.get() + 1;
        self.catch_ups.set(number);
        let Ok(abort) = web_sys::AbortController::new() else {
            if let Some(sink) = sink.upgrade() {
                let result = Err("no AbortController".to_owned());
                sink.tab_input(TabInput::CatchUp { number, result });
            }
            return;
        };
        let signal = Some(abort.signal());
        let ms = u32::try_from(options.poll_timeout_ms.max(1)).unwrap_or(u32::MAX);
        let (late, aborter) = (sink.clone(), abort.clone());
        let deadline = Timeout::new(ms, move || {
            aborter.abort();
            if let Some(sink) = late.upgrade() {
                let result = Err([
                    "catch-up timed out after ",
                    &crate::json::uint_text(u64::from(ms)),
                    " ms",
                ]
                .concat());
                sink.tab_input(TabInput::CatchUp { number, result });
            }
        });
        if let Some((old, _)) = self.catch_up.replace(Some((abort, deadline))) {
            old.abort();
        }
        let url = crate::url::poll_url(url, Some(after));
        http::poll_with_token(
            url,
            Rc::clone(options),
            signal,
            Box::new(move |result| {
                let result = result.map_err(|e| e.error.message);
                let Some(sink) = sink.upgrade() else { return };
                sink.tab_input(TabInput::CatchUp { number, result });
            }),
        );
    }

    /// Catch-up request `number` finished: hands its events to the core
    /// (the answer of a replaced request is dropped).
    pub(crate) fn catch_up_done(&self, number: u64, result: Result<PollResponse, String>) {
        if number != self.catch_ups.get() {
            return;
        }
        self.catch_up.borrow_mut().take();
        if let Some(core) = self.core.borrow_mut().as_mut() {
            match result {
                Ok(r) => core.handle_catch_up(r.events.into_iter().map(Into::into).collect()),
                Err(e) => core.handle_catch_up_failed(&e),
            }
        }
    }

    /// Posts what the core asks to post and takes what it asks to do
    /// locally: `(a post failure, outputs)`, or `None` when there is nothing.
    pub(crate) fn exchange(&self) -> Option<(Option<String>, Vec<TabOutput>)> {
        let (posts, outputs, prompt) = {
            let mut core = self.core.borrow_mut();
            let core = core.as_mut()?;
            // Only a leader that no follower listens to may hold its relays back.
            let prompt = core.role() != Role::Leader || core.has_peers();
            let mut p = Vec::new();
            while let Some(m) = core.poll_post() {
                p.push(m);
            }
            let mut o = Vec::new();
            while let Some(x) = core.poll() {
                o.push(x);
            }
            (p, o, prompt)
        };
        if posts.is_empty() && outputs.is_empty() {
            return None;
        }
        let link = self.link.borrow();
        let failed = post_all(&posts, |m| {
            link.as_ref().map_or(Ok(()), |l| l.post(m, prompt))
        });
        Some((failed, outputs))
    }

    /// `pagehide` and `pageshow` (and, with `pauseWhenHidden`,
    /// `visibilitychange`), for as long as the manager lives.
    fn install_page_listeners(&self, sink: Weak<dyn TabSink>, pause_when_hidden: bool) {
        let mut page = self.page.borrow_mut();
        if !page.is_empty() {
            return;
        }
        let Some(target) = platform::global_target() else {
            return;
        };
        let w = sink.clone();
        page.push(EventListener::new(&target, "pagehide", move |_| {
            if let Some(s) = w.upgrade() {
                s.tab_input(TabInput::PageHide);
            }
        }));
        if pause_when_hidden {
            if let Some(doc) = platform::document() {
                let w = sink.clone();
                let d2 = doc.clone();
                page.push(EventListener::new(&doc, "visibilitychange", move |_| {
                    if let Some(s) = w.upgrade() {
                        s.tab_input(TabInput::Visibility(platform::is_visible(&d2)));
                    }
                }));
            }
        }
        page.push(EventListener::new(&target, "pageshow", move |e| {
            let persisted = js_sys::Reflect::get(e, &"persisted".into())
                .ok()
                .and_then(|p| p.as_bool())
                .unwrap_or(false);
            if let Some(s) = sink.upgrade().filter(|_| persisted) {
                s.tab_input(TabInput::PageShow);
            }
        }));
    }
}

impl Drop for Tabs {
    fn drop(&mut self) {
        if let Some((a, _)) = self.catch_up.get_mut().take() {
            a.abort();
        }
    }
}

/// One participation: channel, lock request, held lock. `Drop` leaves.
struct TabLink {
    channel: web_sys::BroadcastChannel,
    outbox: Rc<Outbox>,
    /// The timer that posts the outbox (one per batch).
    send: RefCell<Option<Timeout>>,
    _on_message: EventListener,
    abort: Option<web_sys::AbortController>,
    /// The `resolve` of the promise returned to the lock callback: the lock is
    /// held until it is called.
    held: Rc<RefCell<Option<js_sys::Function>>>,
    /// The lock callback. Dropped with the link; a pending request is aborted
    /// first, so the browser does not call it afterwards. (If a grant was
    /// already queued when we left, the call throws inside the lock callback,
    /// which only releases that lock at once; the request's rejection goes to
    /// the no-op `catch`.)
    _grant: Closure<dyn FnMut(JsValue) -> JsValue>,
}

impl TabLink {
    fn open(name: &str, sink: Weak<dyn TabSink>) -> Result<TabLink, String> {
        let locks = lock_manager().ok_or("navigator.locks is missing")?;
        let channel = web_sys::BroadcastChannel::new(name)
            .map_err(|e| ["BroadcastChannel failed: ", &error_text(&e)].concat())?;
        let w = sink.clone();
        let on_message = EventListener::new(&channel, "message", move |e| {
            let Some(sink) = w.upgrade() else { return };
            let batch = match e
                .dyn_ref::<web_sys::MessageEvent>()
                .map(|m| m.data())
                .filter(JsValue::is_string)
            {
                None => Err((RelayError::NotText, None)),
                // Parsed in JS and read in place; the text is copied out only to report it.
                Some(data) => parse_js(&data)
                    .map_err(|e| RelayError::Malformed(error_text(&e)))
                    .and_then(|doc| Relay::batch_from_doc(&doc))
                    .map_err(|err| (err, data.as_string())),
            };
            match batch {
                Ok(msgs) => {
                    for m in msgs {
                        sink.clone().tab_input(TabInput::Relay(m));
                    }
                }
                Err((err, text)) => sink.tab_input(TabInput::BadRelay(err, text)),
            }
        });
        let held: Rc<RefCell<Option<js_sys::Function>>> = Rc::default();
        let h = held.clone();
        let grant =
            Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |_lock: JsValue| -> JsValue {
                // Hold the lock until `held` is resolved (leaving) or the tab goes away.
                let promise = js_sys::Promise::new(&mut |resolve, _reject| {
                    *h.borrow_mut() = Some(resolve);
                });
                if let Some(sink) = sink.upgrade() {
                    sink.tab_input(TabInput::LockGranted);
                }
                promise.into()
            });
        let abort = web_sys::AbortController::new().ok();
        let options = js_sys::Object::new();
        if let Some(a) = &abort {
            let _ = js_sys::Reflect::set(&options, &"signal".into(), &a.signal());
        }
        let pending = locks.request(name, &options, grant.as_ref().unchecked_ref());
        // The request rejects with AbortError when we leave before the grant:
        // expected, swallowed by a no-op (no Rust closure to outlive the link).
        if let Ok(catch) = js_sys::Reflect::get(&pending, &"catch".into())
            .and_then(|c| c.dyn_into::<js_sys::Function>())
        {
            let _ = catch.call1(&pending, &platform::noop());
        }
        Ok(TabLink {
            outbox: Rc::new(Outbox {
                channel: channel.clone(),
                texts: RefCell::new(Vec::new()),
                armed: Cell::new(false),
                soon: Cell::new(false),
            }),
            send: RefCell::new(None),
            channel,
            _on_message: on_message,
            abort,
            held,
            _grant: grant,
        })
    }

    /// Queues `msg`. `prompt` (a follower, or a leader that followers
    /// listen to): posted with what the same task queued, in a microtask
    /// right after it, so followers wait for nothing. Otherwise (a leader
    /// alone) relays wait up to [`QUIET_BATCH_MS`] and go out as one batch: a
    /// stream nobody else listens to costs one `postMessage` per batch, not
    /// one per event. A tab that joins meanwhile makes the next post prompt,
    /// which sends what waited first: the order never changes.
    fn post(&self, msg: &Relay, prompt: bool) -> Result<(), String> {
        self.outbox.texts.borrow_mut().push(msg.encode());
        if prompt {
            if !self.outbox.soon.replace(true) {
                let outbox = self.outbox.clone();
                super::then::soon(move || outbox.send_or_log());
            }
        } else if !self.outbox.armed.replace(true) {
            let outbox = self.outbox.clone();
            *self.send.borrow_mut() =
                Some(Timeout::new(QUIET_BATCH_MS, move || outbox.send_or_log()));
        }
        Ok(())
    }
}

/// How long a leader that no follower listens to holds its relays back.
const QUIET_BATCH_MS: u32 = 50;

/// The relay messages waiting for the next post.
struct Outbox {
    channel: web_sys::BroadcastChannel,
    texts: RefCell<Vec<String>>,
    /// A timer will send.
    armed: Cell<bool>,
    /// A microtask will send.
    soon: Cell<bool>,
}

impl Outbox {
    fn send_or_log(&self) {
        if let Err(e) = self.send() {
            web_sys::console::error_1(&["tidings: tab relay post failed: ", &e].concat().into());
        }
    }

    /// Posts everything queued as one batch.
    fn send(&self) -> Result<(), String> {
        self.armed.set(false);
        self.soon.set(false);
        let texts = std::mem::take(&mut *self.texts.borrow_mut());
        if texts.is_empty() {
            return Ok(());
        }
        self.channel
            .post_message(&JsValue::from_str(&Relay::encode_batch(&texts)))
            .map_err(|e| error_text(&e))
    }
}

impl Drop for TabLink {
    fn drop(&mut self) {
        // What is queued (a `leave` last) goes out before the channel closes.
        self.send.get_mut().take();
        self.outbox.send_or_log();
        if let Some(a) = &self.abort {
            a.abort();
        }
        if let Some(resolve) = self.held.borrow_mut().take() {
            let _ = resolve.call0(&JsValue::NULL);
        }
        self.channel.close();
    }
}
