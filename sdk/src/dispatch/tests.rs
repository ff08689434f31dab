//! Unit tests of [`super`]; they also run in the browser with
//! `cargo test --target wasm32-unknown-unknown`.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn names(
    d: &Dispatcher<&'static str>,
    e: &str,
    t: Option<&str>,
    hb: bool,
) -> Vec<(&'static str, String)> {
    d.targets(e, t, hb)
        .into_iter()
        .map(|t| (t.listener, t.matched.to_owned()))
        .collect()
}

#[test]
fn rule() {
    let mut d = Dispatcher::new();
    d.add("message", "msg");
    d.add("create", "create");
    d.add("*", "any");
    d.add("unread_count", "unread");
    d.add("heartbeat", "hb");
    d.add("reset", "reset");
    assert_eq!(
        names(&d, "message", Some("create"), false),
        vec![
            ("msg", "message".into()),
            ("create", "create".into()),
            ("any", "create".into())
        ]
    );
    assert_eq!(
        names(&d, "unread_count", None, false),
        vec![
            ("any", "unread_count".into()),
            ("unread", "unread_count".into())
        ]
    );
    // A named event's payload type is not used.
    assert_eq!(names(&d, "unread_count", Some("create"), false).len(), 2);
    assert_eq!(
        names(&d, "message", None, false),
        vec![("msg", "message".into()), ("any", "message".into())]
    );
    // Heartbeats, named or by payload type, reach only `heartbeat` listeners.
    assert_eq!(
        names(&d, "heartbeat", None, true),
        vec![("hb", "heartbeat".into())]
    );
    assert_eq!(
        names(&d, "message", Some("heartbeat"), true),
        vec![("hb", "heartbeat".into())]
    );
    assert_eq!(
        names(&d, "reset", None, false),
        vec![("any", "reset".into()), ("reset", "reset".into())]
    );
    assert_eq!(
        d.types(),
        vec![
            "*",
            "create",
            "heartbeat",
            "message",
            "reset",
            "unread_count"
        ]
    );
}

#[test]
fn add_remove() {
    let mut d = Dispatcher::new();
    let a = d.add("x", 1);
    let b = d.add("x", 2);
    assert_ne!(a, b);
    assert!(d.remove(a));
    assert!(!d.remove(a));
    assert!(!d.contains(a) && d.contains(b));
    assert_eq!(d.targets("x", None, false).len(), 1);
    assert!(d.remove(b));
    assert!(d.is_empty());
}
