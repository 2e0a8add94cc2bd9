//! Native text embedding (`…/services/embeddings/text-embedding/text-embedding`). Serde only.
//!
//! The request borrows its texts (one chunk of the client's inputs is a slice, never a copy).
//! The response is generic over how a vector is read, chosen by the client's `encoding_format`:
//! as raw JSON by default (a float answer is written back to the client byte for byte), or by a
//! type that encodes the numbers while the body is parsed (one pass, no copy of the text).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The synchronous text-embedding path.
pub const PATH: &str = "/api/v1/services/embeddings/text-embedding/text-embedding";

#[derive(Debug, Serialize)]
pub struct EmbeddingRequest<'a> {
    pub model: &'a str,
    pub input: EmbeddingInput<'a>,
    #[serde(skip_serializing_if = "EmbeddingParameters::is_empty")]
    pub parameters: &'a EmbeddingParameters,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingInput<'a> {
    pub texts: &'a [String],
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EmbeddingParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimension: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instruct: Option<String>,
    /// Unknown client fields forwarded as parameters (the `forward` policy).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl EmbeddingParameters {
    pub fn is_empty(&self) -> bool {
        self == &EmbeddingParameters::default()
    }
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct EmbeddingResponse<V = Box<RawValue>> {
    #[serde(default = "none")]
    pub output: Option<EmbeddingOutput<V>>,
    #[serde(default)]
    pub usage: Option<EmbeddingUsage>,
    #[serde(default)]
    pub request_id: Option<String>,
    /// A 200 body can still be an error: a non-empty `code` means failure.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl<V> Default for EmbeddingResponse<V> {
    fn default() -> Self {
        EmbeddingResponse {
            output: None,
            usage: None,
            request_id: None,
            code: None,
            message: None,
        }
    }
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct EmbeddingOutput<V = Box<RawValue>> {
    #[serde(default = "Vec::new")]
    pub embeddings: Vec<EmbeddingItem<V>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct EmbeddingItem<V = Box<RawValue>> {
    /// The position in this call's `texts` (the SDK also accepts `index`).
    #[serde(default, alias = "index")]
    pub text_index: Option<usize>,
    #[serde(default = "none")]
    pub embedding: Option<V>,
    #[serde(default)]
    pub sparse_embedding: Option<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct EmbeddingUsage {
    #[serde(default)]
    pub total_tokens: Option<u64>,
}
