//! Promise continuations without an executor: [`then`] runs a callback with
//! the outcome of a JS promise.
//!
//! Every continuation of the package (the `fetch` stream's response and
//! reads, the polling request, a follower's catch-up, `getToken`, `onOpen`,
//! the `poll` function, a microtask) goes through this one closure type (a
//! boxed `FnOnce` behind one `FnMut(bool, JsValue)`), instead of an `async`
//! task each, with an executor's queue and two closures per `await`.
//!
//! Ownership: the JS function belongs to the promise it waits on. Its one
//! call consumes the callback; the function itself is released to JS (no
//! Rust owner), so wasm-bindgen's finalization registry frees what is left of
//! it once the promise is settled or gone, and a promise that never settles
//! (a `getToken` that never answers) takes it along when it is collected.
//! The callbacks hold their manager through a [`Handle`](super::input::Handle)
//! (weak): one that runs after its owner is gone, or replaced, does nothing.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A settled promise: its value, or why it was rejected.
pub(crate) type Settled = Result<JsValue, JsValue>;

/// Runs `f` once with the outcome of `promise` (a later microtask, never now).
pub(crate) fn then(promise: &js_sys::Promise, f: impl FnOnce(Settled) + 'static) {
    then_boxed(promise, Box::new(f));
}

/// Runs `f` in a microtask of its own (after the current task's code).
pub(crate) fn soon(f: impl FnOnce() + 'static) {
    then_boxed(
        &js_sys::Promise::resolve(&JsValue::UNDEFINED),
        Box::new(|_| f()),
    );
}

fn then_boxed(promise: &js_sys::Promise, f: Box<dyn FnOnce(Settled)>) {
    let mut f = Some(f);
    let callback = Closure::<dyn FnMut(bool, JsValue)>::new(move |ok: bool, value: JsValue| {
        if let Some(f) = f.take() {
            f(if ok { Ok(value) } else { Err(value) });
        }
    })
    .into_js_value();
    let callback: &Callback = callback.unchecked_ref();
    promise.unchecked_ref::<Thenable>().then(
        &callback.bind(&JsValue::NULL, true),
        &callback.bind(&JsValue::NULL, false),
    );
}

#[wasm_bindgen]
extern "C" {
    /// A promise, seen as what [`then`] needs of it.
    type Thenable;

    /// `promise.then(ok, err)`.
    #[wasm_bindgen(method)]
    fn then(this: &Thenable, ok: &JsValue, err: &JsValue);

    /// The callback's JS function.
    type Callback;

    /// `callback.bind(context, ok)`: the function called with `ok` first.
    #[wasm_bindgen(method)]
    fn bind(this: &Callback, context: &JsValue, ok: bool) -> JsValue;
}
