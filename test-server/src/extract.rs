//! Request extractors whose rejections are [`ApiError`]s (JSON bodies, `{"error": …}`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request};
use axum::http::{StatusCode, Uri};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Over the size limit → 413; malformed JSON or a missing/mistyped field → 422
/// with a message naming the field. The `Content-Type` is not required (seed clients vary).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(usize::MAX, |l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::Invalid(format!("cannot read body: {e}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The query parameters of `uri` as `T` (unknown parameters are ignored); a parameter
/// given twice or of the wrong type is a 422 naming it.
pub fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::try_from_uri(uri).map(|Query(q)| q).map_err(|e| {
        let text = e.body_text();
        let reason = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text);
        ApiError::Invalid(format!("query: {reason}"))
    })
}

/// Parses a JSON body, naming the offending field on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Invalid("body: expected a JSON object".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = strip_position(&inner.to_string());
        if inner.is_syntax() || inner.is_eof() {
            ApiError::Invalid(format!("body: invalid JSON: {msg}"))
        } else if path == "." || path.is_empty() || path.contains('?') {
            ApiError::Invalid(format!("body: {msg}"))
        } else {
            ApiError::Invalid(format!("{path}: {msg}"))
        }
    })
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// The configured body limit, put in request extensions so 413 messages can state it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct T {
        name: String,
        n: u32,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_json::<T>(br#"{"name":"x"}"#).unwrap_err().to_string();
        assert_eq!(e, "body: missing field `n`");
        let e = parse_json::<T>(br#"{"name":"x","n":"y"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("n: invalid type"), "{e}");
        let e = parse_json::<T>(b"{nope").unwrap_err().to_string();
        assert!(e.starts_with("body: "), "{e}");
        assert!(parse_json::<T>(b"").is_err());
    }
}
