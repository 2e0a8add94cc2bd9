//! The upstream over TLS, as production talks to DashScope: the gateway in-process in front of
//! the fake DashScope serving HTTPS (ALPN h2 + http/1.1) with a certificate signed by a CA made
//! at start-up. With that CA in `DASHBRIDGE_UPSTREAM_CA_FILE` answers are exact, over HTTP/1.1
//! by default and HTTP/2 with `DASHBRIDGE_UPSTREAM_HTTP=auto`; without it the client gets a 502 that says the certificate
//! is not trusted. Plus the setting's start-up errors.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not the helpers below.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use axum::http::Version;
use common::fake::FakeDashScope;
use common::gateway::{self, Gateway, SERVER_KEY, chunk_text, sse_data};
use dashbridge::Config;
use serde_json::{Value, json};

/// The assistant text of `text-stream-incremental.sse`.
const TEXT: &str =
    "I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?";
/// The assistant text of `text-nonstream.json`.
const TEXT_JSON: &str = "I am Qwen, a large-scale language model developed by Alibaba Cloud. I can answer questions, write text, reason and write code. How can I help you?";

/// A file under the temp dir, unique to this process and test.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("dashbridge-tls-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

/// The configuration as the binary loads it: the fake's URL and, if given, the CA file.
fn load(upstream: &str, ca_file: Option<&str>) -> Result<Config, Vec<String>> {
    load_with(upstream, ca_file, None)
}

fn load_with(
    upstream: &str,
    ca_file: Option<&str>,
    http: Option<&str>,
) -> Result<Config, Vec<String>> {
    let mut env = HashMap::from([
        ("DASHBRIDGE_UPSTREAM".to_owned(), upstream.to_owned()),
        ("DASHSCOPE_API_KEY".to_owned(), SERVER_KEY.to_owned()),
        ("DASHBRIDGE_UPSTREAM_RETRIES".to_owned(), "0".to_owned()),
    ]);
    if let Some(f) = ca_file {
        env.insert("DASHBRIDGE_UPSTREAM_CA_FILE".to_owned(), f.to_owned());
    }
    if let Some(h) = http {
        env.insert("DASHBRIDGE_UPSTREAM_HTTP".to_owned(), h.to_owned());
    }
    Config::load(None, &env).map_err(|e| e.0)
}

fn chat_body(stream: bool) -> Value {
    json!({
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "Who are you? scenario:text"}],
        "stream": stream
    })
}

async fn post(gw: &Gateway, stream: bool) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(gw.chat_url())
        .json(&chat_body(stream))
        .send()
        .await
        .expect("the gateway answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn trusted_ca_file_gives_exact_answers_over_http1_and_on_auto_over_http2() {
    for (http, version) in [(None, Version::HTTP_11), (Some("auto"), Version::HTTP_2)] {
        let fake = FakeDashScope::start_tls(250).await;
        let ca = temp_file("ca.pem", fake.ca_pem.as_deref().unwrap().as_bytes());
        let cfg = load_with(&fake.base_url, ca.to_str(), http).expect("the CA file loads");
        assert_eq!(cfg.upstream_ca.as_ref().map(|c| c.certs.len()), Some(1));
        let gw = gateway::start(cfg).await;

        let (status, body) = post(&gw, false).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], TEXT_JSON);

        let (status, body) = post(&gw, true).await;
        assert_eq!(status, 200, "{body}");
        let data = sse_data(&body);
        assert_eq!(chunk_text(&data), TEXT);
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));

        let versions: Vec<Version> = fake.requests().iter().map(|r| r.version).collect();
        assert_eq!(
            versions,
            [version, version],
            "DASHBRIDGE_UPSTREAM_HTTP={http:?}"
        );
        let _ = std::fs::remove_file(ca);
    }
}

#[test]
fn upstream_http_names_its_values() {
    let up = "https://127.0.0.1:9";
    assert!(load_with(up, None, Some("http1")).is_ok());
    let errs = load_with(up, None, Some("h2")).unwrap_err();
    assert_eq!(
        errs,
        ["DASHBRIDGE_UPSTREAM_HTTP / upstream.http: \"h2\" is not \"http1\" or \"auto\""]
    );
}

#[tokio::test]
async fn without_the_ca_file_the_certificate_is_not_trusted() {
    let fake = FakeDashScope::start_tls(250).await;
    let gw = gateway::start(load(&fake.base_url, None).unwrap()).await;
    for stream in [false, true] {
        let (status, body) = post(&gw, stream).await;
        assert_eq!(status, 502, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with("DashScope is unreachable: the upstream's TLS certificate is not trusted (UnknownIssuer)"),
            "{msg}"
        );
        assert!(msg.contains("DASHBRIDGE_UPSTREAM_CA_FILE"), "{msg}");
        assert!(!body.contains(SERVER_KEY), "{body}");
        assert_eq!(v["error"]["code"], "upstream_unreachable");
    }
    assert_eq!(fake.request_count(), 0);
}

#[test]
fn a_bad_ca_file_is_a_start_up_error_naming_the_setting() {
    let up = "https://127.0.0.1:9";
    let missing = std::env::temp_dir().join("dashbridge-tls-no-such-file.pem");
    let errs = load(up, missing.to_str()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(&format!(
            "DASHBRIDGE_UPSTREAM_CA_FILE / upstream.ca_file {}: ",
            missing.display()
        )),
        "{errs:?}"
    );

    let empty = temp_file("empty.pem", b"# no certificates here\n");
    let errs = load(up, empty.to_str()).unwrap_err();
    assert_eq!(
        errs,
        [format!(
            "DASHBRIDGE_UPSTREAM_CA_FILE / upstream.ca_file {}: no certificate in it \
             (expected PEM blocks -----BEGIN CERTIFICATE-----)",
            empty.display()
        )]
    );

    let garbage = temp_file(
        "garbage.pem",
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    let errs = load(up, garbage.to_str()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(&format!(
            "DASHBRIDGE_UPSTREAM_CA_FILE / upstream.ca_file {}: certificate 1 cannot be a trusted root",
            garbage.display()
        )),
        "{errs:?}"
    );
    for f in [empty, garbage] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn the_ca_file_is_also_read_from_the_config_file() {
    let ca = temp_file(
        "file-ca.pem",
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    let toml = temp_file(
        "dashbridge.toml",
        format!("[upstream]\nca_file = {:?}\n", ca.to_str().unwrap()).as_bytes(),
    );
    let env: HashMap<String, String> = HashMap::new();
    let errs = Config::load(Some(&toml), &env).unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("upstream.ca_file"), "{errs:?}");
    assert!(errs[0].contains("cannot be a trusted root"), "{errs:?}");
    for f in [ca, toml] {
        let _ = std::fs::remove_file(f);
    }
}
