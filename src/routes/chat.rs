//! `POST /v1/chat/completions`: the one place where the phases meet.
//!
//! read → parse → validate → resolve the model → translate → open the upstream call (retries,
//! endpoint fallback, stream-only fallback, first frame checked) → respond: one JSON body, an
//! aggregated stream, or an SSE stream translated frame by frame.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use super::auth::Authorized;
use super::limits::UsageSink;
use crate::config::{ModelEntry, Upstream};
use crate::dashscope::{ErrorBody, GenerationResponse};
use crate::error::ProxyError;
use crate::metrics::{self, InflightStream};
use crate::openai;
use crate::server::AppState;
use crate::shutdown::Drain;
use crate::translate::aggregate::Aggregator;
use crate::translate::error::{Mapped, classify};
use crate::translate::request::{self as treq, Ctx, Translated};
use crate::translate::response::{self as tresp, Meta};
use crate::translate::stream::StreamTranslator;
use crate::upstream::{self, Call, Failure, Frame};

type Frames = Pin<Box<dyn Stream<Item = Result<Frame, Failure>> + Send>>;

/// Client headers that are safe to forward upstream; nothing else from the client is.
const PASSTHROUGH: &[&str] = &["x-dashscope-datainspection"];

pub async fn chat_completions(
    auth: Authorized,
    State(state): State<AppState>,
    usage: Option<Extension<UsageSink>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut info = RequestInfo {
        usage: usage.map(|Extension(u)| u),
        ..RequestInfo::default()
    };
    match handle(auth, &state, &headers, body, &mut info).await {
        Ok(resp) => {
            metrics::record_request(
                "chat",
                &info.model,
                info.endpoint,
                resp.status().as_u16(),
                "",
            );
            resp
        }
        Err(e) => {
            let code = e.body().error.code.unwrap_or_default();
            metrics::record_request(
                "chat",
                &info.model,
                info.endpoint,
                e.status().as_u16(),
                &code,
            );
            // A client error's message can quote the request (serde echoes bad values): log
            // its code and parameter only, unless content logging is on.
            match &e {
                ProxyError::Client { param, .. } if !state.cfg.log_content => tracing::warn!(
                    status = e.status().as_u16(), code = %code, param = ?param, kind = e.label(),
                    "request failed"
                ),
                _ => {
                    tracing::warn!(status = e.status().as_u16(), error = %e, kind = e.label(), "request failed")
                }
            }
            // DashScope's request id, also when the call failed upstream.
            let request_id = info.request_id.or_else(|| match &e {
                ProxyError::Upstream { mapped, .. } => mapped.request_id.clone(),
                _ => None,
            });
            if let Some(id) = &request_id {
                tracing::Span::current().record("upstream_request_id", id.as_str());
            }
            let mut resp = e.into_response();
            if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                resp.headers_mut().insert("x-request-id", id);
            }
            resp
        }
    }
}

/// What the metrics and the error path need to know about a request, filled in as we go.
#[derive(Default)]
struct RequestInfo {
    model: String,
    endpoint: &'static str,
    request_id: Option<String>,
    /// Where the tokens a call used are counted against the key's `tpm`.
    usage: Option<UsageSink>,
}

async fn handle(
    auth: Authorized,
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    info: &mut RequestInfo,
) -> Result<Response, ProxyError> {
    info.endpoint = "none";
    let permit = state
        .limit
        .clone()
        .try_acquire_owned()
        .map_err(|_| ProxyError::Overloaded)?;
    check_content_type(headers)?;
    let bytes = read_body(
        headers,
        body,
        state.cfg.max_body_bytes,
        state.cfg.request_read_timeout,
    )
    .await?;
    let req = parse(&bytes)?;
    drop(bytes);
    treq::validate(&req)?;

    let client_model = req.model.clone().unwrap_or_default();
    info.model.clone_from(&client_model);
    let cfg = &state.cfg;
    let entry = cfg.models.get(&client_model);
    let upstream_model = entry
        .and_then(|e| e.target.clone())
        .unwrap_or_else(|| client_model.clone());
    let table_endpoint = state
        .learned
        .endpoint(&upstream_model)
        .unwrap_or_else(|| cfg.endpoint_for(&upstream_model, entry));
    let upstream = cfg.upstream_for(entry);
    if upstream.api_key.is_none() && auth.0.is_none() {
        return Err(ProxyError::Client {
            status: StatusCode::UNAUTHORIZED,
            message: "no API key: send `Authorization: Bearer <DashScope key>` or start the gateway with DASHSCOPE_API_KEY".into(),
            param: None,
            code: "missing_api_key".into(),
        });
    }

    let empty = serde_json::Map::new();
    let ctx = Ctx {
        upstream_model: &upstream_model,
        endpoint: table_endpoint,
        defaults: entry.map_or(&empty, |e| &e.defaults),
        overrides: entry.map_or(&empty, |e| &e.overrides),
        preserve_thinking: entry.is_some_and(|e| e.preserve_thinking),
        native_reasoning_effort: entry.is_some_and(|e| e.native_reasoning_effort),
        budgets: &cfg.budgets,
        unknown: cfg.unknown_fields,
        unsupported: cfg.unsupported_fields,
    };
    let mut translated = treq::to_dashscope(req, &ctx)?;
    for note in &translated.notes.0 {
        tracing::warn!(model = %client_model, note = %note, "request adjusted");
    }
    let span = tracing::Span::current();
    span.record("model", client_model.as_str());

    let upstream_stream = translated.stream
        || translated.thinking
        || cfg.is_stream_only(&upstream_model, entry)
        || state.learned.is_stream_only(&upstream_model);
    let passthrough: Vec<(&'static str, HeaderValue)> = PASSTHROUGH
        .iter()
        .filter_map(|name| headers.get(*name).map(|v| (*name, v.clone())))
        .collect();
    let call = CallPlan {
        state,
        upstream,
        entry,
        model: &upstream_model,
        client_auth: auth.0.as_ref(),
        passthrough: &passthrough,
    };
    let started = Instant::now();
    let opened = call.open(&mut translated, upstream_stream).await;
    info.endpoint = translated.endpoint.label();
    span.record("endpoint", info.endpoint);
    let opened = opened?;
    metrics::record_upstream_latency(info.endpoint, started.elapsed());

    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Without a DashScope request id, the gateway's own (set by the request-id middleware).
    let fallback_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_owned();
    let warning = (!translated.notes.is_empty())
        .then(|| HeaderValue::from_str(&translated.notes.header_value()).ok())
        .flatten();

    let (resp, request_id) = match opened {
        Opened::Json { resp, request_id } => {
            let request_id = resp.request_id.clone().or(request_id);
            let meta = Meta {
                id: tresp::completion_id(request_id.as_deref(), &fallback_id),
                created,
                model: client_model.clone(),
            };
            let completion = tresp::to_openai(resp, &meta);
            if let Some(u) = &completion.usage {
                metrics::record_tokens(&client_model, u.prompt_tokens, u.completion_tokens);
                count_usage(info.usage.as_ref(), u.prompt_tokens, u.completion_tokens);
            }
            (json_response(&completion, cfg.log_content), request_id)
        }
        Opened::Stream {
            first,
            frames,
            request_id,
        } => {
            let request_id = first.request_id.clone().or(request_id);
            let meta = Meta {
                id: tresp::completion_id(request_id.as_deref(), &fallback_id),
                created,
                model: client_model.clone(),
            };
            let translator = StreamTranslator::new(meta, translated.include_usage);
            if translated.stream {
                let pump = Pump {
                    translator,
                    first: Some(first),
                    frames,
                    queue: VecDeque::new(),
                    done: false,
                    drain: state.drain.clone(),
                    model: client_model.clone(),
                    log_content: cfg.log_content,
                    endpoint: info.endpoint,
                    started,
                    first_token_seen: false,
                    usage: info.usage.take(),
                    _permit: permit,
                    _inflight: InflightStream::start(),
                };
                (sse_response(pump), request_id)
            } else {
                let completion = aggregate(translator, first, frames).await?;
                if let Some(u) = &completion.usage {
                    metrics::record_tokens(&client_model, u.prompt_tokens, u.completion_tokens);
                    count_usage(info.usage.as_ref(), u.prompt_tokens, u.completion_tokens);
                }
                (json_response(&completion, cfg.log_content), request_id)
            }
        }
    };
    let mut resp = resp;
    info.request_id.clone_from(&request_id);
    if let Some(id) = request_id
        .as_deref()
        .and_then(|id| HeaderValue::from_str(id).ok())
    {
        span.record("upstream_request_id", request_id.as_deref().unwrap_or(""));
        resp.headers_mut().insert("x-request-id", id);
    }
    if let Some(w) = warning {
        resp.headers_mut().insert("x-dashbridge-warning", w);
    }
    Ok(resp)
}

/// Count a call's tokens against the key's `tpm` (when the key has one).
fn count_usage(sink: Option<&UsageSink>, prompt: u64, completion: u64) {
    if let Some(s) = sink {
        s.add(prompt.saturating_add(completion));
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ProxyError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ProxyError::Client {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!("Content-Type must be application/json, got '{essence}'"),
            param: None,
            code: "unsupported_media_type".into(),
        })
    }
}

fn too_large(limit: usize) -> ProxyError {
    ProxyError::Client {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("request body is larger than the gateway's limit of {limit} bytes"),
        param: None,
        code: "request_too_large".into(),
    }
}

fn read_timed_out(after: Duration) -> ProxyError {
    ProxyError::Client {
        status: StatusCode::REQUEST_TIMEOUT,
        message: format!(
            "the request body was not received within {}s",
            after.as_secs()
        ),
        param: None,
        code: "request_timeout".into(),
    }
}

/// Read the whole body: bounded in size, and in time as a whole (the body timeout layer only
/// bounds the silence between chunks, so a trickling client could otherwise hold a slot).
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, ProxyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| read_timed_out(deadline))?;
    read.map_err(|e| {
        let text = format!("{e}");
        let mut src: Option<&dyn std::error::Error> = Some(&e);
        let mut is_limit = false;
        let mut is_timeout = false;
        while let Some(s) = src {
            if s.is::<http_body_util::LengthLimitError>() {
                is_limit = true;
            }
            if s.is::<tower_http::timeout::TimeoutError>() {
                is_timeout = true;
            }
            src = s.source();
        }
        if is_limit {
            too_large(limit)
        } else if is_timeout {
            read_timed_out(deadline)
        } else {
            ProxyError::Client {
                status: StatusCode::BAD_REQUEST,
                message: format!("could not read the request body: {text}"),
                param: None,
                code: "body_read_error".into(),
            }
        }
    })
}

fn parse(bytes: &[u8]) -> Result<openai::ChatCompletionRequest, ProxyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ProxyError::bad_request(
            "request body is empty; expected a JSON chat completion request",
            None,
            "invalid_json",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<openai::ChatCompletionRequest, _> =
        serde_path_to_error::deserialize(&mut de);
    let req = match parsed {
        Ok(r) => r,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(if inner.is_syntax() || inner.is_eof() {
                ProxyError::bad_request(
                    format!("request body is not valid JSON: {inner}"),
                    None,
                    "invalid_json",
                )
            } else {
                let param = (path != ".").then_some(path.as_str());
                let at = param.map(|p| format!(" at '{p}'")).unwrap_or_default();
                ProxyError::bad_request(
                    format!("invalid request{at}: {inner}"),
                    param,
                    "invalid_type",
                )
            });
        }
    };
    de.end().map_err(|e| {
        ProxyError::bad_request(
            format!("request body is not valid JSON: {e}"),
            None,
            "invalid_json",
        )
    })?;
    Ok(req)
}

fn json_response(completion: &openai::ChatCompletion, log_content: bool) -> Response {
    match serde_json::to_vec(completion) {
        Ok(body) => {
            if log_content {
                tracing::info!(completion = %String::from_utf8_lossy(&body), "content");
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Err(e) => ProxyError::Internal(format!("serializing a completion: {e}")).into_response(),
    }
}

// ---- the upstream call ------------------------------------------------------------------------

enum Opened {
    Json {
        resp: GenerationResponse,
        request_id: Option<String>,
    },
    Stream {
        first: GenerationResponse,
        frames: Frames,
        request_id: Option<String>,
    },
}

/// What to do after an upstream error that reached us before anything reached the client.
enum Next {
    SwitchEndpoint,
    SwitchToStream,
    Retry(Duration),
    Fail(ProxyError),
}

struct CallPlan<'a> {
    state: &'a AppState,
    upstream: &'a Upstream,
    entry: Option<&'a ModelEntry>,
    model: &'a str,
    client_auth: Option<&'a HeaderValue>,
    passthrough: &'a [(&'static str, HeaderValue)],
}

impl CallPlan<'_> {
    /// Call DashScope until there is something to forward: a JSON answer, or a stream whose
    /// first frame is not an error. Retries connect errors, 429 and 5xx with backoff; switches
    /// endpoint once on "url error"; switches to streaming once when the model refuses a
    /// non-stream call.
    async fn open(&self, tr: &mut Translated, mut stream: bool) -> Result<Opened, ProxyError> {
        let mut attempt: u32 = 0;
        let mut switched_endpoint = false;
        let mut switched_stream = false;
        loop {
            treq::set_upstream_stream(&mut tr.body, stream);
            let body = serde_json::to_vec(&tr.body)
                .map_err(|e| ProxyError::Internal(format!("serializing the request: {e}")))?;
            if self.state.cfg.log_content {
                tracing::info!(upstream_request = %String::from_utf8_lossy(&body), "content");
            }
            let result = self
                .state
                .client
                .send(Call {
                    upstream: self.upstream,
                    endpoint: tr.endpoint,
                    body: Bytes::from(body),
                    stream,
                    client_auth: self.client_auth,
                    passthrough: self.passthrough,
                })
                .await;
            let failure = match result {
                Ok(resp) => match self.first_answer(resp, stream).await {
                    Ok(opened) => return Ok(opened),
                    Err(f) => f,
                },
                Err(f) => f,
            };
            let next = self.decide(
                failure,
                attempt,
                switched_endpoint,
                switched_stream || stream,
            );
            match next {
                Next::SwitchEndpoint => {
                    switched_endpoint = true;
                    let other = tr.endpoint.other();
                    tracing::warn!(model = %self.model, from = tr.endpoint.label(), to = other.label(),
                        "upstream says the model lives on the other endpoint; retrying there");
                    tr.endpoint = other;
                    treq::shape_for_endpoint(&mut tr.body, other);
                    if self.entry.and_then(|e| e.endpoint).is_none() {
                        self.state.learned.set_endpoint(self.model, other);
                    }
                    metrics::record_endpoint_fallback(self.model);
                }
                Next::SwitchToStream => {
                    switched_stream = true;
                    stream = true;
                    tracing::info!(model = %self.model, "model refuses non-stream calls; streaming and aggregating");
                    self.state.learned.set_stream_only(self.model);
                }
                Next::Retry(delay) => {
                    attempt += 1;
                    tracing::info!(
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        "retrying upstream"
                    );
                    tokio::time::sleep(delay).await;
                }
                Next::Fail(e) => return Err(e),
            }
        }
    }

    /// Read enough of a 2xx answer to know it is not an error.
    async fn first_answer(&self, resp: reqwest::Response, stream: bool) -> Result<Opened, Failure> {
        let header_id = upstream::header_request_id(resp.headers());
        if stream && upstream::is_event_stream(&resp) {
            let mut frames: Frames = Box::pin(upstream::frames(resp));
            let first = match frames.next().await {
                Some(Ok(f)) => f,
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(Failure::Protocol(
                        "the stream ended before its first frame".into(),
                    ));
                }
            };
            let first = parse_frame(first)?;
            return Ok(Opened::Stream {
                first,
                frames,
                request_id: header_id,
            });
        }
        // A JSON body: the answer to a non-stream call, or an error (or a stray JSON answer
        // to a stream call, which we accept as a one-frame stream).
        let is_json = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        if !is_json {
            let ct = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            return Err(Failure::Protocol(format!("unexpected content type '{ct}'")));
        }
        let raw = upstream::read_body(resp).await?;
        let parsed = parse_payload(&raw)?;
        if stream {
            let frames: Frames = Box::pin(futures_util::stream::empty());
            Ok(Opened::Stream {
                first: parsed,
                frames,
                request_id: header_id,
            })
        } else {
            Ok(Opened::Json {
                resp: parsed,
                request_id: header_id,
            })
        }
    }

    fn decide(
        &self,
        failure: Failure,
        attempt: u32,
        switched_endpoint: bool,
        streaming: bool,
    ) -> Next {
        let cfg = &self.state.cfg;
        let can_retry = attempt < cfg.retries;
        let backoff = || {
            let base = cfg.retry_base.as_millis() as u64;
            let exp = base.saturating_mul(1u64 << attempt.min(16));
            let jitter = fastrand::u64(0..=exp / 2 + 1);
            Duration::from_millis(exp / 2 + jitter)
        };
        match failure {
            Failure::Connect(why) => {
                if can_retry {
                    metrics::record_retry("connect");
                    Next::Retry(backoff())
                } else {
                    Next::Fail(ProxyError::Unreachable(why))
                }
            }
            Failure::Timeout => Next::Fail(ProxyError::Timeout),
            Failure::Dropped(why) => {
                if can_retry {
                    metrics::record_retry("dropped");
                    Next::Retry(backoff())
                } else {
                    Next::Fail(ProxyError::Unreachable(why))
                }
            }
            Failure::Protocol(why) => Next::Fail(ProxyError::BadUpstream(why)),
            Failure::Status {
                status,
                body,
                retry_after,
            } => self.decide_mapped(
                classify(Some(status), &body),
                retry_after,
                can_retry,
                switched_endpoint,
                streaming,
                backoff(),
            ),
        }
    }

    fn decide_mapped(
        &self,
        mapped: Mapped,
        retry_after: Option<HeaderValue>,
        can_retry: bool,
        switched_endpoint: bool,
        streaming: bool,
        backoff: Duration,
    ) -> Next {
        if mapped.wrong_endpoint && !switched_endpoint {
            return Next::SwitchEndpoint;
        }
        if mapped.needs_stream && !streaming {
            return Next::SwitchToStream;
        }
        if mapped.retryable && can_retry {
            let wait = retry_after
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            match wait {
                Some(w) if w > self.state.cfg.retry_after_cap => {}
                Some(w) => {
                    metrics::record_retry(if mapped.status == 429 {
                        "throttled"
                    } else {
                        "server_error"
                    });
                    return Next::Retry(w);
                }
                None => {
                    metrics::record_retry(if mapped.status == 429 {
                        "throttled"
                    } else {
                        "server_error"
                    });
                    return Next::Retry(backoff);
                }
            }
        }
        Next::Fail(ProxyError::Upstream {
            mapped: Box::new(mapped),
            retry_after,
        })
    }
}

/// A frame's JSON payload, or the error it carries (`event:error`, or a `code`).
fn parse_frame(frame: Frame) -> Result<GenerationResponse, Failure> {
    if frame.is_error_event() {
        return Err(in_band_failure(ErrorBody::parse(frame.data.as_bytes())));
    }
    parse_payload(frame.data.as_bytes())
}

fn parse_payload(raw: &[u8]) -> Result<GenerationResponse, Failure> {
    let parsed = serde_json::from_slice::<GenerationResponse>(raw).or_else(|e| {
        // A payload split over several `data:` lines arrives joined with '\n'; if that broke
        // a JSON string, try the pieces concatenated as they were sent.
        if raw.contains(&b'\n') {
            let joined: Vec<u8> = raw.iter().copied().filter(|b| *b != b'\n').collect();
            serde_json::from_slice::<GenerationResponse>(&joined)
        } else {
            Err(e)
        }
    });
    match parsed {
        Ok(r) if r.code.as_deref().is_some_and(|c| !c.is_empty()) => {
            Err(in_band_failure(ErrorBody {
                code: r.code,
                message: r.message,
                request_id: r.request_id,
                ..ErrorBody::default()
            }))
        }
        Ok(r) => Ok(r),
        Err(e) => Err(Failure::Protocol(format!(
            "upstream sent invalid JSON: {e}"
        ))),
    }
}

/// An error inside a 200: carried as a `Status` failure without a real status.
fn in_band_failure(body: ErrorBody) -> Failure {
    Failure::Status {
        status: 0,
        body: Box::new(body),
        retry_after: None,
    }
}

// ---- responding -------------------------------------------------------------------------------

/// Drain an upstream stream into one completion (stream-only models, non-stream clients).
async fn aggregate(
    mut translator: StreamTranslator,
    first: GenerationResponse,
    mut frames: Frames,
) -> Result<openai::ChatCompletion, ProxyError> {
    let mut acc = Aggregator::default();
    if let Some(body) = translator.on_frame(first) {
        acc.push(body);
    }
    while let Some(frame) = frames.next().await {
        let frame = frame.and_then(parse_frame).map_err(failure_to_error)?;
        if let Some(body) = translator.on_frame(frame) {
            acc.push(body);
        }
    }
    if translator.finish().is_err() {
        return Err(ProxyError::BadUpstream(
            "the upstream stream ended before the model finished".into(),
        ));
    }
    let usage = translator.final_usage();
    Ok(acc.finish(translator.meta(), usage))
}

fn failure_to_error(f: Failure) -> ProxyError {
    match f {
        Failure::Connect(why) => ProxyError::Unreachable(why),
        Failure::Dropped(why) => ProxyError::BadUpstream(format!("connection dropped: {why}")),
        Failure::Timeout => ProxyError::Timeout,
        Failure::Protocol(why) => ProxyError::BadUpstream(why),
        Failure::Status {
            status,
            body,
            retry_after,
        } => ProxyError::Upstream {
            mapped: Box::new(classify(Some(status), &body)),
            retry_after,
        },
    }
}

/// The SSE pump: upstream frames in, OpenAI chunks out, one at a time. It owns the upstream
/// response, so a client that goes away drops it and the upstream request is cancelled.
struct Pump {
    translator: StreamTranslator,
    first: Option<GenerationResponse>,
    frames: Frames,
    queue: VecDeque<Event>,
    done: bool,
    drain: Drain,
    model: String,
    log_content: bool,
    endpoint: &'static str,
    started: Instant,
    first_token_seen: bool,
    usage: Option<UsageSink>,
    _permit: OwnedSemaphorePermit,
    _inflight: InflightStream,
}

impl Pump {
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(ev);
            }
            if self.done {
                return None;
            }
            let next = match self.first.take() {
                Some(first) => Some(Ok(first)),
                None => {
                    let polled = tokio::select! {
                        biased;
                        f = self.frames.next() => Some(f),
                        () = self.drain.expired() => None,
                    };
                    match polled {
                        Some(f) => f.map(|r| r.and_then(parse_frame)),
                        None => {
                            self.fail(ProxyError::ShuttingDown);
                            continue;
                        }
                    }
                }
            };
            match next {
                Some(Ok(frame)) => {
                    if let Some(body) = self.translator.on_frame(frame) {
                        if !self.first_token_seen {
                            self.first_token_seen = true;
                            metrics::record_ttft(self.endpoint, self.started.elapsed());
                        }
                        let data = self.translator.render(&body);
                        if self.log_content {
                            tracing::info!(chunk = %data, "content");
                        }
                        self.queue.push_back(Event::default().data(data));
                    }
                }
                Some(Err(f)) => {
                    let e = match f {
                        Failure::Timeout => ProxyError::BadUpstream(
                            "the upstream stream stalled (no data within the upstream timeout)"
                                .into(),
                        ),
                        Failure::Dropped(why) | Failure::Connect(why) => ProxyError::BadUpstream(
                            format!("the upstream connection dropped mid-stream: {why}"),
                        ),
                        other => failure_to_error(other),
                    };
                    self.fail(e);
                }
                None => {
                    match self.translator.finish() {
                        Ok(usage_chunk) => {
                            if let Some(body) = usage_chunk {
                                self.queue.push_back(
                                    Event::default().data(self.translator.render(&body)),
                                );
                            }
                            self.queue.push_back(Event::default().data("[DONE]"));
                            if let Some(u) = self.translator.final_usage() {
                                metrics::record_tokens(
                                    &self.model,
                                    u.prompt_tokens,
                                    u.completion_tokens,
                                );
                                count_usage(
                                    self.usage.as_ref(),
                                    u.prompt_tokens,
                                    u.completion_tokens,
                                );
                            }
                        }
                        Err(_) => self.fail(ProxyError::BadUpstream(
                            "the upstream stream ended before the model finished".into(),
                        )),
                    }
                    self.done = true;
                }
            }
        }
    }

    /// One OpenAI-shaped error event, then the stream ends (no `[DONE]`: a client must see
    /// a failure, not a silent truncation).
    fn fail(&mut self, e: ProxyError) {
        tracing::warn!(error = %e, "stream ended with an error");
        let body = serde_json::to_string(&e.body()).unwrap_or_default();
        self.queue.push_back(Event::default().data(body));
        self.done = true;
    }
}

fn sse_response(pump: Pump) -> Response {
    let stream = futures_util::stream::unfold(pump, |mut pump| async move {
        pump.next_event()
            .await
            .map(|ev| (Ok::<Event, Infallible>(ev), pump))
    });
    let mut resp = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
