//! Text rerank: the native service (`…/services/rerank/text-rerank/text-rerank`) and the
//! OpenAI-style `/compatible-api/v1/reranks` where DashScope serves `qwen3-rerank`. Serde only.
//!
//! One response type reads both answers: native `output.results` + `request_id`, compatible
//! top-level `results` + `id`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Which of the two rerank services a model is called on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RerankEndpoint {
    Native,
    Compatible,
}

impl RerankEndpoint {
    pub const fn path(self) -> &'static str {
        match self {
            RerankEndpoint::Native => "/api/v1/services/rerank/text-rerank/text-rerank",
            RerankEndpoint::Compatible => "/compatible-api/v1/reranks",
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            RerankEndpoint::Native => "rerank",
            RerankEndpoint::Compatible => "rerank-compatible",
        }
    }
}

/// The native body: `{"model","input":{"query","documents"},"parameters":{…}}`.
#[derive(Debug, Serialize)]
pub struct RerankRequest<'a> {
    pub model: &'a str,
    pub input: RerankInput<'a>,
    #[serde(skip_serializing_if = "RerankParameters::is_empty")]
    pub parameters: &'a RerankParameters,
}

#[derive(Debug, Serialize)]
pub struct RerankInput<'a> {
    pub query: &'a str,
    pub documents: &'a [String],
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RerankParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_documents: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instruct: Option<String>,
    /// Unknown client fields forwarded as parameters (the `forward` policy).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RerankParameters {
    pub fn is_empty(&self) -> bool {
        self == &RerankParameters::default()
    }
}

/// The compatible-API body: `{"model","query","documents","top_n","instruct"}`.
#[derive(Debug, Serialize)]
pub struct CompatibleRerankRequest<'a> {
    pub model: &'a str,
    pub query: &'a str,
    pub documents: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instruct: Option<&'a str>,
    #[serde(flatten)]
    pub extra: &'a Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RerankResponse {
    /// Native answers.
    #[serde(default)]
    pub output: Option<RerankOutput>,
    #[serde(default)]
    pub request_id: Option<String>,
    /// Compatible-API answers.
    #[serde(default)]
    pub results: Option<Vec<RerankResult>>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub usage: Option<RerankUsage>,
    /// A 200 body can still be an error: a non-empty `code` means failure.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RerankOutput {
    #[serde(default)]
    pub results: Vec<RerankResult>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RerankResult {
    pub index: usize,
    /// Kept as sent, so the client gets DashScope's exact digits.
    pub relevance_score: Box<RawValue>,
    #[serde(default)]
    pub document: Option<RerankDocument>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RerankDocument {
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RerankUsage {
    #[serde(default)]
    pub total_tokens: Option<u64>,
}
