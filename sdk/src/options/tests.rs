//! Unit tests of [`super`]; they also run in the browser with
//! `cargo test --target wasm32-unknown-unknown`.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn js_options_parse_with_defaults() {
    let o = ConnectOptions::from_json(
        r#"{"token":"t","backoff":{"maxAttempts":2},"decoder":"team-answers","foo":1}"#,
    )
    .unwrap();
    assert_eq!(o.token.as_deref(), Some("t"));
    assert_eq!(o.backoff.max_attempts, 2);
    assert_eq!(o.backoff.initial_ms, 1000);
    assert_eq!(o.poll_interval_ms, 3000);
    assert_eq!(o.decoder, Some(Decoder::TeamAnswers));
    assert!(o.share_across_tabs);
    assert_eq!(
        ConnectOptions::from_json("").unwrap(),
        ConnectOptions::default()
    );
    assert_eq!(
        ConnectOptions::from_json("{}").unwrap(),
        ConnectOptions::default()
    );
    assert!(ConnectOptions::from_json(r#"{"decoder":"nope"}"#).is_err());
    let o = ConnectOptions::from_json(
        r#"{"transport":"fetch","forcePolling":true,"retrySseEveryMs":5}"#,
    )
    .unwrap();
    assert_eq!(o.transport, Transport::Fetch);
    assert!(o.config().force_polling);
    assert_eq!(o.config().retry_sse_every, Duration::from_millis(5));
}

#[test]
fn header_watchdog_storage_and_visibility_options_parse_with_defaults() {
    let d = ConnectOptions::default();
    assert_eq!(
        (
            d.heartbeat_timeout_ms,
            d.persist_last_event_id,
            d.pause_when_hidden
        ),
        (45_000, true, false)
    );
    assert_eq!(d.config().heartbeat_timeout, Some(Duration::from_secs(45)));
    assert!(d.headers.is_empty() && d.get_token.is_none());
    let o = ConnectOptions::from_json(
        r#"{"headers":{"X-Trace":"1"},"heartbeatTimeoutMs":0,"persistLastEventId":false,"pauseWhenHidden":true,"getToken":"ignored"}"#,
    )
    .unwrap();
    assert_eq!(o.headers.get("X-Trace").map(String::as_str), Some("1"));
    assert_eq!(o.config().heartbeat_timeout, None);
    assert!(!o.persist_last_event_id && o.pause_when_hidden && o.get_token.is_none());
    assert!(ConnectOptions::from_json(r#"{"headers":{"a":1}}"#).is_err());
    let g = GetToken::new(|| async { Ok("t".to_owned()) });
    let o = Options::default().get_token(g.clone()).header("a", "b");
    assert_eq!(o.get_token.as_ref(), Some(&g));
    assert_ne!(
        Some(&GetToken::new(|| async { Ok(String::new()) })),
        o.get_token.as_ref()
    );
}

#[test]
fn builder() {
    let o = Options::default()
        .token("x")
        .decoder(Decoder::Text)
        .poll_interval_ms(10);
    assert_eq!(o.decoder_for("/api/v1/events/test"), Decoder::Text);
    assert_eq!(
        Options::default().decoder_for("/api/v1/events/test"),
        Decoder::Channel
    );
}
