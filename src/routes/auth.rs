//! Client access keys: when `DASHBRIDGE_API_KEYS` (or a keys file) is set, only those bearer
//! keys are accepted, compared in constant time; nothing is sent upstream otherwise.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use subtle::ConstantTimeEq;

use crate::config::ClientKey;
use crate::error::ProxyError;
use crate::state::AppState;

/// The request passed the client-key check. Carries the client's `Authorization` header for
/// pass-through mode (no server key configured).
pub struct Authorized(pub Option<HeaderValue>);

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// The configured client key presented, compared against every key (no early exit) so timing
/// does not reveal which matched.
pub fn identify<'k>(headers: &HeaderMap, keys: &'k [ClientKey]) -> Option<&'k ClientKey> {
    let presented = bearer(headers)?;
    let mut found = None;
    for k in keys {
        let hit = k.secret.expose().as_bytes().ct_eq(presented.as_bytes());
        if bool::from(hit) {
            found = Some(k);
        }
    }
    found
}

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ProxyError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ProxyError> {
        let auth = parts.headers.get(header::AUTHORIZATION).cloned();
        let keys = &state.cfg.client_keys;
        if keys.is_empty() || identify(&parts.headers, keys).is_some() {
            Ok(Authorized(auth))
        } else {
            Err(ProxyError::Unauthorized)
        }
    }
}
