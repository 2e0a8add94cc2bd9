//! Client access keys: when `DASHBRIDGE_API_KEYS` (or a keys file) is set, only those bearer
//! keys are accepted, compared in constant time; nothing is sent upstream otherwise.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use subtle::ConstantTimeEq;

use crate::error::ProxyError;
use crate::state::AppState;

/// The request passed the client-key check. Carries the client's `Authorization` header for
/// pass-through mode (no server key configured).
pub struct Authorized(pub Option<HeaderValue>);

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ProxyError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ProxyError> {
        let auth = parts.headers.get(header::AUTHORIZATION).cloned();
        let keys = &state.cfg.client_keys;
        if keys.is_empty() {
            return Ok(Authorized(auth));
        }
        let presented = auth
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .unwrap_or("");
        // Compare against every key (no early exit) so timing does not reveal which matched.
        let mut ok = subtle::Choice::from(0u8);
        for k in keys {
            ok |= k.expose().as_bytes().ct_eq(presented.as_bytes());
        }
        if bool::from(ok) && !presented.is_empty() {
            Ok(Authorized(auth))
        } else {
            Err(ProxyError::Unauthorized)
        }
    }
}
