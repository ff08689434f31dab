//! The seed decoders as shape checks on a parsed payload ([`Json`]): what
//! [`decode_event`](crate::messages::decode_event) accepts and rejects, told
//! without building the Rust types. The JS API parses each payload once (the
//! browser's `JSON.parse`), checks it here and hands that very object to its
//! listeners; Rust listeners get the typed [`Message`](crate::Message).

use crate::json::Json;
use crate::messages::{DecodeError, Decoder};

/// What a field must hold.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    /// An integer from 0 to the bound.
    Uint(u64),
    Bool,
    IntList,
    Obj(&'static [Field]),
}

/// One field of a shape: its name, an alias the wire may use instead, what
/// it holds, and whether it may be absent or `null`.
struct Field(&'static str, &'static str, Kind, bool);

const U32: Kind = Kind::Uint(u32::MAX as u64);
const U64: Kind = Kind::Uint(u64::MAX);
const OPT: bool = true;
const REQ: bool = false;

const TEAM_ANSWER: &[Field] = &[
    Field("id", "", Kind::Int, REQ),
    Field("video_name", "", Kind::Str, REQ),
    Field("frame_index", "", Kind::Int, REQ),
    Field("url", "", Kind::Str, REQ),
    Field("qa", "", Kind::Str, OPT),
    Field("query_index", "", Kind::Int, OPT),
    Field("round", "", Kind::Str, OPT),
    Field("created_at", "", Kind::Str, REQ),
    Field("updated_at", "", Kind::Str, REQ),
];
const TIMESTAMP: Field = Field("timestamp", "", Kind::Str, OPT);
const MESSAGE: Field = Field("message", "", Kind::Str, OPT);
const TEAM_CONNECTED: &[Field] = &[MESSAGE, TIMESTAMP];
const TEAM_CREATE: &[Field] = &[Field("data", "", Kind::Obj(TEAM_ANSWER), REQ), TIMESTAMP];
const TEAM_DELETE: &[Field] = &[Field("data", "", Kind::IntList, REQ), TIMESTAMP];
const TEAM_HEARTBEAT: &[Field] = &[TIMESTAMP];
const TEAM_ERROR: &[Field] = &[MESSAGE, TIMESTAMP];

const NOTIFICATION: &[Field] = &[
    Field("id", "", Kind::Int, REQ),
    Field("user_id", "", Kind::Str, REQ),
    Field("title", "", Kind::Str, REQ),
    Field("message", "", Kind::Str, REQ),
    Field("type", "", Kind::Str, REQ),
    Field("read", "is_read", Kind::Bool, REQ),
    Field("created_at", "", Kind::Str, REQ),
];
const NOTIFICATIONS_CONNECTED: &[Field] =
    &[MESSAGE, Field("user_id", "", Kind::Str, OPT), TIMESTAMP];
const UNREAD_COUNT: &[Field] = &[Field("count", "unread_count", U64, REQ)];
const NOTIFICATION_DELETED: &[Field] = &[
    Field("id", "notification_id", Kind::Int, REQ),
    Field("unread_count", "", U64, OPT),
];
const HEARTBEAT: &[Field] = &[Field("job_id", "", Kind::Str, OPT), TIMESTAMP];
const VIDEO: &[Field] = &[
    Field("type", "", Kind::Str, REQ),
    Field("job_id", "", Kind::Str, REQ),
    Field("status", "", Kind::Str, REQ),
    Field("step", "", Kind::Str, OPT),
    Field("step_index", "", U32, OPT),
    Field("total_steps", "", U32, OPT),
    Field("percent", "", U32, OPT),
    MESSAGE,
    Field("step_started_at", "", Kind::Str, OPT),
    Field("step_duration_ms", "", U64, OPT),
    Field("video_url", "", Kind::Str, OPT),
    Field("duration_ms", "", U64, OPT),
    TIMESTAMP,
];
const CHANNEL: &[Field] = &[Field("type", "", Kind::Str, REQ)];
const RESET: &[Field] = &[
    Field("reason", "", Kind::Str, OPT),
    Field("last_event_id", "", Kind::Str, OPT),
    Field("head", "", Kind::Str, OPT),
];
const END: &[Field] = &[Field("reason", "", Kind::Str, OPT)];

/// A payload that passed its decoder's check.
#[derive(Debug)]
pub(crate) struct Checked<J> {
    /// The parsed payload; `None` when the message is the raw text (`text`
    /// decoder, or `auto` on data that is not JSON).
    pub(crate) value: Option<J>,
    /// The payload's `type`, for the dispatch rule ([`Message::payload_type`](crate::Message::payload_type)).
    pub(crate) payload_type: Option<String>,
    /// Whether it is a typed keep-alive ([`Message::is_heartbeat`](crate::Message::is_heartbeat)).
    pub(crate) heartbeat: bool,
}

impl<J> Checked<J> {
    /// Whether the event keeps the connection alive only
    /// ([`Message::is_keepalive`](crate::Message)).
    pub(crate) fn is_keepalive(&self, event: &str) -> bool {
        self.heartbeat
            || event == "heartbeat"
            || (event == "message" && self.payload_type.as_deref() == Some("heartbeat"))
    }
}

/// Checks one event's payload as [`decode_event`](crate::messages::decode_event)
/// decodes it: the same events pass, the same fail with the same
/// [`DecodeError`] variant. `parse` gives the parsed `data` (called at most once;
/// not for the `text` decoder).
pub(crate) fn check<J: Json>(
    decoder: Decoder,
    event: &str,
    tidings: bool,
    parse: impl FnOnce() -> Result<J, String>,
) -> Result<Checked<J>, DecodeError> {
    let fields = match event {
        "reset" if tidings && decoder != Decoder::Text => Some((RESET, false)),
        "end" if tidings && decoder != Decoder::Text => Some((END, false)),
        "heartbeat" if !matches!(decoder, Decoder::Text | Decoder::Json | Decoder::Auto) => {
            Some((HEARTBEAT, true))
        }
        _ => match (decoder, event) {
            (Decoder::Text, _) => return Ok(text()),
            (Decoder::Auto, _) => return Ok(parse().map_or_else(|_| text(), json)),
            (Decoder::TeamAnswers, "message") => return team_answer(parse().map_err(malformed)?),
            (Decoder::Notifications, "new_notification") => Some((NOTIFICATION, false)),
            (Decoder::Notifications, "unread_count") => Some((UNREAD_COUNT, false)),
            (Decoder::Notifications, "notification_deleted") => Some((NOTIFICATION_DELETED, false)),
            (Decoder::Notifications, "connected") => Some((NOTIFICATIONS_CONNECTED, false)),
            (Decoder::VideoProgress, "progress" | "completed" | "error" | "timeout") => {
                Some((VIDEO, false))
            }
            (Decoder::Channel, "message") => {
                let v = parse().map_err(malformed)?;
                if let Some(t) = v.str_field("type") {
                    // What `fields_ok` checks, read in one go.
                    return Ok(Checked {
                        value: Some(v),
                        payload_type: Some(t),
                        heartbeat: false,
                    });
                }
                fields_ok(&v, CHANNEL)?;
                let t = v.get("type").and_then(|t| t.as_str());
                return Ok(Checked {
                    value: Some(v),
                    payload_type: t,
                    heartbeat: false,
                });
            }
            _ => None,
        },
    };
    let v = parse().map_err(malformed)?;
    match fields {
        Some((fields, heartbeat)) => {
            fields_ok(&v, fields)?;
            Ok(Checked {
                value: Some(v),
                payload_type: None,
                heartbeat,
            })
        }
        None => Ok(json(v)),
    }
}

fn malformed(reason: String) -> DecodeError {
    DecodeError::MalformedJson { reason }
}

fn text<J>() -> Checked<J> {
    Checked {
        value: None,
        payload_type: None,
        heartbeat: false,
    }
}

/// Generic JSON: routed by its string `type`, if it has one.
fn json<J: Json>(v: J) -> Checked<J> {
    let t = v.str_field("type");
    Checked {
        value: Some(v),
        payload_type: t,
        heartbeat: false,
    }
}

fn team_answer<J: Json>(v: J) -> Result<Checked<J>, DecodeError> {
    let t = match v.get("type") {
        _ if !v.is_object() => {
            return Err(wrong(
                ["a team answer message must be an object, not ", v.kind()].concat(),
            ))
        }
        None => return Err(wrong("missing field `type`".into())),
        Some(t) => t
            .as_str()
            .ok_or_else(|| wrong(["`type` must be a string, not ", t.kind()].concat()))?,
    };
    let fields = match t.as_str() {
        "connected" => TEAM_CONNECTED,
        "create" => TEAM_CREATE,
        "delete" => TEAM_DELETE,
        "heartbeat" => TEAM_HEARTBEAT,
        "error" => TEAM_ERROR,
        _ => return Err(DecodeError::UnknownType { found: t }),
    };
    fields_ok(&v, fields)?;
    Ok(Checked {
        value: Some(v),
        heartbeat: t == "heartbeat",
        payload_type: Some(t),
    })
}

fn wrong(reason: String) -> DecodeError {
    DecodeError::WrongShape { reason }
}

/// Whether `v` is an object with every field of `fields` as it must be.
fn fields_ok<J: Json>(v: &J, fields: &[Field]) -> Result<(), DecodeError> {
    if !v.is_object() {
        return Err(wrong(["expected an object, not ", v.kind()].concat()));
    }
    for Field(name, alias, kind, optional) in fields {
        let f = v
            .get(name)
            .or_else(|| (!alias.is_empty()).then(|| v.get(alias)).flatten());
        match f {
            None if *optional => {}
            Some(f) if *optional && f.is_null() => {}
            None => return Err(wrong(["missing field `", name, "`"].concat())),
            Some(f) => {
                let expected = match kind {
                    Kind::Str if f.is_str() => continue,
                    Kind::Str => "a string",
                    Kind::Int if f.as_int().is_some() => continue,
                    Kind::Int => "an integer",
                    Kind::Uint(max) if f.as_int().is_some_and(|n| n >= 0 && n as u64 <= *max) => {
                        continue
                    }
                    Kind::Uint(_) => "an unsigned integer in range",
                    Kind::Bool if f.as_bool().is_some() => continue,
                    Kind::Bool => "a boolean",
                    Kind::IntList => match f.items() {
                        Some(items) if items.iter().all(|i| i.as_int().is_some()) => continue,
                        _ => "an array of integers",
                    },
                    Kind::Obj(inner) => {
                        fields_ok(&f, inner).map_err(|e| match e {
                            DecodeError::WrongShape { reason } => {
                                wrong(["`", name, "`: ", &reason].concat())
                            }
                            e => e,
                        })?;
                        continue;
                    }
                };
                return Err(wrong(
                    ["`", name, "` must be ", expected, ", not ", f.kind()].concat(),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
