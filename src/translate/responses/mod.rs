//! The OpenAI Responses API over the native API: pure translation, one state machine.
//!
//! - [`request`]: a Responses request → the chat request it means (then the chat translator
//!   produces the native request, so every chat rule applies identically).
//! - [`stream`]: native frames → Responses events and the response object; also used for
//!   non-stream answers (one frame) and for aggregating a streamed upstream.
//! - here: the tool-name map shared by both sides, the reasoning round-trip encoding, and the
//!   error codes Responses clients classify.

pub mod request;
pub mod stream;

use base64_simd::URL_SAFE_NO_PAD;

use super::error::Mapped;

/// How a tool the model may call was declared by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    Function,
    /// Freeform: the native function takes `{"input": string}`; calls come back raw.
    Custom,
}

/// One declared tool: the function name sent upstream and what the client calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolName {
    pub wire: String,
    pub name: String,
    pub namespace: Option<String>,
    pub kind: ToolKind,
}

/// The tools of one request, by upstream function name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames(pub Vec<ToolName>);

impl ToolNames {
    pub fn by_wire(&self, wire: &str) -> Option<&ToolName> {
        self.0.iter().find(|t| t.wire == wire)
    }

    /// The upstream name of a client tool name (namespaced names flattened as `ns__name`).
    pub fn wire_name(&self, name: &str, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) => format!("{ns}__{name}"),
            None => self
                .0
                .iter()
                .find(|t| t.name == name && t.namespace.is_none())
                .or_else(|| self.0.iter().find(|t| t.name == name))
                .map_or_else(|| name.to_owned(), |t| t.wire.clone()),
        }
    }
}

/// Prefix of our `encrypted_content`: versioned so a later format can coexist.
const REASONING_PREFIX: &str = "dbr1.";

/// The `encrypted_content` of a reasoning item: not secret, only opaque and versioned —
/// `dbr1.` + base64url(JSON `{"m": model, "t": text}`), decodable by us on the next turn.
pub fn encode_reasoning(model: &str, text: &str) -> String {
    let json = serde_json::json!({ "m": model, "t": text }).to_string();
    format!(
        "{REASONING_PREFIX}{}",
        URL_SAFE_NO_PAD.encode_to_string(json)
    )
}

/// The reasoning text in one of our `encrypted_content` values; `None` for anything else
/// (other providers' ciphertext is dropped).
pub fn decode_reasoning(s: &str) -> Option<String> {
    let b64 = s.strip_prefix(REASONING_PREFIX)?;
    let bytes = URL_SAFE_NO_PAD
        .decode_to_vec(b64.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("t")?.as_str().map(str::to_owned)
}

/// Rewrite a classified upstream error into the codes Responses clients (Codex above all)
/// classify: `context_length_exceeded`, `rate_limit_exceeded` ("try again in Ns"),
/// `insufficient_quota`, `invalid_api_key`, `invalid_prompt`, `server_error`. `retry_after`
/// is the Retry-After seconds the client will see with a 429.
pub fn responses_error(mapped: &mut Mapped, retry_after: Option<u64>) {
    let lower = mapped.message.to_ascii_lowercase();
    let quota = mapped.code == "Arrearage"
        || lower.contains("dashscope code arrearage")
        || lower.contains("free allocated quota exceeded")
        || lower.contains("allocationquota.freetieronly")
        || mapped.code == "AllocationQuota.FreeTierOnly";
    if quota {
        mapped.code = "insufficient_quota".into();
        mapped.kind = "insufficient_quota";
    } else if mapped.code == "rate_limit_exceeded" {
        let n = retry_after.unwrap_or(1);
        mapped.message = format!("{} Please try again in {n}s.", mapped.message);
    } else if mapped.code == "content_filter" {
        mapped.code = "invalid_prompt".into();
    } else if mapped.status >= 500 {
        mapped.code = "server_error".into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_round_trips_and_foreign_ciphertext_is_dropped() {
        let e = encode_reasoning("qwen-plus", "think \"hard\" 杭州");
        assert!(e.starts_with("dbr1."));
        assert_eq!(decode_reasoning(&e).as_deref(), Some("think \"hard\" 杭州"));
        assert_eq!(decode_reasoning("gAAAAABfoo"), None);
        assert_eq!(decode_reasoning("dbr1.!!!"), None);
        assert_eq!(decode_reasoning("dbr1."), None);
    }

    fn mapped(status: u16, code: &str, message: &str) -> Mapped {
        Mapped {
            status,
            kind: "x",
            code: code.into(),
            message: message.into(),
            retryable: false,
            wrong_endpoint: false,
            needs_stream: false,
            request_id: None,
        }
    }

    #[test]
    fn error_codes_follow_what_codex_classifies() {
        let mut m = mapped(429, "rate_limit_exceeded", "Requests rate limit exceeded");
        responses_error(&mut m, Some(7));
        assert_eq!(
            m.message,
            "Requests rate limit exceeded Please try again in 7s."
        );
        let mut m = mapped(400, "Arrearage", "Access denied (DashScope code Arrearage)");
        responses_error(&mut m, None);
        assert_eq!(m.code, "insufficient_quota");
        let mut m = mapped(
            400,
            "content_filter",
            "Input data may contain inappropriate content",
        );
        responses_error(&mut m, None);
        assert_eq!(m.code, "invalid_prompt");
        let mut m = mapped(502, "InternalError", "upstream error: boom");
        responses_error(&mut m, None);
        assert_eq!(m.code, "server_error");
        let mut m = mapped(400, "context_length_exceeded", "Range of input length");
        responses_error(&mut m, None);
        assert_eq!(m.code, "context_length_exceeded");
    }
}
