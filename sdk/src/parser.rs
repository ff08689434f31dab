//! The WHATWG `text/event-stream` parser, sans-IO and incremental.
//!
//! Feed it byte chunks split anywhere ([`Parser::feed`]) and take complete
//! frames out ([`Parser::poll`]). It follows the HTML Standard's "event stream
//! interpretation" exactly:
//!
//! - one leading U+FEFF BOM is stripped from the stream;
//! - lines end in CRLF, LF or CR (a CR at the end of one chunk and an LF at the
//!   start of the next are one line end);
//! - `data` lines are joined with LF, and the final LF is removed;
//! - an `id` whose value contains NUL is ignored; the last event id persists
//!   across events (WHATWG), while [`SseEvent::id`] says whether *this* event
//!   carried its own `id:` line (the Tidings protocol sends none on heartbeats);
//! - `retry` is honoured only when the value is ASCII digits;
//! - lines starting with `:` are comments; a line without a colon is a field
//!   name with an empty value; exactly one space after the colon is stripped;
//! - an event with an empty data buffer is not dispatched; an unterminated
//!   event at end of stream is discarded ([`Parser::finish`]).
//!
//! Invalid UTF-8 is replaced with U+FFFD line by line. Line ends are ASCII and
//! never occur inside a multi-byte sequence, so this equals decoding the whole
//! stream first.

use std::collections::VecDeque;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type: the `event:` field, or `message` when there was none.
    pub event: String,
    /// The data lines joined with LF.
    pub data: String,
    /// The value of this event's own `id:` line, if it had one (a valid one,
    /// without NUL). `Some("")` means the server cleared the id.
    pub id: Option<String>,
}

impl SseEvent {
    /// An event with the given name, data and id (convenience for tests and transports).
    pub fn new(event: impl Into<String>, data: impl Into<String>, id: Option<&str>) -> Self {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.map(str::to_owned),
        }
    }
}

/// What the parser produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete event.
    Event(SseEvent),
    /// A valid `retry:` field: the server's reconnection time in milliseconds.
    Retry(u64),
}

/// Incremental event-stream parser. See the module docs for the rules.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    pending_cr: bool,
    bom_checked: bool,
    data: String,
    has_data: bool,
    event_type: String,
    event_id: Option<String>,
    last_event_id: String,
    out: VecDeque<Frame>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The WHATWG last event id buffer: the value of the most recent `id:` line.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Feeds the next chunk of the response body (any length, split anywhere).
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            if self.pending_cr {
                self.pending_cr = false;
                if chunk[0] == b'\n' {
                    chunk = &chunk[1..];
                    continue;
                }
            }
            match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.line.extend_from_slice(&chunk[..i]);
                    self.pending_cr = chunk[i] == b'\r';
                    chunk = &chunk[i + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.process_line(&line);
                    // Reuse the allocation for the next line.
                    self.line = line;
                    self.line.clear();
                }
                None => {
                    self.line.extend_from_slice(chunk);
                    chunk = &[];
                }
            }
        }
    }

    /// The next complete frame, if any.
    #[must_use]
    pub fn poll(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }

    /// End of stream: discards an unterminated line and event (WHATWG) and
    /// readies the parser for a new connection. The last event id is kept.
    pub fn finish(&mut self) {
        self.line.clear();
        self.pending_cr = false;
        self.bom_checked = false;
        self.data.clear();
        self.has_data = false;
        self.event_type.clear();
        self.event_id = None;
    }

    fn process_line(&mut self, mut line: &[u8]) {
        if !self.bom_checked {
            self.bom_checked = true;
            if line.starts_with(BOM) {
                line = &line[BOM.len()..];
            }
        }
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => self.event_type = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            // An id containing NUL is ignored (WHATWG).
            b"id" if !value.contains(&0) => {
                let id = String::from_utf8_lossy(value).into_owned();
                self.last_event_id.clone_from(&id);
                self.event_id = Some(id);
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits: only overflow can fail; a value past u64 is ignored.
                if let Some(ms) = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()) {
                    self.out.push_back(Frame::Retry(ms));
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let id = self.event_id.take();
        if !self.has_data {
            // WHATWG: no data → no event; the type buffer is reset, the id persists.
            self.event_type.clear();
            return;
        }
        self.has_data = false;
        let event = if self.event_type.is_empty() {
            "message".to_owned()
        } else {
            std::mem::take(&mut self.event_type)
        };
        self.out.push_back(Frame::Event(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id,
        }));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    // The core tests also run in the browser (quinn style): `cargo test --target wasm32-unknown-unknown`.
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c);
            while let Some(f) = p.poll() {
                out.push(f);
            }
        }
        out
    }

    fn parse(s: &str) -> Vec<Frame> {
        parse_chunks(&[s.as_bytes()])
    }

    fn ev(event: &str, data: &str, id: Option<&str>) -> Frame {
        Frame::Event(SseEvent::new(event, data, id))
    }

    #[test]
    fn simple_unnamed_event() {
        assert_eq!(parse("data: hello\n\n"), vec![ev("message", "hello", None)]);
    }

    #[test]
    fn named_event_with_id() {
        assert_eq!(
            parse("event: unread_count\nid: 7\ndata: {\"count\":1}\n\n"),
            vec![ev("unread_count", "{\"count\":1}", Some("7"))]
        );
    }

    #[test]
    fn data_lines_joined_with_lf() {
        assert_eq!(
            parse("data: a\ndata:b\ndata\n\n"),
            vec![ev("message", "a\nb\n", None)]
        );
    }

    #[test]
    fn only_one_leading_space_stripped() {
        assert_eq!(parse("data:  two\n\n"), vec![ev("message", " two", None)]);
        assert_eq!(
            parse("data:no space\n\n"),
            vec![ev("message", "no space", None)]
        );
    }

    #[test]
    fn cr_lf_and_crlf_line_ends() {
        let want = vec![
            ev("message", "a", None),
            ev("message", "b", None),
            ev("message", "c", None),
        ];
        assert_eq!(parse("data: a\r\rdata: b\n\ndata: c\r\n\r\n"), want);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let got = parse_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec![ev("message", "a\nb", None)]);
    }

    #[test]
    fn bom_stripped_once_even_when_split() {
        assert_eq!(
            parse_chunks(&[b"\xEF", b"\xBB\xBFdata: x\n\n"]),
            vec![ev("message", "x", None)]
        );
        // A second BOM is part of the line: field name "\u{feff}data" is unknown.
        assert_eq!(parse("\u{feff}\u{feff}data: x\n\n"), vec![]);
    }

    #[test]
    fn comments_and_unknown_fields_ignored() {
        assert_eq!(
            parse(": hi\nfoo: bar\ndata: x\n:\n\n"),
            vec![ev("message", "x", None)]
        );
    }

    #[test]
    fn field_without_colon_has_empty_value() {
        assert_eq!(parse("data\n\n"), vec![ev("message", "", None)]);
        assert_eq!(parse("event\ndata: x\n\n"), vec![ev("message", "x", None)]);
    }

    #[test]
    fn id_with_nul_ignored_and_id_persists() {
        let mut p = Parser::new();
        p.feed(b"id: 5\ndata: a\n\nid: 6\0x\ndata: b\n\n");
        assert_eq!(p.poll(), Some(ev("message", "a", Some("5"))));
        assert_eq!(p.poll(), Some(ev("message", "b", None)));
        assert_eq!(p.last_event_id(), "5");
    }

    #[test]
    fn empty_id_clears() {
        let mut p = Parser::new();
        p.feed(b"id: 5\ndata: a\n\nid\ndata: b\n\n");
        assert_eq!(p.poll(), Some(ev("message", "a", Some("5"))));
        assert_eq!(p.poll(), Some(ev("message", "b", Some(""))));
        assert_eq!(p.last_event_id(), "");
    }

    #[test]
    fn retry_digits_only() {
        assert_eq!(parse("retry: 1000\n"), vec![Frame::Retry(1000)]);
        assert_eq!(parse("retry: 10a\nretry: -1\nretry:\nretry: 1.5\n"), vec![]);
        assert_eq!(parse("retry: 99999999999999999999999\n"), vec![]);
    }

    #[test]
    fn no_data_no_dispatch_and_type_reset() {
        assert_eq!(
            parse("event: x\n\ndata: y\n\n"),
            vec![ev("message", "y", None)]
        );
        assert_eq!(parse("\n\n\n"), vec![]);
    }

    #[test]
    fn unterminated_event_discarded_by_finish() {
        let mut p = Parser::new();
        p.feed(b"data: partial\n");
        assert_eq!(p.poll(), None);
        p.finish();
        p.feed(b"data: next\n\n");
        assert_eq!(p.poll(), Some(ev("message", "next", None)));
    }

    #[test]
    fn invalid_utf8_replaced() {
        assert_eq!(
            parse_chunks(&[b"data: \xff\xfe\n\n"]),
            vec![ev("message", "\u{fffd}\u{fffd}", None)]
        );
    }

    #[test]
    fn multibyte_split_across_chunks() {
        let s = "data: héllo €\n\n".as_bytes();
        for i in 0..s.len() {
            assert_eq!(
                parse_chunks(&[&s[..i], &s[i..]]),
                vec![ev("message", "héllo €", None)]
            );
        }
    }

    #[test]
    fn every_byte_split_of_multi_event_chunk() {
        let s: &[u8] = b"\xEF\xBB\xBFretry: 1000\r\n: c\r\nevent: a\r\nid: 1\r\ndata: x\r\ndata: y\r\n\r\nevent: b\rdata: z\r\rdata: w\n\n";
        let whole = parse_chunks(&[s]);
        assert_eq!(whole.len(), 4);
        for i in 0..=s.len() {
            for j in i..=s.len() {
                assert_eq!(
                    parse_chunks(&[&s[..i], &s[i..j], &s[j..]]),
                    whole,
                    "split at {i},{j}"
                );
            }
        }
    }

    #[test]
    fn huge_data_line() {
        let big = "x".repeat(1 << 20);
        let input = format!("data: {big}\n\n");
        let chunks: Vec<&[u8]> = input.as_bytes().chunks(4096).collect();
        let got = parse_chunks(&chunks);
        assert_eq!(got, vec![ev("message", &big, None)]);
    }
}
