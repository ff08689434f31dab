//! The router as hyper's service, answering the connection's first request with an
//! answer computed before hyper took over, and counting the streams it serves on the
//! connection's (already counted) socket in [`HeldStreams`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderName, Request, Response};
use axum::Router;
use hyper::body::Incoming;
use tower::{Service, ServiceExt};

use http_body_util::BodyExt;

use crate::limits::{client_addr, ClientAddr, HeldStreams};
use crate::routes::channels;
use crate::sse::{Detachable, MuxDetachable};
use crate::state::AppState;

/// How to tell the client of each request on the connection.
#[derive(Debug, Clone)]
pub(super) struct ClientOf {
    /// `--trust-proxy-header`.
    pub(super) trusted: Option<HeaderName>,
    /// The socket's peer.
    pub(super) peer: SocketAddr,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub(super) struct FirstResponse {
    router: Router,
    /// For publishes, answered without the router ([`channels::publish_direct`]).
    state: AppState,
    first: Arc<Mutex<Option<Response<Body>>>>,
    client: Arc<ClientOf>,
    held: HeldStreams,
}

impl FirstResponse {
    pub(super) fn new(
        router: Router,
        state: AppState,
        first: Option<Response<Body>>,
        client: ClientOf,
    ) -> Self {
        let held = state.held_streams.clone();
        FirstResponse {
            router,
            state,
            first: Arc::new(Mutex::new(first)),
            client: Arc::new(client),
            held,
        }
    }
}

/// A stream answer's body, counted in `held` until hyper drops it (the stream ends or
/// the peer goes); any other answer as it is.
fn count_if_stream(response: Response<Body>, held: &HeldStreams) -> Response<Body> {
    let ext = response.extensions();
    if ext.get::<Detachable>().is_none() && ext.get::<MuxDetachable>().is_none() {
        return response;
    }
    let guard = held.hold();
    response.map(move |body| {
        Body::new(body.map_frame(move |frame| {
            let _counted = &guard;
            frame
        }))
    })
}

impl FirstResponse {
    /// Whether the first answer was given (true for every request but the first).
    fn first_taken(&self) -> bool {
        self.first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl Service<Request<Incoming>> for FirstResponse {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Incoming>) -> Answer {
        if channels::direct(&req) && self.first_taken() {
            let state = self.state.clone();
            return Box::pin(async move { Ok(channels::publish_direct(&state, req).await) });
        }
        let client = client_addr(
            self.client.trusted.as_ref(),
            req.headers(),
            self.client.peer,
        );
        req.extensions_mut().insert(ClientAddr(client));
        match self.first.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(answer) => Box::pin(std::future::ready(Ok(answer))),
            None => {
                let answer = self.router.clone().oneshot(req);
                let held = self.held.clone();
                Box::pin(async move { Ok(count_if_stream(answer.await?, &held)) })
            }
        }
    }
}
