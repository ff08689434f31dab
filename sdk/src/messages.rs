//! Typed messages of every known stream, and the pure, fallible decode step.
//!
//! The TypeScript declarations in the npm package are generated from these
//! types (tsify, on wasm32), so there is one definition of each shape.
//! Decoding never panics: malformed JSON, wrong shapes and unknown types come
//! back as a [`DecodeError`] with the reason; the caller keeps the raw text.

use std::any::Any;
use std::fmt;
use std::rc::Rc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::json::{Doc, Json};

// Attributes shared by every message struct: optional fields may be absent on
// the wire and are left out when serialised (tsify renders them as `field?:`).
macro_rules! ts {
    ($($item:item)*) => { $(
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
        $item
    )* };
}

/// Which decoder turns a stream's `data` into a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(rename_all = "kebab-case")]
pub enum Decoder {
    /// Team answers: `/api/team-answers/sse/`.
    TeamAnswers,
    /// Notifications: `/api/notifications/stream`.
    Notifications,
    /// Video job progress: `/api/video-progress/{job_id}`.
    VideoProgress,
    /// Project channels: `/api/v1/events/{channel}` (`WSMessage`).
    Channel,
    /// Any JSON; malformed JSON is a decode error.
    Json,
    /// The raw `data` string, never an error.
    Text,
    /// JSON when it parses, else the raw string (the default).
    #[default]
    Auto,
}

impl Decoder {
    /// Every decoder, in the order they are documented.
    pub const ALL: [Decoder; 7] = [
        Decoder::TeamAnswers,
        Decoder::Notifications,
        Decoder::VideoProgress,
        Decoder::Channel,
        Decoder::Json,
        Decoder::Text,
        Decoder::Auto,
    ];

    /// The decoder's name, as in the `decoder` option (`team-answers`, `auto`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Decoder::TeamAnswers => "team-answers",
            Decoder::Notifications => "notifications",
            Decoder::VideoProgress => "video-progress",
            Decoder::Channel => "channel",
            Decoder::Json => "json",
            Decoder::Text => "text",
            Decoder::Auto => "auto",
        }
    }

    /// The SSE event names of this decoder's stream, plus the protocol's
    /// `tidings` (the hello), `reset`, `end` and `heartbeat` (an `EventSource` must listen for each
    /// name it wants besides `message`).
    pub(crate) fn event_names(self) -> &'static [&'static str] {
        match self {
            Decoder::Notifications => &[
                "message",
                "tidings",
                "reset",
                "end",
                "heartbeat",
                "connected",
                "unread_count",
                "new_notification",
                "notification_deleted",
            ],
            Decoder::VideoProgress => &[
                "message",
                "tidings",
                "reset",
                "end",
                "heartbeat",
                "progress",
                "completed",
                "timeout",
            ],
            // `connected`: the greeting of channels, carrying the head id on a fresh connection.
            _ => &[
                "message",
                "tidings",
                "reset",
                "end",
                "heartbeat",
                "connected",
            ],
        }
    }
}

ts! {
    /// A team answer record.
    pub struct TeamAnswer {
        /// Database id.
        pub id: i64,
        /// Video file name.
        pub video_name: String,
        /// Frame number in the video.
        pub frame_index: i64,
        /// Frame image URL.
        pub url: String,
        /// Question and answer text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub qa: Option<String>,
        /// Query number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub query_index: Option<i64>,
        /// Competition round.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub round: Option<String>,
        /// RFC 3339 creation time.
        pub created_at: String,
        /// RFC 3339 update time.
        pub updated_at: String,
    }

    /// A team answers stream message, tagged by `type`.
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum TeamAnswerMessage {
        /// Greeting at connect.
        Connected {
            /// Human-readable text.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            message: Option<String>,
            /// RFC 3339 time.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timestamp: Option<String>,
        },
        /// A team answer was created.
        Create {
            /// The new record.
            data: TeamAnswer,
            /// RFC 3339 time.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timestamp: Option<String>,
        },
        /// Team answers were deleted (one or many).
        Delete {
            /// Ids of the deleted records.
            data: Vec<i64>,
            /// RFC 3339 time.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timestamp: Option<String>,
        },
        /// Keep-alive.
        Heartbeat {
            /// RFC 3339 time.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timestamp: Option<String>,
        },
        /// A server-side error report.
        Error {
            /// What went wrong.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            message: Option<String>,
            /// RFC 3339 time.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timestamp: Option<String>,
        },
    }

    /// A notification record.
    pub struct Notification {
        /// Notification id.
        pub id: i64,
        /// Recipient (the token's `sub`).
        pub user_id: String,
        /// Title.
        pub title: String,
        /// Body text.
        pub message: String,
        /// Kind, e.g. `info`.
        #[serde(rename = "type")]
        pub kind: String,
        /// Whether it has been read.
        #[serde(alias = "is_read")]
        pub read: bool,
        /// RFC 3339 creation time.
        pub created_at: String,
    }

    /// `connected` greeting of the notifications stream.
    pub struct NotificationsConnected {
        /// Human-readable text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message: Option<String>,
        /// The authenticated user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_id: Option<String>,
        /// RFC 3339 time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timestamp: Option<String>,
    }

    /// `unread_count`: the user's unread count changed (also sent at connect).
    pub struct UnreadCount {
        /// Unread notifications.
        #[serde(alias = "unread_count")]
        pub count: u64,
    }

    /// `notification_deleted`.
    pub struct NotificationDeleted {
        /// The deleted notification.
        #[serde(alias = "notification_id")]
        pub id: i64,
        /// The new unread count, when the server includes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub unread_count: Option<u64>,
    }

    /// A heartbeat of any stream (named `heartbeat` event).
    pub struct Heartbeat {
        /// The video job (video progress streams only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub job_id: Option<String>,
        /// RFC 3339 time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timestamp: Option<String>,
    }

    /// A notifications stream message, keyed by SSE event name.
    #[serde(untagged)]
    pub enum NotificationMessage {
        /// `new_notification`.
        NewNotification(Notification),
        /// `unread_count`.
        UnreadCount(UnreadCount),
        /// `notification_deleted`.
        NotificationDeleted(NotificationDeleted),
        /// `connected`.
        Connected(NotificationsConnected),
    }

    /// A video job progress event, the data of the named events
    /// `progress`, `completed`, `error` and `timeout`.
    pub struct VideoProgress {
        /// `progress`, `completed`, `error` or `timeout` (same as the event name).
        #[serde(rename = "type")]
        pub kind: String,
        /// The job.
        pub job_id: String,
        /// `running`, `completed`, `error` or `timeout`.
        pub status: String,
        /// Current step name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub step: Option<String>,
        /// Step number (1-based).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub step_index: Option<u32>,
        /// Number of steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub total_steps: Option<u32>,
        /// Percent done, 0–100.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub percent: Option<u32>,
        /// Human-readable text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message: Option<String>,
        /// RFC 3339 start of the current step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub step_started_at: Option<String>,
        /// How long the finished step took.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub step_duration_ms: Option<u64>,
        /// The finished video (on `completed`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub video_url: Option<String>,
        /// Total job time (on `completed`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub duration_ms: Option<u64>,
        /// RFC 3339 time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timestamp: Option<String>,
    }

    /// A project channel message `WSMessage {type, object}` on `/api/v1/events/{channel}`.
    pub struct WsMessage {
        /// The message type; unknown types are kept as their string.
        #[serde(rename = "type")]
        #[cfg_attr(target_arch = "wasm32", tsify(type = "WSMessageType"))]
        pub kind: WsMessageType,
        /// The payload: an object or a string (`null` when absent).
        #[serde(default)]
        #[cfg_attr(target_arch = "wasm32", tsify(type = "Record<string, unknown> | string | null"))]
        pub object: Value,
    }

    /// The server's `reset` event: the client's position fell out of the replay
    /// log (or was invalid); refetch state over REST and carry on.
    pub struct ResetNotice {
        /// `gap`, `invalid_id`, `ahead` or `lagged`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
        /// The position the client sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_event_id: Option<String>,
        /// The stream head the server continues from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub head: Option<String>,
    }

    /// The `end` event of a finite stream: no reconnect follows.
    pub struct EndNotice {
        /// `completed`, `error` or `timeout`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
    }
}

/// The message types of project channels (`WSMessageTypeEnum`), plus any
/// type the server adds later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WsMessageType {
    /// `task`
    Task,
    /// `data`
    Data,
    /// `file`
    File,
    /// `entity`
    Entity,
    /// `scene`
    Scene,
    /// `render_progress`
    RenderProgress,
    /// `render_result`
    RenderResult,
    /// Any other type, kept as sent (never a decode error).
    Other(String),
}

impl WsMessageType {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            WsMessageType::Task => "task",
            WsMessageType::Data => "data",
            WsMessageType::File => "file",
            WsMessageType::Entity => "entity",
            WsMessageType::Scene => "scene",
            WsMessageType::RenderProgress => "render_progress",
            WsMessageType::RenderResult => "render_result",
            WsMessageType::Other(s) => s,
        }
    }
}

impl From<&str> for WsMessageType {
    fn from(s: &str) -> Self {
        match s {
            "task" => WsMessageType::Task,
            "data" => WsMessageType::Data,
            "file" => WsMessageType::File,
            "entity" => WsMessageType::Entity,
            "scene" => WsMessageType::Scene,
            "render_progress" => WsMessageType::RenderProgress,
            "render_result" => WsMessageType::RenderResult,
            other => WsMessageType::Other(other.to_owned()),
        }
    }
}

impl Serialize for WsMessageType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WsMessageType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(WsMessageType::from(&*s))
    }
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const WS_MESSAGE_TYPE_TS: &'static str = r#"
/** The project channels' own name for `WsMessage`. */
export type WSMessage = WsMessage;
/** The project channels' message types (`WSMessageTypeEnum`); other strings pass through unchanged. */
export type WSMessageType = "task" | "data" | "file" | "entity" | "scene" | "render_progress" | "render_result" | (string & {});
"#;

/// A decoded event payload. Serialises to exactly the payload's JSON shape
/// (untagged); JS listeners receive that shape as `message`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(untagged)]
#[non_exhaustive]
pub enum Message {
    /// Team answers.
    TeamAnswers(TeamAnswerMessage),
    /// Notifications.
    Notification(NotificationMessage),
    /// Video job progress (`progress`, `completed`, `error`, `timeout`).
    Video(VideoProgress),
    /// Project channels.
    Channel(WsMessage),
    /// A named `heartbeat` event.
    Heartbeat(Heartbeat),
    /// The server's `reset` event.
    Reset(ResetNotice),
    /// The `end` event of a finite stream.
    End(EndNotice),
    /// Any other JSON (generic decoder, or an event name the stream's decoder does not know).
    Json(#[cfg_attr(target_arch = "wasm32", tsify(type = "unknown"))] Value),
    /// Raw text (`text` decoder, or non-JSON data with the default decoder).
    Text(String),
    /// What the app's own decoder (option `decode`) returned.
    Custom(#[cfg_attr(target_arch = "wasm32", tsify(type = "unknown"))] Custom),
}

/// A value of the app's own type, from its decoder (option `decode`).
/// Read it with [`Message::custom`].
#[derive(Clone)]
pub struct Custom {
    value: Rc<dyn Any>,
    payload_type: Option<String>,
}

impl Custom {
    /// `value`, routed also to listeners of `payload_type` when the event is unnamed.
    pub(crate) fn new(value: Rc<dyn Any>, payload_type: Option<String>) -> Self {
        Custom {
            value,
            payload_type,
        }
    }

    /// The value, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }

    /// The payload `type` it is routed by, if any.
    pub(crate) fn payload_type(&self) -> Option<&str> {
        self.payload_type.as_deref()
    }
}

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Custom")
            .field("payload_type", &self.payload_type)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Custom {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.value, &other.value)
    }
}

impl Serialize for Custom {
    /// The app's type is opaque to the SDK: `null`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl Message {
    /// The payload's string `type` field, used for the second dispatch rule
    /// (an unnamed event also reaches listeners of its payload type).
    pub fn payload_type(&self) -> Option<&str> {
        match self {
            Message::TeamAnswers(m) => Some(match m {
                TeamAnswerMessage::Connected { .. } => "connected",
                TeamAnswerMessage::Create { .. } => "create",
                TeamAnswerMessage::Delete { .. } => "delete",
                TeamAnswerMessage::Heartbeat { .. } => "heartbeat",
                TeamAnswerMessage::Error { .. } => "error",
            }),
            Message::Channel(m) => Some(m.kind.as_str()),
            Message::Json(v) => v.get("type").and_then(Value::as_str),
            Message::Custom(c) => c.payload_type(),
            _ => None,
        }
    }

    /// The app's own decoded value (option `decode`), if it is a `T`.
    pub fn custom<T: Any>(&self) -> Option<&T> {
        match self {
            Message::Custom(c) => c.get(),
            _ => None,
        }
    }

    /// Whether the event carrying this message keeps the connection alive
    /// only: a typed heartbeat, an event named `heartbeat`, or an unnamed one
    /// whose payload `type` is `heartbeat`. Such events reach only listeners
    /// registered for `heartbeat` by name.
    pub(crate) fn is_keepalive(&self, event: &str) -> bool {
        self.is_heartbeat()
            || event == "heartbeat"
            || (event == "message" && self.payload_type() == Some("heartbeat"))
    }

    /// Whether this is a keep-alive (consumed for liveness; delivered only to
    /// listeners registered for `heartbeat` by name).
    pub fn is_heartbeat(&self) -> bool {
        matches!(
            self,
            Message::Heartbeat(_) | Message::TeamAnswers(TeamAnswerMessage::Heartbeat { .. })
        )
    }

    /// The payload as JSON text (normalised: absent optional fields omitted).
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: string keys, finite-or-null numbers.
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON at all (or truncated).
    MalformedJson {
        /// serde_json's message, with line and column.
        reason: String,
    },
    /// JSON, but not the shape the stream defines (missing field, wrong type).
    WrongShape {
        /// What was expected, from serde.
        reason: String,
    },
    /// A `type` the stream does not define (streams whose type set is closed).
    UnknownType {
        /// The type that was sent.
        found: String,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::MalformedJson { reason } => {
                f.write_str("malformed JSON: ")?;
                f.write_str(reason)
            }
            DecodeError::WrongShape { reason } => {
                f.write_str("unexpected shape: ")?;
                f.write_str(reason)
            }
            DecodeError::UnknownType { found } => {
                f.write_str("unknown message type ")?;
                let mut quoted = String::new();
                crate::json::push_str(&mut quoted, found);
                f.write_str(&quoted)
            }
        }
    }
}

impl std::error::Error for DecodeError {}

fn typed<T: for<'de> Deserialize<'de>>(data: &str) -> Result<T, DecodeError> {
    serde_json::from_str(data).map_err(|e| {
        if e.is_data() {
            DecodeError::WrongShape {
                reason: e.to_string(),
            }
        } else {
            DecodeError::MalformedJson {
                reason: e.to_string(),
            }
        }
    })
}

fn json(data: &str) -> Result<Value, DecodeError> {
    typed(data)
}

const TEAM_ANSWER_TYPES: [&str; 5] = ["connected", "create", "delete", "heartbeat", "error"];

/// Decodes one event's `data` for a stream. `event` is the SSE event name
/// (`message` for unnamed events). Pure; never panics.
///
/// ```
/// use tidings::messages::NotificationMessage;
/// use tidings::{decode, DecodeError, Decoder, Message};
///
/// let m = decode(Decoder::Notifications, "unread_count", r#"{"count":3}"#).unwrap();
/// let Message::Notification(NotificationMessage::UnreadCount(u)) = m else {
///     panic!("{m:?}")
/// };
/// assert_eq!(u.count, 3);
///
/// // A payload that does not match its stream's type is an error with the reason.
/// let e = decode(Decoder::Notifications, "unread_count", r#"{"count":"x"}"#).unwrap_err();
/// assert!(matches!(e, DecodeError::WrongShape { .. }), "{e}");
/// ```
pub fn decode(decoder: Decoder, event: &str, data: &str) -> Result<Message, DecodeError> {
    decode_event(decoder, event, data, true)
}

/// [`decode`] for a stream that speaks Tidings (`tidings`) or not: for any
/// other server `reset` and `end` are ordinary event names.
pub(crate) fn decode_event(
    decoder: Decoder,
    event: &str,
    data: &str,
    tidings: bool,
) -> Result<Message, DecodeError> {
    match event {
        "reset" if tidings && decoder != Decoder::Text => return typed(data).map(Message::Reset),
        "end" if tidings && decoder != Decoder::Text => return typed(data).map(Message::End),
        "heartbeat" if !matches!(decoder, Decoder::Text | Decoder::Json | Decoder::Auto) => {
            return typed(data).map(Message::Heartbeat)
        }
        _ => {}
    }
    match (decoder, event) {
        (Decoder::Text, _) => Ok(Message::Text(data.to_owned())),
        (Decoder::Auto, _) => {
            Ok(json(data).map_or_else(|_| Message::Text(data.to_owned()), Message::Json))
        }
        (Decoder::TeamAnswers, "message") => match typed::<TeamAnswerMessage>(data) {
            Ok(m) => Ok(Message::TeamAnswers(m)),
            Err(DecodeError::WrongShape { reason }) => {
                // Tell an unknown `type` apart from a bad shape of a known one.
                let v = json(data)?;
                match v.get("type").and_then(Value::as_str) {
                    Some(t) if !TEAM_ANSWER_TYPES.contains(&t) => Err(DecodeError::UnknownType {
                        found: t.to_owned(),
                    }),
                    _ => Err(DecodeError::WrongShape { reason }),
                }
            }
            Err(e) => Err(e),
        },
        (Decoder::Notifications, "new_notification") => {
            typed(data).map(|n| Message::Notification(NotificationMessage::NewNotification(n)))
        }
        (Decoder::Notifications, "unread_count") => {
            typed(data).map(|n| Message::Notification(NotificationMessage::UnreadCount(n)))
        }
        (Decoder::Notifications, "notification_deleted") => {
            typed(data).map(|n| Message::Notification(NotificationMessage::NotificationDeleted(n)))
        }
        (Decoder::Notifications, "connected") => {
            typed(data).map(|n| Message::Notification(NotificationMessage::Connected(n)))
        }
        (Decoder::VideoProgress, "progress" | "completed" | "error" | "timeout") => {
            typed(data).map(Message::Video)
        }
        (Decoder::Channel, "message") => typed(data).map(Message::Channel),
        // Json, or an event name the stream's decoder does not define: generic JSON.
        _ => json(data).map(Message::Json),
    }
}

/// One event in a polling response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PollEvent {
    /// The SSE id.
    pub(crate) id: Option<String>,
    /// The SSE event name (`message` when absent).
    pub(crate) event: String,
    /// The exact SSE data string.
    pub(crate) data: String,
}

impl From<PollEvent> for crate::parser::SseEvent {
    fn from(e: PollEvent) -> Self {
        crate::parser::SseEvent {
            event: e.event,
            data: e.data,
            id: e.id,
        }
    }
}

fn message_name() -> String {
    "message".to_owned()
}

/// The body of `GET <stream>?poll=1&lastEventId=N` (docs/PROTOCOL.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PollResponse {
    /// Events after the position, in order (a reset first if any).
    pub(crate) events: Vec<PollEvent>,
    /// The position to send next time.
    pub(crate) last_event_id: Option<String>,
    /// True once a finite stream has ended.
    pub(crate) end: bool,
    /// The server's reconnection hint.
    pub(crate) retry_ms: Option<u64>,
}

/// A field that may be absent or `null`; present, it must pass `read`.
fn optional<J: Json, T>(
    v: &J,
    key: &str,
    read: impl FnOnce(&J) -> Option<T>,
    what: &str,
) -> Result<Option<T>, String> {
    match v.get(key).filter(|f| !f.is_null()) {
        None => Ok(None),
        Some(f) => read(&f)
            .map(Some)
            .ok_or_else(|| ["`", key, "` must be ", what, ", not ", f.kind()].concat()),
    }
}

impl PollResponse {
    /// Parses a polling response body.
    pub(crate) fn from_json(body: &str) -> Result<PollResponse, DecodeError> {
        let v = Doc::parse(body).map_err(|reason| DecodeError::MalformedJson { reason })?;
        Self::from_doc(&v).map_err(|reason| DecodeError::WrongShape { reason })
    }

    /// [`PollResponse::from_json`] of a parsed body.
    pub(crate) fn from_doc<J: Json>(v: &J) -> Result<PollResponse, String> {
        if !v.is_object() {
            return Err(["expected an object, not ", v.kind()].concat());
        }
        let items = optional(v, "events", J::items, "an array")?.unwrap_or_default();
        let mut events = Vec::with_capacity(items.len());
        for e in &items {
            if !e.is_object() {
                return Err(["an event must be an object, not ", e.kind()].concat());
            }
            let string = |k: &str| match e.get(k) {
                None => Ok(None),
                Some(f) => f
                    .as_str()
                    .map(Some)
                    .ok_or_else(|| ["`", k, "` must be a string, not ", f.kind()].concat()),
            };
            events.push(PollEvent {
                id: optional(e, "id", J::as_str, "a string")?,
                event: string("event")?.unwrap_or_else(message_name),
                data: string("data")?.unwrap_or_default(),
            });
        }
        let end = match v.get("end") {
            None => false,
            Some(f) => f
                .as_bool()
                .ok_or_else(|| ["`end` must be true or false, not ", f.kind()].concat())?,
        };
        Ok(PollResponse {
            events,
            last_event_id: optional(v, "last_event_id", J::as_str, "a string")?,
            end,
            retry_ms: optional(
                v,
                "retry_ms",
                |f| f.as_int().and_then(|n| u64::try_from(n).ok()),
                "a whole number",
            )?,
        })
    }

    /// Reads the answer of an app's `poll` function, as JSON text
    /// ([`PollResponse::from_answer`]).
    #[cfg(test)]
    pub(crate) fn from_answer_json(answer: &str) -> Result<PollResponse, String> {
        Self::from_answer(&Doc::parse(answer)?)
    }

    /// Reads the answer of an app's `poll` function:
    /// `{ events: [{ id?, event?, data }], lastEventId?, end? }`. Ids may be
    /// strings or numbers; `data` that is not a string stands for its JSON
    /// text; anything else is an error naming what is wrong.
    pub(crate) fn from_answer<J: Json>(v: &J) -> Result<PollResponse, String> {
        let events = v
            .get("events")
            .and_then(|e| e.items())
            .ok_or("`events` must be an array")?;
        let text = |v: Option<J>, what: &str| -> Result<Option<String>, String> {
            match v {
                None => Ok(None),
                Some(v) if v.is_null() => Ok(None),
                Some(v) => match v.as_str() {
                    Some(s) => Ok(Some(s)),
                    None if v.as_f64().is_some() => Ok(Some(v.to_text())),
                    None => Err([what, " must be a string, not ", &v.to_text()].concat()),
                },
            }
        };
        let mut out = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let at = ["events[", &crate::json::uint_text(i as u64), "]"].concat();
            let data = match e.get("data") {
                None => return Err([&at, " has no `data`"].concat()),
                Some(d) if d.is_null() => return Err([&at, " has no `data`"].concat()),
                Some(d) => d.as_str().unwrap_or_else(|| d.to_text()),
            };
            let id = text(e.get("id"), &[&at, ".id"].concat())?;
            let event = match e.get("event") {
                None => message_name(),
                Some(n) if n.is_null() => message_name(),
                Some(n) => match n.as_str() {
                    Some(s) if !s.is_empty() => s,
                    _ => return Err([&at, ".event must be a name, not ", &n.to_text()].concat()),
                },
            };
            out.push(PollEvent { id, event, data });
        }
        Ok(PollResponse {
            events: out,
            last_event_id: text(v.get("lastEventId"), "lastEventId")?,
            end: v.get("end").and_then(|e| e.as_bool()).unwrap_or(false),
            retry_ms: None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
