//! Router-level edges, with plain reqwest against the in-process gateway: bad input never
//! reaches DashScope and always gets an OpenAI-shaped error (exactly `message`, `type`,
//! `param`, `code`); unknown routes and methods are JSON 404/405s; the body limit, client
//! keys, health, the model list and the `x-dashbridge-warning` header.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not the helpers below.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::fake::FakeDashScope;
use common::gateway::{self, Gateway, SERVER_KEY};
use serde_json::{Value, json};

/// Bounded: a hung gateway fails the test instead of hanging it.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

async fn setup() -> (FakeDashScope, Gateway) {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start_default(&fake.base_url).await;
    (fake, gw)
}

async fn post_raw(
    gw: &Gateway,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = http().post(gw.chat_url()).bearer_auth("sk-client");
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.body(body).send().await.unwrap()
}

async fn post_json(gw: &Gateway, body: &Value) -> reqwest::Response {
    post_raw(gw, Some("application/json"), body.to_string()).await
}

/// The error object of an error response, after checking the envelope: JSON content type,
/// `{"error": {...}}` with exactly the four OpenAI keys, `message` a non-empty string.
async fn error_of(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(ct.as_deref(), Some("application/json"));
    let body: Value = resp.json().await.unwrap();
    let top: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(top, vec!["error"], "{body}");
    let err = body["error"].clone();
    let mut keys: Vec<&String> = err.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["code", "message", "param", "type"], "{body}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(err["type"].is_string(), "{body}");
    assert!(err["param"].is_string() || err["param"].is_null(), "{body}");
    assert!(err["code"].is_string(), "{body}");
    err
}

// ---- bad requests never reach upstream ---------------------------------------------------------

#[tokio::test]
async fn invalid_json_is_400_invalid_json() {
    let (fake, gw) = setup().await;
    for body in [
        "{\"model\": \"qwen-plus\", \"messages\": [",
        "not json",
        "",
        "   ",
        "{} trailing",
    ] {
        let err = error_of(post_raw(&gw, Some("application/json"), body).await, 400).await;
        assert_eq!(err["type"], "invalid_request_error", "{body:?}");
        assert_eq!(err["code"], "invalid_json", "{body:?}");
        assert_eq!(err["param"], Value::Null, "{body:?}");
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn non_json_content_type_is_415() {
    let (fake, gw) = setup().await;
    let body = chat("qwen-plus", "hi").to_string();
    let err = error_of(post_raw(&gw, Some("text/plain"), body.clone()).await, 415).await;
    assert_eq!(err["code"], "unsupported_media_type");
    assert_eq!(err["type"], "invalid_request_error");
    let err = error_of(
        post_raw(&gw, Some("application/x-www-form-urlencoded"), body.clone()).await,
        415,
    )
    .await;
    assert_eq!(err["code"], "unsupported_media_type");
    assert_eq!(fake.request_count(), 0);

    // `application/json; charset=utf-8` and a missing content type are both accepted.
    let ok = post_raw(&gw, Some("application/json; charset=utf-8"), body.clone()).await;
    assert_eq!(ok.status(), 200);
    let ok = post_raw(&gw, None, body).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn invalid_requests_name_the_param_and_send_nothing_upstream() {
    let (fake, gw) = setup().await;
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            "model",
            "missing_required_parameter",
        ),
        (
            json!({"model": "qwen-plus", "messages": []}),
            "messages",
            "invalid_value",
        ),
        (
            json!({"model": "qwen-plus"}),
            "messages",
            "missing_required_parameter",
        ),
        (
            json!({"model": "qwen-plus", "messages": "hi"}),
            "messages",
            "invalid_type",
        ),
        (
            json!({"model": "qwen-plus", "messages": {"role": "user", "content": "hi"}}),
            "messages",
            "invalid_type",
        ),
        (
            json!({"model": "qwen-plus", "messages": [{"role": "wizard", "content": "hi"}]}),
            "messages[0].role",
            "invalid_type",
        ),
        (
            json!({"model": "qwen-plus", "messages": [{"content": "hi"}]}),
            "messages[0].role",
            "missing_required_parameter",
        ),
        (
            json!({"model": 42, "messages": [{"role": "user", "content": "hi"}]}),
            "model",
            "invalid_type",
        ),
        (
            json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}),
            "temperature",
            "invalid_type",
        ),
        (
            // `required` is emulated, but needs a tool to require.
            json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}),
            "tool_choice",
            "invalid_value",
        ),
        (
            json!({"model": "qwen-plus", "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}]}),
            "messages[0].content[0].type",
            "unsupported_parameter",
        ),
    ];
    for (body, param, code) in cases {
        let err = error_of(post_json(&gw, &body).await, 400).await;
        assert_eq!(err["param"], param, "{body}: {err}");
        assert_eq!(err["code"], code, "{body}: {err}");
        assert_eq!(err["type"], "invalid_request_error", "{body}");
    }
    assert_eq!(fake.request_count(), 0, "the fake received nothing");
}

// ---- routes -----------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let (fake, gw) = setup().await;
    // A stored response nobody created: OpenAI's 404.
    let get = http()
        .get(gw.url("/v1/responses/resp_1"))
        .send()
        .await
        .unwrap();
    let err = error_of(get, 404).await;
    assert_eq!(err["code"], "not_found");
    assert_eq!(err["type"], "invalid_request_error");
    assert_eq!(err["message"], "Response with id 'resp_1' not found.");

    for path in [
        "/",
        "/v1",
        "/v1/completions",
        "/v1/images/generations",
        "/api/v1/services/aigc/text-generation/generation",
    ] {
        let r = http().post(gw.url(path)).send().await.unwrap();
        assert_eq!(error_of(r, 404).await["code"], "unknown_url", "{path}");
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn wrong_method_on_chat_completions_is_a_json_405() {
    let (fake, gw) = setup().await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = http()
            .request(method.clone(), gw.chat_url())
            .send()
            .await
            .unwrap();
        let err = error_of(r, 405).await;
        assert_eq!(err["code"], "method_not_allowed", "{method}");
        assert_eq!(err["type"], "invalid_request_error", "{method}");
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn health_and_readiness() {
    let (_fake, gw) = setup().await;
    let r = http().get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let r = http().get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "ready", "store": "ok", "store_backend": "memory"})
    );
}

#[tokio::test]
async fn models_list_shape() {
    let (fake, gw) = setup().await;
    let r = http().get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let mut ids = dashbridge::config::DEFAULT_LISTED_MODELS.to_vec();
    ids.sort_unstable();
    let expected: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "dashscope"}))
        .collect();
    assert_eq!(body, json!({"object": "list", "data": expected}));

    let r = http()
        .get(gw.url("/v1/models/qwen-plus"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": "qwen-plus", "object": "model", "created": 1_700_000_000, "owned_by": "dashscope"})
    );
    let r = http()
        .get(gw.url("/v1/models/not-a-model"))
        .send()
        .await
        .unwrap();
    let err = error_of(r, 404).await;
    assert_eq!(err["code"], "model_not_found");
    assert_eq!(err["param"], "model");
    assert_eq!(fake.request_count(), 0);
}

// ---- limits and keys --------------------------------------------------------------------------

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.max_body_bytes = 2048;
    let gw = gateway::start(cfg).await;

    let big = chat("qwen-plus", &"x".repeat(4096)).to_string();
    // Declared with Content-Length.
    let err = error_of(
        post_raw(&gw, Some("application/json"), big.clone()).await,
        413,
    )
    .await;
    assert_eq!(err["code"], "request_too_large");
    assert_eq!(err["type"], "invalid_request_error");
    assert!(err["message"].as_str().unwrap().contains("2048"), "{err}");
    // Streamed without a length (chunked): cut off while reading.
    let chunks: Vec<Result<Bytes, std::io::Error>> = big
        .as_bytes()
        .chunks(512)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let err = error_of(post_raw(&gw, Some("application/json"), body).await, 413).await;
    assert_eq!(err["code"], "request_too_large");
    assert_eq!(fake.request_count(), 0);

    // Just under the limit is fine.
    let small = chat("qwen-plus", &"y".repeat(1900)).to_string();
    assert!(small.len() <= 2048);
    let ok = post_raw(&gw, Some("application/json"), small).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn client_keys_are_enforced_before_anything_goes_upstream() {
    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.client_keys = vec![dashbridge::config::ClientKey::new(None, "k1")];
    let gw = gateway::start(cfg).await;
    let body = chat("qwen-plus", "hi").to_string();

    let send = |key: Option<&'static str>| {
        let mut req = http()
            .post(gw.chat_url())
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(k) = key {
            req = req.header("authorization", k);
        }
        req.send()
    };
    for key in [
        None,
        Some("Bearer k2"),
        Some("Bearer "),
        Some("k1"),
        Some("Basic azE6"),
    ] {
        let err = error_of(send(key).await.unwrap(), 401).await;
        assert_eq!(err["code"], "invalid_api_key", "{key:?}");
        assert_eq!(err["type"], "invalid_request_error", "{key:?}");
    }
    // The model list is behind the same keys; health is not.
    let r = http().get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(error_of(r, 401).await["code"], "invalid_api_key");
    let r = http().get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(fake.request_count(), 0, "nothing sent upstream");

    let ok = send(Some("Bearer k1")).await.unwrap();
    assert_eq!(ok.status(), 200);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].headers.get("authorization").unwrap(),
        &format!("Bearer {SERVER_KEY}")
    );
    let r = http()
        .get(gw.url("/v1/models"))
        .bearer_auth("k1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// ---- warnings ---------------------------------------------------------------------------------

#[tokio::test]
async fn dropped_parameters_are_named_in_x_dashbridge_warning() {
    let (fake, gw) = setup().await;
    let mut body = chat("qwen-plus", "hi");
    body["frequency_penalty"] = json!(0.5);
    let r = post_json(&gw, &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("x-dashbridge-warning").unwrap(),
        "frequency_penalty dropped (no DashScope equivalent)"
    );
    assert!(
        fake.requests()[0].body["parameters"]
            .get("frequency_penalty")
            .is_none()
    );

    // On a stream too, and several notes are joined with "; ".
    body["stream"] = json!(true);
    body["temperature"] = json!(2);
    let r = post_json(&gw, &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("x-dashbridge-warning").unwrap(),
        "temperature 2 clamped to 1.99 (DashScope range is [0, 2)); frequency_penalty dropped (no DashScope equivalent)"
    );
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));

    // A clean request has no warning header.
    let r = post_json(&gw, &chat("qwen-plus", "hi")).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-dashbridge-warning").is_none());
}

/// Item 14: one global budget bounds the request-body bytes held in memory at once. While a
/// slow client holds most of it, a body that does not fit is refused at once with 503
/// `overloaded` + `Retry-After` (nothing sent upstream); once the first is done, it fits again.
#[tokio::test]
async fn request_bodies_share_a_global_byte_budget() {
    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.max_body_bytes = 4096;
    cfg.body_budget_bytes = 6144;
    let gw = gateway::start(cfg).await;
    let body = |fill: &str| chat("qwen-plus", &fill.repeat(3400)).to_string();

    // A client sends the first 3,000 bytes of its body, then pauses.
    let slow = body("s");
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
    });
    let first = tokio::spawn(post_raw_owned(
        gw.chat_url(),
        reqwest::Body::wrap_stream(stream),
    ));
    tx.send(Bytes::copy_from_slice(&slow.as_bytes()[..3000]))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // 3,000 held + 3,4xx declared > 6,144: refused before it is read.
    let resp = post_json(&gw, &serde_json::from_str(&body("f")).unwrap()).await;
    assert_eq!(resp.headers().get("retry-after").unwrap(), "1");
    let err = error_of(resp, 503).await;
    assert_eq!(err["code"], "overloaded");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("body_budget_bytes"),
        "{err}"
    );
    assert_eq!(fake.request_count(), 0);

    // The slow client finishes; its bytes are released and the next body fits.
    tx.send(Bytes::copy_from_slice(&slow.as_bytes()[3000..]))
        .await
        .unwrap();
    drop(tx);
    assert_eq!(first.await.unwrap(), 200);
    let resp = post_json(&gw, &serde_json::from_str(&body("g")).unwrap()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.request_count(), 2);
}

async fn post_raw_owned(url: String, body: reqwest::Body) -> u16 {
    http()
        .post(url)
        .bearer_auth("sk-client")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
