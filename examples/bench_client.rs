//! Helper for `bench/run.sh`: the measurements a generic load generator cannot make.
//!
//! ```text
//! bench_client stream  --url URL --body FILE [--header 'K: V']... [-n 2000] [-c 1]
//!     N streaming POSTs; per response: body chunks received (one per `bytes_stream()` item),
//!     SSE events in the body, time to first body byte, total time, and the gaps between chunks.
//! bench_client idle    --url URL --body FILE [--header 'K: V']... -n 10000 [--pid PID]
//!                      [--upstream-port PORT]
//!     opens N streams at once, waits until every one has received its first chunk, then samples
//!     VmRSS / VmHWM of PID (the process under test) — and with `--upstream-port` counts PID's
//!     ESTABLISHED TCP connections to that port (from /proc/PID/fd and /proc/PID/net/tcp{,6}) —
//!     and waits for the streams to end. `kib_per_stream` is (VmRSS at the sample − VmRSS
//!     before the first request) / N.
//! bench_client slow-upstream [--listen 127.0.0.1:0] --n N --delay-ms D
//!                      [--tls --cert-out CA.pem [--h2-max-streams 250]]
//!     the fake DashScope with N scripted streams of 2 events D ms apart, then auto mode; with
//!     `--tls` over HTTPS (ALPN h2 + http/1.1, see examples/fake_dashscope.rs).
//! bench_client startup --exe PATH [--runs 5]
//!     spawns PATH (env inherited, DASHBRIDGE_LISTEN=127.0.0.1:0) and times spawn → the first
//!     `200` from GET /healthz, `--runs` times; kills each child it spawned.
//! bench_client free-port
//!     prints a loopback port that was free a moment ago (for nginx's config).
//! ```
//!
//! Every mode but `free-port` and `slow-upstream` prints one JSON object on stdout. Everything is bounded in time.

#![allow(clippy::print_stdout)]

#[path = "../tests/common/fake.rs"]
mod fake;

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const USAGE: &str = "usage: bench_client (stream|idle|slow-upstream|startup|free-port) [options] \
                     (see the doc comment of examples/bench_client.rs)";

#[derive(Default, Debug)]
struct Args {
    mode: String,
    url: String,
    body: String,
    headers: Vec<(String, String)>,
    n: usize,
    c: usize,
    pid: Option<u32>,
    listen: String,
    delay_ms: u64,
    exe: String,
    runs: usize,
    timeout_secs: u64,
    upstream_port: Option<u16>,
    tls: bool,
    cert_out: Option<String>,
    h2_max_streams: u32,
}

fn parse_args() -> Res<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        mode: it.next().ok_or(USAGE)?,
        n: 1000,
        c: 1,
        listen: "127.0.0.1:0".into(),
        delay_ms: 10_000,
        runs: 5,
        timeout_secs: 120,
        h2_max_streams: 250,
        ..Args::default()
    };
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = val()?,
            "--body" => a.body = std::fs::read_to_string(val()?)?,
            "--header" => {
                let h = val()?;
                let (k, v) = h.split_once(':').ok_or("--header wants 'Name: value'")?;
                a.headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            "-n" | "--n" => a.n = val()?.parse()?,
            "-c" => a.c = val()?.parse::<usize>()?.max(1),
            "--pid" => a.pid = Some(val()?.parse()?),
            "--listen" => a.listen = val()?,
            "--delay-ms" => a.delay_ms = val()?.parse()?,
            "--exe" => a.exe = val()?,
            "--runs" => a.runs = val()?.parse::<usize>()?.max(1),
            "--timeout-secs" => a.timeout_secs = val()?.parse()?,
            "--upstream-port" => a.upstream_port = Some(val()?.parse()?),
            "--tls" => a.tls = true,
            "--cert-out" => a.cert_out = Some(val()?),
            "--h2-max-streams" => a.h2_max_streams = val()?.parse::<u32>()?.max(1),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    Ok(a)
}

fn main() -> std::process::ExitCode {
    let result = parse_args().and_then(|a| match a.mode.as_str() {
        "stream" => runtime(false)?.block_on(stream_mode(a)),
        "idle" => runtime(true)?.block_on(idle_mode(a)),
        "slow-upstream" => runtime(true)?.block_on(slow_upstream(a)),
        "startup" => startup_mode(&a),
        "free-port" => free_port(),
        other => Err(format!("unknown mode {other:?}\n{USAGE}").into()),
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_client: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn runtime(multi: bool) -> Res<tokio::runtime::Runtime> {
    let mut b = if multi {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    Ok(b.enable_all().build()?)
}

fn client(max_idle: usize) -> Res<reqwest::Client> {
    // reqwest is built without a default TLS provider: the gateway's (ring) for every client.
    dashbridge::upstream::install_tls_provider();
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(max_idle)
        .timeout(Duration::from_secs(120))
        .build()?)
}

fn request(c: &reqwest::Client, a: &Args) -> reqwest::RequestBuilder {
    let mut r = c
        .post(&a.url)
        .header("content-type", "application/json")
        .body(a.body.clone());
    for (k, v) in &a.headers {
        r = r.header(k.as_str(), v.as_str());
    }
    r
}

/// p-th percentile (0..=100) of a sorted slice, nearest-rank.
fn pct<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary_us(mut v: Vec<Duration>) -> Value {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    json!({
        "p50": us(pct(&v, 50.0)),
        "p90": us(pct(&v, 90.0)),
        "p99": us(pct(&v, 99.0)),
        "max": us(pct(&v, 100.0)),
    })
}

fn summary_count(mut v: Vec<usize>) -> Value {
    v.sort_unstable();
    json!({"min": pct(&v, 0.0), "median": pct(&v, 50.0), "max": pct(&v, 100.0)})
}

struct One {
    status: u16,
    chunks: usize,
    events: usize,
    ttfb: Duration,
    total: Duration,
    gaps: Vec<Duration>,
}

async fn one_stream(c: &reqwest::Client, a: &Args) -> Res<One> {
    let t0 = Instant::now();
    let resp = request(c, a).send().await?;
    let status = resp.status().as_u16();
    let mut body = resp.bytes_stream();
    let (mut chunks, mut events) = (0usize, 0usize);
    let mut ttfb = None;
    let mut last = t0;
    let mut gaps = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        let now = Instant::now();
        if ttfb.is_none() {
            ttfb = Some(now - t0);
        } else {
            gaps.push(now - last);
        }
        last = now;
        chunks += 1;
        // Count complete events (blank-line terminated), across chunk boundaries.
        tail.extend_from_slice(&chunk);
        while let Some(pos) = find_event_end(&tail) {
            events += 1;
            tail.drain(..pos);
        }
    }
    Ok(One {
        status,
        chunks,
        events,
        ttfb: ttfb.unwrap_or_else(|| t0.elapsed()),
        total: t0.elapsed(),
        gaps,
    })
}

/// End (exclusive) of the first complete SSE event in `buf`, if any.
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let a = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    let b = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

async fn stream_mode(a: Args) -> Res<()> {
    let a = Arc::new(a);
    let c = client(a.c)?;
    // Warm-up: open the connections outside the measurement.
    for _ in 0..a.c.min(a.n).max(1) {
        let _ = one_stream(&c, &a).await?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(a.timeout_secs);
    let mut tasks = Vec::new();
    for _ in 0..a.c {
        let (a, c, next) = (Arc::clone(&a), c.clone(), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, Ordering::SeqCst) < a.n && Instant::now() < deadline {
                out.push(one_stream(&c, &a).await);
            }
            out
        }));
    }
    let (mut ok, mut failed) = (0usize, 0usize);
    let (mut chunks, mut events, mut ttfb, mut total, mut gaps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        for r in t.await? {
            match r {
                Ok(o) => {
                    *statuses.entry(o.status).or_default() += 1;
                    if o.status == 200 {
                        ok += 1;
                    }
                    chunks.push(o.chunks);
                    events.push(o.events);
                    ttfb.push(o.ttfb);
                    total.push(o.total);
                    gaps.extend(o.gaps);
                }
                Err(_) => failed += 1,
            }
        }
    }
    let same = chunks.iter().zip(&events).filter(|(c, e)| c == e).count();
    let out = json!({
        "requests": ok + failed,
        "ok": ok,
        "failed": failed,
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "chunks_per_response": summary_count(chunks),
        "events_per_response": summary_count(events),
        "responses_with_one_event_per_chunk": same,
        "ttfb_us": summary_us(ttfb),
        "total_us": summary_us(total),
        "gap_us": summary_us(gaps),
    });
    println!("{out}");
    Ok(())
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| {
        l.strip_prefix(key)?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// PID's ESTABLISHED TCP connections whose remote port is `port`: the socket inodes among its
/// descriptors, matched against the namespace's connection tables.
fn established_to(pid: u32, port: u16) -> Option<usize> {
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        if let Ok(link) = std::fs::read_link(fd.path())
            && let Some(inode) = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
        {
            inodes.insert(inode.to_owned());
        }
    }
    let mut n = 0;
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let remote_port = f
                .get(2)
                .and_then(|r| r.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            // st 01 = ESTABLISHED; field 9 = inode.
            if remote_port == Some(port)
                && f.get(3) == Some(&"01")
                && f.get(9).is_some_and(|i| inodes.contains(*i))
            {
                n += 1;
            }
        }
    }
    Some(n)
}

async fn idle_mode(a: Args) -> Res<()> {
    let a = Arc::new(a);
    let rss_before = a.pid.and_then(|pid| proc_status_kib(pid, "VmRSS:"));
    let c = client(a.n)?;
    let opened = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(a.n);
    for i in 0..a.n {
        if i % 200 == 199 {
            // A gentle ramp: do not overflow the listen backlogs with 10k SYNs at once.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (a, c, opened) = (Arc::clone(&a), c.clone(), Arc::clone(&opened));
        tasks.push(tokio::spawn(async move {
            let resp = request(&c, &a).send().await?;
            let ok = resp.status().is_success();
            let mut body = resp.bytes_stream();
            let mut first = true;
            let mut events = 0usize;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                if first {
                    first = false;
                    opened.fetch_add(1, Ordering::SeqCst);
                }
                events += chunk.windows(2).filter(|w| w == b"\n\n").count();
            }
            Ok::<(bool, usize), Box<dyn Error + Send + Sync>>((ok, events))
        }));
    }
    let deadline = t0 + Duration::from_secs(a.timeout_secs.min(90));
    while opened.load(Ordering::SeqCst) < a.n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open_secs = t0.elapsed().as_secs_f64();
    let open_now = opened.load(Ordering::SeqCst);
    let (rss, hwm) = match a.pid {
        Some(pid) => (
            proc_status_kib(pid, "VmRSS:"),
            proc_status_kib(pid, "VmHWM:"),
        ),
        None => (None, None),
    };
    let upstream_conns = a
        .pid
        .zip(a.upstream_port)
        .and_then(|(p, port)| established_to(p, port));
    let per_stream = rss
        .zip(rss_before)
        .map(|(r, b)| (r.saturating_sub(b)) as f64 / a.n.max(1) as f64);
    let (mut completed, mut failed, mut events) = (0usize, 0usize, Vec::new());
    let end = tokio::time::timeout(Duration::from_secs(a.timeout_secs), async {
        for t in tasks {
            match t.await {
                Ok(Ok((true, ev))) => {
                    completed += 1;
                    events.push(ev);
                }
                _ => failed += 1,
            }
        }
    })
    .await;
    let out = json!({
        "streams": a.n,
        "vmrss_kib_before": rss_before,
        "kib_per_stream": per_stream,
        "upstream_connections_at_sample": upstream_conns,
        "all_open_after_s": open_secs,
        "open_at_sample": open_now,
        "vmrss_kib_at_sample": rss,
        "vmhwm_kib_at_sample": hwm,
        "completed_ok": completed,
        "failed": failed,
        "timed_out": end.is_err(),
        "events_per_stream": summary_count(events),
    });
    println!("{out}");
    Ok(())
}

async fn slow_upstream(a: Args) -> Res<()> {
    let addr: std::net::SocketAddr = a.listen.parse()?;
    let up = if a.tls {
        let up = fake::FakeDashScope::start_tls_on(addr, a.h2_max_streams).await?;
        let path = a.cert_out.as_deref().ok_or("--tls needs --cert-out PATH")?;
        std::fs::write(path, up.ca_pem.as_deref().unwrap_or_default())?;
        up
    } else {
        fake::FakeDashScope::start_on(addr).await?
    };
    up.set_recording(false);
    let frame = |i: usize, content: &str, finish: &str| {
        let data = json!({
            "output": {"choices": [{"message": {"content": content, "role": "assistant"}, "finish_reason": finish}]},
            "usage": {"total_tokens": 12, "output_tokens": 2, "input_tokens": 10},
            "request_id": "51051051-0000-9000-8000-510510510510"
        });
        format!("id:{i}\nevent:result\n:HTTP_STATUS/200\ndata:{data}\n\n")
    };
    let body = format!("{}{}", frame(1, "Hello", "null"), frame(2, "", "stop"));
    for _ in 0..a.n {
        up.push(fake::Reply::sse(body.clone()).paced(Duration::from_millis(a.delay_ms)));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", up.base_url)?;
    out.flush()?;
    drop(out);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Bounded: ends on SIGTERM/SIGINT or after 10 minutes.
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        () = tokio::time::sleep(Duration::from_secs(600)) => {}
    }
    Ok(())
}

/// One blocking `GET /healthz`; true on a 200.
fn healthz(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

fn startup_mode(a: &Args) -> Res<()> {
    let mut times = Vec::new();
    let mut to_listen_line = Vec::new();
    for _ in 0..a.runs {
        let t0 = Instant::now();
        let mut child = Command::new(&a.exe)
            .env("DASHBRIDGE_LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let result = (|| -> Res<(Duration, Duration)> {
            let stderr = child.stderr.take().ok_or("no stderr")?;
            let mut lines = BufReader::new(stderr).lines();
            let addr = loop {
                let line = lines.next().ok_or("exited before listening")??;
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    break addr;
                }
                if t0.elapsed() > Duration::from_secs(10) {
                    return Err("no listening line within 10 s".into());
                }
            };
            let listening = t0.elapsed();
            // Tight loop until the first 200.
            while !healthz(&addr) {
                if t0.elapsed() > Duration::from_secs(10) {
                    return Err("no 200 from /healthz within 10 s".into());
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            Ok((listening, t0.elapsed()))
        })();
        let _ = child.kill();
        let _ = child.wait();
        let (l, t) = result?;
        to_listen_line.push(l);
        times.push(t);
    }
    println!(
        "{}",
        json!({"runs": a.runs, "spawn_to_healthz_us": summary_us(times), "spawn_to_listening_line_us": summary_us(to_listen_line)})
    );
    Ok(())
}

fn free_port() -> Res<()> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("{}", l.local_addr()?.port());
    Ok(())
}
