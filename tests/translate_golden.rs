//! Golden tests of the pure translators: no network, no runtime.
//!
//! One directory per case under `tests/fixtures/golden/<case>/`:
//! - requests: `openai_request.json` → `dashscope_request.json` (+ `notes.json` when the
//!   translation must report something); compared as `serde_json::Value`.
//! - non-stream responses: `dashscope_response.json` (a copy of a recorded fixture) →
//!   `openai_response.json`.
//! - streams: `dashscope_stream.sse` (a copy of a recorded fixture, or a hand-made variant) →
//!   `openai_stream.jsonl`, one chunk per line, ending with the usage chunk when the case asks
//!   for one (`data: [DONE]` is the handler's job, not the translator's).
//!
//! Cases that are copies of `tests/fixtures/dashscope/*` are checked against the original, so
//! the two cannot drift. To regenerate the expected files after an intended change run
//! `GOLDEN_BLESS=1 cargo test --test translate_golden` and review the diff: a blessed file is
//! only as good as that review.
//!
//! Also here: every upstream error fixture through `translate::error::classify`, and two
//! property tests (SSE decoding is independent of how the bytes are split; the stream
//! translator never panics and preserves content and tool arguments).

// `allow-unwrap-in-tests` covers `#[test]` functions only, not the helpers below.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use bytes::Bytes;
use common::fake::fixture;
use dashbridge::dashscope::{Endpoint, ErrorBody, GenerationResponse};
use dashbridge::error::ProxyError;
use dashbridge::openai::ChatCompletionRequest;
use dashbridge::translate::TranslateError;
use dashbridge::translate::error::classify;
use dashbridge::translate::request::{
    Ctx, EffortBudgets, Translated, UnknownPolicy, UnsupportedPolicy, set_upstream_stream,
    to_dashscope,
};
use dashbridge::translate::response::{Meta, completion_id, to_openai};
use dashbridge::translate::stream::{Incomplete, StreamTranslator};
use dashbridge::upstream::Failure;
use dashbridge::upstream::sse::{Frame, frames};
use futures_util::{FutureExt, StreamExt, stream};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const CREATED: u64 = 1_700_000_000;

// ---- files ------------------------------------------------------------------------------------

fn golden_path(case: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(case)
        .join(file)
}

fn read_opt(case: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(golden_path(case, file)).ok()
}

fn read(case: &str, file: &str) -> String {
    let path = golden_path(case, file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse(text: &str, what: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON: {e}"))
}

fn bless() -> bool {
    std::env::var_os("GOLDEN_BLESS").is_some()
}

/// Compare `actual` with the golden JSON file (or rewrite it in bless mode). Returns a
/// description of the mismatch, so one run reports every failing case.
fn check_json(case: &str, file: &str, actual: &Value) -> Option<String> {
    if bless() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(golden_path(case, file), text).unwrap();
        return None;
    }
    let expected = parse(&read(case, file), &format!("{case}/{file}"));
    (expected != *actual).then(|| {
        format!(
            "{case}/{file} differs\n--- expected\n{}\n--- actual\n{}",
            serde_json::to_string_pretty(&expected).unwrap(),
            serde_json::to_string_pretty(actual).unwrap()
        )
    })
}

fn check_jsonl(case: &str, actual: &[Value]) -> Option<String> {
    if bless() {
        let text: String = actual.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(golden_path(case, "openai_stream.jsonl"), text).unwrap();
        return None;
    }
    let expected: Vec<Value> = read(case, "openai_stream.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse(l, &format!("{case}/openai_stream.jsonl line")))
        .collect();
    if expected == actual {
        return None;
    }
    let show = |v: &[Value]| v.iter().map(|c| format!("{c}\n")).collect::<String>();
    Some(format!(
        "{case}/openai_stream.jsonl differs\n--- expected\n{}--- actual\n{}",
        show(&expected),
        show(actual)
    ))
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} golden case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---- request translation ----------------------------------------------------------------------

/// The per-request context the handler would resolve from config.
#[derive(Debug, Clone, Copy)]
struct Spec {
    model: &'static str,
    endpoint: Endpoint,
    preserve_thinking: bool,
    native_effort: bool,
    unknown: UnknownPolicy,
    unsupported: UnsupportedPolicy,
}

impl Spec {
    const fn on(model: &'static str, endpoint: Endpoint) -> Spec {
        Spec {
            model,
            endpoint,
            preserve_thinking: false,
            native_effort: false,
            unknown: UnknownPolicy::Forward,
            unsupported: UnsupportedPolicy::Warn,
        }
    }
    const fn text(model: &'static str) -> Spec {
        Spec::on(model, Endpoint::Text)
    }
    const fn preserving(mut self) -> Spec {
        self.preserve_thinking = true;
        self
    }
}

/// Parse the body as the handler does (from bytes), translate, and set the streaming switch
/// the way the handler does for the first upstream attempt.
fn translate_str(body: &str, spec: Spec) -> Result<Translated, TranslateError> {
    let req: ChatCompletionRequest =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("request does not parse: {e}"));
    let defaults = Map::new();
    let overrides = Map::new();
    let budgets = EffortBudgets::default();
    let ctx = Ctx {
        upstream_model: spec.model,
        endpoint: spec.endpoint,
        defaults: &defaults,
        overrides: &overrides,
        preserve_thinking: spec.preserve_thinking,
        native_reasoning_effort: spec.native_effort,
        budgets: &budgets,
        unknown: spec.unknown,
        unsupported: spec.unsupported,
    };
    let mut t = to_dashscope(req, &ctx)?;
    set_upstream_stream(&mut t.body, t.stream);
    Ok(t)
}

fn translate(body: &Value, spec: Spec) -> Result<Translated, TranslateError> {
    translate_str(&body.to_string(), spec)
}

/// The native body as it goes on the wire.
fn wire(t: &Translated) -> Value {
    parse(
        &serde_json::to_string(&t.body).unwrap(),
        "the serialized native body",
    )
}

struct ReqCase {
    name: &'static str,
    spec: Spec,
    /// The endpoint the translation must choose.
    endpoint: Endpoint,
    stream: bool,
    /// The recorded native request this case must reproduce exactly.
    fixture: Option<&'static str>,
}

const fn req(name: &'static str, spec: Spec, endpoint: Endpoint) -> ReqCase {
    ReqCase {
        name,
        spec,
        endpoint,
        stream: false,
        fixture: None,
    }
}

const fn same_as(mut c: ReqCase, fixture: &'static str) -> ReqCase {
    c.fixture = Some(fixture);
    c
}

const fn streamed(mut c: ReqCase) -> ReqCase {
    c.stream = true;
    c
}

const TEXT: Endpoint = Endpoint::Text;
const MM: Endpoint = Endpoint::Multimodal;

const REQUEST_CASES: &[ReqCase] = &[
    // The recorded native requests, reproduced from the OpenAI request a client would send.
    same_as(
        req("fixture-text", Spec::text("qwen-plus"), TEXT),
        "request-text.json",
    ),
    same_as(
        streamed(req("fixture-text-stream", Spec::text("qwen-plus"), TEXT)),
        "request-text-stream.json",
    ),
    same_as(
        req("fixture-tools", Spec::text("qwen-plus"), TEXT),
        "request-tools.json",
    ),
    same_as(
        streamed(req("fixture-tools-stream", Spec::text("qwen-plus"), TEXT)),
        "request-tools-stream.json",
    ),
    same_as(
        req("fixture-tool-result", Spec::text("qwen-plus"), TEXT),
        "request-tool-result.json",
    ),
    same_as(
        streamed(req(
            "fixture-reasoning-stream",
            Spec::text("qwen-plus"),
            TEXT,
        )),
        "request-reasoning-stream.json",
    ),
    same_as(
        streamed(req(
            "fixture-reasoning-tools-stream",
            Spec::text("qwen-plus"),
            TEXT,
        )),
        "request-reasoning-tools-stream.json",
    ),
    same_as(
        req("fixture-search", Spec::text("qwen-plus"), TEXT),
        "request-search.json",
    ),
    same_as(
        req("fixture-logprobs", Spec::text("qwen-plus-2025-07-28"), TEXT),
        "request-logprobs.json",
    ),
    same_as(
        req("fixture-partial", Spec::text("qwen-plus"), TEXT),
        "request-partial.json",
    ),
    same_as(
        req("fixture-multimodal", Spec::on("qwen3-vl-plus", MM), MM),
        "request-multimodal.json",
    ),
    same_as(
        streamed(req(
            "fixture-multimodal-video",
            Spec::on("qwen3-vl-plus", MM),
            MM,
        )),
        "request-multimodal-video.json",
    ),
    // Parameters.
    req("sampling-params", Spec::text("qwen-plus"), TEXT),
    req("sampling-clamped", Spec::text("qwen-plus"), TEXT),
    req("native-extras", Spec::text("qwen-plus"), TEXT),
    req("unsupported-dropped", Spec::text("qwen-plus"), TEXT),
    // Tools.
    req("tools-choice-object", Spec::text("qwen-plus"), TEXT),
    req("legacy-functions", Spec::text("qwen-plus"), TEXT),
    // Content: media parts force the multimodal endpoint even when the table says text.
    req("multimodal-mixed", Spec::text("qwen3-vl-plus"), MM),
    req("text-parts-flattened", Spec::text("qwen-plus"), TEXT),
    // Reasoning.
    req("reasoning-effort-low", Spec::text("qwen-plus"), TEXT),
    req("reasoning-history-dropped", Spec::text("qwen-plus"), TEXT),
    req(
        "reasoning-history-preserved",
        Spec::text("qwen-plus").preserving(),
        TEXT,
    ),
];

#[test]
fn request_goldens() {
    let mut failures = Vec::new();
    for case in REQUEST_CASES {
        let body = read(case.name, "openai_request.json");
        let t = match translate_str(&body, case.spec) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{}: translation failed: {e:?}", case.name));
                continue;
            }
        };
        failures.extend(check_json(case.name, "dashscope_request.json", &wire(&t)));
        if let Some(name) = case.fixture
            && !bless()
        {
            let golden = parse(&read(case.name, "dashscope_request.json"), case.name);
            if golden != parse(&fixture(name), name) {
                failures.push(format!(
                    "{}/dashscope_request.json is no longer a copy of tests/fixtures/dashscope/{name}",
                    case.name
                ));
            }
        }
        let expected_notes: Vec<String> = read_opt(case.name, "notes.json")
            .map(|s| serde_json::from_str(&s).unwrap())
            .unwrap_or_default();
        if t.notes.0 != expected_notes {
            failures.push(format!(
                "{}: notes {:?}, expected {expected_notes:?}",
                case.name, t.notes.0
            ));
        }
        if t.endpoint != case.endpoint {
            failures.push(format!(
                "{}: endpoint {:?}, expected {:?}",
                case.name, t.endpoint, case.endpoint
            ));
        }
        if t.stream != case.stream {
            failures.push(format!("{}: stream {}", case.name, t.stream));
        }
    }
    report(failures);
}

#[test]
fn sampling_parameters_are_kept_clamped_or_left_absent() {
    let t = translate_str(
        &read("sampling-params", "openai_request.json"),
        Spec::text("m"),
    )
    .unwrap();
    let p = &wire(&t)["parameters"];
    // temperature 0 and seed 0 are values, not "unset".
    assert_eq!(p["temperature"], json!(0.0));
    assert_eq!(p["seed"], json!(0));
    // top_p absent stays absent: DashScope's own default applies.
    assert!(p.get("top_p").is_none(), "{p}");
    // max_completion_tokens wins over max_tokens.
    assert_eq!(p["max_tokens"], json!(300));
    assert_eq!(p["stop"], json!(["END"]));
    assert!(t.notes.is_empty());

    let t = translate_str(
        &read("sampling-clamped", "openai_request.json"),
        Spec::text("m"),
    )
    .unwrap();
    let p = &wire(&t)["parameters"];
    assert_eq!(p["temperature"], json!(1.99));
    assert_eq!(p["top_p"], json!(1e-6));
    assert_eq!(t.notes.0.len(), 2);
    assert_eq!(
        t.notes.header_value(),
        "temperature 2 clamped to 1.99 (DashScope range is [0, 2)); top_p 0 clamped to 0.000001 (DashScope range is (0, 1])"
    );
}

#[test]
fn enable_thinking_false_is_sent_and_extras_keep_their_json_types() {
    let t = translate_str(
        &read("native-extras", "openai_request.json"),
        Spec::text("m"),
    )
    .unwrap();
    let p = &wire(&t)["parameters"];
    assert_eq!(p["enable_thinking"], Value::Bool(false));
    assert!(!t.thinking);
    assert!(
        p["top_k"].is_u64(),
        "top_k must stay an integer: {}",
        p["top_k"]
    );
    assert!(p["repetition_penalty"].is_f64());
    assert_eq!(
        p["x_future_param"],
        json!({"nested": [1, "two", null, 3.5], "flag": true})
    );
}

#[test]
fn unknown_field_policies() {
    let body = json!({
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "hi"}],
        "x_future_param": 7,
        "top_k": 3
    });
    let mut spec = Spec::text("qwen-plus");

    spec.unknown = UnknownPolicy::Drop;
    let t = translate(&body, spec).unwrap();
    let p = &wire(&t)["parameters"];
    assert!(p.get("x_future_param").is_none());
    assert_eq!(
        p["top_k"],
        json!(3),
        "native extras forward whatever the policy"
    );
    assert_eq!(t.notes.0, vec!["unknown field x_future_param dropped"]);

    spec.unknown = UnknownPolicy::Reject;
    let e = translate(&body, spec).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("x_future_param"));
    assert_eq!(e.code, "unsupported_parameter");

    let mut spec = Spec::text("qwen-plus");
    spec.unsupported = UnsupportedPolicy::Reject;
    let e = translate(
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "frequency_penalty": 1}),
        spec,
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("frequency_penalty"));
    assert_eq!(e.code, "unsupported_parameter");
}

#[test]
fn reasoning_effort_variants() {
    let body = |effort: &str| json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": effort});
    let params = |t: &Translated| wire(t)["parameters"].clone();

    let t = translate(&body("low"), Spec::text("m")).unwrap();
    assert!(t.thinking);
    assert_eq!(params(&t)["thinking_budget"], json!(1024));

    let t = translate(&body("medium"), Spec::text("m")).unwrap();
    assert_eq!(params(&t)["thinking_budget"], json!(4096));

    let t = translate(&body("high"), Spec::text("m")).unwrap();
    assert_eq!(params(&t)["enable_thinking"], json!(true));
    assert_eq!(params(&t)["thinking_budget"], json!(16384));

    // "max": thinking on, no budget (the model's own maximum).
    let t = translate(&body("max"), Spec::text("m")).unwrap();
    assert_eq!(params(&t)["enable_thinking"], json!(true));
    assert!(params(&t).get("thinking_budget").is_none());

    // "none" turns thinking off explicitly.
    let t = translate(&body("none"), Spec::text("m")).unwrap();
    assert!(!t.thinking);
    assert_eq!(params(&t)["enable_thinking"], json!(false));
    assert!(params(&t).get("thinking_budget").is_none());

    // A model that takes reasoning_effort natively gets it as is.
    let mut native = Spec::text("deepseek-v4");
    native.native_effort = true;
    let t = translate(&body("high"), native).unwrap();
    assert_eq!(params(&t)["reasoning_effort"], json!("high"));
    assert!(params(&t).get("enable_thinking").is_none());

    // An explicit client budget wins over the effort's.
    let mut b = body("low");
    b["thinking_budget"] = json!(99);
    let t = translate(&b, Spec::text("m")).unwrap();
    assert_eq!(params(&t)["thinking_budget"], json!(99));

    let e = translate(&body("extreme"), Spec::text("m")).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("reasoning_effort"));
    assert_eq!(e.code, "invalid_value");
}

#[test]
fn reasoning_history_kept_when_the_request_asks_for_preserve_thinking() {
    let mut body = parse(
        &read("reasoning-history-dropped", "openai_request.json"),
        "request",
    );
    body["preserve_thinking"] = json!(true);
    let t = translate(&body, Spec::text("qwen-plus")).unwrap();
    let w = wire(&t);
    assert_eq!(
        w["input"]["messages"][1]["reasoning_content"],
        json!("Two plus two is four.")
    );
    assert_eq!(w["parameters"]["preserve_thinking"], json!(true));
    assert!(t.notes.is_empty(), "{:?}", t.notes);
}

#[test]
fn translation_errors_are_400s_naming_the_param() {
    let user = json!({"role": "user", "content": "hi"});
    let tool = json!({"type": "function", "function": {"name": "f", "parameters": {}}});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "tool_choice required",
            json!({"model": "m", "messages": [user], "tools": [tool], "tool_choice": "required"}),
            "tool_choice",
            "unsupported_parameter",
        ),
        (
            "file part",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Summarise this"},
                {"type": "file", "file": {"file_id": "file-abc123"}}
            ]}]}),
            "messages[0].content[1].type",
            "unsupported_parameter",
        ),
        (
            "file:// image",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}
            ]}]}),
            "messages[0].content[0].image_url.url",
            "invalid_value",
        ),
        (
            "local path video frame",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "video", "video": ["https://example.com/a.jpg", "/tmp/b.jpg"]}
            ]}]}),
            "messages[0].content[0].video[1]",
            "invalid_value",
        ),
        (
            "missing model",
            json!({"messages": [user]}),
            "model",
            "missing_required_parameter",
        ),
        (
            "empty model",
            json!({"model": "", "messages": [user]}),
            "model",
            "invalid_value",
        ),
        (
            "missing messages",
            json!({"model": "m"}),
            "messages",
            "missing_required_parameter",
        ),
        (
            "empty messages",
            json!({"model": "m", "messages": []}),
            "messages",
            "invalid_value",
        ),
        (
            "tool message without tool_call_id",
            json!({"model": "m", "messages": [user, {"role": "tool", "content": "25C"}]}),
            "messages[1].tool_call_id",
            "missing_required_parameter",
        ),
        (
            "assistant without content or tool_calls",
            json!({"model": "m", "messages": [user, {"role": "assistant"}]}),
            "messages[1].content",
            "invalid_value",
        ),
        (
            "unknown tool_choice string",
            json!({"model": "m", "messages": [user], "tool_choice": "any"}),
            "tool_choice",
            "invalid_value",
        ),
    ];
    for (what, body, param, code) in cases {
        let e = match translate(&body, Spec::text("m")) {
            Ok(t) => panic!("{what}: translated instead of failing: {}", wire(&t)),
            Err(e) => e,
        };
        assert_eq!(e.param.as_deref(), Some(param), "{what}: {e:?}");
        assert_eq!(e.code, code, "{what}: {e:?}");
        let pe = ProxyError::from(e);
        assert_eq!(pe.status().as_u16(), 400, "{what}");
        let b = pe.body();
        assert_eq!(b.error.kind, "invalid_request_error", "{what}");
        assert_eq!(b.error.param.as_deref(), Some(param), "{what}");
        assert_eq!(b.error.code.as_deref(), Some(code), "{what}");
    }
}

#[test]
fn tool_follow_up_keeps_ids_names_and_resends_tools() {
    let t = translate_str(
        &read("fixture-tool-result", "openai_request.json"),
        Spec::text("qwen-plus"),
    )
    .unwrap();
    let w = wire(&t);
    let msgs = w["input"]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 5);
    assert_eq!(msgs[2]["role"], "assistant");
    // `content: null` becomes "" on the text path, as DashScope documents it.
    assert_eq!(msgs[2]["content"], "");
    assert_eq!(msgs[2]["tool_calls"][1]["index"], 1);
    assert_eq!(
        msgs[2]["tool_calls"][1]["id"],
        "call_dc7f2f678f1944da9194cd"
    );
    for (m, id) in msgs[3..]
        .iter()
        .zip(["call_c2d8a3a24c4d4929b26ae2", "call_dc7f2f678f1944da9194cd"])
    {
        assert_eq!(m["role"], "tool");
        assert_eq!(m["tool_call_id"], id);
        assert_eq!(m["name"], "get_current_weather");
    }
    assert_eq!(w["parameters"]["tools"].as_array().unwrap().len(), 2);
}

#[test]
fn text_only_parts_stay_on_the_text_endpoint() {
    let t = translate_str(
        &read("text-parts-flattened", "openai_request.json"),
        Spec::text("qwen-plus"),
    )
    .unwrap();
    assert_eq!(t.endpoint, Endpoint::Text);
    assert_eq!(wire(&t)["input"]["messages"][1]["content"], "Hello\nworld");
}

// ---- non-stream responses ---------------------------------------------------------------------

struct RespCase {
    name: &'static str,
    fixture: &'static str,
    model: &'static str,
}

const RESPONSE_CASES: &[RespCase] = &[
    RespCase {
        name: "resp-text-nonstream",
        fixture: "text-nonstream.json",
        model: "qwen-plus",
    },
    RespCase {
        name: "resp-text-nonstream-resultformat-text",
        fixture: "text-nonstream-resultformat-text.json",
        model: "qwen-turbo",
    },
    RespCase {
        name: "resp-multimodal-nonstream",
        fixture: "multimodal-nonstream.json",
        model: "qwen3-vl-plus",
    },
    RespCase {
        name: "resp-tool-calls-nonstream",
        fixture: "tool-calls-nonstream.json",
        model: "qwen-plus",
    },
    RespCase {
        name: "resp-tool-result-answer",
        fixture: "tool-result-answer-nonstream.json",
        model: "qwen-plus",
    },
    RespCase {
        name: "resp-logprobs-nonstream",
        fixture: "logprobs-nonstream.json",
        model: "qwen-plus-2025-07-28",
    },
    RespCase {
        name: "resp-search-nonstream",
        fixture: "search-nonstream.json",
        model: "qwen-plus",
    },
];

fn translate_response(raw: &str, model: &str) -> Value {
    let resp: GenerationResponse = serde_json::from_str(raw).unwrap();
    let meta = Meta {
        id: completion_id(resp.request_id.as_deref(), "no-request-id"),
        created: CREATED,
        model: model.to_owned(),
    };
    serde_json::to_value(to_openai(resp, &meta)).unwrap()
}

#[test]
fn response_goldens() {
    let mut failures = Vec::new();
    for case in RESPONSE_CASES {
        let raw = read(case.name, "dashscope_response.json");
        if parse(&raw, case.name) != parse(&fixture(case.fixture), case.fixture) {
            failures.push(format!(
                "{}/dashscope_response.json is no longer a copy of tests/fixtures/dashscope/{}",
                case.name, case.fixture
            ));
        }
        let out = translate_response(&raw, case.model);
        failures.extend(check_json(case.name, "openai_response.json", &out));
    }
    report(failures);
}

#[test]
fn response_shapes_worth_naming() {
    // Tool calls: content is null (not ""), both calls with exact arguments.
    let out = translate_response(&fixture("tool-calls-nonstream.json"), "qwen-plus");
    let msg = &out["choices"][0]["message"];
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(msg["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(
        msg["tool_calls"][0]["function"]["arguments"],
        "{\"location\": \"Beijing\"}"
    );
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");

    // Multimodal: the content array is joined into one string; image_tokens kept.
    let out = translate_response(&fixture("multimodal-nonstream.json"), "qwen3-vl-plus");
    assert!(out["choices"][0]["message"]["content"].is_string());
    assert_eq!(out["usage"]["image_tokens"], 1249);

    // Cached tokens land where OpenAI puts them.
    let out = translate_response(&fixture("tool-result-answer-nonstream.json"), "qwen-plus");
    assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 256);

    // Search: search_info is a top-level extension, the plugin usage a usage extension.
    let out = translate_response(&fixture("search-nonstream.json"), "qwen-plus");
    assert_eq!(
        out["search_info"]["search_results"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(out["usage"]["plugins"]["search"]["count"], 1);

    // Logprobs: OpenAI's shape, a null logprob becomes OpenAI's -9999.0 stand-in.
    let body = json!({
        "output": {"choices": [{
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "x"},
            "logprobs": {"content": [{"token": "x", "bytes": [120], "logprob": null}]}
        }]},
        "request_id": "r1"
    });
    let out = translate_response(&body.to_string(), "m");
    assert_eq!(
        out["choices"][0]["logprobs"],
        json!({"content": [{"token": "x", "bytes": [120], "logprob": -9999.0, "top_logprobs": []}], "refusal": null})
    );
    assert_eq!(out["id"], "chatcmpl-r1");
}

// ---- streams ----------------------------------------------------------------------------------

/// Decode SSE bytes delivered in `chunks`, with the gateway's decoder.
fn decode_chunks(chunks: Vec<Bytes>) -> Vec<Frame> {
    let input = stream::iter(chunks.into_iter().map(Ok::<Bytes, Failure>));
    frames(input)
        .collect::<Vec<_>>()
        .now_or_never()
        .expect("an in-memory stream decodes without waiting")
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("decoding failed: {e:?}")))
        .collect()
}

fn decode(raw: &str) -> Vec<Frame> {
    decode_chunks(vec![Bytes::copy_from_slice(raw.as_bytes())])
}

struct StreamCase {
    name: &'static str,
    fixture: Option<&'static str>,
    model: &'static str,
    include_usage: bool,
    /// The upstream finishes every choice (else `finish()` must say `Incomplete`).
    complete: bool,
}

const STREAM_CASES: &[StreamCase] = &[
    StreamCase {
        name: "stream-text-incremental",
        fixture: Some("text-stream-incremental.sse"),
        model: "qwen-plus",
        include_usage: true,
        complete: true,
    },
    StreamCase {
        name: "stream-reasoning",
        fixture: Some("reasoning-stream.sse"),
        model: "qwen-plus",
        include_usage: true,
        complete: true,
    },
    StreamCase {
        name: "stream-multimodal",
        fixture: Some("multimodal-stream.sse"),
        model: "qvq-max",
        include_usage: true,
        complete: true,
    },
    StreamCase {
        name: "stream-tool-calls",
        fixture: Some("tool-calls-stream.sse"),
        model: "qwen-plus",
        include_usage: false,
        complete: true,
    },
    StreamCase {
        name: "stream-reasoning-tool-calls",
        fixture: Some("reasoning-tool-calls-stream.sse"),
        model: "qwen-plus",
        include_usage: true,
        complete: true,
    },
    StreamCase {
        name: "stream-repeated-final-frame",
        fixture: None,
        model: "qwen-plus",
        include_usage: true,
        complete: true,
    },
    StreamCase {
        name: "stream-no-finish-frame",
        fixture: None,
        model: "qwen-plus",
        include_usage: true,
        complete: false,
    },
    // `result_format: "text"` streams carry the cumulative `output.text` in every frame. The
    // translator forwards each frame's text as that chunk's content without diffing, so the
    // chunks repeat the text so far (the golden file pins this). The gateway owns
    // `result_format` (always "message") and `incremental_output` (always true when
    // streaming), so this shape only reaches the translator when a config override forces
    // `result_format = "text"`.
    StreamCase {
        name: "stream-text-resultformat-text",
        fixture: Some("text-stream-resultformat-text.sse"),
        model: "qwen-turbo",
        include_usage: true,
        complete: true,
    },
];

/// Run the stream translator over SSE bytes: rendered chunks (as JSON), and what `finish()`
/// said.
fn run_stream(raw: &str, model: &str, include_usage: bool) -> (Vec<Value>, Result<(), Incomplete>) {
    let frames = decode(raw);
    assert!(!frames.is_empty(), "no frames decoded");
    let mut parsed = Vec::new();
    for f in &frames {
        assert_eq!(f.event, "result", "unexpected event in {f:?}");
        parsed.push(serde_json::from_str::<GenerationResponse>(&f.data).unwrap());
    }
    let rid = parsed[0].request_id.clone();
    let meta = Meta {
        id: completion_id(rid.as_deref(), "no-request-id"),
        created: CREATED,
        model: model.to_owned(),
    };
    let mut tr = StreamTranslator::new(meta, include_usage);
    let mut out = Vec::new();
    for frame in parsed {
        if let Some(body) = tr.on_frame(frame) {
            out.push(parse(&tr.render(&body), "a rendered chunk"));
        }
    }
    let finished = match tr.finish() {
        Ok(Some(body)) => {
            out.push(parse(&tr.render(&body), "the usage chunk"));
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    (out, finished)
}

/// The framing rules every translated stream keeps.
fn check_framing(name: &str, chunks: &[Value], include_usage: bool, complete: bool) {
    let first = &chunks[0];
    let mut role_seen = BTreeMap::new();
    let mut finished = BTreeMap::new();
    for (i, c) in chunks.iter().enumerate() {
        for key in ["id", "created", "model"] {
            assert_eq!(c[key], first[key], "{name}: chunk {i} changes {key}");
        }
        assert_eq!(c["object"], "chat.completion.chunk", "{name}");
        let choices = c["choices"].as_array().unwrap();
        let is_usage_chunk = c.get("usage").is_some();
        if is_usage_chunk {
            assert!(choices.is_empty(), "{name}: usage chunk with choices");
            assert!(include_usage, "{name}: usage chunk nobody asked for");
            assert_eq!(i, chunks.len() - 1, "{name}: usage chunk is not last");
        }
        for ch in choices {
            let index = ch["index"].as_u64().unwrap();
            let delta = ch["delta"].as_object().unwrap();
            let finish = !ch["finish_reason"].is_null();
            assert!(
                !delta.is_empty() || finish,
                "{name}: chunk {i} has an empty delta and no finish_reason"
            );
            if delta.contains_key("role") {
                assert!(
                    role_seen.insert(index, i).is_none(),
                    "{name}: role sent twice for choice {index}"
                );
            } else {
                assert!(
                    role_seen.contains_key(&index),
                    "{name}: choice {index} content before its role"
                );
            }
            assert!(
                !finished.contains_key(&index),
                "{name}: chunk {i} after choice {index} finished"
            );
            if finish {
                finished.insert(index, i);
            }
        }
    }
    if complete {
        assert_eq!(
            finished.len(),
            role_seen.len(),
            "{name}: every choice finishes once"
        );
        let last = chunks.last().unwrap();
        assert_eq!(
            last.get("usage").is_some(),
            include_usage,
            "{name}: usage chunk iff asked for"
        );
    } else {
        assert!(finished.is_empty(), "{name}");
    }
}

#[test]
fn stream_goldens() {
    let mut failures = Vec::new();
    for case in STREAM_CASES {
        let raw = read(case.name, "dashscope_stream.sse");
        if let Some(f) = case.fixture
            && raw != fixture(f)
        {
            failures.push(format!(
                "{}/dashscope_stream.sse is no longer a byte copy of tests/fixtures/dashscope/{f}",
                case.name
            ));
        }
        let (chunks, finished) = run_stream(&raw, case.model, case.include_usage);
        check_framing(case.name, &chunks, case.include_usage, case.complete);
        if finished.is_ok() != case.complete {
            failures.push(format!("{}: finish() returned {finished:?}", case.name));
        }
        failures.extend(check_jsonl(case.name, &chunks));
    }
    report(failures);
}

fn concat(chunks: &[Value], field: &str) -> String {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().unwrap().iter())
        .filter_map(|ch| ch["delta"][field].as_str())
        .collect()
}

fn upstream_text(raw: &str, field: &str) -> String {
    decode(raw)
        .iter()
        .map(|f| serde_json::from_str::<Value>(&f.data).unwrap())
        .filter_map(|v| {
            v["output"]["choices"][0]["message"][field]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn stream_content_is_the_upstream_concatenation() {
    let raw = fixture("text-stream-incremental.sse");
    let (chunks, fin) = run_stream(&raw, "qwen-plus", true);
    assert_eq!(fin, Ok(()));
    assert_eq!(
        concat(&chunks, "content"),
        "I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?"
    );
    assert_eq!(concat(&chunks, "content"), upstream_text(&raw, "content"));
    let finishes: Vec<&Value> = chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().unwrap().iter())
        .map(|ch| &ch["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("stop")]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 40);

    // Reasoning first, then the answer.
    let raw = fixture("reasoning-stream.sse");
    let (chunks, _) = run_stream(&raw, "qwen-plus", false);
    assert_eq!(
        concat(&chunks, "reasoning_content"),
        "Okay, the user asks who I am. I should introduce myself briefly."
    );
    assert_eq!(
        concat(&chunks, "content"),
        "Hello! I am Qwen, a large language model by Alibaba Cloud."
    );
    let last_reasoning = chunks
        .iter()
        .rposition(|c| c["choices"][0]["delta"].get("reasoning_content").is_some())
        .unwrap();
    let first_content = chunks
        .iter()
        .position(|c| c["choices"][0]["delta"].get("content").is_some())
        .unwrap();
    assert!(last_reasoning < first_content);
}

#[test]
fn streamed_tool_call_has_one_header_and_exact_arguments() {
    for (f, id, args) in [
        (
            "tool-calls-stream.sse",
            "call_8f08d2b0fc0c4d8fab7123",
            "{\"location\": \"Hangzhou\"}",
        ),
        (
            "reasoning-tool-calls-stream.sse",
            "call_ecc41296dccc47baa01567",
            "{\"location\": \"Hangzhou\"}",
        ),
    ] {
        let (chunks, fin) = run_stream(&fixture(f), "qwen-plus", false);
        assert_eq!(fin, Ok(()), "{f}");
        let deltas: Vec<&Value> = chunks
            .iter()
            .flat_map(|c| c["choices"].as_array().unwrap().iter())
            .filter_map(|ch| ch["delta"]["tool_calls"].as_array())
            .flatten()
            .collect();
        assert!(deltas.len() >= 2, "{f}");
        let with = |k: &str| deltas.iter().filter(|d| d.get(k).is_some()).count();
        assert_eq!(with("id"), 1, "{f}: id once");
        assert_eq!(with("type"), 1, "{f}: type once");
        assert_eq!(
            deltas
                .iter()
                .filter(|d| d["function"].get("name").is_some())
                .count(),
            1,
            "{f}: name once"
        );
        assert_eq!(deltas[0]["id"], id, "{f}");
        assert_eq!(deltas[0]["function"]["name"], "get_current_weather", "{f}");
        assert!(deltas.iter().all(|d| d["index"] == 0), "{f}");
        let joined: String = deltas
            .iter()
            .filter_map(|d| d["function"]["arguments"].as_str())
            .collect();
        assert_eq!(joined, args, "{f}");
        let last = &chunks.last().unwrap()["choices"][0];
        assert_eq!(last["finish_reason"], "tool_calls", "{f}");
    }
}

#[test]
fn a_stream_without_a_finish_frame_is_incomplete() {
    let raw = read("stream-no-finish-frame", "dashscope_stream.sse");
    let (chunks, fin) = run_stream(&raw, "qwen-plus", true);
    assert_eq!(fin, Err(Incomplete));
    assert_eq!(concat(&chunks, "content"), "Once upon a time");
    // Also when the client did not ask for usage.
    let (_, fin) = run_stream(&raw, "qwen-plus", false);
    assert_eq!(fin, Err(Incomplete));
    // Two choices started, only choice 0 finished: incomplete too.
    let frame = |index: u32, content: &str, finish: &str| {
        format!(
            "event:result\ndata:{}\n\n",
            json!({"output": {"choices": [{"index": index, "message": {"role": "assistant", "content": content}, "finish_reason": finish}]}, "request_id": "r2"})
        )
    };
    let raw = [
        frame(0, "a", "null"),
        frame(1, "b", "null"),
        frame(0, "", "stop"),
    ]
    .concat();
    let (chunks, fin) = run_stream(&raw, "qwen-plus", false);
    assert_eq!(chunks.len(), 3);
    assert_eq!(fin, Err(Incomplete));
    let raw = raw + &frame(1, "", "length");
    let (_, fin) = run_stream(&raw, "qwen-plus", false);
    assert_eq!(fin, Ok(()));
}

#[test]
fn resultformat_text_stream_is_forwarded_cumulatively() {
    let (chunks, fin) = run_stream(
        &fixture("text-stream-resultformat-text.sse"),
        "qwen-turbo",
        false,
    );
    assert_eq!(fin, Ok(()));
    let contents: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        contents,
        vec![
            "I am",
            "I am Qwen,",
            "I am Qwen, built by",
            "I am Qwen, built by Alibaba Cloud."
        ]
    );
}

// ---- upstream errors --------------------------------------------------------------------------

/// The error payload of a fixture: a JSON file, or the `event:error` frame of an SSE file.
fn error_payload(name: &str) -> String {
    let raw = fixture(name);
    if name.ends_with(".sse") {
        decode(&raw)
            .into_iter()
            .find(Frame::is_error_event)
            .unwrap_or_else(|| panic!("{name} has no event:error frame"))
            .data
            .to_string()
    } else {
        raw
    }
}

#[test]
fn every_error_fixture_classifies() {
    struct Want {
        fixture: &'static str,
        /// HTTP status the fake serves it with (`None`: inside a 200 stream).
        status: Option<u16>,
        out: (u16, &'static str, &'static str),
        retryable: bool,
        wrong_endpoint: bool,
        needs_stream: bool,
    }
    let want = |fixture, status, out| Want {
        fixture,
        status,
        out,
        retryable: false,
        wrong_endpoint: false,
        needs_stream: false,
    };
    let cases = [
        want(
            "error-invalid-key.json",
            Some(401),
            (401, "invalid_request_error", "invalid_api_key"),
        ),
        Want {
            wrong_endpoint: true,
            ..want(
                "error-url-mismatch.json",
                Some(400),
                (400, "invalid_request_error", "InvalidParameter"),
            )
        },
        want(
            "error-model-not-exist.json",
            Some(400),
            (404, "invalid_request_error", "model_not_found"),
        ),
        want(
            "error-model-not-exist.json",
            Some(404),
            (404, "invalid_request_error", "model_not_found"),
        ),
        Want {
            retryable: true,
            ..want(
                "error-throttling.json",
                Some(429),
                (429, "rate_limit_exceeded", "rate_limit_exceeded"),
            )
        },
        Want {
            needs_stream: true,
            ..want(
                "error-thinking-nonstream.json",
                Some(400),
                (400, "invalid_request_error", "InvalidParameter"),
            )
        },
        want(
            "error-data-inspection.json",
            Some(400),
            (400, "invalid_request_error", "content_filter"),
        ),
        want(
            "error-arrearage.json",
            Some(400),
            (400, "invalid_request_error", "Arrearage"),
        ),
        want(
            "error-in-stream.sse",
            None,
            (400, "invalid_request_error", "content_filter"),
        ),
        Want {
            wrong_endpoint: true,
            ..want(
                "error-in-stream-first-frame.sse",
                None,
                (400, "invalid_request_error", "InvalidParameter"),
            )
        },
    ];
    for c in cases {
        let payload = error_payload(c.fixture);
        let m = classify(c.status, &ErrorBody::parse(payload.as_bytes()));
        let what = format!("{} (status {:?})", c.fixture, c.status);
        assert_eq!((m.status, m.kind, m.code.as_str()), c.out, "{what}: {m:?}");
        assert_eq!(m.retryable, c.retryable, "{what}: retryable");
        assert_eq!(m.wrong_endpoint, c.wrong_endpoint, "{what}: wrong_endpoint");
        assert_eq!(m.needs_stream, c.needs_stream, "{what}: needs_stream");
        // DashScope's words, then its code and request id.
        let raw = parse(&payload, c.fixture);
        let expected_message = format!(
            "{} (DashScope code {}, request_id {})",
            raw["message"].as_str().unwrap(),
            raw["code"].as_str().unwrap(),
            raw["request_id"].as_str().unwrap()
        );
        assert_eq!(m.message, expected_message, "{what}");
        // The HTTP error the client gets has the same status, type and code.
        let e = ProxyError::Upstream {
            mapped: Box::new(m.clone()),
            retry_after: None,
        };
        assert_eq!(e.status().as_u16(), c.out.0, "{what}");
        let b = e.body();
        assert_eq!(b.error.kind, c.out.1, "{what}");
        assert_eq!(b.error.code.as_deref(), Some(c.out.2), "{what}");
        assert_eq!(b.error.param, None, "{what}");
    }
}

#[test]
fn server_side_upstream_errors() {
    let internal = ErrorBody::parse(
        br#"{"code":"InternalError","message":"An internal error has occured, please try again later or contact service support.","request_id":"e5d4c3b2-a1f0-9e8d-7c6b-5a4f3e2d1c0b"}"#,
    );
    let m = classify(Some(500), &internal);
    assert_eq!(
        (m.status, m.kind, m.code.as_str()),
        (502, "server_error", "InternalError")
    );
    assert!(m.retryable);
    assert_eq!(
        m.message,
        "upstream error: An internal error has occured, please try again later or contact service support. (DashScope code InternalError, request_id e5d4c3b2-a1f0-9e8d-7c6b-5a4f3e2d1c0b)"
    );

    let unavailable =
        ErrorBody::parse(br#"{"code":"ModelUnavailable","message":"busy","request_id":"r"}"#);
    let m = classify(Some(500), &unavailable);
    assert_eq!((m.status, m.kind), (503, "server_error"));

    // Not JSON at all: the text is the message, the code is generic.
    let html = ErrorBody::parse(b"<html><body>502 Bad Gateway</body></html>");
    let m = classify(Some(502), &html);
    assert_eq!(
        (m.status, m.kind, m.code.as_str()),
        (502, "server_error", "upstream_error")
    );
    assert_eq!(
        m.message,
        "upstream error: <html><body>502 Bad Gateway</body></html>"
    );

    // An error inside a 200 with only a code: the code decides the status.
    let m = classify(
        None,
        &ErrorBody::parse(br#"{"code":"Throttling.AllocationQuota","message":"quota"}"#),
    );
    assert_eq!(
        (m.status, m.kind, m.code.as_str()),
        (429, "rate_limit_exceeded", "rate_limit_exceeded")
    );
}

// ---- properties -------------------------------------------------------------------------------

const SSE_FIXTURES: &[&str] = &[
    "text-stream-incremental.sse",
    "text-stream-cumulative.sse",
    "text-stream-resultformat-text.sse",
    "reasoning-stream.sse",
    "reasoning-tool-calls-stream.sse",
    "multimodal-stream.sse",
    "tool-calls-stream.sse",
    "error-in-stream.sse",
    "error-in-stream-first-frame.sse",
];

/// Each SSE fixture's bytes and its frames decoded in one piece.
static DECODED: LazyLock<Vec<(&'static str, Bytes, Vec<Frame>)>> = LazyLock::new(|| {
    SSE_FIXTURES
        .iter()
        .map(|name| {
            let raw = Bytes::from(fixture(name));
            let frames = decode_chunks(vec![raw.clone()]);
            (*name, raw, frames)
        })
        .collect()
});

fn split_at(raw: &Bytes, cuts: &[usize]) -> Vec<Bytes> {
    let mut cuts: Vec<usize> = cuts.to_vec();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([raw.len()]) {
        out.push(raw.slice(start..c));
        start = c;
    }
    out
}

#[test]
fn decoded_fixtures_have_the_expected_frame_counts() {
    let counts: Vec<(&str, usize, usize)> = DECODED
        .iter()
        .map(|(n, _, f)| (*n, f.len(), f.iter().filter(|f| f.is_error_event()).count()))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("text-stream-incremental.sse", 8, 0),
            ("text-stream-cumulative.sse", 7, 0),
            ("text-stream-resultformat-text.sse", 4, 0),
            ("reasoning-stream.sse", 10, 0),
            ("reasoning-tool-calls-stream.sse", 6, 0),
            ("multimodal-stream.sse", 8, 0),
            ("tool-calls-stream.sse", 3, 0),
            ("error-in-stream.sse", 3, 1),
            ("error-in-stream-first-frame.sse", 1, 1),
        ]
    );
}

#[test]
fn one_byte_at_a_time_decodes_the_same_frames() {
    for (name, raw, whole) in DECODED.iter() {
        let cuts: Vec<usize> = (1..raw.len()).collect();
        assert_eq!(&decode_chunks(split_at(raw, &cuts)), whole, "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any split of a recorded stream into byte chunks decodes to the same frames.
    #[test]
    fn sse_split_anywhere(
        which in 0..SSE_FIXTURES.len(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let (name, raw, whole) = &DECODED[which];
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(raw.len() + 1)).collect();
        let split = decode_chunks(split_at(raw, &cuts));
        prop_assert_eq!(&split, whole, "{} split at {:?}", name, cuts);
    }

    /// The stream translator never panics, keeps framing rules, and loses or duplicates no
    /// content: per choice, the concatenated `delta.content` is the concatenated upstream text
    /// of the frames up to the one that finished that choice; the same for each tool call's
    /// arguments.
    #[test]
    fn stream_translator_is_total_and_preserves_content(
        frames in prop::collection::vec(frame_strategy(), 0..12),
        include_usage in any::<bool>(),
    ) {
        let meta = Meta { id: "chatcmpl-prop".into(), created: CREATED, model: "m".into() };
        let mut tr = StreamTranslator::new(meta, include_usage);
        let mut model = Model::default();
        let mut chunks = Vec::new();
        for f in &frames {
            model.apply(f);
            let parsed: GenerationResponse = serde_json::from_str(&f.to_string()).unwrap();
            if let Some(body) = tr.on_frame(parsed) {
                chunks.push(parse(&tr.render(&body), "chunk"));
            }
        }
        let _ = tr.final_usage();
        if let Ok(Some(body)) = tr.finish() {
            chunks.push(parse(&tr.render(&body), "usage chunk"));
        }
        let mut content: BTreeMap<u64, String> = BTreeMap::new();
        let mut args: BTreeMap<(u64, u64), String> = BTreeMap::new();
        let mut roles: BTreeMap<u64, usize> = BTreeMap::new();
        let mut finishes: BTreeMap<u64, usize> = BTreeMap::new();
        for c in &chunks {
            prop_assert_eq!(&c["id"], "chatcmpl-prop");
            for ch in c["choices"].as_array().unwrap() {
                let i = ch["index"].as_u64().unwrap();
                if let Some(t) = ch["delta"]["content"].as_str() {
                    content.entry(i).or_default().push_str(t);
                }
                for d in ch["delta"]["tool_calls"].as_array().into_iter().flatten() {
                    if let Some(a) = d["function"]["arguments"].as_str() {
                        args.entry((i, d["index"].as_u64().unwrap())).or_default().push_str(a);
                    }
                }
                if ch["delta"].get("role").is_some() {
                    *roles.entry(i).or_default() += 1;
                }
                if !ch["finish_reason"].is_null() {
                    *finishes.entry(i).or_default() += 1;
                }
            }
        }
        content.retain(|_, s| !s.is_empty());
        args.retain(|_, s| !s.is_empty());
        prop_assert_eq!(content, model.content());
        prop_assert_eq!(args, model.args());
        prop_assert!(roles.values().all(|n| *n == 1), "role more than once: {:?}", roles);
        prop_assert!(finishes.values().all(|n| *n == 1), "finish more than once: {:?}", finishes);
    }
}

/// What the upstream said, choice by choice, up to each choice's finish frame.
#[derive(Default)]
struct Model {
    finished: BTreeMap<u64, bool>,
    content: BTreeMap<u64, String>,
    /// Per choice: tool-call keys in first-seen order, with their arguments.
    tools: BTreeMap<u64, Vec<(u64, String)>>,
}

impl Model {
    fn apply(&mut self, frame: &Value) {
        let output = &frame["output"];
        let choices: Vec<Value> = match output.get("choices") {
            Some(Value::Array(c)) => c.clone(),
            Some(_) => Vec::new(),
            None => match output.get("text") {
                Some(t) => vec![
                    json!({"index": 0, "message": {"content": t}, "finish_reason": output["finish_reason"]}),
                ],
                None => Vec::new(),
            },
        };
        for (pos, c) in choices.iter().enumerate() {
            let index = c["index"].as_u64().unwrap_or(pos as u64);
            if self.finished.get(&index).copied().unwrap_or(false) {
                continue;
            }
            let msg = &c["message"];
            let text = match &msg["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
                _ => String::new(),
            };
            self.content.entry(index).or_default().push_str(&text);
            let calls = self.tools.entry(index).or_default();
            for (k, call) in msg["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let key = call["index"].as_u64().unwrap_or(k as u64);
                let a = call["function"]["arguments"].as_str().unwrap_or("");
                match calls.iter_mut().find(|(kk, _)| *kk == key) {
                    Some((_, s)) => s.push_str(a),
                    None => calls.push((key, a.to_owned())),
                }
            }
            if matches!(c["finish_reason"].as_str(), Some(f) if f != "null" && !f.is_empty()) {
                self.finished.insert(index, true);
            }
        }
    }

    fn content(&self) -> BTreeMap<u64, String> {
        self.content
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(k, s)| (*k, s.clone()))
            .collect()
    }

    fn args(&self) -> BTreeMap<(u64, u64), String> {
        let mut out = BTreeMap::new();
        for (choice, calls) in &self.tools {
            for (pos, (_, a)) in calls.iter().enumerate() {
                if !a.is_empty() {
                    out.insert((*choice, pos as u64), a.clone());
                }
            }
        }
        out
    }
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z ]{1,4}", "\\PC{1,3}"]
}

fn content_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        text_strategy().prop_map(Value::String),
        prop::collection::vec(text_strategy(), 0..3)
            .prop_map(|v| Value::Array(v.into_iter().map(|t| json!({"text": t})).collect())),
    ]
}

fn finish_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => Just(json!("null")),
        2 => Just(Value::Null),
        1 => Just(json!("")),
        1 => Just(json!("stop")),
        1 => Just(json!("length")),
        1 => Just(json!("tool_calls")),
        1 => "[a-z_]{1,8}".prop_map(Value::String),
    ]
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    prop_oneof![Just(None), s.prop_map(Some)]
}

fn tool_call_strategy() -> impl Strategy<Value = Value> {
    (
        opt(0u64..3),
        opt(prop_oneof![Just(String::new()), "call_[a-z0-9]{1,4}"]),
        opt(prop_oneof![Just(String::new()), "get_[a-z]{1,3}"]),
        opt(text_strategy()),
    )
        .prop_map(|(index, id, name, arguments)| {
            let mut f = Map::new();
            if let Some(n) = name {
                f.insert("name".into(), json!(n));
            }
            if let Some(a) = arguments {
                f.insert("arguments".into(), json!(a));
            }
            let mut c = Map::new();
            if let Some(i) = index {
                c.insert("index".into(), json!(i));
            }
            if let Some(i) = id {
                c.insert("id".into(), json!(i));
            }
            c.insert("type".into(), json!("function"));
            c.insert("function".into(), Value::Object(f));
            Value::Object(c)
        })
}

fn choice_strategy() -> impl Strategy<Value = Value> {
    (
        opt(0u64..4),
        content_strategy(),
        opt(text_strategy()),
        opt(prop::collection::vec(tool_call_strategy(), 0..3)),
        finish_strategy(),
        prop_oneof![
            3 => Just(Value::Null),
            1 => Just(json!({"content": [{"token": "a", "bytes": [97], "logprob": null}]})),
        ],
    )
        .prop_map(|(index, content, reasoning, tools, finish, logprobs)| {
            let mut msg = Map::new();
            msg.insert("role".into(), json!("assistant"));
            msg.insert("content".into(), content);
            if let Some(r) = reasoning {
                msg.insert("reasoning_content".into(), json!(r));
            }
            if let Some(t) = tools {
                msg.insert("tool_calls".into(), Value::Array(t));
            }
            let mut c = Map::new();
            if let Some(i) = index {
                c.insert("index".into(), json!(i));
            }
            c.insert("message".into(), Value::Object(msg));
            c.insert("finish_reason".into(), finish);
            if !logprobs.is_null() {
                c.insert("logprobs".into(), logprobs);
            }
            Value::Object(c)
        })
}

fn frame_strategy() -> impl Strategy<Value = Value> {
    let output = prop_oneof![
        6 => prop::collection::vec(choice_strategy(), 0..3).prop_map(|c| json!({"choices": c})),
        1 => (text_strategy(), finish_strategy()).prop_map(|(t, f)| json!({"text": t, "finish_reason": f})),
        1 => Just(json!({})),
    ];
    (
        output,
        opt((0u64..100, 0u64..100, any::<bool>(), opt(0u64..50))),
        opt(Just(json!({"search_results": [{"index": 1}]}))),
        opt("[a-f0-9-]{1,8}"),
    )
        .prop_map(|(mut output, usage, search, rid)| {
            if let (Some(s), Some(o)) = (search, output.as_object_mut()) {
                o.insert("search_info".into(), s);
            }
            let mut f = Map::new();
            f.insert("output".into(), output);
            if let Some((input, out, total, reasoning)) = usage {
                let mut u = json!({"input_tokens": input, "output_tokens": out});
                if total {
                    u["total_tokens"] = json!(input + out);
                }
                if let Some(r) = reasoning {
                    u["output_tokens_details"] = json!({"reasoning_tokens": r});
                }
                f.insert("usage".into(), u);
            }
            if let Some(r) = rid {
                f.insert("request_id".into(), json!(r));
            }
            Value::Object(f)
        })
}
