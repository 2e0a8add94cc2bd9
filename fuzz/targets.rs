//! The bodies of the six fuzz targets, in one place.
//!
//! Included by `#[path]` from the cargo-fuzz crate (`fuzz/fuzz_targets/*.rs`, nightly or
//! `RUSTC_BOOTSTRAP=1`) and from the bounded stable harness `tests/fuzz_harness.rs` (corpus +
//! proptest mutations, run by `cargo test`), so both exercise exactly the same code. Each target
//! must never panic on any input; each also checks a few properties that must hold for every
//! input, and returns a small summary the harness asserts exact values on for the seed corpus.
//!
//! - [`request`]: bytes → OpenAI request → `validate` → `to_dashscope` (a context chosen from the
//!   input's length) → `set_upstream_stream` / `shape_for_endpoint` → JSON.
//! - [`response`]: bytes → native response → `to_openai` → JSON; the same bytes split at `\n`
//!   as SSE payloads → `StreamTranslator::on_frame` / `render` / `finish` and the aggregator;
//!   `ErrorBody::parse` → `translate::error::classify`.
//! - [`sse`]: a split plan + bytes → `upstream::sse::frames`; the frames must not depend on how
//!   the bytes were split into reads.
//! - [`responses_request`]: bytes → Responses request → chat request → native request JSON.
//! - [`responses_stream`]: lines as native frames → the Responses event state machine.
//! - [`embedding_answer`]: bytes → the fast reader of the native embedding answer, checked
//!   against serde and the standard library's float parser.

#![allow(dead_code)]

use bytes::Bytes;
use dashbridge::dashscope::{Endpoint, ErrorBody, GenerationResponse};
use dashbridge::openai::ChatCompletionRequest;
use dashbridge::translate::aggregate::Aggregator;
use dashbridge::translate::embeddings::{F32Base64, native_floats};
use dashbridge::translate::error::classify;
use dashbridge::translate::request::{
    Ctx, EffortBudgets, RequiredToolChoice, UnknownPolicy, UnsupportedPolicy, set_upstream_stream,
    shape_for_endpoint, to_dashscope, validate,
};
use dashbridge::translate::response::{Meta, to_openai};
use dashbridge::translate::stream::StreamTranslator;
use dashbridge::upstream::Failure;
use dashbridge::upstream::sse::{Frame, frames};
use futures_util::{FutureExt, StreamExt, stream};
use serde_json::{Map, Value, json};

// ---- request ---------------------------------------------------------------------------------

/// What [`request`] did with an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Not a JSON object of the request's shape.
    NotARequest,
    /// `validate` refused it; the parameter named.
    Invalid(Option<String>),
    /// `to_dashscope` refused it (a 400 naming the parameter).
    Refused(Option<String>),
    /// Translated: the endpoint chosen and the number of native messages.
    Translated {
        endpoint: &'static str,
        messages: usize,
    },
}

/// The translation context for a selector (the input's length): its low bits pick the endpoint, the
/// native `reasoning_effort` flag, `preserve_thinking`, config defaults/overrides and the
/// unknown-field policy, so the fuzzer reaches every branch without spending input bytes.
fn with_ctx<R>(selector: usize, f: impl FnOnce(&Ctx<'_>) -> R) -> R {
    let budgets = EffortBudgets::default();
    let empty = Map::new();
    let mut defaults = Map::new();
    defaults.insert("temperature".into(), json!(0.7));
    defaults.insert("enable_thinking".into(), json!(false));
    let mut overrides = Map::new();
    overrides.insert("max_tokens".into(), json!(64));
    let with_config = selector & 8 != 0;
    let ctx = Ctx {
        upstream_model: "qwen-plus",
        endpoint: if selector & 1 == 0 {
            Endpoint::Text
        } else {
            Endpoint::Multimodal
        },
        defaults: if with_config { &defaults } else { &empty },
        overrides: if with_config { &overrides } else { &empty },
        preserve_thinking: selector & 4 != 0,
        native_reasoning_effort: selector & 2 != 0,
        budgets: &budgets,
        unknown: match (selector >> 4) % 3 {
            0 => UnknownPolicy::Forward,
            1 => UnknownPolicy::Drop,
            _ => UnknownPolicy::Reject,
        },
        unsupported: if (selector >> 4).is_multiple_of(2) {
            UnsupportedPolicy::Warn
        } else {
            UnsupportedPolicy::Reject
        },
        native_max_completion_tokens: selector & 32 != 0,
        thinks_by_default: selector & 64 != 0,
        required_tool_choice: if selector & 128 == 0 {
            RequiredToolChoice::Emulate
        } else {
            RequiredToolChoice::Reject
        },
    };
    f(&ctx)
}

fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Vec<u8> {
    match serde_json::to_vec(v) {
        Ok(b) => b,
        Err(e) => panic!("{what} does not serialize: {e}"),
    }
}

/// OpenAI request bytes → native request JSON. Never panics; checks that the warning header
/// value is printable ASCII, that `shape_for_endpoint` is idempotent and that a request that is
/// valid JSON translates to valid JSON.
pub fn request(data: &[u8]) -> RequestOutcome {
    request_with(data, data.len())
}

/// [`request`] with the context picked by `selector` instead of the input's length (0: text
/// endpoint, no config, unknown fields forwarded, unsupported ones warned about).
pub fn request_with(data: &[u8], selector: usize) -> RequestOutcome {
    let Ok(req) = serde_json::from_slice::<ChatCompletionRequest>(data) else {
        return RequestOutcome::NotARequest;
    };
    if let Err(e) = validate(&req) {
        return RequestOutcome::Invalid(e.param);
    }
    let translated = match with_ctx(selector, |ctx| to_dashscope(req, ctx)) {
        Ok(t) => t,
        Err(e) => return RequestOutcome::Refused(e.param),
    };
    let header = translated.notes.header_value().unwrap_or_default();
    assert!(
        header.chars().all(|c| c.is_ascii_graphic() || c == ' '),
        "warning header value is not printable ASCII: {header:?}"
    );
    assert!(
        header.len() <= dashbridge::translate::WARNING_HEADER_MAX,
        "warning header longer than its cap: {} bytes",
        header.len()
    );
    let endpoint = translated.endpoint;
    let mut body = translated.body;
    set_upstream_stream(&mut body, translated.stream);
    shape_for_endpoint(&mut body, endpoint);
    let once = to_json("the native request", &body);
    shape_for_endpoint(&mut body, endpoint);
    let twice = to_json("the native request", &body);
    assert!(
        once == twice,
        "shape_for_endpoint is not idempotent:\n{}\n{}",
        String::from_utf8_lossy(&once),
        String::from_utf8_lossy(&twice)
    );
    // Raw regions (tool schemas) are forwarded verbatim, so the output is exactly as strict as
    // the input: a lone surrogate escape in a schema survives. Valid JSON must stay valid.
    if serde_json::from_slice::<Value>(data).is_ok()
        && let Err(e) = serde_json::from_slice::<Value>(&once)
    {
        panic!("valid JSON in, invalid native request out: {e}");
    }
    RequestOutcome::Translated {
        endpoint: endpoint.label(),
        messages: body.input.messages.len(),
    }
}

// ---- response --------------------------------------------------------------------------------

/// What [`response`] did with an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseOutcome {
    /// The whole input parsed as one native response (non-stream path).
    pub whole: bool,
    /// Lines (split at `\n`) that parsed as native frames.
    pub frames: usize,
    /// Chunks the stream translator produced from them.
    pub chunks: usize,
    /// `finish()` said every started choice finished.
    pub finished: bool,
    /// The client status `classify` gives the input as an in-band error body.
    pub error_status: u16,
}

fn meta() -> Meta {
    Meta {
        id: "chatcmpl-fuzz".into(),
        created: 1_700_000_000,
        model: "qwen-plus".into(),
    }
}

/// Native response bytes → OpenAI completion, chunks and error. Never panics; every rendered
/// chunk is JSON, and every classified error has a 4xx/5xx status and a message.
pub fn response(data: &[u8]) -> ResponseOutcome {
    let whole = match serde_json::from_slice::<GenerationResponse>(data) {
        Ok(resp) => {
            let completion = to_openai(resp, &meta());
            to_json("the completion", &completion);
            true
        }
        Err(_) => false,
    };

    let include_usage = data.len().is_multiple_of(2);
    let mut translator = StreamTranslator::new(meta(), include_usage);
    let mut agg = Aggregator::default();
    let (mut parsed, mut chunks) = (0, 0);
    for line in data.split(|b| *b == b'\n') {
        let Ok(frame) = serde_json::from_slice::<GenerationResponse>(line) else {
            continue;
        };
        parsed += 1;
        if let Some(body) = translator.on_frame(frame) {
            chunks += 1;
            let text = translator.render(&body);
            if let Err(e) = serde_json::from_str::<Value>(&text) {
                panic!("a rendered chunk is not JSON: {e}: {text}");
            }
            agg.push(body);
        }
    }
    let finished = match translator.finish() {
        Ok(Some(last)) => {
            let text = translator.render(&last);
            if let Err(e) = serde_json::from_str::<Value>(&text) {
                panic!("the usage chunk is not JSON: {e}: {text}");
            }
            true
        }
        Ok(None) => true,
        Err(_) => false,
    };
    let usage = translator.final_usage();
    to_json(
        "the aggregated completion",
        &agg.finish(translator.meta(), usage),
    );

    let body = ErrorBody::parse(data);
    let status = data.first().map_or(500, |b| 300 + u16::from(*b) * 2);
    let mut error_status = 0;
    for given in [None, Some(0), Some(status)] {
        let mapped = classify(given, &body);
        assert!(
            (400..=599).contains(&mapped.status),
            "classify({given:?}) gave status {}",
            mapped.status
        );
        assert!(!mapped.message.is_empty(), "classify gave an empty message");
        assert!(!mapped.code.is_empty(), "classify gave an empty code");
        if given.is_none() {
            error_status = mapped.status;
        }
    }
    ResponseOutcome {
        whole,
        frames: parsed,
        chunks,
        finished,
        error_status,
    }
}

// ---- sse -------------------------------------------------------------------------------------

/// One decoded item, comparable across splits.
pub type Decoded = Result<Frame, String>;

/// Decode `chunks` as one upstream body. The source never waits, so the decoder must finish
/// without waiting either (no runtime needed).
pub fn decode(chunks: Vec<Bytes>) -> Vec<Decoded> {
    let source = stream::iter(chunks.into_iter().map(Ok::<Bytes, Failure>));
    let all = frames(source)
        .map(|r| r.map_err(|e| format!("{e:?}")))
        .collect::<Vec<_>>()
        .now_or_never();
    match all {
        Some(v) => v,
        None => panic!("the SSE decoder waited on a source that is always ready"),
    }
}

/// Cut `body` at the given offsets (sorted and clamped; empty pieces kept, as a read may be).
pub fn split_at(body: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| (*c).min(body.len())).collect();
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for c in cuts {
        out.push(Bytes::copy_from_slice(&body[start..c]));
        start = c;
    }
    out.push(Bytes::copy_from_slice(&body[start..]));
    out
}

/// The input format of [`sse`]: byte 0 = `k` (mod 16) cut points, the next `k` bytes the gaps
/// between cuts, the rest the SSE body. Returns (cuts, body).
pub fn split_plan(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let k = usize::from(k % 16).min(rest.len());
    let (gaps, body) = rest.split_at(k);
    let mut at = 0;
    let cuts = gaps
        .iter()
        .map(|g| {
            at += usize::from(*g);
            at
        })
        .collect();
    (cuts, body)
}

/// Inputs up to this size are also decoded one byte per read.
const BYTEWISE_MAX: usize = 2048;

/// SSE bytes → frames, whole and split: the same frames (and errors) in the same order whatever
/// the split. Returns the whole decode.
pub fn sse(data: &[u8]) -> Vec<Decoded> {
    let (cuts, body) = split_plan(data);
    let whole = decode(vec![Bytes::copy_from_slice(body)]);
    let split = decode(split_at(body, &cuts));
    assert_eq!(whole, split, "frames depend on the split {cuts:?}");
    if body.len() <= BYTEWISE_MAX {
        let bytewise: Vec<usize> = (1..body.len()).collect();
        let bytes = decode(split_at(body, &bytewise));
        assert_eq!(whole, bytes, "frames differ when read one byte at a time");
    }
    whole
}

// ---- Responses API ---------------------------------------------------------------------------

/// What [`responses_request`] did with an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponsesOutcome {
    NotARequest,
    /// Refused by the Responses or the chat translator: the parameter named.
    Refused(Option<String>),
    Translated {
        endpoint: &'static str,
        messages: usize,
        tools: usize,
    },
}

/// Responses request bytes → chat request → native request JSON. Never panics; the warning
/// header is printable ASCII and valid JSON in gives valid JSON out.
pub fn responses_request(data: &[u8], selector: usize) -> ResponsesOutcome {
    use dashbridge::openai::responses::ResponsesRequest;
    use dashbridge::translate::responses::request::{Opts, to_chat};
    let Ok(req) = serde_json::from_slice::<ResponsesRequest>(data) else {
        return ResponsesOutcome::NotARequest;
    };
    let opts = Opts {
        preserve_thinking: selector & 4 != 0,
    };
    let converted = match to_chat(req, opts) {
        Ok(c) => c,
        Err(e) => return ResponsesOutcome::Refused(e.param),
    };
    let tools = converted.tools.0.len();
    let mut notes = converted.notes;
    let translated = match with_ctx(selector, |ctx| to_dashscope(converted.chat, ctx)) {
        Ok(t) => t,
        Err(e) => return ResponsesOutcome::Refused(e.param),
    };
    notes.extend(translated.notes);
    let header = notes.header_value().unwrap_or_default();
    assert!(
        header.chars().all(|c| c.is_ascii_graphic() || c == ' '),
        "warning header value is not printable ASCII: {header:?}"
    );
    assert!(
        header.len() <= dashbridge::translate::WARNING_HEADER_MAX,
        "warning header over its cap: {} bytes",
        header.len()
    );
    let out = to_json("the native request", &translated.body);
    if serde_json::from_slice::<Value>(data).is_ok() {
        assert!(
            serde_json::from_slice::<Value>(&out).is_ok(),
            "valid JSON in, invalid JSON out"
        );
    }
    ResponsesOutcome::Translated {
        endpoint: translated.endpoint.label(),
        messages: translated.body.input.messages.len(),
        tools,
    }
}

/// What [`responses_stream`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    pub frames: usize,
    pub events: usize,
    pub items: usize,
    pub status: &'static str,
}

/// Lines of `data` as native frames (unparsable lines skipped) through the Responses state
/// machine; a line `!CODE` fails the stream with that code instead. Checks on every input:
/// sequence numbers 0, 1, 2 … without gaps, `response.created` first, exactly one terminal
/// event and it is last, one response id, every event renders to JSON whose `type` is the
/// event name, and `output_index` never beyond the items added.
pub fn responses_stream(data: &[u8]) -> StreamSummary {
    use dashbridge::openai::responses::ResponsesRequest;
    use dashbridge::translate::responses::request::{Opts, to_chat};
    use dashbridge::translate::responses::stream::{ResponseStream, Settings, render};
    let req: ResponsesRequest = match serde_json::from_str(
        r#"{"model":"m","input":"x","tools":[{"type":"custom","name":"apply_patch"},
            {"type":"namespace","name":"ns","tools":[{"type":"function","name":"f"}]}]}"#,
    ) {
        Ok(r) => r,
        Err(e) => panic!("the fixed request does not parse: {e}"),
    };
    let converted = match to_chat(req, Opts::default()) {
        Ok(c) => c,
        Err(e) => panic!("the fixed request does not translate: {e:?}"),
    };
    let settings = Settings {
        mirror_summary: data.len().is_multiple_of(2),
        encrypted_reasoning: data.len().is_multiple_of(3),
        upstream_model: "m".into(),
    };
    let mut m = ResponseStream::new(
        converted.template,
        "resp_fuzz".into(),
        0,
        converted.tools,
        settings,
    );
    let mut events = Vec::new();
    let mut frames = 0;
    let mut failed = false;
    for line in data.split(|b| *b == b'\n') {
        if let Some(code) = line.strip_prefix(b"!") {
            m.fail(&String::from_utf8_lossy(code), "fuzz", &mut events);
            failed = true;
            break;
        }
        if let Ok(frame) = serde_json::from_slice::<GenerationResponse>(line) {
            frames += 1;
            m.on_frame(frame, &mut events);
        }
    }
    if !failed {
        m.finish(&mut events);
    }
    let mut added = 0usize;
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(ev.sequence_number, i as u64, "sequence gap at {i}");
        let json: Value = match serde_json::from_str(&render(ev)) {
            Ok(v) => v,
            Err(e) => panic!("event {i} does not render to JSON: {e}"),
        };
        assert_eq!(json["type"], ev.kind);
        let terminal = matches!(
            ev.kind,
            "response.completed" | "response.incomplete" | "response.failed"
        );
        assert_eq!(terminal, i + 1 == events.len(), "terminal event not last");
        if i == 0 {
            assert_eq!(ev.kind, "response.created");
        }
        if let Some(r) = &ev.response {
            assert_eq!(r.id, "resp_fuzz");
        }
        if ev.kind == "response.output_item.added" {
            assert_eq!(ev.output_index, Some(added));
            added += 1;
        } else if let Some(idx) = ev.output_index {
            assert!(idx < added, "event for an item not added");
        }
    }
    let resp = m.response();
    assert_eq!(resp.output.len(), added);
    StreamSummary {
        frames,
        events: events.len(),
        items: added,
        status: resp.status,
    }
}

// ---- embedding_answer ------------------------------------------------------------------------

/// A vector as float32 bits, from the fast reader.
#[derive(Debug, PartialEq)]
pub struct Bits(pub Vec<u32>);

impl native_floats::FromF32Le for Bits {
    fn from_f32_le(bytes: &[u8]) -> Result<Self, String> {
        Ok(Bits(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }
}

/// The reference: serde reads the structure, each number's own text is parsed to the nearest
/// float32 by the standard library.
#[derive(Debug, PartialEq)]
pub struct RefBits(pub Vec<u32>);

impl<'de> serde::Deserialize<'de> for RefBits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let numbers: Vec<&serde_json::value::RawValue> = serde::Deserialize::deserialize(d)?;
        numbers
            .iter()
            .map(|n| n.get().parse::<f32>().map(f32::to_bits))
            .collect::<Result<_, _>>()
            .map(RefBits)
            .map_err(serde::de::Error::custom)
    }
}

/// What [`embedding_answer`] did with an input: `None` when the fast reader left it to serde,
/// else the number of items and of numbers it read.
pub type EmbeddingOutcome = Option<(usize, usize)>;

/// Native embedding answer bytes → `native_floats::read`. Never panics; whatever the fast
/// reader reads, serde reads too (the handler's fallback type, `F32Base64`) and to the same
/// values: every item's index and vector (bit for bit, against each number's own text parsed
/// by the standard library), the usage, the request id, code and message.
pub fn embedding_answer(data: &[u8]) -> EmbeddingOutcome {
    use dashbridge::dashscope::embedding::EmbeddingResponse;
    let fast = native_floats::read::<Bits>(data)?;
    if let Err(e) = serde_json::from_slice::<EmbeddingResponse<F32Base64>>(data) {
        panic!("the fast reader read what serde refuses ({e})");
    }
    let reference = match serde_json::from_slice::<EmbeddingResponse<RefBits>>(data) {
        Ok(r) => r,
        Err(e) => panic!("the fast reader read what the reference refuses ({e})"),
    };
    assert_eq!(fast.request_id, reference.request_id, "request_id");
    assert_eq!(fast.code, reference.code, "code");
    assert_eq!(fast.message, reference.message, "message");
    assert_eq!(
        fast.usage.map(|u| u.total_tokens),
        reference.usage.map(|u| u.total_tokens),
        "usage"
    );
    let items = fast.output.map(|o| o.embeddings).unwrap_or_default();
    let ref_items = reference.output.map(|o| o.embeddings).unwrap_or_default();
    assert_eq!(items.len(), ref_items.len(), "number of items");
    let mut numbers = 0;
    for (i, (a, b)) in items.iter().zip(&ref_items).enumerate() {
        assert_eq!(a.text_index, b.text_index, "item {i}: text_index");
        assert!(
            b.sparse_embedding.is_none(),
            "item {i}: a sparse vector was read"
        );
        assert_eq!(
            a.embedding.as_ref().map(|v| &v.0),
            b.embedding.as_ref().map(|v| &v.0),
            "item {i}: vector"
        );
        numbers += a.embedding.as_ref().map_or(0, |v| v.0.len());
    }
    Some((items.len(), numbers))
}
