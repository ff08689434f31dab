//! Hand-written HTTP/1.1 on raw sockets: request bytes, response heads,
//! and a one-shot JSON POST for publishing and minting tokens.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::chunked::ChunkedDecoder;
use crate::error::Error;
use crate::target::Target;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest one-shot response body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// The request line and headers of an SSE subscription.
#[must_use]
pub fn sse_request(target: &Target, path: &str, token: Option<&str>) -> Vec<u8> {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n",
        target.host
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// How the body after a head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length: n`.
    Length(usize),
    /// Until the connection closes.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The body framing.
    pub framing: Framing,
    /// Bytes the head took, including the blank line.
    pub len: usize,
}

/// Parses a response head from the start of `buf`; `Ok(None)` when more
/// bytes are needed.
///
/// # Errors
/// [`Error::Http`] on a malformed or oversized head.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, Error> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(Error::Http("head too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Error::Http("unparsable head")),
    };
    let status = resp.code.ok_or(Error::Http("no status"))?;
    let mut framing = Framing::UntilClose;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding")
            && h.value
                .to_ascii_lowercase()
                .windows(7)
                .any(|w| w == b"chunked")
        {
            framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(Error::Http("bad content-length"))?;
            framing = Framing::Length(n);
        }
    }
    Ok(Some(Head {
        status,
        framing,
        len,
    }))
}

/// POSTs `body` as JSON (`Connection: close`) and returns the status and
/// the decoded body. Bounded by `timeout`.
///
/// # Errors
/// I/O errors, [`Error::Timeout`], or a malformed response.
pub async fn post_json(
    target: &Target,
    path: &str,
    token: Option<&str>,
    body: &str,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), Error> {
    tokio::time::timeout(timeout, post_json_inner(target, path, token, body))
        .await
        .map_err(|_| Error::Timeout("posting"))?
}

async fn post_json_inner(
    target: &Target,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Result<(u16, Vec<u8>), Error> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        target.host,
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut stream = TcpStream::connect(target.addr).await?;
    stream.set_nodelay(true)?;
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(Error::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = parse_head(&buf)? {
            break head;
        }
    };
    let mut rest = buf.split_off(head.len);
    let body = match head.framing {
        Framing::Length(n) => {
            while rest.len() < n.min(MAX_BODY) {
                let k = stream.read(&mut chunk).await?;
                if k == 0 {
                    break;
                }
                rest.extend_from_slice(&chunk[..k]);
            }
            rest.truncate(n);
            rest
        }
        Framing::UntilClose | Framing::Chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut out = Vec::new();
            let chunked = head.framing == Framing::Chunked;
            loop {
                if chunked {
                    dec.decode(&rest, |b| {
                        out.extend_from_slice(b);
                        Ok(())
                    })?;
                    rest.clear();
                    if dec.is_done() {
                        break;
                    }
                } else {
                    out.append(&mut rest);
                }
                if out.len() > MAX_BODY {
                    return Err(Error::Http("body too large"));
                }
                let k = stream.read(&mut chunk).await?;
                if k == 0 {
                    break;
                }
                rest.extend_from_slice(&chunk[..k]);
            }
            out
        }
    };
    Ok((head.status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() -> Result<(), Error> {
        let h = parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\nxx")?;
        assert_eq!(
            h,
            Some(Head {
                status: 200,
                framing: Framing::Chunked,
                len: 80
            })
        );
        let h = parse_head(b"HTTP/1.1 429 Too Many\r\nContent-Length: 5\r\n\r\n")?;
        assert_eq!(
            h.map(|h| (h.status, h.framing)),
            Some((429, Framing::Length(5)))
        );
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n")?, None);
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
        Ok(())
    }
}
