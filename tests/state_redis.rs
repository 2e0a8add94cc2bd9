//! The Redis backend against a real `redis-server` (started by the test on 127.0.0.1 with its
//! own port and data dir, stopped by PID): records, TTL, versioned values, owner isolation;
//! two gateways sharing one Redis never exceed a key's rpm together; Redis stopped or frozen
//! mid-run → state reads fail within the bound (503), stateless traffic is still served,
//! `/readyz` says `"store": "down"`; Redis back → everything resumes without a restart.
//!
//! Without `redis-server` these tests fail under CI (`CI=true`) and are skipped locally.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use common::fake::FakeDashScope;
use common::gateway::{self, Gateway};
use common::redis::RedisServer;
use dashbridge::config::{ClientKey, Config, OnStoreError, Secret, StateSettings};
use dashbridge::error::ProxyError;
use dashbridge::store::redis::RedisStore;
use dashbridge::store::{KeyLimits, ResponseRecord, StateStore, StoreError, owner_hash};
use serde_json::{Value, json};

/// The bound on every store command in the fault tests.
const BOUND: Duration = Duration::from_millis(300);
/// The bound where a test counts exact admissions: generous, so a busy CI machine cannot turn
/// a slow answer into a store error (which `allow` would admit unlimited).
const SLACK: Duration = Duration::from_secs(3);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn settings(url: &str, prefix: &str) -> StateSettings {
    StateSettings {
        url: Some(Secret::new(url)),
        timeout: BOUND,
        prefix: prefix.to_owned(),
        ..StateSettings::default()
    }
}

fn record(owner: &str, id: &str) -> ResponseRecord {
    ResponseRecord {
        id: id.to_owned(),
        owner: owner.to_owned(),
        model: "qwen-plus".into(),
        created_at: 1_700_000_000,
        input: vec![json!({"type": "message", "role": "user", "content": "hi"})],
        output: vec![json!({"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": "hello", "annotations": []}]})],
        usage: Some(json!({"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})),
        previous_response_id: Some("resp_0".into()),
        response: None,
        extra: Default::default(),
    }
}

/// A raw command through a plain client (what another gateway version would see).
async fn raw(url: &str, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut c).await.unwrap()
}

#[tokio::test]
async fn records_round_trip_versioned_expiring_and_owned() {
    let Some(redis_srv) = RedisServer::start() else {
        return;
    };
    let url = redis_srv.url();
    let store = RedisStore::new(&url, &settings(&url, "t1")).unwrap();
    store.ping().await.unwrap();
    let (alice, bob) = (owner_hash("sk-alice"), owner_hash("sk-bob"));
    let rec = record(&alice, "resp_1");
    store.put_response(&rec).await.unwrap();
    assert_eq!(
        store.get_response(&alice, "resp_1").await.unwrap(),
        Some(rec.clone())
    );
    assert_eq!(store.get_response(&bob, "resp_1").await.unwrap(), None);
    assert!(!store.delete_response(&bob, "resp_1").await.unwrap());

    // Namespaced key, envelope v1, expiring with the TTL (30 days by default).
    let key = format!("t1:resp:{alice}:resp_1");
    let redis::Value::BulkString(bytes) = raw(&url, &["GET", &key]).await else {
        panic!("no value under {key}");
    };
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["v"], 1);
    assert_eq!(v["data"]["id"], "resp_1");
    let redis::Value::Int(ttl) = raw(&url, &["TTL", &key]).await else {
        panic!("no TTL");
    };
    assert!((30 * 86_400 - 5..=30 * 86_400).contains(&ttl), "{ttl}");
    assert!(!String::from_utf8_lossy(&bytes).contains("sk-alice"));

    // What an older gateway wrote (v1 without the optional fields) still reads.
    let old = r#"{"v":1,"data":{"id":"resp_old","owner":"OWNER","model":"qwen-max","created_at":1,"input":[],"output":[]}}"#
        .replace("OWNER", &alice);
    raw(&url, &["SET", &format!("t1:resp:{alice}:resp_old"), &old]).await;
    let got = store
        .get_response(&alice, "resp_old")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.model.as_str(), got.usage), ("qwen-max", None));

    assert!(store.delete_response(&alice, "resp_1").await.unwrap());
    assert_eq!(store.get_response(&alice, "resp_1").await.unwrap(), None);

    // TTL: a 1 s store forgets.
    let short = RedisStore::new(
        &url,
        &StateSettings {
            ttl: Duration::from_secs(1),
            ..settings(&url, "t1s")
        },
    )
    .unwrap();
    short.put_response(&rec).await.unwrap();
    short
        .set_learned_endpoint("qwen-x", "multimodal")
        .await
        .unwrap();
    assert_eq!(
        short.learned_endpoint("qwen-x").await.unwrap().as_deref(),
        Some("multimodal")
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(short.get_response(&alice, "resp_1").await.unwrap(), None);
    assert_eq!(short.learned_endpoint("qwen-x").await.unwrap(), None);
}

fn shared_config(upstream: &str, url: &str, rpm: u64, bound: Duration) -> Config {
    let mut cfg = gateway::config(upstream);
    cfg.client_keys = vec![
        ClientKey::new(Some("alice"), "sk-alice"),
        ClientKey::new(Some("bob"), "sk-bob"),
    ];
    cfg.key_limits.insert(
        "alice".into(),
        KeyLimits {
            rpm: Some(rpm),
            tpm: None,
        },
    );
    cfg.state = StateSettings {
        timeout: bound,
        ..settings(url, "shared")
    };
    cfg
}

async fn get(gw: &Gateway, path: &str, key: &str) -> reqwest::Response {
    http()
        .get(gw.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// 60 concurrent requests for alice (rpm 7), spread over two gateways sharing one Redis:
/// exactly 7 are admitted, every other one is a 429, and the remaining counts agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_never_exceed_a_keys_rpm_together() {
    let Some(redis_srv) = RedisServer::start() else {
        return;
    };
    let fake = FakeDashScope::start().await;
    let a =
        Arc::new(gateway::start(shared_config(&fake.base_url, &redis_srv.url(), 7, SLACK)).await);
    let b =
        Arc::new(gateway::start(shared_config(&fake.base_url, &redis_srv.url(), 7, SLACK)).await);
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let gw = Arc::clone(if i % 2 == 0 { &a } else { &b });
            tokio::spawn(async move {
                let r = get(&gw, "/v1/models", "sk-alice").await;
                let remaining = r
                    .headers()
                    .get("x-ratelimit-remaining-requests")
                    .map(|v| v.to_str().unwrap().to_owned());
                (r.status().as_u16(), remaining)
            })
        })
        .collect();
    let mut ok_remaining = Vec::new();
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, rem) => {
                ok_remaining.push(rem.expect("a 200 without x-ratelimit headers (store error?)"))
            }
            (429, rem) => {
                assert_eq!(rem.as_deref(), Some("0"));
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    ok_remaining.sort();
    assert_eq!(ok_remaining, ["0", "1", "2", "3", "4", "5", "6"]);
    assert_eq!(limited, 53);
    // Either gateway now refuses alice; bob is unlimited.
    assert_eq!(get(&a, "/v1/models", "sk-alice").await.status(), 429);
    assert_eq!(get(&b, "/v1/models", "sk-alice").await.status(), 429);
    assert_eq!(get(&b, "/v1/models", "sk-bob").await.status(), 200);
}

async fn readyz(gw: &Gateway) -> (u16, Value) {
    let r = http().get(gw.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Time one state read; it must fail with a store error within the bound (+ scheduling slack).
async fn timed_read(
    store: &dyn StateStore,
) -> (Result<Option<ResponseRecord>, StoreError>, Duration) {
    let t = Instant::now();
    let r = store.get_response("o", "resp_x").await;
    (r, t.elapsed())
}

/// Redis killed, then frozen (SIGSTOP), then back: reads fail fast as 503 + Retry-After,
/// stateless and limited traffic is still served (allow), `/readyz` stays 200 and reports the
/// store; after Redis returns, reads and limits work again with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_or_frozen_then_back() {
    dashbridge::metrics::install();
    let Some(mut redis_srv) = RedisServer::start() else {
        return;
    };
    let fake = FakeDashScope::start().await;
    let url = redis_srv.url();
    let gw = gateway::start(shared_config(&fake.base_url, &url, 1000, BOUND)).await;
    let mut deny_cfg = shared_config(&fake.base_url, &url, 1000, BOUND);
    deny_cfg.on_store_error = OnStoreError::Deny;
    let gw_deny = gateway::start(deny_cfg).await;
    let store = RedisStore::new(&url, &settings(&url, "shared")).unwrap();
    store.put_response(&record("o", "resp_x")).await.unwrap();
    assert_eq!(
        readyz(&gw).await,
        (
            200,
            json!({"status": "ready", "store": "ok", "store_backend": "redis"})
        )
    );
    assert_eq!(get(&gw, "/v1/models", "sk-alice").await.status(), 200);

    for phase in ["stopped", "frozen"] {
        if phase == "stopped" {
            redis_srv.stop();
        } else {
            redis_srv.freeze();
        }
        for _ in 0..3 {
            let (r, took) = timed_read(&store).await;
            let err = r.expect_err("a read must fail while Redis is down");
            assert!(
                took < BOUND + Duration::from_millis(400),
                "{phase}: read took {took:?}"
            );
            let resp = ProxyError::from(err).into_response();
            assert_eq!(resp.status(), 503);
            assert_eq!(resp.headers()["retry-after"], "1");
        }
        // A write-only operation fails within the bound too; the route serves with a warning.
        let t = Instant::now();
        let err = store
            .put_response(&record("o", "resp_y"))
            .await
            .unwrap_err();
        assert!(
            t.elapsed() < BOUND + Duration::from_millis(400),
            "{phase}: write took {:?}",
            t.elapsed()
        );
        assert_eq!(
            dashbridge::store::write_failed(&err),
            "the response was not stored: the state store is unavailable"
        );
        let t = Instant::now();
        assert_eq!(
            readyz(&gw).await,
            (
                200,
                json!({"status": "ready", "store": "down", "store_backend": "redis"})
            ),
            "{phase}"
        );
        // Stateless traffic: served. A limited key: served with a warning (allow) or 503 (deny).
        assert_eq!(get(&gw, "/v1/models", "sk-bob").await.status(), 200);
        let r = get(&gw, "/v1/models", "sk-alice").await;
        assert_eq!(r.status(), 200, "{phase}");
        assert_eq!(
            r.headers()["x-dashbridge-warning"],
            "rate limits not enforced: the state store is unavailable"
        );
        let r = get(&gw_deny, "/v1/models", "sk-alice").await;
        assert_eq!(r.status(), 503, "{phase}");
        assert_eq!(r.headers()["retry-after"], "1");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "state_store_unavailable");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{phase}: took {:?}",
            t.elapsed()
        );

        if phase == "stopped" {
            redis_srv.resume();
            // Data was not persisted (no save): a fresh Redis. Write again.
        } else {
            redis_srv.thaw();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if store.put_response(&record("o", "resp_x")).await.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{phase}: no recovery within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(store.get_response("o", "resp_x").await.unwrap().is_some());
        let deadline = Instant::now() + Duration::from_secs(10);
        while readyz(&gw).await.1["store"] != "ok" {
            assert!(
                Instant::now() < deadline,
                "{phase}: /readyz did not recover"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = get(&gw_deny, "/v1/models", "sk-alice").await;
        assert_eq!(r.status(), 200, "{phase}: limits resume");
        assert!(r.headers().get("x-ratelimit-remaining-requests").is_some());
    }
    let metrics = dashbridge::metrics::render();
    assert!(
        metrics.contains("dashbridge_store_errors_total"),
        "{metrics}"
    );
}

/// What one replica learned (a model found on the multimodal endpoint after "url error")
/// reaches another through Redis: B's first request goes straight to the right endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learned_endpoints_are_shared_between_replicas() {
    let Some(redis_srv) = RedisServer::start() else {
        return;
    };
    let fake = FakeDashScope::start().await;
    let url = redis_srv.url();
    let a = gateway::start(shared_config(&fake.base_url, &url, 1000, SLACK)).await;
    let b = gateway::start(shared_config(&fake.base_url, &url, 1000, SLACK)).await;
    let chat = |gw: &Gateway| {
        http()
            .post(gw.chat_url())
            .bearer_auth("sk-bob")
            .json(&json!({"model": "mm-only-shared",
                "messages": [{"role": "user", "content": "Describe the image."}]}))
            .send()
    };
    assert_eq!(chat(&a).await.unwrap().status(), 200);
    let paths = |from: usize| {
        fake.requests()[from..]
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(paths(0), [common::fake::TEXT_PATH, common::fake::MM_PATH]);
    let store = RedisStore::new(&url, &settings(&url, "shared")).unwrap();
    // Facts are per (upstream, model): the store names them "<base URL> <model>".
    let upstream = shared_config(&fake.base_url, &url, 1000, SLACK)
        .upstream
        .base_url;
    let name = format!("{upstream} mm-only-shared");
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.learned_endpoint(&name).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "A never shared what it learned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(chat(&b).await.unwrap().status(), 200);
    assert_eq!(paths(2), [common::fake::MM_PATH]);
}
