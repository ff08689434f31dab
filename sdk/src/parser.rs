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
//!
//! ```
//! use tidings::parser::{Frame, Parser, SseEvent};
//!
//! let mut parser = Parser::new();
//! parser.feed(b"retry: 2000\nid: 7\nevent: cre");
//! parser.feed(b"ate\ndata: {\"n\":1}\n\n: a comment\n");
//! assert_eq!(parser.poll(), Some(Frame::Retry(2000)));
//! assert_eq!(
//!     parser.poll(),
//!     Some(Frame::Event(SseEvent::new("create", r#"{"n":1}"#, Some("7"))))
//! );
//! assert_eq!(parser.poll(), None);
//! ```

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
    /// Counts [`Parser::feed`] calls: a [`Span`] is of the chunk of its feed.
    fed: u64,
    /// Where the pending event's data lies in the chunk being fed, while it
    /// is one valid UTF-8 `data` line wholly inside that chunk.
    span: Option<Span>,
    out: VecDeque<(Frame, Option<Span>)>,
}

/// Where an event's data lies in the chunk given to [`Parser::feed`]: bytes
/// `start..end`, valid UTF-8, exactly the event's `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    fed: u64,
    /// First byte of the data in the chunk.
    pub(crate) start: usize,
    /// One past its last byte.
    pub(crate) end: usize,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `value` as text, invalid UTF-8 replaced with U+FFFD. Valid text (nearly
/// always) is checked by `from_utf8`, whose ASCII path reads a word at a
/// time; `from_utf8_lossy` alone goes byte by byte.
fn text(value: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(value) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(value),
    }
}

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
        self.fed += 1;
        // A data line of an earlier chunk is not in this one.
        self.span = None;
        let len = chunk.len();
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
                    self.pending_cr = chunk[i] == b'\r';
                    let (line, rest) = (&chunk[..i], &chunk[i + 1..]);
                    if self.line.is_empty() {
                        // The whole line is in the chunk: read there, no copy.
                        self.process_line(line, Some(len - chunk.len() + i));
                    } else {
                        self.line.extend_from_slice(line);
                        let line = std::mem::take(&mut self.line);
                        self.process_line(&line, None);
                        // Reuse the allocation for the next line.
                        self.line = line;
                        self.line.clear();
                    }
                    chunk = rest;
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
        self.out.pop_front().map(|(f, _)| f)
    }

    /// The first byte and the end of the stretch of the chunk last fed that
    /// holds the data of every queued event [`Parser::poll_spanned`] gives a
    /// [`Span`] for, if any.
    // Used by the `fetch` transport (wasm) and the tests.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn stretch(&self) -> Option<(usize, usize)> {
        let mut stretch: Option<(usize, usize)> = None;
        for s in self
            .out
            .iter()
            .filter_map(|(_, s)| s.filter(|s| s.fed == self.fed))
        {
            stretch = Some((stretch.map_or(s.start, |(a, _)| a), s.end));
        }
        stretch
    }

    /// The next complete frame and, for an event whose data is one valid
    /// UTF-8 line of the chunk last fed, where that data lies in the chunk
    /// (a transport can then take the events' text from one decoding of the
    /// chunk instead of one per event).
    // Used by the `fetch` transport (wasm) and the tests.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    #[must_use]
    pub(crate) fn poll_spanned(&mut self) -> Option<(Frame, Option<Span>)> {
        let (f, span) = self.out.pop_front()?;
        Some((f, span.filter(|s| s.fed == self.fed)))
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
        self.span = None;
    }

    /// One line without its line end; `end`: where it ends in the chunk
    /// being fed, when it lies wholly in it.
    fn process_line(&mut self, mut line: &[u8], end: Option<usize>) {
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
            b"event" => self.event_type = text(value).into_owned(),
            b"data" => {
                let text = text(value);
                // The value is the end of the line.
                self.span = match (&text, end) {
                    (std::borrow::Cow::Borrowed(_), Some(end)) if !self.has_data => Some(Span {
                        fed: self.fed,
                        start: end - value.len(),
                        end,
                    }),
                    _ => None,
                };
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&text);
                self.has_data = true;
            }
            // An id containing NUL is ignored (WHATWG).
            b"id" if !value.contains(&0) => {
                let id = text(value).into_owned();
                self.last_event_id.clone_from(&id);
                self.event_id = Some(id);
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits: only overflow can fail; a value past u64 is ignored.
                if let Some(ms) = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()) {
                    self.out.push_back((Frame::Retry(ms), None));
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let id = self.event_id.take();
        let span = self.span.take();
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
        self.out.push_back((
            Frame::Event(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
                id,
            }),
            span,
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
