//! The DashScope client: the only module that uses `reqwest`.
//!
//! It knows the URLs, the auth and workspace headers and the SSE switch, and it sets timeouts
//! suited to streaming: a connect timeout and a per-read idle timeout (which bounds both the
//! wait for response headers and the silence between stream bytes, keep-alive comments
//! included) — never a whole-request timeout that would cut a long generation.
//!
//! - [`call`]: one call with its retry rule, endpoint/stream switches and first-frame check
//!   ([`open`]), generic over the answer type ([`Answer`]).
//! - [`failure`]: [`Failure`] `{ phase, kind }` and the one mapping to `ProxyError`.
//! - [`sse`]: bytes → frames.

pub mod call;
pub mod failure;
pub mod sse;

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::config::{Config, Upstream};
use crate::dashscope::{Endpoint, ErrorBody};

pub use call::{Answer, Frames, Opened, Plan, Sent, open};
pub use failure::{Failure, Kind, Phase};
pub use sse::Frame;

/// Largest upstream body (JSON answer or error) we read into memory.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// Where a call goes: one of the two generation paths (which a call may switch between), or
/// another service path (embeddings, rerank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Generation(Endpoint),
    Path(&'static str),
}

impl Target {
    pub const fn path(self) -> &'static str {
        match self {
            Target::Generation(e) => e.path(),
            Target::Path(p) => p,
        }
    }

    /// A low-cardinality label for metrics and logs.
    pub const fn label(self) -> &'static str {
        match self {
            Target::Generation(e) => e.label(),
            Target::Path(_) => "other",
        }
    }
}

/// One request's target and payload.
pub struct Call<'a> {
    pub upstream: &'a Upstream,
    pub target: Target,
    pub body: Bytes,
    pub stream: bool,
    /// The client's `Authorization`, forwarded only when no server key is configured.
    pub client_auth: Option<&'a HeaderValue>,
    /// Client headers that are safe to forward (`X-DashScope-DataInspection`).
    pub passthrough: &'a [(&'static str, HeaderValue)],
}

/// TLS (to DashScope, and to Redis with `rediss://`) uses rustls with *ring*: one provider for the
/// whole process, installed before the first client is built (a second install is a no-op).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Clone)]
pub struct DashScopeClient {
    http: reqwest::Client,
    /// Each configured base URL's two generation URLs, parsed once (text, multimodal).
    urls: std::sync::Arc<std::collections::HashMap<String, [reqwest::Url; 2]>>,
}

fn endpoint_url(base_url: &str, path: &str) -> Result<reqwest::Url, Failure> {
    reqwest::Url::parse(&format!("{base_url}{path}")).map_err(|e| {
        Failure::new(
            Phase::Connect,
            Kind::Transport(format!("invalid upstream URL: {e}")),
        )
    })
}

impl DashScopeClient {
    pub fn new(cfg: &Config) -> Result<Self, reqwest::Error> {
        install_tls_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.upstream_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .user_agent(concat!("dashbridge/", env!("CARGO_PKG_VERSION")));
        if cfg.upstream_http == crate::config::UpstreamHttp::Http1 {
            builder = builder.http1_only();
        }
        if let Some(ca) = &cfg.upstream_ca {
            // Added to the system's roots (not instead of them).
            let certs = ca
                .certs
                .iter()
                .map(|der| reqwest::Certificate::from_der(der))
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build()?;
        let mut urls = std::collections::HashMap::new();
        for u in std::iter::once(&cfg.upstream).chain(cfg.upstreams.values()) {
            if let (Ok(text), Ok(mm)) = (
                endpoint_url(&u.base_url, Endpoint::Text.path()),
                endpoint_url(&u.base_url, Endpoint::Multimodal.path()),
            ) {
                urls.insert(u.base_url.clone(), [text, mm]);
            }
        }
        Ok(DashScopeClient {
            http,
            urls: std::sync::Arc::new(urls),
        })
    }

    /// Send one request; a non-2xx answer becomes a [`Kind::Status`] failure with its body read.
    pub async fn send(&self, call: Call<'_>) -> Result<reqwest::Response, Failure> {
        let url = match (call.target, self.urls.get(&call.upstream.base_url)) {
            (Target::Generation(e), Some(pair)) => {
                pair[usize::from(e == Endpoint::Multimodal)].clone()
            }
            (target, _) => endpoint_url(&call.upstream.base_url, target.path())?,
        };
        let mut req = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(call.body);
        req = match (&call.upstream.api_key, call.client_auth) {
            (Some(key), _) => req.bearer_auth(key.expose()),
            (None, Some(client)) => req.header(header::AUTHORIZATION, client.clone()),
            (None, None) => req,
        };
        if let Some(ws) = &call.upstream.workspace {
            req = req.header("X-DashScope-WorkSpace", ws.as_str());
        }
        if call.stream {
            req = req
                .header("X-DashScope-SSE", "enable")
                .header(header::ACCEPT, "text/event-stream");
        } else {
            req = req.header(header::ACCEPT, "application/json");
        }
        for (name, value) in call.passthrough {
            req = req.header(*name, value.clone());
        }
        let resp = req.send().await.map_err(Failure::from)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
        let request_id = header_request_id(resp.headers());
        let sse = is_event_stream(&resp);
        let raw = read_body(resp).await?;
        let mut body = if sse || looks_like_sse(&raw) {
            sse_error_body(&raw)
        } else {
            ErrorBody::parse(&raw)
        };
        if body.request_id.is_none() {
            body.request_id = request_id;
        }
        Err(Failure::new(
            Phase::Body,
            Kind::Status {
                status: status.as_u16(),
                body: Box::new(body),
                retry_after,
            },
        ))
    }
}

/// DashScope's `x-request-id` response header.
pub fn header_request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Is this response an SSE stream?
pub fn is_event_stream(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"))
}

/// Does a body start like an SSE stream (some error answers are sent as one)?
fn looks_like_sse(raw: &[u8]) -> bool {
    let start = raw.trim_ascii_start();
    [b"id:".as_slice(), b"event:", b"data:", b":HTTP_STATUS"]
        .iter()
        .any(|p| start.starts_with(p))
}

/// The error in an SSE-shaped error answer: the `data` of its first event that has one.
fn sse_error_body(raw: &[u8]) -> ErrorBody {
    let text = String::from_utf8_lossy(raw);
    let mut data: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() && !data.is_empty() {
            break;
        }
        if let Some(d) = line.strip_prefix("data:") {
            data.push(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    if data.is_empty() {
        return ErrorBody::parse(raw);
    }
    ErrorBody::parse(data.join("\n").as_bytes())
}

/// Read a whole (bounded) body: a body that arrives in one piece is kept as it is; pieces are
/// gathered into one buffer sized by `Content-Length` when the upstream sends it.
pub async fn read_body(resp: reqwest::Response) -> Result<Bytes, Failure> {
    let declared = resp.content_length().unwrap_or(0);
    if declared > MAX_UPSTREAM_BODY as u64 {
        return Err(Failure::protocol("upstream body too large"));
    }
    let mut stream = resp.bytes_stream();
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Failure::body)?;
        let held = first.as_ref().map_or(buf.len(), Bytes::len);
        if held + chunk.len() > MAX_UPSTREAM_BODY {
            return Err(Failure::protocol("upstream body too large"));
        }
        if let Some(f) = first.take() {
            buf.reserve_exact((declared as usize).max(f.len() + chunk.len()));
            buf.extend_from_slice(&f);
            buf.extend_from_slice(&chunk);
        } else if buf.is_empty() {
            first = Some(chunk);
        } else {
            buf.extend_from_slice(&chunk);
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(buf)))
}

/// The response body as SSE frames. Transport errors mid-body are [`Phase::Body`] failures.
pub fn frames(resp: reqwest::Response) -> impl Stream<Item = Result<Frame, Failure>> + Send {
    sse::frames(resp.bytes_stream().map(|r| r.map_err(Failure::body)))
}
