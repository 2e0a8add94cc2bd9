//! The OpenAI `POST /v1/chat/completions` request, as clients send it.
//!
//! Lenient on purpose: unknown top-level fields land in `extra` (DashScope extras sent through
//! the SDKs' `extra_body`), unknown message and part keys in their own `extra`, and a part keeps
//! its `type` as a plain string so the translator can name a part it cannot represent.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::lenient::lenient_struct;

lenient_struct! {
    pub struct ChatCompletionRequest {
        model: String,
        messages: Vec<Message>,
        stream: bool,
        stream_options: StreamOptions,
        temperature: f64,
        top_p: f64,
        max_tokens: u64,
        max_completion_tokens: u64,
        stop: Stop,
        seed: i64,
        presence_penalty: f64,
        n: u32,
        /// Tool schemas are opaque to us: kept as raw JSON, never re-parsed or re-built.
        tools: Vec<Box<RawValue>>,
        tool_choice: Value,
        parallel_tool_calls: bool,
        /// Legacy function calling (`functions` / `function_call`), converted to tools.
        functions: Vec<Box<RawValue>>,
        function_call: Value,
        response_format: Value,
        logprobs: bool,
        top_logprobs: u32,
        reasoning_effort: String,
        web_search_options: Value,
    }
}

lenient_struct! {
    pub struct StreamOptions {
        include_usage: bool,
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<Value>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    /// Legacy function-result role; translated as `tool`.
    Function,
}

lenient_struct! {
    pub struct Message {
        role: Role,
        content: Content,
        name: String,
        tool_calls: Vec<ToolCall>,
        tool_call_id: String,
        /// Legacy assistant function call.
        function_call: FunctionCall,
        reasoning_content: String,
    }
}

/// Message content: a string or a list of parts.
pub type Content = crate::lenient::TextOrParts<Part>;

lenient_struct! {
    /// One content part. Sibling keys (`cache_control`, `min_pixels`, `fps`, …) stay in
    /// `extra` and are forwarded onto the native part.
    pub struct Part {
        kind = "type": String,
        text: String,
        image_url: MediaUrl,
        input_audio: InputAudio,
        video_url: MediaUrl,
        /// DashScope's own OpenAI extension: `{"type":"video","video":[frame urls]}`.
        video: Value,
    }
}

/// `"https://…"` or `{"url": "https://…", "detail": …}`; hand-written for the reason given on
/// [`Content`].
#[derive(Debug)]
pub enum MediaUrl {
    Url(String),
    Object(MediaObject),
}

impl<'de> Deserialize<'de> for MediaUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MediaUrl;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a URL string or an object with a `url`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MediaUrl, E> {
                Ok(MediaUrl::Url(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<MediaUrl, E> {
                Ok(MediaUrl::Url(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<MediaUrl, A::Error> {
                MediaObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(MediaUrl::Object)
            }
        }
        d.deserialize_any(V)
    }
}

impl MediaUrl {
    pub fn into_parts(
        self,
    ) -> (
        Option<String>,
        Option<String>,
        serde_json::Map<String, Value>,
    ) {
        match self {
            MediaUrl::Url(u) => (Some(u), None, serde_json::Map::new()),
            MediaUrl::Object(o) => (o.url, o.detail, o.extra),
        }
    }
}

lenient_struct! {
    pub struct MediaObject {
        url: String,
        detail: String,
    }
}

lenient_struct! {
    pub struct InputAudio {
        data: String,
        format: String,
    }
}

lenient_struct! {
    pub struct ToolCall {
        id: String,
        kind = "type": String,
        function: FunctionCall,
    }
}

lenient_struct! {
    pub struct FunctionCall {
        name: String,
        arguments: String,
    }
}
