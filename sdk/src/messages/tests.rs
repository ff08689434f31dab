//! Unit tests of [`super`]; they also run in the browser with
//! `cargo test --target wasm32-unknown-unknown`.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn decoder_names_are_the_option_values() {
    for d in Decoder::ALL {
        assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
    }
}

#[test]
fn reset_and_end_are_ordinary_names_for_plain_servers() {
    let plain = decode_event(Decoder::Auto, "reset", r#"{"x":1}"#, false).unwrap();
    assert_eq!(plain, Message::Json(serde_json::json!({"x": 1})));
    assert_eq!(
        decode_event(Decoder::Auto, "end", "bye", false).unwrap(),
        Message::Text("bye".into())
    );
    assert!(matches!(
        decode_event(Decoder::Auto, "end", r#"{"reason":"completed"}"#, true).unwrap(),
        Message::End(_)
    ));
}

#[test]
fn keepalives_are_named_heartbeat_or_typed_heartbeat() {
    let m = decode(Decoder::Auto, "message", r#"{"type":"heartbeat"}"#).unwrap();
    assert!(m.is_keepalive("message"));
    assert!(
        !m.is_keepalive("ping"),
        "a named event's payload type is not used"
    );
    let m = decode(Decoder::Auto, "heartbeat", r#"{"timestamp":"t"}"#).unwrap();
    assert!(m.is_keepalive("heartbeat"));
    let m = decode(Decoder::Auto, "message", r#"{"type":"create"}"#).unwrap();
    assert!(!m.is_keepalive("message"));
}

#[test]
fn team_answer_create_and_delete() {
    let m = decode(
        Decoder::TeamAnswers,
        "message",
        r#"{"type":"create","data":{"id":123,"video_name":"video.mp4","frame_index":100,"url":"http://e/f.jpg","qa":"Q","query_index":1,"round":"prelims","created_at":"2025-07-12T10:30:00Z","updated_at":"2025-07-12T10:30:00Z"},"timestamp":"2025-07-12T10:30:00Z"}"#,
    )
    .unwrap();
    assert_eq!(m.payload_type(), Some("create"));
    let Message::TeamAnswers(TeamAnswerMessage::Create { data, .. }) = &m else {
        panic!("{m:?}")
    };
    assert_eq!(data.id, 123);
    assert_eq!(data.round.as_deref(), Some("prelims"));
    let m = decode(
        Decoder::TeamAnswers,
        "message",
        r#"{"type":"delete","data":[123,124],"timestamp":"t"}"#,
    )
    .unwrap();
    assert_eq!(
        m.to_json(),
        r#"{"type":"delete","data":[123,124],"timestamp":"t"}"#
    );
    let m = decode(
        Decoder::TeamAnswers,
        "message",
        r#"{"type":"heartbeat","timestamp":"t"}"#,
    )
    .unwrap();
    assert!(m.is_heartbeat());
    let m = decode(
        Decoder::TeamAnswers,
        "message",
        r#"{"type":"connected","message":"hi","timestamp":"t"}"#,
    )
    .unwrap();
    assert_eq!(m.payload_type(), Some("connected"));
    let m = decode(
        Decoder::TeamAnswers,
        "message",
        r#"{"type":"error","message":"boom"}"#,
    )
    .unwrap();
    assert_eq!(m.to_json(), r#"{"type":"error","message":"boom"}"#);
}

#[test]
fn team_answer_bad_input() {
    let err = |d: &str| decode(Decoder::TeamAnswers, "message", d).unwrap_err();
    assert!(matches!(
        err("{not json"),
        DecodeError::MalformedJson { .. }
    ));
    assert!(matches!(err(""), DecodeError::MalformedJson { .. }));
    assert!(matches!(
        err(r#"{"type":"create","data":{"video_name":"x"}}"#),
        DecodeError::WrongShape { .. }
    ));
    assert!(matches!(
        err(r#"{"type":"create","data":{"id":1,"video_name":"x"}}"#),
        DecodeError::WrongShape { .. }
    ));
    assert!(matches!(
        err(r#"{"type":"delete","data":"x"}"#),
        DecodeError::WrongShape { .. }
    ));
    assert!(matches!(err(r#"[1,2]"#), DecodeError::WrongShape { .. }));
    assert!(matches!(
        err(r#"{"data":1}"#),
        DecodeError::WrongShape { .. }
    ));
    assert_eq!(
        err(r#"{"type":"update","data":{}}"#),
        DecodeError::UnknownType {
            found: "update".into()
        }
    );
    assert!(err("{").to_string().contains("malformed JSON"));
}

#[test]
fn notifications_by_event_name() {
    let d = Decoder::Notifications;
    assert_eq!(
        decode(d, "unread_count", r#"{"count":3}"#).unwrap(),
        Message::Notification(NotificationMessage::UnreadCount(UnreadCount { count: 3 }))
    );
    assert_eq!(
        decode(d, "unread_count", r#"{"unread_count":4}"#)
            .unwrap()
            .to_json(),
        r#"{"count":4}"#
    );
    let n = decode(
        d,
        "new_notification",
        r#"{"id":9,"user_id":"alice","title":"T","message":"M","type":"info","read":false,"created_at":"t"}"#,
    )
    .unwrap();
    let Message::Notification(NotificationMessage::NewNotification(n)) = n else {
        panic!()
    };
    assert_eq!(n.kind, "info");
    assert!(!n.read);
    assert!(decode(d, "notification_deleted", r#"{"id":9,"unread_count":0}"#).is_ok());
    assert!(decode(d, "connected", r#"{"message":"hi"}"#).is_ok());
    assert!(matches!(
        decode(d, "heartbeat", r#"{"timestamp":"t"}"#).unwrap(),
        Message::Heartbeat(_)
    ));
    assert!(matches!(
        decode(d, "unread_count", r#"{"count":-1}"#),
        Err(DecodeError::WrongShape { .. })
    ));
    assert!(matches!(
        decode(d, "new_notification", "nope"),
        Err(DecodeError::MalformedJson { .. })
    ));
    // An event name the decoder does not know passes through as JSON.
    assert!(matches!(
        decode(d, "custom", r#"{"a":1}"#).unwrap(),
        Message::Json(_)
    ));
}

#[test]
fn video_progress() {
    let d = Decoder::VideoProgress;
    let m = decode(
        d,
        "progress",
        r#"{"type":"progress","job_id":"j","status":"running","step":"render","step_index":2,"total_steps":6,"percent":33,"message":"Rendering","step_started_at":"t","timestamp":"t"}"#,
    )
    .unwrap();
    let Message::Video(v) = m else { panic!() };
    assert_eq!(v.percent, Some(33));
    assert!(decode(d, "completed", r#"{"type":"completed","job_id":"j","status":"completed","percent":100,"video_url":"/v.mp4","duration_ms":5}"#).is_ok());
    assert!(decode(
        d,
        "error",
        r#"{"type":"error","job_id":"j","status":"error","message":"x"}"#
    )
    .is_ok());
    assert!(decode(
        d,
        "timeout",
        r#"{"type":"timeout","job_id":"j","status":"timeout"}"#
    )
    .is_ok());
    assert!(matches!(
        decode(d, "timeout", r#"{}"#),
        Err(DecodeError::WrongShape { .. })
    ));
    assert_eq!(
        decode(d, "end", r#"{"reason":"completed"}"#).unwrap(),
        Message::End(EndNotice {
            reason: Some("completed".into())
        })
    );
    assert!(matches!(
        decode(
            d,
            "progress",
            r#"{"type":"progress","job_id":"j","status":"running","percent":"x"}"#
        ),
        Err(DecodeError::WrongShape { .. })
    ));
}

#[test]
fn channel_messages_and_unknown_types() {
    let d = Decoder::Channel;
    let m = decode(d, "message", r#"{"type":"task","object":{"id":1}}"#).unwrap();
    assert_eq!(m.payload_type(), Some("task"));
    let m = decode(d, "message", r#"{"type":"render_result","object":"done"}"#).unwrap();
    let Message::Channel(w) = &m else { panic!() };
    assert_eq!(w.kind, WsMessageType::RenderResult);
    // Unknown types are kept, never an error; a missing object is null.
    let m = decode(
        d,
        "message",
        r#"{"type":"test","message":"SSE endpoint working"}"#,
    )
    .unwrap();
    assert_eq!(m.payload_type(), Some("test"));
    assert_eq!(m.to_json(), r#"{"type":"test","object":null}"#);
    assert!(matches!(
        decode(d, "message", r#"{"object":{}}"#),
        Err(DecodeError::WrongShape { .. })
    ));
    assert!(matches!(
        decode(d, "message", r#"{"type":5,"object":{}}"#),
        Err(DecodeError::WrongShape { .. })
    ));
    for t in [
        "task",
        "data",
        "file",
        "entity",
        "scene",
        "render_progress",
        "render_result",
        "zzz",
    ] {
        assert_eq!(WsMessageType::from(t).as_str(), t);
    }
}

#[test]
fn reset_and_generic_decoders() {
    for d in [
        Decoder::TeamAnswers,
        Decoder::Channel,
        Decoder::Json,
        Decoder::Auto,
    ] {
        let m = decode(
            d,
            "reset",
            r#"{"type":"reset","reason":"gap","last_event_id":"3","head":"90"}"#,
        )
        .unwrap();
        let Message::Reset(r) = m else { panic!() };
        assert_eq!(r.reason.as_deref(), Some("gap"));
    }
    assert_eq!(
        decode(Decoder::Auto, "message", "plain").unwrap(),
        Message::Text("plain".into())
    );
    assert_eq!(
        decode(Decoder::Auto, "message", "").unwrap(),
        Message::Text(String::new())
    );
    assert_eq!(
        decode(Decoder::Json, "message", r#"{"type":"x"}"#)
            .unwrap()
            .payload_type(),
        Some("x")
    );
    assert!(matches!(
        decode(Decoder::Json, "message", "plain"),
        Err(DecodeError::MalformedJson { .. })
    ));
    assert_eq!(
        decode(Decoder::Text, "reset", "{}").unwrap(),
        Message::Text("{}".into())
    );
}

#[test]
fn huge_and_deep_payloads_do_not_panic() {
    let big = format!(r#"{{"type":"task","object":"{}"}}"#, "x".repeat(1 << 20));
    assert!(decode(Decoder::Channel, "message", &big).is_ok());
    let deep = "[".repeat(100_000);
    assert!(decode(Decoder::Json, "message", &deep).is_err());
    assert!(decode(Decoder::Auto, "message", &deep).is_ok());
}

#[test]
fn poll_response() {
    let r = PollResponse::from_json(
        r#"{"events":[{"id":"13","event":"new_notification","data":"{}"},{"id":"14","data":"x"}],"last_event_id":"14","end":false,"retry_ms":1000}"#,
    )
    .unwrap();
    assert_eq!(r.events.len(), 2);
    assert_eq!(r.events[1].event, "message");
    assert_eq!(r.retry_ms, Some(1000));
    assert!(PollResponse::from_json("{").is_err());
    assert!(PollResponse::from_json(r#"{"events":5}"#).is_err());
}

#[test]
fn poll_function_answers_are_read_or_refused_with_the_reason() {
    let r = PollResponse::from_answer_json(
        r#"{"events":[{"id":7,"event":"unread_count","data":{"count":2}},{"data":"x"}],"lastEventId":"c9","end":true}"#,
    )
    .unwrap();
    assert_eq!(r.events.len(), 2);
    assert_eq!(
        (
            r.events[0].id.as_deref(),
            r.events[0].event.as_str(),
            r.events[0].data.as_str()
        ),
        (Some("7"), "unread_count", r#"{"count":2}"#)
    );
    assert_eq!(
        (r.events[1].id.as_deref(), r.events[1].event.as_str()),
        (None, "message")
    );
    assert_eq!((r.last_event_id.as_deref(), r.end), (Some("c9"), true));
    assert_eq!(
        PollResponse::from_answer_json(r#"{"events":[]}"#)
            .unwrap()
            .events
            .len(),
        0
    );
    for (bad, why) in [
        ("null", "`events` must be an array"),
        (r#"{"events":{}}"#, "`events` must be an array"),
        (r#"{"events":[{"id":"1"}]}"#, "events[0] has no `data`"),
        (
            r#"{"events":[{"data":"a","event":3}]}"#,
            "events[0].event must be a name",
        ),
        (
            r#"{"events":[],"lastEventId":{}}"#,
            "lastEventId must be a string",
        ),
    ] {
        let e = PollResponse::from_answer_json(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}
