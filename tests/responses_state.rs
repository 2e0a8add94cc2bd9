//! Conversation state on `/v1/responses` through the gateway against the fake DashScope:
//! `store` (default true) saves, `previous_response_id` prepends the stored chain (without its
//! instructions), `item_reference` resolves, retrieve / delete / `input_items` (paginated),
//! owner isolation, tpm accounting; the same over a real Redis shared by two gateways, and a
//! Redis that is down (503 + Retry-After for reads, a warning for the write).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::fake::{FakeDashScope, Reply};
use common::gateway::{self, Gateway};
use common::redis::RedisServer;
use dashbridge::config::{ClientKey, Config, Secret, StateSettings};
use dashbridge::store::KeyLimits;
use serde_json::{Value, json};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn config(upstream: &str) -> Config {
    let mut cfg = gateway::config(upstream);
    cfg.client_keys = vec![
        ClientKey::new(Some("alice"), "sk-alice"),
        ClientKey::new(Some("bob"), "sk-bob"),
    ];
    cfg
}

/// A native answer `text` with request id `…{n:012}` (so each turn's response id differs).
fn answer(text: &str, n: u32) -> Reply {
    Reply::json(
        200,
        json!({
            "output": {"choices": [{"finish_reason": "stop",
                "message": {"role": "assistant", "content": text}}]},
            "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
            "request_id": format!("00000000-0000-0000-0000-{n:012}"),
        })
        .to_string(),
    )
}

fn resp_id(n: u32) -> String {
    format!("resp_00000000000000000000{n:012}")
}

async fn create(gw: &Gateway, key: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = http()
        .post(gw.url("/v1/responses"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.json().await.unwrap())
}

async fn call(gw: &Gateway, method: reqwest::Method, path: &str, key: &str) -> (u16, Value) {
    let r = http()
        .request(method, gw.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn get(gw: &Gateway, path: &str, key: &str) -> (u16, Value) {
    call(gw, reqwest::Method::GET, path, key).await
}

/// The messages the fake received on request `i`.
fn sent(fake: &FakeDashScope, i: usize) -> Value {
    fake.requests()[i].body["input"]["messages"].clone()
}

fn msg(role: &str, content: &str) -> Value {
    json!({"role": role, "content": content})
}

#[tokio::test]
async fn store_chain_and_instructions_not_carried() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start(config(&fake.base_url)).await;
    fake.push(answer("A1", 1));
    let (s, _, r1) = create(
        &gw,
        "sk-alice",
        json!({"model": "qwen-plus", "input": "Q1", "instructions": "Be brief"}),
    )
    .await;
    assert_eq!(s, 200, "{r1}");
    assert_eq!(r1["id"], resp_id(1));
    assert_eq!(r1["store"], true);
    assert_eq!(r1["previous_response_id"], Value::Null);

    fake.push(answer("A2", 2));
    let (s, _, r2) = create(
        &gw,
        "sk-alice",
        json!({"model": "qwen-plus", "input": "Q2", "instructions": "Be long",
               "previous_response_id": resp_id(1)}),
    )
    .await;
    assert_eq!(s, 200, "{r2}");
    assert_eq!(r2["previous_response_id"], resp_id(1));
    assert_eq!(
        sent(&fake, 1),
        json!([
            msg("system", "Be long"),
            msg("user", "Q1"),
            msg("assistant", "A1"),
            msg("user", "Q2")
        ])
    );

    fake.push(answer("A3", 3));
    let (s, _, _) = create(
        &gw,
        "sk-alice",
        json!({"model": "qwen-plus", "input": [{"role": "user", "content": "Q3"}],
               "previous_response_id": resp_id(2)}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        sent(&fake, 2),
        json!([
            msg("user", "Q1"),
            msg("assistant", "A1"),
            msg("user", "Q2"),
            msg("assistant", "A2"),
            msg("user", "Q3")
        ])
    );
}

#[tokio::test]
async fn store_false_saves_nothing_and_unknown_ids_are_400() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start(config(&fake.base_url)).await;
    fake.push(answer("A1", 1));
    let (s, _, r) = create(
        &gw,
        "sk-alice",
        json!({"model": "qwen-plus", "input": "Q1", "store": false}),
    )
    .await;
    assert_eq!((s, &r["store"]), (200, &json!(false)));
    let (s, e) = get(&gw, &format!("/v1/responses/{}", resp_id(1)), "sk-alice").await;
    assert_eq!(s, 404);
    assert_eq!(
        e,
        json!({"error": {"message": format!("Response with id '{}' not found.", resp_id(1)),
            "type": "invalid_request_error", "param": null, "code": "not_found"}})
    );
    let (s, _, e) = create(
        &gw,
        "sk-alice",
        json!({"model": "qwen-plus", "input": "Q2", "previous_response_id": resp_id(1)}),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        e,
        json!({"error": {"message": format!("Previous response with id '{}' not found.", resp_id(1)),
            "type": "invalid_request_error", "param": "previous_response_id",
            "code": "previous_response_not_found"}})
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn item_references_resolve_from_stored_responses() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start(config(&fake.base_url)).await;
    fake.push(answer("A1", 1));
    let (_, _, r1) = create(
        &gw,
        "sk-alice",
        json!({"model": "qwen-plus", "input": "Q1"}),
    )
    .await;
    let item = r1["output"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(item, "msg_00000000000000000000000000000001_0");

    fake.push(answer("A2", 2));
    let (s, _, r2) = create(
        &gw,
        "sk-alice",
        json!({"model": "qwen-plus", "input": [
            {"role": "user", "content": "Q1"},
            {"type": "item_reference", "id": item},
            {"role": "user", "content": "Q2"}]}),
    )
    .await;
    assert_eq!(s, 200, "{r2}");
    assert_eq!(
        sent(&fake, 1),
        json!([msg("user", "Q1"), msg("assistant", "A1"), msg("user", "Q2")])
    );
    // The stored input of turn 2 holds the resolved items.
    let (_, input) = get(
        &gw,
        &format!("/v1/responses/{}/input_items?order=asc", resp_id(2)),
        "sk-alice",
    )
    .await;
    assert_eq!(input["data"][1], r1["output"][0]);

    // Another key cannot reference it; an unknown id is named.
    for (key, id) in [("sk-bob", item.as_str()), ("sk-alice", "msg_nope")] {
        let (s, _, e) = create(
            &gw,
            key,
            json!({"model": "qwen-plus", "input": [{"type": "item_reference", "id": id}]}),
        )
        .await;
        assert_eq!(s, 400);
        assert_eq!(
            e["error"],
            json!({"message": format!("Item with id '{id}' not found."),
                "type": "invalid_request_error", "param": "input[0]", "code": "item_not_found"})
        );
    }
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn retrieve_delete_and_isolation() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start(config(&fake.base_url)).await;
    fake.push(answer("A1", 1));
    let (_, _, r1) = create(
        &gw,
        "sk-alice",
        json!({"model": "qwen-plus", "input": "Q1"}),
    )
    .await;
    let path = format!("/v1/responses/{}", resp_id(1));
    assert_eq!(get(&gw, &path, "sk-alice").await, (200, r1.clone()));

    // bob sees nothing of alice's: retrieve, input_items, delete, previous_response_id.
    assert_eq!(get(&gw, &path, "sk-bob").await.0, 404);
    assert_eq!(
        get(&gw, &format!("{path}/input_items"), "sk-bob").await.0,
        404
    );
    assert_eq!(
        call(&gw, reqwest::Method::DELETE, &path, "sk-bob").await.0,
        404
    );
    let (s, _, e) = create(
        &gw,
        "sk-bob",
        json!({"model": "qwen-plus", "input": "x", "previous_response_id": resp_id(1)}),
    )
    .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (400, &json!("previous_response_not_found"))
    );

    assert_eq!(
        call(&gw, reqwest::Method::DELETE, &path, "sk-alice").await,
        (
            200,
            json!({"id": resp_id(1), "object": "response.deleted", "deleted": true})
        )
    );
    assert_eq!(get(&gw, &path, "sk-alice").await.0, 404);
    assert_eq!(
        call(&gw, reqwest::Method::DELETE, &path, "sk-alice")
            .await
            .0,
        404
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn input_items_paginate_as_openai() {
    let fake = FakeDashScope::start().await;
    let gw = gateway::start(config(&fake.base_url)).await;
    fake.push(answer("A1", 1));
    let input: Vec<Value> = (0..5)
        .map(|i| json!({"id": format!("msg_{i}"), "role": "user", "content": format!("q{i}")}))
        .collect();
    let (s, _, _) = create(
        &gw,
        "sk-alice",
        json!({"model": "qwen-plus", "input": input}),
    )
    .await;
    assert_eq!(s, 200);
    let base = format!("/v1/responses/{}/input_items", resp_id(1));
    let ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = get(&gw, &base, "sk-alice").await;
    assert_eq!(ids(&all), ["msg_4", "msg_3", "msg_2", "msg_1", "msg_0"]);
    assert_eq!(
        (
            &all["object"],
            &all["first_id"],
            &all["last_id"],
            &all["has_more"]
        ),
        (
            &json!("list"),
            &json!("msg_4"),
            &json!("msg_0"),
            &json!(false)
        )
    );
    assert_eq!(all["data"][0], input[4]);
    let (_, p) = get(&gw, &format!("{base}?order=asc&limit=2"), "sk-alice").await;
    assert_eq!(
        (ids(&p), &p["has_more"]),
        (vec!["msg_0".to_owned(), "msg_1".into()], &json!(true))
    );
    let (_, p) = get(
        &gw,
        &format!("{base}?order=asc&limit=2&after=msg_1"),
        "sk-alice",
    )
    .await;
    assert_eq!(
        (ids(&p), &p["first_id"], &p["has_more"]),
        (
            vec!["msg_2".to_owned(), "msg_3".into()],
            &json!("msg_2"),
            &json!(true)
        )
    );
    let (_, p) = get(&gw, &format!("{base}?after=msg_1"), "sk-alice").await;
    assert_eq!(
        (ids(&p), &p["has_more"]),
        (vec!["msg_0".to_owned()], &json!(false))
    );
    let (_, p) = get(&gw, &format!("{base}?before=msg_2&limit=1"), "sk-alice").await;
    assert_eq!(
        (ids(&p), &p["has_more"]),
        (vec!["msg_4".to_owned()], &json!(true))
    );
    let (s, e) = get(&gw, &format!("{base}?limit=101"), "sk-alice").await;
    assert_eq!((s, &e["error"]["param"]), (400, &json!("limit")));
}

/// tpm 100: a Responses call of 15 tokens is counted against the key.
#[tokio::test]
async fn responses_tokens_count_against_tpm() {
    let fake = FakeDashScope::start().await;
    let mut cfg = config(&fake.base_url);
    cfg.key_limits.insert(
        "bob".into(),
        KeyLimits {
            rpm: None,
            tpm: Some(100),
        },
    );
    let gw = gateway::start(cfg).await;
    for (n, stream) in [(1, false), (2, true)] {
        let reply = if stream {
            Reply::sse_fixture("text-stream-incremental.sse")
        } else {
            answer("A", n)
        };
        fake.push(reply);
        let r = http()
            .post(gw.url("/v1/responses"))
            .bearer_auth("sk-bob")
            .json(&json!({"model": "qwen-plus", "input": "hi", "stream": stream}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    // 15 (plain) + 40 (the streamed fixture: 22 in + 18 out) = 55 of 100.
    let deadline = Instant::now() + Duration::from_secs(5);
    let remaining = loop {
        let r = http()
            .get(gw.url("/v1/models"))
            .bearer_auth("sk-bob")
            .send()
            .await
            .unwrap();
        let v = r
            .headers()
            .get("x-ratelimit-remaining-tokens")
            .map(|v| v.to_str().unwrap().to_owned());
        if v.as_deref() == Some("45") || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(remaining.as_deref(), Some("45"));
}

fn redis_config(upstream: &str, url: &str) -> Config {
    let mut cfg = config(upstream);
    cfg.state = StateSettings {
        url: Some(Secret::new(url)),
        timeout: Duration::from_millis(300),
        prefix: "rs".into(),
        ..StateSettings::default()
    };
    cfg
}

/// Over a real Redis: a conversation started on gateway A continues on gateway B; Redis
/// stopped → a continuation is a 503 with Retry-After within the bound, and a new stored
/// response is still served with the write warning.
#[tokio::test]
async fn redis_shares_conversations_and_fails_in_bounded_time() {
    let Some(mut redis_srv) = RedisServer::start() else {
        return;
    };
    let fake = FakeDashScope::start().await;
    let a = gateway::start(redis_config(&fake.base_url, &redis_srv.url())).await;
    let b = gateway::start(redis_config(&fake.base_url, &redis_srv.url())).await;
    fake.push(answer("A1", 1));
    let (s, _, r1) = create(&a, "sk-alice", json!({"model": "qwen-plus", "input": "Q1"})).await;
    assert_eq!(s, 200, "{r1}");
    fake.push(answer("A2", 2));
    let (s, _, _) = create(
        &b,
        "sk-alice",
        json!({"model": "qwen-plus", "input": "Q2", "previous_response_id": resp_id(1)}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        sent(&fake, 1),
        json!([msg("user", "Q1"), msg("assistant", "A1"), msg("user", "Q2")])
    );
    assert_eq!(
        get(&b, &format!("/v1/responses/{}", resp_id(1)), "sk-alice").await,
        (200, r1)
    );

    redis_srv.stop();
    let started = Instant::now();
    let r = http()
        .post(b.url("/v1/responses"))
        .bearer_auth("sk-alice")
        .json(&json!({"model": "qwen-plus", "input": "Q3", "previous_response_id": resp_id(2)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.request_count(), 2);

    fake.push(answer("A4", 4));
    let (s, h, r4) = create(&a, "sk-alice", json!({"model": "qwen-plus", "input": "Q4"})).await;
    assert_eq!(s, 200, "{r4}");
    assert_eq!(
        h["x-dashbridge-warning"],
        "the response was not stored: the state store is unavailable"
    );
}
