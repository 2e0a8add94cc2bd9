//! `POST /v1/responses` over HTTP against the fake DashScope: streams (every one through the
//! shared event-sequence checker), non-stream bodies, aggregation of streamed upstreams,
//! errors before output as real HTTP statuses with the Responses codes, mid-stream endings,
//! refusals that send nothing upstream, warnings, metrics.
#![allow(clippy::unwrap_used)]

mod common;

use common::fake::{FakeDashScope, Reply, fixture};
use common::gateway::{self, Gateway};
use common::responses_check::{check_events, parse_sse};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The stream's events, checked; returns the terminal response.
    fn checked(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.text);
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("text/event-stream")),
            "{:?}",
            self.headers
        );
        assert!(!self.text.contains("[DONE]"));
        let events = parse_sse(&self.text).unwrap();
        check_events(&events).unwrap_or_else(|e| panic!("{e}\n{}", self.text))
    }
}

async fn post(gw: &Gateway, body: &Value) -> Answer {
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/responses"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Answer {
        status,
        headers,
        text,
    }
}

async fn setup() -> (FakeDashScope, Gateway) {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start_default(&fake.base_url).await;
    (fake, gw)
}

fn output_text(resp: &Value) -> String {
    resp["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter_map(|c| c["text"].as_str())
        .collect()
}

#[tokio::test]
async fn a_text_stream_follows_the_event_sequence() {
    let (fake, gw) = setup().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse"));
    let a = post(
        &gw,
        &json!({"model": "qwen-plus", "input": "Hi", "stream": true}),
    )
    .await;
    let resp = a.checked();
    assert_eq!(resp["status"], "completed");
    assert_eq!(resp["model"], "qwen-plus");
    assert_eq!(resp["store"], false);
    assert!(resp["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(resp["output"].as_array().unwrap().len(), 1);
    assert!(resp["usage"]["total_tokens"].as_u64().is_some());
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body["parameters"]["incremental_output"], true);
    assert_eq!(
        reqs[0].body["input"]["messages"],
        json!([{"role": "user", "content": "Hi"}])
    );
    let rid = fixture("text-stream-incremental.sse")
        .split("\"request_id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(a.header("x-request-id"), Some(rid.as_str()));
}

#[tokio::test]
async fn reasoning_then_a_tool_call_streams_both_items() {
    let (fake, gw) = setup().await;
    fake.push(Reply::sse_fixture("reasoning-tool-calls-stream.sse"));
    let a = post(
        &gw,
        &json!({"model": "qwen-plus", "input": "Weather in Hangzhou?", "stream": true,
                "reasoning": {"effort": "low"}, "include": ["reasoning.encrypted_content"],
                "tools": [{"type": "function", "name": "get_current_weather", "strict": true,
                           "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}]}),
    )
    .await;
    let resp = a.checked();
    let out = resp["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning");
    assert_eq!(out[0]["content"][0]["type"], "reasoning_text");
    assert_eq!(out[0]["summary"][0]["text"], out[0]["content"][0]["text"]);
    assert!(
        out[0]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("dbr1.")
    );
    assert_eq!(out[1]["type"], "function_call");
    assert_eq!(out[1]["name"], "get_current_weather");
    assert!(out[1]["call_id"].as_str().unwrap().starts_with("call_"));
    let sent = &fake.requests()[0].body;
    assert_eq!(sent["parameters"]["enable_thinking"], true);
    assert_eq!(sent["parameters"]["thinking_budget"], 1024);
    assert!(
        sent["parameters"]["tools"][0]["function"]
            .get("strict")
            .is_none()
    );
}

#[tokio::test]
async fn the_summary_mirror_can_be_switched_off() {
    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.responses_reasoning_summary = false;
    let gw = gateway::start(cfg).await;
    fake.push(Reply::sse_fixture("reasoning-stream.sse"));
    let a = post(
        &gw,
        &json!({"model": "qwen-plus", "input": "Who are you?", "stream": true}),
    )
    .await;
    let resp = a.checked();
    assert_eq!(resp["output"][0]["summary"], json!([]));
    assert!(!a.text.contains("reasoning_summary"));
}

#[tokio::test]
async fn a_non_stream_answer_is_one_response_object() {
    let (fake, gw) = setup().await;
    fake.push(Reply::json_fixture("text-nonstream.json"));
    let a = post(
        &gw,
        &json!({"model": "qwen-plus", "input": "Hi", "stream": false, "store": true,
                "metadata": {"k": "v"}, "prompt_cache_key": "p", "service_tier": "auto"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let r = a.json();
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["store"], false);
    assert_eq!(r["metadata"], json!({"k": "v"}));
    assert_eq!(r["output"][0]["type"], "message");
    assert_eq!(r["output"][0]["content"][0]["annotations"], json!([]));
    for k in [
        "/usage/input_tokens",
        "/usage/output_tokens",
        "/usage/total_tokens",
        "/usage/input_tokens_details/cached_tokens",
        "/usage/output_tokens_details/reasoning_tokens",
    ] {
        assert!(r.pointer(k).unwrap().is_u64(), "{k}");
    }
    assert!(a.header("x-dashbridge-warning").is_none());
    let sent = &fake.requests()[0].body;
    for k in ["metadata", "prompt_cache_key", "service_tier", "store"] {
        assert!(sent["parameters"].get(k).is_none(), "{k} sent upstream");
    }
}

#[tokio::test]
async fn a_non_stream_thinking_request_is_streamed_upstream_and_aggregated() {
    let (fake, gw) = setup().await;
    fake.push(Reply::sse_fixture("reasoning-stream.sse"));
    let a = post(
        &gw,
        &json!({"model": "qwen-plus", "input": "Who are you?", "reasoning": {"effort": "high"}}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let r = a.json();
    assert_eq!(r["status"], "completed");
    assert_eq!(r["output"][0]["type"], "reasoning");
    assert_eq!(r["output"][1]["type"], "message");
    assert!(!output_text(&r).is_empty());
    let reqs = fake.requests();
    assert_eq!(
        reqs[0].headers.get("x-dashscope-sse").unwrap(),
        "enable",
        "thinking needs a streamed upstream"
    );
}

#[tokio::test]
async fn throttling_before_output_is_a_429_with_retry_after_in_the_message() {
    let (fake, gw) = setup().await;
    fake.push(Reply::error_fixture(429, "error-throttling.json").with_header("retry-after", "7"));
    let a = post(
        &gw,
        &json!({"model": "qwen-plus", "input": "Hi", "stream": true}),
    )
    .await;
    assert_eq!(a.status, 429, "{}", a.text);
    assert_eq!(a.header("retry-after"), Some("7"));
    let e = a.json();
    assert_eq!(e["error"]["code"], "rate_limit_exceeded");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try again in 7s"),
        "{e}"
    );
}

#[tokio::test]
async fn errors_before_output_use_the_codes_responses_clients_classify() {
    let (fake, gw) = setup().await;
    let cases = [
        (
            Reply::error_fixture(401, "error-invalid-key.json"),
            401,
            "invalid_api_key",
        ),
        (
            Reply::error_fixture(400, "error-arrearage.json"),
            400,
            "insufficient_quota",
        ),
        (
            Reply::json(
                400,
                r#"{"code":"InvalidParameter","message":"Range of input length should be [1, 129024]","request_id":"r-ctx"}"#,
            ),
            400,
            "context_length_exceeded",
        ),
        (
            Reply::error_fixture(400, "error-data-inspection.json"),
            400,
            "invalid_prompt",
        ),
        (
            Reply::json(
                500,
                r#"{"code":"InternalError","message":"boom","request_id":"r-500"}"#,
            ),
            502,
            "server_error",
        ),
        (
            Reply::sse(
                "id:1\nevent:error\n:HTTP_STATUS/400\ndata:{\"code\":\"DataInspectionFailed\",\"message\":\"Input data may contain inappropriate content.\",\"request_id\":\"r-first\"}\n\n",
            ),
            400,
            "invalid_prompt",
        ),
    ];
    for (reply, status, code) in cases {
        fake.push(reply);
        let a = post(
            &gw,
            &json!({"model": "qwen-plus", "input": "Hi", "stream": true}),
        )
        .await;
        assert_eq!(a.status, status, "{code}: {}", a.text);
        assert_eq!(a.json()["error"]["code"], code, "{}", a.text);
    }
}

#[tokio::test]
async fn output_moderation_mid_stream_ends_incomplete_with_content_filter() {
    let (fake, gw) = setup().await;
    fake.push(Reply::sse_fixture("error-in-stream.sse"));
    let a = post(
        &gw,
        &json!({"model": "qwen-plus", "input": "story", "stream": true}),
    )
    .await;
    let resp = a.checked();
    assert_eq!(resp["status"], "incomplete");
    assert_eq!(resp["incomplete_details"]["reason"], "content_filter");
    assert_eq!(output_text(&resp), "Here is the story");
}

#[tokio::test]
async fn a_dropped_upstream_fails_the_response() {
    let (fake, gw) = setup().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").drop_after(2));
    let a = post(
        &gw,
        &json!({"model": "qwen-plus", "input": "Hi", "stream": true}),
    )
    .await;
    let resp = a.checked();
    assert_eq!(resp["status"], "failed");
    assert_eq!(resp["error"]["code"], "server_error");
    assert_eq!(resp["output"][0]["status"], "incomplete");
}

#[tokio::test]
async fn a_length_finish_is_incomplete_max_output_tokens() {
    let (fake, gw) = setup().await;
    fake.push(Reply::sse(
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/golden/responses-stream-length/dashscope_stream.sse",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    ));
    let a = post(
        &gw,
        &json!({"model": "qwen-plus", "input": "story", "stream": true, "max_output_tokens": 3}),
    )
    .await;
    let resp = a.checked();
    assert_eq!(resp["status"], "incomplete");
    assert_eq!(resp["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(resp["max_output_tokens"], 3);
    assert_eq!(fake.requests()[0].body["parameters"]["max_tokens"], 3);
}

#[tokio::test]
async fn bad_bodies_are_400s_naming_the_field_and_nothing_goes_upstream() {
    let (fake, gw) = setup().await;
    let cases = [
        (
            json!({"model": "qwen-plus", "input": "x", "previous_response_id": "resp_1"}),
            "previous_response_id",
            "previous_response_not_found",
        ),
        (
            json!({"model": "qwen-plus", "input": "x", "background": true}),
            "background",
            "unsupported_parameter",
        ),
        (
            json!({"model": "qwen-plus", "input": "x", "tools": [{"type": "computer_use_preview"}]}),
            "tools[0].type",
            "unsupported_parameter",
        ),
        (
            json!({"model": "qwen-plus", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0]",
            "item_not_found",
        ),
        (
            json!({"model": "qwen-plus", "input": 5}),
            "input",
            "invalid_type",
        ),
    ];
    for (body, param, code) in cases {
        let a = post(&gw, &body).await;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        let e = a.json();
        assert_eq!(e["error"]["param"], param, "{}", a.text);
        assert_eq!(e["error"]["code"], code, "{}", a.text);
        assert_eq!(e["error"]["type"], "invalid_request_error");
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn codex_shaped_requests_work_and_dropped_tools_are_warned_about() {
    let (fake, gw) = setup().await;
    fake.push(Reply::sse_fixture("tool-calls-stream.sse"));
    let body: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/golden/responses-req-codex/responses_request.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let a = post(&gw, &body).await;
    let resp = a.checked();
    assert_eq!(resp["output"].as_array().unwrap().len(), 1);
    let w = a.header("x-dashbridge-warning").unwrap();
    assert!(w.contains("image_generation"), "{w}");
    assert!(w.contains("external_web_access"), "{w}");
    let sent = &fake.requests()[0].body;
    let names: Vec<&str> = sent["parameters"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["exec_command", "apply_patch", "multi_agent_v1__spawn_agent"]
    );
    assert!(sent["parameters"].get("enable_search").is_none());
    assert_eq!(sent["input"]["messages"][0]["role"], "system");
}

#[tokio::test]
async fn requests_are_counted_under_the_responses_route() {
    let (fake, gw) = setup().await;
    // The recorder is process-global and installed by the first scrape.
    reqwest::get(gw.url("/metrics")).await.unwrap();
    fake.push(Reply::json_fixture("text-nonstream.json"));
    let a = post(&gw, &json!({"model": "qwen-plus", "input": "Hi"})).await;
    assert_eq!(a.status, 200);
    let metrics = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("route=\"responses\"") && l.contains("status=\"200\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn unknown_stored_responses_are_json_404s() {
    let (_fake, gw) = setup().await;
    let resp = reqwest::get(gw.url("/v1/responses/resp_123"))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(
        e["error"]["message"],
        "Response with id 'resp_123' not found."
    );
    assert_eq!(e["error"]["code"], "not_found");
}
