//! The router as hyper's service, answering the connection's first request with an
//! answer computed before hyper took over.

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

use crate::limits::{client_addr, ClientAddr};

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
    first: Arc<Mutex<Option<Response<Body>>>>,
    client: Arc<ClientOf>,
}

impl FirstResponse {
    pub(super) fn new(router: Router, first: Option<Response<Body>>, client: ClientOf) -> Self {
        FirstResponse {
            router,
            first: Arc::new(Mutex::new(first)),
            client: Arc::new(client),
        }
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
        let client = client_addr(
            self.client.trusted.as_ref(),
            req.headers(),
            self.client.peer,
        );
        req.extensions_mut().insert(ClientAddr(client));
        match self.first.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(answer) => Box::pin(std::future::ready(Ok(answer))),
            None => Box::pin(self.router.clone().oneshot(req)),
        }
    }
}
