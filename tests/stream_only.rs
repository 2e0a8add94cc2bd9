//! Non-stream clients on models that only stream: routed by prefix, or learned when DashScope
//! answers a non-stream call with "enable_thinking must be set to false for non-streaming".
#![allow(clippy::unwrap_used)]

mod common;

use common::fake::{FakeDashScope, Reply};
use common::gateway;
use serde_json::{Value, json};

const ANSWER: &str = "Hello! I am Qwen, a large language model by Alibaba Cloud.";
const REASONING: &str = "Okay, the user asks who I am. I should introduce myself briefly.";

async fn post(client: &reqwest::Client, url: &str, model: &str) -> (u16, Value) {
    let resp = client
        .post(url)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "Who are you?"}]}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn is_stream(r: &common::fake::Recorded) -> bool {
    r.headers
        .get("x-dashscope-sse")
        .and_then(|v| v.to_str().ok())
        == Some("enable")
        && r.body["parameters"]["incremental_output"] == json!(true)
}

fn assert_aggregated(body: &Value) {
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], ANSWER);
    assert_eq!(
        body["choices"][0]["message"]["reasoning_content"],
        REASONING
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 11);
    assert_eq!(body["usage"]["completion_tokens"], 31);
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        15
    );
}

#[tokio::test]
async fn a_stream_only_prefix_is_streamed_upstream_for_a_non_stream_client() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start_default(&fake.base_url).await;
    fake.push(Reply::sse_fixture("reasoning-stream.sse"));
    let (status, body) = post(&reqwest::Client::new(), &gw.chat_url(), "qwq-plus").await;
    assert_eq!(status, 200, "{body}");
    assert_aggregated(&body);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert!(is_stream(&reqs[0]), "qwq-* must be called with streaming");
}

#[tokio::test]
async fn a_model_that_refuses_non_stream_is_retried_streamed_and_remembered() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start_default(&fake.base_url).await;
    let client = reqwest::Client::new();
    fake.push(Reply::error_fixture(400, "error-thinking-nonstream.json"));
    fake.push(Reply::sse_fixture("reasoning-stream.sse"));
    let (status, body) = post(&client, &gw.chat_url(), "my-thinking-model").await;
    assert_eq!(status, 200, "{body}");
    assert_aggregated(&body);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert!(!is_stream(&reqs[0]), "first try is a plain call");
    assert!(
        reqs[0].body["parameters"]
            .get("incremental_output")
            .is_none(),
        "a non-stream call sends no incremental_output"
    );
    assert!(is_stream(&reqs[1]), "the retry streams");

    // Learned: the next request for that model streams straight away.
    fake.push(Reply::sse_fixture("reasoning-stream.sse"));
    let (status, body) = post(&client, &gw.chat_url(), "my-thinking-model").await;
    assert_eq!(status, 200, "{body}");
    assert_aggregated(&body);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    assert!(is_stream(&reqs[2]));
}

#[tokio::test]
async fn a_stream_that_ends_early_is_a_502_for_a_non_stream_client() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start_default(&fake.base_url).await;
    fake.push(Reply::sse_fixture("reasoning-stream.sse").drop_after(3));
    let (status, body) = post(&reqwest::Client::new(), &gw.chat_url(), "qwq-plus").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["code"], "bad_upstream_response");
}

/// The 10 events of `reasoning-stream.sse`; the 10th carries the finish.
const REASONING_EVENTS: usize = 10;

#[tokio::test]
async fn a_break_after_the_finish_frame_still_answers_a_non_stream_client() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start_default(&fake.base_url).await;
    fake.push(Reply::sse_fixture("reasoning-stream.sse").drop_after(REASONING_EVENTS));
    let (status, body) = post(&reqwest::Client::new(), &gw.chat_url(), "qwq-plus").await;
    assert_eq!(status, 200, "{body}");
    assert_aggregated(&body);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn the_code_interpreter_is_streamed_upstream_and_aggregated() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start_default(&fake.base_url).await;
    fake.push(Reply::sse_fixture("reasoning-stream.sse"));
    let resp = reqwest::Client::new()
        .post(gw.chat_url())
        .json(&json!({
            "model": "qwen-plus",
            "messages": [{"role": "user", "content": "Compute 2**10."}],
            "enable_code_interpreter": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_aggregated(&body);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert!(
        is_stream(&reqs[0]),
        "DashScope runs the code interpreter only streamed"
    );
    assert_eq!(
        reqs[0].body["parameters"]["enable_code_interpreter"],
        json!(true)
    );
}
