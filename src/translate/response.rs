//! `dashscope::GenerationResponse` → `openai::ChatCompletion` (non-stream), plus the pieces
//! the stream translator shares: finish reasons, usage and logprobs.

use serde_json::{Map, Value};

use crate::dashscope::response as ds;
use crate::openai;

/// Identity of the response being built: fixed by the caller (no clock, no randomness here).
#[derive(Debug, Clone)]
pub struct Meta {
    pub id: String,
    pub created: u64,
    /// The model name the client sent (aliases are echoed, not resolved names).
    pub model: String,
}

/// The completion id: `chatcmpl-<request_id>` when DashScope gave one.
pub fn completion_id(request_id: Option<&str>, fallback: &str) -> String {
    format!("chatcmpl-{}", request_id.unwrap_or(fallback))
}

/// DashScope's finish reason → OpenAI's: `"null"`, `null` and `""` mean "not finished".
pub fn finish_reason(raw: Option<&str>) -> Option<String> {
    match raw {
        None | Some("null" | "") => None,
        Some(r) => Some(r.to_owned()),
    }
}

pub fn to_openai(resp: ds::GenerationResponse, meta: &Meta) -> openai::ChatCompletion {
    let output = resp.output.unwrap_or_default();
    let mut choices = Vec::new();
    if let Some(list) = output.choices {
        for (pos, c) in list.into_iter().enumerate() {
            let index = c
                .index
                .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX));
            let msg = c.message.unwrap_or_default();
            let tool_calls: Option<Vec<openai::ToolCall>> = msg.tool_calls.map(|calls| {
                calls
                    .into_iter()
                    .enumerate()
                    .map(|(k, t)| {
                        let f = t.function.unwrap_or_default();
                        openai::ToolCall {
                            id: t
                                .id
                                .filter(|id| !id.is_empty())
                                .unwrap_or_else(|| synthetic_call_id(&meta.id, index, k)),
                            kind: "function",
                            function: openai::FunctionCall {
                                name: f.name.unwrap_or_default(),
                                arguments: f.arguments.unwrap_or_default(),
                            },
                        }
                    })
                    .collect()
            });
            let tool_calls = tool_calls.filter(|t| !t.is_empty());
            let text = msg.content.map(ds::Content::into_text).unwrap_or_default();
            let content = assistant_content(text, tool_calls.is_some());
            choices.push(openai::Choice {
                index,
                message: openai::AssistantMessage {
                    role: "assistant",
                    content,
                    reasoning_content: msg.reasoning_content.filter(|r| !r.is_empty()),
                    tool_calls,
                },
                finish_reason: finish_reason(c.finish_reason.as_deref()),
                logprobs: c.logprobs.map(logprobs),
            });
        }
        choices.sort_by_key(|c| c.index);
    } else if let Some(text) = output.text {
        choices.push(openai::Choice {
            index: 0,
            message: openai::AssistantMessage {
                role: "assistant",
                content: Some(text),
                ..Default::default()
            },
            finish_reason: finish_reason(output.finish_reason.as_deref()),
            logprobs: None,
        });
    }
    completion(meta, choices, resp.usage.map(usage), output.extra)
}

/// A `chat.completion` with the response's stable identity.
pub fn completion(
    meta: &Meta,
    choices: Vec<openai::Choice>,
    usage: Option<openai::Usage>,
    extensions: Map<String, Value>,
) -> openai::ChatCompletion {
    openai::ChatCompletion {
        id: meta.id.clone(),
        object: "chat.completion",
        created: meta.created,
        model: meta.model.clone(),
        choices,
        usage,
        extensions,
    }
}

/// OpenAI sends `content: null` on a message that only calls tools; otherwise the text as is.
pub fn assistant_content(text: String, has_tool_calls: bool) -> Option<String> {
    (!(text.is_empty() && has_tool_calls)).then_some(text)
}

/// A tool call without an id still needs one for the follow-up turn: derive it.
pub fn synthetic_call_id(completion_id: &str, choice: u32, k: usize) -> String {
    let tail = completion_id.trim_start_matches("chatcmpl-");
    format!("call_{tail}_{choice}_{k}")
}

/// Native usage → OpenAI usage. `total_tokens` is computed when missing (multimodal input),
/// cached tokens are read from either native place, other keys are kept as extensions.
pub fn usage(u: ds::Usage) -> openai::Usage {
    let prompt = u.input_tokens.unwrap_or(0);
    let completion = u.output_tokens.unwrap_or(0);
    // Cached tokens live in `prompt_tokens_details` or, on some models, at the top level.
    let prompt_details = match (u.prompt_tokens_details, u.cached_tokens) {
        (Some(d), top) => Some(openai::PromptTokensDetails {
            cached_tokens: d.cached_tokens.or(top),
            extensions: d.extra,
        }),
        (None, Some(c)) => Some(openai::PromptTokensDetails {
            cached_tokens: Some(c),
            extensions: Map::new(),
        }),
        (None, None) => None,
    };
    openai::Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: u.total_tokens.unwrap_or(prompt.saturating_add(completion)),
        prompt_tokens_details: prompt_details,
        completion_tokens_details: u.output_tokens_details.map(|d| {
            openai::CompletionTokensDetails {
                reasoning_tokens: d.reasoning_tokens,
                extensions: d.extra,
            }
        }),
        extensions: u.extra,
    }
}

/// Native logprobs already use OpenAI's field names; only a `null` logprob ("probability
/// extremely low") needs a number, and OpenAI's own stand-in for that is -9999.0. Every
/// token entry gets the `top_logprobs` list OpenAI always sends.
pub fn logprobs(mut v: Value) -> Value {
    fn fix_logprob(obj: &mut Map<String, Value>) {
        if obj.get("logprob").is_none_or(Value::is_null) {
            obj.insert("logprob".into(), Value::from(-9999.0));
        }
    }
    if let Some(Value::Array(entries)) = v.get_mut("content") {
        for e in entries.iter_mut().filter_map(Value::as_object_mut) {
            fix_logprob(e);
            match e.get_mut("top_logprobs") {
                Some(Value::Array(top)) => {
                    top.iter_mut()
                        .filter_map(Value::as_object_mut)
                        .for_each(fix_logprob);
                }
                _ => {
                    e.insert("top_logprobs".into(), Value::Array(Vec::new()));
                }
            }
        }
    }
    if let Some(obj) = v.as_object_mut() {
        obj.entry("refusal").or_insert(Value::Null);
    }
    v
}
