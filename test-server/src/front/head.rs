//! Recognising a fresh stream request from its raw head.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Version};

/// Most header lines parsed; a request with more goes to hyper.
const MAX_HEADERS: usize = 64;

/// True once `buf` holds a whole request head: an empty line, whichever line ends
/// (`\r\n` or a bare `\n`, mixed, as httparse and hyper accept them).
pub(super) fn complete(buf: &[u8]) -> bool {
    buf.windows(2).any(|w| w == b"\n\n") || buf.windows(3).any(|w| w == b"\n\r\n")
}

/// The request, if `buf` starts with an HTTP/1.1 `GET` that accepts `text/event-stream`
/// and carries no body, upgrade or expectation; `None` leaves the request to hyper.
pub(super) fn stream_request(buf: &[u8]) -> Option<Request<Body>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    if !parsed.parse(buf).ok()?.is_complete() || parsed.method? != "GET" || parsed.version? != 1 {
        return None;
    }
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(parsed.path?)
        .version(Version::HTTP_11);
    let mut accepts_sse = false;
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        match name.as_str() {
            "content-length" if h.value != b"0" => return None,
            "transfer-encoding" | "upgrade" | "expect" => return None,
            "accept" => {
                accepts_sse |= value
                    .to_str()
                    .is_ok_and(|v| v.contains("text/event-stream"))
            }
            _ => {}
        }
        builder = builder.header(name, value);
    }
    if !accepts_sse {
        return None;
    }
    builder.body(Body::empty()).ok()
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_sse_gets_are_taken() {
        let sse = b"GET /api/v1/events/test?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\nLast-Event-ID: 4\r\n\r\n";
        assert!(complete(sse));
        let req = stream_request(sse).unwrap();
        assert_eq!(req.uri(), "/api/v1/events/test?x=1");
        assert_eq!(req.headers()["last-event-id"], "4");
        for other in [
            &b"GET /x HTTP/1.1\r\nAccept: application/json\r\n\r\n"[..],
            b"POST /x HTTP/1.1\r\nAccept: text/event-stream\r\nContent-Length: 2\r\n\r\n{}",
            b"GET /x HTTP/1.1\r\nAccept: text/event-stream\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /x HTTP/1.1\r\nAccept: text/event-stream\r\nUpgrade: websocket\r\n\r\n",
            b"GET /x HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n",
            b"GET /x HTTP/1.1\r\nAccept: text/event-stream\r\n",
            b"\x00\x01garbage\r\n\r\n",
        ] {
            assert!(
                stream_request(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        assert!(!complete(
            b"GET /x HTTP/1.1\r\nAccept: text/event-stream\r\n"
        ));
        // Mixed line ends (found by the fuzzer): the head is whole, as httparse says.
        let mixed = b"GET /x HTTP/1.1\r\nAccept:text/event-stream\n\r\n";
        assert!(complete(mixed));
        assert!(stream_request(mixed).is_some());
        assert!(complete(b"GET /x HTTP/1.1\r\nHost: a\r\n\n"));
    }
}
