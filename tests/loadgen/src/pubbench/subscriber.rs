//! The one SSE subscriber of the publish-latency benchmark: records, for each
//! probe it receives, the time from its publish to its arrival here.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::chunked::ChunkedDecoder;
use crate::error::Error;
use crate::histogram::Histogram;
use crate::http::{parse_head, sse_request, Framing};
use crate::payload::{now_us, parse_probe};
use crate::sse::SseParser;
use crate::target::Target;

/// What the subscriber has seen so far.
#[derive(Debug, Default)]
pub struct Received {
    /// Publish → arrival, µs, per probe (first arrival only).
    pub latency: Histogram,
    /// Which sequence numbers arrived.
    seen: Vec<bool>,
    /// Distinct probes received.
    pub distinct: u64,
    /// Probes received more than once.
    pub duplicates: u64,
}

impl Received {
    /// Room for probes `0..count`, forgetting everything before.
    pub fn reset(&mut self, count: u32) {
        *self = Received {
            seen: vec![false; count as usize],
            ..Received::default()
        };
    }

    fn record(&mut self, seq: u32, latency_us: u64) {
        match self.seen.get_mut(seq as usize) {
            Some(seen) if *seen => self.duplicates += 1,
            Some(seen) => {
                *seen = true;
                self.distinct += 1;
                self.latency.record(latency_us);
            }
            // A probe of an earlier phase on the same stream.
            None => {}
        }
    }
}

/// Shared between the reading task and the benchmark driver.
pub type Shared = Arc<Mutex<Received>>;

/// Locks the shared counts (a poisoned lock still holds valid counts).
pub fn lock(shared: &Shared) -> MutexGuard<'_, Received> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens the stream and returns once the response head (200) is in; the
/// stream is then read by a spawned task until it ends or the runtime stops.
///
/// # Errors
/// Connection errors or a non-200 answer.
pub async fn open(
    target: &Target,
    path: &str,
    token: Option<&str>,
    shared: Shared,
) -> Result<(), Error> {
    let mut stream = TcpStream::connect(target.addr).await?;
    stream.set_nodelay(true)?;
    stream.write_all(&sse_request(target, path, token)).await?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
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
    if head.status != 200 {
        return Err(Error::Status {
            status: head.status,
            body: String::from_utf8_lossy(&buf[head.len..])
                .chars()
                .take(200)
                .collect(),
        });
    }
    let mut body = Body {
        chunked: (head.framing == Framing::Chunked).then(ChunkedDecoder::new),
        sse: SseParser::new(),
    };
    body.feed(&buf[head.len..], &shared)?;
    tokio::spawn(async move {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Err(e) = body.feed(&chunk[..n], &shared) {
                        eprintln!("tidings-pubbench: subscriber stream broken: {e}");
                        break;
                    }
                }
            }
        }
    });
    Ok(())
}

struct Body {
    chunked: Option<ChunkedDecoder>,
    sse: SseParser,
}

impl Body {
    fn feed(&mut self, bytes: &[u8], shared: &Shared) -> Result<(), Error> {
        let now = now_us();
        let sse = &mut self.sse;
        let mut received = lock(shared);
        let mut on_bytes = |b: &[u8]| {
            sse.feed(b, |ev| {
                if let Some(p) = parse_probe(ev.data) {
                    received.record(p.seq, now.saturating_sub(p.sent_at_us));
                }
            })
        };
        match &mut self.chunked {
            Some(dec) => dec.decode(bytes, on_bytes),
            None => on_bytes(bytes),
        }
    }
}
