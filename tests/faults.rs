//! Fault injection: the gateway in-process in front of the fake DashScope, which hangs, stalls,
//! drops, throttles, sends HTML or the wrong content type; plus the edge limits (concurrency,
//! connections, slow clients) and many concurrent streams.
//!
//! Every test configures short timeouts (`upstream_timeout` 1 s, `retry_base` 10 ms) so the
//! whole file runs in a few seconds.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not the helpers below.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::fake::{FakeDashScope, Reply, unused_base_url};
use common::gateway::{self, Gateway, chunk_text, sse_data};
use dashbridge::Config;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The assistant text of `text-stream-incremental.sse`.
const TEXT: &str =
    "I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?";
/// The assistant text of `text-nonstream.json`.
const TEXT_JSON: &str = "I am Qwen, a large-scale language model developed by Alibaba Cloud. I can answer questions, write text, reason and write code. How can I help you?";

/// A baseline for fault tests: short upstream timeout, fast retries.
fn cfg(upstream: &str) -> Config {
    let mut cfg = gateway::config(upstream);
    cfg.upstream_timeout = Duration::from_secs(1);
    cfg.retry_base = Duration::from_millis(10);
    cfg.retries = 2;
    cfg
}

fn chat_body(stream: bool) -> Value {
    json!({
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "Who are you? scenario:text"}],
        "stream": stream
    })
}

async fn post(gw: &Gateway, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.chat_url())
        .json(body)
        .send()
        .await
        .expect("the gateway answers")
}

async fn json_of(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts an OpenAI error body with all four keys, returns `error`.
fn openai_error(v: &Value) -> &Value {
    let err = v
        .get("error")
        .unwrap_or_else(|| panic!("not an error body: {v}"));
    for key in ["message", "type", "param", "code"] {
        assert!(err.get(key).is_some(), "error body lacks {key}: {v}");
    }
    err
}

// ---- retries ------------------------------------------------------------------------------

#[tokio::test]
async fn a_503_is_retried_once_then_the_client_gets_the_200() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::json(
        503,
        r#"{"code":"ServiceUnavailable","message":"busy","request_id":"r-503"}"#,
    ));
    fake.push(Reply::json_fixture("text-nonstream.json"));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    let v = json_of(resp).await;
    assert_eq!(v["choices"][0]["message"]["content"], TEXT_JSON);
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_waiting() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::error_fixture(429, "error-throttling.json").with_header("retry-after", "1"));
    fake.push(Reply::json_fixture("text-nonstream.json"));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let started = Instant::now();
    let resp = post(&gw, &chat_body(false)).await;
    let waited = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json_of(resp).await["choices"][0]["message"]["content"],
        TEXT_JSON
    );
    assert_eq!(fake.request_count(), 2);
    // Retry-After: 1 was honoured (the backoff alone would be ~10 ms).
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
}

#[tokio::test]
async fn a_400_is_never_retried() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::error_fixture(400, "error-data-inspection.json"));
    fake.push(Reply::json_fixture("text-nonstream.json"));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(false)).await;
    assert_eq!(resp.status(), 400);
    let v = json_of(resp).await;
    assert_eq!(openai_error(&v)["code"], "content_filter");
    assert_eq!(fake.request_count(), 1);
    assert_eq!(fake.pending_replies(), 1);
}

#[tokio::test]
async fn a_stream_that_started_is_never_retried() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").drop_after(3));
    fake.push(Reply::sse_fixture("text-stream-incremental.sse"));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(&resp.text().await.unwrap());
    // The three frames that arrived, then one error event, and no [DONE].
    assert_eq!(chunk_text(&data), "I am Qwen, a large language");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(openai_error(&last)["code"], "bad_upstream_response");
    let message = openai_error(&last)["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "DashScope sent an unreadable response: the upstream connection dropped mid-stream"
        ),
        "{message}"
    );
    assert!(!data.iter().any(|d| d == "[DONE]"));
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn connection_refused_is_a_502_after_the_retries() {
    let gw = gateway::start(cfg(&unused_base_url())).await;
    let resp = post(&gw, &chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let v = json_of(resp).await;
    let err = openai_error(&v);
    assert_eq!(err["code"], "upstream_unreachable");
    assert_eq!(err["type"], "server_error");
}

#[tokio::test]
async fn an_html_502_page_becomes_an_openai_json_error() {
    let fake = FakeDashScope::start().await;
    let page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    for _ in 0..2 {
        fake.push(Reply::Raw {
            status: 502,
            content_type: "text/html".into(),
            body: page.into(),
        });
    }
    let mut c = cfg(&fake.base_url);
    c.retries = 1;
    let gw = gateway::start(c).await;

    let resp = post(&gw, &chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    let v = json_of(resp).await;
    let err = openai_error(&v);
    assert_eq!(err["type"], "server_error");
    // The page's text (bounded to 300 characters), never a raw HTML response.
    assert_eq!(err["message"], format!("upstream error: {page}"));
    assert_eq!(
        fake.request_count(),
        1,
        "a 502 is not retried: a generation may have started behind it"
    );
}

#[tokio::test]
async fn a_wrong_content_type_is_a_502_and_not_retried() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::Raw {
        status: 200,
        content_type: "text/plain".into(),
        body: "hello".into(),
    });
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    let v = json_of(resp).await;
    let err = openai_error(&v);
    assert_eq!(err["code"], "bad_upstream_response");
    assert_eq!(
        err["message"],
        "DashScope sent an unreadable response: unexpected content type 'text/plain'"
    );
    assert_eq!(fake.request_count(), 1);
}

// ---- timeouts -----------------------------------------------------------------------------

#[tokio::test]
async fn an_upstream_that_never_answers_is_a_504() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::Hang);
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = tokio::time::timeout(Duration::from_secs(10), post(&gw, &chat_body(true)))
        .await
        .expect("bounded by the 1 s upstream timeout");
    assert_eq!(resp.status(), 504);
    let v = json_of(resp).await;
    let err = openai_error(&v);
    assert_eq!(err["code"], "upstream_timeout");
    assert_eq!(err["type"], "timeout");
    assert_eq!(fake.request_count(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn a_stall_mid_stream_ends_with_an_error_event_and_no_done() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").stall_after(3));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(10), resp.text())
        .await
        .expect("the stall is cut by the 1 s upstream timeout")
        .unwrap();
    let data = sse_data(&body);
    assert_eq!(chunk_text(&data), "I am Qwen, a large language");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    let err = openai_error(&last);
    assert_eq!(err["code"], "bad_upstream_response");
    assert_eq!(
        err["message"],
        "DashScope sent an unreadable response: the upstream stream stalled (no data within the upstream timeout)"
    );
    assert!(!data.iter().any(|d| d == "[DONE]"));
}

#[tokio::test]
async fn a_slow_but_live_stream_is_never_cut() {
    let fake = FakeDashScope::start().await;
    // 8 events 400 ms apart: ~2.8 s in all, each gap well under the 1 s timeout.
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").paced(Duration::from_millis(400)));
    let mut c = cfg(&fake.base_url);
    // Longer than the client read timeout too: that one bounds request heads, not responses.
    c.request_read_timeout = Duration::from_secs(1);
    let gw = gateway::start(c).await;

    let resp = post(&gw, &chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(&resp.text().await.unwrap());
    assert_eq!(chunk_text(&data), TEXT);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(
        !data.iter().any(|d| d.contains("\"error\"")),
        "no error event: {data:?}"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_mid_stream_cancels_the_upstream_request() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").paced(Duration::from_millis(300)));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    let mut bytes = resp.bytes_stream();
    let first = bytes.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("chat.completion.chunk"));
    drop(bytes);
    assert!(
        fake.wait_cancelled(1, Duration::from_secs(5)).await,
        "the upstream saw the close"
    );
    assert_eq!(fake.streams_completed(), 0);
}

// ---- load ---------------------------------------------------------------------------------

/// One distinct stream per index: request id `rid-NNNN`, words `sNNNN-wK `.
fn numbered_stream(i: usize, words: usize) -> String {
    let mut out = String::new();
    for k in 0..=words {
        let (content, finish) = if k < words {
            (format!("s{i:04}-w{k} "), "null")
        } else {
            (String::new(), "stop")
        };
        let frame = json!({
            "output": {"choices": [{"message": {"content": content, "role": "assistant"}, "finish_reason": finish}]},
            "usage": {"total_tokens": 10 + k, "output_tokens": k, "input_tokens": 10},
            "request_id": format!("rid-{i:04}")
        });
        out.push_str(&format!(
            "id:{}\nevent:result\n:HTTP_STATUS/200\ndata:{frame}\n\n",
            k + 1
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_streams_do_not_cross_talk() {
    const N: usize = 200;
    const WORDS: usize = 6;
    let fake = FakeDashScope::start().await;
    for i in 0..N {
        fake.push(Reply::sse(numbered_stream(i, WORDS)).paced(Duration::from_millis(20)));
    }
    // The subject is cross-talk, not timeouts: on a loaded machine 200 debug-build streams can
    // take longer than the 1 s fault-test timeout to get their headers.
    let mut c = cfg(&fake.base_url);
    c.upstream_timeout = Duration::from_secs(10);
    let gw = gateway::start(c).await;
    let client = reqwest::Client::new();

    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let client = client.clone();
            let url = gw.chat_url();
            tokio::spawn(async move {
                let resp = client
                    .post(url)
                    .json(&chat_body(true))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                let header_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
                (header_id, resp.text().await.unwrap())
            })
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for t in tasks {
        let (header_id, body) = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("bounded")
            .unwrap();
        let data = sse_data(&body);
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        // The stream's own number, from its upstream request id.
        let i: usize = header_id.strip_prefix("rid-").unwrap().parse().unwrap();
        let want_id = format!("chatcmpl-rid-{i:04}");
        assert!(
            chunks.iter().all(|c| c["id"] == want_id.as_str()),
            "ids of stream {i}"
        );
        let want_text: String = (0..WORDS).map(|k| format!("s{i:04}-w{k} ")).collect();
        assert_eq!(chunk_text(&data), want_text);
        assert!(seen.insert(i), "stream {i} served twice");
    }
    assert_eq!(seen.len(), N);
    assert_eq!(fake.streams_completed(), N);
}

// ---- edge limits --------------------------------------------------------------------------

#[tokio::test]
async fn at_the_concurrency_limit_a_request_gets_503_with_retry_after() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").paced(Duration::from_millis(150)));
    let mut c = cfg(&fake.base_url);
    c.max_concurrency = 1;
    let gw = gateway::start(c).await;

    let first = post(&gw, &chat_body(true)).await;
    assert_eq!(first.status(), 200);
    let mut stream = first.bytes_stream();
    let _ = stream.next().await.unwrap().unwrap();

    let second = post(&gw, &chat_body(false)).await;
    assert_eq!(second.status(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    let v = json_of(second).await;
    assert_eq!(openai_error(&v)["code"], "overloaded");

    // The first stream is unaffected, and its slot frees when it ends.
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
    let third = post(&gw, &chat_body(false)).await;
    assert_eq!(third.status(), 200);
    assert_eq!(fake.request_count(), 2);
}

/// Sends a raw HTTP/1.1 request and reads one response head + small body (until `\r\n\r\n`
/// and `Content-Length` bytes). `None` if the connection closed first.
async fn read_response(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + len {
                return Some(text);
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

const GET_HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test]
async fn at_the_connection_limit_new_connections_wait_for_a_free_slot() {
    let fake = FakeDashScope::start().await;
    let mut c = cfg(&fake.base_url);
    c.max_connections = 1;
    let gw = gateway::start(c).await;

    // A keep-alive connection takes the only slot.
    let mut a = TcpStream::connect(gw.addr).await.unwrap();
    a.write_all(GET_HEALTHZ).await.unwrap();
    let resp = read_response(&mut a).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    // A second connection is not served while the first is open...
    let mut b = TcpStream::connect(gw.addr).await.unwrap();
    b.write_all(GET_HEALTHZ).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), read_response(&mut b)).await;
    assert!(early.is_err(), "served beyond the connection limit");

    // ...and is served as soon as the first closes.
    drop(a);
    let resp = tokio::time::timeout(Duration::from_secs(5), read_response(&mut b))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

#[tokio::test]
async fn slow_loris_and_idle_connections_are_cut_and_free_their_slot() {
    let fake = FakeDashScope::start().await;
    let mut c = cfg(&fake.base_url);
    c.max_connections = 1;
    c.request_read_timeout = Duration::from_secs(1);
    let gw = gateway::start(c).await;

    // Half a request head, then silence.
    let mut loris = TcpStream::connect(gw.addr).await.unwrap();
    loris
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), loris.read(&mut buf))
        .await
        .expect("the server closes the connection")
        .unwrap_or(0);
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        "unexpected: {}",
        String::from_utf8_lossy(&buf[..n])
    );

    // A connection that never sends a byte is closed too.
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("the server closes an idle connection");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");

    // The slot is free again.
    let mut ok = TcpStream::connect(gw.addr).await.unwrap();
    ok.write_all(GET_HEALTHZ).await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), read_response(&mut ok))
        .await
        .expect("served")
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

#[tokio::test]
async fn a_trickled_body_gets_an_openai_shaped_408() {
    let fake = FakeDashScope::start().await;
    let mut c = cfg(&fake.base_url);
    c.request_read_timeout = Duration::from_secs(1);
    let gw = gateway::start(c).await;

    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":",
    )
    .await
    .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), read_response(&mut s))
        .await
        .expect("bounded by the request read timeout")
        .expect("a response, not a bare close");
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {resp}"));
    let err = openai_error(&v);
    assert_eq!(err["code"], "request_timeout");
    assert_eq!(err["type"], "invalid_request_error");
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_and_never_reaches_upstream() {
    let fake = FakeDashScope::start().await;
    let mut c = cfg(&fake.base_url);
    c.max_body_bytes = 1024;
    let gw = gateway::start(c).await;

    let big = json!({
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "x".repeat(2000)}]
    });
    let resp = post(&gw, &big).await;
    assert_eq!(resp.status(), 413);
    let v = json_of(resp).await;
    let err = openai_error(&v);
    assert_eq!(err["code"], "request_too_large");
    assert_eq!(
        err["message"],
        "request body is larger than the gateway's limit of 1024 bytes"
    );
    assert_eq!(fake.request_count(), 0);
}

// ---- issue 9: retry only what did not start, deliver what finished --------------------------

/// A 200 JSON answer whose body breaks after its first bytes (an SSE-shaped reply relabelled
/// `application/json`, cut after its first piece).
fn broken_json() -> Reply {
    Reply::sse("{\"output\":{\"choices\":\n\n[]}}\n\n")
        .with_header("content-type", "application/json")
        .drop_after(1)
}

#[tokio::test]
async fn a_200_whose_body_breaks_is_a_502_and_not_retried() {
    let fake = FakeDashScope::start().await;
    fake.push(broken_json());
    fake.push(Reply::json_fixture("text-nonstream.json"));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    let v = json_of(resp).await;
    assert_eq!(openai_error(&v)["code"], "bad_upstream_response");
    assert_eq!(
        fake.request_count(),
        1,
        "the generation may have run: not retried"
    );
}

#[tokio::test]
async fn a_stream_that_breaks_before_its_first_frame_is_not_retried() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").drop_after(0));
    fake.push(Reply::sse_fixture("text-stream-incremental.sse"));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(true)).await;
    assert_eq!(resp.status(), 502);
    let v = json_of(resp).await;
    assert_eq!(openai_error(&v)["code"], "bad_upstream_response");
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn request_timeout_and_500_answers_are_not_retried() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::json(
        503,
        r#"{"code":"RequestTimeOut","message":"Request timed out, please try again later.","request_id":"r-to"}"#,
    ));
    fake.push(Reply::json(
        500,
        r#"{"code":"InternalError","message":"internal","request_id":"r-500"}"#,
    ));
    fake.push(Reply::json_fixture("text-nonstream.json"));
    fake.push(Reply::json_fixture("text-nonstream.json"));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(false)).await;
    assert_eq!(resp.status(), 504);
    assert_eq!(openai_error(&json_of(resp).await)["code"], "RequestTimeOut");
    assert_eq!(fake.request_count(), 1, "RequestTimeOut is never retried");

    let resp = post(&gw, &chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(openai_error(&json_of(resp).await)["code"], "InternalError");
    assert_eq!(fake.request_count(), 2, "a 500 is not retried");
}

#[tokio::test]
async fn a_200_without_output_is_a_502() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::json(
        200,
        r#"{"usage":{"input_tokens":5,"output_tokens":0,"total_tokens":5},"request_id":"r-empty"}"#,
    ));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    let v = json_of(resp).await;
    let err = openai_error(&v);
    assert_eq!(err["code"], "bad_upstream_response");
    assert_eq!(
        err["message"],
        "DashScope sent an unreadable response: a 200 answer without `output`"
    );
    assert_eq!(fake.request_count(), 1);
}

/// The 8 events of `text-stream-incremental.sse`; the 8th carries `finish_reason: "stop"`.
const TEXT_EVENTS: usize = 8;

#[tokio::test]
async fn a_break_after_the_finish_frame_is_the_end_of_a_good_stream() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").drop_after(TEXT_EVENTS));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(&resp.text().await.unwrap());
    assert_eq!(chunk_text(&data), TEXT);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(
        !data.iter().any(|d| d.contains("\"error\"")),
        "no error event after a finished answer: {data:?}"
    );
}

#[tokio::test]
async fn after_the_finish_frame_done_comes_at_once_and_the_upstream_is_dropped() {
    let fake = FakeDashScope::start().await;
    // The upstream then stays silent (its timeout is 1 s here).
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").stall_after(TEXT_EVENTS));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let mut body = chat_body(true);
    body["stream_options"] = json!({"include_usage": true});
    let started = Instant::now();
    let resp = post(&gw, &body).await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(&resp.text().await.unwrap());
    let took = started.elapsed();
    assert!(took < Duration::from_millis(700), "[DONE] waited {took:?}");
    assert_eq!(chunk_text(&data), TEXT);
    let n = data.len();
    assert_eq!(data[n - 1], "[DONE]");
    let usage: Value = serde_json::from_str(&data[n - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 22, "completion_tokens": 18, "total_tokens": 40,
               "prompt_tokens_details": {"cached_tokens": 0}})
    );
    assert!(
        fake.wait_cancelled(1, Duration::from_secs(2)).await,
        "the upstream response is dropped once the answer is complete"
    );
}

// ---- issue 9: upstream errors keep their words ----------------------------------------------

#[tokio::test]
async fn a_non_2xx_answer_with_an_sse_body_keeps_its_code_and_request_id() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::Raw {
        status: 400,
        content_type: "text/event-stream;charset=UTF-8".into(),
        body: "id:1\nevent:error\n:HTTP_STATUS/400\ndata:{\"code\":\"InvalidParameter\",\"message\":\"Range of top_p should be (0.0, 1.0]\",\"request_id\":\"req-sse-400\"}\n\n".into(),
    });
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(true)).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-request-id"], "req-sse-400");
    let v = json_of(resp).await;
    assert_eq!(
        v,
        json!({"error": {
            "message": "Range of top_p should be (0.0, 1.0] (DashScope code InvalidParameter, request_id req-sse-400)",
            "type": "invalid_request_error",
            "param": null,
            "code": "InvalidParameter"
        }})
    );
}

#[tokio::test]
async fn an_in_band_error_without_a_code_mid_stream_is_a_server_error() {
    let fake = FakeDashScope::start().await;
    let events: Vec<String> = split_fixture("text-stream-incremental.sse");
    let body = format!(
        "{}{}id:3\nevent:error\n:HTTP_STATUS/500\ndata:{{\"message\":\"the model stopped unexpectedly\",\"request_id\":\"r-mid\"}}\n\n",
        events[0], events[1]
    );
    fake.push(Reply::sse(body));
    let gw = gateway::start(cfg(&fake.base_url)).await;

    let resp = post(&gw, &chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(&resp.text().await.unwrap());
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(
        last,
        json!({"error": {
            "message": "upstream error: the model stopped unexpectedly (request_id r-mid)",
            "type": "server_error",
            "param": null,
            "code": "upstream_error"
        }})
    );
}

/// The events of a fixture, each with its trailing blank line.
fn split_fixture(name: &str) -> Vec<String> {
    common::fake::split_events(&common::fake::fixture(name))
        .into_iter()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .collect()
}
