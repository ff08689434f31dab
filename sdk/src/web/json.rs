//! [`Json`] for JS values: documents parsed by the browser's `JSON.parse`
//! (and the JS options object) read with `Reflect`, field by field, without
//! copying them into wasm. Property names are made into JS strings once.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::platform::error_text;
use crate::json::Json;

#[wasm_bindgen]
extern "C" {
    /// `JSON.parse` of a string already in JS (no second copy out of wasm).
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    pub(crate) fn parse_js(text: &JsValue) -> Result<JsValue, JsValue>;
}

#[wasm_bindgen(inline_js = "export function str_field(v, k) {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const s = v[k];
    if (typeof s === 'string') return s;
  }
}")]
extern "C" {
    /// [`Json::str_field`] in one call (a payload's `type`, read for every event).
    fn str_field(v: &JsValue, key: &JsValue) -> Option<String>;
}

thread_local! {
    /// Property names and event names as JS strings (a page uses a few dozen).
    static NAMES: RefCell<Vec<(String, JsValue)>> = const { RefCell::new(Vec::new()) };
}

/// Most names kept in [`NAMES`]; past it names are made per call (correct, slower).
const MAX_NAMES: usize = 128;

/// `name` as a JS string, made once per name. A name found is swapped to the
/// front, so the few asked for per event (`type`, the event name, the
/// listener's type) are found first, not after the option names.
pub(crate) fn js_name(name: &str) -> JsValue {
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(i) = names.iter().position(|(n, _)| n == name) {
            let v = names[i].1.clone();
            if i > 2 {
                names.swap(0, i);
            }
            return v;
        }
        let v = JsValue::from_str(name);
        if names.len() < MAX_NAMES {
            names.push((name.to_owned(), v.clone()));
        }
        v
    })
}

impl Json for JsValue {
    fn parse(text: &str) -> Result<Self, String> {
        parse_js(&JsValue::from_str(text)).map_err(|e| error_text(&e))
    }
    fn get(&self, key: &str) -> Option<Self> {
        if !Json::is_object(self) {
            return None;
        }
        js_sys::Reflect::get(self, &js_name(key))
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_function())
    }
    fn as_str(&self) -> Option<String> {
        self.as_string()
    }
    fn str_field(&self, key: &str) -> Option<String> {
        str_field(self, &js_name(key))
    }
    fn is_str(&self) -> bool {
        self.is_string()
    }
    fn as_f64(&self) -> Option<f64> {
        JsValue::as_f64(self)
    }
    fn as_bool(&self) -> Option<bool> {
        JsValue::as_bool(self)
    }
    fn is_null(&self) -> bool {
        JsValue::is_null(self)
    }
    fn is_object(&self) -> bool {
        JsValue::is_object(self) && !js_sys::Array::is_array(self)
    }
    fn items(&self) -> Option<Vec<Self>> {
        js_sys::Array::is_array(self).then(|| self.unchecked_ref::<js_sys::Array>().to_vec())
    }
    fn entries(&self) -> Option<Vec<(String, Self)>> {
        if !Json::is_object(self) {
            return None;
        }
        let entries = js_sys::Object::entries(self.unchecked_ref());
        Some(
            entries
                .iter()
                .filter_map(|e| {
                    let e: js_sys::Array = e.unchecked_into();
                    Some((e.get(0).as_string()?, e.get(1)))
                })
                .filter(|(_, v)| !v.is_undefined() && !v.is_function())
                .collect(),
        )
    }
    fn to_text(&self) -> String {
        js_sys::JSON::stringify(self)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_else(|| "null".to_owned())
    }
}
