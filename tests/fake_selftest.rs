//! Self-tests of the fake DashScope upstream (`tests/common/fake.rs`).

// `allow-unwrap-in-tests` covers `#[test]` functions only, not the helpers below.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::fake::{
    CALL_TOOL_ANSWER_REQUEST_ID, CALL_TOOL_ID, CALL_TOOL_REQUEST_ID, FakeDashScope, MM_PATH, Reply,
    SCENARIOS, TEXT_PATH, ToolTurn, call_tool_turn, fixture, split_events,
};
use futures_util::StreamExt;
use serde_json::{Value, json};

fn body_for(model: &str, text: &str) -> Value {
    json!({
        "model": model,
        "input": {"messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": text}
        ]},
        "parameters": {"result_format": "message", "incremental_output": true}
    })
}

async fn post(
    client: &reqwest::Client,
    fake: &FakeDashScope,
    path: &str,
    body: &Value,
    stream: bool,
) -> reqwest::Response {
    let mut req = client
        .post(format!("{}{path}", fake.base_url))
        .bearer_auth("sk-test")
        .json(body);
    if stream {
        req = req
            .header("X-DashScope-SSE", "enable")
            .header("Accept", "text/event-stream");
    }
    req.send().await.unwrap()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// The JSON payloads of every `data:` line of an SSE body, with the event name.
fn sse_payloads(body: &str) -> Vec<(String, Value)> {
    split_events(body)
        .iter()
        .map(|e| {
            let text = std::str::from_utf8(e).unwrap();
            assert!(text.ends_with("\n\n"), "event without blank line: {text:?}");
            let event = text
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .unwrap()
                .to_owned();
            let data = text.lines().find_map(|l| l.strip_prefix("data:")).unwrap();
            (event, parse(data))
        })
        .collect()
}

#[tokio::test]
async fn auto_text_nonstream_returns_fixture() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    let resp = post(
        &client,
        &fake,
        TEXT_PATH,
        &body_for("qwen-plus", "Who are you?"),
        false,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert_eq!(
        header(&resp, "x-request-id"),
        "09dceb20-ae2e-999b-85f9-3c1d3b6ba1a4"
    );
    assert_eq!(header(&resp, "x-dashscope-call-gateway"), "true");
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got, parse(&fixture("text-nonstream.json")));

    // The multimodal path serves the multimodal fixture.
    let resp = post(
        &client,
        &fake,
        MM_PATH,
        &body_for("qwen3-vl-plus", "hi"),
        false,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got, parse(&fixture("multimodal-nonstream.json")));
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn auto_text_stream_returns_exact_fixture_bytes() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    let resp = post(
        &client,
        &fake,
        TEXT_PATH,
        &body_for("qwen-plus", "Who are you?"),
        true,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "content-type"),
        "text/event-stream;charset=UTF-8"
    );
    assert_eq!(
        header(&resp, "x-request-id"),
        "d30a9914-ac97-9102-b746-ce0cb35e3fa2"
    );
    assert_eq!(header(&resp, "x-dashscope-finished"), "");
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(
        &bytes[..],
        fixture("text-stream-incremental.sse").as_bytes()
    );
    assert_eq!(fake.streams_completed(), 1);
    assert_eq!(fake.streams_cancelled(), 0);
}

#[tokio::test]
async fn paced_stream_arrives_one_event_per_chunk() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    let delay = Duration::from_millis(30);
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").paced(delay));
    let started = Instant::now();
    let resp = post(
        &client,
        &fake,
        TEXT_PATH,
        &body_for("qwen-plus", "hi"),
        true,
    )
    .await;
    let mut stream = resp.bytes_stream();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.unwrap());
    }
    let expected = split_events(&fixture("text-stream-incremental.sse"));
    assert_eq!(expected.len(), 8);
    assert_eq!(chunks, expected, "each event must be its own chunk");
    assert!(started.elapsed() >= delay * 7);
    assert_eq!(fake.streams_completed(), 1);
}

#[tokio::test]
async fn wrong_path_gets_url_error_in_both_modes() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();

    // Text-only model on the multimodal path, non-stream: 400 JSON.
    let resp = post(&client, &fake, MM_PATH, &body_for("qwen-plus", "hi"), false).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        header(&resp, "x-request-id"),
        "b46f3d95-0c1e-9a27-8d4b-6e5f7a8b9c0d"
    );
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got, parse(&fixture("error-url-mismatch.json")));

    // Multimodal-only model on the text path, stream: 200 SSE with an error first frame.
    for model in [
        "qwen3-vl-plus",
        "qvq-max",
        "qwen3.6-plus",
        "my-mm-only-model",
    ] {
        let resp = post(&client, &fake, TEXT_PATH, &body_for(model, "hi"), true).await;
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(header(&resp, "x-dashscope-finished"), "true");
        let body = resp.text().await.unwrap();
        assert_eq!(body, fixture("error-in-stream-first-frame.sse"), "{model}");
    }
}

#[tokio::test]
async fn scripted_replies_are_fifo_then_auto_resumes() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    fake.push(Reply::error_fixture(429, "error-throttling.json").with_header("Retry-After", "0"));
    fake.push(Reply::json_fixture("tool-calls-nonstream.json"));
    fake.push(Reply::Raw {
        status: 502,
        content_type: "text/html".into(),
        body: "<html>Bad Gateway</html>".into(),
    });
    let body = body_for("qwen-plus", "hi");

    let resp = post(&client, &fake, TEXT_PATH, &body, false).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "0");
    assert_eq!(
        header(&resp, "x-request-id"),
        "0cbe6006-faec-9854-bf8b-c906d75c3bd8"
    );

    let resp = post(&client, &fake, TEXT_PATH, &body, false).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        fixture("tool-calls-nonstream.json")
    );

    let resp = post(&client, &fake, TEXT_PATH, &body, false).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(header(&resp, "content-type"), "text/html");
    assert_eq!(resp.text().await.unwrap(), "<html>Bad Gateway</html>");

    assert_eq!(fake.pending_replies(), 0);
    let resp = post(&client, &fake, TEXT_PATH, &body, false).await;
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got, parse(&fixture("text-nonstream.json")));
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_body() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    let body = body_for("qwen-plus", "hello");
    let resp = client
        .post(format!("{}{TEXT_PATH}", fake.base_url))
        .bearer_auth("sk-abc")
        .header("X-Custom", "yes")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .get(format!("{}/nope?x=1", fake.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "NotFound");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(fake.request_count(), 2);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, TEXT_PATH);
    assert_eq!(reqs[0].headers["authorization"], "Bearer sk-abc");
    assert_eq!(reqs[0].headers["x-custom"], "yes");
    assert_eq!(reqs[0].body, body);
    assert_eq!(reqs[0].raw, serde_json::to_vec(&body).unwrap());
    assert_eq!(reqs[1].method, "GET");
    assert_eq!(reqs[1].path, "/nope");
    assert_eq!(reqs[1].body, Value::Null);
}

#[tokio::test]
async fn drop_after_aborts_the_body_after_n_events() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").drop_after(3));
    let resp = post(
        &client,
        &fake,
        TEXT_PATH,
        &body_for("qwen-plus", "hi"),
        true,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .unwrap()
    {
        match chunk {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body must end with an error");
    let expected: Vec<u8> = split_events(&fixture("text-stream-incremental.sse"))[..3].concat();
    assert_eq!(got, expected);
    assert_eq!(fake.streams_completed(), 0);
}

#[tokio::test]
async fn auto_drop_scenario_aborts_after_three_events() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    let resp = post(
        &client,
        &fake,
        TEXT_PATH,
        &body_for("qwen-plus", "go scenario:drop"),
        true,
    )
    .await;
    let mut stream = resp.bytes_stream();
    let mut events = 0;
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => events += b.windows(2).filter(|w| w == b"\n\n").count(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed);
    assert_eq!(events, 3);
}

#[tokio::test]
async fn client_dropping_a_paced_stream_is_counted_as_cancelled() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").paced(Duration::from_millis(100)));
    let resp = post(
        &client,
        &fake,
        TEXT_PATH,
        &body_for("qwen-plus", "hi"),
        true,
    )
    .await;
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"id:1\n"));
    drop(stream);
    assert!(fake.wait_cancelled(1, Duration::from_millis(1500)).await);
    assert_eq!(fake.streams_completed(), 0);
}

#[tokio::test]
async fn client_dropping_a_stalled_stream_is_counted_as_cancelled() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").stall_after(2));
    let resp = post(
        &client,
        &fake,
        TEXT_PATH,
        &body_for("qwen-plus", "hi"),
        true,
    )
    .await;
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    // Two events arrive, then nothing.
    while got.windows(2).filter(|w| w == b"\n\n").count() < 2 {
        got.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    let next = tokio::time::timeout(Duration::from_millis(150), stream.next()).await;
    assert!(next.is_err(), "a stalled stream must not yield");
    drop(stream);
    assert!(fake.wait_cancelled(1, Duration::from_millis(1500)).await);
}

#[tokio::test]
async fn hang_never_sends_headers() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    fake.push(Reply::Hang);
    let result = client
        .post(format!("{}{TEXT_PATH}", fake.base_url))
        .json(&body_for("qwen-plus", "hi"))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
}

#[tokio::test]
async fn echo_scenario_returns_the_request_body() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    let body = body_for("qwen-plus", "scenario:echo please");
    let resp = post(&client, &fake, TEXT_PATH, &body, false).await;
    let got: Value = resp.json().await.unwrap();
    let content = got["output"]["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert_eq!(parse(content), body);

    let mm_body = json!({
        "model": "qwen3.5-plus",
        "input": {"messages": [{"role": "user", "content": [{"image": "https://x/y.png"}, {"text": "scenario:echo"}]}]}
    });
    let resp = post(&client, &fake, MM_PATH, &mm_body, true).await;
    let frames = sse_payloads(&resp.text().await.unwrap());
    assert_eq!(frames.len(), 2);
    let text = frames[0].1["output"]["choices"][0]["message"]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(parse(text), mm_body);
    assert_eq!(frames[1].1["output"]["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn unknown_scenario_is_a_400() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    let resp = post(
        &client,
        &fake,
        TEXT_PATH,
        &body_for("qwen-plus", "scenario:nope"),
        false,
    )
    .await;
    assert_eq!(resp.status(), 400);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["message"], "fake: unknown scenario nope");
}

/// Every auto scenario answers in both modes with a well-formed body (status, content type, and
/// for streams: SSE events whose data parse as JSON, ending with a finish reason or an error).
#[tokio::test]
async fn every_scenario_answers_well_formed() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    for &scenario in SCENARIOS {
        if scenario == "slow" || scenario == "drop" || scenario == "call-tool" {
            continue; // covered elsewhere / slow by design
        }
        let body = body_for("qwen-plus", &format!("please scenario:{scenario}"));
        let resp = post(&client, &fake, TEXT_PATH, &body, false).await;
        let status = resp.status().as_u16();
        let expected = match scenario {
            "error-401" => 401,
            "error-429" => 429,
            "error-500" => 500,
            "reasoning" | "reasoning-tools" | "error-400" | "model-not-exist" | "arrearage" => 400,
            _ => 200,
        };
        assert_eq!(status, expected, "{scenario} non-stream");
        assert_eq!(header(&resp, "content-type"), "application/json");
        let v: Value = resp.json().await.unwrap();
        if status == 200 {
            assert!(v["output"]["choices"].is_array(), "{scenario}: {v}");
        } else {
            assert!(v["code"].is_string(), "{scenario}: {v}");
        }

        let resp = post(&client, &fake, TEXT_PATH, &body, true).await;
        let status = resp.status().as_u16();
        let stream_expected = if matches!(scenario, "reasoning" | "reasoning-tools") {
            200
        } else {
            expected
        };
        assert_eq!(status, stream_expected, "{scenario} stream");
        if status != 200 {
            continue;
        }
        assert_eq!(
            header(&resp, "content-type"),
            "text/event-stream;charset=UTF-8"
        );
        assert!(!header(&resp, "x-request-id").is_empty(), "{scenario}");
        let frames = sse_payloads(&resp.text().await.unwrap());
        assert!(frames.len() >= 2, "{scenario}");
        let (last_event, last) = frames.last().unwrap();
        if scenario == "midstream-error" {
            assert_eq!(last_event, "error");
            assert_eq!(last["code"], "DataInspectionFailed");
            continue;
        }
        assert_eq!(last_event, "result", "{scenario}");
        let finish = last["output"]["choices"][0]["finish_reason"]
            .as_str()
            .unwrap();
        assert_ne!(finish, "null", "{scenario}");
        for (_, f) in &frames {
            assert!(f["request_id"].is_string(), "{scenario}");
        }
        match scenario {
            "stream20" => assert_eq!(frames.len(), 20),
            "logprobs" => {
                assert_eq!(frames.len(), 5);
                assert_eq!(finish, "length");
                let tokens: String = frames[..4]
                    .iter()
                    .map(|(_, f)| {
                        let c = &f["output"]["choices"][0];
                        assert_eq!(c["logprobs"]["content"].as_array().unwrap().len(), 1);
                        c["message"]["content"].as_str().unwrap().to_owned()
                    })
                    .collect();
                assert_eq!(tokens, "Hi there! How");
            }
            "search" => {
                for (_, f) in &frames {
                    assert!(f["output"]["search_info"]["search_results"].is_array());
                }
            }
            "tool-result" => {
                assert_eq!(frames.len(), 4);
                let text: String = frames
                    .iter()
                    .map(|(_, f)| {
                        f["output"]["choices"][0]["message"]["content"]
                            .as_str()
                            .unwrap()
                    })
                    .collect();
                assert_eq!(
                    text,
                    "Beijing is sunny today at 25°C, while Shanghai is cloudy at 22°C."
                );
            }
            "n2" => {
                let indices: Vec<u64> = frames
                    .iter()
                    .map(|(_, f)| f["output"]["choices"][0]["index"].as_u64().unwrap())
                    .collect();
                assert_eq!(indices, [0, 1, 0, 1, 0, 1, 0, 1]);
            }
            _ => {}
        }
    }
    assert_eq!(fake.streams_cancelled(), 0);
}

/// `scenario:call-tool NAME {JSON}`: a native tool call on the first turn (streamed in two
/// argument fragments, the second with the empty native id), the tool's output as the answer once
/// a `tool` message follows the user message; both paths, both modes.
#[tokio::test]
async fn call_tool_scenario_calls_then_answers_from_the_tool_message() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    let prompt =
        r#"Run it. scenario:call-tool exec_command {"cmd": "cat hello.txt", "tty": false} thanks"#;
    let args = r#"{"cmd":"cat hello.txt","tty":false}"#;
    for (model, path, mm) in [
        ("qwen-plus", TEXT_PATH, false),
        ("qwen3-vl-plus", MM_PATH, true),
    ] {
        let first = body_for(model, prompt);
        assert_eq!(
            call_tool_turn(&first).unwrap(),
            ToolTurn::Call {
                name: "exec_command".into(),
                arguments: args.into()
            }
        );
        let v: Value = post(&client, &fake, path, &first, false)
            .await
            .json()
            .await
            .unwrap();
        let choice = &v["output"]["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls", "{model}");
        assert_eq!(
            choice["message"]["content"],
            if mm { json!([]) } else { json!("") }
        );
        assert_eq!(
            choice["message"]["tool_calls"],
            json!([{"index": 0, "id": CALL_TOOL_ID, "type": "function",
                    "function": {"name": "exec_command", "arguments": args}}])
        );
        assert_eq!(v["request_id"], CALL_TOOL_REQUEST_ID);

        let resp = post(&client, &fake, path, &first, true).await;
        assert_eq!(header(&resp, "x-request-id"), CALL_TOOL_REQUEST_ID);
        let frames = sse_payloads(&resp.text().await.unwrap());
        assert_eq!(frames.len(), 2, "{model}");
        let calls: Vec<&Value> = frames
            .iter()
            .map(|(_, f)| &f["output"]["choices"][0]["message"]["tool_calls"][0])
            .collect();
        assert_eq!(calls[0]["id"], CALL_TOOL_ID);
        assert_eq!(calls[0]["function"]["name"], "exec_command");
        assert_eq!(calls[1]["id"], "");
        assert!(calls[1]["function"].get("name").is_none());
        let joined = format!(
            "{}{}",
            calls[0]["function"]["arguments"].as_str().unwrap(),
            calls[1]["function"]["arguments"].as_str().unwrap()
        );
        assert_eq!(joined, args);
        assert_eq!(frames[0].1["output"]["choices"][0]["finish_reason"], "null");
        assert_eq!(
            frames[1].1["output"]["choices"][0]["finish_reason"],
            "tool_calls"
        );

        // Second turn: the same user prompt, then the assistant call and the tool output.
        let tool_out = if mm {
            json!([{"text": "hi 42\n"}])
        } else {
            json!("hi 42\n")
        };
        let mut second = first.clone();
        let msgs = second["input"]["messages"].as_array_mut().unwrap();
        msgs.push(json!({"role": "assistant", "content": "", "tool_calls": choice["message"]["tool_calls"]}));
        msgs.push(json!({"role": "tool", "content": tool_out, "tool_call_id": CALL_TOOL_ID, "name": "exec_command"}));
        let answer = "The tool returned: hi 42\n";
        assert_eq!(
            call_tool_turn(&second).unwrap(),
            ToolTurn::Answer(answer.into())
        );
        let v: Value = post(&client, &fake, path, &second, false)
            .await
            .json()
            .await
            .unwrap();
        let choice = &v["output"]["choices"][0];
        assert_eq!(choice["finish_reason"], "stop");
        let text = |c: &Value| -> String {
            match c {
                Value::String(s) => s.clone(),
                Value::Array(p) => p.iter().map(|x| x["text"].as_str().unwrap()).collect(),
                other => panic!("content {other}"),
            }
        };
        assert_eq!(text(&choice["message"]["content"]), answer);
        assert_eq!(v["request_id"], CALL_TOOL_ANSWER_REQUEST_ID);
        let resp = post(&client, &fake, path, &second, true).await;
        let frames = sse_payloads(&resp.text().await.unwrap());
        assert_eq!(frames.len(), 4, "{model}");
        let streamed: String = frames
            .iter()
            .map(|(_, f)| text(&f["output"]["choices"][0]["message"]["content"]))
            .collect();
        assert_eq!(streamed, answer);
        assert_eq!(frames[3].1["output"]["choices"][0]["finish_reason"], "stop");
    }

    // Malformed markers are 400s naming the problem.
    for bad in [
        "scenario:call-tool",
        "scenario:call-tool f",
        "scenario:call-tool f [1]",
    ] {
        let resp = post(
            &client,
            &fake,
            TEXT_PATH,
            &body_for("qwen-plus", bad),
            false,
        )
        .await;
        assert_eq!(resp.status().as_u16(), 400, "{bad}");
        let v: Value = resp.json().await.unwrap();
        assert!(
            v["message"].as_str().unwrap().contains("call-tool"),
            "{bad}: {v}"
        );
    }
}

/// The control paths: files queued verbatim by another process, reset reports leftovers.
#[tokio::test]
async fn control_script_serves_files_verbatim_and_reset_reports_leftovers() {
    let fake = FakeDashScope::start().await;
    let client = reqwest::Client::new();
    let dir = std::env::temp_dir().join(format!("fake-control-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sse = fixture("text-stream-incremental.sse");
    let sse_path = dir.join("reply.sse");
    std::fs::write(&sse_path, &sse).unwrap();
    let json_path = dir.join("reply.json");
    std::fs::write(&json_path, "{\"code\":\"X\",\"message\":\"m\"}").unwrap();
    let script = json!({"replies": [
        {"file": sse_path, "status": 200},
        {"file": json_path, "status": 418, "headers": {"x-extra": "1"}},
        {"file": json_path},
    ]});
    let r = client
        .post(format!("{}/__fake/script", fake.base_url))
        .json(&script)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"queued": 3}));
    let body = body_for("qwen-plus", "hi");
    let r = post(&client, &fake, TEXT_PATH, &body, false).await;
    assert_eq!(
        r.text().await.unwrap(),
        sse,
        "served verbatim whatever was asked"
    );
    let r = post(&client, &fake, MM_PATH, &body, true).await;
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["x-extra"], "1");
    assert_eq!(
        r.text().await.unwrap(),
        "{\"code\":\"X\",\"message\":\"m\"}"
    );
    let reset = |client: reqwest::Client, url: String| async move {
        let r = client.post(url).send().await.unwrap();
        r.json::<Value>().await.unwrap()
    };
    let url = format!("{}/__fake/reset", fake.base_url);
    assert_eq!(
        reset(client.clone(), url.clone()).await,
        json!({"pending": 1})
    );
    assert_eq!(reset(client.clone(), url).await, json!({"pending": 0}));
    assert_eq!(fake.request_count(), 2, "control calls are not recorded");
    let bad = client
        .post(format!("{}/__fake/script", fake.base_url))
        .json(&json!({"replies": [{"file": dir.join("missing.sse")}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
