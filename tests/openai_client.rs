//! The OpenAI contract, checked with a real client: `async-openai` 0.43 pointed at the gateway,
//! the gateway pointed at the fake DashScope (`tests/common/fake.rs`, auto mode: a
//! `scenario:NAME` marker in the last user message picks the recorded answer).
//!
//! async-openai's response types are strict, so a successful `create` is itself a check of
//! our response shape. Each test also asserts exact values (text, ids, usage) and, where it
//! matters, what the fake received (path, headers, native body).
//!
//! Two facts about async-openai 0.43 the assertions below depend on:
//! - its default HTTP stack retries 429 and 5xx three times (honouring `Retry-After`), so the
//!   upstream sees four requests for one failing call (the gateway itself runs with
//!   `retries = 0`), and a 5xx body is not parsed: the `ApiError` message is the raw body;
//! - with the `byot` feature on, `create_stream` does not set `stream: true` itself, so the
//!   typed streaming requests here set it.
//!
//! The header checks at the end use plain reqwest.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not the helpers below.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionNamedToolChoice, ChatCompletionRequestMessage,
    ChatCompletionRequestMessageContentPartImage, ChatCompletionRequestMessageContentPartText,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionRequestUserMessageContentPart,
    ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionToolChoiceOption,
    ChatCompletionTools, CompletionUsage, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse, FinishReason, FunctionName, FunctionObject,
    PromptTokensDetails, Role,
};
use common::fake::{FakeDashScope, MM_PATH, Recorded, TEXT_PATH};
use common::gateway::{self, Gateway, SERVER_KEY};
use futures_util::StreamExt;
use serde_json::{Value, json};

// ---- harness ----------------------------------------------------------------------------------

const CLIENT_KEY: &str = "sk-client";

/// Every HTTP call in this file is bounded: a hung gateway fails the test, it does not hang it.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn client(gw: &Gateway) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://{}/v1", gw.addr))
            .with_api_key(CLIENT_KEY),
    )
    .with_http_client(http())
}

/// A fake upstream, a gateway in front of it (baseline config) and a client.
async fn setup() -> (FakeDashScope, Gateway, Client<OpenAIConfig>) {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start_default(&fake.base_url).await;
    let c = client(&gw);
    (fake, gw, c)
}

fn user(text: &str) -> ChatCompletionRequestUserMessage {
    ChatCompletionRequestUserMessage::from(text)
}

fn text_request(model: &str, text: &str, stream: bool) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages(vec![
            ChatCompletionRequestMessage::from(ChatCompletionRequestSystemMessage::from(
                "You are a helpful assistant.",
            )),
            ChatCompletionRequestMessage::from(user(text)),
        ])
        .stream(stream)
        .build()
        .unwrap()
}

fn weather_tools() -> Vec<ChatCompletionTools> {
    vec![
        ChatCompletionTools::Function(ChatCompletionTool {
            function: FunctionObject {
                name: "get_current_time".into(),
                description: Some("Useful when you want to know the current time.".into()),
                parameters: Some(json!({})),
                strict: None,
            },
        }),
        ChatCompletionTools::Function(ChatCompletionTool {
            function: FunctionObject {
                name: "get_current_weather".into(),
                description: Some(
                    "Useful when you want to query the weather of a given city.".into(),
                ),
                parameters: Some(json!({
                    "type": "object",
                    "properties": {"location": {"type": "string", "description": "A city or district, e.g. Beijing, Hangzhou."}},
                    "required": ["location"]
                })),
                strict: None,
            },
        }),
    ]
}

fn weather_tools_json() -> Value {
    serde_json::to_value(weather_tools()).unwrap()
}

/// Every item of a stream, in order, until it ends.
async fn drain<T>(
    mut s: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, OpenAIError>> + Send>>,
) -> Vec<Result<T, OpenAIError>> {
    let mut out = Vec::new();
    while let Some(item) = tokio::time::timeout(std::time::Duration::from_secs(10), s.next())
        .await
        .expect("the stream neither yielded nor ended within 10s")
    {
        out.push(item);
    }
    out
}

async fn stream_ok(
    c: &Client<OpenAIConfig>,
    req: CreateChatCompletionRequest,
) -> Vec<CreateChatCompletionStreamResponse> {
    let s = c.chat().create_stream(req).await.unwrap();
    drain(s)
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("stream item failed: {e}")))
        .collect()
}

fn text_of(chunks: &[CreateChatCompletionStreamResponse], index: u32) -> String {
    chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter(|ch| ch.index == index)
        .filter_map(|ch| ch.delta.content.as_deref())
        .collect()
}

fn finish_reasons(chunks: &[CreateChatCompletionStreamResponse]) -> Vec<(u32, FinishReason)> {
    chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|ch| ch.finish_reason.map(|f| (ch.index, f)))
        .collect()
}

fn only_request(fake: &FakeDashScope) -> Recorded {
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1, "expected exactly one upstream request");
    reqs.into_iter().next().unwrap()
}

fn header<'a>(r: &'a Recorded, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

fn api_error(e: OpenAIError) -> async_openai::error::ApiErrorResponse {
    match e {
        OpenAIError::ApiError(a) => a,
        other => panic!("expected OpenAIError::ApiError, got {other:?}"),
    }
}

// ---- completions ------------------------------------------------------------------------------

#[tokio::test]
async fn nonstream_text() {
    let (fake, _gw, c) = setup().await;
    let resp = c
        .chat()
        .create(text_request("qwen-plus", "Who are you?", false))
        .await
        .unwrap();
    assert_eq!(resp.id, "chatcmpl-09dceb20-ae2e-999b-85f9-3c1d3b6ba1a4");
    assert_eq!(resp.object, "chat.completion");
    assert_eq!(resp.model, "qwen-plus");
    assert_eq!(resp.choices.len(), 1);
    let choice = &resp.choices[0];
    assert_eq!(choice.index, 0);
    assert_eq!(choice.message.role, Role::Assistant);
    assert_eq!(
        choice.message.content.as_deref(),
        Some(
            "I am Qwen, a large-scale language model developed by Alibaba Cloud. I can answer questions, write text, reason and write code. How can I help you?"
        )
    );
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        resp.usage,
        Some(CompletionUsage {
            prompt_tokens: 22,
            completion_tokens: 29,
            total_tokens: 51,
            prompt_tokens_details: None,
            completion_tokens_details: None,
        })
    );

    let r = only_request(&fake);
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, TEXT_PATH);
    assert_eq!(header(&r, "x-dashscope-sse"), None);
    assert_eq!(r.body["model"], "qwen-plus");
    assert_eq!(
        r.body["input"]["messages"],
        json!([
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Who are you?"}
        ])
    );
    assert_eq!(r.body["parameters"], json!({"result_format": "message"}));
}

#[tokio::test]
async fn stream_text() {
    let (fake, _gw, c) = setup().await;
    let chunks = stream_ok(&c, text_request("qwen-plus", "Who are you?", true)).await;
    assert_eq!(
        text_of(&chunks, 0),
        "I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?"
    );
    assert_eq!(finish_reasons(&chunks), vec![(0, FinishReason::Stop)]);
    assert!(
        chunks
            .iter()
            .all(|c| c.id == "chatcmpl-d30a9914-ac97-9102-b746-ce0cb35e3fa2"
                && c.model == "qwen-plus"
                && c.object == "chat.completion.chunk"
                && c.usage.is_none())
    );
    let roles: Vec<usize> = chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.choices.iter().any(|ch| ch.delta.role.is_some()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(roles, vec![0], "role only on the first chunk");
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    // 7 content frames and the finish frame, nothing else (no empty deltas).
    assert_eq!(chunks.len(), 8);

    let r = only_request(&fake);
    assert_eq!(r.path, TEXT_PATH);
    assert_eq!(header(&r, "x-dashscope-sse"), Some("enable"));
    assert_eq!(header(&r, "accept"), Some("text/event-stream"));
    assert_eq!(r.body["parameters"]["incremental_output"], true);
}

#[tokio::test]
async fn stream_with_include_usage_ends_with_the_usage_chunk() {
    let (_fake, _gw, c) = setup().await;
    let mut req = text_request("qwen-plus", "Who are you?", true);
    req.stream_options = Some(ChatCompletionStreamOptions {
        include_usage: Some(true),
        include_obfuscation: None,
    });
    let chunks = stream_ok(&c, req).await;
    let (last, rest) = chunks.split_last().unwrap();
    assert!(last.choices.is_empty());
    assert_eq!(
        last.usage,
        Some(CompletionUsage {
            prompt_tokens: 22,
            completion_tokens: 18,
            total_tokens: 40,
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: Some(0),
                ..Default::default()
            }),
            completion_tokens_details: None,
        })
    );
    assert!(rest.iter().all(|c| c.usage.is_none()));
    assert_eq!(
        text_of(rest, 0),
        "I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?"
    );
}

#[tokio::test]
async fn tools_nonstream() {
    let (fake, _gw, c) = setup().await;
    let req = CreateChatCompletionRequestArgs::default()
        .model("qwen-plus")
        .messages(vec![ChatCompletionRequestMessage::from(user(
            "What is the weather like in Beijing and Shanghai? scenario:tools",
        ))])
        .tools(weather_tools())
        .tool_choice(ChatCompletionToolChoiceOption::Function(
            ChatCompletionNamedToolChoice {
                function: FunctionName {
                    name: "get_current_weather".into(),
                },
            },
        ))
        .parallel_tool_calls(true)
        .build()
        .unwrap();
    let resp = c.chat().create(req).await.unwrap();
    assert_eq!(resp.id, "chatcmpl-7e1d2c9a-5b8f-9e31-a4c2-0d6f4b2e8a17");
    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(choice.message.content, None);
    let calls: Vec<(String, String, String)> = choice
        .message
        .tool_calls
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| match t {
            ChatCompletionMessageToolCalls::Function(f) => (
                f.id.clone(),
                f.function.name.clone(),
                f.function.arguments.clone(),
            ),
            other => panic!("unexpected tool call {other:?}"),
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            (
                "call_c2d8a3a24c4d4929b26ae2".to_owned(),
                "get_current_weather".to_owned(),
                "{\"location\": \"Beijing\"}".to_owned()
            ),
            (
                "call_dc7f2f678f1944da9194cd".to_owned(),
                "get_current_weather".to_owned(),
                "{\"location\": \"Shanghai\"}".to_owned()
            ),
        ]
    );
    assert_eq!(resp.usage.as_ref().unwrap().total_tokens, 312);

    let r = only_request(&fake);
    assert_eq!(r.body["parameters"]["tools"], weather_tools_json());
    assert_eq!(
        r.body["parameters"]["tool_choice"],
        json!({"type": "function", "function": {"name": "get_current_weather"}})
    );
    assert_eq!(r.body["parameters"]["parallel_tool_calls"], true);
}

#[tokio::test]
async fn tools_stream_accumulates_exact_arguments() {
    let (_fake, _gw, c) = setup().await;
    let s = c
        .chat()
        .create_stream_byot::<_, CreateChatCompletionStreamResponse>(json!({
            "model": "qwen-plus",
            "stream": true,
            "messages": [{"role": "user", "content": "What is the weather like in Hangzhou? scenario:tools"}],
            "tools": weather_tools_json(),
        }))
        .await
        .unwrap();
    let chunks: Vec<CreateChatCompletionStreamResponse> =
        drain(s).await.into_iter().map(Result::unwrap).collect();
    let deltas: Vec<_> = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|ch| ch.delta.tool_calls.as_ref())
        .flatten()
        .collect();
    assert_eq!(deltas.len(), 3);
    assert!(deltas.iter().all(|d| d.index == 0));
    assert_eq!(deltas[0].id.as_deref(), Some("call_8f08d2b0fc0c4d8fab7123"));
    assert_eq!(
        deltas[0].function.as_ref().unwrap().name.as_deref(),
        Some("get_current_weather")
    );
    assert!(
        deltas[1..]
            .iter()
            .all(|d| d.id.is_none() && d.function.as_ref().unwrap().name.is_none())
    );
    let args: String = deltas
        .iter()
        .filter_map(|d| d.function.as_ref()?.arguments.as_deref())
        .collect();
    assert_eq!(args, "{\"location\": \"Hangzhou\"}");
    assert_eq!(finish_reasons(&chunks), vec![(0, FinishReason::ToolCalls)]);
}

#[tokio::test]
async fn tool_result_follow_up_reaches_upstream_intact() {
    let (fake, _gw, c) = setup().await;
    let resp: CreateChatCompletionResponse = c
        .chat()
        .create_byot(json!({
            "model": "qwen-plus",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the weather like in Beijing and Shanghai? scenario:tool-result"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_c2d8a3a24c4d4929b26ae2", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Beijing\"}"}},
                    {"id": "call_dc7f2f678f1944da9194cd", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Shanghai\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_c2d8a3a24c4d4929b26ae2", "name": "get_current_weather", "content": "Beijing is sunny today, 25°C."},
                {"role": "tool", "tool_call_id": "call_dc7f2f678f1944da9194cd", "name": "get_current_weather", "content": "Shanghai is cloudy today, 22°C."}
            ],
            "tools": weather_tools_json(),
            "parallel_tool_calls": true
        }))
        .await
        .unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("Beijing is sunny today at 25°C, while Shanghai is cloudy at 22°C.")
    );
    let usage = resp.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (368, 21, 389)
    );
    assert_eq!(
        usage.prompt_tokens_details.unwrap().cached_tokens,
        Some(256)
    );

    let r = only_request(&fake);
    assert_eq!(r.body["parameters"]["tools"], weather_tools_json());
    assert_eq!(r.body["parameters"]["parallel_tool_calls"], true);
    let msgs = &r.body["input"]["messages"];
    assert_eq!(
        msgs[2],
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_c2d8a3a24c4d4929b26ae2", "type": "function", "index": 0, "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Beijing\"}"}},
            {"id": "call_dc7f2f678f1944da9194cd", "type": "function", "index": 1, "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Shanghai\"}"}}
        ]})
    );
    assert_eq!(
        msgs[3],
        json!({"role": "tool", "content": "Beijing is sunny today, 25°C.", "tool_call_id": "call_c2d8a3a24c4d4929b26ae2", "name": "get_current_weather"})
    );
    assert_eq!(
        msgs[4],
        json!({"role": "tool", "content": "Shanghai is cloudy today, 22°C.", "tool_call_id": "call_dc7f2f678f1944da9194cd", "name": "get_current_weather"})
    );
}

#[tokio::test]
async fn thinking_nonstream_is_streamed_upstream_and_aggregated() {
    let (fake, _gw, c) = setup().await;
    let resp: Value = c
        .chat()
        .create_byot(json!({
            "model": "qwen-plus",
            "messages": [{"role": "user", "content": "Who are you? scenario:reasoning"}],
            "enable_thinking": true
        }))
        .await
        .unwrap();
    assert_eq!(resp["id"], "chatcmpl-2ce91085-3602-9c32-9c8b-fe3d583a2c38");
    assert_eq!(resp["object"], "chat.completion");
    assert_eq!(resp["choices"].as_array().unwrap().len(), 1);
    let msg = &resp["choices"][0]["message"];
    assert_eq!(msg["role"], "assistant");
    assert_eq!(
        msg["reasoning_content"],
        "Okay, the user asks who I am. I should introduce myself briefly."
    );
    assert_eq!(
        msg["content"],
        "Hello! I am Qwen, a large language model by Alibaba Cloud."
    );
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        resp["usage"],
        json!({
            "prompt_tokens": 11,
            "completion_tokens": 31,
            "total_tokens": 42,
            "completion_tokens_details": {"reasoning_tokens": 15}
        })
    );
    // The same body is a valid strict completion too.
    let typed: CreateChatCompletionResponse = serde_json::from_value(resp).unwrap();
    assert_eq!(
        typed
            .usage
            .unwrap()
            .completion_tokens_details
            .unwrap()
            .reasoning_tokens,
        Some(15)
    );

    let r = only_request(&fake);
    assert_eq!(header(&r, "x-dashscope-sse"), Some("enable"));
    assert_eq!(r.body["parameters"]["incremental_output"], true);
    assert_eq!(r.body["parameters"]["enable_thinking"], true);
}

#[tokio::test]
async fn multimodal_request_uses_the_multimodal_path() {
    let (fake, _gw, c) = setup().await;
    let data_url = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let parts = vec![
        ChatCompletionRequestUserMessageContentPart::ImageUrl(
            ChatCompletionRequestMessageContentPartImage::from(
                async_openai::types::chat::ImageUrl::from(
                    "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20241022/emyrja/dog_and_girl.jpeg",
                ),
            ),
        ),
        ChatCompletionRequestUserMessageContentPart::ImageUrl(
            ChatCompletionRequestMessageContentPartImage::from(
                async_openai::types::chat::ImageUrl::from(data_url),
            ),
        ),
        ChatCompletionRequestUserMessageContentPart::Text(
            ChatCompletionRequestMessageContentPartText::from("What is shown in these two images?"),
        ),
    ];
    let req = CreateChatCompletionRequestArgs::default()
        .model("qwen3-vl-plus")
        .messages(vec![ChatCompletionRequestMessage::from(
            ChatCompletionRequestUserMessage::from(ChatCompletionRequestUserMessageContent::Array(
                parts,
            )),
        )])
        .build()
        .unwrap();
    let resp = c.chat().create(req).await.unwrap();
    assert_eq!(resp.id, "chatcmpl-c741328c-23dc-9286-bfa7-626a4092ca09");
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some(
            "The first image shows a woman and a Labrador on a beach at sunset, shaking paws; the second image is a single white pixel."
        )
    );
    let usage = resp.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (1286, 30, 1316)
    );

    let r = only_request(&fake);
    assert_eq!(r.path, MM_PATH);
    assert_eq!(
        r.body["input"]["messages"],
        json!([{"role": "user", "content": [
            {"image": "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20241022/emyrja/dog_and_girl.jpeg"},
            {"image": data_url},
            {"text": "What is shown in these two images?"}
        ]}])
    );
}

#[tokio::test]
async fn n2_nonstream_has_one_choice_per_index() {
    let (fake, _gw, c) = setup().await;
    let mut req = text_request("qwen-plus", "Greet me. scenario:n2", false);
    req.n = Some(2);
    let resp = c.chat().create(req).await.unwrap();
    let choices: Vec<(u32, Option<&str>, Option<FinishReason>)> = resp
        .choices
        .iter()
        .map(|ch| (ch.index, ch.message.content.as_deref(), ch.finish_reason))
        .collect();
    assert_eq!(
        choices,
        vec![
            (0, Some("Hello there, friend."), Some(FinishReason::Stop)),
            (1, Some("Hi! Nice to meet you."), Some(FinishReason::Stop)),
        ]
    );
    let u = resp.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (12, 11, 23)
    );
    assert_eq!(only_request(&fake).body["parameters"]["n"], 2);
}

#[tokio::test]
async fn n2_stream_keeps_choices_apart() {
    let (_fake, _gw, c) = setup().await;
    let mut req = text_request("qwen-plus", "Greet me. scenario:n2", true);
    req.n = Some(2);
    req.stream_options = Some(ChatCompletionStreamOptions {
        include_usage: Some(true),
        include_obfuscation: None,
    });
    let chunks = stream_ok(&c, req).await;
    assert_eq!(text_of(&chunks, 0), "Hello there, friend.");
    assert_eq!(text_of(&chunks, 1), "Hi! Nice to meet you.");
    let mut finishes = finish_reasons(&chunks);
    finishes.sort_by_key(|(i, _)| *i);
    assert_eq!(
        finishes,
        vec![(0, FinishReason::Stop), (1, FinishReason::Stop)]
    );
    for index in [0, 1] {
        let roles = chunks
            .iter()
            .flat_map(|c| c.choices.iter())
            .filter(|ch| ch.index == index && ch.delta.role.is_some())
            .count();
        assert_eq!(roles, 1, "choice {index}: role once");
    }
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    let u = last.usage.as_ref().unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (12, 11, 23)
    );
}

#[tokio::test]
async fn logprobs_nonstream() {
    let (fake, _gw, c) = setup().await;
    let mut req = text_request("qwen-plus", "Say hi. scenario:logprobs", false);
    req.logprobs = Some(true);
    req.top_logprobs = Some(2);
    let resp = c.chat().create(req).await.unwrap();
    let choice = &resp.choices[0];
    assert_eq!(choice.message.content.as_deref(), Some("Hi there! How"));
    assert_eq!(choice.finish_reason, Some(FinishReason::Length));
    let lp = choice.logprobs.as_ref().unwrap();
    assert_eq!(lp.refusal, None);
    let content = lp.content.as_ref().unwrap();
    let tokens: Vec<(&str, f32)> = content
        .iter()
        .map(|t| (t.token.as_str(), t.logprob))
        .collect();
    assert_eq!(
        tokens,
        vec![
            ("Hi", -0.0213),
            (" there", -0.4531),
            ("!", -0.0006),
            (" How", -0.8817)
        ]
    );
    assert_eq!(content[0].bytes, Some(vec![72, 105]));
    let top: Vec<(&str, f32)> = content[0]
        .top_logprobs
        .iter()
        .map(|t| (t.token.as_str(), t.logprob))
        .collect();
    assert_eq!(top, vec![("Hi", -0.0213), ("Hello", -3.8942)]);
    let p = &only_request(&fake).body["parameters"];
    assert_eq!(
        (&p["logprobs"], &p["top_logprobs"]),
        (&json!(true), &json!(2))
    );
}

#[tokio::test]
async fn models_list() {
    let (fake, _gw, c) = setup().await;
    let list = c.models().list().await.unwrap();
    assert_eq!(list.object, "list");
    let ids: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
    let mut expected = dashbridge::config::DEFAULT_LISTED_MODELS.to_vec();
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(
        list.data.iter().all(|m| m.object == "model"
            && m.owned_by == "dashscope"
            && m.created == 1_700_000_000)
    );
    assert_eq!(fake.request_count(), 0, "listing models calls nobody");
}

// ---- errors -----------------------------------------------------------------------------------

#[tokio::test]
async fn error_401_invalid_api_key() {
    let (fake, _gw, c) = setup().await;
    let e = c
        .chat()
        .create(text_request("qwen-plus", "hi scenario:error-401", false))
        .await
        .unwrap_err();
    let a = api_error(e);
    assert_eq!(a.status_code.as_u16(), 401);
    assert_eq!(a.api_error.r#type.as_deref(), Some("invalid_request_error"));
    assert_eq!(a.api_error.code.as_deref(), Some("invalid_api_key"));
    assert_eq!(a.api_error.param, None);
    assert_eq!(
        a.api_error.message,
        "Invalid API-key provided. (DashScope code InvalidApiKey, request_id 649b2bbc-c541-9e16-9845-db7fe4fe5b2d)"
    );
    assert_eq!(fake.request_count(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn error_429_rate_limited() {
    let (fake, _gw, c) = setup().await;
    let e = c
        .chat()
        .create(text_request("qwen-plus", "hi scenario:error-429", false))
        .await
        .unwrap_err();
    let a = api_error(e);
    assert_eq!(a.status_code.as_u16(), 429);
    assert_eq!(a.api_error.r#type.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(a.api_error.code.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(
        a.api_error.message,
        "Requests rate limit exceeded, please try again later. (DashScope code Throttling.RateQuota, request_id 0cbe6006-faec-9854-bf8b-c906d75c3bd8)"
    );
    // The gateway (retries = 0) forwards DashScope's `Retry-After: 0`; async-openai retries
    // a 429 three times after it, so the upstream saw four calls.
    assert_eq!(fake.request_count(), 4);
}

#[tokio::test]
async fn error_400_data_inspection_is_content_filter() {
    let (_fake, _gw, c) = setup().await;
    let a = api_error(
        c.chat()
            .create(text_request("qwen-plus", "hi scenario:error-400", false))
            .await
            .unwrap_err(),
    );
    assert_eq!(a.status_code.as_u16(), 400);
    assert_eq!(a.api_error.r#type.as_deref(), Some("invalid_request_error"));
    assert_eq!(a.api_error.code.as_deref(), Some("content_filter"));
    assert!(
        a.api_error.message.starts_with(
            "Input data may contain inappropriate content. (DashScope code DataInspectionFailed"
        ),
        "{}",
        a.api_error.message
    );
}

#[tokio::test]
async fn error_model_not_exist_is_404_model_not_found() {
    let (_fake, _gw, c) = setup().await;
    let a = api_error(
        c.chat()
            .create(text_request(
                "qwen-nope",
                "hi scenario:model-not-exist",
                false,
            ))
            .await
            .unwrap_err(),
    );
    assert_eq!(a.status_code.as_u16(), 404);
    assert_eq!(a.api_error.r#type.as_deref(), Some("invalid_request_error"));
    assert_eq!(a.api_error.code.as_deref(), Some("model_not_found"));
}

#[tokio::test]
async fn error_500_becomes_502() {
    let (fake, _gw, c) = setup().await;
    let a = api_error(
        c.chat()
            .create(text_request("qwen-plus", "hi scenario:error-500", false))
            .await
            .unwrap_err(),
    );
    assert_eq!(a.status_code.as_u16(), 502);
    // async-openai does not parse 5xx bodies: the message is our whole JSON body.
    assert_eq!(a.api_error.r#type, None);
    let body: Value = serde_json::from_str(&a.api_error.message).unwrap();
    assert_eq!(
        body,
        json!({"error": {
            "message": "upstream error: An internal error has occured, please try again later or contact service support. (DashScope code InternalError, request_id e5d4c3b2-a1f0-9e8d-7c6b-5a4f3e2d1c0b)",
            "type": "server_error",
            "param": null,
            "code": "InternalError"
        }})
    );
    assert_eq!(
        fake.request_count(),
        4,
        "async-openai retried the 502 three times"
    );
}

/// Pinned: after the gateway's in-band error event async-openai yields one `Err` — the event
/// is not a chunk, so it is a `JSONDeserialize` error carrying the event's JSON — and the
/// stream ends (no `[DONE]` was sent). The stream does not end silently.
#[tokio::test]
async fn midstream_error_surfaces_as_an_err_item() {
    let (_fake, _gw, c) = setup().await;
    let s = c
        .chat()
        .create_stream(text_request(
            "qwen-plus",
            "Tell me a story. scenario:midstream-error",
            true,
        ))
        .await
        .unwrap();
    let items = drain(s).await;
    assert_eq!(items.len(), 3, "two chunks, then the error");
    let text: String = items[..2]
        .iter()
        .map(|i| {
            let c = i.as_ref().unwrap();
            c.choices[0].delta.content.clone().unwrap_or_default()
        })
        .collect();
    assert_eq!(text, "Here is the story");
    let payload = match &items[2] {
        Err(OpenAIError::JSONDeserialize(_, content)) => content.clone(),
        other => panic!("expected a JSONDeserialize error item, got {other:?}"),
    };
    let v: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(
        v,
        json!({"error": {
            "message": "Output data may contain inappropriate content. (DashScope code DataInspectionFailed, request_id 9d8c7b6a-5f4e-93d2-a1b0-c9d8e7f6a5b4)",
            "type": "invalid_request_error",
            "param": null,
            "code": "content_filter"
        }})
    );
}

// ---- headers and routing (plain reqwest) --------------------------------------------------------

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .unwrap()
}

async fn post_chat(gw: &Gateway, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut req = http()
        .post(gw.chat_url())
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

fn chat_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

fn resp_header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn x_request_id_is_the_upstream_request_id() {
    let (_fake, gw, _c) = setup().await;
    let cases = [
        // (scenario, stream, status, upstream request_id)
        ("text", false, 200, "09dceb20-ae2e-999b-85f9-3c1d3b6ba1a4"),
        ("text", true, 200, "d30a9914-ac97-9102-b746-ce0cb35e3fa2"),
        (
            "error-401",
            false,
            401,
            "649b2bbc-c541-9e16-9845-db7fe4fe5b2d",
        ),
        (
            "error-400",
            false,
            400,
            "71689cfc-1f42-9949-86e8-9563b7f832b1",
        ),
        (
            "model-not-exist",
            true,
            404,
            "8c1e2f3a-4b5c-9d6e-a7f8-091a2b3c4d5e",
        ),
        (
            "error-500",
            false,
            502,
            "e5d4c3b2-a1f0-9e8d-7c6b-5a4f3e2d1c0b",
        ),
    ];
    for (scenario, stream, status, rid) in cases {
        let mut body = chat_body("qwen-plus", &format!("hi scenario:{scenario}"));
        body["stream"] = json!(stream);
        let r = post_chat(&gw, &body, Some(CLIENT_KEY)).await;
        assert_eq!(r.status().as_u16(), status, "{scenario} stream={stream}");
        assert_eq!(
            resp_header(&r, "x-request-id").as_deref(),
            Some(rid),
            "{scenario} stream={stream}"
        );
        let text = r.text().await.unwrap();
        if stream && status == 200 {
            assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        }
    }
}

#[tokio::test]
async fn the_server_key_replaces_the_client_key() {
    let (fake, gw, _c) = setup().await;
    let r = post_chat(&gw, &chat_body("qwen-plus", "hi"), Some(CLIENT_KEY)).await;
    assert_eq!(r.status(), 200);
    let up = only_request(&fake);
    let auth: Vec<&str> = up
        .headers
        .get_all("authorization")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(auth, vec![format!("Bearer {SERVER_KEY}").as_str()]);
    assert!(!format!("{:?}", up.headers).contains(CLIENT_KEY));
}

#[tokio::test]
async fn without_a_server_key_the_client_key_passes_through() {
    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.upstream.api_key = None;
    let gw = gateway::start(cfg).await;

    let r = post_chat(
        &gw,
        &chat_body("qwen-plus", "hi"),
        Some("sk-client-own-dashscope-key"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let up = only_request(&fake);
    assert_eq!(
        header(&up, "authorization"),
        Some("Bearer sk-client-own-dashscope-key")
    );

    // No key anywhere: refused before calling upstream.
    let r = post_chat(&gw, &chat_body("qwen-plus", "hi"), None).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_api_key");
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn workspace_header_iff_configured() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start_default(&fake.base_url).await;
    assert_eq!(
        post_chat(&gw, &chat_body("qwen-plus", "hi"), Some(CLIENT_KEY))
            .await
            .status(),
        200
    );
    assert_eq!(header(&only_request(&fake), "x-dashscope-workspace"), None);

    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.upstream.workspace = Some("ws-test-1234".into());
    let gw = gateway::start(cfg).await;
    assert_eq!(
        post_chat(&gw, &chat_body("qwen-plus", "hi"), Some(CLIENT_KEY))
            .await
            .status(),
        200
    );
    assert_eq!(
        header(&only_request(&fake), "x-dashscope-workspace"),
        Some("ws-test-1234")
    );
}

#[tokio::test]
async fn client_headers_are_not_forwarded() {
    let (fake, gw, _c) = setup().await;
    let r = http()
        .post(gw.chat_url())
        .bearer_auth(CLIENT_KEY)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .header("x-dashscope-sse", "enable")
        .header("x-custom-tracking", "abc")
        .header("x-dashscope-datainspection", "{\"input\":\"cip\"}")
        .body(chat_body("qwen-plus", "hi").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        resp_header(&r, "content-type").as_deref(),
        Some("application/json")
    );
    let up = only_request(&fake);
    let accept: Vec<&str> = up
        .headers
        .get_all("accept")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(accept, vec!["application/json"]);
    assert_eq!(header(&up, "x-dashscope-sse"), None);
    assert_eq!(header(&up, "x-custom-tracking"), None);
    // The one client header that is forwarded on purpose.
    assert_eq!(
        header(&up, "x-dashscope-datainspection"),
        Some("{\"input\":\"cip\"}")
    );
}

#[tokio::test]
async fn url_error_falls_back_to_the_other_endpoint_and_remembers() {
    let (fake, _gw, c) = setup().await;
    // A model the routing table does not know goes to the text path first; the fake binds
    // `mm-only-*` models to the multimodal path and answers "url error" on the other one.
    let first = c
        .chat()
        .create(text_request("mm-only-custom", "Describe the image.", false))
        .await
        .unwrap();
    assert_eq!(first.id, "chatcmpl-c741328c-23dc-9286-bfa7-626a4092ca09");
    assert_eq!(first.model, "mm-only-custom");
    let reqs = fake.requests();
    assert_eq!(
        reqs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        vec![TEXT_PATH, MM_PATH]
    );
    assert_eq!(
        reqs[0].body["input"]["messages"][1],
        json!({"role": "user", "content": "Describe the image."})
    );
    assert_eq!(
        reqs[1].body["input"]["messages"],
        json!([
            {"role": "system", "content": [{"text": "You are a helpful assistant."}]},
            {"role": "user", "content": [{"text": "Describe the image."}]}
        ])
    );

    // The gateway learned: the next request for the model goes straight to multimodal.
    let second = c
        .chat()
        .create(text_request("mm-only-custom", "Again.", false))
        .await
        .unwrap();
    assert_eq!(second.choices.len(), 1);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[2].path, MM_PATH);
    assert_eq!(
        reqs[2].body["input"]["messages"][1],
        json!({"role": "user", "content": [{"text": "Again."}]})
    );
}

#[tokio::test]
async fn url_error_in_the_first_stream_frame_falls_back_too() {
    let (fake, _gw, c) = setup().await;
    let chunks = stream_ok(&c, text_request("mm-only-streamer", "Solve this.", true)).await;
    // The multimodal path's answer (multimodal-stream.sse): reasoning, then three pieces.
    assert_eq!(
        text_of(&chunks, 0),
        "Cuboid: surface area 52 cm², volume 24 cm³. Cube: surface area 54 cm², volume 27 cm³."
    );
    assert_eq!(finish_reasons(&chunks), vec![(0, FinishReason::Stop)]);
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec![TEXT_PATH, MM_PATH]);
}

// ---- the learned endpoint memory (issue 9, item 15) ---------------------------------------------

fn paths(fake: &FakeDashScope) -> Vec<String> {
    fake.requests().into_iter().map(|r| r.path).collect()
}

/// Learn that `mm-only-custom` lives on the multimodal path (text first, "url error", then MM).
async fn learn_mm(gw: &Gateway, fake: &FakeDashScope) {
    let r = post_chat(gw, &chat_body("mm-only-custom", "Describe."), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(paths(fake), vec![TEXT_PATH, MM_PATH]);
}

#[tokio::test]
async fn an_explicit_endpoint_wins_over_what_was_learned() {
    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.models.insert(
        "pinned".into(),
        dashbridge::config::ModelEntry {
            target: Some("mm-only-custom".into()),
            endpoint: Some(dashbridge::dashscope::Endpoint::Text),
            ..Default::default()
        },
    );
    let gw = gateway::start(cfg).await;
    learn_mm(&gw, &fake).await;
    // The pinned alias still goes where its setting says first.
    let r = post_chat(&gw, &chat_body("pinned", "Again."), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(paths(&fake)[2], TEXT_PATH);
}

#[tokio::test]
async fn what_was_learned_is_per_upstream() {
    let fake = FakeDashScope::start().await;
    let other = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    let mut second = cfg.upstream.clone();
    second.base_url = other.base_url.clone();
    cfg.upstreams.insert("other".into(), second);
    cfg.models.insert(
        "mm-elsewhere".into(),
        dashbridge::config::ModelEntry {
            target: Some("mm-only-custom".into()),
            upstream: Some("other".into()),
            ..Default::default()
        },
    );
    let gw = gateway::start(cfg).await;
    learn_mm(&gw, &fake).await;
    let r = post_chat(&gw, &chat_body("mm-elsewhere", "Again."), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        paths(&other),
        vec![TEXT_PATH, MM_PATH],
        "the other upstream's route is learned on its own"
    );
}

#[tokio::test]
async fn a_switch_whose_call_then_fails_is_not_learned() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start(gateway::config(&fake.base_url)).await;
    fake.push(common::fake::Reply::error_fixture(
        400,
        "error-url-mismatch.json",
    ));
    fake.push(common::fake::Reply::json(
        500,
        r#"{"code":"InternalError","message":"internal","request_id":"r-500"}"#,
    ));
    let r = post_chat(&gw, &chat_body("mm-only-custom", "Describe."), None).await;
    assert_eq!(r.status(), 502);
    assert_eq!(paths(&fake), vec![TEXT_PATH, MM_PATH]);
    // Nothing was learned: the table's endpoint is tried first again.
    let r = post_chat(&gw, &chat_body("mm-only-custom", "Again."), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(paths(&fake)[2], TEXT_PATH);
}
