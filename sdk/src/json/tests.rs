use serde_json::Value;

use super::*;

#[test]
fn strings_are_written_as_json_reads_them() {
    for s in ["", "plain", "quote \" back \\ slash", "line\nfeed\r\ttab", "\0\u{1}\u{1f}", "é€😀", "</script>"] {
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

#[test]
fn documents_are_read_by_field() {
    let v = Value::parse(r#"{"a":"x","n":3,"f":1.5,"b":true,"z":null,"l":[1,2],"o":{"k":"v"}}"#).unwrap();
    assert_eq!(v.get("a").and_then(|a| a.as_str()).as_deref(), Some("x"));
    assert_eq!(v.get("n").and_then(|n| n.as_int()), Some(3));
    assert_eq!(v.get("f").and_then(|n| n.as_int()), None);
    assert_eq!(v.get("b").and_then(|b| b.as_bool()), Some(true));
    assert!(v.get("z").unwrap().is_null());
    assert_eq!(v.get("l").and_then(|l| l.items()).map(|l| l.len()), Some(2));
    assert_eq!(v.get("missing"), None);
    assert_eq!(v.get("a").unwrap().get("a"), None, "a string has no fields");
    assert_eq!(v.get("o").unwrap().entries().unwrap()[0].0, "k");
    let kinds: Vec<&str> = ["a", "n", "b", "z", "l", "o"].iter().map(|k| v.get(k).unwrap().kind()).collect();
    assert_eq!(kinds, ["a string", "a number", "a boolean", "null", "an array", "an object"]);
    assert!(Value::parse("{").is_err());
}
