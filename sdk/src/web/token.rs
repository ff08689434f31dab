//! `getToken` plumbing: the token for the next request, and the JS callback
//! turned into a [`GetToken`].
//!
//! The callback is asked before every (re)connect and every poll; the core
//! decides when (a 401 reopens at once, which asks again). A callback that
//! throws, rejects or returns a non-string is an `auth` error and counts as
//! a failed attempt, so a broken callback backs off instead of spinning.

use std::fmt;
use std::future::Future;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::platform::error_text;
use super::then::{self, then};
use crate::options::{Options, TokenFuture};

#[wasm_bindgen(typescript_custom_section)]
const TS_GET_TOKEN: &'static str = r#"
export interface ConnectOptions {
    /**
     * Called before every (re)connect and every poll for a fresh token, which
     * then replaces `token`. A 401 calls it once more at once before backing
     * off; a 403 stops with state `closed` and an `auth` error. Throwing or
     * rejecting counts as a failed attempt (backoff). Default: none.
     */
    getToken?: () => Promise<string> | string;
}
"#;

/// The `getToken` callback: called before every (re)connect and every poll,
/// so an expired token is replaced. Compared by identity.
///
/// In the browser it is held as a function giving a promise, which the
/// transports wait on through [`then`] (no executor in the package unless an
/// app makes one with [`GetToken::new`]).
#[derive(Clone)]
pub struct GetToken(Rc<dyn Fn() -> Call>);

/// One call of the callback: the promise of the token, and what a rejection's
/// text is prefixed with (the JS callback says whether it threw or rejected;
/// a Rust callback's own error text is kept as is).
struct Call(js_sys::Promise, &'static str);

impl GetToken {
    /// Wraps an async closure: `GetToken::new(|| async { Ok(fetch_token().await) })`.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<String, String>> + 'static,
    {
        GetToken(Rc::new(move || {
            let fut = f();
            let promise = wasm_bindgen_futures::future_to_promise(async move {
                fut.await.map(JsValue::from).map_err(JsValue::from)
            });
            Call(promise, "")
        }))
    }

    /// Calls the callback.
    pub fn call(&self) -> TokenFuture {
        let Call(promise, prefix) = (self.0)();
        Box::pin(async move {
            let value = wasm_bindgen_futures::JsFuture::from(promise)
                .await
                .map_err(|e| [prefix, &error_text(&e)].concat())?;
            value.as_string().ok_or_else(not_a_string)
        })
    }
}

impl fmt::Debug for GetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GetToken(..)")
    }
}

impl PartialEq for GetToken {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

fn not_a_string() -> String {
    "getToken must return a string (or a promise of one)".to_owned()
}

/// Calls `done` with the token for the next request: `getToken()` if set,
/// else the static `token`. `Ok(None)` means no token at all. The callback is
/// called from a microtask of its own, never from inside the caller (which
/// may be the manager's action loop), and `done` always later still.
pub(crate) fn resolve(
    options: &Options,
    done: impl FnOnce(Result<Option<String>, String>) + 'static,
) {
    let token = options.token.clone().filter(|t| !t.is_empty());
    let get = options.get_token.clone();
    then::soon(move || {
        let Some(get) = get else {
            return done(Ok(token));
        };
        let Call(promise, prefix) = (get.0)();
        then(&promise, move |answer| {
            done(match answer {
                Ok(v) => v
                    .as_string()
                    .map(|t| Some(t).filter(|t| !t.is_empty()))
                    .ok_or_else(not_a_string),
                Err(e) => Err([prefix, &error_text(&e)].concat()),
            })
        });
    });
}

/// `options.getToken` of a JS options object, if it is a function. A plain
/// string or a promise of one; a throw or a rejection is an error.
pub(crate) fn from_js(options: &JsValue) -> Option<GetToken> {
    if !options.is_object() {
        return None;
    }
    let f = js_sys::Reflect::get(options, &"getToken".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    Some(GetToken(Rc::new(move || match f.call0(&JsValue::NULL) {
        Ok(v) => Call(js_sys::Promise::resolve(&v), "getToken rejected: "),
        Err(e) => Call(js_sys::Promise::reject(&e), "getToken threw: "),
    })))
}
