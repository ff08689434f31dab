//! Sans-IO SSE frame parser: just the `event:`, `data:` and `id:` fields
//! (WHATWG "event stream interpretation"; `retry:` and comments are skipped).

use crate::error::Error;

/// Longest line accepted; a longer one is a broken or hostile stream.
pub const MAX_LINE: usize = 64 * 1024;

/// One dispatched event, borrowed from the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` name, empty for an unnamed (`message`) event.
    pub event: &'a [u8],
    /// The `data:` lines joined with `\n`.
    pub data: &'a [u8],
    /// The last `id:` seen on the stream (it persists across events).
    pub id: &'a [u8],
}

/// Incremental parser. Its buffers start empty and only grow to the
/// longest line/event seen, so an idle connection costs a few words.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    event: Vec<u8>,
    id: Vec<u8>,
    has_data: bool,
    /// The previous byte was CR, so an LF right after it ends nothing.
    after_cr: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds stream bytes, calling `on_event` for each complete event.
    ///
    /// # Errors
    /// [`Error::LineTooLong`] past [`MAX_LINE`].
    pub fn feed(
        &mut self,
        input: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>),
    ) -> Result<(), Error> {
        let mut rest = input;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(pos) => {
                    self.push_line_part(&rest[..pos])?;
                    self.after_cr = rest[pos] == b'\r';
                    rest = &rest[pos + 1..];
                    self.end_line(&mut on_event);
                }
                None => {
                    self.push_line_part(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    fn push_line_part(&mut self, part: &[u8]) -> Result<(), Error> {
        if self.line.len() + part.len() > MAX_LINE {
            return Err(Error::LineTooLong(MAX_LINE));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn end_line(&mut self, on_event: &mut impl FnMut(SseEvent<'_>)) {
        if self.line.is_empty() {
            if self.has_data {
                on_event(SseEvent {
                    event: &self.event,
                    data: &self.data,
                    id: &self.id,
                });
            }
            self.data.clear();
            self.event.clear();
            self.has_data = false;
            return;
        }
        let line = &self.line[..];
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => (&line[..0], None), // comment
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], Some(v.strip_prefix(b" ").unwrap_or(v)))
            }
            None => (line, Some(&line[line.len()..])),
        };
        match (name, value) {
            (b"data", Some(v)) => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(v);
                self.has_data = true;
            }
            (b"event", Some(v)) => {
                self.event.clear();
                self.event.extend_from_slice(v);
            }
            (b"id", Some(v)) if !v.contains(&0) => {
                self.id.clear();
                self.id.extend_from_slice(v);
            }
            _ => {}
        }
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8], piece: usize) -> Result<Vec<(String, String, String)>, Error> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for part in input.chunks(piece) {
            p.feed(part, |e| {
                out.push((
                    String::from_utf8_lossy(e.event).into_owned(),
                    String::from_utf8_lossy(e.data).into_owned(),
                    String::from_utf8_lossy(e.id).into_owned(),
                ));
            })?;
        }
        Ok(out)
    }

    #[test]
    fn every_line_ending_and_split() -> Result<(), Error> {
        let stream = b"retry: 1000\r\n: ping\r\n\r\nid: 7\r\nevent: x\r\ndata: a\r\ndata:b\r\n\r\ndata: {\"k\":1}\n\nid: 8\rdata: c\r\r";
        let want = vec![
            ("x".to_string(), "a\nb".to_string(), "7".to_string()),
            (String::new(), "{\"k\":1}".to_string(), "7".to_string()),
            (String::new(), "c".to_string(), "8".to_string()),
        ];
        for piece in 1..stream.len() {
            assert_eq!(parse(stream, piece)?, want, "piece {piece}");
        }
        Ok(())
    }

    #[test]
    fn no_data_no_event_and_long_lines_refused() {
        assert_eq!(parse(b"event: x\n\n", 3).ok(), Some(vec![]));
        let long = vec![b'a'; MAX_LINE + 1];
        assert!(parse(&long, 4096).is_err());
    }
}
