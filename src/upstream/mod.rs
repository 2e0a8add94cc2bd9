//! The DashScope client: the only module that uses `reqwest`.
//!
//! It knows the URLs, the auth and workspace headers and the SSE switch, and it sets timeouts
//! suited to streaming: a connect timeout and a per-read idle timeout (which bounds both the
//! wait for response headers and the silence between stream bytes, keep-alive comments
//! included) — never a whole-request timeout that would cut a long generation.

pub mod sse;

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::config::{Config, Upstream};
use crate::dashscope::{Endpoint, ErrorBody};

pub use sse::Frame;

/// Largest upstream body (JSON answer or error) we read into memory.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// What went wrong talking to DashScope, before any translation.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Could not connect, or the connection broke before a response.
    Connect(String),
    /// No byte within the upstream timeout.
    Timeout,
    /// The connection broke in the middle of a body.
    Dropped(String),
    /// A non-2xx answer.
    Status {
        status: u16,
        body: Box<ErrorBody>,
        retry_after: Option<HeaderValue>,
    },
    /// A body we cannot read (not JSON, wrong content type, malformed SSE).
    Protocol(String),
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Failure::Timeout
        } else if e.is_connect() {
            Failure::Connect(describe(&e))
        } else if e.is_body() || e.is_decode() {
            Failure::Dropped(describe(&e))
        } else {
            Failure::Connect(describe(&e))
        }
    }
}

/// The error's causes, without reqwest's own top line (which repeats the URL).
fn describe(e: &reqwest::Error) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !out.iter().any(|o| o.contains(&text)) {
            out.push(text);
        }
        src = s.source();
    }
    if out.is_empty() {
        if e.is_timeout() {
            "timed out".into()
        } else {
            "request failed".into()
        }
    } else {
        out.join(": ")
    }
}

/// One call's target and payload.
pub struct Call<'a> {
    pub upstream: &'a Upstream,
    pub endpoint: Endpoint,
    pub body: Bytes,
    pub stream: bool,
    /// The client's `Authorization`, forwarded only when no server key is configured.
    pub client_auth: Option<&'a HeaderValue>,
    /// Client headers that are safe to forward (`X-DashScope-DataInspection`).
    pub passthrough: &'a [(&'static str, HeaderValue)],
}

#[derive(Clone)]
pub struct DashScopeClient {
    http: reqwest::Client,
    /// Each configured base URL's two generation URLs, parsed once (text, multimodal).
    urls: std::sync::Arc<std::collections::HashMap<String, [reqwest::Url; 2]>>,
}

fn endpoint_url(base_url: &str, endpoint: Endpoint) -> Result<reqwest::Url, Failure> {
    reqwest::Url::parse(&format!("{base_url}{}", endpoint.path()))
        .map_err(|e| Failure::Connect(format!("invalid upstream URL: {e}")))
}

impl DashScopeClient {
    pub fn new(cfg: &Config) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.upstream_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .user_agent(concat!("dashbridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut urls = std::collections::HashMap::new();
        for u in std::iter::once(&cfg.upstream).chain(cfg.upstreams.values()) {
            if let (Ok(text), Ok(mm)) = (
                endpoint_url(&u.base_url, Endpoint::Text),
                endpoint_url(&u.base_url, Endpoint::Multimodal),
            ) {
                urls.insert(u.base_url.clone(), [text, mm]);
            }
        }
        Ok(DashScopeClient {
            http,
            urls: std::sync::Arc::new(urls),
        })
    }

    /// Send one request; a non-2xx answer becomes [`Failure::Status`] with its body read.
    pub async fn send(&self, call: Call<'_>) -> Result<reqwest::Response, Failure> {
        let url = match self.urls.get(&call.upstream.base_url) {
            Some(pair) => pair[usize::from(call.endpoint == Endpoint::Multimodal)].clone(),
            None => endpoint_url(&call.upstream.base_url, call.endpoint)?,
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
        let raw = read_body(resp).await?;
        let mut body = ErrorBody::parse(&raw);
        if body.request_id.is_none() {
            body.request_id = request_id;
        }
        Err(Failure::Status {
            status: status.as_u16(),
            body: Box::new(body),
            retry_after,
        })
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

/// Read a whole (bounded) body.
pub async fn read_body(resp: reqwest::Response) -> Result<Bytes, Failure> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_UPSTREAM_BODY as u64)
    {
        return Err(Failure::Protocol("upstream body too large".into()));
    }
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| match Failure::from(e) {
            Failure::Connect(why) => Failure::Dropped(why),
            other => other,
        })?;
        if buf.len() + chunk.len() > MAX_UPSTREAM_BODY {
            return Err(Failure::Protocol("upstream body too large".into()));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// The response body as SSE frames. Transport errors mid-body are [`Failure::Dropped`] or
/// [`Failure::Timeout`].
pub fn frames(resp: reqwest::Response) -> impl Stream<Item = Result<Frame, Failure>> + Send {
    sse::frames(resp.bytes_stream().map(|r| {
        r.map_err(|e| match Failure::from(e) {
            Failure::Connect(why) => Failure::Dropped(why),
            other => other,
        })
    }))
}
