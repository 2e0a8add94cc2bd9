//! The per-request outcome, recorded once: the request metric (401s and every other rejection
//! included) and, for a failed request, one log line and DashScope's request id.
//!
//! Handlers fill an [`Observed`] slot as they learn things (model, endpoint, upstream request
//! id); the middleware reads it and the [`ProxyError`] that `IntoResponse` left in the
//! response's extensions.

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ProxyError;
use crate::metrics;
use crate::state::AppState;

#[derive(Default)]
struct Info {
    model: String,
    endpoint: Option<&'static str>,
    request_id: Option<String>,
}

/// The handler's side of the record. Extracting it never fails.
#[derive(Clone, Default)]
pub struct Observed(Arc<Mutex<Info>>);

impl Observed {
    pub fn model(&self, model: &str) {
        tracing::Span::current().record("model", model);
        if let Ok(mut i) = self.0.lock() {
            model.clone_into(&mut i.model);
        }
    }

    pub fn endpoint(&self, endpoint: &'static str) {
        tracing::Span::current().record("endpoint", endpoint);
        if let Ok(mut i) = self.0.lock() {
            i.endpoint = Some(endpoint);
        }
    }

    /// DashScope's request id: recorded on the span, and echoed as `x-request-id`.
    pub fn request_id(&self, id: Option<&str>) {
        if let (Some(id), Ok(mut i)) = (id, self.0.lock()) {
            tracing::Span::current().record("upstream_request_id", id);
            i.request_id = Some(id.to_owned());
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Observed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Observed>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The middleware around each API route; `route` is its metric label.
pub async fn observe(
    State((state, route)): State<(AppState, &'static str)>,
    mut req: Request,
    next: Next,
) -> Response {
    let observed = Observed::default();
    req.extensions_mut().insert(observed.clone());
    let mut resp = next.run(req).await;
    let Ok(info) = observed.0.lock().map(|mut i| std::mem::take(&mut *i)) else {
        return resp;
    };
    let endpoint = info.endpoint.unwrap_or("none");
    let status = resp.status().as_u16();
    let Some(e) = resp.extensions().get::<ProxyError>() else {
        metrics::record_request(route, &info.model, endpoint, status, "");
        set_request_id(&mut resp, info.request_id.as_deref());
        return resp;
    };
    let code = e.body().error.code.unwrap_or_default();
    metrics::record_request(route, &info.model, endpoint, status, &code);
    // A client error's message can quote the request (serde echoes bad values): log its code
    // and parameter only, unless content logging is on.
    match e {
        ProxyError::Client { param, .. } if !state.cfg.log_content => tracing::warn!(
            status, code = %code, param = ?param, kind = e.label(), "request failed"
        ),
        _ => tracing::warn!(status, error = %e, kind = e.label(), "request failed"),
    }
    // DashScope's request id, also when the call failed upstream.
    let request_id = info.request_id.or_else(|| match e {
        ProxyError::Upstream { mapped, .. } => mapped.request_id.clone(),
        _ => None,
    });
    if let Some(id) = &request_id {
        tracing::Span::current().record("upstream_request_id", id.as_str());
    }
    set_request_id(&mut resp, request_id.as_deref());
    resp
}

fn set_request_id(resp: &mut Response, id: Option<&str>) {
    if let Some(v) = id.and_then(|id| HeaderValue::from_str(id).ok()) {
        resp.headers_mut().insert("x-request-id", v);
    }
}
