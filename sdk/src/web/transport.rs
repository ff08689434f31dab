//! The transports of one manager: the SSE transport (`EventSource`, or the
//! `fetch` stream of [`super::stream`]) and one polling request. Each owns its
//! callbacks; dropping it closes / aborts and frees them. Before each open and
//! each poll the token comes from [`super::token::resolve`] (`getToken` or
//! the static token).
//!
//! A transport reports through its [`Handle`] (see [`super::input`]).

use std::rc::Rc;

use gloo_events::EventListener;
use wasm_bindgen::prelude::*;

use super::input::{Handle, Input};
use super::mux::{self, Membership};
use super::platform::{self, error_text};
use super::stream::FetchTransport;
use super::then::{self, then};
use super::timer::Timeout;
use super::{http, token};
use crate::connection::{ErrorInfo, ErrorKind};
use crate::messages::PollResponse;
use crate::options::{Options, Transport};
use crate::parser::SseEvent;

/// The SSE transport slot of a manager.
pub(crate) enum SseTransport {
    /// The browser's `EventSource`.
    EventSource(EsTransport),
    /// The `fetch` stream.
    Fetch(FetchTransport),
    /// Waiting for `getToken`; the answer comes as [`Input::Token`].
    Opening,
    /// A place on the page's shared connection (see [`super::mux`]); held
    /// only to be dropped, which leaves the shared connection's set.
    Mux(#[allow(dead_code)] Membership),
}

impl SseTransport {
    /// Asks `getToken` for the token to open with; the answer comes back as
    /// [`Input::Token`], and the manager then calls [`SseTransport::open`].
    pub(crate) fn ask_token(
        handle: Handle,
        options: &Rc<Options>,
        last_event_id: Option<String>,
    ) -> SseTransport {
        token::resolve(options, move |token| {
            handle.send(Input::Token {
                token,
                last_event_id,
            });
        });
        SseTransport::Opening
    }

    /// Opens the transport `options.transport` names for the stream at `url`.
    /// `names`: the event names an `EventSource` listens for.
    pub(crate) fn open(
        handle: Handle,
        url: &str,
        options: &Rc<Options>,
        names: &[String],
        last_event_id: Option<&str>,
        token: Option<&str>,
    ) -> SseTransport {
        if let Some(endpoint) = mux::endpoint_for(url, options) {
            return SseTransport::Mux(mux::join(&endpoint, url, options, last_event_id, handle));
        }
        match options.transport_in_use() {
            Transport::Fetch => SseTransport::Fetch(FetchTransport::open(
                handle,
                url,
                options,
                token,
                last_event_id,
            )),
            Transport::EventSource => {
                let url = crate::url::sse_url(url, last_event_id, token, &options.resume_param);
                SseTransport::EventSource(EsTransport::open(
                    handle,
                    &url,
                    options.with_credentials,
                    names,
                ))
            }
        }
    }

    /// Listens for the SSE event `name` too (only `EventSource` needs it).
    pub(crate) fn ensure_name(&mut self, name: &str) {
        if let SseTransport::EventSource(es) = self {
            es.ensure_name(name);
        }
    }

    /// Whether this is a place on the shared connection.
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, SseTransport::Mux(_))
    }

    /// Stops the transport at once (EventSource's own retry, or the fetch).
    pub(crate) fn close(&self) {
        match self {
            SseTransport::EventSource(es) => es.close(),
            SseTransport::Fetch(f) => f.close(),
            SseTransport::Opening | SseTransport::Mux(_) => {}
        }
    }
}

/// An open `EventSource` with its listeners. `Drop` closes it.
pub(crate) struct EsTransport {
    es: Option<web_sys::EventSource>,
    /// The `open` listener.
    open: Option<EventListener>,
    /// The listeners of [`listen`], by event name (a few: a `Vec` is smaller
    /// than a map), `error` first.
    listeners: Vec<EsListener>,
    handle: Handle,
    /// The JS state all listeners of this source share (see [`listen`]).
    state: js_sys::Object,
    /// A constructor failure is reported from a timer, never from inside the
    /// manager's own action loop; owned here so a later action cancels it.
    _deferred_failure: Option<Timeout>,
}

/// What a listener of [`listen`] gets per event: whether it has string data
/// (the connection failure `error`, a plain `Event`, has none), the data,
/// the id (`None`: the event has no id of its own) and the event's
/// `timeStamp`. The data crosses as a plain `JsValue` (an `Option` would cost
/// a slot in the externref table per event).
type EsCallback = dyn FnMut(bool, JsValue, Option<String>, f64);

/// One listener of [`listen`]: the JS function registered and the closure
/// it calls. Removed in [`EsTransport`]'s `Drop`.
struct EsListener {
    name: String,
    js: js_sys::Function,
    _callback: Closure<EsCallback>,
}

#[wasm_bindgen(inline_js = "export function listen(es, name, st, f) {
  const h = (e) => {
    const d = e.data;
    if (typeof d !== 'string') return f(false, undefined, undefined, e.timeStamp);
    let id = e.lastEventId;
    if (id === '' || id === st.p) id = undefined;
    else st.p = id;
    f(true, d, id, e.timeStamp);
  };
  es.addEventListener(name, h);
  return h;
}")]
extern "C" {
    /// Listens for `name` on `es` with a JS function that reads the event in
    /// JS and calls `f` with what [`to_sse`] needs: one crossing per event,
    /// where reading `data`, `lastEventId` and `timeStamp` from wasm (and
    /// checking the event's class and the data's type) took five.
    /// `MessageEvent.lastEventId` repeats the previous id for events without
    /// an `id:` line; ids strictly increase per stream (PROTOCOL.md), so an
    /// unchanged value means "no id": the previous one is kept in `st.p`,
    /// shared by all listeners of the source.
    fn listen(
        es: &web_sys::EventSource,
        name: &str,
        st: &js_sys::Object,
        f: &JsValue,
    ) -> js_sys::Function;
}

impl EsTransport {
    fn open(handle: Handle, url: &str, with_credentials: bool, names: &[String]) -> EsTransport {
        let mut t = EsTransport {
            es: None,
            open: None,
            listeners: Vec::new(),
            handle: handle.clone(),
            state: js_sys::Object::new(),
            _deferred_failure: None,
        };
        let init = web_sys::EventSourceInit::new();
        init.set_with_credentials(with_credentials);
        let es = match web_sys::EventSource::new_with_event_source_init_dict(url, &init) {
            Ok(es) => es,
            Err(e) => {
                let message = ["EventSource constructor failed: ", &error_text(&e)].concat();
                t._deferred_failure = Some(Timeout::new(0, move || {
                    handle.send(Input::SseOpenFailed(message));
                }));
                return t;
            }
        };
        let h = handle.clone();
        t.open = Some(EventListener::new(&es, "open", move |_| {
            h.send(Input::SseOpen);
        }));
        // `error` is both the connection failure (a plain Event) and a
        // server-sent `event: error` (a MessageEvent with data).
        let callback = Closure::<EsCallback>::new(move |message, data, id, _stamp| {
            match to_sse(message, data, id, "error") {
                Some(ev) => handle.send(ev),
                None => handle.send(Input::SseError),
            };
        });
        t.add(&es, "error", callback);
        t.es = Some(es);
        for n in names {
            t.ensure_name(n);
        }
        t
    }

    fn add(&mut self, es: &web_sys::EventSource, name: &str, callback: Closure<EsCallback>) {
        let js = listen(es, name, &self.state, callback.as_ref());
        self.listeners.push(EsListener {
            name: name.to_owned(),
            js,
            _callback: callback,
        });
    }

    /// Listens for the SSE event `name` too (EventSource only delivers named
    /// events to listeners of that exact name). `*` cannot be listened for.
    fn ensure_name(&mut self, name: &str) {
        let Some(es) = self.es.clone() else { return };
        if name == "*" || name == "open" || self.listeners.iter().any(|l| l.name == name) {
            return;
        }
        let handle = self.handle.clone();
        let ty = name.to_owned();
        let callback = Closure::<EsCallback>::new(move |message, data, id, stamp| {
            if let Some(ev) = to_sse(message, data, id, &ty) {
                // The clock as the event's time stamp (no `performance.now()`).
                let _still = platform::Still::at(stamp);
                handle.send(ev);
            }
        });
        self.add(&es, name, callback);
    }

    /// Stops the browser's own reconnection at once.
    fn close(&self) {
        if let Some(es) = &self.es {
            es.close();
        }
    }
}

impl Drop for EsTransport {
    fn drop(&mut self) {
        self.close();
        if let Some(es) = &self.es {
            for l in &self.listeners {
                let _ = es.remove_event_listener_with_callback(&l.name, &l.js);
            }
        }
    }
}

/// The event a listener of [`listen`] for the type `ty` got (its
/// `MessageEvent.type`, known without asking the browser for a copy), if it
/// has string data (`message`). Its data stays in JS (listeners get that very string); it
/// is copied into wasm only where it is needed (see [`Input::SseEventJs`]).
fn to_sse(message: bool, js: JsValue, id: Option<String>, ty: &str) -> Option<Input> {
    if !message {
        return None;
    }
    Some(Input::SseEventJs {
        ev: SseEvent {
            event: ty.to_owned(),
            data: String::new(),
            id,
        },
        js,
        lazy: true,
    })
}

/// One polling request in flight: the Tidings polling form, or the app's
/// `poll` function. `Drop` aborts it. Every request has a timeout
/// (`pollTimeoutMs`): when it passes the request is aborted and reported as
/// failed, whatever the server (or the function) does later.
pub(crate) struct PollRequest {
    abort: Option<web_sys::AbortController>,
    _deadline: Timeout,
}

impl PollRequest {
    /// Starts the poll for the position `last_event_id`: the app's function
    /// when `poll` is one, else the Tidings form of `url` (with the token from
    /// `getToken` or the static one, the manager's headers and credentials).
    /// The result comes back as [`Input::Poll`].
    pub(crate) fn start(
        handle: Handle,
        url: &str,
        options: &Rc<Options>,
        last_event_id: Option<String>,
        timeout_ms: u32,
    ) -> PollRequest {
        let abort = web_sys::AbortController::new().ok();
        let signal = abort.as_ref().map(web_sys::AbortController::signal);
        let h = handle.clone();
        match &options.js.poll {
            // Called from a microtask of its own, never from inside the
            // manager's action loop (the function may call back into the SDK).
            Some(f) => {
                let f = f.clone();
                then::soon(move || {
                    call_poll_function(
                        &f,
                        last_event_id,
                        signal.as_ref(),
                        Box::new(move |result| {
                            h.send(Input::Poll(result));
                        }),
                    );
                });
            }
            // The position is in the URL (`lastEventId=`), not a header.
            None => http::poll_with_token(
                crate::url::poll_url(url, last_event_id.as_deref()),
                Rc::clone(options),
                signal,
                Box::new(move |result| {
                    let result = result.map_err(|f| {
                        if let Some(delay) = f.retry_after {
                            h.send(Input::RetryAfter { delay, poll: true });
                        }
                        f.error
                    });
                    h.send(Input::Poll(result));
                }),
            ),
        }
        let aborter = abort.clone();
        let deadline = Timeout::new(timeout_ms, move || {
            if let Some(a) = &aborter {
                a.abort();
            }
            handle.send(Input::Poll(Err(ErrorInfo::new(
                ErrorKind::Network,
                [
                    "polling request timed out after ",
                    &crate::json::uint_text(u64::from(timeout_ms)),
                    " ms",
                ]
                .concat(),
            ))));
        });
        PollRequest {
            abort,
            _deadline: deadline,
        }
    }
}

/// Calls the app's `poll({ lastEventId, signal })` and reads its answer
/// `{ events: [{ id?, event?, data }], lastEventId?, end? }`. A throw, a
/// rejection or an answer of another shape is an error (the next poll backs
/// off); `data` that is not a string is sent on as its JSON text.
fn call_poll_function(
    f: &js_sys::Function,
    last_event_id: Option<String>,
    signal: Option<&web_sys::AbortSignal>,
    done: Box<dyn FnOnce(Result<PollResponse, ErrorInfo>)>,
) {
    let arg = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&arg, &k.into(), v);
    let _ = set(
        "lastEventId",
        &last_event_id.map_or(JsValue::NULL, |s| JsValue::from_str(&s)),
    );
    let _ = set("signal", signal.map_or(&JsValue::UNDEFINED, |s| s.as_ref()));
    // A throw is reported like a rejection, from a later microtask.
    let (answer, failed) = match f.call1(&JsValue::NULL, &arg) {
        Ok(v) => (js_sys::Promise::resolve(&v), "rejected"),
        Err(e) => (js_sys::Promise::reject(&e), "threw"),
    };
    then(&answer, move |answer| {
        done(match answer {
            Ok(value) => PollResponse::from_answer(&value).map_err(|reason| {
                let mut e = ErrorInfo::new(
                    ErrorKind::Protocol,
                    ["poll function answer: ", &reason].concat(),
                );
                e.raw = Some(crate::json::Json::to_text(&value));
                e
            }),
            Err(e) => Err(ErrorInfo::new(
                ErrorKind::Network,
                ["poll function ", failed, ": ", &error_text(&e)].concat(),
            )),
        })
    });
}

impl Drop for PollRequest {
    fn drop(&mut self) {
        if let Some(a) = &self.abort {
            a.abort();
        }
    }
}
