//! Drain on shutdown, in-process: `serve` with a oneshot shutdown future.
//!
//! When shutdown fires: `/readyz` turns 503, the listener closes (new connections are refused),
//! idle keep-alive connections close, streams in flight finish; a stream that outlives the grace
//! period ends with one in-band error event; `serve` returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::fake::{FakeDashScope, Reply};
use common::gateway::{self, chunk_text, sse_data};
use dashbridge::{AppState, Config, router, serve};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

const TEXT: &str =
    "I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?";

struct Running {
    addr: SocketAddr,
    /// A handle on the same state `serve` uses (same drain flag).
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(cfg: Config) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(cfg).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        state,
        stop: Some(tx),
        task,
    }
}

impl Running {
    fn shutdown(&mut self) {
        self.stop.take().unwrap().send(()).unwrap();
    }
}

async fn readyz(state: &AppState) -> (u16, Value) {
    let resp = router(state.clone())
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn open_stream(addr: SocketAddr) -> reqwest::Response {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&json!({
            "model": "qwen-plus",
            "messages": [{"role": "user", "content": "Who are you?"}],
            "stream": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp
}

/// Polls until a new connection is refused (the listener is closed); false after 5 s.
async fn refused(addr: SocketAddr) -> bool {
    for _ in 0..500 {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn a_stream_in_flight_finishes_intact_while_draining() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").paced(Duration::from_millis(250)));
    let mut cfg = gateway::config(&fake.base_url);
    cfg.shutdown_grace = Duration::from_secs(20);
    let mut gw = start(cfg).await;
    assert_eq!(
        readyz(&gw.state).await,
        (
            200,
            json!({"status": "ready", "store": "ok", "store_backend": "memory"})
        )
    );

    let resp = open_stream(gw.addr).await;
    let mut body = resp.bytes_stream();
    let mut received = body.next().await.unwrap().unwrap().to_vec();

    gw.shutdown();
    assert!(refused(gw.addr).await, "new connections are refused");
    assert_eq!(
        readyz(&gw.state).await,
        (
            503,
            json!({"status": "draining", "store": "ok", "store_backend": "memory"})
        )
    );
    assert!(!gw.task.is_finished(), "serve waits for the stream");

    while let Some(chunk) = body.next().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    let data = sse_data(&String::from_utf8(received).unwrap());
    assert_eq!(chunk_text(&data), TEXT);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));

    let res = tokio::time::timeout(Duration::from_secs(5), &mut gw.task)
        .await
        .expect("serve returns once the stream is done");
    res.unwrap().unwrap();
    assert_eq!(fake.streams_completed(), 1);
}

#[tokio::test]
async fn a_stream_outliving_the_grace_period_ends_with_an_in_band_error() {
    let fake = FakeDashScope::start().await;
    // ~5 s of stream against a 1 s grace period.
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").paced(Duration::from_millis(700)));
    let mut cfg = gateway::config(&fake.base_url);
    cfg.shutdown_grace = Duration::from_secs(1);
    let mut gw = start(cfg).await;

    let resp = open_stream(gw.addr).await;
    let mut body = resp.bytes_stream();
    let mut received = body.next().await.unwrap().unwrap().to_vec();
    gw.shutdown();

    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            received.extend_from_slice(&chunk.unwrap());
        }
        received
    })
    .await
    .expect("the stream is ended by the grace deadline");
    let data = sse_data(&String::from_utf8(rest).unwrap());
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(
        last,
        json!({"error": {
            "message": "the gateway is shutting down",
            "type": "server_error",
            "param": null,
            "code": "shutting_down"
        }})
    );
    assert!(!data.iter().any(|d| d == "[DONE]"));
    // Some text got through, but not all of it.
    let text = chunk_text(&data);
    assert!(TEXT.starts_with(&text) && text.len() < TEXT.len(), "{text}");

    let res = tokio::time::timeout(Duration::from_secs(10), &mut gw.task)
        .await
        .expect("serve returns after the grace period");
    res.unwrap().unwrap();
    assert!(
        fake.wait_cancelled(1, Duration::from_secs(5)).await,
        "the upstream call was cancelled"
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.shutdown_grace = Duration::from_secs(30);
    let mut gw = start(cfg).await;

    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    gw.shutdown();
    // Well within the 30 s grace: nothing is in flight.
    let res = tokio::time::timeout(Duration::from_secs(5), &mut gw.task)
        .await
        .expect("serve returns without waiting for idle connections");
    res.unwrap().unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("the idle connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_responses_stream_outliving_the_grace_period_ends_as_a_failed_response() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").paced(Duration::from_millis(700)));
    let mut cfg = gateway::config(&fake.base_url);
    cfg.shutdown_grace = Duration::from_secs(1);
    let mut gw = start(cfg).await;

    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/responses", gw.addr))
        .json(&json!({"model": "qwen-plus", "input": "Hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut received = body.next().await.unwrap().unwrap().to_vec();
    gw.shutdown();
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            received.extend_from_slice(&chunk.unwrap());
        }
        received
    })
    .await
    .expect("the stream is ended by the grace deadline");
    let text = String::from_utf8(rest).unwrap();
    let events = common::responses_check::parse_sse(&text).unwrap();
    let last = common::responses_check::check_events(&events).unwrap();
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error"]["code"], "server_error");
    assert_eq!(last["error"]["message"], "the gateway is shutting down");
    let res = tokio::time::timeout(Duration::from_secs(10), &mut gw.task)
        .await
        .expect("serve returns after the grace period");
    res.unwrap().unwrap();
}
