//! Extractors every OpenAI route shares: a concurrency slot, and the JSON body — content type,
//! size and time limits, parse errors naming the field — all as OpenAI-shaped 400/408/413/415s.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio::sync::OwnedSemaphorePermit;

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
        let bytes = read_body(
            &parts.headers,
            body,
            state.cfg.max_body_bytes,
            state.cfg.request_read_timeout,
        )
        .await?;
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
