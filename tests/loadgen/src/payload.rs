//! The benchmark message: `{type:"data", object:{seq, sent_at_us}}`, a
//! seed-003 `WSMessage` whose object carries the sequence number and the
//! publisher's wall-clock send time (same machine, same clock).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// Microseconds since the Unix epoch, now.
#[must_use]
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The publish body for event `seq` sent at `sent_at_us`.
#[must_use]
pub fn publish_body(seq: u32, sent_at_us: u64) -> String {
    format!(r#"{{"type":"data","object":{{"seq":{seq},"sent_at_us":{sent_at_us}}}}}"#)
}

/// What a receiver needs from an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The publisher's sequence number (0-based).
    pub seq: u32,
    /// When it was sent, µs since the epoch.
    pub sent_at_us: u64,
}

#[derive(Deserialize)]
struct Envelope {
    object: ProbeObject,
}

#[derive(Deserialize)]
struct ProbeObject {
    seq: u32,
    sent_at_us: u64,
}

/// Reads a benchmark probe out of an event's data; `None` for any other
/// event (greetings, heartbeats, resets, foreign messages).
#[must_use]
pub fn parse_probe(data: &[u8]) -> Option<Probe> {
    let env: Envelope = serde_json::from_slice(data).ok()?;
    Some(Probe {
        seq: env.object.seq,
        sent_at_us: env.object.sent_at_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_foreign() {
        let body = publish_body(7, 123);
        assert_eq!(
            parse_probe(body.as_bytes()),
            Some(Probe {
                seq: 7,
                sent_at_us: 123
            })
        );
        assert_eq!(parse_probe(br#"{"timestamp":"2024"}"#), None);
        assert_eq!(parse_probe(br#"{"type":"data","object":"text"}"#), None);
        assert_eq!(parse_probe(b"not json"), None);
    }
}
