//! (upstream HTTP status, DashScope error body) → the OpenAI error a client gets.
//!
//! DashScope codes decide first (a 200 body or an in-stream `event:error` carries no useful
//! status), the HTTP status second. `code` is OpenAI's conventional code where one exists
//! (`invalid_api_key`, `model_not_found`, `rate_limit_exceeded`, `insufficient_quota`,
//! `context_length_exceeded`, `content_filter`), else DashScope's own; the message keeps
//! DashScope's words.

use crate::dashscope::ErrorBody;

#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub status: u16,
    pub kind: &'static str,
    pub code: String,
    pub message: String,
    /// Worth retrying (throttling, 5xx), if nothing reached the client yet.
    pub retryable: bool,
    /// "url error": the model lives on the other generation path.
    pub wrong_endpoint: bool,
    /// The model refused a non-stream call: stream upstream and aggregate instead.
    pub needs_stream: bool,
    /// DashScope's request id, for the client's `x-request-id`.
    pub request_id: Option<String>,
}

/// Classify an upstream failure. `status` is the HTTP status, or `None` for an error that
/// arrived inside a 200 (body `code` or `event:error`).
pub fn classify(status: Option<u16>, body: &ErrorBody) -> Mapped {
    let code = body.code.clone().unwrap_or_default();
    let raw_message = body.message.clone().unwrap_or_default();
    let lower = raw_message.to_ascii_lowercase();
    let status = status
        .filter(|s| *s >= 400)
        .unwrap_or_else(|| status_for_code(&code));

    let wrong_endpoint = lower.contains("url error");
    let needs_stream = lower.contains("enable_thinking must be set to false for non-streaming")
        || lower.contains("enable_thinking only support stream")
        || lower.contains("only support stream mode")
        || lower.contains("does not support http call");
    let model_missing = code == "ModelNotFound"
        || code == "model_not_found"
        || code == "Model.NotExist"
        || lower.contains("model not exist")
        || lower.contains("model can not be found")
        || (lower.contains("model") && lower.contains("does not exist"));

    // The account cannot pay (overdue, free tier exhausted): OpenAI's `insufficient_quota`,
    // with DashScope's status kept (Arrearage is a 400) and never retried.
    let free_quota_gone = lower.contains("free allocated quota exceeded");
    let no_quota = code == "Arrearage"
        || code.starts_with("AllocationQuota.FreeTierOnly")
        || code == "insufficient_quota"
        || free_quota_gone;
    let (status, kind, openai_code) = if no_quota {
        (status, "insufficient_quota", Some("insufficient_quota"))
    } else if model_missing {
        (404, "invalid_request_error", Some("model_not_found"))
    } else if code == "InvalidApiKey" {
        (401, "invalid_request_error", Some("invalid_api_key"))
    } else if code.starts_with("Throttling") || code == "LimitRequests" || status == 429 {
        (429, "rate_limit_exceeded", Some("rate_limit_exceeded"))
    } else if code.contains("DataInspectionFailed")
        || code.eq_ignore_ascii_case("data_inspection_failed")
    {
        (400, "invalid_request_error", Some("content_filter"))
    } else if lower.contains("range of input length") {
        (
            400,
            "invalid_request_error",
            Some("context_length_exceeded"),
        )
    } else if code == "RequestTimeOut" || status == 408 {
        (504, "timeout", None)
    } else {
        match status {
            401 => (401, "authentication_error", None),
            403 => (403, "permission_error", None),
            404 => (404, "not_found_error", None),
            413 => (413, "invalid_request_error", None),
            503 => (503, "server_error", None),
            s if s >= 500 => {
                if code == "ModelServingError" || code == "ModelUnavailable" {
                    (503, "server_error", None)
                } else {
                    (502, "server_error", None)
                }
            }
            s => (s, "invalid_request_error", None),
        }
    };
    let retryable = (status == 429 && !no_quota) || status >= 500;

    let mut message = if raw_message.is_empty() {
        format!("DashScope returned HTTP {status}")
    } else {
        raw_message
    };
    if status >= 500 {
        message = format!("upstream error: {message}");
    }
    let mut context = Vec::new();
    if !code.is_empty() {
        context.push(format!("DashScope code {code}"));
    }
    if let Some(id) = &body.request_id {
        context.push(format!("request_id {id}"));
    }
    if !context.is_empty() {
        message = format!("{message} ({})", context.join(", "));
    }
    Mapped {
        status,
        kind,
        code: openai_code.map(str::to_owned).unwrap_or_else(|| {
            if code.is_empty() {
                "upstream_error".into()
            } else {
                code
            }
        }),
        message,
        retryable,
        wrong_endpoint,
        needs_stream,
        request_id: body.request_id.clone(),
    }
}

/// The HTTP status a DashScope code stands for, for errors that arrived without one.
fn status_for_code(code: &str) -> u16 {
    match code {
        "InvalidApiKey" | "NOT AUTHORIZED" => 401,
        c if c.starts_with("AccessDenied") || c.ends_with(".AccessDenied") => 403,
        "ModelNotFound" | "WorkSpaceNotFound" | "Model.NotExist" => 404,
        c if c.starts_with("Throttling") => 429,
        "RequestTimeOut" => 504,
        c if c.starts_with("InternalError") && !c.contains("InvalidParameter") => 500,
        "SystemError" | "ModelServiceFailed" => 500,
        "ModelServingError" | "ModelUnavailable" | "ServiceUnavailable" => 503,
        _ => 400,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, message: &str) -> ErrorBody {
        ErrorBody {
            code: Some(code.into()),
            message: Some(message.into()),
            request_id: Some("r-1".into()),
            ..ErrorBody::default()
        }
    }

    #[test]
    fn arrearage_and_exhausted_quotas_are_insufficient_quota() {
        let m = classify(
            Some(400),
            &body(
                "Arrearage",
                "Access denied, please make sure your account is in good standing.",
            ),
        );
        assert_eq!(
            (m.status, m.kind, m.code.as_str(), m.retryable),
            (400, "insufficient_quota", "insufficient_quota", false)
        );
        let m = classify(
            Some(429),
            &body(
                "Throttling.AllocationQuota",
                "Free allocated quota exceeded.",
            ),
        );
        assert_eq!(
            (m.status, m.code.as_str(), m.retryable),
            (429, "insufficient_quota", false)
        );
        let m = classify(
            Some(403),
            &body("AllocationQuota.FreeTierOnly", "free tier"),
        );
        assert_eq!((m.status, m.code.as_str()), (403, "insufficient_quota"));
        // A rate quota is a rate limit, retried.
        let m = classify(
            Some(429),
            &body(
                "Throttling.AllocationQuota",
                "Allocated quota exceeded, please increase your quota limit.",
            ),
        );
        assert_eq!(
            (m.code.as_str(), m.retryable),
            ("rate_limit_exceeded", true)
        );
    }
}
