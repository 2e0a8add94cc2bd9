//! The OpenAI Responses API (`POST /v1/responses`): the request as clients send it, the
//! response object and the streaming events we serve. Serde only, no logic.
//!
//! The request side is lenient like the chat request: unknown keys land in `extra`, item and
//! part `type`s stay plain strings so the translator can name one it cannot represent, and
//! tools stay JSON (they are echoed back verbatim in the response object).

use serde::Serialize;
use serde_json::Value;

use crate::lenient::{TextOrParts, lenient_struct};

lenient_struct! {
    pub struct ResponsesRequest {
        model: String,
        /// A string (one user message) or a list of items.
        input: TextOrParts<InputItem>,
        instructions: String,
        tools: Vec<Value>,
        tool_choice: Value,
        parallel_tool_calls: bool,
        reasoning: Reasoning,
        include: Vec<String>,
        text: TextConfig,
        max_output_tokens: u64,
        temperature: f64,
        top_p: f64,
        top_logprobs: u32,
        stream: bool,
        store: bool,
        previous_response_id: String,
        background: bool,
        conversation: Value,
        prompt: Value,
        metadata: Value,
    }
}

lenient_struct! {
    pub struct Reasoning {
        effort: String,
        summary: String,
    }
}

lenient_struct! {
    pub struct TextConfig {
        format: TextFormat,
        verbosity: String,
    }
}

lenient_struct! {
    /// `{"type":"text"}`, `{"type":"json_object"}` or the flat
    /// `{"type":"json_schema","name","schema","strict","description"}`.
    pub struct TextFormat {
        kind = "type": String,
        name: String,
        schema: Value,
        strict: bool,
        description: String,
    }
}

lenient_struct! {
    /// One input item. Every item type shares this struct: `type` says which fields matter
    /// (a message has no `type`, or `"message"`).
    pub struct InputItem {
        kind = "type": String,
        role: String,
        content: TextOrParts<InputPart>,
        id: String,
        status: String,
        call_id: String,
        name: String,
        namespace: String,
        /// `function_call`: the JSON arguments string.
        arguments: String,
        /// `custom_tool_call`: the raw freeform input.
        input: String,
        /// `function_call_output` / `custom_tool_call_output`: a string or a list of parts.
        output: TextOrParts<InputPart>,
        /// `reasoning`.
        summary: Vec<InputPart>,
        encrypted_content: String,
        /// Codex's `additional_tools` item.
        tools: Vec<Value>,
    }
}

lenient_struct! {
    /// A content part: `input_text`, `input_image`, `input_audio`, `input_file`,
    /// `output_text`, `refusal`, `reasoning_text`, `summary_text`.
    pub struct InputPart {
        kind = "type": String,
        text: String,
        image_url: String,
        file_id: String,
        detail: String,
        input_audio: InputAudio,
        refusal: String,
    }
}

lenient_struct! {
    pub struct InputAudio {
        data: String,
        format: String,
    }
}

// ---- what we serve ----------------------------------------------------------------------------

/// The response object: the non-stream body and the payload of lifecycle events.
#[derive(Debug, Clone, Serialize)]
pub struct Response {
    pub id: String,
    pub object: &'static str,
    pub created_at: u64,
    pub status: &'static str,
    pub error: Option<ResponseError>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub model: String,
    pub instructions: Option<String>,
    pub output: Vec<OutputItem>,
    pub parallel_tool_calls: bool,
    pub tool_choice: Value,
    pub tools: Vec<Value>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_output_tokens: Option<u64>,
    pub previous_response_id: Option<String>,
    pub reasoning: Value,
    pub store: bool,
    pub text: Value,
    pub truncation: &'static str,
    pub metadata: Value,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncompleteDetails {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InputTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

/// One output item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    Reasoning {
        id: String,
        status: &'static str,
        summary: Vec<TextPart>,
        content: Vec<TextPart>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
    Message {
        id: String,
        role: &'static str,
        status: &'static str,
        content: Vec<OutputText>,
    },
    FunctionCall {
        id: String,
        status: &'static str,
        call_id: String,
        name: String,
        arguments: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    CustomToolCall {
        id: String,
        status: &'static str,
        call_id: String,
        name: String,
        input: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
}

/// `{"type":"reasoning_text"|"summary_text","text"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextPart {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

/// `{"type":"output_text","text","annotations":[],"logprobs":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    pub annotations: Vec<Value>,
    pub logprobs: Vec<Value>,
}

/// A content or summary part inside a part event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventPart {
    Text(TextPart),
    Output(OutputText),
}

/// One streaming event. `kind` is both the SSE `event:` line and the JSON `type`; the other
/// fields are present for the event types that carry them.
#[derive(Debug, Clone, Serialize)]
pub struct StreamEvent {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub sequence_number: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Box<Response>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<OutputItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<EventPart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<Value>>,
}

impl StreamEvent {
    /// An event of `kind` with no fields yet (the state machine fills in the rest).
    pub fn new(kind: &'static str, sequence_number: u64) -> Self {
        StreamEvent {
            kind,
            sequence_number,
            response: None,
            item_id: None,
            output_index: None,
            content_index: None,
            summary_index: None,
            item: None,
            part: None,
            delta: None,
            text: None,
            arguments: None,
            input: None,
            logprobs: None,
        }
    }
}
