//! One event of a stream's history, and the client's position in it.

/// An event that is part of a stream's history: it has an id and sits in the replay log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Per-stream id, from 1, strictly increasing.
    pub id: u64,
    /// SSE event name; `None` for unnamed events (delivered as `message`).
    pub event: Option<String>,
    /// The exact `data` string.
    pub data: String,
}

impl Event {
    /// The name a browser dispatches this event under.
    pub fn name(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// Where a client says it is in a stream (from `Last-Event-ID` or `?lastEventId=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// No position: live from now (or from the start on finite streams).
    Live,
    /// The last id the client has seen.
    After(u64),
    /// Something that is not a valid id; kept (sanitised) to echo in the reset event.
    Invalid(String),
}

impl Position {
    /// Parses a raw position. Empty or absent means [`Position::Live`]; anything that is not a
    /// decimal u64 of at most 20 digits is [`Position::Invalid`].
    pub fn parse(raw: Option<&str>) -> Position {
        let Some(raw) = raw else {
            return Position::Live;
        };
        let trimmed = raw.trim_matches(' ');
        if trimmed.is_empty() {
            return Position::Live;
        }
        if trimmed.len() <= 20 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = trimmed.parse::<u64>() {
                return Position::After(n);
            }
        }
        Position::Invalid(sanitize(raw))
    }

    /// Parses a header value that may not be visible ASCII.
    pub fn from_header(value: &axum::http::HeaderValue) -> Position {
        match value.to_str() {
            Ok(s) => Position::parse(Some(s)),
            Err(_) => Position::Invalid(sanitize(&String::from_utf8_lossy(value.as_bytes()))),
        }
    }
}

/// Drops control characters and caps the length, so a hostile id can be echoed safely.
fn sanitize(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// Why a subscriber is told to refetch state instead of getting a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// The position is older than the oldest id kept in the log.
    Gap,
    /// The position was not a valid id.
    InvalidId,
    /// The position is newer than the head.
    Ahead,
}

impl ResetReason {
    /// Wire name of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::Gap => "gap",
            ResetReason::InvalidId => "invalid_id",
            ResetReason::Ahead => "ahead",
        }
    }
}

/// A reset the subscriber must be sent before live events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    /// Why.
    pub reason: ResetReason,
    /// What the client sent, sanitised.
    pub last_event_id: String,
    /// The stream's head id; the reset event carries it as its `id:`.
    pub head: u64,
}

impl Reset {
    /// The reset as an event (id = head), exactly as the stream and the polling form send it.
    pub fn to_event(&self) -> Event {
        let data = serde_json::json!({
            "type": "reset",
            "reason": self.reason.as_str(),
            "last_event_id": self.last_event_id,
            "head": self.head.to_string(),
        });
        Event {
            id: self.head,
            event: Some("reset".into()),
            data: data.to_string(),
        }
    }
}

/// What a subscriber at `position` must get, given the log holds ids `oldest..=head`
/// (`oldest == head + 1` when the log is empty).
pub fn plan_resume(position: &Position, oldest: u64, head: u64) -> Result<u64, Reset> {
    let reset = |reason, last: String| Reset {
        reason,
        last_event_id: last,
        head,
    };
    match position {
        Position::Live => Ok(head),
        Position::Invalid(raw) => Err(reset(ResetReason::InvalidId, raw.clone())),
        Position::After(n) if *n > head => Err(reset(ResetReason::Ahead, n.to_string())),
        Position::After(n) if *n + 1 < oldest => Err(reset(ResetReason::Gap, n.to_string())),
        Position::After(n) => Ok(*n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_positions() {
        assert_eq!(Position::parse(None), Position::Live);
        assert_eq!(Position::parse(Some("")), Position::Live);
        assert_eq!(Position::parse(Some("42")), Position::After(42));
        assert_eq!(
            Position::parse(Some("18446744073709551615")),
            Position::After(u64::MAX)
        );
        assert!(matches!(
            Position::parse(Some("18446744073709551616")),
            Position::Invalid(_)
        ));
        assert!(matches!(Position::parse(Some("abc")), Position::Invalid(_)));
        assert!(matches!(Position::parse(Some("-1")), Position::Invalid(_)));
        assert!(matches!(
            Position::parse(Some("123456789012345678901")),
            Position::Invalid(_)
        ));
        assert_eq!(
            Position::parse(Some("1\u{1}2")),
            Position::Invalid("12".into())
        );
    }

    #[test]
    fn plans_resume() {
        // log holds 5..=10
        assert_eq!(plan_resume(&Position::Live, 5, 10), Ok(10));
        assert_eq!(plan_resume(&Position::After(4), 5, 10), Ok(4));
        assert_eq!(plan_resume(&Position::After(10), 5, 10), Ok(10));
        assert_eq!(
            plan_resume(&Position::After(3), 5, 10).unwrap_err().reason,
            ResetReason::Gap
        );
        assert_eq!(
            plan_resume(&Position::After(11), 5, 10).unwrap_err().reason,
            ResetReason::Ahead
        );
        let r = plan_resume(&Position::Invalid("x".into()), 5, 10).unwrap_err();
        assert_eq!((r.reason, r.head), (ResetReason::InvalidId, 10));
        // empty stream
        assert_eq!(plan_resume(&Position::After(0), 1, 0), Ok(0));
    }

    #[test]
    fn reset_event_shape() {
        let r = Reset {
            reason: ResetReason::Gap,
            last_event_id: "3".into(),
            head: 9,
        };
        let e = r.to_event();
        assert_eq!(e.id, 9);
        assert_eq!(
            e.data,
            r#"{"type":"reset","reason":"gap","last_event_id":"3","head":"9"}"#
        );
    }
}
