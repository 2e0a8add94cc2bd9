//! Hot-path scenarios for the instruction-count guard (`bash bench/instructions.sh`).
//!
//! Run as `instructions SCENARIO ITERATIONS`: builds the scenario's fixed input (not part of
//! the work), runs the scenario once to warm up (lazy initialisation, allocator growth), then
//! ITERATIONS more times. `bench/instructions.sh` runs this under callgrind twice per scenario
//! (1 and 1 + K iterations) and takes the difference ÷ K: the instructions of one steady-state
//! iteration, with start-up, fixture building and warm-up cancelled out. No symbol lookup is
//! involved, so it works on the stripped, LTO-optimised bench build.
//!
//! The scenarios call only the library's public API (the translate modules and the upstream
//! SSE decoder), in the order the chat handler calls them:
//! - `nonstream`: OpenAI request JSON → `ChatCompletionRequest` (serde_path_to_error, as the
//!   handler parses) → `validate` → `to_dashscope` → native request bytes; native response
//!   bytes → `GenerationResponse` → `to_openai` → OpenAI response bytes.
//! - `stream20`: the 20-frame stream of the fake's `scenario:stream20` (one read per frame)
//!   → SSE decoder → frame payload JSON → `on_frame` → `render`, then `finish`.
//! - `responses_stream20`: the same 20 reads → SSE decoder → frame payload JSON →
//!   `ResponseStream::on_frame` → `render` of every Responses event, then `finish` (the
//!   `/v1/responses` stream path; the response template from `to_chat` is built once, cloned
//!   per iteration as the handler owns a fresh one per request).
//! - `sse_decode`: the SSE decoder alone over 100 DashScope-shaped events cut into 1 KiB reads
//!   (events split across reads).
//! - `embeddings10`: `bench/run.sh`'s embeddings row: ten
//!   texts, base64 out → `EmbeddingRequest` → `to_dashscope` → native request bytes; the native
//!   answer (ten 1024-float vectors, numbers shaped like the fake's) → `EmbeddingResponse`
//!   (`F32Base64::read_answer`, as the handler reads it) → `to_openai` → OpenAI response bytes.
//! - `stream20_parse`, `stream20_scan` (experiments, not in the baseline): `stream20`'s decoder
//!   and payload parse only, into `GenerationResponse` and into `serde::de::IgnoredAny` (JSON
//!   read and checked, nothing built): what borrowed deserialization of the frames could save
//!   at most.
//!
//! Without arguments (or under `cargo bench`) it lists the scenarios; with `check` it runs
//! each once natively and prints its output size (a smoke test).

use std::hint::black_box;
use std::io::Write;

use bytes::Bytes;
use dashbridge::dashscope::{Endpoint, GenerationResponse};
use dashbridge::openai::ChatCompletionRequest;
use dashbridge::openai::responses::{Response, ResponsesRequest, StreamEvent};
use dashbridge::translate::request::{
    Ctx, EffortBudgets, RequiredToolChoice, UnknownPolicy, UnsupportedPolicy, set_upstream_stream,
    to_dashscope, validate,
};
use dashbridge::translate::response::{Meta, completion_id, to_openai};
use dashbridge::translate::responses::ToolNames;
use dashbridge::translate::responses::request::{Opts, to_chat};
use dashbridge::translate::responses::stream::{ResponseStream, Settings, render};
use dashbridge::translate::stream::StreamTranslator;
use dashbridge::upstream::{Failure, sse};
use futures_util::{FutureExt, StreamExt};
use serde_json::{Map, Value, json};

/// Scenario name, and whether it belongs to the committed baseline.
const SCENARIOS: &[(&str, bool)] = &[
    ("nonstream", true),
    ("stream20", true),
    ("sse_decode", true),
    ("responses_stream20", true),
    ("embeddings10", true),
    ("stream20_parse", false),
    ("stream20_scan", false),
];

fn main() {
    // `cargo bench` passes `--bench`: list the scenarios then.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut out = std::io::stdout().lock();
    match args.first().map(String::as_str) {
        None => {
            for (name, guarded) in SCENARIOS {
                let _ = writeln!(
                    out,
                    "{name}\t{}",
                    if *guarded { "guarded" } else { "experiment" }
                );
            }
        }
        Some("check") => {
            for (name, _) in SCENARIOS {
                let _ = writeln!(out, "{name}\t{} bytes out", run(name, 1));
            }
        }
        Some(name) => {
            let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
            let _ = writeln!(out, "{name}\t{} bytes out", run(name, n));
        }
    }
}

/// Build the input, warm up once, then run `n` iterations. Returns the output size of one.
fn run(name: &str, n: usize) -> usize {
    match name {
        "nonstream" => {
            let input = NonStream::new();
            repeat(n, || input.run())
        }
        "stream20" => {
            let wire = stream20_wire();
            repeat(n, || stream20(&wire))
        }
        "responses_stream20" => {
            let wire = stream20_wire();
            let template = responses_template();
            repeat(n, || responses_stream20(&wire, &template))
        }
        "sse_decode" => {
            let wire = decoder_wire();
            repeat(n, || sse_decode(&wire))
        }
        "embeddings10" => {
            let input = Embeddings::new();
            repeat(n, || input.run())
        }
        "stream20_parse" => {
            let wire = stream20_wire();
            repeat(n, || stream20_parse::<GenerationResponse>(&wire))
        }
        "stream20_scan" => {
            let wire = stream20_wire();
            repeat(n, || stream20_parse::<serde::de::IgnoredAny>(&wire))
        }
        other => panic!("unknown scenario {other}; run without arguments for the list"),
    }
}

fn repeat(n: usize, f: impl Fn() -> usize) -> usize {
    let first = black_box(f());
    for _ in 0..n {
        let again = black_box(f());
        assert_eq!(again, first, "a scenario must do the same work every time");
    }
    first
}

// ---- nonstream ---------------------------------------------------------------------------------

struct NonStream {
    request: Vec<u8>,
    response: Vec<u8>,
    empty: Map<String, Value>,
    budgets: EffortBudgets,
}

impl NonStream {
    /// The bodies of `bench/run.sh`'s non-stream row (`scenario:text`) and the fake's answer.
    fn new() -> Self {
        let request = br#"{"model":"qwen-plus","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Who are you? scenario:text"}]}"#.to_vec();
        let response = serde_json::to_vec(&json!({
            "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
                "content": "I am Qwen, a large-scale language model developed by Alibaba Cloud. I can answer questions, write text, reason and write code. How can I help you?"}}]},
            "usage": {"total_tokens": 51, "output_tokens": 29, "input_tokens": 22, "prompt_tokens_details": {"cached_tokens": 0}},
            "request_id": "09dceb20-ae2e-999b-85f9-3c1d3b6ba1a4"
        }))
        .unwrap_or_default();
        NonStream {
            request,
            response,
            empty: Map::new(),
            budgets: EffortBudgets::default(),
        }
    }

    fn run(&self) -> usize {
        let mut de = serde_json::Deserializer::from_slice(black_box(&self.request));
        let req: ChatCompletionRequest = match serde_path_to_error::deserialize(&mut de) {
            Ok(r) => r,
            Err(e) => panic!("request does not parse: {e}"),
        };
        if let Err(e) = validate(&req) {
            panic!("request does not validate: {e}");
        }
        let model = req.model.clone().unwrap_or_default();
        let ctx = Ctx {
            upstream_model: &model,
            endpoint: Endpoint::Text,
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
        };
        let mut tr = match to_dashscope(req, &ctx) {
            Ok(t) => t,
            Err(e) => panic!("request does not translate: {e}"),
        };
        set_upstream_stream(&mut tr.body, false);
        let upstream = serde_json::to_vec(&tr.body).unwrap_or_default();

        let resp: GenerationResponse = match serde_json::from_slice(black_box(&self.response)) {
            Ok(r) => r,
            Err(e) => panic!("response does not parse: {e}"),
        };
        let meta = Meta {
            id: completion_id(resp.request_id.as_deref(), "unknown"),
            created: 1_790_000_000,
            model,
        };
        let client = serde_json::to_vec(&to_openai(resp, &meta)).unwrap_or_default();
        black_box(&upstream).len() + black_box(&client).len()
    }
}

// ---- embeddings10 ------------------------------------------------------------------------------

struct Embeddings {
    request: Vec<u8>,
    response: Vec<u8>,
}

impl Embeddings {
    fn new() -> Self {
        let texts: Vec<String> = (0..10)
            .map(|i| format!("Benchmark passage {i}: the wind is swift, the sky is high."))
            .collect();
        let request = serde_json::to_vec(
            &json!({"model": "text-embedding-v4", "input": texts, "encoding_format": "base64"}),
        )
        .unwrap_or_default();
        // Numbers like the fake's: multiples of 1/1024 in [-1, 1), 1024 per vector.
        let vector = |i: usize| -> Vec<f64> {
            (0..1024)
                .map(|j| ((i * 977 + j * 31) % 2049) as f64 / 1024.0 - 1.0)
                .collect()
        };
        let embeddings: Vec<Value> = (0..10)
            .map(|i| json!({"text_index": i, "embedding": vector(i)}))
            .collect();
        let response = serde_json::to_vec(&json!({
            "output": {"embeddings": embeddings},
            "usage": {"total_tokens": 170},
            "request_id": "b2b1f5a0-6f4e-9d2c-8a61-0c1d3b6ba1a4"
        }))
        .unwrap_or_default();
        Embeddings { request, response }
    }

    fn run(&self) -> usize {
        use dashbridge::dashscope::embedding::EmbeddingResponse;
        use dashbridge::openai::embeddings::EmbeddingRequest;
        use dashbridge::translate::embeddings as temb;
        let req: EmbeddingRequest = match serde_json::from_slice(black_box(&self.request)) {
            Ok(r) => r,
            Err(e) => panic!("request does not parse: {e}"),
        };
        let ctx = temb::Ctx {
            upstream_model: "text-embedding-v4",
            row_limit: 10,
            dimensions: temb::known_dimensions("text-embedding-v4"),
            unknown: UnknownPolicy::Forward,
        };
        let plan = match temb::to_dashscope(req, &ctx) {
            Ok(p) => p,
            Err(e) => panic!("request does not translate: {e}"),
        };
        let upstream = serde_json::to_vec(&plan.body(0..plan.texts.len())).unwrap_or_default();
        assert_eq!(plan.encoding, temb::Encoding::Base64);
        use temb::IntoVector as _;
        let resp: EmbeddingResponse<temb::F32Base64> =
            match temb::F32Base64::read_answer(black_box(&self.response)) {
                Ok(r) => r,
                Err(e) => panic!("response does not parse: {e}"),
            };
        let answers = vec![temb::ChunkAnswer { range: 0..10, resp }];
        let out = match temb::to_openai("text-embedding-v4", 10, answers) {
            Ok(o) => o,
            Err(e) => panic!("answer does not translate: {e}"),
        };
        let client = serde_json::to_vec(&out).unwrap_or_default();
        black_box(&upstream).len() + black_box(&client).len()
    }
}

// ---- stream20 ----------------------------------------------------------------------------------

fn sse_event(id: usize, payload: &Value) -> String {
    format!("id:{id}\nevent:result\n:HTTP_STATUS/200\ndata:{payload}\n\n")
}

fn text_frame(content: &str, finish: &str, output_tokens: usize) -> Value {
    json!({
        "output": {"choices": [{"message": {"content": content, "role": "assistant"}, "finish_reason": finish}]},
        "usage": {"total_tokens": 22 + output_tokens, "output_tokens": output_tokens, "input_tokens": 22},
        "request_id": "20202020-aaaa-9bbb-8ccc-202020202020"
    })
}

/// The fake's `scenario:stream20`: 19 one-word frames and a finish frame, one read each.
fn stream20_wire() -> Vec<Bytes> {
    let words = [
        "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", " while",
        " the", " busy", " bees", " buzz", " around", " the", " old", " oak", " tree.",
    ];
    let mut frames: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(i, w)| text_frame(w, "null", i + 1))
        .collect();
    frames.push(text_frame("", "stop", words.len()));
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| Bytes::from(sse_event(i + 1, f)))
        .collect()
}

fn byte_stream(
    wire: &[Bytes],
) -> impl futures_util::Stream<Item = Result<Bytes, Failure>> + Send + '_ {
    futures_util::stream::iter(wire.iter().cloned().map(Ok::<Bytes, Failure>))
}

fn stream20_translator() -> StreamTranslator {
    let meta = Meta {
        id: "chatcmpl-20202020-aaaa-9bbb-8ccc-202020202020".into(),
        created: 1_790_000_000,
        model: "qwen-plus".into(),
    };
    StreamTranslator::new(meta, false)
}

/// One frame's payload → `on_frame` → `render`; the rendered length.
fn translate_frame(t: &mut StreamTranslator, data: &[u8]) -> usize {
    let payload: GenerationResponse = match serde_json::from_slice(data) {
        Ok(p) => p,
        Err(e) => panic!("frame does not parse: {e}"),
    };
    match t.on_frame(payload) {
        Some(body) => black_box(t.render(&body)).len(),
        None => 0,
    }
}

fn finish_stream(t: &StreamTranslator) -> usize {
    match t.finish() {
        Ok(Some(body)) => black_box(t.render(&body)).len(),
        Ok(None) => 0,
        Err(_) => panic!("the stream did not finish"),
    }
}

fn stream20(wire: &[Bytes]) -> usize {
    let mut t = stream20_translator();
    let mut frames = std::pin::pin!(sse::frames(byte_stream(wire)));
    let mut out = 0usize;
    let mut seen = 0usize;
    // The input is in memory: every poll is ready, no executor needed.
    while let Some(Some(item)) = frames.next().now_or_never() {
        let f = match item {
            Ok(f) => f,
            Err(e) => panic!("stream does not decode: {e:?}"),
        };
        seen += 1;
        out += translate_frame(&mut t, f.data.as_bytes());
    }
    assert_eq!(seen, 20, "every frame decoded");
    out + finish_stream(&t)
}

/// `stream20` up to the payload parse, into `T`; the data bytes parsed.
fn stream20_parse<T: serde::de::DeserializeOwned>(wire: &[Bytes]) -> usize {
    let mut frames = std::pin::pin!(sse::frames(byte_stream(wire)));
    let mut parsed = 0usize;
    let mut seen = 0usize;
    while let Some(Some(item)) = frames.next().now_or_never() {
        let f = match item {
            Ok(f) => f,
            Err(e) => panic!("stream does not decode: {e:?}"),
        };
        seen += 1;
        match serde_json::from_slice::<T>(f.data.as_bytes()) {
            Ok(p) => drop(black_box(p)),
            Err(e) => panic!("frame does not parse: {e}"),
        }
        parsed += f.data.len();
    }
    assert_eq!(seen, 20, "every frame decoded");
    parsed
}

// ---- responses_stream20 -------------------------------------------------------------------------

/// The response template `to_chat` makes for `bench/run.sh`'s Responses row.
fn responses_template() -> Response {
    let body = br#"{"model":"qwen-plus","input":"Who are you? scenario:stream20","stream":true}"#;
    let req: ResponsesRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => panic!("request does not parse: {e}"),
    };
    match to_chat(req, Opts::default()) {
        Ok(c) => c.template,
        Err(e) => panic!("request does not translate: {e}"),
    }
}

/// Every event as the handler sends it: `event:` name and rendered `data:`.
fn render_events(events: &mut Vec<StreamEvent>) -> usize {
    let mut n = 0usize;
    for ev in events.drain(..) {
        n += ev.kind.len() + black_box(render(&ev)).len();
    }
    n
}

fn responses_stream20(wire: &[Bytes], template: &Response) -> usize {
    let mut m = ResponseStream::new(
        template.clone(),
        "resp_20202020-aaaa-9bbb-8ccc-202020202020".into(),
        1_790_000_000,
        ToolNames::default(),
        Settings {
            mirror_summary: true,
            encrypted_reasoning: false,
            upstream_model: "qwen-plus".into(),
        },
    );
    let mut frames = std::pin::pin!(sse::frames(byte_stream(wire)));
    let mut events = Vec::new();
    let mut out = 0usize;
    let mut seen = 0usize;
    while let Some(Some(item)) = frames.next().now_or_never() {
        let f = match item {
            Ok(f) => f,
            Err(e) => panic!("stream does not decode: {e:?}"),
        };
        seen += 1;
        let payload: GenerationResponse = match serde_json::from_slice(f.data.as_bytes()) {
            Ok(p) => p,
            Err(e) => panic!("frame does not parse: {e}"),
        };
        m.on_frame(payload, &mut events);
        out += render_events(&mut events);
    }
    assert_eq!(seen, 20, "every frame decoded");
    m.finish(&mut events);
    out + render_events(&mut events)
}

// ---- sse_decode --------------------------------------------------------------------------------

const DECODER_EVENTS: usize = 100;

/// 100 DashScope-shaped events (≈ 280 bytes each) cut into 1 KiB reads.
fn decoder_wire() -> Vec<Bytes> {
    let mut wire = String::new();
    for i in 0..DECODER_EVENTS {
        let finish = if i + 1 == DECODER_EVENTS {
            "stop"
        } else {
            "null"
        };
        wire.push_str(&sse_event(i + 1, &text_frame(" word", finish, i + 1)));
    }
    wire.as_bytes()
        .chunks(1024)
        .map(Bytes::copy_from_slice)
        .collect()
}

fn sse_decode(wire: &[Bytes]) -> usize {
    let mut frames = std::pin::pin!(sse::frames(byte_stream(wire)));
    let mut n = 0usize;
    let mut data = 0usize;
    while let Some(Some(item)) = frames.next().now_or_never() {
        match item {
            Ok(f) => {
                n += 1;
                data += black_box(&f).data.len();
            }
            Err(e) => panic!("stream does not decode: {e:?}"),
        }
    }
    assert_eq!(n, DECODER_EVENTS, "every event decoded");
    data
}
