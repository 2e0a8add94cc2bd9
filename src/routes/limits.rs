//! Per-key limits on the `/v1` routes: who is calling ([`Caller`]), whether their `rpm` / `tpm`
//! allow one more request (asked of the state store, atomically), OpenAI's `x-ratelimit-*`
//! headers on every response of a limited key, and the [`UsageSink`] through which a route
//! reports the tokens a call used once it is finished.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::{bearer, identify};
use crate::config::OnStoreError;
use crate::error::ProxyError;
use crate::metrics;
use crate::state::AppState;
use crate::store::{
    Admission, Caller, Quota, StateStore, format_reset, owner_hash, retry_after_secs,
};

/// The warning header every route uses.
pub const WARNING: HeaderName = HeaderName::from_static("x-dashbridge-warning");

/// Where a route reports the tokens a call used; they are added to the key's token window
/// when the last clone is dropped (for a stream: when the stream is over).
#[derive(Clone)]
pub struct UsageSink(Arc<SinkInner>);

struct SinkInner {
    tokens: AtomicU64,
    key: String,
    store: Arc<dyn StateStore>,
}

impl UsageSink {
    pub fn add(&self, tokens: u64) {
        self.0.tokens.fetch_add(tokens, Ordering::Relaxed);
    }
}

impl Drop for SinkInner {
    fn drop(&mut self) {
        let tokens = *self.tokens.get_mut();
        if tokens == 0 {
            return;
        }
        let (store, key) = (Arc::clone(&self.store), std::mem::take(&mut self.key));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.add_tokens(&key, tokens).await {
                    metrics::record_store_error("limit");
                    tracing::warn!(error = %e, tokens, "could not count tokens against the key's tpm");
                }
            });
        }
    }
}

/// The middleware (see the module doc).
pub async fn enforce(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let cfg = &state.cfg;
    let key = identify(req.headers(), &cfg.client_keys);
    let caller = Caller {
        owner: match key {
            Some(k) => Some(k.owner.clone()),
            None if cfg.client_keys.is_empty() => bearer(req.headers()).map(owner_hash),
            None => None,
        },
        label: key.map(|k| k.label.clone()),
    };
    req.extensions_mut().insert(caller);
    let Some(key) = key else {
        return next.run(req).await;
    };
    let limits = match cfg
        .key_limits
        .get(&key.name)
        .or_else(|| cfg.key_limits.get(&key.label))
    {
        Some(l) if l.is_limited() => *l,
        _ => return next.run(req).await,
    };
    let admission = match state.store.admit(&key.owner, limits).await {
        Ok(a) => a,
        Err(e) => {
            metrics::record_store_error("limit");
            tracing::warn!(error = %e, key = %key.label, "rate-limit state unavailable");
            if cfg.on_store_error == OnStoreError::Deny {
                return ProxyError::StoreUnavailable(e.to_string()).into_response();
            }
            let mut resp = next.run(req).await;
            resp.headers_mut().append(
                WARNING,
                HeaderValue::from_static(
                    "rate limits not enforced: the state store is unavailable",
                ),
            );
            return resp;
        }
    };
    if let Some(wait) = admission.retry_after() {
        let axis = if admission.requests.is_some_and(|q| q.retry_after.is_some()) {
            "requests"
        } else {
            "tokens"
        };
        metrics::record_rate_limited(&key.label, axis);
        let secs = retry_after_secs(wait);
        let mut resp = ProxyError::RateLimited {
            axis,
            message: limited_message(&key.label, axis, &admission, secs),
            retry_after_secs: secs,
        }
        .into_response();
        put_headers(resp.headers_mut(), &admission);
        return resp;
    }
    if limits.tpm.is_some() {
        req.extensions_mut().insert(UsageSink(Arc::new(SinkInner {
            tokens: AtomicU64::new(0),
            key: key.owner.clone(),
            store: Arc::clone(&state.store),
        })));
    }
    let mut resp = next.run(req).await;
    put_headers(resp.headers_mut(), &admission);
    resp
}

fn limited_message(label: &str, axis: &str, a: &Admission, secs: u64) -> String {
    let (what, q) = match axis {
        "requests" => ("requests per min (RPM)", a.requests),
        _ => ("tokens per min (TPM)", a.tokens),
    };
    let limit = q.map_or(0, |q| q.limit);
    format!(
        "Rate limit reached for key '{label}' on {what}: Limit {limit}. Please try again in {secs}s."
    )
}

/// OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
fn put_headers(h: &mut HeaderMap, a: &Admission) {
    let mut put = |axis: &str, q: Option<Quota>| {
        let Some(q) = q else { return };
        for (name, value) in [
            ("limit", q.limit.to_string()),
            ("remaining", q.remaining.to_string()),
            ("reset", format_reset(q.reset)),
        ] {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(format!("x-ratelimit-{name}-{axis}").as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                h.insert(n, v);
            }
        }
    };
    put("requests", a.requests);
    put("tokens", a.tokens);
}
