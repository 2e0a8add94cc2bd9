//! Rerank end to end in-process with raw HTTP (reqwest): `/v1/rerank`, `/rerank` and
//! `/v2/rerank` → the gateway → the fake native text-rerank service (or the compatible
//! `/compatible-api/v1/reranks` for `qwen3-rerank`), which scores by document length
//! ([`fake_relevance`]), so order, scores, `top_n` and the document echo are exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::fake::{FakeDashScope, RERANK_COMPAT_PATH, RERANK_PATH, Reply, fake_relevance};
use common::gateway::{self, Gateway};
use dashbridge::config::{Config, ModelEntry};
use serde_json::{Value, json};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn start(cfg: impl FnOnce(&mut Config)) -> (FakeDashScope, Gateway) {
    let fake = FakeDashScope::start().await;
    let mut c = gateway::config(&fake.base_url);
    cfg(&mut c);
    let gw = gateway::start(c).await;
    (fake, gw)
}

async fn post(gw: &Gateway, path: &str, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = http()
        .post(gw.url(path))
        .header("content-type", "application/json")
        .bearer_auth("sk-client")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, v, headers)
}

const DOCS: [&str; 4] = [
    "short",
    "a much longer document about rerank",
    "mid-length text",
    "x",
];

#[tokio::test]
async fn v1_native_in_score_order_with_documents() {
    let (fake, gw) = start(|_| {}).await;
    let body = json!({"model": "gte-rerank-v2", "query": "what is rerank", "documents": DOCS,
                      "top_n": 3, "return_documents": true});
    for path in ["/v1/rerank", "/rerank"] {
        let (status, v, headers) = post(&gw, path, &body).await;
        assert_eq!(status, 200, "{v}");
        let results = v["results"].as_array().unwrap();
        let order: Vec<u64> = results
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect();
        assert_eq!(order, vec![1, 2, 0]);
        for r in results {
            let i = r["index"].as_u64().unwrap() as usize;
            assert_eq!(r["relevance_score"], fake_relevance(DOCS[i]));
            assert_eq!(r["document"], json!({"text": DOCS[i]}));
        }
        let id = v["id"].as_str().unwrap();
        assert!(id.starts_with("rerank-"), "{id}");
        assert_eq!(headers["x-request-id"], id);
        let tokens = 14 * 4 + (5 + 35 + 15 + 1);
        assert_eq!(v["usage"], json!({"total_tokens": tokens}));
        assert_eq!(v["meta"]["billed_units"]["total_tokens"], tokens);
        assert_eq!(v["meta"]["api_version"]["version"], "1");
        assert_eq!(v["model"], "gte-rerank-v2");
    }
    let calls = fake.requests();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].path, RERANK_PATH);
    assert_eq!(
        calls[0].body,
        json!({"model": "gte-rerank-v2", "input": {"query": "what is rerank", "documents": DOCS},
               "parameters": {"top_n": 3, "return_documents": true}})
    );
}

#[tokio::test]
async fn v2_shape_and_object_documents() {
    let (fake, gw) = start(|_| {}).await;
    let docs: Vec<Value> = DOCS.iter().map(|d| json!({"text": d})).collect();
    let (status, v, _) = post(
        &gw,
        "/v2/rerank",
        &json!({"model": "gte-rerank-v2", "query": "q", "documents": docs, "top_n": 2,
                "max_tokens_per_doc": 4096}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["meta"]["api_version"]["version"], "2");
    assert_eq!(
        v["results"],
        json!([{"index": 1, "relevance_score": fake_relevance(DOCS[1])},
               {"index": 2, "relevance_score": fake_relevance(DOCS[2])}])
    );
    assert_eq!(fake.requests()[0].body["input"]["documents"], json!(DOCS));
}

#[tokio::test]
async fn qwen3_rerank_goes_to_the_compatible_api() {
    let (fake, gw) = start(|_| {}).await;
    let (status, v, _) = post(
        &gw,
        "/v1/rerank",
        &json!({"model": "qwen3-rerank", "query": "q", "documents": DOCS, "top_n": 2,
                "instruct": "Given a query, retrieve passages"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let calls = fake.requests();
    assert_eq!(calls[0].path, RERANK_COMPAT_PATH);
    assert_eq!(
        calls[0].body,
        json!({"model": "qwen3-rerank", "query": "q", "documents": DOCS, "top_n": 2,
               "instruct": "Given a query, retrieve passages"})
    );
    // The compatible API echoes documents; the client did not ask for them.
    assert_eq!(
        v["results"],
        json!([{"index": 1, "relevance_score": fake_relevance(DOCS[1])},
               {"index": 2, "relevance_score": fake_relevance(DOCS[2])}])
    );
    assert!(v["id"].as_str().unwrap().starts_with("rerank-"));

    // The table is configurable per model: forced native, the fake's native service answers.
    let (fake, gw) = start(|c| {
        c.models.insert(
            "qwen3-rerank".into(),
            ModelEntry {
                rerank_endpoint: Some(dashbridge::dashscope::rerank::RerankEndpoint::Native),
                ..ModelEntry::default()
            },
        );
    })
    .await;
    let (status, _, _) = post(
        &gw,
        "/v1/rerank",
        &json!({"model": "qwen3-rerank", "query": "q", "documents": DOCS}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fake.requests()[0].path, RERANK_PATH);
}

#[tokio::test]
async fn limits_and_bad_fields_are_400s_before_upstream() {
    let (fake, gw) = start(|c| {
        c.models.insert(
            "small-rerank".into(),
            ModelEntry {
                target: Some("gte-rerank-v2".into()),
                max_documents: Some(2),
                ..ModelEntry::default()
            },
        );
    })
    .await;
    let many: Vec<String> = (0..501).map(|i| format!("d{i}")).collect();
    let cases = [
        (
            json!({"model": "gte-rerank-v2", "query": "q", "documents": many}),
            "documents",
        ),
        (
            json!({"model": "small-rerank", "query": "q", "documents": ["a", "b", "c"]}),
            "documents",
        ),
        (
            json!({"model": "gte-rerank-v2", "query": "q", "documents": []}),
            "documents",
        ),
        (
            json!({"model": "gte-rerank-v2", "documents": ["a"]}),
            "query",
        ),
        (
            json!({"model": "gte-rerank-v2", "query": "", "documents": ["a"]}),
            "query",
        ),
        (json!({"query": "q", "documents": ["a"]}), "model"),
        (
            json!({"model": "gte-rerank-v2", "query": "q", "documents": ["a", {"title": "t"}]}),
            "documents[1]",
        ),
        (
            json!({"model": "gte-rerank-v2", "query": "q", "documents": ["a"], "top_n": 0}),
            "top_n",
        ),
        (
            json!({"model": "gte-rerank-v2", "query": "q", "documents": "a"}),
            "documents",
        ),
    ];
    for (body, param) in cases {
        let (status, v, _) = post(&gw, "/v1/rerank", &body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn upstream_errors_are_mapped() {
    let (fake, gw) = start(|_| {}).await;
    fake.push(Reply::error_fixture(429, "error-throttling.json"));
    let (status, v, headers) = post(
        &gw,
        "/v2/rerank",
        &json!({"model": "gte-rerank-v2", "query": "q", "documents": ["a"]}),
    )
    .await;
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        headers["x-request-id"],
        "0cbe6006-faec-9854-bf8b-c906d75c3bd8"
    );
    assert_eq!(fake.request_count(), 1);
}
