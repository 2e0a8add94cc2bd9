//! The composition root: the router with its middleware, and `serve`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::{HeaderName, Request, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ProxyError;
use crate::routes;
pub use crate::state::AppState;

/// Request ids: UUID-shaped, from a fast non-cryptographic generator. An id must be unique,
/// not secret, and `Uuid::new_v4` costs a `getrandom` syscall per request.
#[derive(Clone, Copy, Default)]
pub struct MakeFastId;

impl MakeRequestId for MakeFastId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
        let mut buf = uuid::Uuid::encode_buffer();
        axum::http::HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
            .ok()
            .map(RequestId::new)
    }
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The application. Middleware, outermost first:
/// 1. catch-panic: a handler panic becomes a 500 with an OpenAI body, never a dropped socket;
/// 2. sensitive headers: `Authorization` is redacted in every log line;
/// 3. set request id: a UUID `x-request-id` when the client sent none;
/// 4. trace: one span per request (method, path, request id; the handler adds model,
///    endpoint and upstream request id; status on response), covering streamed bodies;
/// 5. finish log: one INFO line per request when its response body is done or dropped
///    (streams included), with status and total duration, inside the request span;
/// 6. propagate request id: echoes it on the response unless the handler set DashScope's;
/// 7. request body timeout: a client that trickles its body is cut off (slow loris).
pub fn router(state: AppState) -> Router {
    let read_timeout = state.cfg.request_read_timeout;
    let access_log = state.cfg.access_log;
    let app = routes::routes(state)
        .layer(RequestBodyTimeoutLayer::new(read_timeout))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID));
    // The per-request line is an access log: on by default, off with DASHBRIDGE_ACCESS_LOG=false.
    let app = if access_log {
        app.layer(axum::middleware::from_fn(log_finished))
    } else {
        app
    };
    app.layer(
        TraceLayer::new_for_http()
            .make_span_with(|req: &Request<_>| {
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
            })
            // Failures are logged where they are understood (the handler, the stream pump);
            // tower-http's generic "response failed" line would repeat each at ERROR.
            .on_failure(())
            .on_response(|resp: &Response, latency: Duration, span: &tracing::Span| {
                span.record("status", resp.status().as_u16());
                tracing::debug!(
                    status = resp.status().as_u16(),
                    latency_ms = latency.as_millis() as u64,
                    "response headers sent"
                );
            }),
    )
    .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeFastId))
    .layer(SetSensitiveRequestHeadersLayer::new([
        header::AUTHORIZATION,
    ]))
    .layer(CatchPanicLayer::custom(
        |_: Box<dyn std::any::Any + Send>| {
            ProxyError::Internal("handler panicked".into()).into_response()
        },
    ))
}

/// Logs "request finished" once the response body has been sent (or abandoned by the client).
async fn log_finished(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = Instant::now();
    let resp = next.run(req).await;
    let guard = Finished {
        span: tracing::Span::current(),
        started,
        status: resp.status().as_u16(),
    };
    if resp.body().size_hint().exact().is_some() {
        // A body of known size is written at once: log now, keep the Content-Length.
        drop(guard);
        return resp;
    }
    // A stream: the guard lives in the body and drops when hyper is done with it.
    resp.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _alive = &guard;
            frame
        }))
    })
}

struct Finished {
    span: tracing::Span,
    started: Instant,
    status: u16,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.span.in_scope(|| {
            tracing::info!(
                status = self.status,
                duration_ms = self.started.elapsed().as_millis() as u64,
                "request finished"
            );
        });
    }
}

/// Serve until `shutdown` resolves, then drain: `/readyz` turns 503, the listener closes,
/// in-flight requests and streams finish; after the grace period the remaining streams end
/// with an in-band error and `serve` returns.
///
/// Connections are HTTP/1.1 (hyper, keep-alive). Two limits protect the process:
/// - at most `max_connections` open at once: at the limit we stop accepting (new clients wait
///   in the kernel backlog) until a connection closes;
/// - a client must send a complete request head within `request_read_timeout` of connecting or
///   of its previous response (hyper's header read timeout, which also closes idle keep-alive
///   connections), so slow-loris and idle clients cannot pin connection slots. Request bodies
///   are bounded by the body timeout in [`router`] and the total deadline in the chat handler.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = state.drain.clone();
    let grace = state.cfg.shutdown_grace;
    let connections = Arc::new(Semaphore::new(state.cfg.max_connections.max(1)));
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.cfg.request_read_timeout);
    let app = router(state);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A connection slot first, then a connection: at the limit we do not accept at all.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            p = Arc::clone(&connections).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let tcp = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((tcp, _peer)) => tcp,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection(TokioIo::new(tcp), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    // Draining: no new connections; keep-alive connections close after their current request.
    drop(listener);
    drain.start();
    tracing::info!(grace_secs = grace.as_secs(), "draining");
    let all_closed = graceful.shutdown();
    tokio::pin!(all_closed);
    if tokio::time::timeout(grace, &mut all_closed).await.is_ok() {
        tracing::info!("drained");
        return Ok(());
    }
    tracing::warn!("grace period over; ending remaining streams");
    drain.expire();
    if tokio::time::timeout(Duration::from_secs(5), all_closed)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; exiting anyway");
    }
    Ok(())
}

/// Accept errors: per-connection ones are ignored; others (out of file descriptors) are logged
/// and slowed down so the loop does not spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_millis(100)).await;
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
