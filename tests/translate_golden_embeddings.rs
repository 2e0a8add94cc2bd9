//! Golden tests of the embeddings and rerank translators (pure; no network, no runtime).
//!
//! Cases live in `tests/fixtures/golden/<case>/` like the chat goldens:
//! `openai_request.json` → `dashscope_request.json` (or `dashscope_requests.json`, one body per
//! native call) + `notes.json`; `dashscope_response.json` (or `dashscope_responses.json`, one per
//! call) → `openai_response.json` (float) and `openai_response_base64.json`. A
//! `dashscope_response.json` that copies a recorded fixture is checked against it.
//! `GOLDEN_BLESS=1 cargo test --test translate_golden_embeddings` rewrites the expected files;
//! review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::fake::fixture;
use dashbridge::dashscope::ErrorBody;
use dashbridge::dashscope::embedding::EmbeddingResponse;
use dashbridge::dashscope::rerank::{RerankEndpoint, RerankResponse};
use dashbridge::openai::embeddings::EmbeddingRequest;
use dashbridge::openai::rerank::{ApiVersion, RerankRequest};
use dashbridge::translate::embeddings::{self as temb, ChunkAnswer, F32Base64, IntoVector as _};
use dashbridge::translate::error::classify;
use dashbridge::translate::request::UnknownPolicy;
use dashbridge::translate::rerank as trr;
use serde_json::Value;
use serde_json::value::RawValue;

fn path(case: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(case)
        .join(file)
}

fn read(case: &str, file: &str) -> String {
    let p = path(case, file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn json(case: &str, file: &str) -> Value {
    serde_json::from_str(&read(case, file)).unwrap_or_else(|e| panic!("{case}/{file}: {e}"))
}

/// Compare with the golden file, or rewrite it under `GOLDEN_BLESS=1`.
fn check(case: &str, file: &str, actual: &Value) {
    if std::env::var_os("GOLDEN_BLESS").is_some() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(path(case, file), text).unwrap();
        return;
    }
    let expected = json(case, file);
    assert_eq!(
        &expected,
        actual,
        "{case}/{file} differs; actual:\n{}",
        serde_json::to_string_pretty(actual).unwrap()
    );
}

/// The case's input copies a recorded fixture: they must not drift apart.
fn same_as_fixture(case: &str, file: &str, fixture_name: &str) {
    let a: Value = serde_json::from_str(&read(case, file)).unwrap();
    let b: Value = serde_json::from_str(&fixture(fixture_name)).unwrap();
    assert_eq!(
        a, b,
        "{case}/{file} drifted from tests/fixtures/dashscope/{fixture_name}"
    );
}

fn embed_ctx(model: &str, row_limit: usize) -> temb::Ctx<'_> {
    temb::Ctx {
        upstream_model: model,
        row_limit,
        dimensions: temb::known_dimensions(model),
        unknown: UnknownPolicy::Forward,
    }
}

fn embed_request(case: &str, row_limit: usize) -> temb::Plan {
    let req: EmbeddingRequest = serde_json::from_str(&read(case, "openai_request.json")).unwrap();
    let model = json(case, "openai_request.json")["model"]
        .as_str()
        .unwrap()
        .to_owned();
    let plan = temb::to_dashscope(req, &embed_ctx(&model, row_limit)).unwrap();
    let bodies: Vec<Value> = plan
        .chunks()
        .into_iter()
        .map(|r| serde_json::to_value(plan.body(r)).unwrap())
        .collect();
    if bodies.len() == 1 {
        check(case, "dashscope_request.json", &bodies[0]);
    } else {
        check(case, "dashscope_requests.json", &Value::Array(bodies));
    }
    if !plan.notes.is_empty() {
        check(
            case,
            "notes.json",
            &serde_json::to_value(plan.notes.list()).unwrap(),
        );
    }
    plan
}

fn embed_responses(case: &str, plan: &temb::Plan, files: &[&str]) {
    let raw: Vec<String> = files.iter().map(|f| read(case, f)).collect();
    // `float` reads the vectors as raw JSON, `base64` as float32 bytes, as the handler does
    // (`IntoVector::read_answer`: the fast reader for the usual shape, else serde).
    fn answers<V: temb::IntoVector>(
        plan: &temb::Plan,
        raw: &[String],
        parse: fn(&[u8]) -> serde_json::Result<EmbeddingResponse<V>>,
    ) -> Vec<ChunkAnswer<V>> {
        plan.chunks()
            .into_iter()
            .zip(raw)
            .map(|(range, text)| ChunkAnswer {
                range,
                resp: parse(text.as_bytes()).unwrap(),
            })
            .collect()
    }
    let n = plan.texts.len();
    let float = temb::to_openai(
        "client-model",
        n,
        answers(plan, &raw, <Box<RawValue>>::read_answer),
    );
    let base64 = temb::to_openai(
        "client-model",
        n,
        answers(plan, &raw, F32Base64::read_answer),
    );
    // The fast reader reads every fixture but the sparse one (left to serde), and where it
    // reads, it encodes the same bytes as serde alone.
    let sparse = raw.iter().any(|t| t.contains("sparse_embedding"));
    let fast_only = |raw: &[u8]| {
        temb::native_floats::read::<F32Base64>(raw)
            .ok_or_else(|| serde::de::Error::custom("left to serde"))
    };
    let fast = raw.iter().all(|t| fast_only(t.as_bytes()).is_ok());
    assert_eq!(
        fast, !sparse,
        "{}: which fixtures the fast reader reads",
        plan.model
    );
    if fast {
        let by_serde = temb::to_openai(
            "client-model",
            n,
            answers::<F32Base64>(plan, &raw, |raw| serde_json::from_slice(raw)),
        );
        let by_reader = temb::to_openai("client-model", n, answers(plan, &raw, fast_only));
        assert_eq!(
            serde_json::to_string(&by_reader.unwrap()).unwrap(),
            serde_json::to_string(&by_serde.unwrap()).unwrap(),
            "{}: the fast reader and serde disagree",
            plan.model
        );
    }
    for (resp, out) in [
        (float, "openai_response.json"),
        (base64, "openai_response_base64.json"),
    ] {
        let bytes = serde_json::to_vec(&resp.unwrap()).unwrap();
        check(case, out, &serde_json::from_slice(&bytes).unwrap());
    }
}

#[test]
fn embed_fixture_request_and_answer() {
    let case = "embed-fixture";
    same_as_fixture(case, "dashscope_response.json", "embedding-nonstream.json");
    let plan = embed_request(case, 10);
    embed_responses(case, &plan, &["dashscope_response.json"]);
    // Float output is DashScope's numbers byte for byte (no re-printing of a parsed f64).
    let resp: EmbeddingResponse =
        serde_json::from_str(&read(case, "dashscope_response.json")).unwrap();
    let answers = vec![ChunkAnswer { range: 0..2, resp }];
    let out = temb::to_openai("m", 2, answers).unwrap();
    let text = serde_json::to_string(&out).unwrap();
    assert!(
        text.contains(
            "[-0.006929283495992422, -0.005336422007530928, 0.0249169915914535, -0.026634592935442924]"
        ),
        "{text}"
    );
}

#[test]
fn embed_chunks_reassembled_in_order() {
    let case = "embed-chunks";
    let plan = embed_request(case, 2);
    assert_eq!(plan.chunks().len(), 2);
    embed_responses(
        case,
        &plan,
        &["dashscope_response_0.json", "dashscope_response_1.json"],
    );
}

#[test]
fn embed_token_arrays() {
    embed_request("embed-tokens", 10);
}

#[test]
fn embed_sparse_output() {
    let case = "embed-sparse";
    same_as_fixture(
        case,
        "dashscope_response.json",
        "embedding-sparse-nonstream.json",
    );
    let plan = embed_request(case, 10);
    embed_responses(case, &plan, &["dashscope_response.json"]);
}

fn rerank_case(case: &str, endpoint: RerankEndpoint, version: ApiVersion) {
    let req: RerankRequest = serde_json::from_str(&read(case, "openai_request.json")).unwrap();
    let model = json(case, "openai_request.json")["model"]
        .as_str()
        .unwrap()
        .to_owned();
    let ctx = trr::Ctx {
        upstream_model: &model,
        max_documents: 500,
        endpoint,
        unknown: UnknownPolicy::Forward,
    };
    let plan = trr::to_dashscope(req, &ctx).unwrap();
    let body: Value = serde_json::from_slice(&plan.body().unwrap()).unwrap();
    check(case, "dashscope_request.json", &body);
    if !plan.notes.is_empty() {
        check(
            case,
            "notes.json",
            &serde_json::to_value(plan.notes.list()).unwrap(),
        );
    }
    let resp: RerankResponse =
        serde_json::from_str(&read(case, "dashscope_response.json")).unwrap();
    let out = trr::to_openai(resp, &plan, &model, version, "gateway-id").unwrap();
    // Scores are DashScope's digits, byte for byte.
    let text = serde_json::to_string(&out).unwrap();
    let raw = read(case, "dashscope_response.json");
    let scores: Vec<String> = raw
        .split("\"relevance_score\":")
        .skip(1)
        .map(|t| {
            t.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+'))
                .collect()
        })
        .collect();
    assert_eq!(scores.len(), 2);
    for score in scores {
        assert!(
            text.contains(&format!("\"relevance_score\":{score}")),
            "{score} not in {text}"
        );
    }
    check(
        case,
        "openai_response.json",
        &serde_json::to_value(&out).unwrap(),
    );
}

#[test]
fn rerank_native() {
    same_as_fixture(
        "rerank-native",
        "dashscope_response.json",
        "rerank-nonstream.json",
    );
    rerank_case("rerank-native", RerankEndpoint::Native, ApiVersion::V1);
}

#[test]
fn rerank_compatible() {
    same_as_fixture(
        "rerank-compatible",
        "dashscope_response.json",
        "rerank-compatible-nonstream.json",
    );
    rerank_case(
        "rerank-compatible",
        RerankEndpoint::Compatible,
        ApiVersion::V2,
    );
}

#[test]
fn the_batch_limit_error_is_a_400_with_dashscopes_words() {
    let body = ErrorBody::parse(fixture("error-embedding-batch-size.json").as_bytes());
    let m = classify(Some(400), &body);
    assert_eq!(m.status, 400);
    assert_eq!(m.kind, "invalid_request_error");
    assert!(!m.retryable);
    assert!(
        m.message.contains("it should not be larger than 10"),
        "{}",
        m.message
    );
    assert_eq!(
        m.request_id.as_deref(),
        Some("9f1b3c5d-7e9a-9b2c-8d4e-6f8a0b2c4d6e")
    );
}
