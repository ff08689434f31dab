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
    /// The phase's first sequence number: each phase numbers its probes
    /// after the previous one's, so a late probe of an earlier phase is
    /// not taken for one of this phase (nor counted as a duplicate).
    base: u32,
    /// Which sequence numbers arrived (`base + i` at `i`).
    seen: Vec<bool>,
    /// Distinct probes received.
    pub distinct: u64,
    /// Probes received more than once.
    pub duplicates: u64,
}

impl Received {
    /// Room for probes `base..base + count`, forgetting everything before.
    pub fn reset(&mut self, base: u32, count: u32) {
        *self = Received {
            base,
            seen: vec![false; count as usize],
            ..Received::default()
        };
    }

    fn record(&mut self, seq: u32, latency_us: u64) {
        let slot = seq
            .checked_sub(self.base)
            .and_then(|i| self.seen.get_mut(i as usize));
        match slot {
            Some(seen) if *seen => self.duplicates += 1,
            Some(seen) => {
                *seen = true;
                self.distinct += 1;
                self.latency.record(latency_us);
            }
            // A probe of another phase on the same stream.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_probe_of_an_earlier_phase_is_neither_counted_nor_a_duplicate() {
        let mut r = Received::default();
        r.reset(0, 3);
        r.record(2, 10);
        r.reset(3, 2);
        r.record(2, 10); // the earlier phase's last probe, late
        r.record(3, 20);
        r.record(3, 20);
        r.record(4, 30);
        r.record(5, 30); // past this phase
        assert_eq!((r.distinct, r.duplicates), (2, 1));
        assert_eq!(r.latency.max, 30);
    }
}
