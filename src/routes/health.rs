//! `/healthz` (alive), `/readyz` (ready; 503 while draining), `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::metrics;
use crate::state::AppState;

pub async fn live() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready unless draining. The state store's health is reported, not required: stateless
/// traffic is served while it is down (`"store": "down"`), and it is asked again every time.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let store = match state.store.ping().await {
        Ok(()) => "ok",
        Err(e) => {
            metrics::record_store_error("ping");
            tracing::warn!(error = %e, "state store is down");
            "down"
        }
    };
    let backend = state.store.backend();
    if state.drain.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining", "store": store, "store_backend": backend})),
        )
    } else {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "store": store, "store_backend": backend})),
        )
    }
}

pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(),
    )
}
