//! The composition root: shared state, the router with its middleware, and `serve`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::dashscope::Endpoint;
use crate::error::ProxyError;
use crate::routes;
use crate::shutdown::Drain;
use crate::upstream::DashScopeClient;

/// What the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub client: DashScopeClient,
    pub limit: Arc<Semaphore>,
    pub drain: Drain,
    pub learned: Arc<Learned>,
}

/// What the gateway learned from upstream answers, per model.
#[derive(Default)]
pub struct Learned {
    /// Models found on the other endpoint than the table said ("url error" fallback).
    pub endpoints: RwLock<HashMap<String, Endpoint>>,
    /// Models that refused a non-stream call: always stream and aggregate them.
    pub stream_only: RwLock<HashSet<String>>,
}

impl Learned {
    pub fn endpoint(&self, model: &str) -> Option<Endpoint> {
        self.endpoints.read().ok()?.get(model).copied()
    }

    pub fn set_endpoint(&self, model: &str, e: Endpoint) {
        if let Ok(mut w) = self.endpoints.write() {
            w.insert(model.to_owned(), e);
        }
    }

    pub fn is_stream_only(&self, model: &str) -> bool {
        self.stream_only
            .read()
            .map(|s| s.contains(model))
            .unwrap_or(false)
    }

    pub fn set_stream_only(&self, model: &str) {
        if let Ok(mut w) = self.stream_only.write() {
            w.insert(model.to_owned());
        }
    }
}

impl AppState {
    pub fn new(cfg: Config) -> Result<AppState, ProxyError> {
        let client = DashScopeClient::new(&cfg)
            .map_err(|e| ProxyError::Internal(format!("building the HTTP client: {e}")))?;
        Ok(AppState {
            limit: Arc::new(Semaphore::new(cfg.max_concurrency)),
            cfg: Arc::new(cfg),
            client,
            drain: Drain::default(),
            learned: Arc::new(Learned::default()),
        })
    }
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The application. Middleware, outermost first:
/// 1. catch-panic: a handler panic becomes a 500 with an OpenAI body, never a dropped socket;
/// 2. sensitive headers: `Authorization` is redacted in every log line;
/// 3. set request id: a UUID `x-request-id` when the client sent none;
/// 4. trace: one span per request (method, path, request id), covering streamed bodies;
/// 5. propagate request id: echoes it on the response unless the handler set DashScope's;
/// 6. request body timeout: a client that trickles its body is cut off (slow loris).
pub fn router(state: AppState) -> Router {
    let read_timeout = state.cfg.request_read_timeout;
    routes::routes()
        .with_state(state)
        .layer(RequestBodyTimeoutLayer::new(read_timeout))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(&X_REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = %id,
                    model = tracing::field::Empty,
                    endpoint = tracing::field::Empty,
                    upstream_request_id = tracing::field::Empty,
                    status = tracing::field::Empty,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ProxyError::Internal("handler panicked".into()).into_response()
            },
        ))
}

/// Serve until `shutdown` resolves, then drain: `/readyz` turns 503, the listener closes,
/// in-flight requests and streams finish; after the grace period the remaining streams end
/// with an in-band error and `serve` returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = state.drain.clone();
    let grace = state.cfg.shutdown_grace;
    let app = router(state);
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_for_signal = drain.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        drain_for_signal.start();
        tracing::info!(grace_secs = grace.as_secs(), "draining");
        let _ = stopped_tx.send(());
    });
    let server = async move { server.await };
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => return res,
        _ = stopped_rx => {}
    }
    // Draining: give in-flight work the grace period, then end what is left.
    if tokio::time::timeout(grace, &mut server).await.is_ok() {
        tracing::info!("drained");
        return Ok(());
    }
    tracing::warn!("grace period over; ending remaining streams");
    drain.expire();
    match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!("connections still open after the grace period; exiting anyway");
            Ok(())
        }
    }
}

/// Used by the 404/405 fallbacks.
pub fn not_found(path: &str) -> Response {
    ProxyError::Client {
        status: axum::http::StatusCode::NOT_FOUND,
        message: format!(
            "no route for {path}: this gateway serves POST /v1/chat/completions and GET /v1/models"
        ),
        param: None,
        code: "unknown_url".into(),
    }
    .into_response()
}
