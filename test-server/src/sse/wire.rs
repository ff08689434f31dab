//! HTTP/1.1 framing for SSE responses the server writes itself (see [`crate::front`]):
//! the response head and chunked transfer coding.

use axum::http::{header, response::Parts};
use bytes::Bytes;

/// The chunk that ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// `data` as one HTTP/1.1 chunk (`<hex len>\r\n<data>\r\n`); empty data gives an empty
/// `Bytes` (an empty chunk would end the body).
pub fn chunk(data: &[u8]) -> Bytes {
    if data.is_empty() {
        return Bytes::new();
    }
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// The status line and headers of a streamed response, with chunked transfer coding.
/// Framing headers the handler may have set (`content-length`, `transfer-encoding`) are
/// replaced.
pub fn response_head(parts: &Parts) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let status = parts.status;
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Response, StatusCode};

    #[test]
    fn chunks_are_hex_length_prefixed() {
        assert_eq!(&chunk(b"retry: 1000\n\n")[..], b"d\r\nretry: 1000\n\n\r\n");
        assert_eq!(&chunk(&[b'x'; 300])[..5], b"12c\r\n");
        assert!(chunk(b"").is_empty(), "an empty chunk would end the body");
    }

    #[test]
    fn head_keeps_headers_and_forces_chunked() {
        let mut res = Response::new(());
        *res.status_mut() = StatusCode::OK;
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        let (parts, ()) = res.into_parts();
        let head = String::from_utf8(response_head(&parts)).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-accel-buffering: no\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }
}
