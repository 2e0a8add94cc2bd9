//! The routes: `/v1/chat/completions`, `/v1/models`, health, metrics, and JSON 404/405s.
//!
//! Shared by every API route: [`extract`] (the JSON body and the concurrency slot), [`sse`]
//! (the streaming driver), [`observe`] (the request metric and the one error log line), with
//! [`crate::routing`] and [`crate::upstream::call`] below them.

mod auth;
mod chat;
pub mod extract;
mod health;
pub(crate) mod limits;
mod models;
pub mod observe;
pub mod sse;

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
