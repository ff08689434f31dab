//! JWT (HS256) verification, token sources and channel authorisation.
//!
//! Handlers ask for [`Claims`] (a token is required) or `Option<Claims>` (a token is
//! optional, but a bad one is still refused) in their signature; the state only has to
//! lend its [`Auth`] through `AsRef<Auth>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::query;

/// Name of the cookie the token may come from.
pub const TOKEN_COOKIE: &str = "tidings_token";

/// The claims Tidings reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Channels this token may read and publish: exact names, or prefixes ending in `*`.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Expiry, unix seconds.
    pub exp: u64,
}

impl Claims {
    /// Whether the claims cover `channel`.
    pub fn allows_channel(&self, channel: &str) -> bool {
        self.channels
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => channel.starts_with(prefix),
                None => pattern == channel,
            })
    }
}

/// Most verified tokens remembered (past it, the memory starts again from empty).
const MAX_VERIFIED: usize = 4096;

/// Signs and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens whose signature and claims were checked, with their claims: a client
    /// sends the same token with every request, and checking it again (base64, JSON,
    /// HMAC) is most of what authorising a publish costs. Only the expiry, the one
    /// check that changes with time, is made again.
    verified: Arc<Mutex<HashMap<String, Claims>>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { .. }")
    }
}

impl Auth {
    /// Keys from a shared secret.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        Auth {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            verified: Arc::default(),
        }
    }

    /// Signs claims (used by the dev-token endpoint and tests).
    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| ApiError::Invalid(format!("cannot sign token: {e}")))
    }

    /// Verifies a token; any failure is a 401 whose message never contains the token.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(claims) = verified.get(token) {
            // As jsonwebtoken checks it: expired once `exp` is more than `leeway` ago.
            let now = jsonwebtoken::get_current_timestamp();
            if claims.exp.saturating_add(self.validation.leeway) >= now {
                return Ok(claims.clone());
            }
            verified.remove(token);
        }
        drop(verified);
        let claims = self.decode(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    /// Checks the token's signature and claims.
    fn decode(&self, token: &str) -> Result<Claims, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                ApiError::Unauthorized(
                    match e.kind() {
                        ErrorKind::ExpiredSignature => "token expired",
                        ErrorKind::InvalidAlgorithm => "token algorithm must be HS256",
                        ErrorKind::InvalidSignature => "token signature is invalid",
                        ErrorKind::MissingRequiredClaim(_) => {
                            "token lacks a required claim (sub, exp)"
                        }
                        _ => "token is malformed",
                    }
                    .to_owned(),
                )
            })
    }

    /// Claims of the request's token if it has one (header, `?token=`, cookie), verified.
    pub fn optional(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Option<Claims>, ApiError> {
        match token_from(headers, query_token) {
            Some(t) => self.verify(&t).map(Some),
            None => Ok(None),
        }
    }
}

/// The `?token=` query parameter.
#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl<S: AsRef<Auth> + Send + Sync> OptionalFromRequestParts<S> for Claims {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, ApiError> {
        let TokenQuery { token } = query(&parts.uri)?;
        state.as_ref().optional(&parts.headers, token.as_deref())
    }
}

impl<S: AsRef<Auth> + Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        <Claims as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await?
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "authentication required: send a Bearer token, ?token= or the tidings_token cookie"
                        .into(),
                )
            })
    }
}

/// The token, in order: `Authorization: Bearer`, `?token=`, cookie `tidings_token`.
pub fn token_from(headers: &HeaderMap, query_token: Option<&str>) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            let t = t.trim();
            if !t.is_empty() {
                return Some(t.to_owned());
            }
        }
    }
    if let Some(t) = query_token.filter(|t| !t.is_empty()) {
        return Some(t.to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == TOKEN_COOKIE && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn claims(channels: &[&str], exp: u64) -> Claims {
        Claims {
            sub: "alice".into(),
            channels: channels.iter().map(|s| s.to_string()).collect(),
            exp,
        }
    }

    #[test]
    fn channel_patterns() {
        let c = claims(&["project.1", "file.*"], 0);
        assert!(c.allows_channel("project.1"));
        assert!(!c.allows_channel("project.12"));
        assert!(c.allows_channel("file.9"));
        assert!(!c.allows_channel("test"));
        assert!(claims(&["*"], 0).allows_channel("anything"));
    }

    #[test]
    fn verify_rejects_bad_tokens() {
        let a = Auth::new("s");
        let far = crate::time::now_unix() as u64 + 3600;
        let t = a.sign(&claims(&[], far)).unwrap();
        assert_eq!(a.verify(&t).unwrap().sub, "alice");
        assert!(Auth::new("other").verify(&t).is_err());
        let expired = a.sign(&claims(&[], 1000)).unwrap();
        assert_eq!(a.verify(&expired).unwrap_err().to_string(), "token expired");
        assert!(a.verify("garbage").is_err());
        // alg=none / HS512 refused
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(&[], far),
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert!(a.verify(&hs512).is_err());
    }

    #[test]
    fn a_token_verified_before_is_still_refused_once_it_expires() {
        let a = Auth::new("s");
        let now = jsonwebtoken::get_current_timestamp();
        // Expired 4 s ago: still valid within the 5 s of leeway, for one more second.
        let t = a.sign(&claims(&["x"], now - 4)).unwrap();
        assert_eq!(a.verify(&t).unwrap().channels, ["x"]);
        assert_eq!(a.verify(&t).unwrap().channels, ["x"], "remembered");
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(a.verify(&t).unwrap_err().to_string(), "token expired");
        assert_eq!(a.verify(&t).unwrap_err().to_string(), "token expired");
        // A token signed with another secret is never taken for a remembered one.
        let other = Auth::new("other")
            .sign(&claims(&["x"], now + 3600))
            .unwrap();
        assert!(a.verify(&other).is_err());
    }

    #[test]
    fn token_sources_in_order() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; tidings_token=fromcookie"),
        );
        assert_eq!(token_from(&h, None).unwrap(), "fromcookie");
        assert_eq!(token_from(&h, Some("fromquery")).unwrap(), "fromquery");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer fromheader"),
        );
        assert_eq!(token_from(&h, Some("fromquery")).unwrap(), "fromheader");
        assert!(token_from(&HeaderMap::new(), Some("")).is_none());
    }
}
