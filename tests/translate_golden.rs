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
    Ctx, EffortBudgets, RequiredToolChoice, Translated, UnknownPolicy, UnsupportedPolicy,
    set_upstream_stream, to_dashscope,
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
    native_max_completion_tokens: bool,
    thinks_by_default: bool,
    required_tool_choice: RequiredToolChoice,
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
            native_max_completion_tokens: false,
            thinks_by_default: false,
            required_tool_choice: RequiredToolChoice::Emulate,
        }
    }
    const fn text(model: &'static str) -> Spec {
        Spec::on(model, Endpoint::Text)
    }
    const fn preserving(mut self) -> Spec {
        self.preserve_thinking = true;
        self
    }
    /// A qwen3.5+ style model: thinks by default, takes `max_completion_tokens`.
    const fn thinker(model: &'static str) -> Spec {
        let mut s = Spec::on(model, Endpoint::Multimodal);
        s.thinks_by_default = true;
        s.native_max_completion_tokens = true;
        s
    }
    const fn thinking_old_cap(mut self) -> Spec {
        self.native_max_completion_tokens = false;
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
        native_max_completion_tokens: spec.native_max_completion_tokens,
        thinks_by_default: spec.thinks_by_default,
        required_tool_choice: spec.required_tool_choice,
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
    /// The recorded request relied on DashScope's default `parallel_tool_calls` (false); the
    /// gateway sends OpenAI's default (true) instead, its only difference from the recording.
    adds_parallel_tool_calls: bool,
}

const fn req(name: &'static str, spec: Spec, endpoint: Endpoint) -> ReqCase {
    ReqCase {
        name,
        spec,
        endpoint,
        stream: false,
        fixture: None,
        adds_parallel_tool_calls: false,
    }
}

const fn plus_parallel_tool_calls(mut c: ReqCase) -> ReqCase {
    c.adds_parallel_tool_calls = true;
    c
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
    plus_parallel_tool_calls(same_as(
        streamed(req("fixture-tools-stream", Spec::text("qwen-plus"), TEXT)),
        "request-tools-stream.json",
    )),
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
    plus_parallel_tool_calls(same_as(
        streamed(req(
            "fixture-reasoning-tools-stream",
            Spec::text("qwen-plus"),
            TEXT,
        )),
        "request-reasoning-tools-stream.json",
    )),
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
    // tool_choice "required": one tool → that tool by name; several → auto + warning; a
    // thinking model → auto + warning.
    req(
        "tool-choice-required-one-tool",
        Spec::text("qwen-plus"),
        TEXT,
    ),
    req(
        "tool-choice-required-several-tools",
        Spec::text("qwen-plus"),
        TEXT,
    ),
    streamed(req(
        "tool-choice-required-thinking",
        Spec::thinker("qwen3.6-plus"),
        MM,
    )),
    // max_completion_tokens: native where the model takes it, else max_tokens + warning.
    streamed(req(
        "max-completion-tokens-native",
        Spec::thinker("qwen3.6-plus"),
        MM,
    )),
    streamed(req(
        "max-completion-tokens-as-max-tokens",
        Spec::thinker("qwen3.6-plus").thinking_old_cap(),
        MM,
    )),
    // Tools without parallel_tool_calls: OpenAI's default (true) is sent.
    req("parallel-tool-calls-default", Spec::text("qwen-plus"), TEXT),
    // JSON mode on a model that thinks by default: thinking off + warning.
    req(
        "json-mode-thinking-model",
        Spec::thinker("qwen3.6-plus"),
        MM,
    ),
    // 120 images with `detail`: one aggregated warning; oss:// media flagged for the header.
    req(
        "detail-warnings-aggregated",
        Spec::text("qwen3-vl-plus"),
        MM,
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
            let mut recorded = parse(&fixture(name), name);
            if case.adds_parallel_tool_calls {
                recorded["parameters"]["parallel_tool_calls"] = json!(true);
            }
            if golden != recorded {
                failures.push(format!(
                    "{}/dashscope_request.json is no longer a copy of tests/fixtures/dashscope/{name}",
                    case.name
                ));
            }
        }
        let expected_notes: Vec<String> = read_opt(case.name, "notes.json")
            .map(|s| serde_json::from_str(&s).unwrap())
            .unwrap_or_default();
        if t.notes.list() != expected_notes {
            failures.push(format!(
                "{}: notes {:?}, expected {expected_notes:?}",
                case.name,
                t.notes.list()
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
    assert_eq!(t.notes.list().len(), 2);
    assert_eq!(
        t.notes.header_value().unwrap(),
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
    assert_eq!(t.notes.list(), vec!["unknown field x_future_param dropped"]);

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
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "tool_choice required without tools",
            json!({"model": "m", "messages": [user], "tool_choice": "required"}),
            "tool_choice",
            "invalid_value",
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
fn tool_choice_required_is_refused_only_when_configured_to() {
    let body = parse(
        &read("tool-choice-required-one-tool", "openai_request.json"),
        "request",
    );
    let mut spec = Spec::text("qwen-plus");
    spec.required_tool_choice = RequiredToolChoice::Reject;
    let e = translate(&body, spec).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("tool_choice"));
    assert_eq!(e.code, "unsupported_parameter");
    // The default emulates: the one tool by name, no warning.
    let t = translate(&body, Spec::text("qwen-plus")).unwrap();
    assert_eq!(
        wire(&t)["parameters"]["tool_choice"],
        json!({"type": "function", "function": {"name": "final_result"}})
    );
    assert!(t.notes.is_empty());
    // A client that turns thinking off on a thinking model gets the forced tool.
    let mut b = body.clone();
    b["enable_thinking"] = json!(false);
    let t = translate(&b, Spec::thinker("qwen3.6-plus")).unwrap();
    assert_eq!(
        wire(&t)["parameters"]["tool_choice"]["function"]["name"],
        "final_result"
    );
}

#[test]
fn oss_media_is_flagged_for_the_resolve_header() {
    let t = translate_str(
        &read("detail-warnings-aggregated", "openai_request.json"),
        Spec::text("qwen3-vl-plus"),
    )
    .unwrap();
    assert!(t.oss_resources);
    let h = t.notes.header_value().unwrap();
    assert!(h.len() <= 1024, "{h}");
    let t = translate_str(
        &read("multimodal-mixed", "openai_request.json"),
        Spec::text("qwen3-vl-plus"),
    )
    .unwrap();
    assert!(!t.oss_resources);
}

#[test]
fn max_completion_tokens_without_thinking_needs_no_warning() {
    // A model that does not think by default: max_tokens caps everything it generates.
    let body = json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 50});
    let t = translate(&body, Spec::text("qwen-plus")).unwrap();
    assert_eq!(wire(&t)["parameters"]["max_tokens"], json!(50));
    assert!(t.notes.is_empty());
    // Thinking asked for explicitly: the warning.
    let mut b = body.clone();
    b["enable_thinking"] = json!(true);
    let t = translate(&b, Spec::text("qwen-plus")).unwrap();
    assert_eq!(
        t.notes.list(),
        vec![
            "max_completion_tokens sent as max_tokens: this model does not cap its thinking, only the answer"
        ]
    );
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
    /// The recorded fixture this case copies; `None` for a hand-made DashScope-shaped body.
    fixture: Option<&'static str>,
    model: &'static str,
}

const RESPONSE_CASES: &[RespCase] = &[
    RespCase {
        name: "resp-text-nonstream",
        fixture: Some("text-nonstream.json"),
        model: "qwen-plus",
    },
    RespCase {
        name: "resp-text-nonstream-resultformat-text",
        fixture: Some("text-nonstream-resultformat-text.json"),
        model: "qwen-turbo",
    },
    RespCase {
        name: "resp-multimodal-nonstream",
        fixture: Some("multimodal-nonstream.json"),
        model: "qwen3-vl-plus",
    },
    RespCase {
        name: "resp-tool-calls-nonstream",
        fixture: Some("tool-calls-nonstream.json"),
        model: "qwen-plus",
    },
    RespCase {
        name: "resp-tool-result-answer",
        fixture: Some("tool-result-answer-nonstream.json"),
        model: "qwen-plus",
    },
    RespCase {
        name: "resp-logprobs-nonstream",
        fixture: Some("logprobs-nonstream.json"),
        model: "qwen-plus-2025-07-28",
    },
    RespCase {
        name: "resp-search-nonstream",
        fixture: Some("search-nonstream.json"),
        model: "qwen-plus",
    },
    // Image output (qwen-image): `message.images`, not an empty 200.
    RespCase {
        name: "resp-image-output-nonstream",
        fixture: None,
        model: "qwen-image-max",
    },
    // `output.model_name` is the upstream's internal name: never forwarded (the client's
    // alias is echoed).
    RespCase {
        name: "resp-model-name-hidden",
        fixture: None,
        model: "translator",
    },
    // Finish reasons OpenAI does not define become ones it does.
    RespCase {
        name: "resp-unknown-finish-reason",
        fixture: None,
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
        if let Some(f) = case.fixture
            && parse(&raw, case.name) != parse(&fixture(f), f)
        {
            failures.push(format!(
                "{}/dashscope_response.json is no longer a copy of tests/fixtures/dashscope/{f}",
                case.name
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
    // `result_format: "text"` streams carry the cumulative `output.text` in every frame; the
    // translator detects that and forwards only each frame's new suffix.
    StreamCase {
        name: "stream-text-resultformat-text",
        fixture: Some("text-stream-resultformat-text.sse"),
        model: "qwen-turbo",
        include_usage: true,
        complete: true,
    },
    // qwen-mt streams the whole text so far in every frame (and repeats it on the finish
    // frame); `output.model_name` is not forwarded.
    StreamCase {
        name: "stream-cumulative-qwen-mt",
        fixture: None,
        model: "translator",
        include_usage: true,
        complete: true,
    },
    // A frame with only `tool_info` rides on an empty delta (never `choices: []`); the
    // repeated `tool_info` is forwarded once.
    StreamCase {
        name: "stream-code-interpreter-tool-info",
        fixture: None,
        model: "qwen3-max",
        include_usage: true,
        complete: true,
    },
    // `search_info` re-sent with empty lists does not erase the results forwarded first.
    StreamCase {
        name: "stream-search-info-repeat",
        fixture: None,
        model: "qwen-plus",
        include_usage: false,
        complete: true,
    },
    StreamCase {
        name: "stream-image-output",
        fixture: None,
        model: "qwen-image-max",
        include_usage: false,
        complete: true,
    },
    // Every speech piece is forwarded on `delta.audio`, also one equal to the previous.
    StreamCase {
        name: "stream-omni-audio",
        fixture: None,
        model: "qwen3-omni-flash",
        include_usage: false,
        complete: true,
    },
    // The first tool-call delta waits for the name, then carries the upstream's id, the
    // name and the arguments held back.
    StreamCase {
        name: "stream-tool-call-name-late",
        fixture: None,
        model: "qwen-plus",
        include_usage: false,
        complete: true,
    },
    StreamCase {
        name: "stream-unknown-finish-reason",
        fixture: None,
        model: "qwen-plus",
        include_usage: false,
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
            let carries_extension = c.as_object().unwrap().keys().any(|k| {
                !["id", "object", "created", "model", "choices", "usage"].contains(&k.as_str())
            });
            assert!(
                !delta.is_empty() || finish || carries_extension,
                "{name}: chunk {i} has an empty delta, no finish_reason and no extension"
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
fn cumulative_frames_forward_only_the_new_suffix() {
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
        vec!["I am", " Qwen,", " built by", " Alibaba Cloud."]
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
            (400, "insufficient_quota", "insufficient_quota"),
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
        let mut frames = frames;
        for (k, f) in frames.iter_mut().enumerate() {
            uniquify(f, k);
        }
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A cumulative stream (every frame the whole text so far, qwen-mt style) yields the
    /// same deltas as the incremental one it stands for, answer and reasoning alike.
    #[test]
    fn cumulative_streams_yield_the_incremental_text(
        pieces in prop::collection::vec("\\PC{1,4}", 1..10),
        reasoning in prop::collection::vec("[a-z ]{1,4}", 0..4),
    ) {
        let meta = Meta { id: "chatcmpl-cum".into(), created: CREATED, model: "m".into() };
        let mut tr = StreamTranslator::new(meta, false);
        let mut text = String::new();
        let mut think = String::new();
        let mut out = String::new();
        let mut out_think = String::new();
        let frames = reasoning.iter().map(|r| (r.as_str(), "")).chain(pieces.iter().map(|p| ("", p.as_str())));
        let n = reasoning.len() + pieces.len();
        for (k, (r, p)) in frames.enumerate() {
            think.push_str(r);
            text.push_str(p);
            let finish = if k + 1 == n { "stop" } else { "null" };
            let f = json!({"output": {"choices": [{"finish_reason": finish, "message": {
                "role": "assistant", "content": text, "reasoning_content": think}}]}});
            if let Some(body) = tr.on_frame(serde_json::from_value(f).unwrap()) {
                let c = parse(&tr.render(&body), "chunk");
                out.push_str(c["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
                out_think.push_str(c["choices"][0]["delta"]["reasoning_content"].as_str().unwrap_or(""));
            }
        }
        // The first piece alone cannot tell the modes apart; from the second on, any piece
        // that extends the first is read as cumulative. Pieces that repeat the text so far
        // exactly (a one-piece stream) are the same either way.
        prop_assert_eq!(out, pieces.concat());
        prop_assert_eq!(out_think, reasoning.concat());
        prop_assert!(tr.finish().is_ok());
    }
}

/// Make every non-empty piece of frame `k` unique ("…\u{1}" → "…\u{1}k\u{1}"), so no
/// two pieces are equal and none extends another: the stream is unambiguously incremental.
fn uniquify(frame: &mut Value, k: usize) {
    fn mark(v: &mut Value, k: usize) {
        if let Value::String(s) = v
            && s.ends_with(END)
        {
            s.push_str(&format!("{k}{END}"));
        }
    }
    let output = &mut frame["output"];
    if output.get("text").is_some() {
        mark(&mut output["text"], k);
    }
    let choices = output.get_mut("choices").and_then(Value::as_array_mut);
    for c in choices.into_iter().flatten() {
        let msg = &mut c["message"];
        match &mut msg["content"] {
            Value::Array(parts) => {
                if let Some(last) = parts.last_mut() {
                    mark(&mut last["text"], k);
                }
            }
            other => mark(other, k),
        }
        if msg.get("reasoning_content").is_some() {
            mark(&mut msg["reasoning_content"], k);
        }
    }
}

/// What the upstream said, choice by choice, up to each choice's finish frame.
#[derive(Default)]
struct Model {
    finished: BTreeMap<u64, bool>,
    content: BTreeMap<u64, String>,
    /// Per choice: tool-call keys in first-seen order, with their arguments and whether a
    /// name came (a call is announced once named, or when its choice finishes).
    tools: BTreeMap<u64, Vec<(u64, String, bool)>>,
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
                let named = call["function"]["name"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty());
                match calls.iter_mut().find(|(kk, _, _)| *kk == key) {
                    Some((_, s, n)) => {
                        s.push_str(a);
                        *n |= named;
                    }
                    None => calls.push((key, a.to_owned(), named)),
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
            let finished = self.finished.get(choice).copied().unwrap_or(false);
            for (pos, (_, a, named)) in calls.iter().enumerate() {
                if !a.is_empty() && (*named || finished) {
                    out.insert((*choice, pos as u64), a.clone());
                }
            }
        }
        out
    }
}

/// Ends every non-empty piece, and appears nowhere else: no piece can extend another, so
/// these streams are incremental (cumulative ones have their own property).
const END: &str = "\u{1}";

fn raw_text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z ]{1,4}", "\\PC{1,3}"]
}

fn text_strategy() -> impl Strategy<Value = String> {
    raw_text_strategy().prop_map(|s| if s.is_empty() { s } else { s + END })
}

fn content_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        text_strategy().prop_map(Value::String),
        prop::collection::vec(raw_text_strategy(), 0..3).prop_map(|v| {
            let any = v.iter().any(|t| !t.is_empty());
            let mut parts: Vec<Value> = v.into_iter().map(|t| json!({"text": t})).collect();
            if any {
                parts.push(json!({"text": END}));
            }
            Value::Array(parts)
        }),
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

// ---- moderation, speech and images through the aggregator -------------------------------------

/// The frames of a golden stream, parsed.
fn golden_frames(case: &str) -> Vec<GenerationResponse> {
    decode(&read(case, "dashscope_stream.sse"))
        .iter()
        .map(|f| serde_json::from_str(&f.data).unwrap())
        .collect()
}

fn translator(model: &str, include_usage: bool) -> StreamTranslator {
    let meta = Meta {
        id: "chatcmpl-t".into(),
        created: CREATED,
        model: model.into(),
    };
    StreamTranslator::new(meta, include_usage)
}

#[test]
fn output_moderation_mid_stream_finishes_the_choice_with_content_filter() {
    let mut tr = translator("qwen-plus", true);
    let frames = golden_frames("stream-unknown-finish-reason");
    let first = frames.into_iter().next().unwrap();
    assert!(tr.on_frame(first).is_some());
    // Anything but moderation stays an error for the caller to report.
    assert!(tr.on_error(Some("InternalError")).is_none());
    assert!(tr.on_error(None).is_none());
    let body = tr.on_error(Some("DataInspectionFailed")).unwrap();
    let chunk = parse(&tr.render(&body), "chunk");
    assert_eq!(
        chunk["choices"],
        json!([{"index": 0, "delta": {}, "finish_reason": "content_filter"}])
    );
    // The stream then ends normally, with the usage the upstream reported.
    let usage = tr.finish().unwrap().unwrap();
    assert_eq!(usage.usage.unwrap().completion_tokens, 2);

    // Before anything was sent, moderation is an error (the client gets a 400).
    let mut tr = translator("qwen-plus", false);
    assert!(tr.on_error(Some("DataInspectionFailed")).is_none());
}

#[test]
fn aggregated_speech_concatenates_every_piece_and_images_are_kept() {
    use dashbridge::translate::aggregate::Aggregator;
    let mut tr = translator("qwen3-omni-flash", false);
    let mut acc = Aggregator::default();
    for f in golden_frames("stream-omni-audio") {
        if let Some(b) = tr.on_frame(f) {
            acc.push(b);
        }
    }
    let done = serde_json::to_value(acc.finish(tr.meta(), tr.final_usage())).unwrap();
    let msg = &done["choices"][0]["message"];
    assert_eq!(msg["content"], "Hi there.");
    assert_eq!(
        msg["audio"],
        json!({"id": "audio_5b6c7d8e", "data": "UklGRgAAAAAAAAAAAAAAAAAA", "expires_at": 1790000000})
    );

    let mut tr = translator("qwen-image-max", false);
    let mut acc = Aggregator::default();
    for f in golden_frames("stream-image-output") {
        if let Some(b) = tr.on_frame(f) {
            acc.push(b);
        }
    }
    let done = serde_json::to_value(acc.finish(tr.meta(), None)).unwrap();
    let msg = &done["choices"][0]["message"];
    assert_eq!(
        msg["images"],
        json!([{"type": "image_url", "image_url": {"url": "https://dashscope-result.example.com/1d/7f/20261129/a1b2c3/out.png?Expires=1790000000"}}])
    );
    assert_eq!(msg["image_hw"], json!([[1328, 1328]]));
    assert_eq!(done["choices"][0]["finish_reason"], "stop");

    // Aggregating a cumulative stream gives the text once.
    let mut tr = translator("translator", false);
    let mut acc = Aggregator::default();
    for f in golden_frames("stream-cumulative-qwen-mt") {
        if let Some(b) = tr.on_frame(f) {
            acc.push(b);
        }
    }
    let done = serde_json::to_value(acc.finish(tr.meta(), None)).unwrap();
    assert_eq!(done["choices"][0]["message"]["content"], "I didn't see it.");
    assert!(done.get("model_name").is_none());

    // search_info survives its empty repeats in the aggregate too.
    let mut tr = translator("qwen-plus", false);
    let mut acc = Aggregator::default();
    for f in golden_frames("stream-search-info-repeat") {
        if let Some(b) = tr.on_frame(f) {
            acc.push(b);
        }
    }
    let done = serde_json::to_value(acc.finish(tr.meta(), None)).unwrap();
    assert_eq!(done["search_info"]["search_results"][0]["index"], 1);
}

// ---- the shared captures this translator's fixes came from (skipped when absent) ---------------

/// `shared/dashscope/captures` beside the checkout (or a worktree's parent), if present. The
/// captures are third-party recordings: read at test time, never copied into the repository.
fn captures_dir() -> Option<PathBuf> {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/dashscope/captures"))
        .find(|p| p.is_dir())
}

fn capture_stream(
    dir: &std::path::Path,
    id: &str,
    model: &str,
) -> (Vec<Value>, Map<String, Value>) {
    use dashbridge::translate::aggregate::Aggregator;
    let raw = std::fs::read_to_string(dir.join(id).join("upstream.sse")).unwrap();
    let mut tr = translator(model, true);
    let mut acc = Aggregator::default();
    let mut chunks = Vec::new();
    for f in decode(&raw).iter().filter(|f| f.event != "error") {
        let frame: GenerationResponse = serde_json::from_str(&f.data).unwrap();
        if let Some(b) = tr.on_frame(frame) {
            chunks.push(parse(&tr.render(&b), id));
            acc.push(b);
        }
    }
    if let Ok(Some(b)) = tr.finish() {
        chunks.push(parse(&tr.render(&b), id));
    }
    let done = serde_json::to_value(acc.finish(tr.meta(), None)).unwrap();
    (chunks, done.as_object().unwrap().clone())
}

#[test]
fn issue_9_captures_replay_when_present() {
    let Some(dir) = captures_dir() else {
        eprintln!("shared/dashscope/captures not found: skipped");
        return;
    };
    // qwen-mt: cumulative frames, model_name in every frame.
    let (chunks, done) = capture_stream(&dir, "docs-qwen-mt-plus-cumulative-stream", "translator");
    assert_eq!(
        concat(&chunks, "content"),
        "I didn't laugh after watching this video."
    );
    assert_eq!(
        done["choices"][0]["message"]["content"],
        "I didn't laugh after watching this video."
    );
    assert!(chunks.iter().all(|c| !c.to_string().contains("model_name")));
    // A cumulative multimodal stream.
    let (chunks, _) = capture_stream(&dir, "erda-vl-cumulative-stream", "qwen-vl-plus");
    assert_eq!(
        concat(&chunks, "content"),
        "Hello! How can I assist you today?"
    );
    // Code interpreter and search: only the usage chunk has no choices; search results stay.
    for id in ["cnb-code-interpreter-stream", "cnb-search-prepend-stream"] {
        let (chunks, done) = capture_stream(&dir, id, "m");
        let (usage, rest) = chunks.split_last().unwrap();
        assert!(usage["choices"].as_array().unwrap().is_empty(), "{id}");
        for c in rest {
            assert!(!c["choices"].as_array().unwrap().is_empty(), "{id}: {c}");
        }
        if id == "cnb-search-prepend-stream" {
            let results = done["search_info"]["search_results"].as_array().unwrap();
            assert!(!results.is_empty(), "{id}");
        }
    }
    // Non-stream: an alias hides model_name; image output is delivered.
    let read_json = |id: &str| std::fs::read_to_string(dir.join(id).join("upstream.json")).unwrap();
    let out = translate_response(&read_json("cnb-nonstream-qwen-mt-alias"), "translator");
    assert!(!out.to_string().contains("model_name"));
    assert_eq!(out["model"], "translator");
    let out = translate_response(
        &read_json("cnb-nonstream-qwen-image-on-mm-path"),
        "qwen-image-max",
    );
    let url = out["choices"][0]["message"]["images"][0]["image_url"]["url"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("https://"), "{out}");
    // An overdue account.
    let m = classify(
        Some(400),
        &ErrorBody::parse(read_json("maxkb-arrearage-400").as_bytes()),
    );
    assert_eq!(m.code, "insufficient_quota");
}
