//! Reading `ConnectOptions` from a JS options object (or any [`Json`]
//! document with the same camelCase fields), by hand: unknown fields are
//! ignored, absent ones keep their defaults, and a present field of the
//! wrong kind is an error naming the field and what it must be.

use super::{Body, ConnectOptions, Poll, Transport};
use crate::json::Json;
use crate::messages::Decoder;
use crate::protocol::Protocol;

/// `+Infinity` (as in `maxAttempts: Infinity`) reads as `u32::MAX`: "never give up".
const INFINITE: f64 = u32::MAX as f64;

type Res<T> = Result<T, String>;

fn must<T>(name: &str, what: &str, v: &impl Json) -> Res<T> {
    Err(["`", name, "` must be ", what, ", not ", v.kind()].concat())
}

fn number<J: Json>(name: &str, v: &J, max: f64) -> Res<f64> {
    match v.as_f64() {
        Some(n) if n == f64::INFINITY => Ok(INFINITE.min(max)),
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= max => Ok(n),
        _ => must(name, "a whole number from 0", v),
    }
}

fn uint<J: Json>(name: &str, v: &J) -> Res<u64> {
    number(name, v, 1.8e19).map(|n| n as u64)
}

fn flag<J: Json>(name: &str, v: &J) -> Res<bool> {
    v.as_bool()
        .map_or_else(|| must(name, "true or false", v), Ok)
}

fn string<J: Json>(name: &str, v: &J) -> Res<String> {
    v.as_str().map_or_else(|| must(name, "a string", v), Ok)
}

/// One of `names` (by position in `values`).
fn one_of<J: Json, T: Copy>(name: &str, v: &J, names: &[&str], values: &[T], what: &str) -> Res<T> {
    let s = v.as_str();
    match names.iter().position(|n| Some(*n) == s.as_deref()) {
        Some(i) => Ok(values[i]),
        None => Err([
            "`",
            name,
            "` must be ",
            what,
            ", not ",
            &s.map_or_else(|| v.kind().to_owned(), |s| ["'", &s, "'"].concat()),
        ]
        .concat()),
    }
}

const DECODERS: [Decoder; 7] = Decoder::ALL;

impl ConnectOptions {
    /// Reads JS-side options (unknown fields ignored, missing ones default;
    /// `null` or `undefined` for the whole object means every default).
    /// Function-valued options (`getToken`, `poll` as a function, `decode`,
    /// `fetch`, `onOpen`) are the shell's to read; here they count as absent.
    pub(crate) fn from_doc<J: Json>(js: &J) -> Res<Self> {
        let mut o = ConnectOptions::default();
        if js.is_null() {
            return Ok(o);
        }
        if !js.is_object() {
            return Err(["options must be an object, not ", js.kind()].concat());
        }
        for (name, v) in js.entries().unwrap_or_default() {
            let name = name.as_str();
            // `null` is "none" for the optional fields.
            let none = v.is_null();
            match name {
                "token" if none => o.token = None,
                "token" => o.token = Some(string(name, &v)?),
                "headers" => {
                    let Some(entries) = v.entries() else {
                        return must(name, "an object of strings", &v);
                    };
                    for (k, h) in entries {
                        let value = string(&["headers.", &k].concat(), &h)?;
                        o.headers.insert(k, value);
                    }
                }
                "backoff" => {
                    let Some(entries) = v.entries() else {
                        return must(name, "an object", &v);
                    };
                    for (k, b) in entries {
                        let n = ["backoff.", &k].concat();
                        match k.as_str() {
                            "initialMs" => o.backoff.initial_ms = uint(&n, &b)?,
                            "maxMs" => o.backoff.max_ms = uint(&n, &b)?,
                            "factor" => match b.as_f64() {
                                Some(f) if f == f64::INFINITY => o.backoff.factor = INFINITE,
                                Some(f) => o.backoff.factor = f,
                                None => return must(&n, "a number", &b),
                            },
                            "maxAttempts" => {
                                o.backoff.max_attempts = number(&n, &b, INFINITE)? as u32
                            }
                            _ => {}
                        }
                    }
                }
                "pollIntervalMs" => o.poll_interval_ms = uint(name, &v)?,
                "retrySseEveryMs" => o.retry_sse_every_ms = uint(name, &v)?,
                "pollTimeoutMs" => o.poll_timeout_ms = uint(name, &v)?,
                "heartbeatTimeoutMs" if none => o.heartbeat_timeout_ms = None,
                "heartbeatTimeoutMs" => o.heartbeat_timeout_ms = Some(uint(name, &v)?),
                "withCredentials" => o.with_credentials = flag(name, &v)?,
                "finite" => o.finite = flag(name, &v)?,
                "shareAcrossTabs" => o.share_across_tabs = flag(name, &v)?,
                "persistLastEventId" => o.persist_last_event_id = flag(name, &v)?,
                "pauseWhenHidden" => o.pause_when_hidden = flag(name, &v)?,
                "forcePolling" => o.force_polling = flag(name, &v)?,
                "resumeParam" => o.resume_param = string(name, &v)?,
                "method" => o.method = string(name, &v)?,
                "decoder" if none => o.decoder = None,
                "decoder" => {
                    let names = DECODERS.map(Decoder::as_str);
                    o.decoder = Some(one_of(name, &v, &names, &DECODERS, "a decoder name ('auto', 'json', 'text', 'team-answers', 'notifications', 'video-progress' or 'channel')")?);
                }
                "protocol" => {
                    o.protocol = one_of(
                        name,
                        &v,
                        &["auto", "tidings", "plain"],
                        &[Protocol::Auto, Protocol::Tidings, Protocol::Plain],
                        "'auto', 'tidings' or 'plain'",
                    )?
                }
                "transport" => {
                    o.transport = one_of(
                        name,
                        &v,
                        &["eventsource", "fetch"],
                        &[Transport::EventSource, Transport::Fetch],
                        "'eventsource' or 'fetch'",
                    )?
                }
                "poll" if none => o.poll = Poll::Auto,
                "poll" if v.as_bool() == Some(false) => o.poll = Poll::Off,
                "poll" => {
                    o.poll = one_of(
                        name,
                        &v,
                        &["tidings", "auto"],
                        &[Poll::Tidings, Poll::Auto],
                        "false, 'tidings' or a function",
                    )?
                }
                "body" if none => o.body = None,
                "body" => {
                    o.body_is_json = v.as_str().is_none();
                    o.body = Some(Body::Text(v.as_str().unwrap_or_else(|| v.to_text())));
                }
                _ => {}
            }
        }
        Ok(o)
    }
}
