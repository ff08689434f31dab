//! `getToken` plumbing: the token for the next request, and the JS callback
//! turned into a [`GetToken`].
//!
//! The callback is asked before every (re)connect and every poll; the core
//! decides when (a 401 reopens at once, which asks again). A callback that
//! throws, rejects or returns a non-string is an `auth` error and counts as
//! a failed attempt, so a broken callback backs off instead of spinning.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::platform::error_text;
use crate::options::{GetToken, Options};

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

/// The token for the next request: `getToken()` if set, else the static `token`.
/// `Ok(None)` means no token at all.
pub(crate) async fn resolve(options: &Options) -> Result<Option<String>, String> {
    match &options.get_token {
        Some(get) => get.call().await.map(|t| Some(t).filter(|t| !t.is_empty())),
        None => Ok(options.token.clone().filter(|t| !t.is_empty())),
    }
}

/// `options.getToken` of a JS options object, if it is a function.
pub(crate) fn from_js(options: &JsValue) -> Option<GetToken> {
    if !options.is_object() {
        return None;
    }
    let f = js_sys::Reflect::get(options, &"getToken".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    Some(GetToken::new(move || call(f.clone())))
}

/// Calls the JS callback; a plain string or a promise of one.
async fn call(f: js_sys::Function) -> Result<String, String> {
    let value = f
        .call0(&JsValue::NULL)
        .map_err(|e| ["getToken threw: ", &error_text(&e)].concat())?;
    let value = JsFuture::from(js_sys::Promise::resolve(&value))
        .await
        .map_err(|e| ["getToken rejected: ", &error_text(&e)].concat())?;
    value
        .as_string()
        .ok_or_else(|| "getToken must return a string (or a promise of one)".to_owned())
}
