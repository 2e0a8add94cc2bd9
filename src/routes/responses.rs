//! `POST /v1/responses`: the Responses API on the same machinery as chat.
//!
//! extract → Responses → chat request → native request → resolve the model → open the upstream
//! call (retries, endpoint and stream switches, first frame checked) → respond: one response
//! object (a JSON answer, or a streamed upstream assembled), or the event stream of the state
//! machine. Errors before the first frame are HTTP errors with the Responses codes; after it,
//! the state machine ends the stream (`response.incomplete` / `response.failed`).

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use std::sync::Arc;

use serde_json::Value;

use super::auth::Authorized;
use super::chat::{Body, ctx, must_stream, passthrough};
use super::extract;
use super::extract::{OpenAiJson, Slot};
use super::limits::{UsageSink, WARNING};
use super::observe::Observed;
use super::sse::{self, Driver, Rendered};
use super::stored::{self, Saver, Turn};
use crate::dashscope::GenerationResponse;
use crate::error::ProxyError;
use crate::metrics;
use crate::openai::responses::{self as rs, ResponsesRequest, StreamEvent};
use crate::routing;
use crate::shutdown::Drain;
use crate::state::AppState;
use crate::store;
use crate::translate::request as treq;
use crate::translate::response as tresp;
use crate::translate::responses::request::{Opts, to_chat};
use crate::translate::responses::responses_error;
use crate::translate::responses::stream::{ResponseStream, Settings, render};
use crate::upstream::{self, Failure, Frames, Opened, Target};

pub async fn create(
    Authorized(auth): Authorized,
    slot: Slot,
    observed: Observed,
    State(state): State<AppState>,
    Turn { owner, usage }: Turn,
    headers: HeaderMap,
    OpenAiJson(body): OpenAiJson<Value>,
) -> Result<Response, ProxyError> {
    let (req, previous, saver) = with_state(body, &state, owner).await?;
    let model = req.model.clone().unwrap_or_default();
    let route = routing::resolve_shared(&state.cfg, &state.learned, &model).await;
    observed.model(&route.model);
    let opts = Opts {
        preserve_thinking: route.entry.is_some_and(|e| e.preserve_thinking),
    };
    let mut converted = to_chat(req, opts)?;
    converted.template.store = saver.is_some();
    converted.template.previous_response_id = previous;
    route.check_key(auth.as_ref())?;
    let mut translated =
        treq::to_dashscope(std::mem::take(&mut converted.chat), &ctx(&route, &state))?;
    let mut notes = std::mem::take(&mut converted.notes);
    notes.extend(std::mem::take(&mut translated.notes));
    super::log_warnings(&route.model, &notes);
    let passthrough = passthrough(&headers, translated.oss_resources);
    let stream = route.stream_upstream(converted.stream, must_stream(&translated));
    let target = Target::Generation(translated.endpoint);
    let plan = route.plan(&state, target, stream, auth.as_ref(), &passthrough);
    observed.endpoint(target.label());
    let started = Instant::now();
    let mut body = Body::new(translated.body, translated.endpoint);
    let (opened, sent) = upstream::open::<GenerationResponse>(&plan, |t, s| body.render(t, s))
        .await
        .map_err(responses_http_error)?;
    observed.endpoint(sent.target.label());
    route.learn(&state.cfg, &state.learned, &plan, &sent);

    let request_id = opened.request_id();
    observed.request_id(request_id.as_deref());
    let machine = ResponseStream::new(
        converted.template,
        response_id(request_id.as_deref()),
        now(),
        converted.tools,
        Settings {
            mirror_summary: state.cfg.responses_reasoning_summary,
            encrypted_reasoning: converted.encrypted_reasoning,
            upstream_model: route.target.clone(),
        },
    );
    let mut resp = match opened {
        Opened::Json {
            mut answer,
            partial,
            ..
        } => {
            if partial {
                tresp::mark_partial_native(&mut answer, &mut notes);
            }
            let empty = Box::pin(futures_util::stream::empty());
            let r = assemble(machine, answer, empty).await?;
            finished(r, &state, usage.as_ref(), saver).await
        }
        Opened::Stream { first, frames, .. } if converted.stream => {
            let driver = Driver {
                drain: state.drain.clone(),
                endpoint: sent.target.label(),
                started,
                log_content: state.cfg.log_content,
                error_event,
                hold: Some(Box::new(slot)),
            };
            let end = End { usage, saver };
            sse::respond(
                events(machine, first, frames, state.drain.clone(), end),
                driver,
            )
        }
        Opened::Stream { first, frames, .. } => {
            let r = assemble(machine, first, frames).await?;
            finished(r, &state, usage.as_ref(), saver).await
        }
    };
    let stored = resp.headers_mut().remove(WARNING);
    super::warning_header(&mut resp, &notes);
    if let Some(w) = stored {
        resp.headers_mut().append(WARNING, w);
    }
    Ok(resp)
}

/// The body with the conversation state applied (`previous_response_id`'s chain prepended,
/// `item_reference`s resolved), the id it continued and, when `store` (default true) and the
/// caller has an owner, how to save the result.
async fn with_state(
    mut body: Value,
    state: &AppState,
    owner: Option<String>,
) -> Result<(ResponsesRequest, Option<String>, Option<Saver>), ProxyError> {
    let Some(map) = body.as_object_mut() else {
        return Ok((extract::from_value(body)?, None, None));
    };
    let store = !matches!(map.get("store"), Some(Value::Bool(false)));
    let previous = match map.remove("previous_response_id") {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(ProxyError::bad_request(
                "'previous_response_id' must be a string",
                Some("previous_response_id"),
                "invalid_type",
            ));
        }
    };
    let input = map.remove("input");
    let absent = input.is_none() && previous.is_none();
    let resolved =
        stored::resolve(&*state.store, owner.as_deref(), previous.as_deref(), input).await?;
    if !absent {
        map.insert("input".into(), resolved.full);
    }
    let saver = owner.filter(|_| store).map(|owner| Saver {
        store: Arc::clone(&state.store),
        owner,
        input: resolved.turn,
        previous: previous.clone(),
    });
    Ok((extract::from_value(body)?, previous, saver))
}

/// A finished non-stream response: tokens counted, saved when asked (a failed write still
/// serves it, with a warning), served.
async fn finished(
    r: rs::Response,
    state: &AppState,
    usage: Option<&UsageSink>,
    saver: Option<Saver>,
) -> Response {
    if let (Some(sink), Some(u)) = (usage, &r.usage) {
        sink.add(u.input_tokens.saturating_add(u.output_tokens));
    }
    let failed = match saver {
        Some(s) => s.save(&r).await.err(),
        None => None,
    };
    let mut resp = object(r, state);
    if let Some(e) = failed {
        resp.headers_mut()
            .insert(WARNING, HeaderValue::from_static(store::write_failed(&e)));
    }
    resp
}

/// What happens when a stream ends: its tokens are counted and a finished response saved
/// (before the terminal event is sent, so a client continuing at once finds it; a failed
/// write is logged and counted — the headers are already sent).
struct End {
    usage: Option<UsageSink>,
    saver: Option<Saver>,
}

impl End {
    async fn run(&mut self, machine: &ResponseStream, save: bool) {
        let u = machine.usage();
        if let Some(sink) = self.usage.take() {
            sink.add(u.input_tokens.saturating_add(u.output_tokens));
        }
        if let Some(s) = self.saver.take().filter(|_| save)
            && let Err(e) = s.save(machine.response()).await
        {
            store::write_failed(&e);
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `resp_` + 32 hex: DashScope's request id (a UUID) without its dashes, else a fresh one.
fn response_id(request_id: Option<&str>) -> String {
    let hex: String = request_id
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    if hex.len() == 32 {
        format!("resp_{}", hex.to_ascii_lowercase())
    } else {
        format!("resp_{}", uuid::Uuid::new_v4().simple())
    }
}

/// An error before anything was written, with the codes Responses clients classify; a 429
/// always carries the `Retry-After` its message quotes.
fn responses_http_error(e: ProxyError) -> ProxyError {
    match e {
        ProxyError::Upstream {
            mut mapped,
            retry_after,
        } => {
            let secs = retry_after
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            responses_error(&mut mapped, secs);
            let retry_after = match (mapped.status, retry_after) {
                (429, None) if mapped.code == "rate_limit_exceeded" => {
                    Some(HeaderValue::from_static("1"))
                }
                (_, r) => r,
            };
            ProxyError::Upstream {
                mapped,
                retry_after,
            }
        }
        other => other,
    }
}

/// The response object as the JSON answer.
fn object(r: rs::Response, state: &AppState) -> Response {
    if let Some(u) = &r.usage {
        metrics::record_tokens(&r.model, u.input_tokens, u.output_tokens);
    }
    super::json_ok(&r, state.cfg.log_content).unwrap_or_else(IntoResponse::into_response)
}

/// Run every frame through the state machine, without sending events: the non-stream answer.
/// A failure before the end is an HTTP error (nothing was written); output moderation and a
/// `length` finish are answers (`incomplete`).
async fn assemble(
    mut machine: ResponseStream,
    first: GenerationResponse,
    mut frames: Frames<GenerationResponse>,
) -> Result<rs::Response, ProxyError> {
    let mut sink = Vec::new();
    machine.on_frame(first, &mut sink);
    while let Some(frame) = frames.next().await {
        sink.clear();
        match frame {
            Ok(f) => machine.on_frame(f, &mut sink),
            Err(f) => {
                if let Some(m) = f.mapped().filter(|m| m.code == "content_filter") {
                    machine.fail_upstream(m, &mut sink);
                    return Ok(machine.into_response());
                }
                return Err(responses_http_error(ProxyError::from(f)));
            }
        }
    }
    sink.clear();
    if machine.finish(&mut sink) == crate::translate::responses::stream::Outcome::Failed {
        return Err(ProxyError::BadUpstream(
            "the upstream stream ended before the model finished".into(),
        ));
    }
    Ok(machine.into_response())
}

fn rendered(ev: &StreamEvent) -> Rendered {
    Rendered {
        event: Some(ev.kind),
        data: render(ev),
    }
}

/// The driver's fallback for an error it raises itself; the state machine ends every stream
/// before that can happen, so this is a last resort in the documented `error` event shape.
fn error_event(e: &ProxyError) -> Rendered {
    let body = e.body().error;
    Rendered {
        event: Some("error"),
        data: serde_json::json!({
            "type": "error",
            "code": body.code,
            "message": body.message,
            "param": body.param,
        })
        .to_string(),
    }
}

/// Upstream frames → rendered Responses events, ending with the terminal event.
fn events(
    machine: ResponseStream,
    first: GenerationResponse,
    frames: Frames<GenerationResponse>,
    drain: Drain,
    end: End,
) -> impl Stream<Item = Result<Rendered, ProxyError>> + Send + 'static {
    let state = Events {
        end,
        machine,
        first: Some(first),
        frames,
        queue: VecDeque::new(),
        scratch: Vec::new(),
        drain,
        done: false,
    };
    futures_util::stream::unfold(
        state,
        |mut s| async move { s.next().await.map(|ev| (ev, s)) },
    )
}

struct Events {
    end: End,
    machine: ResponseStream,
    first: Option<GenerationResponse>,
    frames: Frames<GenerationResponse>,
    queue: VecDeque<Rendered>,
    scratch: Vec<StreamEvent>,
    drain: Drain,
    done: bool,
}

impl Events {
    async fn next(&mut self) -> Option<Result<Rendered, ProxyError>> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            let polled = match self.first.take() {
                Some(first) => Some(Some(Ok(first))),
                None => tokio::select! {
                    biased;
                    f = self.frames.next() => Some(f),
                    () = self.drain.expired() => None,
                },
            };
            match polled {
                None => {
                    self.done = true;
                    self.machine.fail(
                        "server_error",
                        "the gateway is shutting down",
                        &mut self.scratch,
                    );
                }
                Some(Some(Ok(frame))) => self.machine.on_frame(frame, &mut self.scratch),
                Some(Some(Err(f))) => {
                    self.done = true;
                    self.mid_stream_failure(f);
                    self.end.run(&self.machine, false).await;
                }
                Some(None) => {
                    self.done = true;
                    let outcome = self.machine.finish(&mut self.scratch);
                    let failed = outcome == crate::translate::responses::stream::Outcome::Failed;
                    self.end.run(&self.machine, !failed).await;
                    let u = self.machine.usage();
                    let model = self.machine.response().model.clone();
                    metrics::record_tokens(&model, u.input_tokens, u.output_tokens);
                }
            }
            for ev in self.scratch.drain(..) {
                self.queue.push_back(rendered(&ev));
            }
        }
    }

    fn mid_stream_failure(&mut self, f: Failure) {
        match f.mapped() {
            Some(m) => {
                tracing::warn!(code = %m.code, "stream ended with an upstream error");
                self.machine.fail_upstream(m, &mut self.scratch);
            }
            None => {
                let e = ProxyError::from(f);
                tracing::warn!(error = %e, "stream ended with an error");
                let message = e.body().error.message;
                self.machine
                    .fail("server_error", &message, &mut self.scratch);
            }
        }
    }
}
