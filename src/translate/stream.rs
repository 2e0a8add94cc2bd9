//! The stream translator: one native SSE frame in, at most one OpenAI chunk out.
//!
//! A pure state machine (no I/O). It owns what must stay stable or happen once across a
//! stream: the id/created/model of every chunk, `role` on each choice's first chunk, one
//! `finish_reason` per choice (a repeated final frame is ignored), tool-call headers (`id`,
//! `type`, `name`) once per call with later `arguments` pieces keyed by `index`, and the usage
//! for the final usage chunk.
//!
//! Streams may be cumulative whatever `incremental_output` says (qwen-mt sends the whole text
//! so far in every frame): per choice and field, a frame whose text strictly extends the text
//! so far switches that field to cumulative and only the new suffix is forwarded. Memory per
//! stream is a few small structs per choice, plus the text so far of a cumulative field.
//!
//! Every chunk but the final usage chunk has a choice: a frame that carries only an
//! extension (`tool_info`, `search_info`, `audio`) rides on an empty delta of the current
//! choice.

use serde_json::{Map, Value};

use super::response::{
    Meta, audio, finish_reason, images, is_moderation, logprobs, strip_internal, synthetic_call_id,
    usage,
};
use crate::dashscope::response as ds;
use crate::openai;

/// The most choices one stream may track (DashScope allows n ≤ 4); bounds memory per stream.
const MAX_CHOICES: usize = 16;
/// The most tool calls one choice may track.
const MAX_TOOL_CALLS: usize = 128;
/// The most distinct image URLs one choice remembers (to forward a repeated one once).
const MAX_IMAGES: usize = 64;

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
    content: TextTrack,
    reasoning: TextTrack,
    images: Vec<String>,
}

#[derive(Debug)]
struct ToolState {
    key: u32,
    name: String,
    /// The header (id, type, name) went out; until then id and arguments are held back.
    announced: bool,
    id: Option<String>,
    pending_arguments: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Mode {
    #[default]
    Undecided,
    Incremental,
    Cumulative,
}

/// Incremental or cumulative? Decided by the first non-empty piece of a field that differs
/// from the first one: if it strictly extends the text so far, the upstream sends the whole
/// text so far in every frame. Until then a piece equal to the first is held back (in a
/// cumulative stream it says nothing new; in an incremental one it is a repeated token, sent
/// as soon as the next different piece proves the stream incremental).
#[derive(Debug, Default)]
struct TextTrack {
    mode: Mode,
    /// The text so far while undecided or cumulative; empty once incremental.
    so_far: String,
    /// Pieces equal to `so_far` held back while undecided.
    held: usize,
}

impl TextTrack {
    /// The new text in this frame's piece, if any.
    fn next(&mut self, piece: String) -> Option<String> {
        if piece.is_empty() {
            return None;
        }
        match self.mode {
            Mode::Incremental => return Some(piece),
            Mode::Undecided if self.so_far.is_empty() => {
                self.so_far.clone_from(&piece);
                return Some(piece);
            }
            Mode::Undecided | Mode::Cumulative => {}
        }
        if piece == self.so_far {
            if self.mode == Mode::Undecided {
                self.held += 1;
            }
            return None;
        }
        if let Some(suffix) = piece.strip_prefix(self.so_far.as_str()) {
            self.mode = Mode::Cumulative;
            self.held = 0;
            let suffix = suffix.to_owned();
            self.so_far = piece;
            return Some(suffix);
        }
        // Not an extension of the text so far: plain pieces, the held ones first.
        let mut out = self.so_far.repeat(self.held);
        out.push_str(&piece);
        self.mode = Mode::Incremental;
        self.so_far = String::new();
        self.held = 0;
        Some(out)
    }
}

#[derive(Debug)]
pub struct StreamTranslator {
    meta: Meta,
    include_usage: bool,
    choices: Vec<ChoiceState>,
    /// Extension values (e.g. `search_info`) last forwarded, to forward only changes.
    forwarded: Map<String, Value>,
    /// Extensions that arrived after every choice finished: sent on the usage chunk.
    late: Map<String, Value>,
    request_id: Option<String>,
}

impl StreamTranslator {
    pub fn new(meta: Meta, include_usage: bool) -> Self {
        StreamTranslator {
            meta,
            include_usage,
            choices: Vec::new(),
            forwarded: Map::new(),
            late: Map::new(),
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
        let mut output = frame.output.unwrap_or_default();
        strip_internal(&mut output.extra);
        let speech = output.extra.remove("audio").and_then(audio);
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
            // A repeat with empty lists (`search_info` after the first frame) says nothing
            // new and must not erase what was forwarded.
            if self.forwarded.get(&k) != Some(&v)
                && !(is_blank(&v) && self.forwarded.contains_key(&k))
            {
                self.forwarded.insert(k.clone(), v.clone());
                body.extensions.insert(k, v);
            }
        }
        // Speech pieces are each new data: never deduplicated, always on a choice.
        if speech.is_some() || (body.choices.is_empty() && !body.extensions.is_empty()) {
            match self.carrier(&mut body, usage_slot.unwrap_or(0)) {
                Some(c) => {
                    if speech.is_some() {
                        c.delta.audio = speech;
                    }
                }
                None => {
                    self.late.append(&mut body.extensions);
                }
            }
        }
        if body.choices.is_empty() && body.extensions.is_empty() {
            return None;
        }
        Some(body)
    }

    /// The choice of this chunk that carries extensions and speech: one already in the
    /// chunk, else an empty delta of `preferred` (or the first unfinished choice). `None`
    /// when every choice has finished.
    fn carrier<'b>(
        &mut self,
        body: &'b mut ChunkBody,
        preferred: usize,
    ) -> Option<&'b mut openai::ChunkChoice> {
        if body.choices.is_empty() {
            if self.choices.len() <= preferred {
                self.choices
                    .resize_with(preferred + 1, ChoiceState::default);
            }
            let index = if self.choices[preferred].finished {
                self.choices.iter().position(|c| !c.finished)?
            } else {
                preferred
            };
            let state = &mut self.choices[index];
            let mut delta = openai::Delta::default();
            if !state.sent_role {
                state.sent_role = true;
                delta.role = Some("assistant");
            }
            body.choices.push(openai::ChunkChoice {
                index: u32::try_from(index).unwrap_or(0),
                delta,
                finish_reason: None,
                logprobs: None,
            });
        }
        body.choices.first_mut()
    }

    /// An error inside the stream. Output moderation (`DataInspectionFailed`) after the
    /// answer started ends the started choices with `finish_reason: "content_filter"`: the
    /// chunk to send, after which the stream finishes normally. Anything else (or nothing
    /// started yet) is `None`: a real error for the caller to report.
    pub fn on_error(&mut self, code: Option<&str>) -> Option<ChunkBody> {
        if !code.is_some_and(is_moderation) || !self.choices.iter().any(|c| c.sent_role) {
            return None;
        }
        let mut body = ChunkBody::default();
        for (i, c) in self.choices.iter_mut().enumerate() {
            if c.sent_role && !c.finished {
                c.finished = true;
                body.choices.push(openai::ChunkChoice {
                    index: u32::try_from(i).unwrap_or(0),
                    delta: openai::Delta::default(),
                    finish_reason: Some("content_filter".into()),
                    logprobs: None,
                });
            }
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
        if let Some(mut pieces) = msg.content.map(ds::Content::into_pieces) {
            delta.content = state.content.next(pieces.text);
            let mut new_images = Vec::new();
            for url in pieces.images {
                if !state.images.contains(&url) && state.images.len() < MAX_IMAGES {
                    state.images.push(url.clone());
                    new_images.push(url);
                }
            }
            delta.images = images(new_images);
            delta.audio = pieces.other.remove("audio").and_then(audio);
            delta.extensions = pieces.other;
        }
        if let Some(r) = msg.reasoning_content {
            delta.reasoning_content = state.reasoning.next(r);
        }
        let finish = finish_reason(c.finish_reason.as_deref());
        let mut deltas = Vec::new();
        for (pos, call) in msg.tool_calls.into_iter().flatten().enumerate() {
            if let Some(d) = tool_delta(state, completion_id, index, pos, call) {
                deltas.push(d);
            }
        }
        if finish.is_some() {
            // A call whose name never came is still delivered, not dropped.
            deltas.extend(flush_unnamed(state, completion_id, index));
        }
        if !deltas.is_empty() {
            delta.tool_calls = Some(deltas);
        }
        let logprobs = c.logprobs.map(logprobs);
        let has_payload = delta.content.is_some()
            || delta.reasoning_content.is_some()
            || delta.tool_calls.is_some()
            || delta.images.is_some()
            || delta.audio.is_some()
            || !delta.extensions.is_empty()
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
            extensions: self.late.clone(),
        }))
    }
}

/// An extension value that carries nothing: empty lists/objects, nulls, or an object of those.
fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_blank),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// One native tool-call fragment → one OpenAI tool-call delta (or nothing). A call's first
/// delta waits until its `name` is known, then carries id + type + name and every argument
/// piece held back so far; the upstream's own id is kept whichever fragment brought it.
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
    let out_index = match state.tools.iter().position(|t| t.key == key) {
        Some(i) => i,
        None => {
            if state.tools.len() >= MAX_TOOL_CALLS {
                return None;
            }
            state.tools.push(ToolState {
                key,
                name: String::new(),
                announced: false,
                id: None,
                pending_arguments: String::new(),
            });
            state.tools.len() - 1
        }
    };
    let t = &mut state.tools[out_index];
    if !t.announced {
        if t.id.is_none() {
            t.id = id;
        }
        if let Some(n) = name {
            t.name.push_str(&n);
        }
        if let Some(a) = arguments {
            t.pending_arguments.push_str(&a);
        }
        if t.name.is_empty() {
            return None;
        }
        return Some(announce(t, completion_id, choice, out_index));
    }
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

/// The first delta of a call: id (the upstream's, else a derived one), type, name, and the
/// arguments held back.
fn announce(
    t: &mut ToolState,
    completion_id: &str,
    choice: usize,
    out_index: usize,
) -> openai::ToolCallDelta {
    t.announced = true;
    let choice = u32::try_from(choice).unwrap_or(0);
    openai::ToolCallDelta {
        index: u32::try_from(out_index).unwrap_or(0),
        id: Some(
            t.id.take()
                .unwrap_or_else(|| synthetic_call_id(completion_id, choice, out_index)),
        ),
        kind: Some("function"),
        function: openai::FunctionDelta {
            name: Some(t.name.clone()),
            arguments: Some(std::mem::take(&mut t.pending_arguments)),
        },
    }
}

/// At the finish: calls still waiting for a name go out as they are.
fn flush_unnamed(
    state: &mut ChoiceState,
    completion_id: &str,
    choice: usize,
) -> Vec<openai::ToolCallDelta> {
    state
        .tools
        .iter_mut()
        .enumerate()
        .filter(|(_, t)| !t.announced)
        .map(|(i, t)| announce(t, completion_id, choice, i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::TextTrack;

    fn run(pieces: &[&str]) -> Vec<Option<String>> {
        let mut t = TextTrack::default();
        pieces.iter().map(|p| t.next((*p).to_owned())).collect()
    }

    #[test]
    fn cumulative_pieces_give_their_suffix() {
        assert_eq!(
            run(&["I", "I didn", "I didn't", "I didn't"]),
            vec![
                Some("I".into()),
                Some(" didn".into()),
                Some("'t".into()),
                None
            ]
        );
    }

    #[test]
    fn a_repeated_incremental_piece_is_held_then_sent() {
        // "ha", "ha", "!" is incremental: the repeat is sent with the next piece.
        assert_eq!(
            run(&["ha", "ha", "!", "ha"]),
            vec![
                Some("ha".into()),
                None,
                Some("ha!".into()),
                Some("ha".into())
            ]
        );
        assert_eq!(run(&["", "a", ""]), vec![None, Some("a".into()), None]);
    }
}
