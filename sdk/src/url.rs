//! Stream URL helpers: the resume position and the polling form (docs/PROTOCOL.md).

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// `url` with the query parameters `params` set (replacing any of the same
/// name), keeping the fragment last.
pub(crate) fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    // `split_once`, never byte-index slicing: a slice could panic, and its
    // panic message alone keeps ~4 KB of formatting code in the wasm.
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, ["#", fragment].concat()),
        None => (url, String::new()),
    };
    let (path, query) = base.split_once('?').unwrap_or((base, ""));
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("");
            !params.iter().any(|(k, _)| *k == name)
        })
        .map(str::to_owned)
        .collect();
    for (k, v) in params {
        parts.push([k, "=", &encode_component(v)].concat());
    }
    if parts.is_empty() {
        [path, &fragment].concat()
    } else {
        [path, "?", &parts.join("&"), &fragment].concat()
    }
}

/// The SSE URL for a (re)connect: the position as `resume_param` (option
/// `resumeParam`, `lastEventId` by default) when there is one, and `token` in
/// the query (EventSource cannot send headers).
pub(crate) fn sse_url(
    url: &str,
    last_event_id: Option<&str>,
    token: Option<&str>,
    resume_param: &str,
) -> String {
    let mut p = Vec::new();
    if let Some(id) = last_event_id.filter(|s| !s.is_empty() && !resume_param.is_empty()) {
        p.push((resume_param, id));
    }
    if let Some(t) = token.filter(|s| !s.is_empty()) {
        p.push(("token", t));
    }
    with_params(url, &p)
}

/// The polling form: `poll=1` and `lastEventId` (the token goes in a header).
pub(crate) fn poll_url(url: &str, last_event_id: Option<&str>) -> String {
    let mut p = vec![("poll", "1")];
    if let Some(id) = last_event_id.filter(|s| !s.is_empty()) {
        p.push(("lastEventId", id));
    }
    with_params(url, &p)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
