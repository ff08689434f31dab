//! One kept-alive HTTP/1.1 connection that POSTs JSON bodies one after the
//! other (the publisher side of the publish-latency benchmark).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::chunked::ChunkedDecoder;
use crate::error::Error;
use crate::http::{parse_head, Framing, MAX_BODY};
use crate::target::Target;

/// A connection reused for every request until the server closes it.
#[derive(Debug)]
pub struct KeepAlive {
    stream: TcpStream,
    /// Bytes read past the end of the previous response.
    buf: Vec<u8>,
    host: String,
}

impl KeepAlive {
    /// Connects to `target` (`TCP_NODELAY` on).
    ///
    /// # Errors
    /// Connection errors.
    pub async fn connect(target: &Target) -> Result<Self, Error> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(1024),
            host: target.host.clone(),
        })
    }

    /// POSTs `body` as JSON to `path` and returns the status once the whole
    /// response has been read (the connection is then ready for the next one).
    ///
    /// # Errors
    /// I/O errors, a closed connection, or a response the connection cannot be
    /// reused after (no length, malformed).
    pub async fn post(
        &mut self,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> Result<u16, Error> {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(t) = token {
            req.push_str("Authorization: Bearer ");
            req.push_str(t);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.stream.write_all(req.as_bytes()).await?;
        let head = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            self.fill().await?;
        };
        self.buf.drain(..head.len);
        match head.framing {
            Framing::Length(n) if n <= MAX_BODY => {
                while self.buf.len() < n {
                    self.fill().await?;
                }
                self.buf.drain(..n);
            }
            Framing::Chunked => self.skip_chunked().await?,
            Framing::Length(_) | Framing::UntilClose => {
                return Err(Error::Http("response cannot be kept alive"))
            }
        }
        Ok(head.status)
    }

    async fn fill(&mut self) -> Result<(), Error> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(Error::Closed);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Skips a chunked body, keeping whatever follows it.
    async fn skip_chunked(&mut self) -> Result<(), Error> {
        let mut dec = ChunkedDecoder::new();
        let mut seen = 0usize;
        loop {
            // Feed one byte at a time past the end so bytes of the next
            // response stay in the buffer.
            let mut used = 0;
            for &b in &self.buf {
                dec.decode(&[b], |p| {
                    seen += p.len();
                    if seen > MAX_BODY {
                        Err(Error::Http("body too large"))
                    } else {
                        Ok(())
                    }
                })?;
                used += 1;
                if dec.is_done() {
                    break;
                }
            }
            self.buf.drain(..used);
            if dec.is_done() {
                return Ok(());
            }
            self.fill().await?;
        }
    }
}
