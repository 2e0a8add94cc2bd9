//! The routes: `/v1/chat/completions`, `/v1/models`, health, metrics, and JSON 404/405s.

mod auth;
mod chat;
mod health;
pub(crate) mod limits;
mod models;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::error::ProxyError;
use crate::server::{AppState, not_found};

/// The API routes run behind the per-key limits ([`limits::enforce`]); health and metrics
/// do not.
pub fn routes(state: &AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
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
}
