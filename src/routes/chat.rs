//! `POST /v1/chat/completions`: the one place where the phases meet.
//!
//! extract → resolve the model → translate → open the upstream call (retries, endpoint and
//! stream switches, first frame checked) → respond: one JSON body, an aggregated stream, or an
//! SSE stream translated frame by frame.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::auth::Authorized;
use super::extract::{OpenAiJson, Slot};
use super::limits::UsageSink;
use super::observe::Observed;
use super::sse::{self, Driver, Rendered};
use crate::dashscope::{Endpoint, GenerationRequest, GenerationResponse};
use crate::error::ProxyError;
use crate::metrics;
use crate::openai;
use crate::routing::{self, Route};
use crate::state::AppState;
use crate::translate::aggregate::Aggregator;
use crate::translate::request::{self as treq, Ctx, Translated};
use crate::translate::response::{self as tresp, Meta};
use crate::translate::stream::{ChunkBody, StreamTranslator};
use crate::upstream::{self, Failure, Frames, Kind, Opened, Target};

/// Client headers that are safe to forward upstream; nothing else from the client is.
const PASSTHROUGH: &[&str] = &["x-dashscope-datainspection"];

pub async fn chat_completions(
    Authorized(auth): Authorized,
    slot: Slot,
    observed: Observed,
    State(state): State<AppState>,
    usage: Option<Extension<UsageSink>>,
    headers: HeaderMap,
    OpenAiJson(req): OpenAiJson<openai::ChatCompletionRequest>,
) -> Result<Response, ProxyError> {
    treq::validate(&req)?;
    let usage = usage.map(|Extension(u)| u);
    let route = routing::resolve_shared(
        &state.cfg,
        &state.learned,
        req.model.as_deref().unwrap_or(""),
    )
    .await;
    observed.model(&route.model);
    route.check_key(auth.as_ref())?;
    let mut translated = treq::to_dashscope(req, &ctx(&route, &state))?;
    super::log_warnings(&route.model, &translated.notes);
    let passthrough = passthrough(&headers, translated.oss_resources);
    let stream = route.stream_upstream(translated.stream, must_stream(&translated));
    let target = Target::Generation(translated.endpoint);
    let plan = route.plan(&state, target, stream, auth.as_ref(), &passthrough);
    observed.endpoint(target.label());
    let started = Instant::now();
    let mut body = Body::new(translated.body, translated.endpoint);
    let (opened, sent) =
        upstream::open::<GenerationResponse>(&plan, |t, s| body.render(t, s)).await?;
    observed.endpoint(sent.target.label());
    route.learn(&state.cfg, &state.learned, &plan, &sent);

    let request_id = opened.request_id();
    observed.request_id(request_id.as_deref());
    let meta = meta(&route, request_id.as_deref(), &headers);
    let mut resp = match opened {
        Opened::Json {
            answer, partial, ..
        } => {
            let mut c = tresp::to_openai(answer, &meta);
            if partial {
                tresp::mark_partial(&mut c, &mut translated.notes);
            }
            completion(c, &state, usage.as_ref())
        }
        Opened::Stream { first, frames, .. } => {
            let translator = StreamTranslator::new(meta, translated.include_usage);
            if translated.stream {
                let driver = Driver {
                    drain: state.drain.clone(),
                    endpoint: sent.target.label(),
                    started,
                    log_content: state.cfg.log_content,
                    error_event: sse::openai_error_event,
                    hold: Some(Box::new(slot)),
                };
                sse::respond(chunks(translator, first, frames, usage), driver)
            } else {
                let c = aggregate(translator, first, frames).await?;
                completion(c, &state, usage.as_ref())
            }
        }
    };
    super::warning_header(&mut resp, &translated.notes);
    Ok(resp)
}

/// DashScope answers a thinking request, and a code-interpreter one, only as a stream.
pub(super) fn must_stream(t: &Translated) -> bool {
    t.thinking
        || t.body.parameters.values.get("enable_code_interpreter") == Some(&serde_json::json!(true))
}

/// The translation context for a route.
pub(super) fn ctx<'a>(route: &'a Route<'_>, state: &'a AppState) -> Ctx<'a> {
    static EMPTY: std::sync::LazyLock<serde_json::Map<String, serde_json::Value>> =
        std::sync::LazyLock::new(serde_json::Map::new);
    let entry = route.entry;
    Ctx {
        upstream_model: &route.target,
        endpoint: route.endpoint,
        defaults: entry.map_or(&EMPTY, |e| &e.defaults),
        overrides: entry.map_or(&EMPTY, |e| &e.overrides),
        preserve_thinking: entry.is_some_and(|e| e.preserve_thinking),
        native_reasoning_effort: entry.is_some_and(|e| e.native_reasoning_effort),
        budgets: &state.cfg.budgets,
        unknown: state.cfg.unknown_fields,
        unsupported: state.cfg.unsupported_fields,
        native_max_completion_tokens: state.cfg.takes_max_completion_tokens(&route.target),
        thinks_by_default: state.cfg.thinks_by_default(&route.target),
        required_tool_choice: state.cfg.required_tool_choice,
    }
}

/// Client headers to forward, plus `X-DashScope-OssResourceResolve: enable` when the request
/// has `oss://` media (DashScope resolves it only when asked).
pub(super) fn passthrough(headers: &HeaderMap, oss: bool) -> Vec<(&'static str, HeaderValue)> {
    let mut out: Vec<_> = PASSTHROUGH
        .iter()
        .filter_map(|name| headers.get(*name).map(|v| (*name, v.clone())))
        .collect();
    if oss {
        out.push((
            "x-dashscope-ossresourceresolve",
            HeaderValue::from_static("enable"),
        ));
    }
    out
}

/// The response envelope: id from DashScope's request id (else the gateway's own, set by the
/// request-id middleware), the client's model name, the time now.
fn meta(route: &Route<'_>, request_id: Option<&str>, headers: &HeaderMap) -> Meta {
    let fallback = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    Meta {
        id: tresp::completion_id(request_id, fallback),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        model: route.model.clone(),
    }
}

/// The native request, re-rendered per attempt for the endpoint and stream flag the call asks
/// for (reshaping is idempotent and reversible, so nothing is copied).
pub(super) struct Body {
    body: GenerationRequest,
    shaped_for: Endpoint,
}

impl Body {
    pub(super) fn new(body: GenerationRequest, shaped_for: Endpoint) -> Self {
        Body { body, shaped_for }
    }

    pub(super) fn render(&mut self, target: Target, stream: bool) -> Result<Bytes, ProxyError> {
        if let Target::Generation(e) = target
            && e != self.shaped_for
        {
            treq::shape_for_endpoint(&mut self.body, e);
            self.shaped_for = e;
        }
        treq::set_upstream_stream(&mut self.body, stream);
        serde_json::to_vec(&self.body)
            .map(Bytes::from)
            .map_err(|e| ProxyError::Internal(format!("serializing the request: {e}")))
    }
}

/// A completion as the JSON response (tokens counted, content logged if enabled).
fn completion(c: openai::ChatCompletion, state: &AppState, usage: Option<&UsageSink>) -> Response {
    if let Some(u) = &c.usage {
        metrics::record_tokens(&c.model, u.prompt_tokens, u.completion_tokens);
        count_usage(usage, u.prompt_tokens, u.completion_tokens);
    }
    super::json_ok(&c, state.cfg.log_content).unwrap_or_else(IntoResponse::into_response)
}

/// Count a call's tokens against the key's `tpm` (when the key has one).
fn count_usage(sink: Option<&UsageSink>, prompt: u64, completion: u64) {
    if let Some(s) = sink {
        s.add(prompt.saturating_add(completion));
    }
}

fn ended_early() -> ProxyError {
    ProxyError::BadUpstream("the upstream stream ended before the model finished".into())
}

/// Drain an upstream stream into one completion (stream-only models, non-stream clients).
async fn aggregate(
    mut translator: StreamTranslator,
    first: GenerationResponse,
    mut frames: Frames<GenerationResponse>,
) -> Result<openai::ChatCompletion, ProxyError> {
    let mut acc = Aggregator::default();
    if let Some(body) = translator.on_frame(first) {
        acc.push(body);
    }
    // A finished answer is the answer: whatever the upstream does after it is not waited for.
    while !translator.is_finished()
        && let Some(frame) = frames.next().await
    {
        let frame = match frame {
            Ok(f) => f,
            Err(f) => match moderated(&mut translator, &f) {
                // Output moderation after the answer started: a content_filter stop.
                Some(body) => {
                    acc.push(body);
                    break;
                }
                None => return Err(f.into()),
            },
        };
        if let Some(body) = translator.on_frame(frame) {
            acc.push(body);
        }
    }
    drop(frames);
    translator.finish().map_err(|_| ended_early())?;
    let usage = translator.final_usage();
    Ok(acc.finish(translator.meta(), usage))
}

/// An in-stream `DataInspectionFailed` after the answer started: the chunk that ends the
/// started choices with `content_filter` ([`StreamTranslator::on_error`]).
fn moderated(translator: &mut StreamTranslator, f: &Failure) -> Option<ChunkBody> {
    match &f.kind {
        Kind::InBand(body) | Kind::Status { body, .. } => translator.on_error(body.code.as_deref()),
        _ => None,
    }
}

/// Upstream frames → rendered chat chunks, then the usage chunk (if asked) and `[DONE]` as
/// soon as every started choice has finished.
fn chunks(
    translator: StreamTranslator,
    first: GenerationResponse,
    frames: Frames<GenerationResponse>,
    usage: Option<UsageSink>,
) -> impl Stream<Item = Result<Rendered, ProxyError>> + Send + 'static {
    let state = Chunks {
        translator,
        first: Some(first),
        frames,
        queue: VecDeque::new(),
        done: false,
        usage,
    };
    futures_util::stream::unfold(
        state,
        |mut s| async move { s.next().await.map(|ev| (ev, s)) },
    )
}

struct Chunks {
    translator: StreamTranslator,
    first: Option<GenerationResponse>,
    frames: Frames<GenerationResponse>,
    queue: VecDeque<Rendered>,
    done: bool,
    /// Counts the final usage against the key's `tpm`; reported when the stream is dropped.
    usage: Option<UsageSink>,
}

impl Chunks {
    async fn next(&mut self) -> Option<Result<Rendered, ProxyError>> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            let frame = match self.first.take() {
                Some(first) => Some(Ok(first)),
                None => self.frames.next().await,
            };
            match frame {
                Some(Ok(frame)) => {
                    if let Some(body) = self.translator.on_frame(frame) {
                        self.queue
                            .push_back(Rendered::data(self.translator.render(&body)));
                    }
                    if self.translator.is_finished() {
                        // Every started choice finished: end now (usage, `[DONE]`) and drop
                        // the upstream; a later break, stall or keep-alive is not an error.
                        self.frames = Box::pin(futures_util::stream::empty());
                    }
                }
                Some(Err(f)) => {
                    if let Some(body) = moderated(&mut self.translator, &f) {
                        self.queue
                            .push_back(Rendered::data(self.translator.render(&body)));
                        self.first = None;
                        self.frames = Box::pin(futures_util::stream::empty());
                        continue;
                    }
                    self.done = true;
                    return Some(Err(f.into()));
                }
                None => {
                    self.done = true;
                    let Ok(usage_chunk) = self.translator.finish() else {
                        return Some(Err(ended_early()));
                    };
                    if let Some(body) = usage_chunk {
                        self.queue
                            .push_back(Rendered::data(self.translator.render(&body)));
                    }
                    self.queue.push_back(Rendered::data("[DONE]"));
                    if let Some(u) = self.translator.final_usage() {
                        let model = &self.translator.meta().model;
                        metrics::record_tokens(model, u.prompt_tokens, u.completion_tokens);
                        count_usage(self.usage.as_ref(), u.prompt_tokens, u.completion_tokens);
                    }
                }
            }
        }
    }
}
