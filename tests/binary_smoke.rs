//! The real binary: started with environment variables against an in-process fake upstream.
//!
//! SIGTERM mid-stream drains and exits 0; invalid settings exit 64 naming every bad variable;
//! `--check-config` redacts secrets; `--healthcheck` reports 0/1; and over a whole run (success,
//! errors, a stream, metrics) with debug logging, neither key appears in the logs, a response
//! body or a response header, and neither does the prompt or completion text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake::{FakeDashScope, Reply};
use common::gateway::{chunk_text, sse_data};
use futures_util::StreamExt;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_dashbridge");
const TEXT: &str =
    "I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?";
/// The answer of `text-nonstream.json`.
const TEXT_JSON: &str = "I am Qwen, a large-scale language model developed by Alibaba Cloud. I can answer questions, write text, reason and write code. How can I help you?";

/// A command for the binary with a clean environment plus `env`.
fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs the binary to completion (bounded: it must exit within 10 s).
async fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    let child = command(env).args(args).spawn().unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output());
    tokio::time::timeout(Duration::from_secs(10), out)
        .await
        .expect("the binary exits by itself")
        .unwrap()
        .unwrap()
}

/// A gateway process; killed on drop if still running.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    /// Everything written to stderr and stdout so far.
    output: Arc<Mutex<String>>,
}

fn collect(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut out = into.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
}

impl Gateway {
    async fn start(env: &[(&str, &str)]) -> Gateway {
        let mut child = command(env).spawn().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        collect(child.stderr.take().unwrap(), Arc::clone(&output));
        collect(child.stdout.take().unwrap(), Arc::clone(&output));
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = loop {
            if let Some(addr) = listening_addr(&output.lock().unwrap()) {
                break addr;
            }
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                panic!(
                    "no 'listening on' line; output:\n{}",
                    output.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Gateway {
            child,
            addr,
            output,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit.
    async fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the gateway did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in a `listening on http://ADDR` line.
fn listening_addr(output: &str) -> Option<SocketAddr> {
    let start = output.find("listening on http://")? + "listening on http://".len();
    let addr: String = output[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    addr.parse().ok()
}

fn chat(model: &str, content: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "stream": stream
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_lets_the_stream_finish_and_exits_0() {
    let fake = FakeDashScope::start().await;
    fake.push(Reply::sse_fixture("text-stream-incremental.sse").paced(Duration::from_millis(250)));
    let mut gw = Gateway::start(&[
        ("DASHBRIDGE_LISTEN", "127.0.0.1:0"),
        ("DASHBRIDGE_UPSTREAM", &fake.base_url),
        ("DASHSCOPE_API_KEY", "sk-smoke"),
        ("DASHBRIDGE_SHUTDOWN_GRACE_SECS", "20"),
    ])
    .await;

    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat("qwen-plus", "Who are you?", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut received = body.next().await.unwrap().unwrap().to_vec();

    gw.sigterm();
    while let Some(chunk) = body.next().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    let data = sse_data(&String::from_utf8(received).unwrap());
    assert_eq!(chunk_text(&data), TEXT);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));

    let status = gw.wait(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "output:\n{}", gw.output());
    let out = gw.output();
    assert!(out.contains("SIGTERM"), "{out}");
    assert!(out.contains("draining"), "{out}");
}

#[tokio::test]
async fn invalid_settings_exit_64_naming_every_bad_variable() {
    // The port is taken: a binary that bound before validating would exit 69, not 64.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let out = run(
        &[
            ("DASHBRIDGE_LISTEN", listen.as_str()),
            ("DASHBRIDGE_UPSTREAM_TIMEOUT_SECS", "abc"),
            ("DASHBRIDGE_LOG_FORMAT", "xml"),
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DASHBRIDGE_UPSTREAM_TIMEOUT_SECS: 'abc'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("DASHBRIDGE_LOG_FORMAT / log.format: 'xml'"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert!(out.stdout.is_empty());
    drop(taken);
}

#[tokio::test]
async fn check_config_prints_the_config_with_secrets_redacted() {
    let server_key = "sk-check-config-5e1f0a";
    let client_key = "client-check-config-77c2";
    let out = run(
        &[
            ("DASHBRIDGE_LISTEN", "127.0.0.1:9999"),
            ("DASHSCOPE_API_KEY", server_key),
            ("DASHBRIDGE_API_KEYS", client_key),
        ],
        &["--check-config"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("configuration OK"), "{all}");
    assert!(all.contains("127.0.0.1:9999"), "{all}");
    assert!(all.contains("[redacted]"), "{all}");
    assert!(!all.contains(server_key), "{all}");
    assert!(!all.contains(client_key), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_against_a_running_gateway_and_1_when_nothing_listens() {
    let fake = FakeDashScope::start().await;
    let mut gw = Gateway::start(&[
        ("DASHBRIDGE_LISTEN", "127.0.0.1:0"),
        ("DASHBRIDGE_UPSTREAM", &fake.base_url),
    ])
    .await;
    let listen = gw.addr.to_string();
    let env = [("DASHBRIDGE_LISTEN", listen.as_str())];

    let up = run(&env, &["--healthcheck"]).await;
    assert_eq!(up.status.code(), Some(0));

    gw.sigterm();
    assert_eq!(gw.wait(Duration::from_secs(10)).await.code(), Some(0));
    let down = run(&env, &["--healthcheck"]).await;
    assert_eq!(down.status.code(), Some(1));
}

fn record_headers(resp: &reqwest::Response, into: &mut String) {
    for (k, v) in resp.headers() {
        into.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
}

/// A full run with distinctive keys, debug logging and JSON logs: success, upstream errors, a
/// rejected client key, a stream, the models list and the metrics page. Neither key appears
/// in any log line, response body or response header; neither do the prompt nor the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_prompt_or_completion_leaks_into_logs_or_responses() {
    const SERVER_KEY: &str = "sk-SERVERKEY-d41d8cd98f00b204";
    const CLIENT_KEY: &str = "ck-CLIENTKEY-e9800998ecf8427e";
    const WRONG_KEY: &str = "ck-WRONGKEY-0cc175b9c0f1b6a8";
    const PROMPT: &str = "PROMPT-MARKER-6f1ed002";
    let fake = FakeDashScope::start().await;
    for format in ["json", "text"] {
        let mut gw = Gateway::start(&[
            ("DASHBRIDGE_LISTEN", "127.0.0.1:0"),
            ("DASHBRIDGE_UPSTREAM", &fake.base_url),
            ("DASHSCOPE_API_KEY", SERVER_KEY),
            ("DASHBRIDGE_API_KEYS", CLIENT_KEY),
            ("DASHBRIDGE_UPSTREAM_RETRIES", "1"),
            ("DASHBRIDGE_RETRY_BASE_MS", "10"),
            ("DASHBRIDGE_LOG_FORMAT", format),
            ("RUST_LOG", "debug"),
        ])
        .await;
        let client = reqwest::Client::new();
        let mut seen = String::new();
        let cases: Vec<(&str, Value, u16)> = vec![
            (CLIENT_KEY, chat("qwen-plus", PROMPT, false), 200),
            (CLIENT_KEY, chat("qwen-plus", PROMPT, true), 200),
            (
                CLIENT_KEY,
                chat("qwen-plus", &format!("{PROMPT} scenario:error-401"), false),
                401,
            ),
            (
                CLIENT_KEY,
                chat("qwen-plus", &format!("{PROMPT} scenario:error-500"), false),
                502,
            ),
            (
                CLIENT_KEY,
                chat(
                    "qwen-plus",
                    &format!("{PROMPT} scenario:midstream-error"),
                    true,
                ),
                200,
            ),
            (WRONG_KEY, chat("qwen-plus", PROMPT, false), 401),
            (
                CLIENT_KEY,
                json!({"model": "qwen-plus", "messages": "nope"}),
                400,
            ),
        ];
        for (key, body, want) in cases {
            let resp = client
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), want, "{body}");
            record_headers(&resp, &mut seen);
            seen.push_str(&resp.text().await.unwrap());
        }
        for path in ["/v1/models", "/metrics", "/healthz", "/readyz", "/nope"] {
            let resp = client
                .get(gw.url(path))
                .bearer_auth(CLIENT_KEY)
                .send()
                .await
                .unwrap();
            record_headers(&resp, &mut seen);
            seen.push_str(&resp.text().await.unwrap());
        }
        gw.sigterm();
        assert_eq!(gw.wait(Duration::from_secs(10)).await.code(), Some(0));
        // Let the reader threads drain the pipes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let logs = gw.output();

        if format == "json" {
            for line in logs.lines().filter(|l| !l.trim().is_empty()) {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
                assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
            }
            let finished: Vec<Value> = logs
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v["message"] == "request finished")
                .collect();
            // 7 chat requests + 5 GETs, each one line with its span's request id.
            assert_eq!(finished.len(), 12, "{logs}");
            assert!(finished.iter().all(|v| v["span"]["request_id"].is_string()
                && v["status"].is_u64()
                && v["duration_ms"].is_u64()));
            assert!(finished.iter().any(|v| v["span"]["model"] == "qwen-plus"
                && v["span"]["endpoint"] == "text"
                && v["span"]["upstream_request_id"] == "d30a9914-ac97-9102-b746-ce0cb35e3fa2"));
        }
        // The run really happened and was logged at debug level.
        assert!(seen.contains(TEXT_JSON), "the gateway answered");
        assert!(seen.contains("data: [DONE]"), "a stream completed");
        assert!(logs.contains("request finished"), "{logs}");
        assert!(logs.contains("DEBUG") || logs.contains("\"level\":\"DEBUG\""));
        for secret in [SERVER_KEY, CLIENT_KEY, WRONG_KEY] {
            assert!(
                !logs.contains(secret),
                "{secret} in the {format} logs:\n{logs}"
            );
            assert!(!seen.contains(secret), "{secret} in a response:\n{seen}");
        }
        assert!(
            !logs.contains(PROMPT),
            "prompt in the {format} logs:\n{logs}"
        );
        assert!(
            !logs.contains("large language model"),
            "completion in the logs"
        );
    }
    // The fake did get the server key (the gateway works), never the client's.
    let sent: Vec<String> = fake
        .requests()
        .iter()
        .filter_map(|r| r.headers.get("authorization"))
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|a| a == &format!("Bearer {SERVER_KEY}")));
}

/// Item 13: a server key, no client keys and a non-loopback address refuse to start (64, with
/// the fix), and `--check-config` says the same; the switch or a client key lets it start.
#[tokio::test]
async fn an_open_relay_refuses_to_start_and_check_config_agrees() {
    let relay = [
        ("DASHBRIDGE_LISTEN", "0.0.0.0:0"),
        ("DASHSCOPE_API_KEY", "sk-relay-3f9a"),
    ];
    for args in [&[][..], &["--check-config"][..]] {
        let out = run(&relay, args).await;
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for needle in [
            "open relay refused",
            "0.0.0.0:0",
            "DASHBRIDGE_API_KEYS",
            "DASHBRIDGE_ALLOW_ANONYMOUS=true",
        ] {
            assert!(stderr.contains(needle), "{needle:?} in {stderr}");
        }
        assert!(!stderr.contains("sk-relay-3f9a") && !stderr.contains("listening on"));
    }
    let mut knowingly = relay.to_vec();
    knowingly.push(("DASHBRIDGE_ALLOW_ANONYMOUS", "true"));
    assert_eq!(
        run(&knowingly, &["--check-config"]).await.status.code(),
        Some(0)
    );
    let mut keyed = relay.to_vec();
    keyed.push(("DASHBRIDGE_API_KEYS", "ck-1"));
    assert_eq!(
        run(&keyed, &["--check-config"]).await.status.code(),
        Some(0)
    );
    // The README's run command: the key alone listens on loopback.
    let out = run(&[("DASHSCOPE_API_KEY", "sk-x")], &["--check-config"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:8080"));
}

/// Item 14: header-bound settings are checked at load time (64, naming the variable, never the
/// value; `--check-config` agrees), and surrounding whitespace is trimmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_bound_settings_are_validated_at_load_and_trimmed() {
    let bad = [
        ("DASHBRIDGE_LISTEN", "127.0.0.1:0"),
        ("DASHSCOPE_API_KEY", "sk-line1\nsk-line2"),
        ("DASHSCOPE_WORKSPACE", "ws 1"),
    ];
    for args in [&[][..], &["--check-config"][..]] {
        let out = run(&bad, args).await;
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("DASHSCOPE_API_KEY contains whitespace"),
            "{stderr}"
        );
        assert!(
            stderr.contains("DASHSCOPE_WORKSPACE contains whitespace"),
            "{stderr}"
        );
        assert!(!stderr.contains("sk-line"), "{stderr}");
    }
    // A key pasted with a trailing newline reaches DashScope trimmed.
    let fake = FakeDashScope::start().await;
    let mut gw = Gateway::start(&[
        ("DASHBRIDGE_LISTEN", "127.0.0.1:0"),
        ("DASHBRIDGE_UPSTREAM", &fake.base_url),
        ("DASHSCOPE_API_KEY", " sk-trimmed\n"),
        ("DASHSCOPE_WORKSPACE", "ws-trimmed "),
    ])
    .await;
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat("qwen-plus", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent = fake.requests();
    let h = &sent.last().unwrap().headers;
    assert_eq!(h["authorization"], "Bearer sk-trimmed");
    assert_eq!(h["x-dashscope-workspace"], "ws-trimmed");
    gw.sigterm();
    assert_eq!(gw.wait(Duration::from_secs(10)).await.code(), Some(0));
}
