//! What every stream endpoint shares: reading the position, the per-user limit,
//! subscribing, and answering either as SSE or in the polling form.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::bus::Subscription;
use crate::connections::{ConnectionGuard, Refused};
use crate::error::{ApiError, ApiResult};
use crate::event::{Event, Position};
use crate::extract::query;
use crate::limits::ClientAddr;
use crate::sse::{sse_response, Heartbeat, SseParts, TerminalFn};
use crate::state::AppState;

/// Longest `wait=` a long poll may ask for, in seconds.
pub const MAX_WAIT_SECS: f64 = 25.0;

/// `?poll=` and `?wait=` of a stream request: whether to answer in the polling
/// form, and how long a long poll may wait (0 to [`MAX_WAIT_SECS`] seconds).
pub fn poll_and_wait(poll: Option<&str>, wait: Option<&str>) -> ApiResult<(bool, Duration)> {
    let poll = matches!(poll, Some("1" | "true"));
    let wait = match wait {
        None => Duration::ZERO,
        Some(w) => match w.parse::<f64>() {
            Ok(s) if (0.0..=MAX_WAIT_SECS).contains(&s) => Duration::from_secs_f64(s),
            _ => {
                return Err(ApiError::Invalid(format!(
                    "wait: must be a number of seconds from 0 to {MAX_WAIT_SECS}"
                )))
            }
        },
    };
    Ok((poll, wait))
}

/// The stream-related parts of a request.
#[derive(Debug, Clone)]
pub struct StreamRequest {
    /// Where the client is (header `Last-Event-ID` wins over `?lastEventId=`).
    pub position: Position,
    /// `?poll=1`: answer in the polling form.
    pub poll: bool,
    /// `?wait=S` for long polls.
    pub wait: Duration,
    /// The client's address, for the per-address limit on streams without a token (none
    /// when the request did not come through the accept loop).
    pub client: Option<IpAddr>,
    /// One stream of a multiplexed connection: it counts per stream and against the user's
    /// (or address's) limit, while the connection counts once against the process caps.
    pub member: bool,
}

/// The query parameters a stream endpoint reads.
#[derive(Debug, Deserialize)]
struct StreamQuery {
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
    poll: Option<String>,
    wait: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for StreamRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        let q: StreamQuery = query(&parts.uri)?;
        let position = match parts.headers.get("last-event-id") {
            Some(v) => Position::from_header(v),
            None => Position::parse(q.last_event_id.as_deref()),
        };
        let (poll, wait) = poll_and_wait(q.poll.as_deref(), q.wait.as_deref())?;
        let client = parts
            .extensions
            .get::<ClientAddr>()
            .map(|ClientAddr(ip)| *ip);
        Ok(StreamRequest {
            position,
            poll,
            wait,
            client,
            member: false,
        })
    }
}

/// How one stream endpoint looks on the wire.
#[derive(Debug)]
pub struct StreamSpec {
    /// Stream key (`team-answers`, `notifications/alice`, …).
    pub key: String,
    /// Authenticated user, counted against the per-user limit.
    pub user: Option<String>,
    /// Per-connection frames after `retry:`.
    pub greeting: Vec<u8>,
    /// Heartbeat style.
    pub heartbeat: Heartbeat,
    /// Finite streams: which events end them.
    pub terminal: Option<TerminalFn>,
    /// Builds the frame sent before closing a lagging subscriber.
    pub lag_notice: Option<fn() -> Bytes>,
}

/// A subscription plus the connection slot it holds (none for polls).
#[derive(Debug)]
pub struct Opened {
    /// The bus subscription.
    pub subscription: Subscription,
    guard: Option<ConnectionGuard>,
}

/// Counts a refusal and words it: 429 past a per-user or per-address limit, 503 past the
/// process-wide cap (both with `Retry-After`, and the connection is closed).
pub fn refusal(state: &AppState, refused: Refused) -> ApiError {
    let m = &state.metrics;
    match refused {
        Refused::User(limit) => {
            m.connections_refused.fetch_add(1, Ordering::Relaxed);
            ApiError::TooManyConnections(format!(
                "too many open connections for this user (limit {limit})"
            ))
        }
        Refused::Address(limit) => {
            m.streams_refused_per_address
                .fetch_add(1, Ordering::Relaxed);
            ApiError::TooManyConnections(format!(
                "too many open streams without a token from this address (limit {limit})"
            ))
        }
        Refused::Global(limit) => {
            m.streams_refused_global.fetch_add(1, Ordering::Relaxed);
            ApiError::Overloaded(format!(
                "the server is at its stream limit ({limit}); retry later"
            ))
        }
    }
}

/// Takes a connection slot (429 past a per-user or per-address limit, 503 past the
/// process-wide cap) and subscribes.
/// Finite streams read from the start when the client gives no position.
pub async fn open(state: &AppState, req: &StreamRequest, spec: &StreamSpec) -> ApiResult<Opened> {
    let guard = if req.poll {
        state.metrics.poll_requests.fetch_add(1, Ordering::Relaxed);
        None
    } else {
        let (user, client) = (spec.user.as_deref(), req.client);
        let opened = if req.member {
            state
                .conns
                .open_member(&spec.key, user, client, &state.limits)
        } else {
            state.conns.open(&spec.key, user, client, &state.limits)
        };
        match opened {
            Ok(g) => Some(g),
            Err(refused) => return Err(refusal(state, refused)),
        }
    };
    let position = match (&req.position, spec.terminal.is_some()) {
        (Position::Live, true) => Position::After(0),
        (p, _) => p.clone(),
    };
    let subscription = state.bus.subscribe(&spec.key, position).await?;
    if guard.is_some() {
        state
            .metrics
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
    }
    Ok(Opened {
        subscription,
        guard,
    })
}

/// Answers as SSE or in the polling form. `ended` is the end reason of a finite stream
/// that had already ended when subscribing.
pub async fn respond(
    state: &AppState,
    req: &StreamRequest,
    spec: StreamSpec,
    opened: Opened,
    ended: Option<&'static str>,
) -> Response {
    if req.poll {
        return Json(poll(state, req, &spec, opened.subscription, ended).await).into_response();
    }
    let dev = state.config.dev;
    if dev {
        if let Some(injected) = state.dev_faults.take_failure(&spec.key) {
            return injected;
        }
    }
    let key = dev.then(|| spec.key.clone());
    let mark_head = matches!(req.position, Position::Live) && spec.terminal.is_none();
    let response = sse_response(SseParts {
        greeting: spec.greeting,
        mark_head,
        subscription: opened.subscription,
        heartbeat: spec.heartbeat,
        heartbeat_every: state.config.heartbeat(),
        terminal: spec.terminal,
        ended,
        lag_notice: spec.lag_notice,
        shutdown: state.shutdown.clone(),
        guard: opened.guard,
    });
    match key {
        Some(k) => state.dev_faults.wrap(&k, response),
        None => response,
    }
}

/// One event in the polling form.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PolledEvent {
    /// The SSE id, as a string.
    pub id: String,
    /// The event name (`message` for unnamed events).
    pub event: String,
    /// The exact SSE data string.
    pub data: String,
}

/// The polling-form response body.
#[derive(Debug, Clone, Serialize)]
pub struct PollBody {
    /// Events after the position (a reset first when the position could not be honoured).
    pub events: Vec<PolledEvent>,
    /// The id to send next time.
    pub last_event_id: String,
    /// True once a finite stream has ended.
    pub end: bool,
    /// Suggested delay before the next poll, in ms.
    pub retry_ms: u64,
}

fn polled(e: &Event) -> PolledEvent {
    PolledEvent {
        id: e.id.to_string(),
        event: e.name().to_owned(),
        data: e.data.clone(),
    }
}

async fn poll(
    state: &AppState,
    req: &StreamRequest,
    spec: &StreamSpec,
    mut sub: Subscription,
    ended: Option<&'static str>,
) -> PollBody {
    let mut events: Vec<Event> = Vec::new();
    let mut last = sub.head;
    if let Some(reset) = sub.reset.take() {
        events.push(reset.to_event());
    } else {
        events.extend(sub.replay.drain(..).map(|e| (*e).clone()));
    }
    if events.is_empty() && ended.is_none() && !req.wait.is_zero() {
        tokio::select! {
            _ = state.shutdown.cancelled() => {}
            _ = tokio::time::sleep(req.wait) => {}
            next = sub.live.recv() => if let Some(e) = next { events.push((*e).clone()); },
        }
    }
    while let Ok(e) = sub.live.try_recv() {
        if events.last().is_none_or(|l| e.id > l.id) && e.id > last {
            events.push((*e).clone());
        }
    }
    let mut end = ended.is_some();
    if let Some(term) = spec.terminal {
        if let Some(i) = events.iter().position(|e| term(e).is_some()) {
            events.truncate(i + 1);
            end = true;
        }
    }
    if let Some(e) = events.last() {
        last = e.id;
    }
    PollBody {
        events: events.iter().map(polled).collect(),
        last_event_id: last.to_string(),
        end,
        retry_ms: 1000,
    }
}
