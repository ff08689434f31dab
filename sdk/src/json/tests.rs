use serde_json::Value;

use super::*;

#[test]
fn strings_are_written_as_json_reads_them() {
    for s in [
        "",
        "plain",
        "quote \" back \\ slash",
        "line\nfeed\r\ttab",
        "\0\u{1}\u{1f}",
        "é€😀",
        "</script>",
    ] {
        let mut out = String::new();
        push_str(&mut out, s);
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s, "{out}");
    }
}

#[test]
fn integers_are_written_in_decimal() {
    for n in [0, 7, 10, 99, 1234567890, u64::MAX] {
        assert_eq!(uint_text(n), n.to_string());
    }
}

/// Reads through the trait only (serde_json's own methods have the same names).
fn read<J: Json>(text: &str) {
    let v = J::parse(text).unwrap();
    let get = |k: &str| v.get(k).unwrap();
    assert_eq!(get("a").as_str().as_deref(), Some("x"));
    assert_eq!(get("n").as_int(), Some(3));
    assert_eq!(get("f").as_int(), None);
    assert_eq!(get("f").as_f64(), Some(1.5));
    assert_eq!(get("b").as_bool(), Some(true));
    assert!(get("z").is_null());
    assert_eq!(get("l").items().map(|l| l.len()), Some(2));
    assert!(v.get("missing").is_none());
    assert!(get("a").get("a").is_none(), "a string has no fields");
    assert!(get("l").get("length").is_none(), "an array has no fields");
    assert!(v.is_object() && !get("l").is_object() && !get("z").is_object());
    assert_eq!(get("o").entries().unwrap()[0].0, "k");
    assert_eq!(get("o").to_text(), r#"{"k":"v"}"#);
    let kinds: Vec<&str> = ["a", "n", "b", "z", "l", "o"]
        .iter()
        .map(|k| get(k).kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "a string",
            "a number",
            "a boolean",
            "null",
            "an array",
            "an object"
        ]
    );
    assert!(get("a").is_str() && !get("n").is_str() && !get("z").is_str());
    assert!(J::parse("{").is_err());
}

#[test]
fn documents_are_read_by_field() {
    read::<Value>(r#"{"a":"x","n":3,"f":1.5,"b":true,"z":null,"l":[1,2],"o":{"k":"v"}}"#);
}

/// The browser's reader: `JSON.parse` and `Reflect`.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
fn js_documents_are_read_by_field() {
    read::<wasm_bindgen::JsValue>(
        r#"{"a":"x","n":3,"f":1.5,"b":true,"z":null,"l":[1,2],"o":{"k":"v"}}"#,
    );
}
