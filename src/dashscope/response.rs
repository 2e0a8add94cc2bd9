//! The native response body, also the payload of every SSE frame.
//!
//! Lenient: every field is optional, `finish_reason` is a plain string (DashScope sends the
//! string `"null"` mid-stream), content is a string (text path) or `[{"text"}]` parts
//! (multimodal path). Output keys we do not map (`search_info`, `tool_info`, `audio`, …) and
//! usage keys without an OpenAI twin are kept in `extra` and forwarded as extensions.
//! Ignored on purpose: `status_code`, `output.model_name` (the client's model name is echoed).

use serde::Deserialize;
use serde_json::Value;

use crate::lenient::lenient_struct;

lenient_struct! {
    pub struct GenerationResponse {
        output: Output,
        usage: Usage,
        request_id: String,
        /// A 200 body can still be an error: a non-empty `code` means failure.
        code: String,
        message: String,
    }
}

lenient_struct! {
    pub struct Output {
        choices: Vec<Choice>,
        /// `result_format: "text"` shape: `output.text` + `output.finish_reason`.
        text: String,
        finish_reason: String,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub message: Option<ChoiceMessage>,
    #[serde(default)]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChoiceMessage {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// Assistant content: a string, or multimodal `[{"text": …}, {"image_hw": …}]` parts.
pub type Content = crate::lenient::TextOrParts<ContentPart>;

#[derive(Debug, Default, Deserialize)]
pub struct ContentPart {
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    /// The text of the content, multimodal parts joined; empty when there is none.
    pub fn into_text(self) -> String {
        match self {
            Content::Text(s) => s,
            Content::Parts(parts) => {
                let mut out = String::new();
                for p in parts {
                    if let Some(t) = p.text {
                        out.push_str(&t);
                    }
                }
                out
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ToolCall {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionFragment>,
}

#[derive(Debug, Default, Deserialize)]
pub struct FunctionFragment {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

lenient_struct! {
    #[derive(Clone)]
    pub struct Usage {
        input_tokens: u64,
        output_tokens: u64,
        total_tokens: u64,
        prompt_tokens_details: PromptTokensDetails,
        /// Some multimodal models report cache hits here instead.
        cached_tokens: u64,
        output_tokens_details: OutputTokensDetails,
    }
}

lenient_struct! {
    #[derive(Clone)]
    pub struct PromptTokensDetails {
        cached_tokens: u64,
    }
}

lenient_struct! {
    /// `reasoning_tokens`, plus `text_tokens` / `audio_tokens` kept in `extra`.
    #[derive(Clone)]
    pub struct OutputTokensDetails {
        reasoning_tokens: u64,
    }
}
