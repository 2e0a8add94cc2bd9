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

/// DashScope's finish reason → OpenAI's: `"null"`, `null` and `""` mean "not finished"; a
/// reason OpenAI does not define becomes the nearest one it does (clients match on the set).
pub fn finish_reason(raw: Option<&str>) -> Option<String> {
    let mapped = match raw? {
        "null" | "" => return None,
        r @ ("stop" | "length" | "tool_calls" | "content_filter" | "function_call") => r,
        "max_tokens" | "max_length" | "max_completion_tokens" => "length",
        "tool_call" | "function_calls" => "tool_calls",
        r if is_moderation(r) => "content_filter",
        _ => "stop",
    };
    Some(mapped.to_owned())
}

/// A native code or finish reason that means output moderation stopped the answer.
pub fn is_moderation(code: &str) -> bool {
    let lower = code.to_ascii_lowercase();
    lower.contains("datainspection")
        || lower.contains("data_inspection")
        || lower.contains("sensitive")
        || lower.contains("content_filter")
}

/// The answer was cut by DashScope's limit on non-stream calls (`x-dashscope-partialresponse:
/// true`): an unfinished choice is a `length` stop, never a silent success.
pub fn mark_partial(completion: &mut openai::ChatCompletion, warnings: &mut super::Warnings) {
    for c in &mut completion.choices {
        if c.finish_reason.as_deref().is_none_or(|r| r == "stop") {
            c.finish_reason = Some("length".into());
        }
    }
    warnings.push(
        "the answer was cut at DashScope's time limit for non-stream calls (x-dashscope-partialresponse); finish_reason is length",
    );
}

/// [`mark_partial`] on the native answer, for translators that read native frames: every
/// choice that stopped (or did not say) becomes a `length` stop, with the same warning.
pub fn mark_partial_native(answer: &mut ds::GenerationResponse, warnings: &mut super::Warnings) {
    if let Some(output) = answer.output.as_mut() {
        for c in output.choices.iter_mut().flatten() {
            if c.finish_reason
                .as_deref()
                .is_none_or(|r| r == "stop" || r == "null")
            {
                c.finish_reason = Some("length".into());
            }
        }
    }
    warnings.push(
        "the answer was cut at DashScope's time limit for non-stream calls (x-dashscope-partialresponse); finish_reason is length",
    );
}

/// Drop upstream-internal keys (`model_name`, …) from the native `output` extras.
pub fn strip_internal(extra: &mut Map<String, Value>) {
    for k in ds::INTERNAL_OUTPUT_KEYS {
        extra.remove(*k);
    }
}

/// `output.audio` (Qwen-Omni speech) as OpenAI's `audio` object; `None` when it carries
/// nothing (no data and no transcript).
pub fn audio(v: Value) -> Option<Map<String, Value>> {
    let Value::Object(o) = v else { return None };
    let has = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    (has("data") || has("transcript") || has("url")).then_some(o)
}

/// Image URLs as OpenAI-style image outputs; `None` when there are none.
pub fn images(urls: Vec<String>) -> Option<Vec<openai::ImageOutput>> {
    (!urls.is_empty()).then(|| urls.into_iter().map(openai::ImageOutput::new).collect())
}

pub fn to_openai(resp: ds::GenerationResponse, meta: &Meta) -> openai::ChatCompletion {
    let mut output = resp.output.unwrap_or_default();
    strip_internal(&mut output.extra);
    let mut speech = output.extra.remove("audio").and_then(audio);
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
            let mut pieces = msg
                .content
                .map(ds::Content::into_pieces)
                .unwrap_or_default();
            let content = assistant_content(pieces.text, tool_calls.is_some());
            let part_audio = pieces.other.remove("audio").and_then(audio);
            choices.push(openai::Choice {
                index,
                message: openai::AssistantMessage {
                    role: "assistant",
                    content,
                    reasoning_content: msg.reasoning_content.filter(|r| !r.is_empty()),
                    tool_calls,
                    images: images(pieces.images),
                    audio: part_audio.or_else(|| speech.take()),
                    extensions: pieces.other,
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
                audio: speech.take(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finish_reason_is_one_openai_defines() {
        let cases = [
            (None, None),
            (Some("null"), None),
            (Some(""), None),
            (Some("stop"), Some("stop")),
            (Some("length"), Some("length")),
            (Some("tool_calls"), Some("tool_calls")),
            (Some("max_tokens"), Some("length")),
            (Some("tool_call"), Some("tool_calls")),
            (Some("DataInspectionFailed"), Some("content_filter")),
            (Some("sensitive"), Some("content_filter")),
            (Some("insufficient_system_resource"), Some("stop")),
            (Some("interrupted"), Some("stop")),
        ];
        for (raw, want) in cases {
            assert_eq!(finish_reason(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn a_partial_response_is_a_length_stop_with_a_warning() {
        let raw = r#"{"output":{"choices":[{"finish_reason":"null","message":{"role":"assistant","content":"The first half"}}]},"usage":{"input_tokens":5,"output_tokens":4000},"request_id":"r-p"}"#;
        let meta = Meta {
            id: "chatcmpl-r-p".into(),
            created: 1,
            model: "qwen-max".into(),
        };
        let mut c = to_openai(serde_json::from_str(raw).unwrap(), &meta);
        assert_eq!(c.choices[0].finish_reason, None);
        let mut w = super::super::Warnings::default();
        mark_partial(&mut c, &mut w);
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("length"));
        assert_eq!(
            c.choices[0].message.content.as_deref(),
            Some("The first half")
        );
        assert!(
            w.header_value()
                .unwrap()
                .contains("x-dashscope-partialresponse")
        );
    }
}
