//! Unit tests of [`super`]; they also run in the browser with
//! `cargo test --target wasm32-unknown-unknown`.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn numeric_ids_at_or_below_the_position_are_duplicates() {
    let mut p = Position::new(Some("5"));
    assert!(p.is_duplicate(Some("5"), "message"));
    assert!(p.is_duplicate(Some("3"), "message"));
    assert!(!p.is_duplicate(Some("6"), "message"));
    assert!(
        !p.is_duplicate(None, "message"),
        "no id: a greeting or heartbeat"
    );
    assert!(
        !p.is_duplicate(Some("2"), "reset"),
        "the server may move us back"
    );
    p.track(Some("6"));
    assert_eq!((p.id(), p.num()), (Some("6"), Some(6)));
    p.track(None);
    assert_eq!(p.id(), Some("6"), "an event without id keeps the position");
}

#[test]
fn advance_never_moves_back_and_adopts_when_unknown() {
    let mut p = Position::new(None);
    p.advance_to("abc");
    assert_eq!(p.id(), Some("abc"), "unknown: adopt even a non-numeric id");
    let mut p = Position::new(Some("10"));
    p.advance_to("7");
    assert_eq!(p.id(), Some("10"));
    p.advance_to("12");
    assert_eq!(p.num(), Some(12));
    p.advance_to("xyz");
    assert_eq!(
        p.num(),
        Some(12),
        "a non-numeric head does not replace a known one"
    );
    assert_eq!(
        Position::new(Some("")),
        Position::default(),
        "empty means unknown"
    );
}
