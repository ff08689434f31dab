//! The first request of every connection: SSE streams go to the [`crate::hub`], the rest
//! to hyper.
//!
//! The accept loop hands each new socket here. We read the request head into a small
//! buffer; a `GET` that accepts `text/event-stream` and has no body is routed through the
//! same axum router right here. If the answer is an SSE stream, we write its head and
//! prelude ourselves and attach the socket to the hub: from then on the connection costs
//! no task, no read buffer and no hyper state. Every other request (and any answer that is
//! not a stream, such as a 401) goes to hyper with the bytes already read put back in
//! front of the socket, and with the computed answer as the first response, so nothing is
//! handled twice. Later requests on a kept-alive connection stay with hyper, which serves
//! streams too (through the same [`SseParts`](crate::sse::SseParts)).

mod first_response;
mod head;
mod rewind;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Response;
use axum::Router;
use bytes::Bytes;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::hub::Incoming;
use crate::limits::{client_addr, ClientAddr, SocketSlot};
use crate::sse::wire::{chunk, response_head, LAST_CHUNK};
use crate::sse::{prelude, Detachable, MuxDetachable};
use crate::stall::StallGuard;
use crate::state::AppState;

use first_response::{ClientOf, FirstResponse};
use rewind::Rewind;

/// Longest request head we read ourselves; longer heads go to hyper, which answers 431.
const MAX_HEAD: usize = 16 * 1024;
/// How long a new connection may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// What serving a connection needs; one per server, shared by every connection.
#[derive(Debug)]
pub struct Front {
    /// The application.
    pub router: Router,
    /// Its state: the hub, the metrics, `--write-stall-secs` and the shutdown token.
    pub state: AppState,
    /// Serves everything that is not a fresh stream.
    pub http: http1::Builder,
}

/// Serves one accepted connection to the end; `graceful` lets shutdown wait for it while
/// hyper serves it.
///
/// `slot` counts the socket against `--max-connections` until it is served to the end or
/// becomes a stream (streams count in [`crate::connections`]).
pub async fn serve(
    front: Arc<Front>,
    mut stream: TcpStream,
    peer: SocketAddr,
    slot: SocketSlot,
    graceful: Watcher,
) {
    let mut buf = Vec::with_capacity(1024);
    let read = tokio::select! {
        _ = front.state.shutdown.cancelled() => return,
        read = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut buf)) => read,
    };
    if !matches!(read, Ok(Ok(true))) && buf.is_empty() {
        // Closed, timed out or failed before sending anything: nothing to answer.
        return;
    }
    let mut first = None;
    let trusted = front.state.config.trust_proxy_header.as_ref();
    if let Some(mut request) = head::stream_request(&buf) {
        let client = client_addr(trusted, request.headers(), peer);
        request.extensions_mut().insert(ClientAddr(client));
        let Ok(response) = front.router.clone().oneshot(request).await;
        match detach(&front, stream, response).await {
            Ok(()) => return,
            Err((back, response)) => {
                stream = back;
                first = Some(response);
            }
        }
    }
    hyper(&front, stream, peer, buf, first, graceful).await;
    drop(slot);
}

/// What a connection past `--max-connections` is told before it is closed.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: 62\r\n\r\n{\"error\":\"the server is at its connection limit; retry later\"}";

/// Answers a connection past the socket cap with a 503 and closes it, without waiting:
/// what the client already sent is read (so the close is a clean FIN), the answer fits
/// an empty send buffer, and the socket is gone when this returns.
pub fn refuse(stream: TcpStream) {
    let mut sink = [0u8; 4096];
    let _ = stream.try_read(&mut sink);
    let _ = stream.try_write(REFUSED);
}

/// Reads until the end of the request head; `Ok(false)` on EOF or a head over the limit.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    loop {
        if head::complete(buf) {
            return Ok(true);
        }
        if buf.len() >= MAX_HEAD {
            return Ok(false);
        }
        buf.reserve(1024);
        if stream.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
}

/// Writes an SSE answer's head and prelude and attaches the socket to the hub; gives the
/// socket and answer back when the answer is not a stream.
async fn detach(
    front: &Front,
    mut stream: TcpStream,
    response: Response<Body>,
) -> Result<(), (TcpStream, Response<Body>)> {
    let (mut parts, body) = response.into_parts();
    let one = parts
        .extensions
        .remove::<Detachable>()
        .and_then(|d| d.take());
    let mux = parts
        .extensions
        .remove::<MuxDetachable>()
        .and_then(|d| d.take());
    let (bytes, done, make): (Bytes, bool, Box<dyn FnOnce(TcpStream) -> Incoming + Send>) =
        match (one, mux) {
            (Some(mut sse), _) => {
                let pre = prelude(&mut sse);
                let last_id = pre.last_id;
                (
                    pre.bytes,
                    pre.done,
                    Box::new(move |io| Incoming::new(io, sse, last_id)),
                )
            }
            (None, Some(mux)) => (
                mux.prelude.clone(),
                mux.members.is_empty(),
                Box::new(move |io| Incoming::mux(io, mux)),
            ),
            (None, None) => return Err((stream, Response::from_parts(parts, body))),
        };
    drop(body);
    front
        .state
        .metrics
        .streams_detached
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let write_stall = front.state.config.write_stall();
    let mut out = response_head(&parts);
    out.extend_from_slice(&chunk(&bytes));
    if done {
        out.extend_from_slice(LAST_CHUNK);
    }
    let write = stream.write_all(&out);
    let written = if write_stall.is_zero() {
        write.await.is_ok()
    } else {
        matches!(tokio::time::timeout(write_stall, write).await, Ok(Ok(())))
    };
    if written && !done {
        front.state.hub.attach(make(stream));
    }
    Ok(())
}

/// Lets hyper serve the connection from its first byte (`read` is put back), answering
/// the first request with `first` when it was already computed.
async fn hyper(
    front: &Front,
    stream: TcpStream,
    peer: SocketAddr,
    read: Vec<u8>,
    first: Option<Response<Body>>,
    graceful: Watcher,
) {
    let io = TokioIo::new(StallGuard::new(
        Rewind::new(read, stream),
        front.state.config.write_stall(),
    ));
    let client = ClientOf {
        trusted: front.state.config.trust_proxy_header.clone(),
        peer,
    };
    let service = TowerToHyperService::new(FirstResponse::new(
        front.router.clone(),
        front.state.clone(),
        first,
        client,
    ));
    let conn = graceful.watch(front.http.serve_connection(io, service));
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
