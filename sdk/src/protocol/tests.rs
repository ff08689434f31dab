// The core tests also run in the browser (quinn style): `cargo test --target wasm32-unknown-unknown`.
use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const REFERENCE: &str = r#"{"protocol":"tidings","version":1,"capabilities":["numeric-ids","replay","reset","end","poll"]}"#;

#[test]
fn the_reference_servers_hello_is_recognised() {
    let h = Hello::from_event(&SseEvent::new("tidings", REFERENCE, None)).unwrap();
    assert_eq!(h.version, 1);
    assert!(h.offers("numeric-ids") && h.offers("poll") && !h.offers("multiplex"));
}

#[test]
fn later_versions_and_unknown_capabilities_are_accepted() {
    let h = Hello::from_event(&SseEvent::new(
        "tidings",
        r#"{"protocol":"tidings","version":3,"capabilities":["multiplex",7],"extra":true}"#,
        None,
    ))
    .unwrap();
    assert_eq!(
        (h.version, h.capabilities),
        (3, vec!["multiplex".to_owned()])
    );
}

#[test]
fn anything_else_is_an_ordinary_event() {
    for (name, data, id) in [
        ("message", REFERENCE, None),
        ("tidings", REFERENCE, Some("4")),
        ("tidings", "hello", None),
        ("tidings", r#"{"protocol":"other","version":1}"#, None),
        ("tidings", r#"{"protocol":"tidings"}"#, None),
        ("tidings", r#"{"protocol":"tidings","version":0}"#, None),
    ] {
        assert_eq!(
            Hello::from_event(&SseEvent::new(name, data, id)),
            None,
            "{name} {data} {id:?}"
        );
    }
}
