//! The publishing side: mint a dev token, then publish `count` probes at
//! `rate` per second through the target's REST endpoint.

use std::ops::Range;
use std::time::Duration;

use tokio::time::Instant;

use serde::Deserialize;

use crate::error::Error;
use crate::http::post_json;
use crate::payload::{now_us, publish_body};
use crate::target::Target;

/// How long one publish (or token request) may take.
pub const POST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct TokenResponse {
    token: String,
}

/// Mints a token with `POST /api/auth/dev-token` (tidings-server `--dev`)
/// for `user`, allowed on every channel, valid for `ttl_secs`.
///
/// # Errors
/// Transport errors, a non-200 status, or a body without `token`.
pub async fn dev_token(target: &Target, user: &str, ttl_secs: u64) -> Result<String, Error> {
    let body =
        serde_json::json!({"user_id": user, "channels": ["*"], "ttl_secs": ttl_secs}).to_string();
    let (status, resp) =
        post_json(target, "/api/auth/dev-token", None, &body, POST_TIMEOUT).await?;
    if status != 200 {
        return Err(status_error(status, &resp));
    }
    Ok(serde_json::from_slice::<TokenResponse>(&resp)?.token)
}

fn status_error(status: u16, body: &[u8]) -> Error {
    Error::Status {
        status,
        body: String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}

/// What one publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Its sequence number.
    pub seq: u32,
    /// The send time carried in the payload, µs since the epoch.
    pub sent_at_us: u64,
    /// `None` on success (or an unanswered request the server may have
    /// taken, see `timed_out`), else the failure: nobody expects it.
    pub error: Option<String>,
    /// The request went out but no answer came within [`POST_TIMEOUT`]:
    /// counted as published (a busy server may still deliver it).
    pub timed_out: bool,
}

/// Publishes probe `seq`, stamped now.
pub async fn publish_one(target: &Target, path: &str, token: Option<&str>, seq: u32) -> Sent {
    let sent_at_us = now_us();
    let body = publish_body(seq, sent_at_us);
    let (error, timed_out) = match post_json(target, path, token, &body, POST_TIMEOUT).await {
        Ok((status, _)) if (200..300).contains(&status) => (None, false),
        Ok((status, resp)) => (Some(status_error(status, &resp).to_string()), false),
        Err(Error::Timeout(_)) => (None, true),
        Err(e) => (Some(e.to_string()), false),
    };
    Sent {
        seq,
        sent_at_us,
        error,
        timed_out,
    }
}

/// Publishes probes `seqs`, one every `1/rate` s, stopping early at
/// `deadline`; returns what was sent.
pub async fn publish_range(
    target: &Target,
    path: &str,
    token: Option<&str>,
    seqs: Range<u32>,
    rate: f64,
    deadline: Instant,
) -> Vec<Sent> {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs {
        tick.tick().await;
        match tokio::time::timeout_at(deadline, publish_one(target, path, token, seq)).await {
            Ok(sent) => out.push(sent),
            Err(_) => break,
        }
    }
    out
}
