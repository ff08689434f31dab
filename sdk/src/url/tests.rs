//! Unit tests of [`super`]; they also run in the browser with
//! `cargo test --target wasm32-unknown-unknown`.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn params() {
    assert_eq!(
        sse_url("http://h/a", None, None, "lastEventId"),
        "http://h/a"
    );
    assert_eq!(
        sse_url("http://h/a", Some("5"), Some("t.k="), "lastEventId"),
        "http://h/a?lastEventId=5&token=t.k%3D"
    );
    assert_eq!(
        sse_url(
            "http://h/a?x=1&lastEventId=2#f",
            Some("5"),
            None,
            "lastEventId"
        ),
        "http://h/a?x=1&lastEventId=5#f"
    );
    assert_eq!(
        sse_url(
            "http://h/.well-known/mercure?topic=a",
            Some("urn:uuid:1"),
            None,
            "lastEventID"
        ),
        "http://h/.well-known/mercure?topic=a&lastEventID=urn%3Auuid%3A1",
        "Mercure's parameter name"
    );
    assert_eq!(
        poll_url("http://h/a?x=1", Some("9")),
        "http://h/a?x=1&poll=1&lastEventId=9"
    );
    assert_eq!(poll_url("/a", None), "/a?poll=1");
    assert_eq!(encode_component("a b/é"), "a%20b%2F%C3%A9");
}
