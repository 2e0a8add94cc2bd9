//! A fake DashScope **native** upstream for tests, the e2e suite and the benchmark.
//!
//! It serves the two generation paths of the real service
//! (`POST /api/v1/services/aigc/text-generation/generation` and
//! `POST /api/v1/services/aigc/multimodal-generation/generation`) with the shapes documented in
//! the project's wire-format reference (fixtures in `tests/fixtures/dashscope/`), plus text
//! embedding ([`EMBED_PATH`]: the real batch limits and their real 400 body, deterministic
//! vectors from [`fake_vector`]) and text rerank ([`RERANK_PATH`], and [`RERANK_COMPAT_PATH`]
//! for `qwen3-rerank` only: scores from [`fake_relevance`]). Anything else is a 404
//! `{"code":"NotFound",...}`. Embedding texts may carry `scenario:error-500`,
//! `scenario:error-429` or `scenario:slow` (1 s) markers.
//!
//! Every request (any method, any path) is recorded before a reply is chosen. A reply is then
//! taken from the scripted FIFO queue ([`FakeDashScope::push`]); when the queue is empty the fake
//! runs in **auto mode**: it binds each model to one path like the real service does and picks
//! a canned answer from a `scenario:NAME` marker in the text of the last `user` message (see
//! [`SCENARIOS`] and the module source for the list). Auto-mode bodies are rendered once, at
//! start-up, into `Bytes`; no file is read per request.
//!
//! A request is "streaming" when it carries `X-DashScope-SSE: enable`.
//!
//! Two control paths let a separate process script the queue (the e2e capture replay):
//! `POST /__fake/script` with `{"replies": [{"file": PATH, "status": 200, "headers": {…}}]}`
//! queues each file's bytes verbatim as the next replies (`*.sse` as an SSE reply, anything
//! else as a JSON body with that status); `POST /__fake/reset` empties the queue and answers
//! `{"pending": N}`, the number of scripted replies nobody consumed. They are not recorded.
//!
//! [`FakeDashScope::start_tls_on`] serves the same over HTTPS instead (ALPN `h2` and `http/1.1`)
//! with a certificate for `127.0.0.1` / `localhost` signed by a CA generated at start-up
//! ([`FakeDashScope::ca_pem`]); each request records the HTTP version it came in
//! ([`Recorded::version`]).
//!
//! There is no "refuse the connection" reply: to test a refused connection point the gateway at
//! a closed port, e.g. [`unused_base_url`].
//!
//! This file is included both as `tests/common/fake.rs` (integration tests, `mod common;`) and by
//! `examples/fake_dashscope.rs` through `#[path]`, so it must not refer to `super::` or
//! `crate::` items.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header};
use axum::response::Response;
use axum::serve::ListenerExt;
use bytes::Bytes;
use serde_json::{Value, json};

/// Text-generation path (text-only models).
pub const TEXT_PATH: &str = "/api/v1/services/aigc/text-generation/generation";
/// Multimodal-generation path (VL / audio / omni / Qwen ≥ 3.5 models).
pub const MM_PATH: &str = "/api/v1/services/aigc/multimodal-generation/generation";
/// Synchronous text-embedding path.
pub const EMBED_PATH: &str = "/api/v1/services/embeddings/text-embedding/text-embedding";
/// Native text-rerank path.
pub const RERANK_PATH: &str = "/api/v1/services/rerank/text-rerank/text-rerank";
/// The OpenAI-style rerank API where `qwen3-rerank` is served.
pub const RERANK_COMPAT_PATH: &str = "/compatible-api/v1/reranks";

/// Scenario names understood by auto mode (`scenario:NAME` in the last user message).
pub const SCENARIOS: &[&str] = &[
    "text",
    "bench",
    "stream20",
    "tools",
    "tool-result",
    "reasoning",
    "reasoning-tools",
    "logprobs",
    "search",
    "error-401",
    "error-429",
    "error-400",
    "error-500",
    "model-not-exist",
    "arrearage",
    "midstream-error",
    "drop",
    "echo",
    "forced-tool",
    "n2",
    "slow",
    "call-tool",
];

/// Content type of every SSE reply, as the real service spells it.
pub const SSE_CONTENT_TYPE: &str = "text/event-stream;charset=UTF-8";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// A running fake upstream. Dropping it stops accepting new connections.
pub struct FakeDashScope {
    /// The bound address (`127.0.0.1:PORT` for [`FakeDashScope::start`]).
    pub addr: SocketAddr,
    /// `http://ADDR` (`https://ADDR` with TLS), without a trailing slash and without `/api/v1`.
    pub base_url: String,
    /// With TLS: the PEM of the CA that signed the fake's certificate (what a client trusts).
    pub ca_pem: Option<String>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The URI path (no query string).
    pub path: String,
    pub headers: HeaderMap,
    /// HTTP/1.1, or HTTP/2 when a TLS client negotiated `h2`.
    pub version: Version,
    /// The parsed JSON body, or `Value::Null` when the body is not JSON.
    pub body: Value,
    pub raw: Bytes,
}

/// A scripted reply. Scripted replies are consumed FIFO, one per request to a generation path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// `content-type: application/json` plus `x-request-id` from the body's `request_id`
    /// (H-json for 200, H-err otherwise). `headers` are added last and replace defaults of the
    /// same name.
    Json {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// 200 `text/event-stream;charset=UTF-8` with `x-request-id` from the first frame (H-sse; plus
    /// `x-dashscope-finished: true` when the body holds an `event:error`, H-sse-err). The body is
    /// split on the blank-line separator and each event (with its trailing blank line) is written
    /// as its own chunk. `delay` is slept before each event after the first. `drop_after: Some(n)`
    /// aborts the connection mid-body after `n` events; `stall_after: Some(n)` never yields again
    /// after `n` events (the connection stays open).
    Sse {
        body: String,
        delay: Duration,
        drop_after: Option<usize>,
        stall_after: Option<usize>,
        headers: Vec<(String, String)>,
    },
    /// Never sends response headers.
    Hang,
    /// Any status, content type and body, with no other headers (an HTML 502 page, garbage...).
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
}

impl FakeDashScope {
    /// Binds `127.0.0.1:0` and serves. Panics if binding fails.
    pub async fn start() -> FakeDashScope {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match FakeDashScope::start_on(addr).await {
            Ok(fake) => fake,
            Err(e) => panic!("fake DashScope: cannot bind {addr}: {e}"),
        }
    }

    /// Binds `addr` and serves (used by the example binary).
    pub async fn start_on(addr: SocketAddr) -> io::Result<FakeDashScope> {
        install_tls_provider();
        // Render the auto-mode table now, so a missing fixture fails here and not in a handler.
        LazyLock::force(&AUTO);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let listener = listener.tap_io(|tcp| {
            // Small SSE chunks must not wait for Nagle.
            let _ = tcp.set_nodelay(true);
        });
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeDashScope {
            addr,
            base_url: format!("http://{addr}"),
            ca_pem: None,
            shared,
            task,
        })
    }

    /// Binds `127.0.0.1:0` and serves HTTPS (see [`FakeDashScope::start_tls_on`]). Panics if
    /// binding or the certificate fails.
    pub async fn start_tls(h2_max_streams: u32) -> FakeDashScope {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match FakeDashScope::start_tls_on(addr, h2_max_streams).await {
            Ok(fake) => fake,
            Err(e) => panic!("fake DashScope (TLS): cannot start on {addr}: {e}"),
        }
    }

    /// Binds `addr` and serves HTTPS: ALPN `h2` (at most `h2_max_streams` concurrent streams per
    /// connection, announced in SETTINGS_MAX_CONCURRENT_STREAMS) or `http/1.1`, with a fresh
    /// certificate for `127.0.0.1` and `localhost` whose CA is in [`FakeDashScope::ca_pem`].
    pub async fn start_tls_on(addr: SocketAddr, h2_max_streams: u32) -> io::Result<FakeDashScope> {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto;
        use hyper_util::service::TowerToHyperService;

        install_tls_provider();
        LazyLock::force(&AUTO);
        let (tls, ca_pem) = tls_config().map_err(io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http2().max_concurrent_streams(h2_max_streams);
        let task = tokio::spawn(async move {
            loop {
                let tcp = match listener.accept().await {
                    Ok((tcp, _)) => tcp,
                    Err(_) => {
                        // Out of descriptors: do not spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, builder, app) = (acceptor.clone(), builder.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = TowerToHyperService::new(app);
                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Ok(FakeDashScope {
            addr,
            base_url: format!("https://{addr}"),
            ca_pem: Some(ca_pem),
            shared,
            task,
        })
    }

    /// Queues a scripted reply (FIFO, one per request to a generation path).
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.queue).push_back(reply);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// Number of requests received (counted even when recording is off).
    pub fn request_count(&self) -> usize {
        self.shared.request_count.load(Ordering::SeqCst)
    }

    /// SSE bodies written to the end.
    pub fn streams_completed(&self) -> usize {
        self.shared.completed.load(Ordering::SeqCst)
    }

    /// SSE bodies dropped before being fully written (the client went away). A deliberate
    /// `drop_after` abort is counted in neither this nor [`Self::streams_completed`].
    pub fn streams_cancelled(&self) -> usize {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// Polls until `streams_cancelled() >= n`; false on timeout.
    pub async fn wait_cancelled(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.streams_cancelled() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Turns request recording on (the default) or off. With recording off, [`Self::requests`]
    /// stays empty but [`Self::request_count`] still counts; the example binary turns it off so
    /// that a long benchmark does not grow memory.
    pub fn set_recording(&self, on: bool) {
        self.shared.recording.store(on, Ordering::SeqCst);
    }

    /// Number of scripted replies not yet consumed.
    pub fn pending_replies(&self) -> usize {
        lock(&self.shared.queue).len()
    }
}

impl Drop for FakeDashScope {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reply {
    /// 200 with the fixture file as the body (verbatim).
    pub fn json_fixture(name: &str) -> Reply {
        Reply::json(200, fixture(name))
    }

    /// `status` with the fixture file as the body (verbatim).
    pub fn error_fixture(status: u16, name: &str) -> Reply {
        Reply::json(status, fixture(name))
    }

    /// An SSE fixture, no pacing, no drop.
    pub fn sse_fixture(name: &str) -> Reply {
        Reply::sse(fixture(name))
    }

    /// A JSON reply with any status and body.
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::Json {
            status,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// An SSE reply with any body, no pacing, no drop.
    pub fn sse(body: impl Into<String>) -> Reply {
        Reply::Sse {
            body: body.into(),
            delay: Duration::ZERO,
            drop_after: None,
            stall_after: None,
            headers: Vec::new(),
        }
    }

    /// Sleep `delay` before each event after the first. Panics unless `Sse`.
    pub fn paced(mut self, delay: Duration) -> Reply {
        match &mut self {
            Reply::Sse { delay: d, .. } => *d = delay,
            other => panic!("Reply::paced applies to Reply::Sse only, not {other:?}"),
        }
        self
    }

    /// Abort the connection after `n` events. Panics unless `Sse`.
    pub fn drop_after(mut self, n: usize) -> Reply {
        match &mut self {
            Reply::Sse { drop_after, .. } => *drop_after = Some(n),
            other => panic!("Reply::drop_after applies to Reply::Sse only, not {other:?}"),
        }
        self
    }

    /// Stop writing (but keep the connection open) after `n` events. Panics unless `Sse`.
    pub fn stall_after(mut self, n: usize) -> Reply {
        match &mut self {
            Reply::Sse { stall_after, .. } => *stall_after = Some(n),
            other => panic!("Reply::stall_after applies to Reply::Sse only, not {other:?}"),
        }
        self
    }

    /// Adds a response header (replaces a default header of the same name). Panics on an
    /// invalid name or value, or on `Hang` / `Raw`.
    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        if HeaderName::from_bytes(k.as_bytes()).is_err() || HeaderValue::from_str(v).is_err() {
            panic!("Reply::with_header: invalid header {k:?}: {v:?}");
        }
        match &mut self {
            Reply::Json { headers, .. } | Reply::Sse { headers, .. } => {
                headers.push((k.to_owned(), v.to_owned()));
            }
            other => panic!("Reply::with_header applies to Json and Sse only, not {other:?}"),
        }
        self
    }
}

/// Reads `tests/fixtures/dashscope/<name>`. Panics with the full path if it cannot.
pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/dashscope/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => panic!("fake DashScope: cannot read fixture {path}: {e}"),
    }
}

/// Whether the real service binds `model` to the multimodal path (else: the text path).
pub fn is_multimodal_model(model: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "qvq",
        "qwen-vl",
        "qwen2-vl",
        "qwen2.5-vl",
        "qwen3-vl",
        "qwen-audio",
        "qwen2-audio",
        "qwen-omni",
        "qwen2.5-omni",
        "qwen3-omni",
        "qwen3.5-",
        "qwen3.6-",
        "qwen3.7-",
        "qwen3.8-",
    ];
    PREFIXES.iter().any(|p| model.starts_with(p))
        || model.contains("-vl-")
        || model.contains("mm-only")
}

/// A base URL on which nothing listens (for "connection refused" tests). There is a small race:
/// another process could take the port in between.
pub fn unused_base_url() -> String {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => format!("http://{addr}"),
        Err(e) => panic!("fake DashScope: cannot find an unused port: {e}"),
    }
}

/// Splits an SSE body into events, each with its trailing blank line (`\n\n` or `\r\n\r\n`).
pub fn split_events(body: &str) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let cut = match (rest.find("\n\n"), rest.find("\r\n\r\n")) {
            (Some(a), Some(b)) if b < a => b + 4,
            (Some(a), _) => a + 2,
            (None, Some(b)) => b + 4,
            (None, None) => rest.len(),
        };
        out.push(Bytes::copy_from_slice(&rest.as_bytes()[..cut]));
        rest = &rest[cut..];
    }
    out
}

/// Removes the whitespace outside strings from a JSON text, keeping key order.
pub fn compact_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut in_str, mut esc) = (false, false);
    for c in s.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// reqwest is built without a default TLS provider: a process that starts the fake (a test, the
/// example binaries) gets the gateway's (*ring*), so any client it builds afterwards works.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A server config for `127.0.0.1` / `localhost` (ALPN `h2`, `http/1.1`; *ring*) and the PEM of
/// the CA that signed its certificate.
fn tls_config() -> Result<(rustls::ServerConfig, String), Box<dyn std::error::Error + Send + Sync>>
{
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "fake DashScope test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let leaf_key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
        .signed_by(&leaf_key, &ca)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((cfg, ca.pem()))
}

// ---------------------------------------------------------------------------------------------
// Server state and handler
// ---------------------------------------------------------------------------------------------

struct Shared {
    queue: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    recording: AtomicBool,
    request_count: AtomicUsize,
    completed: AtomicUsize,
    cancelled: AtomicUsize,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            queue: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            recording: AtomicBool::new(true),
            request_count: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Endpoint {
    Text,
    Multimodal,
    Embedding,
    Rerank,
    RerankCompat,
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let raw = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"code": "BadRequest", "message": format!("fake: cannot read body: {e}"), "request_id": "fake"})
                    .to_string(),
                &[],
            );
        }
    };
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let path = parts.uri.path();
    if let Some(action) = path.strip_prefix(CONTROL_PREFIX) {
        return control(&shared, action, &body);
    }

    shared.request_count.fetch_add(1, Ordering::SeqCst);
    if shared.recording.load(Ordering::SeqCst) {
        lock(&shared.requests).push(Recorded {
            method: parts.method.to_string(),
            path: path.to_owned(),
            headers: parts.headers.clone(),
            version: parts.version,
            body: body.clone(),
            raw: raw.clone(),
        });
    }

    let endpoint = match (parts.method == Method::POST, path) {
        (true, TEXT_PATH) => Endpoint::Text,
        (true, MM_PATH) => Endpoint::Multimodal,
        (true, EMBED_PATH) => Endpoint::Embedding,
        (true, RERANK_PATH) => Endpoint::Rerank,
        (true, RERANK_COMPAT_PATH) => Endpoint::RerankCompat,
        _ => {
            let msg = format!("fake DashScope: no route for {} {path}", parts.method);
            return json_response(
                StatusCode::NOT_FOUND,
                json!({"code": "NotFound", "message": msg, "request_id": "fake"}).to_string(),
                &[],
            );
        }
    };
    let streaming = parts
        .headers
        .get("x-dashscope-sse")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("enable"));

    let scripted = lock(&shared.queue).pop_front();
    match (scripted, endpoint) {
        (Some(reply), _) => render(&shared, reply).await,
        (None, Endpoint::Embedding) => auto_embedding(&body).await,
        (None, Endpoint::Rerank) => auto_rerank(&body, false),
        (None, Endpoint::RerankCompat) => auto_rerank(&body, true),
        (None, _) => auto(&shared, endpoint, streaming, &body).await,
    }
}

/// Path prefix of the control endpoints (see the module docs).
pub const CONTROL_PREFIX: &str = "/__fake/";

fn control(shared: &Arc<Shared>, action: &str, body: &Value) -> Response {
    let answer = |status: StatusCode, v: Value| json_response(status, v.to_string(), &[]);
    match action {
        "reset" => {
            let pending = std::mem::take(&mut *lock(&shared.queue)).len();
            answer(StatusCode::OK, json!({ "pending": pending }))
        }
        "script" => match scripted_replies(body) {
            Ok(replies) => {
                let n = replies.len();
                lock(&shared.queue).extend(replies);
                answer(StatusCode::OK, json!({ "queued": n }))
            }
            Err(e) => answer(StatusCode::BAD_REQUEST, json!({ "error": e })),
        },
        other => answer(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("fake: no control action {other}") }),
        ),
    }
}

/// The replies a `/__fake/script` body asks for, each file read now (verbatim).
fn scripted_replies(body: &Value) -> Result<Vec<Reply>, String> {
    let items = body
        .get("replies")
        .and_then(Value::as_array)
        .ok_or("expected {\"replies\": [...]}")?;
    items
        .iter()
        .map(|item| {
            let file = item
                .get("file")
                .and_then(Value::as_str)
                .ok_or("each reply needs a \"file\"")?;
            let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
            let status = item.get("status").and_then(Value::as_u64).unwrap_or(200);
            let headers: Vec<(String, String)> = item
                .get("headers")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .filter(|(k, v)| {
                    HeaderName::from_bytes(k.as_bytes()).is_ok() && HeaderValue::from_str(v).is_ok()
                })
                .collect();
            Ok(if file.ends_with(".sse") {
                Reply::Sse {
                    body: text,
                    delay: Duration::ZERO,
                    drop_after: None,
                    stall_after: None,
                    headers,
                }
            } else {
                Reply::Json {
                    status: u16::try_from(status).unwrap_or(500),
                    body: text,
                    headers,
                }
            })
        })
        .collect()
}

async fn render(shared: &Arc<Shared>, reply: Reply) -> Response {
    match reply {
        Reply::Json {
            status,
            body,
            headers,
        } => json_response(status_code(status), body, &headers),
        Reply::Sse {
            body,
            delay,
            drop_after,
            stall_after,
            headers,
        } => {
            let sse = CannedSse::new(split_events(&body));
            let mut resp = sse.response(shared, delay, drop_after, stall_after);
            apply_headers(resp.headers_mut(), &headers);
            resp
        }
        Reply::Hang => std::future::pending().await,
        Reply::Raw {
            status,
            content_type,
            body,
        } => {
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = status_code(status);
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Adds `extra` headers; each replaces existing headers of the same name.
fn apply_headers(map: &mut HeaderMap, extra: &[(String, String)]) {
    let parsed: Vec<(HeaderName, HeaderValue)> = extra
        .iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect();
    for (k, _) in &parsed {
        map.remove(k);
    }
    for (k, v) in parsed {
        map.append(k, v);
    }
}

fn json_response(status: StatusCode, body: String, extra: &[(String, String)]) -> Response {
    let canned = CannedJson::new(status, body);
    let mut resp = canned.response();
    apply_headers(resp.headers_mut(), extra);
    resp
}

fn hv(s: &'static str) -> HeaderValue {
    HeaderValue::from_static(s)
}

// ---------------------------------------------------------------------------------------------
// Pre-rendered replies
// ---------------------------------------------------------------------------------------------

/// A JSON reply with its headers (H-json for 200, H-err otherwise).
#[derive(Clone)]
struct CannedJson {
    status: StatusCode,
    body: Bytes,
    headers: HeaderMap,
}

impl CannedJson {
    fn new(status: StatusCode, body: String) -> CannedJson {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, hv("application/json"));
        let rid = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("request_id")?.as_str().map(str::to_owned));
        if let Some(v) = rid.and_then(|r| HeaderValue::from_str(&r).ok()) {
            headers.insert("x-request-id", v);
        }
        headers.insert("x-dashscope-call-gateway", hv("true"));
        if status == StatusCode::OK {
            headers.insert("x-dashscope-finished", hv("true"));
            headers.insert("req-cost-time", hv("427"));
            headers.insert(header::SERVER, hv("istio-envoy"));
        }
        CannedJson {
            status,
            body: Bytes::from(body),
            headers,
        }
    }

    fn fixture(status: u16, name: &str) -> CannedJson {
        CannedJson::new(status_code(status), compact_json(&fixture(name)))
    }

    fn value(status: u16, v: &Value) -> CannedJson {
        CannedJson::new(status_code(status), v.to_string())
    }

    fn with_header(mut self, k: &'static str, v: &'static str) -> CannedJson {
        self.headers.insert(k, hv(v));
        self
    }

    fn response(&self) -> Response {
        let mut resp = Response::new(Body::from(self.body.clone()));
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers.clone();
        resp
    }
}

/// An SSE reply split into events, with its headers (H-sse, or H-sse-err with an error event).
#[derive(Clone)]
struct CannedSse {
    events: Arc<[Bytes]>,
    headers: HeaderMap,
}

impl CannedSse {
    fn new(events: Vec<Bytes>) -> CannedSse {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, hv(SSE_CONTENT_TYPE));
        let rid = events.first().and_then(|e| event_request_id(e));
        if let Some(v) = rid.and_then(|r| HeaderValue::from_str(&r).ok()) {
            headers.insert("x-request-id", v);
        }
        headers.insert("x-dashscope-call-gateway", hv("true"));
        let has_error = events.iter().any(|e| {
            String::from_utf8_lossy(e)
                .lines()
                .any(|l| l.trim_end() == "event:error")
        });
        if has_error {
            headers.insert("x-dashscope-finished", hv("true"));
        }
        CannedSse {
            events: events.into(),
            headers,
        }
    }

    fn fixture(name: &str) -> CannedSse {
        CannedSse::new(split_events(&fixture(name)))
    }

    fn frames(frames: &[Value]) -> CannedSse {
        CannedSse::new(
            frames
                .iter()
                .enumerate()
                .map(|(i, f)| sse_frame(i + 1, f))
                .collect(),
        )
    }

    fn response(
        &self,
        shared: &Arc<Shared>,
        delay: Duration,
        drop_after: Option<usize>,
        stall_after: Option<usize>,
    ) -> Response {
        let body = sse_body(
            Arc::clone(shared),
            Arc::clone(&self.events),
            delay,
            drop_after,
            stall_after,
        );
        let mut resp = Response::new(body);
        *resp.headers_mut() = self.headers.clone();
        resp
    }

    fn plain(&self, shared: &Arc<Shared>) -> Response {
        self.response(shared, Duration::ZERO, None, None)
    }
}

/// `request_id` of the first `data:` line of an event that has one.
fn event_request_id(event: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(event).ok()?;
    text.lines().find_map(|l| {
        let data = l.strip_prefix("data:")?;
        let v: Value = serde_json::from_str(data.strip_prefix(' ').unwrap_or(data)).ok()?;
        v.get("request_id")?.as_str().map(str::to_owned)
    })
}

fn sse_frame(id: usize, data: &Value) -> Bytes {
    Bytes::from(format!(
        "id:{id}\nevent:result\n:HTTP_STATUS/200\ndata:{data}\n\n"
    ))
}

/// Counts a stream as cancelled if dropped before being marked finished.
struct StreamGuard {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

struct SseState {
    events: Arc<[Bytes]>,
    next: usize,
    delay: Duration,
    drop_after: Option<usize>,
    stall_after: Option<usize>,
    ended: bool,
    guard: StreamGuard,
}

fn sse_body(
    shared: Arc<Shared>,
    events: Arc<[Bytes]>,
    delay: Duration,
    drop_after: Option<usize>,
    stall_after: Option<usize>,
) -> Body {
    let state = SseState {
        events,
        next: 0,
        delay,
        drop_after,
        stall_after,
        ended: false,
        guard: StreamGuard {
            shared,
            finished: false,
        },
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.ended {
            return None;
        }
        let i = st.next;
        if st.stall_after.is_some_and(|n| i >= n) {
            // Stalled upstream: the connection stays open, nothing more is written. Dropping
            // the body (client gone) counts as a cancellation.
            std::future::pending::<()>().await;
        }
        if st.drop_after.is_some_and(|n| i >= n) {
            // Let hyper flush the events already yielded before the connection is aborted.
            tokio::time::sleep(st.delay.max(Duration::from_millis(10))).await;
            st.guard.finished = true;
            st.ended = true;
            let err = io::Error::new(
                io::ErrorKind::ConnectionReset,
                "fake DashScope: connection dropped mid-stream",
            );
            return Some((Err(err), st));
        }
        if i >= st.events.len() {
            st.guard.finished = true;
            st.guard.shared.completed.fetch_add(1, Ordering::SeqCst);
            return None;
        }
        if i > 0 && !st.delay.is_zero() {
            tokio::time::sleep(st.delay).await;
        }
        st.next += 1;
        let chunk = st.events[i].clone();
        Some((Ok::<Bytes, io::Error>(chunk), st))
    });
    Body::from_stream(stream)
}

// ---------------------------------------------------------------------------------------------
// Auto mode
// ---------------------------------------------------------------------------------------------

struct Auto {
    // non-stream
    text_json: CannedJson,
    mm_json: CannedJson,
    tools_json: CannedJson,
    tool_result_json: CannedJson,
    logprobs_json: CannedJson,
    search_json: CannedJson,
    n2_json: CannedJson,
    stream20_json: CannedJson,
    // errors
    url_error_json: CannedJson,
    thinking_json: CannedJson,
    invalid_key_json: CannedJson,
    throttling_json: CannedJson,
    inspection_json: CannedJson,
    internal_json: CannedJson,
    model_not_exist_json: CannedJson,
    arrearage_json: CannedJson,
    // streams
    text_sse: CannedSse,
    mm_sse: CannedSse,
    tools_sse: CannedSse,
    tool_result_sse: CannedSse,
    reasoning_sse: CannedSse,
    reasoning_tools_sse: CannedSse,
    logprobs_sse: CannedSse,
    search_sse: CannedSse,
    midstream_error_sse: CannedSse,
    url_error_sse: CannedSse,
    n2_sse: CannedSse,
    stream20_sse: CannedSse,
}

static AUTO: LazyLock<Auto> = LazyLock::new(Auto::build);

fn parse_fixture(name: &str) -> Value {
    match serde_json::from_str(&fixture(name)) {
        Ok(v) => v,
        Err(e) => panic!("fake DashScope: fixture {name} is not JSON: {e}"),
    }
}

/// Splits `text` into `n` consecutive pieces at word boundaries (the pieces concatenate back to
/// `text`).
fn split_pieces(text: &str, n: usize) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let per = words.len().div_ceil(n.max(1)).max(1);
    words.chunks(per).map(|c| c.concat()).collect()
}

fn usage(input: u64, output: u64) -> Value {
    json!({"total_tokens": input + output, "output_tokens": output, "input_tokens": input})
}

fn text_choice(content: &str, finish: &str) -> Value {
    json!({"message": {"content": content, "role": "assistant"}, "finish_reason": finish})
}

/// Incremental text frames for `pieces` then a finish frame; `usage` cumulative; `extra_output`
/// keys (e.g. `search_info`) copied into every frame's `output`; `extra_usage` keys into every
/// `usage`.
fn incremental_frames(
    pieces: &[String],
    input_tokens: u64,
    output_tokens: u64,
    request_id: &str,
    extra_output: &serde_json::Map<String, Value>,
    extra_usage: &serde_json::Map<String, Value>,
) -> Vec<Value> {
    let n = pieces.len() as u64;
    let mut frames = Vec::new();
    let frame = |choice: Value, out_tokens: u64| {
        let mut output = serde_json::Map::new();
        output.insert("choices".into(), json!([choice]));
        output.extend(extra_output.clone());
        let mut u = usage(input_tokens, out_tokens);
        if let Value::Object(m) = &mut u {
            m.extend(extra_usage.clone());
        }
        json!({"output": output, "usage": u, "request_id": request_id})
    };
    for (i, piece) in pieces.iter().enumerate() {
        let cum = (output_tokens * (i as u64 + 1)).div_ceil(n.max(1));
        frames.push(frame(text_choice(piece, "null"), cum));
    }
    frames.push(frame(text_choice("", "stop"), output_tokens));
    frames
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_default()
}

impl Auto {
    fn build() -> Auto {
        let empty = serde_json::Map::new();

        // tool-result stream: the answer in 3 incremental frames + a finish frame.
        let tr = parse_fixture("tool-result-answer-nonstream.json");
        let mut tr_usage_extra = serde_json::Map::new();
        if let Some(d) = tr.pointer("/usage/prompt_tokens_details") {
            tr_usage_extra.insert("prompt_tokens_details".into(), d.clone());
        }
        let tool_result_sse = CannedSse::frames(&incremental_frames(
            &split_pieces(str_at(&tr, "/output/choices/0/message/content"), 3),
            u64_at(&tr, "/usage/input_tokens"),
            u64_at(&tr, "/usage/output_tokens"),
            str_at(&tr, "/request_id"),
            &empty,
            &tr_usage_extra,
        ));

        // search stream: search_info in every frame, plugins in every usage.
        let se = parse_fixture("search-nonstream.json");
        let mut se_output_extra = serde_json::Map::new();
        if let Some(s) = se.pointer("/output/search_info") {
            se_output_extra.insert("search_info".into(), s.clone());
        }
        let mut se_usage_extra = serde_json::Map::new();
        for key in ["plugins", "prompt_tokens_details"] {
            if let Some(x) = se.pointer(&format!("/usage/{key}")) {
                se_usage_extra.insert(key.into(), x.clone());
            }
        }
        let search_sse = CannedSse::frames(&incremental_frames(
            &split_pieces(str_at(&se, "/output/choices/0/message/content"), 3),
            u64_at(&se, "/usage/input_tokens"),
            u64_at(&se, "/usage/output_tokens"),
            str_at(&se, "/request_id"),
            &se_output_extra,
            &se_usage_extra,
        ));

        // logprobs stream: one token per frame with its logprobs entry, then "length".
        let lp = parse_fixture("logprobs-nonstream.json");
        let lp_rid = str_at(&lp, "/request_id");
        let lp_in = u64_at(&lp, "/usage/input_tokens");
        let entries = lp
            .pointer("/output/choices/0/logprobs/content")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut lp_frames: Vec<Value> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({
                    "output": {"choices": [{
                        "message": {"content": e.get("token").cloned().unwrap_or(json!("")), "role": "assistant"},
                        "logprobs": {"content": [e]},
                        "finish_reason": "null"
                    }]},
                    "usage": usage(lp_in, i as u64 + 1),
                    "request_id": lp_rid
                })
            })
            .collect();
        lp_frames.push(json!({
            "output": {"choices": [text_choice("", "length")]},
            "usage": usage(lp_in, entries.len() as u64),
            "request_id": lp_rid
        }));
        let logprobs_sse = CannedSse::frames(&lp_frames);

        // n = 2.
        let n2_rid = "6a1b2c3d-4e5f-9061-8273-a4b5c6d7e8f9";
        let n2_pieces: [(&[&str], &[u64]); 2] = [
            (&["Hello", " there,", " friend."], &[1, 2, 2]),
            (&["Hi!", " Nice to", " meet you."], &[2, 2, 2]),
        ];
        let n2_in = 12;
        let n2_totals: Vec<u64> = n2_pieces.iter().map(|(_, t)| t.iter().sum()).collect();
        let n2_json = CannedJson::value(
            200,
            &json!({
                "output": {"choices": n2_pieces.iter().enumerate().map(|(i, (p, _))| json!({
                    "finish_reason": "stop",
                    "index": i,
                    "message": {"role": "assistant", "content": p.concat()}
                })).collect::<Vec<_>>()},
                "usage": usage(n2_in, n2_totals.iter().sum()),
                "request_id": n2_rid
            }),
        );
        let n2_frame = |index: usize, content: &str, finish: &str, out: u64| {
            json!({
                "output": {"choices": [{
                    "message": {"content": content, "role": "assistant"},
                    "finish_reason": finish,
                    "index": index
                }]},
                "usage": usage(n2_in, out),
                "request_id": n2_rid
            })
        };
        let mut n2_frames = Vec::new();
        let mut cum = [0u64; 2];
        for step in 0..3 {
            for (index, (pieces, tokens)) in n2_pieces.iter().enumerate() {
                cum[index] += tokens[step];
                n2_frames.push(n2_frame(index, pieces[step], "null", cum[index]));
            }
        }
        for (index, total) in cum.iter().enumerate() {
            n2_frames.push(n2_frame(index, "", "stop", *total));
        }
        let n2_sse = CannedSse::frames(&n2_frames);

        // 20-event stream for the benchmark: 19 one-word frames + a finish frame.
        let words = [
            "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog",
            " while", " the", " busy", " bees", " buzz", " around", " the", " old", " oak",
            " tree.",
        ];
        let s20_rid = "20202020-aaaa-9bbb-8ccc-202020202020";
        let s20_in = 22;
        let mut s20_frames: Vec<Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                json!({
                    "output": {"choices": [text_choice(w, "null")]},
                    "usage": usage(s20_in, i as u64 + 1),
                    "request_id": s20_rid
                })
            })
            .collect();
        s20_frames.push(json!({
            "output": {"choices": [text_choice("", "stop")]},
            "usage": usage(s20_in, words.len() as u64),
            "request_id": s20_rid
        }));
        let stream20_sse = CannedSse::frames(&s20_frames);
        let stream20_json = CannedJson::value(
            200,
            &json!({
                "output": {"choices": [{
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": words.concat()}
                }]},
                "usage": usage(s20_in, words.len() as u64),
                "request_id": s20_rid
            }),
        );

        Auto {
            text_json: CannedJson::fixture(200, "text-nonstream.json"),
            mm_json: CannedJson::fixture(200, "multimodal-nonstream.json"),
            tools_json: CannedJson::fixture(200, "tool-calls-nonstream.json"),
            tool_result_json: CannedJson::fixture(200, "tool-result-answer-nonstream.json"),
            logprobs_json: CannedJson::fixture(200, "logprobs-nonstream.json"),
            search_json: CannedJson::fixture(200, "search-nonstream.json"),
            n2_json,
            stream20_json,
            url_error_json: CannedJson::fixture(400, "error-url-mismatch.json"),
            thinking_json: CannedJson::fixture(400, "error-thinking-nonstream.json"),
            invalid_key_json: CannedJson::fixture(401, "error-invalid-key.json"),
            throttling_json: CannedJson::fixture(429, "error-throttling.json")
                .with_header("retry-after", "0"),
            inspection_json: CannedJson::fixture(400, "error-data-inspection.json"),
            internal_json: CannedJson::value(
                500,
                &json!({
                    "code": "InternalError",
                    "message": "An internal error has occured, please try again later or contact service support.",
                    "request_id": "e5d4c3b2-a1f0-9e8d-7c6b-5a4f3e2d1c0b"
                }),
            ),
            model_not_exist_json: CannedJson::fixture(400, "error-model-not-exist.json"),
            arrearage_json: CannedJson::fixture(400, "error-arrearage.json"),
            text_sse: CannedSse::fixture("text-stream-incremental.sse"),
            mm_sse: CannedSse::fixture("multimodal-stream.sse"),
            tools_sse: CannedSse::fixture("tool-calls-stream.sse"),
            tool_result_sse,
            reasoning_sse: CannedSse::fixture("reasoning-stream.sse"),
            reasoning_tools_sse: CannedSse::fixture("reasoning-tool-calls-stream.sse"),
            logprobs_sse,
            search_sse,
            midstream_error_sse: CannedSse::fixture("error-in-stream.sse"),
            url_error_sse: CannedSse::fixture("error-in-stream-first-frame.sse"),
            n2_sse,
            stream20_sse,
        }
    }
}

/// The `scenario:NAME` marker in the last `user` message, if any.
fn find_scenario(body: &Value) -> Option<&str> {
    let messages = body.pointer("/input/messages")?.as_array()?;
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    let content = last_user.get("content")?;
    let marker = |text: &'_ str| -> Option<(usize, usize)> {
        let start = text.find("scenario:")? + "scenario:".len();
        let len = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(text.len() - start);
        Some((start, start + len))
    };
    match content {
        Value::String(s) => marker(s).map(|(a, b)| &s[a..b]),
        Value::Array(parts) => parts.iter().find_map(|p| {
            let s = p.get("text")?.as_str()?;
            marker(s).map(|(a, b)| &s[a..b])
        }),
        _ => None,
    }
}

fn error_value(code: &str, message: &str) -> Value {
    json!({"code": code, "message": message, "request_id": "fake"})
}

async fn auto(shared: &Arc<Shared>, ep: Endpoint, streaming: bool, body: &Value) -> Response {
    let t = &*AUTO;
    let Some(model) = body.as_object().map(|o| o.get("model")) else {
        return CannedJson::value(
            400,
            &error_value(
                "InvalidParameter",
                "Required body invalid, please check the request body format.",
            ),
        )
        .response();
    };
    let model = model.and_then(Value::as_str).unwrap_or_default();
    if model.is_empty() {
        return CannedJson::value(
            400,
            &error_value(
                "BadRequest.EmptyModel",
                "Required parameter \"model\" missing from request.",
            ),
        )
        .response();
    }

    // Endpoint binding, like the real service.
    let multimodal = ep == Endpoint::Multimodal;
    if is_multimodal_model(&model.to_ascii_lowercase()) != multimodal {
        return if streaming {
            t.url_error_sse.plain(shared)
        } else {
            t.url_error_json.response()
        };
    }

    let (default_json, default_sse) = if multimodal {
        (&t.mm_json, &t.mm_sse)
    } else {
        (&t.text_json, &t.text_sse)
    };
    let pick = |json: &CannedJson, sse: &CannedSse| {
        if streaming {
            sse.plain(shared)
        } else {
            json.response()
        }
    };

    let scenario = find_scenario(body).unwrap_or("text");
    match scenario {
        "text" | "bench" => pick(default_json, default_sse),
        "stream20" => pick(&t.stream20_json, &t.stream20_sse),
        "tools" => pick(&t.tools_json, &t.tools_sse),
        "tool-result" => pick(&t.tool_result_json, &t.tool_result_sse),
        "reasoning" => pick(&t.thinking_json, &t.reasoning_sse),
        "reasoning-tools" => pick(&t.thinking_json, &t.reasoning_tools_sse),
        "logprobs" => pick(&t.logprobs_json, &t.logprobs_sse),
        "search" => pick(&t.search_json, &t.search_sse),
        "error-401" => t.invalid_key_json.response(),
        "error-429" => t.throttling_json.response(),
        "error-400" => t.inspection_json.response(),
        "error-500" => t.internal_json.response(),
        "model-not-exist" => t.model_not_exist_json.response(),
        "arrearage" => t.arrearage_json.response(),
        "midstream-error" => pick(default_json, &t.midstream_error_sse),
        "n2" => pick(&t.n2_json, &t.n2_sse),
        "drop" => {
            if streaming {
                default_sse.response(shared, Duration::ZERO, Some(3), None)
            } else {
                default_json.response()
            }
        }
        "slow" => {
            if streaming {
                default_sse.response(shared, Duration::from_millis(200), None, None)
            } else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                default_json.response()
            }
        }
        "echo" => echo(shared, multimodal, streaming, body),
        "forced-tool" => forced_tool(shared, streaming, body),
        "call-tool" => call_tool(shared, multimodal, streaming, body),
        other => CannedJson::value(
            400,
            &error_value(
                "InvalidParameter",
                &format!("fake: unknown scenario {other}"),
            ),
        )
        .response(),
    }
}

/// Like qwen-max with a forced tool (captured: `finish_reason: "stop"` next to the call): a
/// named `tool_choice` is answered with a call to that tool, its arguments the text after
/// `tool_args:` in the last user message; any other `tool_choice` gets a plain text answer.
fn forced_tool(shared: &Arc<Shared>, streaming: bool, body: &Value) -> Response {
    let rid = "f0ced700-0000-9000-8000-f0ced700f0ce";
    let forced = body
        .pointer("/parameters/tool_choice/function/name")
        .and_then(Value::as_str);
    let last_user = body
        .pointer("/input/messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let args = last_user
        .split_once("tool_args:")
        .map_or("{}", |(_, a)| a.trim());
    let message = match forced {
        Some(name) => json!({"role": "assistant", "content": "", "tool_calls": [{
            "index": 0, "id": "call_f0ced7000000000000000001", "type": "function",
            "function": {"name": name, "arguments": args}}]}),
        None => json!({"role": "assistant", "content": "I would rather answer in words."}),
    };
    let answer = json!({
        "output": {"choices": [{"finish_reason": "stop", "message": message}]},
        "usage": usage(40, 12),
        "request_id": rid
    });
    if streaming {
        let mut first = answer.clone();
        first["output"]["choices"][0]["finish_reason"] = json!("null");
        let last = json!({
            "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": ""}}]},
            "usage": usage(40, 12),
            "request_id": rid
        });
        CannedSse::frames(&[first, last]).plain(shared)
    } else {
        CannedJson::value(200, &answer).response()
    }
}

/// The assistant content is the compact JSON of the received body.
fn echo(shared: &Arc<Shared>, multimodal: bool, streaming: bool, body: &Value) -> Response {
    let text = body.to_string();
    let rid = "ec40ec40-0000-9000-8000-ec40ec40ec40";
    let content = |s: &str| {
        if multimodal {
            if s.is_empty() {
                json!([])
            } else {
                json!([{ "text": s }])
            }
        } else {
            json!(s)
        }
    };
    let (input, output) = (10, 1);
    if streaming {
        let frame = |c: Value, finish: &str| {
            json!({
                "output": {"choices": [{"message": {"content": c, "role": "assistant"}, "finish_reason": finish}]},
                "usage": usage(input, output),
                "request_id": rid
            })
        };
        CannedSse::frames(&[frame(content(&text), "null"), frame(content(""), "stop")])
            .plain(shared)
    } else {
        CannedJson::value(
            200,
            &json!({
                "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": content(&text)}}]},
                "usage": usage(input, output),
                "request_id": rid
            }),
        )
        .response()
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings and rerank (auto mode)
// ---------------------------------------------------------------------------------------------

/// The native service's batch limit for a model (`text-embedding-v1`/`v2`: 25, others: 10).
pub fn embedding_row_limit(model: &str) -> usize {
    if model.starts_with("text-embedding-v1") || model.starts_with("text-embedding-v2") {
        25
    } else {
        10
    }
}

/// The vector size a model answers with when no `dimension` is sent.
pub fn embedding_default_dimension(model: &str) -> usize {
    if model.starts_with("text-embedding-v1") || model.starts_with("text-embedding-v2") {
        1536
    } else {
        1024
    }
}

/// The fake's deterministic vector for `text` (every value exact in float32):
/// with `cp` the text's code points, `n` their count, `s = Σ cp`, `w = Σ (i+1)·cp`:
/// `v[0] = n`, `v[1] = s mod 4096`, `v[j] = ((w + 31·j) mod 2049 − 1024) / 1024` for `j ≥ 2`.
pub fn fake_vector(text: &str, dim: usize) -> Vec<f64> {
    let (mut n, mut s, mut w) = (0u64, 0u64, 0u64);
    for (i, c) in text.chars().enumerate() {
        let cp = u64::from(u32::from(c));
        n += 1;
        s += cp;
        w += (i as u64 + 1) * cp;
    }
    (0..dim)
        .map(|j| match j {
            0 => n as f64,
            1 => (s % 4096) as f64,
            _ => (((w + 31 * j as u64) % 2049) as f64 - 1024.0) / 1024.0,
        })
        .collect()
}

/// The fake's tokens for a text: its number of code points.
pub fn fake_tokens(text: &str) -> u64 {
    text.chars().count() as u64
}

/// The `request_id` the fake answers an embedding call with: derived from its texts.
pub fn embedding_request_id(texts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in texts {
        for b in t.bytes().chain(std::iter::once(0)) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("emb-{h:016x}")
}

/// The fake's relevance score for a document: `len / (len + 1)`, `len` in code points.
pub fn fake_relevance(document: &str) -> f64 {
    let len = document.chars().count() as f64;
    len / (len + 1.0)
}

fn bad_param(message: &str) -> Response {
    CannedJson::value(400, &error_value("InvalidParameter", message)).response()
}

/// Native text embedding with the real limits: > the row limit is the real 400.
async fn auto_embedding(body: &Value) -> Response {
    let model = str_at(body, "/model");
    if model.is_empty() {
        return bad_param("Required parameter \"model\" missing from request.");
    }
    let Some(texts) = body.pointer("/input/texts").and_then(Value::as_array) else {
        return bad_param("Required body invalid, please check the request body format.");
    };
    let limit = embedding_row_limit(model);
    if texts.len() > limit {
        let field = if limit == 25 {
            "payload.input.contents"
        } else {
            "input.contents"
        };
        return CannedJson::value(
            400,
            &json!({
                "code": "InvalidParameter",
                "message": format!("<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, it should not be larger than {limit}.: {field}"),
                "request_id": "b5e0e3a8-batch-4000-8000-000000000010"
            }),
        )
        .response();
    }
    let texts: Vec<&str> = texts.iter().filter_map(Value::as_str).collect();
    if texts.is_empty() || texts.iter().any(|t| t.is_empty()) {
        return bad_param(
            "<400> InternalError.Algo.InvalidParameter: Value error, contents is empty or contains empty text",
        );
    }
    for t in &texts {
        if t.contains("scenario:error-500") {
            return AUTO.internal_json.response();
        }
        if t.contains("scenario:error-429") {
            return AUTO.throttling_json.response();
        }
        if t.contains("scenario:slow") {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let dim = match body.pointer("/parameters/dimension") {
        None => embedding_default_dimension(model),
        Some(d) => {
            let d = d.as_u64().unwrap_or(0) as usize;
            let ok: &[usize] = if model.starts_with("text-embedding-v4") {
                &[2048, 1536, 1024, 768, 512, 256, 128, 64]
            } else if model.starts_with("text-embedding-v3") {
                &[1024, 768, 512, 256, 128, 64]
            } else if model.starts_with("text-embedding-v1")
                || model.starts_with("text-embedding-v2")
            {
                &[]
            } else {
                &[d]
            };
            if !ok.contains(&d) {
                return bad_param(
                    "<400> InternalError.Algo.InvalidParameter: Value error, dimension is invalid.: parameters.dimension",
                );
            }
            d
        }
    };
    let output_type = body
        .pointer("/parameters/output_type")
        .and_then(Value::as_str)
        .unwrap_or("dense");
    let (dense, sparse) = (output_type != "sparse", output_type.contains("sparse"));
    // The benchmark asks for the same texts again and again: an answer is rendered once (the
    // vectors are deterministic), so the fake is not what limits a proxy's throughput.
    let key = format!("{model}\0{dim}\0{output_type}\0{}", texts.join("\0"));
    if let Some(hit) = lock(&EMBED_ANSWERS).get(&key) {
        return hit.response();
    }
    let answer = render_embeddings(&texts, dim, dense, sparse);
    let mut cache = lock(&EMBED_ANSWERS);
    if cache.len() >= 64 {
        cache.clear();
    }
    cache.insert(key, answer.clone());
    answer.response()
}

/// Rendered embedding answers by request (model, dimension, output type, texts); at most 64.
static EMBED_ANSWERS: LazyLock<Mutex<std::collections::HashMap<String, CannedJson>>> =
    LazyLock::new(Mutex::default);

/// The native embedding answer for `texts`.
fn render_embeddings(texts: &[&str], dim: usize, dense: bool, sparse: bool) -> CannedJson {
    // Written by hand: thousands of floats per call.
    let mut out = String::with_capacity(texts.len() * dim * 14 + 128);
    out.push_str("{\"output\":{\"embeddings\":[");
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"text_index\":");
        out.push_str(&i.to_string());
        if dense {
            out.push_str(",\"embedding\":[");
            for (j, x) in fake_vector(t, dim).into_iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(&x.to_string());
            }
            out.push(']');
        }
        if sparse {
            let n = fake_tokens(t);
            out.push_str(&format!(
                ",\"sparse_embedding\":[{{\"index\":{n},\"value\":0.5,\"token\":\"t\"}}]"
            ));
        }
        out.push('}');
    }
    let tokens: u64 = texts.iter().map(|t| fake_tokens(t)).sum();
    out.push_str(&format!(
        "]}},\"usage\":{{\"total_tokens\":{tokens}}},\"request_id\":\"{}\"}}",
        embedding_request_id(texts)
    ));
    CannedJson::new(StatusCode::OK, out)
}

/// Native (or compatible-API) text rerank: scores by document length, best first.
fn auto_rerank(body: &Value, compatible: bool) -> Response {
    let model = str_at(body, "/model");
    if model.is_empty() {
        return bad_param("Required parameter \"model\" missing from request.");
    }
    if compatible && !model.starts_with("qwen3-rerank") {
        return CannedJson::fixture(400, "error-model-not-exist.json").response();
    }
    let (query, docs, top_n, return_documents) = if compatible {
        (
            body.get("query"),
            body.get("documents"),
            body.get("top_n"),
            true,
        )
    } else {
        (
            body.pointer("/input/query"),
            body.pointer("/input/documents"),
            body.pointer("/parameters/top_n"),
            body.pointer("/parameters/return_documents")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        )
    };
    let query = query.and_then(Value::as_str).unwrap_or_default();
    let Some(docs) = docs.and_then(Value::as_array) else {
        return bad_param("Required body invalid, please check the request body format.");
    };
    let docs: Vec<&str> = docs.iter().filter_map(Value::as_str).collect();
    if query.is_empty() || docs.is_empty() {
        return bad_param(
            "<400> InternalError.Algo.InvalidParameter: query and documents must not be empty",
        );
    }
    let max = if model.starts_with("qwen3-vl-rerank") {
        100
    } else {
        500
    };
    if docs.len() > max {
        return bad_param(&format!(
            "<400> InternalError.Algo.InvalidParameter: documents size should not be larger than {max}"
        ));
    }
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by(|&a, &b| {
        fake_relevance(docs[b])
            .total_cmp(&fake_relevance(docs[a]))
            .then(a.cmp(&b))
    });
    if let Some(n) = top_n.and_then(Value::as_u64) {
        order.truncate(n as usize);
    }
    let results: Vec<Value> = order
        .iter()
        .map(|&i| {
            let mut r = json!({"index": i, "relevance_score": fake_relevance(docs[i])});
            if return_documents {
                r["document"] = json!({"text": docs[i]});
            }
            r
        })
        .collect();
    let tokens =
        fake_tokens(query) * docs.len() as u64 + docs.iter().map(|d| fake_tokens(d)).sum::<u64>();
    let id = format!(
        "rerank-{}",
        embedding_request_id(&docs).trim_start_matches("emb-")
    );
    let body = if compatible {
        json!({"id": id, "object": "list", "model": model, "results": results, "usage": {"total_tokens": tokens}})
    } else {
        json!({"output": {"results": results}, "usage": {"total_tokens": tokens}, "request_id": id})
    };
    CannedJson::value(200, &body).response()
}

// ---------------------------------------------------------------------------------------------
// Scenario `call-tool`: a scripted tool round trip for agent clients (Codex, the Agents SDK),
// which resend the same user prompt on every turn of a tool loop.
// ---------------------------------------------------------------------------------------------

/// Tool call id of every `call-tool` call.
pub const CALL_TOOL_ID: &str = "call_fa4e0c1d2b3a49f8a7c6d5e4";
/// Request id of the `call-tool` replies that call the tool.
pub const CALL_TOOL_REQUEST_ID: &str = "ca11ca11-7001-9a2b-8c3d-4e5f6a7b8c9d";
/// Request id of the `call-tool` replies that answer (each real call has its own request id).
pub const CALL_TOOL_ANSWER_REQUEST_ID: &str = "ca11ca11-7002-9a2b-8c3d-4e5f6a7b8c9d";
/// The `call-tool` answer is this prefix followed by the last tool message's content.
pub const CALL_TOOL_ANSWER_PREFIX: &str = "The tool returned: ";

/// What the `call-tool` scenario answers on one turn.
#[derive(Debug, PartialEq)]
pub enum ToolTurn {
    /// No `tool` message after the last `user` message yet: call `name` with `arguments`.
    Call { name: String, arguments: String },
    /// A `tool` message follows the last `user` message: answer with its content.
    Answer(String),
}

/// `scenario:call-tool NAME {JSON}` in the last user message: call tool NAME with the compact
/// JSON as arguments on the first turn; once a `tool` message follows that user message, answer
/// [`CALL_TOOL_ANSWER_PREFIX`] + the last tool message's content. `Err` names what is malformed.
pub fn call_tool_turn(body: &Value) -> Result<ToolTurn, String> {
    let messages = body
        .pointer("/input/messages")
        .and_then(Value::as_array)
        .ok_or("no input.messages")?;
    let is_user = |m: &Value| m.get("role").and_then(Value::as_str) == Some("user");
    let is_tool = |m: &&Value| m.get("role").and_then(Value::as_str) == Some("tool");
    let last_user = messages
        .iter()
        .rposition(is_user)
        .ok_or("no user message")?;
    if let Some(tool) = messages[last_user..].iter().rev().find(is_tool) {
        return Ok(ToolTurn::Answer(format!(
            "{CALL_TOOL_ANSWER_PREFIX}{}",
            message_text(tool)
        )));
    }
    let text = message_text(&messages[last_user]);
    let rest = text
        .split_once("scenario:call-tool")
        .map(|(_, r)| r.trim_start())
        .ok_or("no scenario:call-tool marker")?;
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    let (name, rest) = rest.split_at(name_len);
    if name.is_empty() {
        return Err("scenario:call-tool needs a tool name".into());
    }
    let args = serde_json::Deserializer::from_str(rest.trim_start())
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .filter(Value::is_object)
        .ok_or("scenario:call-tool needs a JSON object of arguments after the name")?;
    Ok(ToolTurn::Call {
        name: name.to_owned(),
        arguments: args.to_string(),
    })
}

/// The text of a native message: a string, or the `text` parts of a list, joined.
fn message_text(m: &Value) -> String {
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Splits `s` in two at the char boundary nearest its middle.
fn halves(s: &str) -> (&str, &str) {
    let mut cut = s.len() / 2;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    s.split_at(cut)
}

fn call_tool(shared: &Arc<Shared>, multimodal: bool, streaming: bool, body: &Value) -> Response {
    let turn = match call_tool_turn(body) {
        Ok(t) => t,
        Err(e) => {
            return CannedJson::value(400, &error_value("InvalidParameter", &format!("fake: {e}")))
                .response();
        }
    };
    let content = |s: &str| {
        if !multimodal {
            json!(s)
        } else if s.is_empty() {
            json!([])
        } else {
            json!([{ "text": s }])
        }
    };
    let input_tokens = 50;
    let request_id = match turn {
        ToolTurn::Call { .. } => CALL_TOOL_REQUEST_ID,
        ToolTurn::Answer(_) => CALL_TOOL_ANSWER_REQUEST_ID,
    };
    let frame = |message: Value, finish: &str, output_tokens: u64| {
        json!({
            "output": {"choices": [{"message": message, "finish_reason": finish}]},
            "usage": usage(input_tokens, output_tokens),
            "request_id": request_id
        })
    };
    let call = |id: &str, name: Option<&str>, args: &str| {
        let mut function = json!({ "arguments": args });
        if let Some(n) = name {
            function["name"] = json!(n);
        }
        json!({"index": 0, "id": id, "type": "function", "function": function})
    };
    let assistant = |text: &str, calls: Option<Value>| {
        let mut m = json!({"content": content(text), "role": "assistant"});
        if let Some(c) = calls {
            m["tool_calls"] = json!([c]);
        }
        m
    };
    match (turn, streaming) {
        (ToolTurn::Call { name, arguments }, false) => CannedJson::value(
            200,
            &frame(
                assistant("", Some(call(CALL_TOOL_ID, Some(&name), &arguments))),
                "tool_calls",
                12,
            ),
        )
        .response(),
        (ToolTurn::Call { name, arguments }, true) => {
            let (a, b) = halves(&arguments);
            CannedSse::frames(&[
                frame(
                    assistant("", Some(call(CALL_TOOL_ID, Some(&name), a))),
                    "null",
                    6,
                ),
                frame(assistant("", Some(call("", None, b))), "tool_calls", 12),
            ])
            .plain(shared)
        }
        (ToolTurn::Answer(text), false) => {
            CannedJson::value(200, &frame(assistant(&text, None), "stop", 9)).response()
        }
        (ToolTurn::Answer(text), true) => {
            let mut frames: Vec<Value> = split_pieces(&text, 3)
                .iter()
                .enumerate()
                .map(|(i, p)| frame(assistant(p, None), "null", 3 * (i as u64 + 1)))
                .collect();
            frames.push(frame(assistant("", None), "stop", 9));
            CannedSse::frames(&frames).plain(shared)
        }
    }
}
