//! `GET /metrics` after real traffic: request counts by route/model/status, the upstream latency
//! and time-to-first-token histograms, the in-flight streams gauge, retries and tokens.
//!
//! The Prometheus recorder is process-global, so this file holds a single test that owns it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::fake::{FakeDashScope, Reply};
use common::gateway::{self, Gateway};
use futures_util::StreamExt;
use serde_json::json;

/// The value of the one sample of `name` whose labels include every pair in `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{name} {labels:?} should match one sample:\n{text}"
    );
    matching[0].rsplit(' ').next().unwrap().parse().unwrap()
}

async fn scrape(gw: &Gateway) -> String {
    let resp = reqwest::get(gw.url("/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    resp.text().await.unwrap()
}

async fn chat(gw: &Gateway, stream: bool) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.chat_url())
        .json(&json!({
            "model": "qwen-plus",
            "messages": [{"role": "user", "content": "Who are you?"}],
            "stream": stream
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_reflect_the_traffic() {
    dashbridge::metrics::install().expect("the recorder installs");
    let fake = FakeDashScope::start().await;
    let mut cfg = gateway::config(&fake.base_url);
    cfg.retries = 2;
    cfg.retry_base = Duration::from_millis(10);
    let gw = gateway::start(cfg).await;

    // 1. A plain success (22 in, 29 out).
    fake.push(Reply::json_fixture("text-nonstream.json"));
    assert_eq!(chat(&gw, false).await.status(), 200);
    // 2. A 503, retried once, then a success.
    fake.push(Reply::json(
        503,
        r#"{"code":"ServiceUnavailable","message":"busy","request_id":"r-503"}"#,
    ));
    fake.push(Reply::json_fixture("text-nonstream.json"));
    assert_eq!(chat(&gw, false).await.status(), 200);
    // 3. A content-filter 400.
    fake.push(Reply::error_fixture(400, "error-data-inspection.json"));
    assert_eq!(chat(&gw, false).await.status(), 400);

    // 4. A stream (22 in, 18 out), in flight while we scrape.
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").paced(Duration::from_millis(100)));
    let resp = chat(&gw, true).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let _ = body.next().await.unwrap().unwrap();
    let during = scrape(&gw).await;
    assert_eq!(sample(&during, "dashbridge_inflight_streams", &[]), 1.0);
    while let Some(chunk) = body.next().await {
        chunk.unwrap();
    }
    drop(body);
    // The gauge drops when the stream's body is dropped, just after its last byte.
    let mut after = scrape(&gw).await;
    for _ in 0..100 {
        if sample(&after, "dashbridge_inflight_streams", &[]) == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        after = scrape(&gw).await;
    }
    let m = after;
    assert_eq!(sample(&m, "dashbridge_inflight_streams", &[]), 0.0);

    let req = |status: &str, code: &str| {
        sample(
            &m,
            "dashbridge_requests_total",
            &[
                ("route", "chat"),
                ("model", "qwen-plus"),
                ("endpoint", "text"),
                ("status", status),
                ("error_code", code),
            ],
        )
    };
    assert_eq!(req("200", ""), 3.0);
    assert_eq!(req("400", "content_filter"), 1.0);
    assert_eq!(
        sample(
            &m,
            "dashbridge_upstream_retries_total",
            &[("reason", "server_error")]
        ),
        1.0
    );
    // Every call that opened: two JSON answers and one stream.
    assert_eq!(
        sample(
            &m,
            "dashbridge_upstream_latency_seconds_count",
            &[("endpoint", "text")]
        ),
        3.0
    );
    assert_eq!(
        sample(
            &m,
            "dashbridge_upstream_latency_seconds_bucket",
            &[("endpoint", "text"), ("le", "+Inf")]
        ),
        3.0
    );
    assert_eq!(
        sample(
            &m,
            "dashbridge_time_to_first_token_seconds_count",
            &[("endpoint", "text")]
        ),
        1.0
    );
    let tokens = |direction: &str| {
        sample(
            &m,
            "dashbridge_tokens_total",
            &[("model", "qwen-plus"), ("direction", direction)],
        )
    };
    assert_eq!(tokens("in"), 22.0 * 3.0);
    assert_eq!(tokens("out"), 29.0 * 2.0 + 18.0);

    // 5. A request refused at the door (wrong client key) is counted too.
    let mut keyed = gateway::config(&fake.base_url);
    keyed.client_keys = vec![dashbridge::config::ClientKey::new(
        None,
        "sk-gateway-client",
    )];
    let gw2 = gateway::start(keyed).await;
    assert_eq!(chat(&gw2, false).await.status(), 401);
    let m = scrape(&gw2).await;
    assert_eq!(
        sample(
            &m,
            "dashbridge_requests_total",
            &[
                ("route", "chat"),
                ("model", ""),
                ("endpoint", "none"),
                ("status", "401"),
                ("error_code", "invalid_api_key"),
            ],
        ),
        1.0
    );
}
