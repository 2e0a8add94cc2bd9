//! The embedded state store and per-key limits, in process: the store's bounds (entries,
//! bytes, TTL) under concurrent load, key isolation of stored responses, named client keys,
//! `rpm` / `tpm` through the gateway with OpenAI's exact `x-ratelimit-*` headers, and the
//! tokens of plain and streamed chat calls counted against `tpm`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake::{FakeDashScope, Reply};
use common::gateway::{self, Gateway};
use dashbridge::config::{ClientKey, Config, StateSettings};
use dashbridge::store::memory::MemoryStore;
use dashbridge::store::{KeyLimits, ResponseRecord, StateStore, owner_hash};
use serde_json::{Value, json};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn record(owner: &str, id: &str, text_len: usize) -> ResponseRecord {
    ResponseRecord {
        id: id.to_owned(),
        owner: owner.to_owned(),
        model: "qwen-plus".into(),
        created_at: 1_700_000_000,
        input: vec![json!({"type": "message", "role": "user", "content": "x".repeat(text_len)})],
        output: vec![json!({"type": "message", "role": "assistant", "content": []})],
        usage: Some(json!({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3})),
        previous_response_id: None,
        response: None,
        extra: Default::default(),
    }
}

fn settings(max_entries: u64, max_bytes: u64, ttl: Duration) -> StateSettings {
    StateSettings {
        max_entries,
        max_bytes,
        ttl,
        ..StateSettings::default()
    }
}

/// 8 writers × 2 500 records of 100–2 100 bytes: the entry bound holds (small records), then
/// the byte bound holds (large ones); the newest record is always kept (LRU).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_bounds_hold_under_load() {
    for (max_entries, max_bytes) in [(200u64, 64 * 1024 * 1024u64), (100_000, 256 * 1024)] {
        let store = Arc::new(MemoryStore::new(&settings(
            max_entries,
            max_bytes,
            Duration::from_secs(3600),
        )));
        let started = Instant::now();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for i in 0..2_500usize {
                        let rec = record("owner", &format!("resp_{w}_{i}"), 100 + (i * 7) % 2_000);
                        store.put_response(&rec).await.unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let (entries, bytes) = store.usage().await;
        eprintln!(
            "max_entries {max_entries}, max_bytes {max_bytes}: 20000 puts in {:?} → {entries} entries, {bytes} weighted bytes",
            started.elapsed()
        );
        assert!(entries <= max_entries, "{entries} > {max_entries}");
        assert!(bytes <= max_bytes, "{bytes} > {max_bytes}");
        assert!(entries > 0);
        // The newest record is kept: LRU evicts the least recently used.
        store
            .put_response(&record("owner", "resp_last", 1_000))
            .await
            .unwrap();
        let (entries, bytes) = store.usage().await;
        assert!(entries <= max_entries && bytes <= max_bytes);
        let newest = store.get_response("owner", "resp_last").await.unwrap();
        assert!(newest.is_some(), "the newest record was evicted");
    }
}

#[tokio::test]
async fn memory_store_records_expire_after_the_ttl() {
    let store = MemoryStore::new(&settings(100, 1 << 20, Duration::from_millis(700)));
    store
        .put_response(&record("o", "resp_a", 10))
        .await
        .unwrap();
    store.set_learned_endpoint("m", "multimodal").await.unwrap();
    assert!(store.get_response("o", "resp_a").await.unwrap().is_some());
    assert_eq!(
        store.learned_endpoint("m").await.unwrap().as_deref(),
        Some("multimodal")
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(store.get_response("o", "resp_a").await.unwrap(), None);
    assert_eq!(store.learned_endpoint("m").await.unwrap(), None);
    assert_eq!(store.usage().await.0, 0);
}

#[tokio::test]
async fn a_stored_response_is_visible_only_to_its_owner() {
    let store = MemoryStore::new(&StateSettings::default());
    let (alice, bob) = (owner_hash("sk-alice"), owner_hash("sk-bob"));
    let rec = record(&alice, "resp_1", 10);
    store.put_response(&rec).await.unwrap();
    assert_eq!(store.get_response(&bob, "resp_1").await.unwrap(), None);
    assert!(!store.delete_response(&bob, "resp_1").await.unwrap());
    assert_eq!(
        store.get_response(&alice, "resp_1").await.unwrap(),
        Some(rec)
    );
    assert!(store.delete_response(&alice, "resp_1").await.unwrap());
    assert_eq!(store.get_response(&alice, "resp_1").await.unwrap(), None);
}

#[test]
fn named_keys_from_the_environment_and_the_keys_file() {
    let dir = std::env::temp_dir().join(format!("dashbridge-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys");
    std::fs::write(&keys, "# team keys\ncarol sk-3\nsk-bare-file\n").unwrap();
    let toml = dir.join("d.toml");
    std::fs::write(
        &toml,
        "[keys.\"alice\"]\nrpm = 60\ntpm = 100000\n[keys.\"carol\"]\nrpm = 5\n[limits]\non_store_error = \"deny\"\n[state]\nttl_secs = 3600\n",
    )
    .unwrap();
    let env: HashMap<String, String> = [
        ("DASHBRIDGE_API_KEYS", "alice:sk-1,bob:sk-2,sk-bare"),
        ("DASHBRIDGE_API_KEYS_FILE", keys.to_str().unwrap()),
        ("DASHSCOPE_API_KEY", "sk-server"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let cfg = Config::load(Some(&toml), &env).unwrap();
    let names: Vec<&str> = cfg.client_keys.iter().map(|k| k.label.as_str()).collect();
    let bare = format!("key-{}", &owner_hash("sk-bare")[..12]);
    let bare_file = format!("key-{}", &owner_hash("sk-bare-file")[..12]);
    assert_eq!(
        names,
        ["alice", "bob", bare.as_str(), "carol", bare_file.as_str()]
    );
    assert_eq!(cfg.client_keys[2].name, "sk-bare");
    assert_eq!(
        cfg.key_limits["alice"],
        KeyLimits {
            rpm: Some(60),
            tpm: Some(100_000)
        }
    );
    assert_eq!(cfg.state.ttl, Duration::from_secs(3600));
    assert_eq!(cfg.on_store_error, dashbridge::config::OnStoreError::Deny);
    // The printed configuration never shows a key, not even a bare key's name.
    let summary = cfg.summary();
    for secret in ["sk-1", "sk-2", "sk-3", "sk-bare", "sk-server"] {
        assert!(!summary.contains(secret), "{secret} printed");
    }
    assert!(summary.contains(&bare));

    // A limit for a name no key has, and a zero limit, are reported.
    std::fs::write(&toml, "[keys.\"mallory\"]\nrpm = 0\n").unwrap();
    let errs = Config::load(Some(&toml), &env).unwrap_err().0;
    assert!(
        errs.iter()
            .any(|e| e.starts_with("keys.\"mallory\": no client key")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e == "keys.\"mallory\".rpm must be greater than 0"),
        "{errs:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// alice (rpm 3), bob (no limits), a bare key (rpm 1 through its label).
pub fn limited_config(upstream: &str) -> Config {
    let mut cfg = gateway::config(upstream);
    cfg.client_keys = vec![
        ClientKey::new(Some("alice"), "sk-alice"),
        ClientKey::new(Some("bob"), "sk-bob"),
        ClientKey::new(None, "sk-bare"),
    ];
    cfg.key_limits.insert(
        "alice".into(),
        KeyLimits {
            rpm: Some(3),
            tpm: None,
        },
    );
    let bare_label = cfg.client_keys[2].label.clone();
    cfg.key_limits.insert(
        bare_label,
        KeyLimits {
            rpm: Some(1),
            tpm: None,
        },
    );
    cfg
}

async fn get_models(gw: &Gateway, key: &str) -> reqwest::Response {
    http()
        .get(gw.url("/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn rpm_limit_with_exact_headers() {
    dashbridge::metrics::install();
    let fake = FakeDashScope::start().await;
    let gw = gateway::start(limited_config(&fake.base_url)).await;
    for remaining in ["2", "1", "0"] {
        let r = get_models(&gw, "sk-alice").await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(
            header(&r, "x-ratelimit-remaining-requests"),
            Some(remaining)
        );
        assert_eq!(header(&r, "x-ratelimit-reset-requests"), Some("1m"));
        assert_eq!(header(&r, "x-ratelimit-limit-tokens"), None);
    }
    let r = get_models(&gw, "sk-alice").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), Some("60"));
    assert_eq!(header(&r, "x-ratelimit-limit-requests"), Some("3"));
    assert_eq!(header(&r, "x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(header(&r, "x-ratelimit-reset-requests"), Some("1m"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {
            "message": "Rate limit reached for key 'alice' on requests per min (RPM): Limit 3. Please try again in 60s.",
            "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
    );
    // bob has no limits and no headers; a bare key's limit applies through its label, and
    // its 429 names the label, never the key.
    let r = get_models(&gw, "sk-bob").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ratelimit-limit-requests"), None);
    assert_eq!(get_models(&gw, "sk-bare").await.status(), 200);
    let r = get_models(&gw, "sk-bare").await;
    assert_eq!(r.status(), 429);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("sk-bare") && text.contains("'key-"),
        "{text}"
    );
    // A wrong key is still a 401, not a 429; health is never limited.
    assert_eq!(get_models(&gw, "sk-nobody").await.status(), 401);
    let r = http().get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "ready", "store": "ok", "store_backend": "memory"})
    );
    let metrics = http()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"dashbridge_rate_limited_total{key="alice",axis="requests"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains("sk-bare"));
}

async fn chat(gw: &Gateway, key: &str, stream: bool) -> reqwest::Response {
    http()
        .post(gw.chat_url())
        .bearer_auth(key)
        .json(&json!({"model": "qwen-plus", "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

/// Poll until the key's token window shows `want` tokens used (counting happens when the
/// call's response is done, in a task of its own).
async fn wait_remaining(gw: &Gateway, key: &str, want: &str) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get_models(gw, key).await;
        if header(&r, "x-ratelimit-remaining-tokens") == Some(want) || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// tpm 100: a plain call uses 51 tokens (22 in + 29 out), a streamed one 40 (22 + 18).
#[tokio::test]
async fn tpm_counts_plain_and_streamed_usage() {
    let fake = FakeDashScope::start().await;
    let mut cfg = limited_config(&fake.base_url);
    cfg.key_limits.insert(
        "bob".into(),
        KeyLimits {
            rpm: None,
            tpm: Some(100),
        },
    );
    let gw = gateway::start(cfg).await;
    fake.push(Reply::json_fixture("text-nonstream.json"));
    let r = chat(&gw, "sk-bob", false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ratelimit-limit-tokens"), Some("100"));
    assert_eq!(header(&r, "x-ratelimit-remaining-tokens"), Some("100"));
    assert_eq!(header(&r, "x-ratelimit-reset-tokens"), Some("0s"));
    r.bytes().await.unwrap();
    let r = wait_remaining(&gw, "sk-bob", "49").await;
    assert_eq!(header(&r, "x-ratelimit-remaining-tokens"), Some("49"));
    assert_eq!(header(&r, "x-ratelimit-reset-tokens"), Some("1m"));

    fake.push(Reply::sse_fixture("text-stream-incremental.sse"));
    let r = chat(&gw, "sk-bob", true).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let r = wait_remaining(&gw, "sk-bob", "9").await;
    assert_eq!(header(&r, "x-ratelimit-remaining-tokens"), Some("9"));

    // 91 < 100: one more call is admitted; its 51 tokens put the key over.
    fake.push(Reply::json_fixture("text-nonstream.json"));
    assert_eq!(chat(&gw, "sk-bob", false).await.status(), 200);
    let r = wait_remaining(&gw, "sk-bob", "0").await;
    assert_eq!(r.status(), 429);
    // Until the first call (made a moment ago) leaves the window.
    let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((50..=60).contains(&retry), "{retry}");
    assert_eq!(header(&r, "x-ratelimit-remaining-tokens"), Some("0"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "tokens");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(fake.request_count(), 3);
}

/// `rediss://` (TLS) is accepted; an unreachable Redis fails within the bound, never hangs
/// or panics, and the gateway still starts (connections are made lazily).
#[tokio::test]
async fn unreachable_redis_and_rediss_urls_fail_within_the_bound() {
    // A listener that accepts and never answers: the TLS handshake starts and stalls.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            held.push(c);
        }
    });
    for (scheme, port) in [
        ("redis", 1),
        ("rediss", 1),
        ("rediss", silent_port),
        ("redis", silent_port),
    ] {
        let url = format!("{scheme}://127.0.0.1:{port}/0");
        let s = StateSettings {
            url: Some(dashbridge::config::Secret::new(url.clone())),
            timeout: Duration::from_millis(300),
            ..StateSettings::default()
        };
        let store = dashbridge::store::from_settings(&s).unwrap();
        assert_eq!(store.backend(), "redis");
        let t = Instant::now();
        assert!(store.ping().await.is_err(), "{url}");
        assert!(store.get_response("o", "resp_1").await.is_err(), "{url}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{url}: {:?}",
            t.elapsed()
        );
    }
}
