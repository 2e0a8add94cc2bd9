//! The native request: `{"model", "input": {"messages"}, "parameters"}`.
//!
//! Owned values moved out of the OpenAI request (no copies of large strings); tool schemas stay
//! raw JSON. Absent fields are skipped, never sent as `null`.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

#[derive(Debug, Serialize)]
pub struct GenerationRequest {
    pub model: String,
    pub input: Input,
    pub parameters: Parameters,
}

#[derive(Debug, Serialize)]
pub struct Input {
    pub messages: Vec<Message>,
}

/// `parameters`: raw tool schemas plus every other parameter as JSON, so config defaults,
/// overrides and client extras merge by key and keep their JSON types.
#[derive(Debug, Default, Serialize)]
pub struct Parameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Box<RawValue>>>,
    #[serde(flatten)]
    pub values: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct Message {
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Message keys OpenAI does not define (`partial`, …), forwarded as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    /// Modality-keyed parts: `{"text"}`, `{"image"}`, `{"audio"}`, `{"video"}` (+ siblings).
    Parts(Vec<Map<String, Value>>),
}

#[derive(Debug, Serialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub index: u32,
    pub function: FunctionCall,
}

#[derive(Debug, Serialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}
