//! The gateway, started in-process for integration tests.
//!
//! [`config`] is the test baseline: defaults, the fake upstream's base URL, a server key
//! (`sk-test-server-key`) and no gateway retries, so every upstream request a test sees was
//! caused by the client's request. [`start`] binds `127.0.0.1:0`, builds the state and spawns
//! `dashbridge::serve` with a shutdown future that never resolves; dropping the returned
//! [`Gateway`] aborts the server task.

use std::net::SocketAddr;

use dashbridge::config::{Config, Secret};
use dashbridge::{AppState, serve};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The key every test gateway sends upstream unless a test removes it.
pub const SERVER_KEY: &str = "sk-test-server-key";

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` (no trailing slash, no `/v1`).
    pub base_url: String,
    task: JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    /// `http://ADDR/v1/chat/completions`.
    pub fn chat_url(&self) -> String {
        format!("{}/v1/chat/completions", self.base_url)
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Defaults pointed at `upstream_base_url`, with the test server key and `retries = 0`.
pub fn config(upstream_base_url: &str) -> Config {
    let mut cfg = Config::defaults();
    cfg.upstream.base_url = upstream_base_url.to_owned();
    cfg.upstream.api_key = Some(Secret::new(SERVER_KEY));
    cfg.retries = 0;
    cfg
}

/// Start the gateway with `cfg` on an ephemeral port.
pub async fn start(cfg: Config) -> Gateway {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("gateway: cannot bind 127.0.0.1:0: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("gateway: no local address: {e}"),
    };
    let state = match AppState::new(cfg) {
        Ok(s) => s,
        Err(e) => panic!("gateway: cannot build the state: {e:?}"),
    };
    let task = tokio::spawn(serve(listener, state, std::future::pending()));
    Gateway {
        addr,
        base_url: format!("http://{addr}"),
        task,
    }
}

/// Start the gateway with the baseline [`config`] for `upstream_base_url`.
pub async fn start_default(upstream_base_url: &str) -> Gateway {
    start(config(upstream_base_url)).await
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            let lines: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|l| l.strip_prefix(' ').unwrap_or(l))
                .collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect()
}

/// The concatenated `delta.content` of chunk payloads (everything but `[DONE]` and errors).
pub fn chunk_text(data: &[String]) -> String {
    data.iter()
        .filter(|d| d.as_str() != "[DONE]")
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}
