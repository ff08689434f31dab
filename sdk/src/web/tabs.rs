//! Browser glue of multi-tab sharing: one Web Lock and one `BroadcastChannel`
//! per stream (absolute URL + token hash, see [`crate::tabs::share_name`]).
//! Every decision is in the sans-IO [`TabCore`]; this file turns lock grants
//! and channel messages into `handle_*` calls and posts what it asks for.
//!
//! Ownership (gloo style): the channel, its `message` listener, the lock
//! request's `AbortController`, the grant callback `Closure` and the resolver
//! of the promise that holds the lock all live in one [`TabLink`], owned by the
//! manager while it takes part. Dropping it leaves: resolves the held promise
//! (releasing the lock), aborts a pending request, closes the channel. A new
//! link is made for each start, the old one dropped: nothing is forgotten.
//! The `pagehide`/`pageshow` (and, with `pauseWhenHidden`, `visibilitychange`)
//! listeners live as long as the manager.
//!
//! Fallback: without `navigator.locks` or `BroadcastChannel` (or with
//! `shareAcrossTabs: false`) the manager runs its own connection ("solo").

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::Inner;
use crate::backoff::XorShiftJitter;
use crate::connection::{Connection, ErrorInfo, ErrorKind, Output, State};
use crate::options::Options;
use crate::parser::SseEvent;
use crate::tabs::{share_name, Relay, RelayError, Role, TabCore, TabOutput};

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
        && js_sys::Reflect::has(&js_sys::global(), &"BroadcastChannel".into()).unwrap_or(false)
}

fn lock_manager() -> Option<LockManager> {
    let nav = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
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

/// The sharing part of a manager.
pub(crate) struct Tabs {
    /// `None`: solo (opted out or unsupported).
    core: RefCell<Option<TabCore>>,
    link: RefCell<Option<TabLink>>,
    /// The catch-up request in flight (a follower fetching what it missed); aborted when replaced or dropped.
    catch_up: RefCell<Option<web_sys::AbortController>>,
    name: String,
    /// `pagehide` / `pageshow`, installed with the first start.
    page: RefCell<Vec<EventListener>>,
}

impl Tabs {
    pub(crate) fn new(absolute_url: &str, options: &Options) -> Tabs {
        // With `getToken` the user is only known at connect time: never share.
        let shared = options.share_across_tabs && options.get_token.is_none() && is_supported();
        let tab = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
        Tabs {
            core: RefCell::new(shared.then(|| TabCore::new(tab))),
            link: RefCell::new(None),
            catch_up: RefCell::new(None),
            name: share_name(absolute_url, options.token.as_deref(), &options.headers),
            page: RefCell::new(Vec::new()),
        }
    }

    fn role(&self) -> Option<Role> {
        self.core.borrow().as_ref().map(TabCore::role)
    }
}

impl Drop for Tabs {
    fn drop(&mut self) {
        if let Some(a) = self.catch_up.get_mut().take() {
            a.abort();
        }
    }
}

/// One participation: channel, lock request, held lock. `Drop` leaves.
struct TabLink {
    channel: web_sys::BroadcastChannel,
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
    fn open(name: &str, inner: Weak<Inner>) -> Result<TabLink, String> {
        let locks = lock_manager().ok_or("navigator.locks is missing")?;
        let channel = web_sys::BroadcastChannel::new(name)
            .map_err(|e| format!("BroadcastChannel failed: {e:?}"))?;
        let w = inner.clone();
        let on_message = EventListener::new(&channel, "message", move |e| {
            let Some(i) = w.upgrade() else { return };
            let Some(text) = e
                .dyn_ref::<web_sys::MessageEvent>()
                .and_then(|m| m.data().as_string())
            else {
                i.relay_error(&RelayError::NotText, None);
                return;
            };
            match Relay::decode(&text) {
                Ok(m) => i.on_relay(m),
                Err(err) => i.relay_error(&err, Some(text)),
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
                if let Some(i) = inner.upgrade() {
                    i.on_lock_granted();
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
            let _ = catch.call1(&pending, &super::js::noop());
        }
        Ok(TabLink {
            channel,
            _on_message: on_message,
            abort,
            held,
            _grant: grant,
        })
    }

    fn post(&self, msg: &Relay) -> Result<(), String> {
        self.channel
            .post_message(&JsValue::from_str(&msg.encode()))
            .map_err(|e| format!("{e:?}"))
    }
}

impl Drop for TabLink {
    fn drop(&mut self) {
        if let Some(a) = &self.abort {
            a.abort();
        }
        if let Some(resolve) = self.held.borrow_mut().take() {
            let _ = resolve.call0(&JsValue::NULL);
        }
        self.channel.close();
    }
}

impl super::Manager {
    /// This tab's part in sharing the connection: `"leader"` (holds the
    /// connection), `"follower"` (gets the leader's relays), `"idle"` (no
    /// listeners) or `"solo"` (`shareAcrossTabs: false`, or no Web Locks /
    /// `BroadcastChannel`: its own connection).
    pub fn tab_role(&self) -> &'static str {
        self.inner.tab_role()
    }
}

impl Inner {
    /// First listener: with sharing on, join as a follower and ask for the
    /// lock (the connection starts in [`Inner::on_lock_granted`]). Returns
    /// false when this manager runs solo (the caller starts its connection).
    pub(super) fn tabs_start(self: &Rc<Self>) -> bool {
        match self.tabs.role() {
            None => return false,
            Some(Role::Idle) => {}
            Some(_) => return true, // already taking part
        }
        let link = match TabLink::open(&self.tabs.name, Rc::downgrade(self)) {
            Ok(l) => l,
            Err(e) => {
                // Fall back to a connection of our own, for good.
                web_sys::console::warn_1(&format!("tidings: sharing across tabs off: {e}").into());
                *self.tabs.core.borrow_mut() = None;
                return false;
            }
        };
        *self.tabs.link.borrow_mut() = Some(link);
        self.install_page_listeners();
        let names = self.st.borrow().listeners.types();
        // Where this tab was (kept in sessionStorage across a reload): a
        // follower behind the leader fetches what it missed.
        let resume = self.st.borrow().conn.last_event_id().map(str::to_owned);
        if let Some(core) = self.tabs.core.borrow_mut().as_mut() {
            core.start(&names, resume.as_deref());
        }
        self.tabs_flush();
        true
    }

    /// Leaves (last listener gone, `close()`, `pagehide`). The caller has
    /// already stopped its connection, so the socket closes before the lock
    /// passes on (never two connections at the server).
    pub(super) fn tabs_stop(self: &Rc<Self>) {
        let active = matches!(self.tabs.role(), Some(Role::Follower | Role::Leader));
        if !active {
            return;
        }
        if let Some(core) = self.tabs.core.borrow_mut().as_mut() {
            core.stop();
        }
        self.tabs_flush(); // posts `leave` while the channel is open
        drop(self.tabs.link.borrow_mut().take());
    }

    /// A listener type was added.
    pub(super) fn tabs_add_name(self: &Rc<Self>, ty: &str) {
        if let Some(core) = self.tabs.core.borrow_mut().as_mut() {
            core.add_name(ty);
        }
        self.tabs_flush();
    }

    /// Leader: relays what the connection produced (before local delivery).
    /// Returns whether to deliver it locally (not a repeat of the state shown).
    pub(super) fn tabs_relay(self: &Rc<Self>, output: &Output) -> bool {
        if self.tabs.role() != Some(Role::Leader) {
            return true;
        }
        let local = self
            .tabs
            .core
            .borrow_mut()
            .as_mut()
            .is_none_or(|core| core.handle_local(output));
        self.tabs_flush();
        // Every new transport reports `open`: it also listens for the names
        // followers asked for (the transport itself only knows ours).
        if *output == Output::State(State::Open) {
            let names = self.tabs_peer_names();
            if let Some(sse) = self.st.borrow_mut().sse.as_mut() {
                for n in &names {
                    sse.ensure_name(n);
                }
            }
        }
        local
    }

    /// Leader: event names followers listen for (the `EventSource` adds them).
    pub(super) fn tabs_peer_names(&self) -> Vec<String> {
        self.tabs
            .core
            .borrow()
            .as_ref()
            .map(TabCore::peer_names)
            .unwrap_or_default()
    }

    /// The state shown: the leader's while following, else the connection's.
    pub(super) fn shown_state(&self) -> State {
        match self.tabs.core.borrow().as_ref() {
            Some(c) if c.role() == Role::Follower => c.state(),
            _ => self.st.borrow().conn.state(),
        }
    }

    /// The position: the tab core's while sharing, else the connection's.
    pub(super) fn shown_last_event_id(&self) -> Option<String> {
        match self.tabs.core.borrow().as_ref() {
            Some(c) if c.role() != Role::Idle => c.last_event_id().map(str::to_owned),
            _ => self.st.borrow().conn.last_event_id().map(str::to_owned),
        }
    }

    /// `solo`, `idle`, `follower` or `leader`.
    pub(super) fn tab_role(&self) -> &'static str {
        match self.tabs.role() {
            None => "solo",
            Some(Role::Idle) => "idle",
            Some(Role::Follower) => "follower",
            Some(Role::Leader) => "leader",
        }
    }

    /// The lock was granted: lead. The connection starts from this tab's own
    /// last delivered id (a fresh state machine, so no leftover timers).
    fn on_lock_granted(self: &Rc<Self>) {
        let resume = {
            let mut core = self.tabs.core.borrow_mut();
            let Some(core) = core.as_mut() else { return };
            if !core.handle_lock_granted() {
                return;
            }
            // Our own position: what we delivered, or (knowing nothing since)
            // the id kept in sessionStorage, which `tabs_start` gave the core.
            let own = core.last_event_id().map(str::to_owned);
            (!core.is_ended()).then_some(own)
        };
        self.tabs_flush();
        let Some(last) = resume else { return };
        {
            let mut st = self.st.borrow_mut();
            if st.closed {
                return;
            }
            let seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
            st.conn = Connection::new(self.options.config(), XorShiftJitter::new(seed), last);
        }
        self.start_connection();
    }

    /// Follower: fetches the events after `after` (one request of the
    /// polling form, same token and headers) for the core's catch-up.
    fn start_catch_up(self: &Rc<Self>, after: &str) {
        let abort = web_sys::AbortController::new().ok();
        let signal = abort.as_ref().map(web_sys::AbortController::signal);
        if let Some(old) = self.tabs.catch_up.replace(abort) {
            old.abort();
        }
        let url = crate::url::poll_url(&self.url, Some(after));
        let options = self.options.clone();
        let inner = Rc::downgrade(self);
        wasm_bindgen_futures::spawn_local(async move {
            let result = match super::token::resolve(&options).await {
                Err(e) => Err(e),
                Ok(t) => match super::fetch::build_request(
                    &url,
                    "application/json",
                    &options,
                    t.as_deref(),
                    None,
                    signal.as_ref(),
                ) {
                    Ok(r) => super::transport::fetch_poll(&r)
                        .await
                        .map_err(|e| e.message),
                    Err(e) => Err(format!("bad catch-up request: {e}")),
                },
            };
            if let Some(i) = inner.upgrade() {
                i.tabs.catch_up.borrow_mut().take();
                i.on_catch_up(result);
            }
        });
    }

    fn on_catch_up(self: &Rc<Self>, result: Result<crate::messages::PollResponse, String>) {
        if let Some(core) = self.tabs.core.borrow_mut().as_mut() {
            match result {
                Ok(r) => core.handle_catch_up(
                    r.events
                        .into_iter()
                        .map(|e| SseEvent {
                            event: e.event,
                            data: e.data,
                            id: e.id,
                        })
                        .collect(),
                ),
                Err(e) => core.handle_catch_up_failed(&e),
            }
        }
        self.tabs_flush();
    }

    fn on_relay(self: &Rc<Self>, msg: Relay) {
        if let Some(core) = self.tabs.core.borrow_mut().as_mut() {
            core.handle_relay(msg);
        }
        self.tabs_flush();
    }

    fn relay_error(&self, e: &RelayError, raw: Option<String>) {
        let mut info = ErrorInfo::new(ErrorKind::Protocol, e.to_string());
        info.raw = raw;
        self.emit_error(&info);
    }

    /// Posts what the core wants posted, then does its local outputs. No
    /// borrow is held while listeners run (they may call on/off/close).
    fn tabs_flush(self: &Rc<Self>) {
        for _ in 0..10_000 {
            let (posts, outputs) = {
                let mut core = self.tabs.core.borrow_mut();
                let Some(core) = core.as_mut() else { return };
                let mut p = Vec::new();
                while let Some(m) = core.poll_post() {
                    p.push(m);
                }
                let mut o = Vec::new();
                while let Some(x) = core.poll() {
                    o.push(x);
                }
                (p, o)
            };
            if posts.is_empty() && outputs.is_empty() {
                return;
            }
            let failed = {
                let link = self.tabs.link.borrow();
                posts
                    .iter()
                    .find_map(|m| link.as_ref().and_then(|l| l.post(m).err()))
            };
            if let Some(e) = failed {
                self.emit_error(&ErrorInfo::new(
                    ErrorKind::Protocol,
                    format!("tab relay post failed: {e}"),
                ));
            }
            for o in outputs {
                match o {
                    TabOutput::Deliver(o) => self.emit(o),
                    TabOutput::ListenFor(name) => {
                        if let Some(sse) = self.st.borrow_mut().sse.as_mut() {
                            sse.ensure_name(&name);
                        }
                    }
                    TabOutput::CatchUp(after) => self.start_catch_up(&after),
                }
            }
        }
    }

    /// `pagehide`: leave at once (closing our connection first), so the next
    /// tab takes over without waiting for the browser to notice. `pageshow`
    /// from the back/forward cache: join again if listeners remain.
    fn install_page_listeners(self: &Rc<Self>) {
        let mut page = self.tabs.page.borrow_mut();
        if !page.is_empty() {
            return;
        }
        let Some(target) = js_sys::global().dyn_into::<web_sys::EventTarget>().ok() else {
            return;
        };
        let w = Rc::downgrade(self);
        page.push(EventListener::new(&target, "pagehide", move |_| {
            if let Some(i) = w.upgrade() {
                i.suspend();
            }
        }));
        if self.options.pause_when_hidden {
            let doc = js_sys::Reflect::get(&js_sys::global(), &"document".into())
                .ok()
                .filter(|d| d.is_object());
            if let Some(doc) = doc.and_then(|d| d.dyn_into::<web_sys::Document>().ok()) {
                let w = Rc::downgrade(self);
                let d2 = doc.clone();
                page.push(EventListener::new(&doc, "visibilitychange", move |_| {
                    if let Some(i) = w.upgrade() {
                        i.on_page_visibility(
                            d2.visibility_state() == web_sys::VisibilityState::Visible,
                        );
                    }
                }));
            }
        }
        let w = Rc::downgrade(self);
        page.push(EventListener::new(&target, "pageshow", move |e| {
            let persisted = js_sys::Reflect::get(e, &"persisted".into())
                .ok()
                .and_then(|p| p.as_bool())
                .unwrap_or(false);
            if let Some(i) = w.upgrade() {
                let listening = !i.st.borrow().listeners.is_empty() && !i.st.borrow().closed;
                if persisted && listening && i.tabs.role() == Some(Role::Idle) {
                    i.start();
                }
            }
        }));
    }

    /// Whether `pauseWhenHidden` is handled here (sharing on): the caller
    /// then leaves visibility to [`Inner::on_page_visibility`], whose listener
    /// lives as long as the manager (the connection's own listeners go with it).
    pub(super) fn tabs_visibility(&self, _visible: bool) -> bool {
        self.tabs.role().is_some()
    }

    /// `visibilitychange` with `pauseWhenHidden`: a hidden tab leaves (a
    /// hidden leader hands the connection to a visible tab), a visible one
    /// joins again.
    fn on_page_visibility(self: &Rc<Self>, visible: bool) {
        let listening = !self.st.borrow().closed && !self.st.borrow().listeners.is_empty();
        if !visible {
            self.suspend();
        } else if self.tabs.role() == Some(Role::Idle) && listening {
            self.start();
        }
    }

    fn suspend(self: &Rc<Self>) {
        if !matches!(self.tabs.role(), Some(Role::Follower | Role::Leader)) {
            return;
        }
        self.stop_connection();
        self.tabs_stop();
    }
}
