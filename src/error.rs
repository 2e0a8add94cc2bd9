//! The one error type that becomes an HTTP response, grouped by source.
//!
//! `status()` is one exhaustive match; every body is OpenAI-shaped with all four keys; no
//! variant carries a secret (upstream bodies are DashScope's words, never our headers).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::openai::{ErrorBody, ErrorObject};
use crate::translate::TranslateError;
use crate::translate::error::Mapped;

#[derive(Debug, Clone)]
pub enum ProxyError {
    /// The request was wrong (400 unless `status` says otherwise: 404, 413, 415).
    Client {
        status: StatusCode,
        message: String,
        param: Option<String>,
        code: String,
    },
    /// A client key was required and missing or wrong.
    Unauthorized,
    /// Too many requests in flight here.
    Overloaded,
    /// The request-body bytes held in memory at once would exceed the budget (the bytes).
    BodyBudget(usize),
    /// We are draining for shutdown.
    ShuttingDown,
    /// DashScope answered with an error.
    Upstream {
        mapped: Box<Mapped>,
        retry_after: Option<HeaderValue>,
    },
    /// DashScope could not be reached (connect error, reset before a response).
    Unreachable(String),
    /// DashScope sent nothing within the upstream timeout.
    Timeout,
    /// DashScope sent something we cannot read.
    BadUpstream(String),
    /// Our own bug: generic message, details only in the log.
    Internal(String),
    /// The state store is needed for this request and cannot be reached in time.
    StoreUnavailable(String),
    /// A key went over its `rpm` / `tpm` (`axis`: "requests" or "tokens").
    RateLimited {
        axis: &'static str,
        message: String,
        retry_after_secs: u64,
    },
}

impl ProxyError {
    pub fn bad_request(message: impl Into<String>, param: Option<&str>, code: &str) -> Self {
        ProxyError::Client {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: param.map(str::to_owned),
            code: code.to_owned(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Client { status, .. } => *status,
            ProxyError::Unauthorized => StatusCode::UNAUTHORIZED,
            ProxyError::Overloaded | ProxyError::BodyBudget(_) | ProxyError::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Upstream { mapped, .. } => {
                StatusCode::from_u16(mapped.status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            ProxyError::Unreachable(_) | ProxyError::BadUpstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// A low-cardinality label for metrics; never user data.
    pub fn label(&self) -> &'static str {
        match self {
            ProxyError::Client { .. } => "client",
            ProxyError::Unauthorized => "unauthorized",
            ProxyError::Overloaded => "overloaded",
            ProxyError::BodyBudget(_) => "body_budget",
            ProxyError::ShuttingDown => "shutting_down",
            ProxyError::Upstream { .. } => "upstream",
            ProxyError::Unreachable(_) => "unreachable",
            ProxyError::Timeout => "timeout",
            ProxyError::BadUpstream(_) => "bad_upstream",
            ProxyError::Internal(_) => "internal",
            ProxyError::StoreUnavailable(_) => "store_unavailable",
            ProxyError::RateLimited { .. } => "rate_limited",
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (message, kind, param, code) = match self {
            ProxyError::Client {
                message,
                param,
                code,
                ..
            } => (
                message.clone(),
                "invalid_request_error",
                param.clone(),
                Some(code.clone()),
            ),
            ProxyError::Unauthorized => (
                "Incorrect API key provided: the gateway requires one of its configured client keys"
                    .to_owned(),
                "invalid_request_error",
                None,
                Some("invalid_api_key".to_owned()),
            ),
            ProxyError::Overloaded => (
                "the gateway is at its concurrency limit; retry shortly".to_owned(),
                "server_error",
                None,
                Some("overloaded".to_owned()),
            ),
            ProxyError::BodyBudget(budget) => (
                format!(
                    "the gateway already holds its budget of {budget} request-body bytes \
                     (server.body_budget_bytes); retry shortly"
                ),
                "server_error",
                None,
                Some("overloaded".to_owned()),
            ),
            ProxyError::ShuttingDown => (
                "the gateway is shutting down".to_owned(),
                "server_error",
                None,
                Some("shutting_down".to_owned()),
            ),
            ProxyError::Upstream { mapped, .. } => (
                mapped.message.clone(),
                mapped.kind,
                None,
                Some(mapped.code.clone()),
            ),
            ProxyError::Unreachable(why) => (
                format!("DashScope is unreachable: {why}"),
                "server_error",
                None,
                Some("upstream_unreachable".to_owned()),
            ),
            ProxyError::Timeout => (
                "DashScope did not answer within the upstream timeout".to_owned(),
                "timeout",
                None,
                Some("upstream_timeout".to_owned()),
            ),
            ProxyError::BadUpstream(why) => (
                format!("DashScope sent an unreadable response: {why}"),
                "server_error",
                None,
                Some("bad_upstream_response".to_owned()),
            ),
            ProxyError::Internal(_) => (
                "internal gateway error".to_owned(),
                "server_error",
                None,
                Some("internal_error".to_owned()),
            ),
            ProxyError::StoreUnavailable(why) => (
                format!("the gateway's state store is unavailable ({why}); retry shortly"),
                "server_error",
                None,
                Some("state_store_unavailable".to_owned()),
            ),
            ProxyError::RateLimited { axis, message, .. } => (
                message.clone(),
                *axis,
                None,
                Some("rate_limit_exceeded".to_owned()),
            ),
        };
        ErrorBody {
            error: ErrorObject {
                message,
                kind: kind.to_owned(),
                param,
                code,
            },
        }
    }
}

impl From<TranslateError> for ProxyError {
    fn from(e: TranslateError) -> Self {
        ProxyError::Client {
            status: StatusCode::BAD_REQUEST,
            message: e.message,
            param: e.param,
            code: e.code.to_owned(),
        }
    }
}

impl From<crate::store::StoreError> for ProxyError {
    fn from(e: crate::store::StoreError) -> Self {
        crate::metrics::record_store_error("read");
        ProxyError::StoreUnavailable(e.to_string())
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::Internal(why) => write!(f, "internal: {why}"),
            other => f.write_str(&other.body().error.message),
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        match &self {
            ProxyError::Upstream {
                retry_after: Some(v),
                ..
            } => {
                resp.headers_mut().insert(header::RETRY_AFTER, v.clone());
            }
            ProxyError::Overloaded
            | ProxyError::BodyBudget(_)
            | ProxyError::ShuttingDown
            | ProxyError::StoreUnavailable(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ProxyError::RateLimited {
                retry_after_secs, ..
            } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        resp.extensions_mut().insert(self);
        resp
    }
}
