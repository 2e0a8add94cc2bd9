//! The stream translator: one native SSE frame in, at most one OpenAI chunk out.
//!
//! A pure state machine (no I/O). It owns what must stay stable or happen once across a
//! stream: the id/created/model of every chunk, `role` on each choice's first chunk, one
//! `finish_reason` per choice (a repeated final frame is ignored), tool-call headers (`id`,
//! `type`, `name`) once per call with later `arguments` pieces keyed by `index`, and the usage
//! for the final usage chunk. Memory per stream is a few small structs per choice.

use serde_json::{Map, Value};

use super::response::{Meta, finish_reason, logprobs, synthetic_call_id, usage};
use crate::dashscope::response as ds;
use crate::openai;

/// The most choices one stream may track (DashScope allows n ≤ 4); bounds memory per stream.
const MAX_CHOICES: usize = 16;
/// The most tool calls one choice may track.
const MAX_TOOL_CALLS: usize = 128;

/// One chunk's payload; [`StreamTranslator::render`] adds the stable envelope.
#[derive(Debug, Default)]
pub struct ChunkBody {
    pub choices: Vec<openai::ChunkChoice>,
    pub usage: Option<openai::Usage>,
    pub extensions: Map<String, Value>,
}

/// The upstream ended before every choice had a finish reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Incomplete;

#[derive(Debug, Default)]
struct ChoiceState {
    sent_role: bool,
    finished: bool,
    tools: Vec<ToolState>,
    /// Last cumulative usage seen for this choice (usage in an n > 1 frame is per choice).
    usage: Option<ds::Usage>,
}

#[derive(Debug)]
struct ToolState {
    key: u32,
    name: String,
}

#[derive(Debug)]
pub struct StreamTranslator {
    meta: Meta,
    include_usage: bool,
    choices: Vec<ChoiceState>,
    /// Extension values (e.g. `search_info`) last forwarded, to forward only changes.
    forwarded: Map<String, Value>,
    request_id: Option<String>,
}

impl StreamTranslator {
    pub fn new(meta: Meta, include_usage: bool) -> Self {
        StreamTranslator {
            meta,
            include_usage,
            choices: Vec::new(),
            forwarded: Map::new(),
            request_id: None,
        }
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The upstream `request_id`, once a frame carried one.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Every choice the upstream started has finished (and at least one did). DashScope may
    /// answer fewer choices than `n` asked for (models without `n`, or tools forcing 1).
    pub fn is_finished(&self) -> bool {
        let mut seen = self.choices.iter().filter(|c| c.sent_role).peekable();
        seen.peek().is_some() && seen.all(|c| c.finished)
    }

    /// Translate one native frame (already checked not to be an error frame).
    pub fn on_frame(&mut self, frame: ds::GenerationResponse) -> Option<ChunkBody> {
        if self.request_id.is_none() {
            self.request_id = frame.request_id;
        }
        let output = frame.output.unwrap_or_default();
        let mut body = ChunkBody::default();
        let frame_usage = frame.usage;

        let native_choices = match (output.choices, output.text) {
            (Some(c), _) => c,
            // `result_format: "text"` frames carry `output.text` and no choices.
            (None, Some(text)) => vec![ds::Choice {
                index: Some(0),
                finish_reason: output.finish_reason,
                message: Some(ds::ChoiceMessage {
                    content: Some(ds::Content::Text(text)),
                    ..Default::default()
                }),
                logprobs: None,
            }],
            (None, None) => Vec::new(),
        };
        let mut usage_slot = None;
        for (pos, c) in native_choices.into_iter().enumerate() {
            let index = c.index.unwrap_or(u32::try_from(pos).unwrap_or(0)) as usize;
            if index >= MAX_CHOICES {
                continue;
            }
            if self.choices.len() <= index {
                self.choices.resize_with(index + 1, ChoiceState::default);
            }
            usage_slot.get_or_insert(index);
            if let Some(choice) = self.choice_delta(index, c) {
                body.choices.push(choice);
            }
        }
        if let Some(u) = frame_usage {
            let slot = usage_slot.unwrap_or(0);
            if self.choices.len() <= slot {
                self.choices.resize_with(slot + 1, ChoiceState::default);
            }
            self.choices[slot].usage = Some(u);
        }
        for (k, v) in output.extra {
            if self.forwarded.get(&k) != Some(&v) {
                self.forwarded.insert(k.clone(), v.clone());
                body.extensions.insert(k, v);
            }
        }
        if body.choices.is_empty() && body.extensions.is_empty() {
            return None;
        }
        Some(body)
    }

    fn choice_delta(&mut self, index: usize, c: ds::Choice) -> Option<openai::ChunkChoice> {
        let completion_id = &self.meta.id;
        let state = &mut self.choices[index];
        if state.finished {
            // A repeated final frame: exactly one finish_reason per choice.
            return None;
        }
        let msg = c.message.unwrap_or_default();
        let mut delta = openai::Delta::default();
        if let Some(text) = msg.content.map(ds::Content::into_text)
            && !text.is_empty()
        {
            delta.content = Some(text);
        }
        if let Some(r) = msg.reasoning_content.filter(|r| !r.is_empty()) {
            delta.reasoning_content = Some(r);
        }
        if let Some(calls) = msg.tool_calls {
            let mut deltas = Vec::new();
            for (pos, call) in calls.into_iter().enumerate() {
                if let Some(d) = tool_delta(state, completion_id, index, pos, call) {
                    deltas.push(d);
                }
            }
            if !deltas.is_empty() {
                delta.tool_calls = Some(deltas);
            }
        }
        let finish = finish_reason(c.finish_reason.as_deref());
        let logprobs = c.logprobs.map(logprobs);
        let has_payload = delta.content.is_some()
            || delta.reasoning_content.is_some()
            || delta.tool_calls.is_some()
            || finish.is_some()
            || logprobs.is_some();
        if !state.sent_role {
            delta.role = Some("assistant");
            state.sent_role = true;
        } else if !has_payload {
            return None;
        }
        if finish.is_some() {
            state.finished = true;
        }
        Some(openai::ChunkChoice {
            index: u32::try_from(index).unwrap_or(0),
            delta,
            finish_reason: finish,
            logprobs,
        })
    }

    /// Serialize a chunk with the stream's stable `id`, `created` and `model`.
    pub fn render(&self, body: &ChunkBody) -> String {
        let chunk = openai::ChatCompletionChunk {
            id: &self.meta.id,
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: &self.meta.model,
            choices: &body.choices,
            usage: body.usage.as_ref(),
            extensions: &body.extensions,
        };
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_string(&chunk).unwrap_or_default()
    }

    /// The usage of the whole response: prompt tokens once, completion tokens summed over
    /// choices (in an n > 1 stream each frame's usage covers its own choice).
    pub fn final_usage(&self) -> Option<openai::Usage> {
        let mut per_choice = self.choices.iter().filter_map(|c| c.usage.as_ref());
        let first = per_choice.next()?;
        let mut total = usage(first.clone());
        for u in per_choice {
            let u = usage(u.clone());
            total.completion_tokens = total.completion_tokens.saturating_add(u.completion_tokens);
            total.prompt_tokens = total.prompt_tokens.max(u.prompt_tokens);
        }
        if self.choices.iter().filter(|c| c.usage.is_some()).count() > 1 {
            total.total_tokens = total.prompt_tokens.saturating_add(total.completion_tokens);
        }
        Some(total)
    }

    /// End of the upstream stream: the usage chunk if the client asked for one, or
    /// [`Incomplete`] when the upstream stopped before every choice finished.
    pub fn finish(&self) -> Result<Option<ChunkBody>, Incomplete> {
        if !self.is_finished() {
            return Err(Incomplete);
        }
        if !self.include_usage {
            return Ok(None);
        }
        Ok(Some(ChunkBody {
            choices: Vec::new(),
            usage: Some(self.final_usage().unwrap_or_default()),
            extensions: Map::new(),
        }))
    }
}

/// One native tool-call fragment → one OpenAI tool-call delta (or nothing).
fn tool_delta(
    state: &mut ChoiceState,
    completion_id: &str,
    choice: usize,
    pos: usize,
    call: ds::ToolCall,
) -> Option<openai::ToolCallDelta> {
    let key = call.index.unwrap_or(u32::try_from(pos).unwrap_or(0));
    let f = call.function.unwrap_or_default();
    let name = f.name.filter(|n| !n.is_empty());
    let arguments = f.arguments.filter(|a| !a.is_empty());
    let id = call.id.filter(|id| !id.is_empty());
    match state.tools.iter_mut().position(|t| t.key == key) {
        None => {
            if state.tools.len() >= MAX_TOOL_CALLS {
                return None;
            }
            let out_index = state.tools.len();
            let name = name.unwrap_or_default();
            state.tools.push(ToolState {
                key,
                name: name.clone(),
            });
            let choice = u32::try_from(choice).unwrap_or(0);
            Some(openai::ToolCallDelta {
                index: u32::try_from(out_index).unwrap_or(0),
                id: Some(id.unwrap_or_else(|| synthetic_call_id(completion_id, choice, out_index))),
                kind: Some("function"),
                function: openai::FunctionDelta {
                    name: Some(name),
                    arguments: Some(arguments.unwrap_or_default()),
                },
            })
        }
        Some(out_index) => {
            let t = &mut state.tools[out_index];
            // A repeated name is not a new piece; a different one is appended, as the SDKs do.
            let name = name.filter(|n| *n != t.name);
            if let Some(n) = &name {
                t.name.push_str(n);
            }
            if name.is_none() && arguments.is_none() {
                return None;
            }
            Some(openai::ToolCallDelta {
                index: u32::try_from(out_index).unwrap_or(0),
                id: None,
                kind: None,
                function: openai::FunctionDelta { name, arguments },
            })
        }
    }
}
