//! The fake DashScope native upstream as a stand-alone server, for the e2e suite and the
//! benchmark.
//!
//! ```text
//! cargo run --release --example fake_dashscope -- [--listen 127.0.0.1:0]
//! ```
//!
//! Runs in auto mode (see `tests/common/fake.rs`), prints exactly one line
//! `listening on http://ADDR` to stdout, and runs until SIGTERM / SIGINT, then exits 0.
//! Request recording is off (nobody could read it, and it would grow memory in a benchmark).

#![allow(clippy::print_stdout)]

#[path = "../tests/common/fake.rs"]
mod fake;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "usage: fake_dashscope [--listen ADDR]   (default 127.0.0.1:0)";

fn parse_args() -> Result<SocketAddr, String> {
    let mut listen = String::from("127.0.0.1:0");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            listen = args
                .next()
                .ok_or_else(|| format!("--listen needs a value\n{USAGE}"))?;
        } else if let Some(v) = arg.strip_prefix("--listen=") {
            listen = v.to_owned();
        } else {
            return Err(format!("unknown argument {arg:?}\n{USAGE}"));
        }
    }
    listen
        .parse()
        .map_err(|e| format!("invalid --listen address {listen:?}: {e}"))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = async {
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-h" | "--help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let addr = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fake_dashscope: {e}");
            return ExitCode::from(2);
        }
    };
    let fake = match fake::FakeDashScope::start_on(addr).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake_dashscope: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    fake.set_recording(false);

    let mut out = std::io::stdout().lock();
    if writeln!(out, "listening on {}", fake.base_url)
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(out);

    shutdown_signal().await;
    drop(fake);
    ExitCode::SUCCESS
}
