//! The shape check agrees with the typed decoders: the same payloads pass and
//! fail (with the same kind of error), with the same payload `type` and
//! keep-alive flag, over every sample payload and every one of its fields
//! dropped or replaced by a value of each JSON kind.

use serde_json::Value;

use super::*;
use crate::messages::{decode_event, Message};

const DECODERS: [Decoder; 7] = Decoder::ALL;

const EVENTS: [&str; 14] = [
    "message",
    "reset",
    "end",
    "heartbeat",
    "connected",
    "new_notification",
    "unread_count",
    "notification_deleted",
    "progress",
    "completed",
    "error",
    "timeout",
    "tidings",
    "other",
];

const SAMPLES: &[&str] = &[
    r#"{"type":"create","data":{"id":1,"video_name":"v","frame_index":3,"url":"u","qa":"q","query_index":2,"round":"r","created_at":"c","updated_at":"u"},"timestamp":"t"}"#,
    r#"{"type":"delete","data":[1,2,3],"timestamp":"t"}"#,
    r#"{"type":"connected","message":"m","timestamp":"t"}"#,
    r#"{"type":"heartbeat","timestamp":"t"}"#,
    r#"{"type":"error","message":"m"}"#,
    r#"{"type":"nope"}"#,
    r#"{"id":7,"user_id":"alice","title":"t","message":"m","type":"info","read":false,"created_at":"c"}"#,
    r#"{"id":7,"user_id":"alice","title":"t","message":"m","type":"info","is_read":true,"created_at":"c"}"#,
    r#"{"count":3}"#,
    r#"{"unread_count":3}"#,
    r#"{"id":9,"unread_count":2}"#,
    r#"{"notification_id":9}"#,
    r#"{"user_id":"alice","message":"m","timestamp":"t"}"#,
    r#"{"job_id":"j","timestamp":"t"}"#,
    r#"{"type":"progress","job_id":"j","status":"running","step":"s","step_index":1,"total_steps":6,"percent":16,"message":"m","step_started_at":"t","step_duration_ms":5,"video_url":"v","duration_ms":7,"timestamp":"t"}"#,
    r#"{"type":"render_progress","object":{"percent":50}}"#,
    r#"{"type":"task","object":"x"}"#,
    r#"{"reason":"gap","last_event_id":"3","head":"9"}"#,
    r#"{"protocol":"tidings","version":1}"#,
    r#"[1,2]"#,
    r#"null"#,
    r#""text""#,
    r#"12"#,
    r#"not json"#,
    r#"{"a":"#,
    "",
];

/// Every value of another kind a field may be replaced with.
const REPLACEMENTS: &[&str] = &[
    "null",
    "\"x\"",
    "1.5",
    "-1",
    "4294967296",
    "true",
    "[]",
    "[1,\"x\"]",
    "{}",
];

/// Each sample, and each of its fields (and its `data` object's fields)
/// dropped or replaced.
fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    for s in SAMPLES {
        out.push((*s).to_owned());
        let Ok(Value::Object(o)) = serde_json::from_str::<Value>(s) else {
            continue;
        };
        let mut variants = |path: &[&str]| {
            let at = |v: &mut Value| -> Option<serde_json::Map<String, Value>> {
                let mut cur = v;
                for p in path {
                    cur = cur.get_mut(*p)?;
                }
                cur.as_object().cloned()
            };
            let mut root = Value::Object(o.clone());
            let Some(fields) = at(&mut root) else { return };
            for key in fields.keys() {
                let mut edits: Vec<Option<Value>> = vec![None];
                edits.extend(REPLACEMENTS.iter().map(|r| serde_json::from_str(r).ok()));
                for edit in edits {
                    let mut v = Value::Object(o.clone());
                    let mut cur = &mut v;
                    for p in path {
                        cur = cur.get_mut(*p).unwrap();
                    }
                    let obj = cur.as_object_mut().unwrap();
                    match edit {
                        None => {
                            obj.remove(key);
                        }
                        Some(r) => {
                            obj.insert(key.clone(), r);
                        }
                    }
                    out.push(v.to_string());
                }
            }
        };
        variants(&[]);
        variants(&["data"]);
    }
    out
}

fn kind(e: &DecodeError) -> std::mem::Discriminant<DecodeError> {
    std::mem::discriminant(e)
}

#[test]
fn the_shape_check_agrees_with_the_typed_decoders() {
    let corpus = corpus();
    let mut compared = 0;
    for data in &corpus {
        for decoder in DECODERS {
            for event in EVENTS {
                for tidings in [true, false] {
                    let typed = decode_event(decoder, event, data, tidings);
                    let checked = check::<Value>(decoder, event, tidings, || Value::parse(data));
                    let at = format!("{decoder:?} {event} tidings={tidings} {data}");
                    // serde also reads a struct from an array of its fields in
                    // order; the check wants the object every stream sends.
                    if data.starts_with('[')
                        && matches!(&checked, Err(DecodeError::WrongShape { reason }) if reason.starts_with("expected an object"))
                    {
                        continue;
                    }
                    match (&typed, &checked) {
                        (Ok(m), Ok(c)) => {
                            assert_eq!(m.payload_type(), c.payload_type.as_deref(), "{at}");
                            assert_eq!(m.is_heartbeat(), c.heartbeat, "{at}");
                            assert_eq!(m.is_keepalive(event), c.is_keepalive(event), "{at}");
                            assert_eq!(matches!(m, Message::Text(_)), c.value.is_none(), "{at}");
                        }
                        (Err(t), Err(c)) => {
                            assert_eq!(kind(t), kind(c), "{at}: {t} vs {c}");
                            if let DecodeError::UnknownType { found } = t {
                                assert_eq!(
                                    c,
                                    &DecodeError::UnknownType {
                                        found: found.clone()
                                    }
                                );
                            }
                        }
                        _ => panic!("{at}: typed {typed:?}, checked {checked:?}"),
                    }
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 10_000, "{compared}");
}

#[test]
fn a_wrong_shape_names_the_field() {
    let e = check::<Value>(Decoder::Notifications, "unread_count", true, || {
        Value::parse(r#"{"count":"x"}"#)
    })
    .unwrap_err();
    assert_eq!(
        e,
        DecodeError::WrongShape {
            reason: "`count` must be an unsigned integer in range, not a string".into()
        }
    );
    let e = check::<Value>(Decoder::TeamAnswers, "message", true, || {
        Value::parse(r#"{"type":"create","data":{"id":1}}"#)
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unexpected shape: `data`: missing field `video_name`"
    );
}
