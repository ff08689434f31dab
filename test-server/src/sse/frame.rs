//! Exact bytes of SSE frames.

use bytes::Bytes;

use crate::event::Event;

/// The first frame of every response: the client's reconnection base.
pub const RETRY_FRAME: &[u8] = b"retry: 1000\n\n";

/// The second frame of every response: the server announces the Tidings protocol.
///
/// A named event, so both transports see it (an `EventSource` exposes no headers and no
/// comments) while clients that do not know it ignore it (`onmessage` only gets unnamed
/// events). No `id:` line, so it never moves the client's position. `capabilities` lists
/// the behaviours a client may rely on; a client ignores names it does not know, and a
/// later protocol feature is announced by adding its name here. Static bytes: shared by
/// every connection, nothing stored per connection.
pub const HELLO_FRAME: &[u8] = b"event: tidings\ndata: {\"protocol\":\"tidings\",\"version\":1,\"capabilities\":[\"numeric-ids\",\"replay\",\"reset\",\"end\",\"poll\",\"mux\"],\"mux\":\"/api/mux\"}\n\n";

/// Appends one event frame: `event:` (if named), `id:` (if any), one `data:` line per line of data.
pub fn write_frame(out: &mut Vec<u8>, id: Option<u64>, event: Option<&str>, data: &str) {
    write_frame_of(out, None, id, event, data);
}

/// Appends one event frame of the stream tagged `tag` on a multiplexed connection: its
/// event line is `event: <tag> <name>` (`message` for unnamed events); without a tag,
/// exactly [`write_frame`].
pub fn write_frame_of(
    out: &mut Vec<u8>,
    tag: Option<&str>,
    id: Option<u64>,
    event: Option<&str>,
    data: &str,
) {
    let clean = |out: &mut Vec<u8>, s: &str| {
        // Names are server-chosen; strip line breaks defensively so a frame can never split.
        out.extend(s.bytes().filter(|b| *b != b'\n' && *b != b'\r'));
    };
    match (tag, event) {
        (Some(tag), name) => {
            out.extend_from_slice(b"event: ");
            clean(out, tag);
            out.push(b' ');
            clean(out, name.unwrap_or("message"));
            out.push(b'\n');
        }
        (None, Some(name)) => {
            out.extend_from_slice(b"event: ");
            clean(out, name);
            out.push(b'\n');
        }
        (None, None) => {}
    }
    if let Some(id) = id {
        out.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    let mut lines = data.split('\n').peekable();
    if lines.peek().is_none() {
        out.extend_from_slice(b"data: \n");
    }
    for line in lines {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix('\r').unwrap_or(line).as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// One frame as bytes.
pub fn frame(id: Option<u64>, event: Option<&str>, data: &str) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 32);
    write_frame(&mut out, id, event, data);
    Bytes::from(out)
}

/// Appends a logged event (with its id).
pub fn write_event(out: &mut Vec<u8>, e: &Event) {
    write_frame(out, Some(e.id), e.event.as_deref(), &e.data);
}

/// Appends a logged event (with its id), tagged with its stream when `tag` is given.
pub fn write_event_of(out: &mut Vec<u8>, tag: Option<&str>, e: &Event) {
    write_frame_of(out, tag, Some(e.id), e.event.as_deref(), &e.data);
}

/// Re-writes frames this server encoded (`event:`, `id:`, `data:` lines; no comments)
/// with the stream tag on their event line, for a multiplexed connection.
pub fn retag(frames: &[u8], tag: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(frames.len() + 64);
    let text = String::from_utf8_lossy(frames);
    for block in text.split("\n\n").filter(|b| !b.is_empty()) {
        let mut name = None;
        let mut rest = Vec::new();
        for line in block.split('\n') {
            match line.strip_prefix("event: ") {
                Some(n) => name = Some(n),
                None => rest.push(line),
            }
        }
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        out.extend_from_slice(name.unwrap_or("message").as_bytes());
        out.push(b'\n');
        for line in rest {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_bytes() {
        assert_eq!(
            &frame(Some(7), Some("unread_count"), r#"{"count":2}"#)[..],
            b"event: unread_count\nid: 7\ndata: {\"count\":2}\n\n"
        );
        assert_eq!(&frame(Some(1), None, "x")[..], b"id: 1\ndata: x\n\n");
        assert_eq!(
            &frame(None, Some("heartbeat"), "{}")[..],
            b"event: heartbeat\ndata: {}\n\n"
        );
        assert_eq!(
            &frame(None, None, "a\nb\r\nc")[..],
            b"data: a\ndata: b\ndata: c\n\n"
        );
        assert_eq!(&frame(None, Some("a\nb"), "")[..], b"event: ab\ndata: \n\n");
    }

    #[test]
    fn hello_is_one_named_event_without_id_carrying_json() {
        let text = std::str::from_utf8(HELLO_FRAME).unwrap();
        let data = text
            .strip_prefix("event: tidings\ndata: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .unwrap();
        assert!(!data.contains('\n'), "one data line, one frame");
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["protocol"], "tidings");
        assert_eq!(v["version"], 1);
        assert_eq!(
            v["capabilities"],
            serde_json::json!(["numeric-ids", "replay", "reset", "end", "poll", "mux"])
        );
        assert_eq!(v["mux"], "/api/mux");
    }

    #[test]
    fn tagged_frames_carry_the_stream_before_the_name() {
        let mut out = Vec::new();
        write_frame_of(&mut out, Some("/api/v1/events/a"), Some(4), None, "x");
        write_frame_of(&mut out, Some("/s"), None, Some("end"), "{}");
        assert_eq!(
            &out[..],
            b"event: /api/v1/events/a message\nid: 4\ndata: x\n\nevent: /s end\ndata: {}\n\n"
        );
        let greeting = b"id: 3\ndata: a\n\nevent: unread_count\ndata: {}\n\n";
        assert_eq!(
            &retag(greeting, "/n")[..],
            b"event: /n message\nid: 3\ndata: a\n\nevent: /n unread_count\ndata: {}\n\n"
        );
    }
}
