//! What the shell takes from the JS global (window or worker): the clock, a
//! random seed, `fetch`, `document`, a no-op function and the text of a JS
//! error. A leaf: every other shell module may use it, it uses none of them.

use std::time::Duration;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    /// The global `fetch` (window or worker), looked up when called.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &web_sys::Request) -> js_sys::Promise;

    /// `globalThis` (window or worker). `js_sys::global()` looks for `self`,
    /// `window` and `global` too, for engines older than every one that runs
    /// this wasm (reference types: Chrome 96, Firefox 79, Safari 15).
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL_THIS: JsValue;
}

/// The global object (window or worker).
pub(crate) fn global() -> JsValue {
    GLOBAL_THIS.with(JsValue::clone)
}

/// Fetches `request` with the `fetch` option when set, else the global `fetch`.
/// A custom `fetch` that throws gives a rejected promise, as the real one would.
pub(crate) fn fetch(
    options: &crate::options::Options,
    request: &web_sys::Request,
) -> js_sys::Promise {
    match &options.js.fetch {
        Some(f) => match f.call1(&JsValue::NULL, request) {
            Ok(v) => js_sys::Promise::resolve(&v),
            Err(e) => js_sys::Promise::reject(&e),
        },
        None => global_fetch(request),
    }
}

/// Monotonic time for the sans-IO cores (`std::time::Instant` does not exist
/// on `wasm32-unknown-unknown`); while a [`Still`] lives, the time it was made.
pub(crate) fn now() -> Duration {
    STILL.with(std::cell::Cell::get).unwrap_or_else(read_clock)
}

fn read_clock() -> Duration {
    // Whole microseconds: no float-to-Duration conversion (and its panics) in the package.
    Duration::from_micros((performance_now().max(0.0) * 1000.0) as u64)
}

thread_local! {
    /// The reading a [`Still`] holds [`now`] at.
    static STILL: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// Holds [`now`] at one reading while the events of one network chunk are
/// handed over, one after another in the same task: they arrived together,
/// and `performance.now()` per event cost more than the rest of the clock
/// work. Made and dropped within one synchronous stretch, never across an
/// `await`; one made while another holds the clock changes nothing.
pub(crate) struct Still(bool);

impl Still {
    /// Holds the clock until this is dropped.
    pub(crate) fn new() -> Still {
        Still::hold(read_clock)
    }

    /// Holds the clock at `ms`, an event's `timeStamp` (the same clock as
    /// `performance.now()`: milliseconds since the time origin), read
    /// without a call to the clock; a value out of that clock's range
    /// (an engine's epoch time, or none) is not used: the clock is read.
    /// Blink and Gecko make an `EventSource` event when they dispatch it, so
    /// its stamp is this task's time; a stamp a little behind an earlier
    /// reading is harmless: the cores only add to `now` and compare, and
    /// subtract saturating.
    pub(crate) fn at(ms: f64) -> Still {
        Still::hold(|| {
            if ms > 0.0 && ms < 1e11 {
                Duration::from_micros((ms * 1000.0) as u64)
            } else {
                read_clock()
            }
        })
    }

    fn hold(clock: impl FnOnce() -> Duration) -> Still {
        STILL.with(|s| {
            let first = s.get().is_none();
            if first {
                s.set(Some(clock()));
            }
            Still(first)
        })
    }
}

impl Drop for Still {
    fn drop(&mut self) {
        if self.0 {
            STILL.with(|s| s.set(None));
        }
    }
}

/// A random 53-bit number from `Math.random()`: seeds backoff jitter and names tabs.
pub(crate) fn random_u64() -> u64 {
    (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64
}

/// A callable no-op: `Function.prototype` (no eval, so it is CSP-safe).
pub(crate) fn noop() -> js_sys::Function {
    js_sys::Reflect::get(&global(), &"Function".into())
        .ok()
        .and_then(|f| js_sys::Reflect::get(&f, &"prototype".into()).ok())
        .and_then(|p| p.dyn_into::<js_sys::Function>().ok())
        .unwrap_or_else(|| JsValue::UNDEFINED.unchecked_into())
}

/// The text of a thrown JS value: its `message`, a thrown string as is, else
/// its debug form.
pub(crate) fn error_text(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .or_else(|| js_sys::JSON::stringify(e).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "a JS value that is not an Error".to_owned())
}

/// A property of the global object, if it is an object (a getter that throws,
/// as `sessionStorage` does in a sandboxed frame, gives `None`).
pub(crate) fn global_object(name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(&global(), &name.into())
        .ok()
        .filter(|v| v.is_object())
}

/// The global object as an event target (`online`, `pagehide`, `pageshow`).
pub(crate) fn global_target() -> Option<web_sys::EventTarget> {
    global().dyn_into::<web_sys::EventTarget>().ok()
}

/// The page's `document` (none in a worker).
pub(crate) fn document() -> Option<web_sys::Document> {
    global_object("document").and_then(|d| d.dyn_into::<web_sys::Document>().ok())
}

/// Whether the page is visible (`document.visibilityState`).
pub(crate) fn is_visible(doc: &web_sys::Document) -> bool {
    doc.visibility_state() == web_sys::VisibilityState::Visible
}
