//! The transports: `EventSource`, the `fetch` stream ([`super::fetch`]) and
//! one polling `fetch`. Each owns its callbacks; dropping it closes / aborts
//! and frees them. Before each open and each poll the token comes from
//! [`super::token::resolve`] (`getToken` or the static token).

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::fetch::{build_request, FetchTransport};
use super::{now, token, Inner};
use crate::connection::{ErrorInfo, ErrorKind, Output};
use crate::messages::PollResponse;
use crate::options::{Options, Transport};
use crate::parser::SseEvent;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (window or worker), looked up when called.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &web_sys::Request) -> js_sys::Promise;
}

/// The SSE transport slot of a manager.
pub(crate) enum SseTransport {
    /// The browser's `EventSource`.
    EventSource(EsTransport),
    /// The `fetch` stream.
    Fetch(FetchTransport),
    /// Waiting for `getToken`; the result is dropped if the generation moved on.
    Opening,
}

impl SseTransport {
    /// Listens for the SSE event `name` too (only `EventSource` needs it).
    pub(crate) fn ensure_name(&mut self, name: &str) {
        if let SseTransport::EventSource(es) = self {
            es.ensure_name(name);
        }
    }

    /// Stops the transport at once (EventSource's own retry, or the fetch).
    pub(crate) fn close(&self) {
        match self {
            SseTransport::EventSource(es) => es.close(),
            SseTransport::Fetch(f) => f.close(),
            SseTransport::Opening => {}
        }
    }
}

impl Inner {
    /// Carries out `Action::OpenSse` for `generation` (already bumped, old
    /// transport already dropped): asks `getToken` first when there is one.
    pub(crate) fn open_sse(self: &Rc<Self>, generation: u64, last_event_id: Option<String>) {
        if self.options.get_token.is_none() {
            let t = self.options.token.clone();
            return self.open_sse_with(generation, last_event_id.as_deref(), t.as_deref());
        }
        self.st.borrow_mut().sse = Some(SseTransport::Opening);
        let weak = Rc::downgrade(self);
        let options = self.options.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let token = token::resolve(&options).await;
            let Some(inner) = weak.upgrade() else { return };
            if !inner.is_current(generation) {
                return;
            }
            match token {
                Ok(t) => inner.open_sse_with(generation, last_event_id.as_deref(), t.as_deref()),
                Err(e) => {
                    inner.emit(Output::Error(ErrorInfo::new(ErrorKind::Auth, e.clone())));
                    inner.on_stream_failed(generation, &e);
                }
            }
        });
    }

    fn open_sse_with(
        self: &Rc<Self>,
        generation: u64,
        last_event_id: Option<&str>,
        token: Option<&str>,
    ) {
        if self.options.transport == Transport::Fetch {
            let t = FetchTransport::open(
                &self.url,
                &self.options,
                token,
                last_event_id,
                Rc::downgrade(self),
                generation,
            );
            self.st.borrow_mut().sse = Some(SseTransport::Fetch(t));
            return;
        }
        let url = crate::url::sse_url(&self.url, last_event_id, token);
        let mut st = self.st.borrow_mut();
        let mut names = st.listeners.types();
        names.extend(
            super::base_names(self.decoder)
                .iter()
                .map(|s| (*s).to_owned()),
        );
        match EsTransport::open(
            &url,
            self.options.with_credentials,
            &names,
            Rc::downgrade(self),
            generation,
        ) {
            Ok(t) => st.sse = Some(SseTransport::EventSource(t)),
            Err(message) => {
                // A synchronous failure (bad URL, CSP) is an SSE error like any other.
                let weak = Rc::downgrade(self);
                let t = Timeout::new(0, move || {
                    if let Some(inner) = weak.upgrade() {
                        inner.emit(Output::Error(ErrorInfo::new(ErrorKind::Network, message)));
                        inner.on_sse_error(generation);
                    }
                });
                // Owned by the transport slot, so a later action replaces (cancels) it.
                st.sse = Some(SseTransport::EventSource(EsTransport::failed(t)));
            }
        }
    }

    /// `visibilitychange`: with `pauseWhenHidden`, close while hidden and
    /// resume after the last id when visible; visible also retries at once.
    pub(crate) fn on_visibility(self: &Rc<Self>, visible: bool) {
        // Shared across tabs: the tab leaves / rejoins instead (web/tabs.rs).
        if self.options.pause_when_hidden && !self.tabs_visibility(visible) {
            {
                let mut st = self.st.borrow_mut();
                if st.closed || st.listeners.is_empty() {
                    return;
                }
                if visible {
                    st.conn.start(now());
                } else {
                    st.conn.stop();
                }
            }
            self.drive();
        }
        if visible {
            self.wake();
        }
    }
}

/// An open `EventSource` with its listeners. `Drop` closes it.
pub(crate) struct EsTransport {
    es: Option<web_sys::EventSource>,
    listeners: Vec<EventListener>,
    names: HashSet<String>,
    inner: Weak<Inner>,
    generation: u64,
    /// `MessageEvent.lastEventId` repeats the previous id for events without
    /// an `id:` line. Ids strictly increase per stream (PROTOCOL.md), so an
    /// unchanged value means "no id"; shared by all listeners of this source.
    prev_id: Rc<RefCell<String>>,
    _deferred_failure: Option<Timeout>,
}

impl EsTransport {
    pub(crate) fn open(
        url: &str,
        with_credentials: bool,
        names: &[String],
        inner: Weak<Inner>,
        generation: u64,
    ) -> Result<EsTransport, String> {
        let init = web_sys::EventSourceInit::new();
        init.set_with_credentials(with_credentials);
        let es = web_sys::EventSource::new_with_event_source_init_dict(url, &init)
            .map_err(|e| format!("EventSource constructor failed: {e:?}"))?;
        let mut t = EsTransport {
            es: Some(es.clone()),
            listeners: Vec::new(),
            names: HashSet::new(),
            inner: inner.clone(),
            generation,
            prev_id: Rc::new(RefCell::new(String::new())),
            _deferred_failure: None,
        };
        let w = inner.clone();
        t.listeners.push(EventListener::new(&es, "open", move |_| {
            if let Some(i) = w.upgrade() {
                i.on_sse_open(generation);
            }
        }));
        // `error` is both the connection failure (a plain Event) and a
        // server-sent `event: error` (a MessageEvent with data).
        let w = inner;
        let prev = t.prev_id.clone();
        t.listeners.push(EventListener::new(&es, "error", move |e| {
            let Some(i) = w.upgrade() else { return };
            match e
                .dyn_ref::<web_sys::MessageEvent>()
                .and_then(|m| to_sse(m, &prev))
            {
                Some(ev) => i.on_sse_event(generation, ev),
                None => i.on_sse_error(generation),
            }
        }));
        t.names.insert("error".to_owned());
        for n in names {
            t.ensure_name(n);
        }
        Ok(t)
    }

    /// A transport that failed synchronously; its error is reported by `timer`.
    pub(crate) fn failed(timer: Timeout) -> EsTransport {
        EsTransport {
            es: None,
            listeners: Vec::new(),
            names: HashSet::new(),
            inner: Weak::new(),
            generation: 0,
            prev_id: Rc::default(),
            _deferred_failure: Some(timer),
        }
    }

    /// Listens for the SSE event `name` too (EventSource only delivers named
    /// events to listeners of that exact name). `*` cannot be listened for.
    pub(crate) fn ensure_name(&mut self, name: &str) {
        let Some(es) = self.es.as_ref() else { return };
        if name == "*" || name == "open" || !self.names.insert(name.to_owned()) {
            return;
        }
        let w = self.inner.clone();
        let generation = self.generation;
        let prev = self.prev_id.clone();
        self.listeners
            .push(EventListener::new(es, name.to_owned(), move |e| {
                let Some(i) = w.upgrade() else { return };
                if let Some(ev) = e
                    .dyn_ref::<web_sys::MessageEvent>()
                    .and_then(|m| to_sse(m, &prev))
                {
                    i.on_sse_event(generation, ev);
                }
            }));
    }

    /// Stops the browser's own reconnection at once.
    pub(crate) fn close(&self) {
        if let Some(es) = &self.es {
            es.close();
        }
    }
}

impl Drop for EsTransport {
    fn drop(&mut self) {
        self.close();
    }
}

fn to_sse(m: &web_sys::MessageEvent, prev: &RefCell<String>) -> Option<SseEvent> {
    let data = m.data().as_string()?;
    let last = m.last_event_id();
    let id = {
        let mut prev = prev.borrow_mut();
        if last.is_empty() || *prev == last {
            None
        } else {
            prev.clone_from(&last);
            Some(last)
        }
    };
    Some(SseEvent {
        event: m.type_(),
        data,
        id,
    })
}

/// One polling request in flight. `Drop` aborts it.
pub(crate) struct PollRequest {
    abort: Option<web_sys::AbortController>,
}

impl PollRequest {
    /// Asks for the token (`getToken` or the static one), then fetches `url`
    /// with the manager's headers and credentials.
    pub(crate) fn start(
        url: &str,
        options: &Options,
        inner: Weak<Inner>,
        generation: u64,
    ) -> PollRequest {
        let abort = web_sys::AbortController::new().ok();
        let signal = abort.as_ref().map(web_sys::AbortController::signal);
        let (url, options) = (url.to_owned(), options.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let result = match token::resolve(&options).await {
                Err(e) => Err(ErrorInfo::new(ErrorKind::Auth, e)),
                // The position is in the URL (`lastEventId=`), not a header.
                Ok(t) => match build_request(
                    &url,
                    "application/json",
                    &options,
                    t.as_deref(),
                    None,
                    signal.as_ref(),
                ) {
                    Ok(r) => fetch_poll(&r).await,
                    Err(e) => Err(ErrorInfo::new(
                        ErrorKind::Network,
                        format!("bad polling request: {e}"),
                    )),
                },
            };
            if let Some(i) = inner.upgrade() {
                i.on_poll_result(generation, result);
            }
        });
        PollRequest { abort }
    }
}

impl Drop for PollRequest {
    fn drop(&mut self) {
        if let Some(a) = &self.abort {
            a.abort();
        }
    }
}

fn js_message(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Fetches one polling-form request and parses its body (errors carry status and body).
pub(crate) async fn fetch_poll(request: &web_sys::Request) -> Result<PollResponse, ErrorInfo> {
    let network = |e: JsValue| {
        ErrorInfo::new(
            ErrorKind::Network,
            format!("polling fetch failed: {}", js_message(&e)),
        )
    };
    let resp: web_sys::Response = JsFuture::from(global_fetch(request))
        .await
        .map_err(network)?
        .unchecked_into();
    let status = resp.status();
    let body = match resp.text() {
        Ok(p) => JsFuture::from(p)
            .await
            .map_err(network)?
            .as_string()
            .unwrap_or_default(),
        Err(e) => return Err(network(e)),
    };
    if !(200..300).contains(&status) || status == 204 {
        let kind = if status == 401 || status == 403 {
            ErrorKind::Auth
        } else {
            ErrorKind::Http
        };
        let mut e = ErrorInfo::new(kind, format!("polling got HTTP {status}"));
        e.status = Some(status);
        e.raw = Some(body);
        return Err(e);
    }
    PollResponse::from_json(&body).map_err(|d| {
        let mut e = ErrorInfo::new(ErrorKind::Protocol, format!("polling response: {d}"));
        e.status = Some(status);
        e.raw = Some(body);
        e
    })
}
