//! Native frames → Responses events and the response object: one state machine.
//!
//! A pure state machine (no I/O, no clock: id and timestamp come in). It owns the response id
//! and `sequence_number` (0, 1, 2 … with no gaps), opens one output item per phase of the
//! answer — `reasoning` (raw text as `reasoning_text`, mirrored as one `summary_text` part
//! unless switched off), `message`, one `function_call` / `custom_tool_call` per native tool
//! call — emits every `added` before its deltas and every `done` before the terminal event,
//! and keeps `output_index` equal to the item's position in `response.output`.
//!
//! Non-stream answers go through the same machine (one frame), and so does a streamed
//! upstream aggregated for a non-stream client: the events are simply not sent.

use serde_json::Value;

use super::{ToolKind, ToolNames, encode_reasoning, responses_error};
use crate::dashscope::response as ds;
use crate::openai::responses::{
    self as rs, EventPart, IncompleteDetails, OutputItem, OutputText, ResponseError, StreamEvent,
    TextPart,
};
use crate::translate::error::Mapped;
use crate::translate::response::{finish_reason, logprobs, usage};

/// Bounds on what one response may hold (a hostile upstream cannot grow them further).
const MAX_ITEMS: usize = 512;
const MAX_TOOL_CALLS: usize = 128;

/// Per-request switches.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Mirror reasoning text as a `summary_text` part with its events (config, default on).
    pub mirror_summary: bool,
    /// `include` asked for `reasoning.encrypted_content`.
    pub encrypted_reasoning: bool,
    /// The model named inside `encrypted_content`.
    pub upstream_model: String,
}

/// How the response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Incomplete,
    Failed,
}

#[derive(Debug)]
enum Body {
    Reasoning(String),
    Message { text: String, logprobs: Vec<Value> },
    Call(Call),
}

/// What closing an item must emit, taken out of the item first.
enum Closing {
    Reasoning(String),
    Message(String, Vec<Value>),
    Custom(String),
    Function(String),
}

#[derive(Debug)]
struct Call {
    key: u32,
    call_id: String,
    wire: String,
    name: String,
    namespace: Option<String>,
    custom: bool,
    arguments: String,
}

#[derive(Debug)]
struct Item {
    id: String,
    body: Body,
    open: bool,
    status: &'static str,
}

#[derive(Debug)]
pub struct ResponseStream {
    resp: rs::Response,
    /// The id's tail, for item ids.
    tail: String,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    names: ToolNames,
    settings: Settings,
    finish: Option<String>,
    usage: Option<ds::Usage>,
    outcome: Option<Outcome>,
    request_id: Option<String>,
}

impl ResponseStream {
    /// `template` is the request echo from [`super::request::to_chat`]; `id` is `resp_…`.
    pub fn new(
        mut template: rs::Response,
        id: String,
        created_at: u64,
        names: ToolNames,
        settings: Settings,
    ) -> Self {
        let tail = id.strip_prefix("resp_").unwrap_or(&id).to_owned();
        template.id = id;
        template.created_at = created_at;
        template.status = "in_progress";
        template.output.clear();
        template.usage = None;
        ResponseStream {
            resp: template,
            tail,
            seq: 0,
            started: false,
            items: Vec::new(),
            names,
            settings,
            finish: None,
            usage: None,
            outcome: None,
            request_id: None,
        }
    }

    /// The response object: a snapshot while running, the final one after the end.
    pub fn response(&self) -> &rs::Response {
        &self.resp
    }

    pub fn into_response(self) -> rs::Response {
        self.resp
    }

    /// The upstream request id, once a frame carried one.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    fn event(&mut self, kind: &'static str) -> StreamEvent {
        let ev = StreamEvent::new(kind, self.seq);
        self.seq += 1;
        ev
    }

    fn lifecycle(&mut self, kind: &'static str, out: &mut Vec<StreamEvent>) {
        let mut ev = self.event(kind);
        ev.response = Some(Box::new(self.resp.clone()));
        out.push(ev);
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            self.lifecycle("response.created", out);
            self.lifecycle("response.in_progress", out);
        }
    }

    /// Translate one native frame (already checked not to be an error frame).
    pub fn on_frame(&mut self, frame: ds::GenerationResponse, out: &mut Vec<StreamEvent>) {
        self.start(out);
        if self.request_id.is_none() {
            self.request_id = frame.request_id;
        }
        if frame.usage.is_some() {
            self.usage = frame.usage;
        }
        if self.outcome.is_some() || self.finish.is_some() {
            return;
        }
        let output = frame.output.unwrap_or_default();
        let choice = match (output.choices, output.text) {
            (Some(list), _) => list.into_iter().find(|c| c.index.unwrap_or(0) == 0),
            (None, Some(text)) => Some(ds::Choice {
                index: Some(0),
                finish_reason: output.finish_reason,
                message: Some(ds::ChoiceMessage {
                    content: Some(ds::Content::Text(text)),
                    ..Default::default()
                }),
                logprobs: None,
            }),
            (None, None) => None,
        };
        let Some(choice) = choice else { return };
        let msg = choice.message.unwrap_or_default();
        if let Some(r) = msg.reasoning_content.filter(|r| !r.is_empty()) {
            self.reasoning_piece(r, out);
        }
        let text = msg.content.map(ds::Content::into_text).unwrap_or_default();
        let lp = choice
            .logprobs
            .map(logprobs)
            .and_then(|mut v| v.get_mut("content").map(Value::take))
            .and_then(|v| match v {
                Value::Array(a) => Some(a),
                _ => None,
            })
            .unwrap_or_default();
        if !text.is_empty() || !lp.is_empty() {
            self.text_piece(text, lp, out);
        }
        for (pos, call) in msg.tool_calls.into_iter().flatten().enumerate() {
            self.tool_piece(pos, call, out);
        }
        if let Some(reason) = finish_reason(choice.finish_reason.as_deref()) {
            let status = if reason == "length" {
                "incomplete"
            } else {
                "completed"
            };
            self.close_all(status, out);
            self.finish = Some(reason);
        }
    }

    fn item_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}_{}", self.tail, self.items.len())
    }

    /// The open reasoning or message item, if it is the last item.
    fn open_last(&self, want_reasoning: bool) -> Option<usize> {
        let last = self.items.len().checked_sub(1)?;
        let item = &self.items[last];
        let matches = match item.body {
            Body::Reasoning(_) => want_reasoning,
            Body::Message { .. } => !want_reasoning,
            Body::Call(_) => false,
        };
        (item.open && matches).then_some(last)
    }

    fn reasoning_piece(&mut self, piece: String, out: &mut Vec<StreamEvent>) {
        let idx = match self.open_last(true) {
            Some(i) => i,
            None => {
                if self.items.len() >= MAX_ITEMS {
                    return;
                }
                self.close_all("completed", out);
                let id = self.item_id("rs");
                let idx = self.items.len();
                self.items.push(Item {
                    id: id.clone(),
                    body: Body::Reasoning(String::new()),
                    open: true,
                    status: "in_progress",
                });
                let item = self.output_item(idx);
                let mut ev = self.event("response.output_item.added");
                ev.output_index = Some(idx);
                ev.item = Some(item);
                out.push(ev);
                if self.settings.mirror_summary {
                    let mut ev = self.event("response.reasoning_summary_part.added");
                    ev.item_id = Some(id.clone());
                    ev.output_index = Some(idx);
                    ev.summary_index = Some(0);
                    ev.part = Some(EventPart::Text(text_part("summary_text", String::new())));
                    out.push(ev);
                }
                let mut ev = self.event("response.content_part.added");
                ev.item_id = Some(id);
                ev.output_index = Some(idx);
                ev.content_index = Some(0);
                ev.part = Some(EventPart::Text(text_part("reasoning_text", String::new())));
                out.push(ev);
                idx
            }
        };
        let id = self.items[idx].id.clone();
        if self.settings.mirror_summary {
            let mut ev = self.event("response.reasoning_summary_text.delta");
            ev.item_id = Some(id.clone());
            ev.output_index = Some(idx);
            ev.summary_index = Some(0);
            ev.delta = Some(piece.clone());
            out.push(ev);
        }
        let mut ev = self.event("response.reasoning_text.delta");
        ev.item_id = Some(id);
        ev.output_index = Some(idx);
        ev.content_index = Some(0);
        if let Body::Reasoning(t) = &mut self.items[idx].body {
            t.push_str(&piece);
        }
        ev.delta = Some(piece);
        out.push(ev);
    }

    fn text_piece(&mut self, piece: String, lp: Vec<Value>, out: &mut Vec<StreamEvent>) {
        let idx = match self.open_last(false) {
            Some(i) => i,
            None => {
                if self.items.len() >= MAX_ITEMS {
                    return;
                }
                self.close_all("completed", out);
                let id = self.item_id("msg");
                let idx = self.items.len();
                self.items.push(Item {
                    id: id.clone(),
                    body: Body::Message {
                        text: String::new(),
                        logprobs: Vec::new(),
                    },
                    open: true,
                    status: "in_progress",
                });
                let item = self.output_item(idx);
                let mut ev = self.event("response.output_item.added");
                ev.output_index = Some(idx);
                ev.item = Some(item);
                out.push(ev);
                let mut ev = self.event("response.content_part.added");
                ev.item_id = Some(id);
                ev.output_index = Some(idx);
                ev.content_index = Some(0);
                ev.part = Some(EventPart::Output(output_text(String::new(), Vec::new())));
                out.push(ev);
                idx
            }
        };
        let mut ev = self.event("response.output_text.delta");
        ev.item_id = Some(self.items[idx].id.clone());
        ev.output_index = Some(idx);
        ev.content_index = Some(0);
        if let Body::Message { text, logprobs } = &mut self.items[idx].body {
            text.push_str(&piece);
            logprobs.extend(lp.iter().cloned());
        }
        ev.delta = Some(piece);
        ev.logprobs = Some(lp);
        out.push(ev);
    }

    fn tool_piece(&mut self, pos: usize, call: ds::ToolCall, out: &mut Vec<StreamEvent>) {
        let key = call
            .index
            .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX));
        let f = call.function.unwrap_or_default();
        let name = f.name.filter(|n| !n.is_empty());
        let args = f.arguments.unwrap_or_default();
        let existing = self
            .items
            .iter()
            .position(|it| it.open && matches!(&it.body, Body::Call(c) if c.key == key));
        let idx = match existing {
            Some(i) => {
                if let (Some(n), Body::Call(c)) = (name, &mut self.items[i].body)
                    && c.wire.is_empty()
                {
                    c.wire = n;
                    self.restore_name(i);
                }
                i
            }
            None => {
                let calls = self
                    .items
                    .iter()
                    .filter(|i| matches!(i.body, Body::Call(_)))
                    .count();
                if self.items.len() >= MAX_ITEMS || calls >= MAX_TOOL_CALLS {
                    return;
                }
                // A tool call ends the reasoning or text before it; earlier calls stay open
                // (fragments of parallel calls may interleave).
                self.close_text(out);
                let idx = self.items.len();
                let call_id = call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("call_{}_{calls}", self.tail));
                let wire = name.unwrap_or_default();
                let custom = self
                    .names
                    .by_wire(&wire)
                    .is_some_and(|t| t.kind == ToolKind::Custom);
                let id = self.item_id(if custom { "ctc" } else { "fc" });
                self.items.push(Item {
                    id,
                    body: Body::Call(Call {
                        key,
                        call_id,
                        wire,
                        name: String::new(),
                        namespace: None,
                        custom,
                        arguments: String::new(),
                    }),
                    open: true,
                    status: "in_progress",
                });
                self.restore_name(idx);
                let item = self.output_item(idx);
                let mut ev = self.event("response.output_item.added");
                ev.output_index = Some(idx);
                ev.item = Some(item);
                out.push(ev);
                idx
            }
        };
        if args.is_empty() {
            return;
        }
        let id = self.items[idx].id.clone();
        let Body::Call(c) = &mut self.items[idx].body else {
            return;
        };
        c.arguments.push_str(&args);
        if !c.custom {
            let mut ev = self.event("response.function_call_arguments.delta");
            ev.item_id = Some(id);
            ev.output_index = Some(idx);
            ev.delta = Some(args);
            out.push(ev);
        }
    }

    /// The client's name (and namespace) for a call's upstream function name.
    fn restore_name(&mut self, idx: usize) {
        let Body::Call(c) = &mut self.items[idx].body else {
            return;
        };
        match self.names.by_wire(&c.wire) {
            Some(t) => {
                c.name.clone_from(&t.name);
                c.namespace.clone_from(&t.namespace);
                c.custom = t.kind == ToolKind::Custom;
            }
            None => c.name.clone_from(&c.wire),
        }
    }

    fn close_text(&mut self, out: &mut Vec<StreamEvent>) {
        for i in 0..self.items.len() {
            if self.items[i].open && !matches!(self.items[i].body, Body::Call(_)) {
                self.close(i, "completed", out);
            }
        }
    }

    fn close_all(&mut self, status: &'static str, out: &mut Vec<StreamEvent>) {
        for i in 0..self.items.len() {
            if self.items[i].open {
                self.close(i, status, out);
            }
        }
    }

    fn close(&mut self, idx: usize, status: &'static str, out: &mut Vec<StreamEvent>) {
        self.items[idx].open = false;
        self.items[idx].status = status;
        let id = self.items[idx].id.clone();
        let mirror = self.settings.mirror_summary;
        let scoped = |this: &mut Self, kind: &'static str| {
            let mut ev = this.event(kind);
            ev.item_id = Some(id.clone());
            ev.output_index = Some(idx);
            ev
        };
        let closing = match &self.items[idx].body {
            Body::Reasoning(text) => Closing::Reasoning(text.clone()),
            Body::Message { text, logprobs } => Closing::Message(text.clone(), logprobs.clone()),
            Body::Call(c) if c.custom => Closing::Custom(custom_input(&c.arguments)),
            Body::Call(c) => Closing::Function(c.arguments.clone()),
        };
        match closing {
            Closing::Reasoning(text) => {
                let mut ev = scoped(self, "response.reasoning_text.done");
                ev.content_index = Some(0);
                ev.text = Some(text.clone());
                out.push(ev);
                let mut ev = scoped(self, "response.content_part.done");
                ev.content_index = Some(0);
                ev.part = Some(EventPart::Text(text_part("reasoning_text", text.clone())));
                out.push(ev);
                if mirror {
                    let mut ev = scoped(self, "response.reasoning_summary_text.done");
                    ev.summary_index = Some(0);
                    ev.text = Some(text.clone());
                    out.push(ev);
                    let mut ev = scoped(self, "response.reasoning_summary_part.done");
                    ev.summary_index = Some(0);
                    ev.part = Some(EventPart::Text(text_part("summary_text", text)));
                    out.push(ev);
                }
            }
            Closing::Message(text, logprobs) => {
                let mut ev = scoped(self, "response.output_text.done");
                ev.content_index = Some(0);
                ev.text = Some(text.clone());
                ev.logprobs = Some(logprobs.clone());
                out.push(ev);
                let mut ev = scoped(self, "response.content_part.done");
                ev.content_index = Some(0);
                ev.part = Some(EventPart::Output(output_text(text, logprobs)));
                out.push(ev);
            }
            Closing::Custom(input) => {
                if !input.is_empty() {
                    let mut ev = scoped(self, "response.custom_tool_call_input.delta");
                    ev.delta = Some(input.clone());
                    out.push(ev);
                }
                let mut ev = scoped(self, "response.custom_tool_call_input.done");
                ev.input = Some(input);
                out.push(ev);
            }
            Closing::Function(args) => {
                let mut ev = scoped(self, "response.function_call_arguments.done");
                ev.arguments = Some(args);
                out.push(ev);
            }
        }
        let item = self.output_item(idx);
        let mut ev = self.event("response.output_item.done");
        ev.output_index = Some(idx);
        ev.item = Some(item);
        out.push(ev);
    }

    /// The item as the client sees it now (empty texts while open).
    fn output_item(&self, idx: usize) -> OutputItem {
        let it = &self.items[idx];
        let status = it.status;
        match &it.body {
            Body::Reasoning(text) => {
                let done = !it.open;
                let summary = if done && self.settings.mirror_summary {
                    vec![text_part("summary_text", text.clone())]
                } else {
                    Vec::new()
                };
                let content = if done {
                    vec![text_part("reasoning_text", text.clone())]
                } else {
                    Vec::new()
                };
                let encrypted = (done && self.settings.encrypted_reasoning)
                    .then(|| encode_reasoning(&self.settings.upstream_model, text));
                OutputItem::Reasoning {
                    id: it.id.clone(),
                    status,
                    summary,
                    content,
                    encrypted_content: encrypted,
                }
            }
            Body::Message { text, logprobs } => OutputItem::Message {
                id: it.id.clone(),
                role: "assistant",
                status,
                content: if it.open {
                    Vec::new()
                } else {
                    vec![output_text(text.clone(), logprobs.clone())]
                },
            },
            Body::Call(c) if c.custom => OutputItem::CustomToolCall {
                id: it.id.clone(),
                status,
                call_id: c.call_id.clone(),
                name: c.name.clone(),
                input: if it.open {
                    String::new()
                } else {
                    custom_input(&c.arguments)
                },
                namespace: c.namespace.clone(),
            },
            Body::Call(c) => OutputItem::FunctionCall {
                id: it.id.clone(),
                status,
                call_id: c.call_id.clone(),
                name: c.name.clone(),
                arguments: if it.open {
                    String::new()
                } else {
                    c.arguments.clone()
                },
                namespace: c.namespace.clone(),
            },
        }
    }

    fn seal(&mut self, status: &'static str) {
        self.resp.status = status;
        self.resp.output = (0..self.items.len()).map(|i| self.output_item(i)).collect();
        self.resp.usage = Some(self.usage());
    }

    /// The usage with all five numbers (zeros when the upstream reported none).
    pub fn usage(&self) -> rs::Usage {
        let Some(u) = self.usage.clone() else {
            return rs::Usage::default();
        };
        let u = usage(u);
        rs::Usage {
            input_tokens: u.prompt_tokens,
            input_tokens_details: rs::InputTokensDetails {
                cached_tokens: u
                    .prompt_tokens_details
                    .and_then(|d| d.cached_tokens)
                    .unwrap_or(0),
            },
            output_tokens: u.completion_tokens,
            output_tokens_details: rs::OutputTokensDetails {
                reasoning_tokens: u
                    .completion_tokens_details
                    .and_then(|d| d.reasoning_tokens)
                    .unwrap_or(0),
            },
            total_tokens: u.total_tokens,
        }
    }

    /// The upstream ended. After a finish frame: `response.completed` (or
    /// `response.incomplete` for `length`); before one: `response.failed`.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Outcome {
        if let Some(o) = self.outcome {
            return o;
        }
        match self.finish.clone() {
            Some(reason) if reason == "length" => {
                self.resp.incomplete_details = Some(IncompleteDetails {
                    reason: "max_output_tokens",
                });
                self.terminate(Outcome::Incomplete, out)
            }
            Some(_) => self.terminate(Outcome::Completed, out),
            None => self.fail(
                "server_error",
                "the upstream stream ended before the model finished",
                out,
            ),
        }
    }

    /// An error after the stream started: output moderation (`content_filter`) ends the
    /// response as incomplete; anything else fails it with `{code, message}`.
    pub fn fail(&mut self, code: &str, message: &str, out: &mut Vec<StreamEvent>) -> Outcome {
        if let Some(o) = self.outcome {
            return o;
        }
        self.start(out);
        self.close_all("incomplete", out);
        if code == "content_filter" {
            self.resp.incomplete_details = Some(IncompleteDetails {
                reason: "content_filter",
            });
            return self.terminate(Outcome::Incomplete, out);
        }
        self.resp.error = Some(ResponseError {
            code: code.to_owned(),
            message: message.to_owned(),
        });
        self.terminate(Outcome::Failed, out)
    }

    /// An upstream error after the stream started, as classified for chat: output moderation
    /// → incomplete (`content_filter`), anything else → failed with the Responses code.
    pub fn fail_upstream(&mut self, mut mapped: Mapped, out: &mut Vec<StreamEvent>) -> Outcome {
        if mapped.code == "content_filter" {
            return self.fail("content_filter", &mapped.message, out);
        }
        responses_error(&mut mapped, None);
        self.fail(&mapped.code, &mapped.message, out)
    }

    fn terminate(&mut self, outcome: Outcome, out: &mut Vec<StreamEvent>) -> Outcome {
        self.start(out);
        self.close_all("completed", out);
        let (status, kind) = match outcome {
            Outcome::Completed => ("completed", "response.completed"),
            Outcome::Incomplete => ("incomplete", "response.incomplete"),
            Outcome::Failed => ("failed", "response.failed"),
        };
        self.seal(status);
        self.outcome = Some(outcome);
        self.lifecycle(kind, out);
        outcome
    }
}

fn text_part(kind: &'static str, text: String) -> TextPart {
    TextPart { kind, text }
}

fn output_text(text: String, logprobs: Vec<Value>) -> OutputText {
    OutputText {
        kind: "output_text",
        text,
        annotations: Vec::new(),
        logprobs,
    }
}

/// The raw input of a freeform call: the `input` string of the model's `{"input": …}`
/// arguments, or the arguments as they are when the model did not wrap them.
pub fn custom_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(mut o)) => match o.remove("input") {
            Some(Value::String(s)) => s,
            _ => arguments.to_owned(),
        },
        _ => arguments.to_owned(),
    }
}

/// `event: <type>\ndata: <json>` payload for one event.
pub fn render(ev: &StreamEvent) -> String {
    // Plain structs of strings, numbers and JSON values: serializing cannot fail.
    serde_json::to_string(ev).unwrap_or_default()
}
