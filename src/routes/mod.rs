//! The routes: `/v1/chat/completions`, `/v1/embeddings`, rerank (`/v1/rerank`, `/rerank`,
//! `/v2/rerank`), `/v1/models`, health, metrics, and JSON 404/405s.
//!
//! Shared by every API route: [`extract`] (the JSON body and the concurrency slot), [`sse`]
//! (the streaming driver), [`observe`] (the request metric and the one error log line), with
//! [`crate::routing`] and [`crate::upstream::call`] below them.

mod auth;
mod chat;
mod embeddings;
pub mod extract;
mod health;
pub(crate) mod limits;
mod models;
pub mod observe;
mod rerank;
mod responses;
pub mod sse;
mod stored;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::error::ProxyError;
use crate::server::not_found;
use crate::state::AppState;

/// The router with its state. API routes are wrapped in [`observe::observe`] with their
/// metric label, and all of them in the per-key limits ([`limits::enforce`]); health and
/// metrics are neither.
pub fn routes(state: AppState) -> Router {
    let observed = |route: &'static str| {
        axum::middleware::from_fn_with_state((state.clone(), route), observe::observe)
    };
    let api = Router::new()
        .route(
            "/v1/chat/completions",
            post(chat::chat_completions).layer(observed("chat")),
        )
        .route(
            "/v1/responses",
            post(responses::create).layer(observed("responses")),
        )
        .route(
            "/v1/responses/{id}",
            get(stored::retrieve)
                .delete(stored::delete)
                .layer(observed("responses")),
        )
        .route(
            "/v1/responses/{id}/input_items",
            get(stored::input_items).layer(observed("responses")),
        )
        .route(
            "/v1/embeddings",
            post(embeddings::create).layer(observed("embeddings")),
        )
        .route("/v1/rerank", post(rerank::v1).layer(observed("rerank")))
        .route("/rerank", post(rerank::v1).layer(observed("rerank")))
        .route("/v2/rerank", post(rerank::v2).layer(observed("rerank")))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::get))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::enforce,
        ));
    Router::new()
        .merge(api)
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(|uri: Uri| async move { not_found(uri.path()) })
        .method_not_allowed_fallback(|uri: Uri| async move {
            ProxyError::Client {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: format!("method not allowed on {}", uri.path()),
                param: None,
                code: "method_not_allowed".into(),
            }
            .into_response()
        })
        .with_state(state)
}

/// What translation changed, told once per request: one WARN log line, and the capped
/// `x-dashbridge-warning` header on the response.
pub(crate) fn log_warnings(model: &str, warnings: &crate::translate::Warnings) {
    if let Some(line) = warnings.log_line() {
        tracing::warn!(model = %model, warnings = %line, "request adjusted");
    }
}

/// The `x-dashbridge-warning` header for `warnings`, when there are any.
pub(crate) fn warning_header(
    resp: &mut axum::response::Response,
    warnings: &crate::translate::Warnings,
) {
    if let Some(w) = warnings
        .header_value()
        .and_then(|w| axum::http::HeaderValue::from_str(&w).ok())
    {
        resp.headers_mut().insert("x-dashbridge-warning", w);
    }
}

/// A 200 JSON answer. With `log_content` (`DASHBRIDGE_LOG_CONTENT`) its body is logged too;
/// never otherwise.
pub(crate) fn json_ok<T: serde::Serialize>(
    value: &T,
    log_content: bool,
) -> Result<axum::response::Response, ProxyError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ProxyError::Internal(format!("serializing an answer: {e}")))?;
    if log_content {
        tracing::info!(answer = %String::from_utf8_lossy(&body), "content");
    }
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
