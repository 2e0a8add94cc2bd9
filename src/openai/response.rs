//! The OpenAI chat completion (non-stream) and chunk (stream) objects we serve.
//!
//! Serialize-only. Absent optional fields are skipped, never sent as `null`, except where
//! OpenAI itself sends `null` (`finish_reason` on a chunk, `content` of a tool-call message).

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// DashScope output fields with no OpenAI twin (`search_info`, `tool_info`, `audio`, …),
    /// kept as extension fields rather than dropped.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: Option<String>,
    pub logprobs: Option<Value>,
}

#[derive(Debug, Default, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Generated images (qwen-image, …), in the shape OpenRouter clients read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<ImageOutput>>,
    /// Generated speech (Qwen-Omni): `{id, data, transcript, expires_at}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<Map<String, Value>>,
    /// Native content parts with no OpenAI twin (`image_hw`, …), keyed by their part key.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

/// `{"type":"image_url","image_url":{"url":…}}`: one generated image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageOutput {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub image_url: ImageUrl,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageUrl {
    pub url: String,
}

impl ImageOutput {
    pub fn new(url: String) -> Self {
        ImageOutput {
            kind: "image_url",
            image_url: ImageUrl { url },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// `image_tokens`, `video_tokens`, `audio_tokens`, `plugins`: DashScope extensions.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

/// `cached_tokens`, plus native detail keys (`cache_creation_input_tokens`, …) kept as is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PromptTokensDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

/// `reasoning_tokens`, plus native detail keys (`text_tokens`, `audio_tokens`) kept as is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompletionTokensDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

/// A stream chunk; borrows from the stream translator so nothing is cloned per frame.
#[derive(Debug, Serialize)]
pub struct ChatCompletionChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: &'a [ChunkChoice],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<&'a Usage>,
    #[serde(flatten)]
    pub extensions: &'a Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Default, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<ImageOutput>>,
    /// One piece of generated speech: `data` is this piece only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDelta,
}

#[derive(Debug, Serialize)]
pub struct FunctionDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<Model>,
}

#[derive(Debug, Serialize)]
pub struct Model {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: String,
}
