//! Stream chunks → one non-stream completion.
//!
//! Used when a non-stream client meets a model that only streams (thinking models, QwQ/QVQ):
//! the upstream is called with SSE and the stream translator's chunks are folded here, so the
//! client gets one ordinary `chat.completion` with content, reasoning, tool calls and usage.

use serde_json::{Map, Value};

use super::response::{Meta, assistant_content, completion};
use super::stream::ChunkBody;
use crate::openai;

#[derive(Debug, Default)]
struct ChoiceAcc {
    content: String,
    reasoning: String,
    tools: Vec<openai::ToolCall>,
    finish_reason: Option<String>,
    logprobs: Option<Vec<Value>>,
    images: Vec<openai::ImageOutput>,
    /// Speech: every piece's `data` (and `transcript`) concatenated, other keys first seen.
    audio: Option<Map<String, Value>>,
    extensions: Map<String, Value>,
}

/// Append one streamed audio piece to the aggregate: `data` and `transcript` concatenate.
fn push_audio(acc: &mut Option<Map<String, Value>>, piece: Map<String, Value>) {
    let Some(total) = acc else {
        *acc = Some(piece);
        return;
    };
    for (k, v) in piece {
        match (k.as_str(), total.get_mut(&k), v) {
            ("data" | "transcript", Some(Value::String(have)), Value::String(more)) => {
                have.push_str(&more);
            }
            (_, Some(_), _) => {}
            (_, None, v) => {
                total.insert(k, v);
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Aggregator {
    choices: Vec<ChoiceAcc>,
    extensions: Map<String, Value>,
}

impl Aggregator {
    pub fn push(&mut self, body: ChunkBody) {
        self.extensions.extend(body.extensions);
        for c in body.choices {
            let i = c.index as usize;
            if self.choices.len() <= i {
                self.choices.resize_with(i + 1, ChoiceAcc::default);
            }
            let acc = &mut self.choices[i];
            if let Some(t) = c.delta.content {
                acc.content.push_str(&t);
            }
            if let Some(r) = c.delta.reasoning_content {
                acc.reasoning.push_str(&r);
            }
            for d in c.delta.tool_calls.into_iter().flatten() {
                let k = d.index as usize;
                if acc.tools.len() <= k {
                    acc.tools.resize_with(k + 1, || openai::ToolCall {
                        id: String::new(),
                        kind: "function",
                        function: openai::FunctionCall {
                            name: String::new(),
                            arguments: String::new(),
                        },
                    });
                }
                let call = &mut acc.tools[k];
                if let Some(id) = d.id {
                    call.id = id;
                }
                if let Some(n) = d.function.name {
                    call.function.name.push_str(&n);
                }
                if let Some(a) = d.function.arguments {
                    call.function.arguments.push_str(&a);
                }
            }
            if let Some(Value::Array(entries)) = c
                .logprobs
                .and_then(|mut l| l.get_mut("content").map(Value::take))
            {
                acc.logprobs.get_or_insert_with(Vec::new).extend(entries);
            }
            for img in c.delta.images.into_iter().flatten() {
                if !acc.images.contains(&img) {
                    acc.images.push(img);
                }
            }
            if let Some(a) = c.delta.audio {
                push_audio(&mut acc.audio, a);
            }
            acc.extensions.extend(c.delta.extensions);
            if c.finish_reason.is_some() {
                acc.finish_reason = c.finish_reason;
            }
        }
    }

    pub fn finish(self, meta: &Meta, usage: Option<openai::Usage>) -> openai::ChatCompletion {
        let choices = self
            .choices
            .into_iter()
            .enumerate()
            .map(|(i, acc)| {
                let tool_calls = (!acc.tools.is_empty()).then_some(acc.tools);
                let content = assistant_content(acc.content, tool_calls.is_some());
                openai::Choice {
                    index: u32::try_from(i).unwrap_or(0),
                    message: openai::AssistantMessage {
                        role: "assistant",
                        content,
                        reasoning_content: (!acc.reasoning.is_empty()).then_some(acc.reasoning),
                        tool_calls,
                        images: (!acc.images.is_empty()).then_some(acc.images),
                        audio: acc.audio,
                        extensions: acc.extensions,
                    },
                    finish_reason: acc.finish_reason,
                    logprobs: acc
                        .logprobs
                        .map(|content| serde_json::json!({ "content": content, "refusal": null })),
                }
            })
            .collect();
        completion(meta, choices, usage, self.extensions)
    }
}
