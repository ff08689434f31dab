//! One SSE connection: connect from a chosen source address, send the GET,
//! read the head, then decode body → SSE events → the worker's tally.
//!
//! Per connection the only heap state is the socket, the SSE parser's
//! (initially empty) line buffers and one bit per expected event: reads go
//! through one buffer shared by the whole (single-threaded) worker.

use std::cell::RefCell;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

use crate::chunked::ChunkedDecoder;
use crate::error::Error;
use crate::http::{parse_head, Framing};
use crate::payload::{now_us, parse_probe};
use crate::sse::SseParser;
use crate::tally::Tally;

/// Bytes read per `read` call, shared by every connection of a worker.
pub const READ_BUF: usize = 4096;

/// What every connection of a worker shares.
#[derive(Debug)]
pub struct Shared {
    /// The server.
    pub target: SocketAddr,
    /// The full request bytes.
    pub request: Vec<u8>,
    /// Bounds the number of connects in flight.
    pub connect_slots: Semaphore,
    /// How long one connect + response head may take.
    pub connect_timeout: Duration,
    /// The worker's counts.
    pub tally: RefCell<Tally>,
    /// The one read buffer.
    pub buf: RefCell<Box<[u8]>>,
}

/// Runs connection `id` from `source` (or a kernel-chosen address) until
/// the server closes it or the worker exits; records everything in the tally.
pub async fn run(shared: Rc<Shared>, id: usize, source: Option<Ipv4Addr>) {
    let opened = {
        let Ok(_slot) = shared.connect_slots.acquire().await else {
            return;
        };
        tokio::time::timeout(shared.connect_timeout, open(&shared, source))
            .await
            .unwrap_or(Err(Error::Timeout("connecting")))
    };
    let (stream, framing, leftover) = match opened {
        Ok(v) => v,
        Err(e) => {
            shared.tally.borrow_mut().failed(id, e.kind());
            return;
        }
    };
    shared.tally.borrow_mut().opened(id);
    let mut body = Body::new(framing);
    if body.feed(&shared, id, &leftover).is_err() {
        shared.tally.borrow_mut().dropped(id);
        return;
    }
    drop(leftover);
    let _ = stream_events(&shared, id, &stream, &mut body).await;
    shared.tally.borrow_mut().dropped(id);
}

async fn open(
    shared: &Shared,
    source: Option<Ipv4Addr>,
) -> Result<(TcpStream, Framing, Vec<u8>), Error> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip.into(), 0))?;
    }
    let mut stream = socket.connect(shared.target).await?;
    stream.set_nodelay(true)?;
    stream.write_all(&shared.request).await?;
    let mut head_buf = Vec::new();
    loop {
        stream.readable().await?;
        {
            let mut buf = shared.buf.borrow_mut();
            match stream.try_read(&mut buf) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => head_buf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(head) = parse_head(&head_buf)? {
            if head.status != 200 {
                let body = String::from_utf8_lossy(&head_buf[head.len..])
                    .chars()
                    .take(200)
                    .collect();
                return Err(Error::Status {
                    status: head.status,
                    body,
                });
            }
            let leftover = head_buf.split_off(head.len);
            return Ok((stream, head.framing, leftover));
        }
    }
}

async fn stream_events(
    shared: &Shared,
    id: usize,
    stream: &TcpStream,
    body: &mut Body,
) -> Result<(), Error> {
    loop {
        stream.readable().await?;
        let buf = &mut *shared.buf.borrow_mut();
        match stream.try_read(buf) {
            Ok(0) => return Err(Error::Closed),
            Ok(n) => body.feed(shared, id, &buf[..n])?,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        if body.done() {
            return Ok(());
        }
    }
}

/// Body decoding state of one connection.
#[derive(Debug)]
struct Body {
    chunked: Option<ChunkedDecoder>,
    sse: SseParser,
}

impl Body {
    fn new(framing: Framing) -> Self {
        let chunked = (framing == Framing::Chunked).then(ChunkedDecoder::new);
        Self {
            chunked,
            sse: SseParser::new(),
        }
    }

    fn done(&self) -> bool {
        self.chunked.as_ref().is_some_and(ChunkedDecoder::is_done)
    }

    fn feed(&mut self, shared: &Shared, id: usize, bytes: &[u8]) -> Result<(), Error> {
        let now = now_us();
        let sse = &mut self.sse;
        let mut on_bytes = |b: &[u8]| {
            sse.feed(b, |ev| {
                shared
                    .tally
                    .borrow_mut()
                    .received(id, parse_probe(ev.data), now);
            })
        };
        match &mut self.chunked {
            Some(dec) => dec.decode(bytes, on_bytes),
            None => on_bytes(bytes),
        }
    }
}
