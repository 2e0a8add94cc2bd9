//! Micro-benchmarks of the translation hot path (`cargo bench --bench translate`).
//!
//! Each benchmark does what the handler does for one request or one frame, on fixtures built
//! here (no file is read):
//! - `request::*`: body bytes → `ChatCompletionRequest` (serde_path_to_error, as the handler
//!   parses) → `to_dashscope` → the JSON bytes sent upstream. `*_translate_only` isolates the
//!   pure translation.
//! - `response::*`: native JSON bytes → `GenerationResponse` → `to_openai` → client JSON bytes.
//! - `stream::*`: a 2,000-frame native stream; per frame: payload JSON → `on_frame` →
//!   `render` (the chunk's JSON). `sse_decode_and_translate` also runs the upstream SSE decoder
//!   over the raw bytes. Throughput is reported per frame (items).

use std::hint::black_box;

use bytes::Bytes;
use dashbridge::dashscope::{Endpoint, GenerationResponse};
use dashbridge::openai::ChatCompletionRequest;
use dashbridge::translate::request::{
    Ctx, EffortBudgets, RequiredToolChoice, Translated, UnknownPolicy, UnsupportedPolicy,
    to_dashscope,
};
use dashbridge::translate::response::{Meta, to_openai};
use dashbridge::translate::stream::StreamTranslator;
use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};

fn main() {
    divan::main();
}

// ---- fixtures ---------------------------------------------------------------------------------

/// A 40-turn conversation with 8 tools, tool calls and tool results (≈ 23 KB of JSON).
fn long_chat_with_tools() -> Vec<u8> {
    let tools: Vec<Value> = (0..8)
        .map(|i| {
            json!({
                "type": "function",
                "function": {
                    "name": format!("tool_{i}"),
                    "description": format!("Looks up record kind {i} in the inventory and returns its fields, history and owner."),
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string", "description": "record id"},
                            "fields": {"type": "array", "items": {"type": "string"}},
                            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                            "filter": {"type": "object", "properties": {"since": {"type": "string"}, "until": {"type": "string"}}}
                        },
                        "required": ["id"]
                    }
                }
            })
        })
        .collect();
    let mut messages = vec![
        json!({"role": "system", "content": "You are a careful inventory assistant. Use the tools when a record is mentioned; answer in full sentences and cite record ids."}),
    ];
    for turn in 0..40 {
        messages.push(json!({"role": "user", "content": format!("Turn {turn}: what changed on record R-{turn:04} since last week, and who owns it now? Please also compare it with the record before it.")}));
        if turn % 3 == 0 {
            messages.push(json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": format!("call_{turn}"),
                    "type": "function",
                    "function": {"name": format!("tool_{}", turn % 8), "arguments": format!("{{\"id\":\"R-{turn:04}\",\"fields\":[\"owner\",\"history\"],\"limit\":10}}")}
                }]
            }));
            messages.push(json!({
                "role": "tool",
                "tool_call_id": format!("call_{turn}"),
                "content": format!("{{\"id\":\"R-{turn:04}\",\"owner\":\"team-{}\",\"history\":[{{\"at\":\"2026-11-0{}\",\"change\":\"moved to shelf {}\"}}]}}", turn % 5, turn % 9 + 1, turn * 7 % 31)
            }));
        }
        messages.push(json!({"role": "assistant", "content": format!("Record R-{turn:04} moved to shelf {} on 2026-11-0{}; it is now owned by team-{}. Compared with the record before it, the owner is unchanged and the history has one more entry.", turn * 7 % 31, turn % 9 + 1, turn % 5)}));
    }
    messages.push(json!({"role": "user", "content": "Summarise every change above in a table."}));
    serde_json::to_vec(&json!({
        "model": "qwen-plus",
        "messages": messages,
        "tools": tools,
        "tool_choice": "auto",
        "temperature": 0.3,
        "max_tokens": 1024,
        "stream": true,
        "stream_options": {"include_usage": true}
    }))
    .unwrap_or_default()
}

/// One user message with a 1 MiB base64 data-URL image and a text part.
fn image_request() -> Vec<u8> {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let payload: String = (0..1024 * 1024)
        .map(|i: usize| B64[(i * 31 + i / 64) % 64] as char)
        .collect();
    serde_json::to_vec(&json!({
        "model": "qwen-vl-max",
        "messages": [
            {"role": "system", "content": "Describe images precisely."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{payload}"), "detail": "high"}}
            ]}
        ],
        "max_tokens": 300
    }))
    .unwrap_or_default()
}

fn native_text_response() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
            "content": "I am Qwen, a large-scale language model developed by Alibaba Cloud. I can answer questions, write text, reason and write code. How can I help you?"}}]},
        "usage": {"total_tokens": 51, "output_tokens": 29, "input_tokens": 22, "prompt_tokens_details": {"cached_tokens": 0}},
        "request_id": "09dceb20-ae2e-999b-85f9-3c1d3b6ba1a4"
    }))
    .unwrap_or_default()
}

fn native_tool_calls_response() -> Vec<u8> {
    let calls: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("call_{i}"), "type": "function", "index": i,
            "function": {"name": format!("tool_{i}"), "arguments": format!("{{\"id\":\"R-{i:04}\",\"fields\":[\"owner\"]}}")}}))
        .collect();
    serde_json::to_vec(&json!({
        "output": {"choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant", "content": "", "tool_calls": calls}}]},
        "usage": {"total_tokens": 420, "output_tokens": 60, "input_tokens": 360},
        "request_id": "7c1a9b2e-3f4d-9a8b-b1c2-d3e4f5a6b7c8"
    }))
    .unwrap_or_default()
}

const FRAMES: usize = 2000;

/// The `data:` payloads of a 2,000-frame incremental stream (one word per frame, then stop).
fn stream_payloads() -> Vec<String> {
    let words = [
        "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog.",
    ];
    let rid = "20202020-aaaa-9bbb-8ccc-202020202020";
    (0..FRAMES)
        .map(|i| {
            let (content, finish) = if i + 1 == FRAMES {
                ("", "stop")
            } else {
                (words[i % words.len()], "null")
            };
            json!({
                "output": {"choices": [{"message": {"content": content, "role": "assistant"}, "finish_reason": finish}]},
                "usage": {"total_tokens": 22 + i + 1, "output_tokens": i + 1, "input_tokens": 22},
                "request_id": rid
            })
            .to_string()
        })
        .collect()
}

/// The same stream as DashScope puts it on the wire, cut into 4 KiB reads.
fn stream_wire(payloads: &[String]) -> Vec<Bytes> {
    let mut wire = String::new();
    for (i, p) in payloads.iter().enumerate() {
        wire.push_str(&format!(
            "id:{}\nevent:result\n:HTTP_STATUS/200\ndata:{p}\n\n",
            i + 1
        ));
    }
    wire.as_bytes()
        .chunks(4096)
        .map(Bytes::copy_from_slice)
        .collect()
}

// ---- helpers ----------------------------------------------------------------------------------

fn parse(bytes: &[u8]) -> ChatCompletionRequest {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(r) => r,
        Err(e) => panic!("bench fixture does not parse: {e}"),
    }
}

struct CtxOwned {
    model: &'static str,
    endpoint: Endpoint,
    empty: Map<String, Value>,
    budgets: EffortBudgets,
}

impl CtxOwned {
    fn new(model: &'static str, endpoint: Endpoint) -> Self {
        CtxOwned {
            model,
            endpoint,
            empty: Map::new(),
            budgets: EffortBudgets::default(),
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            upstream_model: self.model,
            endpoint: self.endpoint,
            defaults: &self.empty,
            overrides: &self.empty,
            preserve_thinking: false,
            native_reasoning_effort: false,
            budgets: &self.budgets,
            unknown: UnknownPolicy::Forward,
            unsupported: UnsupportedPolicy::Warn,
            native_max_completion_tokens: false,
            thinks_by_default: false,
            required_tool_choice: RequiredToolChoice::Emulate,
        }
    }
}

fn translate(bytes: &[u8], c: &CtxOwned) -> Vec<u8> {
    let t: Translated = match to_dashscope(parse(bytes), &c.ctx()) {
        Ok(t) => t,
        Err(e) => panic!("bench fixture does not translate: {e}"),
    };
    serde_json::to_vec(&t.body).unwrap_or_default()
}

fn meta() -> Meta {
    Meta {
        id: "chatcmpl-20202020-aaaa-9bbb-8ccc-202020202020".into(),
        created: 1_790_000_000,
        model: "qwen-plus".into(),
    }
}

fn frame(payload: &str) -> GenerationResponse {
    match serde_json::from_str(payload) {
        Ok(f) => f,
        Err(e) => panic!("bench frame does not parse: {e}"),
    }
}

// ---- request ----------------------------------------------------------------------------------

mod request {
    use super::*;

    #[divan::bench]
    fn long_chat_tools(bencher: Bencher) {
        let body = long_chat_with_tools();
        let c = CtxOwned::new("qwen-plus", Endpoint::Text);
        bencher
            .counter(BytesCount::new(body.len()))
            .bench(|| translate(black_box(&body), &c));
    }

    #[divan::bench]
    fn long_chat_tools_translate_only(bencher: Bencher) {
        let body = long_chat_with_tools();
        let c = CtxOwned::new("qwen-plus", Endpoint::Text);
        bencher
            .with_inputs(|| parse(&body))
            .bench_values(|req| to_dashscope(req, &c.ctx()).map(|t| t.notes.list().len()));
    }

    #[divan::bench]
    fn image_1mib_data_url(bencher: Bencher) {
        let body = image_request();
        let c = CtxOwned::new("qwen-vl-max", Endpoint::Multimodal);
        bencher
            .counter(BytesCount::new(body.len()))
            .bench(|| translate(black_box(&body), &c));
    }

    #[divan::bench]
    fn image_1mib_translate_only(bencher: Bencher) {
        let body = image_request();
        let c = CtxOwned::new("qwen-vl-max", Endpoint::Multimodal);
        bencher
            .with_inputs(|| parse(&body))
            .bench_values(|req| to_dashscope(req, &c.ctx()).map(|t| t.notes.list().len()));
    }
}

// ---- response ---------------------------------------------------------------------------------

mod response {
    use super::*;

    fn run(bencher: Bencher, body: Vec<u8>) {
        let m = meta();
        bencher.counter(BytesCount::new(body.len())).bench(|| {
            let resp: GenerationResponse = match serde_json::from_slice(black_box(&body)) {
                Ok(r) => r,
                Err(e) => panic!("bench response does not parse: {e}"),
            };
            serde_json::to_vec(&to_openai(resp, &m)).unwrap_or_default()
        });
    }

    #[divan::bench]
    fn text(bencher: Bencher) {
        run(bencher, native_text_response());
    }

    #[divan::bench]
    fn tool_calls(bencher: Bencher) {
        run(bencher, native_tool_calls_response());
    }
}

// ---- stream -----------------------------------------------------------------------------------

mod stream {
    use super::*;

    /// Per frame: payload JSON → `on_frame` → `render`, over the whole 2,000-frame stream.
    #[divan::bench]
    fn translate_2000_frames(bencher: Bencher) {
        let payloads = stream_payloads();
        bencher.counter(ItemsCount::new(FRAMES)).bench(|| {
            let mut t = StreamTranslator::new(meta(), true);
            let mut bytes = 0usize;
            for p in &payloads {
                if let Some(body) = t.on_frame(frame(black_box(p))) {
                    bytes += t.render(&body).len();
                }
            }
            if let Ok(Some(body)) = t.finish() {
                bytes += t.render(&body).len();
            }
            bytes
        });
    }

    /// `on_frame` + `render` only (frames already parsed).
    #[divan::bench]
    fn on_frame_render_only(bencher: Bencher) {
        let payloads = stream_payloads();
        bencher
            .counter(ItemsCount::new(FRAMES))
            .with_inputs(|| payloads.iter().map(|p| frame(p)).collect::<Vec<_>>())
            .bench_values(|frames| {
                let mut t = StreamTranslator::new(meta(), true);
                let mut bytes = 0usize;
                for f in frames {
                    if let Some(body) = t.on_frame(f) {
                        bytes += t.render(&body).len();
                    }
                }
                bytes
            });
    }

    /// Raw upstream bytes (4 KiB reads) → SSE decoder → payload JSON → `on_frame` → `render`.
    #[divan::bench]
    fn sse_decode_and_translate(bencher: Bencher) {
        let wire = stream_wire(&stream_payloads());
        let rt = match tokio::runtime::Builder::new_current_thread().build() {
            Ok(rt) => rt,
            Err(e) => panic!("tokio runtime: {e}"),
        };
        bencher.counter(ItemsCount::new(FRAMES)).bench(|| {
            rt.block_on(async {
                let input = futures_util::stream::iter(
                    wire.iter()
                        .cloned()
                        .map(Ok::<Bytes, dashbridge::upstream::Failure>),
                );
                let mut frames = std::pin::pin!(dashbridge::upstream::sse::frames(input));
                let mut t = StreamTranslator::new(meta(), true);
                let mut bytes = 0usize;
                while let Some(Ok(f)) = frames.next().await {
                    if let Some(body) = t.on_frame(frame(&f.data)) {
                        bytes += t.render(&body).len();
                    }
                }
                bytes
            })
        });
    }
}
