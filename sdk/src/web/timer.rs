//! One-shot timers (`setTimeout`), owned by the value they serve: dropping a
//! [`Timeout`] clears it and frees its callback.
//!
//! Every timer of the package shares one closure type (a boxed `FnOnce` behind
//! one `FnMut()` wrapper), so the wasm holds one copy of the closure glue
//! instead of one per call site, as a generic timer would.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// A pending `setTimeout`. `Drop` clears it (a no-op once it ran).
pub(crate) struct Timeout {
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Timeout {
    /// Runs `f` once after `ms` milliseconds, unless dropped first.
    pub(crate) fn new(ms: u32, f: impl FnOnce() + 'static) -> Timeout {
        Timeout::boxed(ms, Box::new(f))
    }

    fn boxed(ms: u32, f: Box<dyn FnOnce()>) -> Timeout {
        let mut f = Some(f);
        // Taken out before it runs: the callback may drop this very timer.
        let callback = Closure::<dyn FnMut()>::new(move || {
            if let Some(f) = f.take() {
                f();
            }
        });
        let ms = i32::try_from(ms).unwrap_or(i32::MAX);
        let id = set_timeout(callback.as_ref().unchecked_ref(), ms);
        Timeout {
            id,
            _callback: callback,
        }
    }

    /// Clears the timer now (what dropping it does).
    pub(crate) fn cancel(self) {}
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}
