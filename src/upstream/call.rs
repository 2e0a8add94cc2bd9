//! One upstream call, generic over what is sent and what comes back: retries, the endpoint and
//! stream switches, and the first-frame check.
//!
//! The caller hands in how to render the body for a target and a stream flag; nothing it owns
//! is changed. The call ends with something worth forwarding — a JSON answer, or a stream whose
//! first frame is not an error — or with the [`Failure`] that stopped it. What was finally
//! sent comes back in [`Sent`], so the caller can learn from a switch that worked.
//!
//! The retry rule — retry only what provably did not start a generation: a connection that
//! could not be made, and 429/503 refusals; never anything after a response head arrived,
//! other 5xx answers, timeouts or `RequestTimeOut` (details on `decide`).

use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, header};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;

use super::failure::{Failure, Kind, Phase};
use super::{Call, DashScopeClient, Frame, Target};
use crate::config::{Config, Upstream};
use crate::dashscope::{ErrorBody, GenerationResponse};
use crate::error::ProxyError;
use crate::metrics;

/// A DashScope answer type: a 2xx body, or the payload of one stream frame.
pub trait Answer: DeserializeOwned + Send + 'static {
    /// The error a 2xx body carries instead of an answer (a non-empty `code`).
    fn in_band_error(&self) -> Option<ErrorBody>;

    /// The answer in a body's JSON.
    fn parse(raw: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(raw)
    }

    /// Why a whole (non-stream) answer is not an answer, if it is not.
    fn missing(&self) -> Option<&'static str> {
        None
    }
}

impl Answer for GenerationResponse {
    fn in_band_error(&self) -> Option<ErrorBody> {
        self.code
            .as_deref()
            .is_some_and(|c| !c.is_empty())
            .then(|| ErrorBody {
                code: self.code.clone(),
                message: self.message.clone(),
                request_id: self.request_id.clone(),
                ..ErrorBody::default()
            })
    }

    fn missing(&self) -> Option<&'static str> {
        self.output
            .is_none()
            .then_some("a 200 answer without `output`")
    }
}

/// The frames after the first, parsed; their failures are in [`Phase::Stream`].
pub type Frames<T> = Pin<Box<dyn Stream<Item = Result<T, Failure>> + Send>>;

/// A call that opened.
pub enum Opened<T> {
    /// A whole JSON answer.
    Json {
        answer: T,
        request_id: Option<String>,
        /// `x-dashscope-partialresponse: true`: cut at DashScope's non-stream time limit.
        partial: bool,
    },
    /// A stream: its first frame (not an error) and the rest. `request_id` is the header's.
    Stream {
        first: T,
        frames: Frames<T>,
        request_id: Option<String>,
    },
}

impl Opened<GenerationResponse> {
    /// DashScope's request id: the answer's (or the first frame's), else the response header's.
    pub fn request_id(&self) -> Option<String> {
        let (answer, header) = match self {
            Opened::Json {
                answer, request_id, ..
            } => (answer, request_id),
            Opened::Stream {
                first, request_id, ..
            } => (first, request_id),
        };
        answer.request_id.clone().or_else(|| header.clone())
    }
}

/// What to call and how the call may adapt.
pub struct Plan<'a> {
    pub client: &'a DashScopeClient,
    /// Retry count and timing, content logging.
    pub cfg: &'a Config,
    pub upstream: &'a Upstream,
    pub target: Target,
    pub stream: bool,
    /// The upstream model name, for logs and metrics.
    pub model: &'a str,
    /// The client's `Authorization`, forwarded only when no server key is configured.
    pub client_auth: Option<&'a HeaderValue>,
    /// Client headers that are safe to forward.
    pub passthrough: &'a [(&'static str, HeaderValue)],
}

/// What the call finally sent, when it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub target: Target,
    pub stream: bool,
}

impl Sent {
    /// The call moved to the other generation endpoint.
    pub fn switched_endpoint(&self, plan: &Plan<'_>) -> bool {
        self.target != plan.target
    }

    /// The call moved to streaming because the model refused a non-stream call.
    pub fn switched_to_stream(&self, plan: &Plan<'_>) -> bool {
        self.stream && !plan.stream
    }
}

/// What to do after a failure that reached us before anything reached the client.
enum Next {
    SwitchEndpoint,
    SwitchToStream,
    Retry(Duration),
    Fail(Failure),
}

/// Call DashScope until there is something to forward. `render(target, stream)` gives the
/// body for a target and stream flag (called once per attempt).
pub async fn open<T: Answer>(
    plan: &Plan<'_>,
    mut render: impl FnMut(Target, bool) -> Result<Bytes, ProxyError>,
) -> Result<(Opened<T>, Sent), ProxyError> {
    let mut sent = Sent {
        target: plan.target,
        stream: plan.stream,
    };
    let mut attempt: u32 = 0;
    let started = Instant::now();
    loop {
        let body = render(sent.target, sent.stream)?;
        if plan.cfg.log_content {
            tracing::info!(upstream_request = %String::from_utf8_lossy(&body), "content");
        }
        let result = plan
            .client
            .send(Call {
                upstream: plan.upstream,
                target: sent.target,
                body,
                stream: sent.stream,
                client_auth: plan.client_auth,
                passthrough: plan.passthrough,
            })
            .await;
        let failure = match result {
            Ok(resp) => match first_answer::<T>(resp, sent.stream).await {
                Ok(opened) => {
                    metrics::record_upstream_latency(sent.target.label(), started.elapsed());
                    return Ok((opened, sent));
                }
                Err(f) => f,
            },
            Err(f) => f,
        };
        match decide(plan.cfg, failure, attempt, &sent, plan) {
            Next::SwitchEndpoint => {
                if let Target::Generation(e) = sent.target {
                    let other = e.other();
                    tracing::warn!(model = %plan.model, from = e.label(), to = other.label(),
                        "upstream says the model lives on the other endpoint; retrying there");
                    sent.target = Target::Generation(other);
                    metrics::record_endpoint_fallback(plan.model);
                }
            }
            Next::SwitchToStream => {
                sent.stream = true;
                tracing::info!(model = %plan.model, "model refuses non-stream calls; streaming and aggregating");
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
            Next::Fail(f) => return Err(f.into()),
        }
    }
}

/// The retry rule: retry only what provably did not start a generation.
///
/// Retried (up to `retries` times, with jittered exponential backoff, or after a `Retry-After`
/// of at most `retry_after_cap`): a connection that could not be made (refused, DNS, TLS; a
/// pooled connection that died before the request was written is re-sent by the HTTP client
/// itself), and 429/503 refusals. Never: a transport error once the request may have been
/// written, a timeout, anything after a response head arrived (a 200 whose body breaks), other
/// 5xx answers, DashScope's `RequestTimeOut`. Switched once each: the endpoint on "url error",
/// streaming when the model refuses a non-stream call.
fn decide(cfg: &Config, failure: Failure, attempt: u32, sent: &Sent, plan: &Plan<'_>) -> Next {
    let can_retry = attempt < cfg.retries;
    let backoff = || {
        let base = cfg.retry_base.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << attempt.min(16));
        let jitter = fastrand::u64(0..=exp / 2 + 1);
        Duration::from_millis(exp / 2 + jitter)
    };
    if let (Kind::Transport(_), Phase::Connect) = (&failure.kind, failure.phase) {
        if can_retry {
            metrics::record_retry("connect");
            return Next::Retry(backoff());
        }
        return Next::Fail(failure);
    }
    let Some(mapped) = failure.mapped() else {
        return Next::Fail(failure);
    };
    let generation = matches!(sent.target, Target::Generation(_));
    if mapped.wrong_endpoint && generation && sent.target == plan.target {
        return Next::SwitchEndpoint;
    }
    if mapped.needs_stream && !sent.stream {
        return Next::SwitchToStream;
    }
    if failure.is_refusal() && can_retry {
        let retry_after = match &failure.kind {
            Kind::Status { retry_after, .. } => retry_after.as_ref(),
            _ => None,
        };
        let wait = retry_after
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let reason = if mapped.status == 429 {
            "throttled"
        } else {
            "server_error"
        };
        match wait {
            Some(w) if w > cfg.retry_after_cap => {}
            Some(w) => {
                metrics::record_retry(reason);
                return Next::Retry(w);
            }
            None => {
                metrics::record_retry(reason);
                return Next::Retry(backoff());
            }
        }
    }
    Next::Fail(failure)
}

/// Read enough of a 2xx answer to know it is not an error.
async fn first_answer<T: Answer>(
    resp: reqwest::Response,
    stream: bool,
) -> Result<Opened<T>, Failure> {
    let request_id = super::header_request_id(resp.headers());
    if stream && super::is_event_stream(&resp) {
        let mut frames: Frames<T> = Box::pin(super::frames(resp).map(|r| {
            r.and_then(parse_frame::<T>)
                .map_err(|f| f.in_phase(Phase::Stream))
        }));
        let first = match frames.next().await {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(e.in_phase(Phase::Body)),
            None => return Err(Failure::protocol("the stream ended before its first frame")),
        };
        return Ok(Opened::Stream {
            first,
            frames,
            request_id,
        });
    }
    // A JSON body: the answer to a non-stream call, or an error (or a stray JSON answer to a
    // stream call, which we accept as a one-frame stream).
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    if !ct.contains("json") {
        return Err(Failure::protocol(format!("unexpected content type '{ct}'")));
    }
    let partial = resp
        .headers()
        .get("x-dashscope-partialresponse")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let raw = super::read_body(resp).await?;
    let answer = parse_payload::<T>(&raw)?;
    if let Some(why) = answer.missing() {
        return Err(Failure::protocol(why));
    }
    Ok(if stream {
        Opened::Stream {
            first: answer,
            frames: Box::pin(futures_util::stream::empty()),
            request_id,
        }
    } else {
        Opened::Json {
            answer,
            request_id,
            partial,
        }
    })
}

/// A frame's JSON payload, or the error it carries (`event:error`, or a `code`).
pub fn parse_frame<T: Answer>(frame: Frame) -> Result<T, Failure> {
    if frame.is_error_event() {
        return Err(in_band(ErrorBody::parse(frame.data.as_bytes())));
    }
    parse_payload(frame.data.as_bytes())
}

/// A 2xx body's JSON, or the error it carries (a non-empty `code`).
pub fn parse_payload<T: Answer>(raw: &[u8]) -> Result<T, Failure> {
    let parsed = T::parse(raw).or_else(|e| {
        // A payload split over several `data:` lines arrives joined with '\n'; if that broke
        // a JSON string, try the pieces concatenated as they were sent.
        if raw.contains(&b'\n') {
            let joined: Vec<u8> = raw.iter().copied().filter(|b| *b != b'\n').collect();
            T::parse(&joined)
        } else {
            Err(e)
        }
    });
    match parsed {
        Ok(answer) => match answer.in_band_error() {
            Some(body) => Err(in_band(body)),
            None => Ok(answer),
        },
        Err(e) => Err(Failure::protocol(format!(
            "upstream sent invalid JSON: {e}"
        ))),
    }
}

fn in_band(body: ErrorBody) -> Failure {
    Failure::new(Phase::Body, Kind::InBand(Box::new(body)))
}
