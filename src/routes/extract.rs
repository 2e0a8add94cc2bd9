//! Extractors every OpenAI route shares: a concurrency slot, and the JSON body — content type,
//! size and time limits, the global budget of request bytes held at once, parse errors naming
//! the field — all as OpenAI-shaped 400/408/413/415s and 503s.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ProxyError;
use crate::state::AppState;

/// One of the gateway's `max_concurrency` slots, held until the response (a stream's body
/// included) is done. None free: 503 `overloaded` with `Retry-After`.
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl FromRequestParts<AppState> for Slot {
    type Rejection = ProxyError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, ProxyError> {
        state
            .limit
            .clone()
            .try_acquire_owned()
            .map(Slot)
            .map_err(|_| ProxyError::Overloaded)
    }
}

/// An OpenAI JSON request body of type `T`.
pub struct OpenAiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for OpenAiJson<T> {
    type Rejection = ProxyError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ProxyError> {
        let (parts, body) = req.into_parts();
        check_content_type(&parts.headers)?;
        let limits = BodyLimits {
            max_bytes: state.cfg.max_body_bytes,
            deadline: state.cfg.request_read_timeout,
            budget: &state.body_budget,
            budget_bytes: state.cfg.body_budget_bytes,
        };
        // The body's bytes count against the global budget until they are parsed.
        let (bytes, _held) = read_body(&parts.headers, body, &limits).await?;
        parse(&bytes).map(OpenAiJson)
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

/// Request-body bytes taken from the global budget; given back when dropped.
pub struct HeldBytes {
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl HeldBytes {
    /// Raise what is held to `total` bytes, or refuse at once (503 + `Retry-After`): the
    /// budget bounds memory, it is not a queue.
    fn grow_to(
        &mut self,
        budget: &Arc<Semaphore>,
        total: usize,
        cap: usize,
    ) -> Result<(), ProxyError> {
        let Some(more) = total.checked_sub(self.bytes).filter(|n| *n > 0) else {
            return Ok(());
        };
        let more = u32::try_from(more).map_err(|_| ProxyError::BodyBudget(cap))?;
        let permit = Arc::clone(budget)
            .try_acquire_many_owned(more)
            .map_err(|_| ProxyError::BodyBudget(cap))?;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.bytes = total;
        Ok(())
    }
}

/// Limits on reading one body.
struct BodyLimits<'a> {
    max_bytes: usize,
    deadline: Duration,
    budget: &'a Arc<Semaphore>,
    budget_bytes: usize,
}

/// Read the whole body: bounded in size, in time as a whole (the body timeout layer only
/// bounds the silence between chunks, so a trickling client could otherwise hold a slot), and
/// by the global budget of request bytes held at once: a declared length is taken from it
/// before reading, a chunked body as its bytes arrive. The bytes stay counted until the
/// returned [`HeldBytes`] is dropped.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: &BodyLimits<'_>,
) -> Result<(Bytes, HeldBytes), ProxyError> {
    use http_body_util::BodyExt;
    let limit = limits.max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let mut held = HeldBytes {
        permit: None,
        bytes: 0,
    };
    let (budget, cap) = (limits.budget, limits.budget_bytes);
    if let Some(n) = declared.and_then(|n| usize::try_from(n).ok()) {
        held.grow_to(budget, n, cap)?;
    }
    let read = async {
        let mut body = body;
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut len = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame
                .map_err(|e| body_read_error(&e, limits.deadline))?
                .into_data()
            else {
                continue;
            };
            len += data.len();
            if len > limit {
                return Err(too_large(limit));
            }
            held.grow_to(budget, len, cap)?;
            chunks.push(data);
        }
        Ok(match chunks.len() {
            1 => chunks.swap_remove(0),
            _ => Bytes::from(chunks.concat()),
        })
    };
    let bytes = tokio::time::timeout(limits.deadline, read)
        .await
        .map_err(|_| read_timed_out(limits.deadline))??;
    Ok((bytes, held))
}

fn body_read_error(e: &axum::Error, deadline: Duration) -> ProxyError {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if s.is::<tower_http::timeout::TimeoutError>() {
            return read_timed_out(deadline);
        }
        src = s.source();
    }
    ProxyError::Client {
        status: StatusCode::BAD_REQUEST,
        message: format!("could not read the request body: {e}"),
        param: None,
        code: "body_read_error".into(),
    }
}

/// Parse a JSON body; a wrong type names its path (`messages[0].content`) as `param`.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProxyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ProxyError::bad_request(
            "request body is empty; expected a JSON object",
            None,
            "invalid_json",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let req: T = match serde_path_to_error::deserialize(&mut de) {
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

/// [`parse`] for a body already read as JSON (the Responses route edits `input` first); a
/// wrong type names its path as `param`.
pub(crate) fn from_value<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, ProxyError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let param = (path != ".").then_some(path.as_str());
        let at = param.map(|p| format!(" at '{p}'")).unwrap_or_default();
        ProxyError::bad_request(
            format!("invalid request{at}: {inner}"),
            param,
            "invalid_type",
        )
    })
}
