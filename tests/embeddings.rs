//! `POST /v1/embeddings` end to end in-process: `async-openai` 0.43 (and plain reqwest for raw
//! bytes and bad input) → the gateway → the fake native text-embedding service, which enforces
//! the real batch limits and answers deterministic vectors ([`fake_vector`]), so every value is
//! asserted exactly, with the upstream calls' count, order and bodies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::embeddings::{CreateEmbeddingRequestArgs, EmbeddingInput, EncodingFormat};
use base64::Engine as _;
use common::fake::{
    EMBED_PATH, FakeDashScope, Recorded, Reply, embedding_request_id, fake_tokens, fake_vector,
};
use common::gateway::{self, Gateway, SERVER_KEY};
use dashbridge::config::{Config, ModelEntry, Secret, Upstream};
use serde_json::{Value, json};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .unwrap()
}

fn client(gw: &Gateway) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://{}/v1", gw.addr))
            .with_api_key("sk-client"),
    )
    .with_http_client(http())
}

async fn start(cfg: impl FnOnce(&mut Config)) -> (FakeDashScope, Gateway) {
    let fake = FakeDashScope::start().await;
    let mut c = gateway::config(&fake.base_url);
    cfg(&mut c);
    let gw = gateway::start(c).await;
    (fake, gw)
}

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("document number {i}: 风急天高"))
        .collect()
}

/// The fake's vector as float32 (what the client sees after either encoding).
fn expected(text: &str, dim: usize) -> Vec<f32> {
    fake_vector(text, dim)
        .into_iter()
        .map(|x| x as f32)
        .collect()
}

fn sent_texts(r: &Recorded) -> Vec<String> {
    r.body["input"]["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

async fn post(gw: &Gateway, body: &Value) -> reqwest::Response {
    http()
        .post(gw.url("/v1/embeddings"))
        .header("content-type", "application/json")
        .bearer_auth("sk-client")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn twenty_five_inputs_three_calls_in_order() {
    // One call at a time, so the order the fake sees is the order the gateway sends.
    let (fake, gw) = start(|c| c.embedding_concurrency = 1).await;
    let inputs = texts(25);
    let req = CreateEmbeddingRequestArgs::default()
        .model("text-embedding-v4")
        .input(inputs.clone())
        .build()
        .unwrap();
    let resp = client(&gw).embeddings().create(req).await.unwrap();

    let calls = fake.requests();
    assert_eq!(calls.len(), 3);
    for (call, range) in calls.iter().zip([0..10, 10..20, 20..25]) {
        assert_eq!(call.path, EMBED_PATH);
        assert_eq!(sent_texts(call), inputs[range].to_vec());
        assert_eq!(call.body["model"], "text-embedding-v4");
        assert_eq!(call.body.get("parameters"), None);
        assert_eq!(
            call.headers["authorization"],
            format!("Bearer {SERVER_KEY}").as_str()
        );
    }
    assert_eq!(resp.model, "text-embedding-v4");
    assert_eq!(resp.object, "list");
    assert_eq!(resp.data.len(), 25);
    for (i, d) in resp.data.iter().enumerate() {
        assert_eq!(d.index as usize, i);
        assert_eq!(d.embedding, expected(&inputs[i], 1024), "input {i}");
    }
    let tokens: u64 = inputs.iter().map(|t| fake_tokens(t)).sum();
    assert_eq!(u64::from(resp.usage.prompt_tokens), tokens);
    assert_eq!(u64::from(resp.usage.total_tokens), tokens);
}

#[tokio::test]
async fn concurrent_chunks_reassemble_in_input_order() {
    let (fake, gw) = start(|c| c.embedding_concurrency = 4).await;
    let inputs = texts(95);
    let resp = post(&gw, &json!({"model": "text-embedding-v3", "input": inputs})).await;
    assert_eq!(resp.status(), 200);
    // The first chunk's DashScope request id.
    let first: Vec<&str> = inputs[..10].iter().map(String::as_str).collect();
    assert_eq!(
        resp.headers()["x-request-id"],
        embedding_request_id(&first).as_str()
    );
    let v: Value = resp.json_value().await;
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 95);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(d["embedding"][0], fake_tokens(&inputs[i]) as f64);
    }
    let mut seen: Vec<Vec<String>> = fake.requests().iter().map(sent_texts).collect();
    assert_eq!(seen.len(), 10);
    seen.sort_by_key(|t| inputs.iter().position(|i| i == &t[0]));
    let expected: Vec<Vec<String>> = inputs.chunks(10).map(<[String]>::to_vec).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn base64_decodes_to_the_same_floats_and_is_on_the_wire() {
    let (_fake, gw) = start(|_| {}).await;
    let inputs = texts(3);
    let req = CreateEmbeddingRequestArgs::default()
        .model("text-embedding-v4")
        .input(inputs.clone())
        .encoding_format(EncodingFormat::Base64)
        .dimensions(64u32)
        .build()
        .unwrap();
    let resp = client(&gw).embeddings().create_base64(req).await.unwrap();
    assert_eq!(resp.data.len(), 3);
    for (i, d) in resp.data.into_iter().enumerate() {
        let floats: Vec<f32> = d.embedding.into();
        assert_eq!(floats, expected(&inputs[i], 64));
    }

    // The raw body carries a base64 string (what Node 6.x and .NET decode unconditionally).
    let raw = post(
        &gw,
        &json!({"model": "text-embedding-v4", "input": "abc", "encoding_format": "base64"}),
    )
    .await;
    let v: Value = raw.json_value().await;
    let mut bytes = Vec::new();
    for x in expected("abc", 1024) {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    assert_eq!(
        v["data"][0]["embedding"],
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
}

#[tokio::test]
async fn dimensions_are_sent_validated_or_dropped() {
    let (fake, gw) = start(|_| {}).await;
    let req = CreateEmbeddingRequestArgs::default()
        .model("text-embedding-v4")
        .input("query")
        .dimensions(256u32)
        .build()
        .unwrap();
    let resp = client(&gw).embeddings().create(req).await.unwrap();
    assert_eq!(resp.data[0].embedding, expected("query", 256));
    assert_eq!(
        fake.requests()[0].body["parameters"],
        json!({"dimension": 256})
    );

    // v1/v2: 1536 is the only size: accepted, not sent.
    let resp = post(
        &gw,
        &json!({"model": "text-embedding-v2", "input": "q", "dimensions": 1536}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.requests()[1].body.get("parameters"), None);
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_nothing_is_sent() {
    let (fake, gw) = start(|_| {}).await;
    let many: Vec<&str> = vec!["x"; 2049];
    let cases = [
        (json!({"model": "text-embedding-v4", "input": ""}), "input"),
        (json!({"model": "text-embedding-v4", "input": []}), "input"),
        (
            json!({"model": "text-embedding-v4", "input": ["a", ""]}),
            "input[1]",
        ),
        (
            json!({"model": "text-embedding-v4", "input": many}),
            "input",
        ),
        (
            json!({"model": "text-embedding-v4", "input": ["a", 1]}),
            "input",
        ),
        (
            json!({"model": "text-embedding-v4", "input": [[99999999]]}),
            "input[0]",
        ),
        (json!({"model": "text-embedding-v4"}), "input"),
        (json!({"input": "a"}), "model"),
        (
            json!({"model": "text-embedding-v4", "input": "a", "encoding_format": "int8"}),
            "encoding_format",
        ),
        (
            json!({"model": "text-embedding-v3", "input": "a", "dimensions": 2048}),
            "dimensions",
        ),
        (
            json!({"model": "text-embedding-v1", "input": "a", "dimensions": 1024}),
            "dimensions",
        ),
        (
            json!({"model": "text-embedding-v4", "input": "a", "dimensions": "big"}),
            "dimensions",
        ),
        (
            json!({"model": "text-embedding-v4", "input": "a", "input_type": "code"}),
            "input_type",
        ),
    ];
    for (body, param) in cases {
        let resp = post(&gw, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json_value().await;
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn a_failing_chunk_fails_the_request() {
    let (fake, gw) = start(|c| c.embedding_concurrency = 1).await;
    let mut inputs = texts(25);
    inputs[14] = "scenario:error-500".into();
    let resp = post(&gw, &json!({"model": "text-embedding-v4", "input": inputs})).await;
    // DashScope's 500 is the gateway's 502 (an upstream fault), with DashScope's code.
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json_value().await;
    assert_eq!(v.get("data"), None);
    assert_eq!(v["error"]["code"], "InternalError");
    // Sequential: the third chunk is never sent.
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn retries_follow_the_chat_rule() {
    let (fake, gw) = start(|c| {
        c.retries = 1;
        c.retry_base = Duration::from_millis(1);
    })
    .await;
    fake.push(Reply::json(
        503,
        r#"{"code":"ServiceUnavailable","message":"busy","request_id":"r-503"}"#,
    ));
    let resp = post(&gw, &json!({"model": "text-embedding-v4", "input": "x"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.request_count(), 2);
    // A 400 is never retried.
    fake.push(Reply::json(
        400,
        r#"{"code":"InvalidParameter","message":"bad","request_id":"r-400"}"#,
    ));
    let resp = post(&gw, &json!({"model": "text-embedding-v4", "input": "x"})).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-request-id"], "r-400");
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn the_fake_enforces_the_real_batch_limit() {
    // A row limit configured too high meets the real 400 from upstream.
    let (fake, gw) = start(|c| {
        c.models.insert(
            "text-embedding-v4".into(),
            ModelEntry {
                max_rows: Some(11),
                ..ModelEntry::default()
            },
        );
    })
    .await;
    let resp = post(
        &gw,
        &json!({"model": "text-embedding-v4", "input": texts(11)}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json_value().await;
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, it should not be larger than 10.: input.contents"),
        "{message}"
    );
    assert_eq!(fake.request_count(), 1);
    // v2's limit is 25: 26 texts are two calls (25 + 1).
    let resp = post(
        &gw,
        &json!({"model": "text-embedding-v2", "input": texts(26)}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let sizes: Vec<usize> = fake.requests()[1..]
        .iter()
        .map(|r| sent_texts(r).len())
        .collect();
    let mut sizes = sizes;
    sizes.sort_unstable();
    assert_eq!(sizes, vec![1, 25]);
}

#[tokio::test]
async fn token_arrays_are_decoded_and_flagged() {
    let (fake, gw) = start(|_| {}).await;
    // LangChain's default: cl100k_base token arrays.
    let req = CreateEmbeddingRequestArgs::default()
        .model("text-embedding-v4")
        .input(EmbeddingInput::ArrayOfIntegerArray(vec![
            vec![15339, 1917],
            vec![48, 17378],
        ]))
        .build()
        .unwrap();
    let resp = client(&gw).embeddings().create(req).await.unwrap();
    assert_eq!(sent_texts(&fake.requests()[0]), vec!["hello world", "Qwen"]);
    assert_eq!(resp.data[1].embedding, expected("Qwen", 1024));
    let raw = post(
        &gw,
        &json!({"model": "text-embedding-v4", "input": [15339, 1917]}),
    )
    .await;
    assert_eq!(
        raw.headers()["x-dashbridge-warning"],
        "token-array input decoded to text with cl100k_base"
    );
}

#[tokio::test]
async fn extras_sparse_output_and_user() {
    let (fake, gw) = start(|_| {}).await;
    let resp = post(
        &gw,
        &json!({"model": "text-embedding-v4", "input": ["ab"], "input_type": "search_document",
                "output_type": "dense&sparse", "instruct": "Represent it", "user": "u-1"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-dashbridge-warning"],
        "user ignored (DashScope embeddings have no such field)"
    );
    let v: Value = resp.json_value().await;
    assert_eq!(
        v["data"][0]["sparse_embedding"],
        json!([{"index": 2, "value": 0.5, "token": "t"}])
    );
    assert_eq!(v["data"][0]["embedding"][0], 2.0);
    assert_eq!(
        fake.requests()[0].body["parameters"],
        json!({"text_type": "document", "output_type": "dense&sparse", "instruct": "Represent it"})
    );
    // Sparse alone: `embedding` is empty.
    let v: Value = post(
        &gw,
        &json!({"model": "text-embedding-v4", "input": "ab", "output_type": "sparse"}),
    )
    .await
    .json_value()
    .await;
    assert_eq!(v["data"][0]["embedding"], json!([]));
}

#[tokio::test]
async fn aliases_upstreams_workspaces_and_auth_modes() {
    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.upstreams.insert(
        "team".into(),
        Upstream {
            base_url: fake.base_url.clone(),
            api_key: Some(Secret::new("sk-team")),
            workspace: Some("ws-embed".into()),
        },
    );
    cfg.models.insert(
        "my-embed".into(),
        ModelEntry {
            target: Some("text-embedding-v1".into()),
            upstream: Some("team".into()),
            ..ModelEntry::default()
        },
    );
    let gw = gateway::start(cfg).await;
    let v: Value = post(&gw, &json!({"model": "my-embed", "input": texts(26)}))
        .await
        .json_value()
        .await;
    assert_eq!(v["model"], "my-embed");
    assert_eq!(v["data"].as_array().unwrap().len(), 26);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 1536);
    let calls = fake.requests();
    assert_eq!(calls.len(), 2, "the alias's row limit (v1: 25) applies");
    for c in &calls {
        assert_eq!(c.body["model"], "text-embedding-v1");
        assert_eq!(c.headers["authorization"], "Bearer sk-team");
        assert_eq!(c.headers["x-dashscope-workspace"], "ws-embed");
    }

    // Pass-through mode: the client's key goes upstream; without one, 401 and nothing sent.
    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.upstream.api_key = None;
    let gw = gateway::start(cfg).await;
    let resp = post(&gw, &json!({"model": "text-embedding-v4", "input": "x"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        fake.requests()[0].headers["authorization"],
        "Bearer sk-client"
    );
    let resp = http()
        .post(gw.url("/v1/embeddings"))
        .header("content-type", "application/json")
        .body(json!({"model": "text-embedding-v4", "input": "x"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn metrics_carry_the_route_label() {
    dashbridge::metrics::install().expect("the recorder installs");
    let (_fake, gw) = start(|_| {}).await;
    let resp = post(&gw, &json!({"model": "text-embedding-v4", "input": "x"})).await;
    assert_eq!(resp.status(), 200);
    let text = http()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("dashbridge_requests_total")
                && l.contains("route=\"embeddings\"")
                && l.contains("endpoint=\"embedding\"")
                && l.contains("status=\"200\"")),
        "{text}"
    );
}

/// `resp.json()` without reqwest's `json` feature.
trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        let text = self.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

#[tokio::test]
async fn a_failed_chunk_does_not_wait_for_the_others() {
    let (_fake, gw) = start(|c| c.embedding_concurrency = 4).await;
    let mut inputs = texts(30);
    inputs[5] = "scenario:slow".into(); // the first call takes 1 s
    inputs[25] = "scenario:error-429".into(); // the last fails at once
    let started = std::time::Instant::now();
    let resp = post(&gw, &json!({"model": "text-embedding-v4", "input": inputs})).await;
    assert_eq!(resp.status(), 429);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let v: Value = resp.json_value().await;
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert_eq!(v.get("data"), None);
}

#[tokio::test]
async fn a_silent_upstream_is_a_504() {
    let (_fake, gw) = start(|c| c.upstream_timeout = Duration::from_millis(300)).await;
    let resp = post(
        &gw,
        &json!({"model": "text-embedding-v4", "input": ["a", "scenario:slow"]}),
    )
    .await;
    assert_eq!(resp.status(), 504);
}

#[tokio::test]
async fn the_fake_answers_more_than_ten_rows_with_the_real_400() {
    let fake = FakeDashScope::start().await;
    let body = json!({"model": "text-embedding-v4", "input": {"texts": texts(11)}});
    let resp = http()
        .post(format!("{}{EMBED_PATH}", fake.base_url))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json_value().await,
        json!({"code": "InvalidParameter",
               "message": "<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, it should not be larger than 10.: input.contents",
               "request_id": "b5e0e3a8-batch-4000-8000-000000000010"})
    );
}

#[test]
fn config_file_sets_limits_by_prefix_and_model() {
    let dir = std::env::temp_dir().join(format!("dashbridge-embed-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dashbridge.toml");
    std::fs::write(
        &path,
        r#"
[embeddings]
concurrency = 2
max_rows = { "qwen3.7-text-embedding" = 8, "text-embedding-v2" = 20 }

[rerank]
max_documents = { "gte-rerank" = 300 }
compatible_prefixes = ["qwen3-rerank", "my-compat-"]

[models."emb"]
target = "qwen3.7-text-embedding"
dimensions = [1024, 256]

[models."fast-rerank"]
target = "qwen3-rerank"
max_documents = 50
rerank_endpoint = "native"
"#,
    )
    .unwrap();
    let env: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let cfg = Config::load(Some(&path), &env).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let emb = cfg.models.get("emb");
    assert_eq!(cfg.embedding_concurrency, 2);
    assert_eq!(cfg.embedding_rows("qwen3.7-text-embedding", emb), 8);
    assert_eq!(cfg.embedding_rows("text-embedding-v2", None), 20);
    assert_eq!(cfg.embedding_rows("text-embedding-v1", None), 25);
    assert_eq!(cfg.embedding_rows("text-embedding-v4", None), 10);
    assert_eq!(cfg.embedding_rows("other", None), 10);
    assert_eq!(
        cfg.embedding_dimensions("qwen3.7-text-embedding", emb),
        Some(&[1024, 256][..])
    );
    assert_eq!(
        cfg.embedding_dimensions("text-embedding-v3", None)
            .map(<[u64]>::len),
        Some(6)
    );
    let fr = cfg.models.get("fast-rerank");
    use dashbridge::dashscope::rerank::RerankEndpoint;
    assert_eq!(cfg.rerank_documents("qwen3-rerank", fr), 50);
    assert_eq!(
        cfg.rerank_endpoint("qwen3-rerank", fr),
        RerankEndpoint::Native
    );
    assert_eq!(
        cfg.rerank_endpoint("qwen3-rerank", None),
        RerankEndpoint::Compatible
    );
    assert_eq!(
        cfg.rerank_endpoint("my-compat-1", None),
        RerankEndpoint::Compatible
    );
    assert_eq!(cfg.rerank_documents("gte-rerank-v2", None), 300);
    assert_eq!(cfg.rerank_documents("qwen3-vl-rerank", None), 100);

    // Bad values are reported, naming the setting.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        &path,
        "[embeddings]\nconcurrency = 0\nmax_rows = { \"x\" = 0 }\n[models.\"m\"]\nrerank_endpoint = \"elsewhere\"\n",
    )
    .unwrap();
    let errs = Config::load(Some(&path), &env).unwrap_err().0;
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        errs.iter().any(|e| e.contains("embeddings.concurrency")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("embeddings.max_rows.\"x\"")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("rerank_endpoint")),
        "{errs:?}"
    );
}

#[tokio::test]
async fn base64_answers_outside_the_usual_shape_are_read_by_serde_or_fail_clearly() {
    let (fake, gw) = start(|_| {}).await;
    let body = json!({"model": "text-embedding-v4", "input": "abc", "encoding_format": "base64"});
    let b64 = |v: &Value| v["data"][0]["embedding"].as_str().unwrap().to_owned();
    let want = base64::engine::general_purpose::STANDARD.encode(
        [0.5f32, -0.25]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    );

    // An unknown key (and an escaped request id): the fast reader leaves it, serde reads it.
    fake.push(Reply::json(
        200,
        r#"{"output":{"embeddings":[{"text_index":0,"embedding":[0.5,-0.25]}]},"usage":{"total_tokens":3},"request_id":"r\u002d1","status_code":200}"#,
    ));
    let resp = post(&gw, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "r-1");
    let v: Value = resp.json_value().await;
    assert_eq!(b64(&v), want);
    assert_eq!(v["usage"]["total_tokens"], 3);

    // A 200 that carries an error: read by the fast reader, mapped like any in-band error.
    fake.push(Reply::json(
        200,
        r#"{"code":"InvalidParameter","message":"contents is empty","request_id":"r-2"}"#,
    ));
    let resp = post(&gw, &body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json_value().await;
    assert_eq!(v["error"]["code"], "InvalidParameter");
    assert_eq!(
        v["error"]["message"],
        "contents is empty (DashScope code InvalidParameter, request_id r-2)"
    );

    // Not numbers: neither reader takes it, the client gets a 502 that says so.
    fake.push(Reply::json(
        200,
        r#"{"output":{"embeddings":[{"text_index":0,"embedding":["x"]}]},"request_id":"r-3"}"#,
    ));
    let resp = post(&gw, &body).await;
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json_value().await;
    assert_eq!(v["error"]["code"], "bad_upstream_response");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("DashScope sent an unreadable response: upstream sent invalid JSON"),
        "{message}"
    );
    assert_eq!(fake.request_count(), 3);
}
