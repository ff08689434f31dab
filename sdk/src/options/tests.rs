//! Unit tests of [`super`]; they also run in the browser with
//! `cargo test --target wasm32-unknown-unknown`.

use super::*;
use crate::connection::Watchdog;
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
        (None, true, false)
    );
    assert_eq!(d.config().heartbeat_timeout, Watchdog::Default);
    assert!(d.headers.is_empty() && d.get_token.is_none());
    let o = ConnectOptions::from_json(
        r#"{"headers":{"X-Trace":"1"},"heartbeatTimeoutMs":0,"persistLastEventId":false,"pauseWhenHidden":true,"getToken":"ignored"}"#,
    )
    .unwrap();
    assert_eq!(o.headers.get("X-Trace").map(String::as_str), Some("1"));
    assert_eq!(o.config().heartbeat_timeout, Watchdog::Off);
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
    assert_eq!(o.decoder_in_use(), Decoder::Text);
    assert_eq!(
        Options::default().decoder_in_use(),
        Decoder::Auto,
        "never guessed from the URL"
    );
}

#[test]
fn any_backend_options_parse_with_defaults() {
    let d = ConnectOptions::default();
    assert_eq!(
        (
            d.protocol,
            d.poll,
            d.poll_timeout_ms,
            d.resume_param.as_str(),
            d.method.as_str(),
            d.finite
        ),
        (
            Protocol::Auto,
            Poll::Auto,
            10_000,
            "lastEventId",
            "GET",
            false
        )
    );
    assert!(d.is_plain_get() && d.body.is_none());
    let o = ConnectOptions::from_json(
        r#"{"protocol":"tidings","poll":false,"pollTimeoutMs":500,"resumeParam":"lastEventID","method":"POST","body":{"prompt":"hi"},"finite":true}"#,
    )
    .unwrap();
    assert_eq!((o.protocol, o.poll), (Protocol::Tidings, Poll::Off));
    assert_eq!(o.config().poll_timeout, Duration::from_millis(500));
    assert_eq!(o.resume_param, "lastEventID");
    assert_eq!(o.transport_in_use(), Transport::Fetch, "a POST needs fetch");
    assert_eq!(
        o.body.as_ref().map(Body::text).as_deref(),
        Some(r#"{"prompt":"hi"}"#)
    );
    assert_eq!(o.body_content_type(), Some("application/json"));
    assert!(o.config().finite);
    assert_eq!(
        Options::default().finite(true).transport_in_use(),
        Transport::Fetch,
        "only fetch tells a normal end from a broken one"
    );
    assert_eq!(
        Options::default().transport_in_use(),
        Transport::EventSource
    );
    let o = ConnectOptions::from_json(r#"{"poll":"tidings","body":"raw"}"#).unwrap();
    assert_eq!(o.poll, Poll::Tidings);
    assert_eq!(o.body, Some(Body::Text("raw".into())));
    for bad in [
        r#"{"poll":true}"#,
        r#"{"poll":"sometimes"}"#,
        r#"{"protocol":"mqtt"}"#,
    ] {
        assert!(ConnectOptions::from_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn identity_covers_url_token_headers_method_and_body() {
    let base = Options::default();
    let key = |o: &Options| o.identity("http://h/s");
    let variants = [
        base.clone().token("a"),
        base.clone().token("b"),
        base.clone().header("Authorization", "Bearer a"),
        base.clone().header("Authorization", "Bearer b"),
        base.clone().method("POST"),
        base.clone().method("POST").body(Body::Text("1".into())),
        base.clone().method("POST").body(Body::Text("2".into())),
    ];
    let keys: std::collections::BTreeSet<String> = variants.iter().map(key).collect();
    assert_eq!(
        keys.len(),
        variants.len(),
        "every variant is its own stream"
    );
    assert_ne!(key(&base), base.identity("http://h/other"));
    assert_eq!(
        key(&base.clone().method("get")),
        key(&base),
        "methods are case-insensitive"
    );
}

#[test]
fn decode_fn_json_keeps_the_payload_type() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Task {
        r#type: String,
        n: u32,
    }
    let d = DecodeFn::json::<Task>();
    let c = d.call(r#"{"type":"task","n":3}"#, "message").unwrap();
    assert_eq!(
        c.get::<Task>(),
        Some(&Task {
            r#type: "task".into(),
            n: 3
        })
    );
    let m = crate::messages::Message::Custom(c);
    assert_eq!(m.payload_type(), Some("task"));
    assert!(d
        .call(r#"{"type":"task"}"#, "message")
        .unwrap_err()
        .contains("missing field"));
    let f = DecodeFn::new(|data: &str, _| data.parse::<u8>());
    assert_eq!(f.call("7", "m").unwrap().get::<u8>(), Some(&7));
    assert!(f.call("x", "m").is_err());
}
