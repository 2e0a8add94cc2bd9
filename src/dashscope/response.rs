//! The native response body, also the payload of every SSE frame.
//!
//! Lenient: every field is optional, `finish_reason` is a plain string (DashScope sends the
//! string `"null"` mid-stream), content is a string (text path) or `[{"text"}]` parts
//! (multimodal path). Output keys we do not map (`search_info`, `tool_info`, `audio`, …) and
//! usage keys without an OpenAI twin are kept in `extra` and forwarded as extensions.
//! Never forwarded: `status_code`, and the upstream-internal [`INTERNAL_OUTPUT_KEYS`] (the
//! client's model name is echoed, so an alias's target never leaks).

use serde::Deserialize;
use serde_json::{Map, Value};

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

/// `output` keys that name or describe the upstream's own deployment, not the answer.
pub const INTERNAL_OUTPUT_KEYS: &[&str] = &["model_name", "model"];

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

lenient_struct! {
    /// `{"text"}`, `{"image": url}` (image output), or another modality's part
    /// (`image_hw`, `audio`, …) kept in `extra`.
    pub struct ContentPart {
        text: String,
        image: String,
    }
}

/// Everything an assistant content carries, split by kind.
#[derive(Debug, Default, PartialEq)]
pub struct Pieces {
    /// Text parts joined (or the string content).
    pub text: String,
    /// `{"image": url}` parts: generated images.
    pub images: Vec<String>,
    /// Other parts' keys (`image_hw`, `audio`, …); a key seen twice keeps the last value.
    pub other: Map<String, Value>,
}

impl Content {
    /// The text of the content, multimodal parts joined; empty when there is none.
    pub fn into_text(self) -> String {
        self.into_pieces().text
    }

    /// Text, images and other parts: nothing the model produced is dropped.
    pub fn into_pieces(self) -> Pieces {
        match self {
            Content::Text(text) => Pieces {
                text,
                ..Pieces::default()
            },
            Content::Parts(parts) => {
                let mut out = Pieces::default();
                for p in parts {
                    if let Some(t) = p.text {
                        out.text.push_str(&t);
                    }
                    if let Some(url) = p.image.filter(|u| !u.is_empty()) {
                        out.images.push(url);
                    }
                    // `type` only labels a part (`{"type":"text",…}`): not content.
                    out.other
                        .extend(p.extra.into_iter().filter(|(k, _)| k != "type"));
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
