//! Sans-IO decoder for `Transfer-Encoding: chunked` bodies (RFC 9112 §7.1).

use crate::error::Error;

/// Incremental chunked-body decoder: feed bytes as they arrive, get the
/// payload bytes out. Holds no buffer of its own.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: State,
}

#[derive(Debug, Default, Clone, Copy)]
enum State {
    /// Reading the hex size; `digits` counts digits seen.
    #[default]
    SizeStart,
    Size {
        value: u64,
        digits: u8,
    },
    /// Skipping a chunk extension up to LF.
    Ext {
        value: u64,
    },
    /// Saw CR after the size, expecting LF.
    SizeLf {
        value: u64,
    },
    Data {
        remaining: u64,
    },
    /// After the data: expecting CR LF (or a bare LF).
    DataEnd,
    DataEndLf,
    /// After the last chunk: skipping trailer lines up to the empty line.
    Trailer {
        line_len: usize,
    },
    Done,
}

const MAX_DIGITS: u8 = 15;

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// True once the terminating zero-size chunk and trailer were read.
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Decodes `input`, handing each run of payload bytes to `out`.
    ///
    /// # Errors
    /// [`Error::Chunked`] on a framing violation, or whatever `out` returns.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                State::SizeStart => match hex(b) {
                    Some(d) => State::Size {
                        value: d,
                        digits: 1,
                    },
                    None => return Err(Error::Chunked),
                },
                State::Size { value, digits } => match (hex(b), b) {
                    (Some(d), _) if digits < MAX_DIGITS => State::Size {
                        value: value * 16 + d,
                        digits: digits + 1,
                    },
                    (Some(_), _) => return Err(Error::Chunked),
                    (None, b';' | b' ' | b'\t') => State::Ext { value },
                    (None, b'\r') => State::SizeLf { value },
                    (None, b'\n') => after_size(value),
                    (None, _) => return Err(Error::Chunked),
                },
                State::Ext { value } => match b {
                    b'\n' => after_size(value),
                    _ => State::Ext { value },
                },
                State::SizeLf { value } => match b {
                    b'\n' => after_size(value),
                    _ => return Err(Error::Chunked),
                },
                State::Data { remaining } => {
                    let avail = (input.len() - i) as u64;
                    let take = remaining.min(avail);
                    // `take` <= avail, which came from a usize.
                    let end = i + take as usize;
                    out(&input[i..end])?;
                    i = end;
                    self.state = if take == remaining {
                        State::DataEnd
                    } else {
                        State::Data {
                            remaining: remaining - take,
                        }
                    };
                    continue;
                }
                State::DataEnd => match b {
                    b'\r' => State::DataEndLf,
                    b'\n' => State::SizeStart,
                    _ => return Err(Error::Chunked),
                },
                State::DataEndLf => match b {
                    b'\n' => State::SizeStart,
                    _ => return Err(Error::Chunked),
                },
                State::Trailer { line_len } => match b {
                    b'\n' if line_len == 0 => State::Done,
                    b'\n' => State::Trailer { line_len: 0 },
                    b'\r' => State::Trailer { line_len },
                    _ => State::Trailer {
                        line_len: line_len + 1,
                    },
                },
                State::Done => return Ok(()),
            };
            i += 1;
        }
        Ok(())
    }
}

fn after_size(value: u64) -> State {
    if value == 0 {
        State::Trailer { line_len: 0 }
    } else {
        State::Data { remaining: value }
    }
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> Result<(Vec<u8>, bool), Error> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        for part in input.chunks(piece) {
            d.decode(part, |b| {
                out.extend_from_slice(b);
                Ok(())
            })?;
        }
        Ok((out, d.is_done()))
    }

    #[test]
    fn decodes_split_at_every_byte() -> Result<(), Error> {
        let body = b"5\r\nhello\r\nB;ext=1\r\n, world\r\n!!\r\n0\r\nX-T: 1\r\n\r\n";
        for piece in 1..body.len() {
            let (out, done) = decode_in_pieces(body, piece)?;
            assert_eq!(out, b"hello, world\r\n!!");
            assert!(done);
        }
        Ok(())
    }

    #[test]
    fn accepts_bare_lf() -> Result<(), Error> {
        let (out, done) = decode_in_pieces(b"3\nabc\n0\n\n", 2)?;
        assert_eq!(out, b"abc");
        assert!(done);
        Ok(())
    }

    #[test]
    fn rejects_garbage_and_overflow() {
        assert!(decode_in_pieces(b"zz\r\n", 4).is_err());
        assert!(decode_in_pieces(b"3\r\nabcX", 8).is_err());
        assert!(decode_in_pieces(b"ffffffffffffffffff\r\n", 32).is_err());
    }
}
