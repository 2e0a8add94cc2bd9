//! The fake DashScope native upstream as a stand-alone server, for the e2e suite and the
//! benchmark.
//!
//! ```text
//! cargo run --release --example fake_dashscope -- [--listen 127.0.0.1:0]
//!     [--tls --cert-out CA.pem [--h2-max-streams 250]]
//! ```
//!
//! Runs in auto mode (see `tests/common/fake.rs`), prints exactly one line
//! `listening on http://ADDR` to stdout, and runs until SIGTERM / SIGINT, then exits 0.
//! With `--tls` it serves HTTPS instead (`listening on https://ADDR`; ALPN h2 and http/1.1, at
//! most `--h2-max-streams` concurrent streams per HTTP/2 connection) with a certificate for
//! 127.0.0.1 / localhost, and writes the PEM of the CA that signed it to `--cert-out` before
//! printing the line (point `DASHBRIDGE_UPSTREAM_CA_FILE` at it).
//! Request recording is off (nobody could read it, and it would grow memory in a benchmark).

#![allow(clippy::print_stdout)]

#[path = "../tests/common/fake.rs"]
mod fake;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "usage: fake_dashscope [--listen ADDR] [--tls --cert-out PATH [--h2-max-streams N]]   \
                     (defaults: 127.0.0.1:0, plain HTTP; with --tls, 250 streams per connection)";

struct Args {
    listen: SocketAddr,
    /// `--tls`: where the CA PEM goes, and the HTTP/2 stream limit.
    tls: Option<(String, u32)>,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = String::from("127.0.0.1:0");
    let (mut tls, mut cert_out, mut max_streams) = (false, None, 250u32);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--tls" => tls = true,
            "--cert-out" => cert_out = Some(value()?),
            "--h2-max-streams" => {
                let v = value()?;
                max_streams = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("invalid --h2-max-streams {v:?}"))?;
            }
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    let listen = listen
        .parse()
        .map_err(|e| format!("invalid --listen address {listen:?}: {e}"))?;
    let tls = match (tls, cert_out) {
        (true, Some(path)) => Some((path, max_streams)),
        (true, None) => return Err(format!("--tls needs --cert-out PATH\n{USAGE}")),
        (false, Some(_)) => return Err(format!("--cert-out needs --tls\n{USAGE}")),
        (false, None) => None,
    };
    Ok(Args { listen, tls })
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
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fake_dashscope: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = args.listen;
    let started = match &args.tls {
        None => fake::FakeDashScope::start_on(addr).await,
        Some((_, max_streams)) => fake::FakeDashScope::start_tls_on(addr, *max_streams).await,
    };
    let fake = match started {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake_dashscope: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    fake.set_recording(false);
    if let (Some((path, _)), Some(pem)) = (&args.tls, &fake.ca_pem)
        && let Err(e) = std::fs::write(path, pem)
    {
        eprintln!("fake_dashscope: cannot write --cert-out {path}: {e}");
        return ExitCode::FAILURE;
    }

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
