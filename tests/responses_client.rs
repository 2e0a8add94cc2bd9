//! `/v1/responses` driven by a real, strict client: async-openai's Responses API types
//! (`Response`, every `ResponseStreamEvent`) must deserialize what the gateway sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::responses::{CreateResponseArgs, OutputItem, ResponseStreamEvent, Status};
use common::fake::{FakeDashScope, Reply};
use common::gateway::{self, Gateway};
use futures_util::StreamExt;
use serde_json::json;

const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn client(gw: &Gateway) -> Client<OpenAIConfig> {
    let http = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .unwrap();
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://{}/v1", gw.addr))
            .with_api_key("sk-client"),
    )
    .with_http_client(http)
}

async fn setup() -> (FakeDashScope, Gateway, Client<OpenAIConfig>) {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start_default(&fake.base_url).await;
    let c = client(&gw);
    (fake, gw, c)
}

#[tokio::test]
async fn create_returns_a_typed_response() {
    let (fake, _gw, c) = setup().await;
    fake.push(Reply::json_fixture("tool-calls-nonstream.json"));
    let req = CreateResponseArgs::default()
        .model("qwen-plus")
        .input("Weather in Hangzhou?")
        .build()
        .unwrap();
    let resp = c.responses().create(req).await.unwrap();
    assert_eq!(resp.status, Status::Completed);
    assert!(resp.id.starts_with("resp_"));
    assert_eq!(resp.model, "qwen-plus");
    let calls: Vec<_> = resp
        .output
        .iter()
        .filter_map(|o| match o {
            OutputItem::FunctionCall(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].name, "get_current_weather");
    let usage = resp.usage.unwrap();
    assert_eq!(usage.total_tokens, usage.input_tokens + usage.output_tokens);
}

#[tokio::test]
async fn every_streamed_event_is_a_known_typed_event() {
    for fixture in [
        "text-stream-incremental.sse",
        "reasoning-stream.sse",
        "reasoning-tool-calls-stream.sse",
        "error-in-stream.sse",
    ] {
        let (fake, _gw, c) = setup().await;
        fake.push(Reply::sse_fixture(fixture));
        let mut req = CreateResponseArgs::default()
            .model("qwen-plus")
            .input("Hi")
            .build()
            .unwrap();
        // With the `byot` feature the client leaves `stream` to the caller.
        req.stream = Some(true);
        let mut events = c.responses().create_stream(req).await.unwrap();
        let mut n = 0u64;
        let mut terminal = None;
        while let Some(ev) = events.next().await {
            let ev = ev.unwrap_or_else(|e| panic!("{fixture}: event {n} does not parse: {e}"));
            match &ev {
                ResponseStreamEvent::ResponseCompleted(e) => {
                    terminal = Some(e.response.status.clone())
                }
                ResponseStreamEvent::ResponseIncomplete(e) => {
                    terminal = Some(e.response.status.clone())
                }
                ResponseStreamEvent::ResponseFailed(e) => {
                    terminal = Some(e.response.status.clone())
                }
                _ => {}
            }
            n += 1;
        }
        let want = if fixture == "error-in-stream.sse" {
            Status::Incomplete
        } else {
            Status::Completed
        };
        assert_eq!(terminal, Some(want), "{fixture}");
        assert!(n > 3, "{fixture}: {n} events");
    }
}

#[tokio::test]
async fn the_apply_patch_call_comes_back_as_a_custom_tool_call() {
    let (fake, _gw, c) = setup().await;
    fake.push(Reply::sse(
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/golden/responses-stream-apply-patch/dashscope_stream.sse",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    ));
    let body = json!({
        "model": "qwen3-coder-plus", "input": "Add hello.txt", "stream": true,
        "tools": [
            {"type": "custom", "name": "apply_patch", "description": "Edit files."},
            {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
             "tools": [{"type": "function", "name": "spawn_agent", "parameters": {"type": "object", "properties": {}}}]}
        ]
    });
    let mut events = c
        .responses()
        .create_stream_byot::<_, ResponseStreamEvent>(body)
        .await
        .unwrap();
    let mut final_output = None;
    while let Some(ev) = events.next().await {
        if let ResponseStreamEvent::ResponseCompleted(e) = ev.unwrap() {
            final_output = Some(e.response.output);
        }
    }
    let output = final_output.unwrap();
    let OutputItem::CustomToolCall(call) = &output[1] else {
        panic!("{:?}", output[1]);
    };
    assert_eq!(call.name, "apply_patch");
    assert_eq!(
        call.input,
        "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch"
    );
    let OutputItem::FunctionCall(f) = &output[2] else {
        panic!("{:?}", output[2]);
    };
    assert_eq!(f.name, "spawn_agent");
}
