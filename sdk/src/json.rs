//! Reading JSON documents field by field, through one small interface with
//! two implementations: the browser's own `JSON.parse` result (`JsValue`,
//! implemented in the shell, so no JSON library is compiled into the
//! package) and `serde_json::Value` (native builds: unit tests, fuzzing).
//!
//! The core reads every JSON it meets through [`Json`]: payload shapes of the
//! seed decoders, the protocol hello, polling answers, refusals on a
//! multiplexed connection, tab relays and the JS options object. [`Doc`] is
//! the document type of the build: `JsValue` on wasm32, `serde_json::Value`
//! elsewhere. Parsing is a pure function either way; the core stays sans-IO.

/// A parsed JSON document (or a JS value read as one).
pub(crate) trait Json: Sized {
    /// Parses JSON text; the error is the parser's reason.
    fn parse(text: &str) -> Result<Self, String>;
    /// The field `key` of an object; `None` when this is not an object or
    /// has no such field (a JS `undefined` or function counts as absent).
    fn get(&self, key: &str) -> Option<Self>;
    /// The string, if this is one.
    fn as_str(&self) -> Option<String>;
    /// The number, if this is one.
    fn as_f64(&self) -> Option<f64>;
    /// The boolean, if this is one.
    fn as_bool(&self) -> Option<bool>;
    /// Whether this is `null`.
    fn is_null(&self) -> bool;
    /// Whether this is an object (not an array, not `null`).
    fn is_object(&self) -> bool;
    /// The elements, if this is an array.
    fn items(&self) -> Option<Vec<Self>>;
    /// The fields in order, if this is an object.
    fn entries(&self) -> Option<Vec<(String, Self)>>;
    /// The JSON text of this value.
    fn to_text(&self) -> String;

    /// The string field `key` of an object (`get` then `as_str`); `None`
    /// when this is not an object, or the field is missing or not a string.
    fn str_field(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| v.as_str())
    }

    /// Whether this is a string (without copying it out).
    fn is_str(&self) -> bool {
        self.as_str().is_some()
    }

    /// The integer, if this is a number without a fraction that fits an `i64`.
    fn as_int(&self) -> Option<i64> {
        let n = self.as_f64()?;
        (n.fract() == 0.0 && n.abs() <= 9.2e18).then_some(n as i64)
    }

    /// What kind of value this is, for error texts (`a string`, `null`, …).
    fn kind(&self) -> &'static str {
        if self.is_null() {
            "null"
        } else if self.as_str().is_some() {
            "a string"
        } else if self.as_f64().is_some() {
            "a number"
        } else if self.as_bool().is_some() {
            "a boolean"
        } else if self.items().is_some() {
            "an array"
        } else {
            "an object"
        }
    }
}

/// The document type of this build.
#[cfg(target_arch = "wasm32")]
pub(crate) type Doc = wasm_bindgen::JsValue;
/// The document type of this build.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type Doc = serde_json::Value;

// Natively the document type; in the browser build only the unit tests use it
// (nothing in the package links it).
impl Json for serde_json::Value {
    fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
    fn get(&self, key: &str) -> Option<Self> {
        self.as_object()?.get(key).cloned()
    }
    fn as_str(&self) -> Option<String> {
        serde_json::Value::as_str(self).map(str::to_owned)
    }
    fn as_f64(&self) -> Option<f64> {
        serde_json::Value::as_f64(self)
    }
    fn as_bool(&self) -> Option<bool> {
        serde_json::Value::as_bool(self)
    }
    fn is_null(&self) -> bool {
        serde_json::Value::is_null(self)
    }
    fn is_object(&self) -> bool {
        serde_json::Value::is_object(self)
    }
    fn items(&self) -> Option<Vec<Self>> {
        self.as_array().cloned()
    }
    fn entries(&self) -> Option<Vec<(String, Self)>> {
        Some(
            self.as_object()?
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
    fn to_text(&self) -> String {
        self.to_string()
    }
    fn as_int(&self) -> Option<i64> {
        // serde_json keeps integers exact; `1.0` is a float, as serde reads it.
        self.as_i64()
    }
}

/// Appends `s` to `out` as a JSON string literal (quotes and escapes).
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `n` in decimal (no `core::fmt`).
pub(crate) fn push_uint(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for b in &buf[i..] {
        out.push(*b as char);
    }
}

/// `n` in decimal (no `core::fmt`).
pub(crate) fn uint_text(n: u64) -> String {
    let mut s = String::new();
    push_uint(&mut s, n);
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
