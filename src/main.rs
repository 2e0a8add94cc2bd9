//! The binary: flags → telemetry → config (exit 64 on error) → bind → serve until a signal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use dashbridge::config::{Config, ProcessEnv};
use dashbridge::{AppState, metrics, serve, shutdown, telemetry};

/// OpenAI-compatible gateway in front of Alibaba Cloud DashScope's native API.
///
/// Environment (override the config file): DASHBRIDGE_LISTEN, DASHBRIDGE_UPSTREAM,
/// DASHBRIDGE_REGION, DASHSCOPE_API_KEY, DASHSCOPE_WORKSPACE, DASHBRIDGE_API_KEYS,
/// DASHBRIDGE_API_KEYS_FILE, DASHBRIDGE_ALLOW_ANONYMOUS, DASHBRIDGE_UPSTREAM_TIMEOUT_SECS, DASHBRIDGE_CONNECT_TIMEOUT_SECS, DASHBRIDGE_UPSTREAM_CA_FILE, DASHBRIDGE_UPSTREAM_HTTP,
/// DASHBRIDGE_UPSTREAM_RETRIES, DASHBRIDGE_RETRY_BASE_MS, DASHBRIDGE_MAX_BODY_BYTES,
/// DASHBRIDGE_BODY_BUDGET_BYTES, DASHBRIDGE_MAX_CONCURRENCY, DASHBRIDGE_MAX_CONNECTIONS, DASHBRIDGE_REQUEST_READ_TIMEOUT_SECS,
/// DASHBRIDGE_SHUTDOWN_GRACE_SECS, DASHBRIDGE_LOG_FORMAT (text|json), DASHBRIDGE_LOG_CONTENT, DASHBRIDGE_ACCESS_LOG,
/// DASHBRIDGE_UNKNOWN_FIELDS (forward|drop|reject), DASHBRIDGE_UNSUPPORTED_FIELDS (warn|reject),
/// RUST_LOG. See README.md for every key and default.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// TOML config file (every key optional); also DASHBRIDGE_CONFIG.
    #[arg(long, env = "DASHBRIDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Validate the configuration, print it with secrets redacted, and exit.
    #[arg(long)]
    check_config: bool,
    /// Probe http://127.0.0.1:<listen port>/healthz and exit 0 if healthy (container HEALTHCHECK).
    #[arg(long)]
    healthcheck: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(cli.config.as_deref(), &ProcessEnv) {
        Ok(cfg) => cfg,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(64);
        }
    };
    if cli.check_config {
        eprintln!("configuration OK\n{}", cfg.summary());
        return ExitCode::SUCCESS;
    }
    if cli.healthcheck {
        return healthcheck(cfg.listen.port()).await;
    }
    telemetry::init(cfg.log_format);
    if cfg.anonymous_relay() {
        tracing::warn!(
            listen = %cfg.listen,
            "DASHBRIDGE_ALLOW_ANONYMOUS=true: anyone who reaches this address uses the server's DashScope key"
        );
    }
    metrics::install();
    metrics::spawn_upkeep();
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", cfg.listen);
            return ExitCode::from(69);
        }
    };
    let state = match AppState::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(70);
        }
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening on http://{addr}"),
        Err(_) => tracing::info!("listening"),
    }
    match serve(listener, state, shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}

/// A dependency-free HTTP/1.1 GET of /healthz (distroless images have no curl).
async fn healthcheck(port: u16) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<bool, std::io::Error>(buf.starts_with(b"HTTP/1.1 200"))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), probe).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
