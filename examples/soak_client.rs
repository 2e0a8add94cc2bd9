//! Traffic driver for `scripts/soak.sh`: mixed stream / non-stream chat completions against a
//! running gateway in front of the fake DashScope (auto mode), ~1% of them with an injected
//! upstream fault, every answer checked exactly.
//!
//! ```text
//! soak_client --base http://127.0.0.1:PORT [--seconds 180] [--concurrency 32]
//!             [--timeout-secs 15] [--pid GATEWAY_PID]
//! ```
//!
//! Request `i` (a global counter) is a fault when `i % 100 == 37`, rotating through
//! `error-500`, `error-429`, `drop` and `midstream-error`; otherwise it asks for `text` or
//! `stream20`. Even `i` stream, odd `i` do not. Expected results:
//! - normal, non-stream: 200 and `choices[0].message.content` equal to the fixture's text,
//!   `finish_reason` `stop`;
//! - normal, stream: 200 `text/event-stream`, one `id` across chunks, the deltas concatenated
//!   equal to the text, exactly one `finish_reason` (`stop`), and `data: [DONE]` last;
//! - `error-500` / `error-429` (both modes): the OpenAI error body with 502 / 429 and the exact
//!   type, code and message (the retry also fails: the fault is in the prompt);
//! - `drop` / `midstream-error`, stream: a prefix of the text, then exactly one in-band
//!   `data: {"error":…}` event (code `bad_upstream_response` / `content_filter`) and no
//!   `[DONE]`; non-stream they are ordinary answers (the fake only breaks streams).
//!
//! Every request has a client timeout; a timeout counts as hung. RSS (`VmRSS`/`VmHWM` of
//! `--pid`) is read at the start, every 10 s and at the end. The last stdout line is
//! `soak: requests=N wrong=W hung=H rss_start=AKiB rss_end=BKiB …`; the exit code is 1 when
//! `wrong` or `hung` is not 0 (or nothing was sent), 2 on bad arguments.

#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const USAGE: &str = "usage: soak_client --base URL [--seconds N] [--concurrency C] \
                     [--timeout-secs T] [--pid PID]";

/// `text` on the text path, non-stream (`text-nonstream.json`).
const TEXT_NONSTREAM: &str = "I am Qwen, a large-scale language model developed by Alibaba Cloud. \
                              I can answer questions, write text, reason and write code. How can I help you?";
/// `text` on the text path, stream (`text-stream-incremental.sse`).
const TEXT_STREAM: &str =
    "I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?";
/// `stream20`, both modes.
const STREAM20: &str = "The quick brown fox jumps over the lazy dog while the busy bees buzz \
                        around the old oak tree.";
/// `midstream-error`: the content before the error event (`error-in-stream.sse`).
const MIDSTREAM_PREFIX: &str = "Here is the story";

const ERR_500_MESSAGE: &str = "upstream error: An internal error has occured, please try again \
                               later or contact service support. (DashScope code InternalError, \
                               request_id e5d4c3b2-a1f0-9e8d-7c6b-5a4f3e2d1c0b)";
const ERR_429_MESSAGE: &str = "Requests rate limit exceeded, please try again later. (DashScope \
                               code Throttling.RateQuota, request_id 0cbe6006-faec-9854-bf8b-c906d75c3bd8)";
const CONTENT_FILTER_MESSAGE: &str = "Output data may contain inappropriate content. (DashScope \
                                      code DataInspectionFailed, request_id \
                                      9d8c7b6a-5f4e-93d2-a1b0-c9d8e7f6a5b4)";

const FAULTS: [&str; 4] = ["error-500", "error-429", "drop", "midstream-error"];

struct Args {
    base: String,
    seconds: u64,
    concurrency: usize,
    timeout: Duration,
    pid: Option<u32>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        base: String::new(),
        seconds: 180,
        concurrency: 32,
        timeout: Duration::from_secs(15),
        pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v:?}: {e}"));
        match flag.as_str() {
            "--base" => a.base = value()?.trim_end_matches('/').to_owned(),
            "--seconds" => a.seconds = num(value()?)?,
            "--concurrency" => a.concurrency = num(value()?)?.clamp(1, 1024) as usize,
            "--timeout-secs" => a.timeout = Duration::from_secs(num(value()?)?.max(1)),
            "--pid" => a.pid = Some(num(value()?)? as u32),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.base.is_empty() {
        return Err("--base is required".into());
    }
    Ok(a)
}

/// (VmRSS, VmHWM) in KiB of `pid`, 0 when unreadable.
fn rss(pid: Option<u32>) -> (u64, u64) {
    let Some(pid) = pid else { return (0, 0) };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What request `i` asks for.
#[derive(Clone, Copy)]
struct Plan {
    scenario: &'static str,
    stream: bool,
    fault: bool,
}

fn plan(i: u64) -> Plan {
    let stream = i.is_multiple_of(2);
    if i % 100 == 37 {
        let kind = FAULTS[((i / 100) % FAULTS.len() as u64) as usize];
        return Plan {
            scenario: kind,
            stream,
            fault: true,
        };
    }
    Plan {
        scenario: if i.is_multiple_of(3) {
            "stream20"
        } else {
            "text"
        },
        stream,
        fault: false,
    }
}

enum Outcome {
    Ok,
    Wrong(String),
    Hung,
}

/// The OpenAI error body `{"error":{"message","type","param","code"}}`, exactly.
fn check_error_body(body: &[u8], kind: &str, code: &str, message: &str) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "error body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })?;
    let want = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    if v == want {
        Ok(())
    } else {
        Err(format!("error body {v} != {want}"))
    }
}

/// The `data:` payloads of an SSE body, in order.
fn sse_data(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        })
        .collect()
}

/// Folds chat.completion.chunk payloads: (text, finish reasons, error object if one came).
fn fold_chunks(data: &[&str]) -> Result<(String, Vec<String>, Option<Value>, bool), String> {
    let mut text = String::new();
    let mut finishes = Vec::new();
    let mut error = None;
    let mut done = false;
    let mut id: Option<String> = None;
    for (k, d) in data.iter().enumerate() {
        if done {
            return Err(format!("event after [DONE]: {d}"));
        }
        if error.is_some() {
            return Err(format!("event after the error event: {d}"));
        }
        if *d == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(d).map_err(|e| format!("event {k} not JSON: {e}"))?;
        if let Some(e) = v.get("error") {
            error = Some(e.clone());
            continue;
        }
        let this_id = v.get("id").and_then(Value::as_str).unwrap_or_default();
        match &id {
            None => id = Some(this_id.to_owned()),
            Some(first) if first != this_id => {
                return Err(format!("chunk id changed: {first} -> {this_id}"));
            }
            Some(_) => {}
        }
        for c in v
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = c.pointer("/delta/content").and_then(Value::as_str) {
                text.push_str(t);
            }
            if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
                finishes.push(f.to_owned());
            }
        }
    }
    Ok((text, finishes, error, done))
}

fn check(p: Plan, status: u16, ctype: &str, body: &[u8]) -> Result<(), String> {
    let expected_text = |stream: bool| match (p.scenario, stream) {
        ("stream20", _) => STREAM20,
        (_, true) => TEXT_STREAM,
        (_, false) => TEXT_NONSTREAM,
    };
    match p.scenario {
        "error-500" => {
            return if status == 502 {
                check_error_body(body, "server_error", "InternalError", ERR_500_MESSAGE)
            } else {
                Err(format!("status {status}, want 502"))
            };
        }
        "error-429" => {
            return if status == 429 {
                check_error_body(
                    body,
                    "rate_limit_exceeded",
                    "rate_limit_exceeded",
                    ERR_429_MESSAGE,
                )
            } else {
                Err(format!("status {status}, want 429"))
            };
        }
        _ => {}
    }
    if status != 200 {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(body)
        ));
    }
    if !p.stream {
        if !ctype.starts_with("application/json") {
            return Err(format!("content-type {ctype}"));
        }
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
        let content = v
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str);
        let finish = v
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str);
        let want = expected_text(false);
        return if content == Some(want) && finish == Some("stop") {
            Ok(())
        } else {
            Err(format!(
                "answer {content:?} / {finish:?}, want {want:?} / stop"
            ))
        };
    }
    if !ctype.starts_with("text/event-stream") {
        return Err(format!("content-type {ctype}"));
    }
    let text = std::str::from_utf8(body).map_err(|e| format!("stream not UTF-8: {e}"))?;
    let (got, finishes, error, done) = fold_chunks(&sse_data(text))?;
    match p.scenario {
        "drop" | "midstream-error" => {
            let (code, kind, prefix_of) = if p.scenario == "drop" {
                ("bad_upstream_response", "server_error", TEXT_STREAM)
            } else {
                ("content_filter", "invalid_request_error", MIDSTREAM_PREFIX)
            };
            let Some(e) = error else {
                return Err(format!("no error event (done={done}, text {got:?})"));
            };
            if done {
                return Err("[DONE] after a failed stream".into());
            }
            if !finishes.is_empty() {
                return Err(format!("finish_reason {finishes:?} in a failed stream"));
            }
            if e.get("code").and_then(Value::as_str) != Some(code)
                || e.get("type").and_then(Value::as_str) != Some(kind)
            {
                return Err(format!("error event {e}, want code {code} type {kind}"));
            }
            if p.scenario == "midstream-error" {
                if got != MIDSTREAM_PREFIX
                    || e.get("message").and_then(Value::as_str) != Some(CONTENT_FILTER_MESSAGE)
                {
                    return Err(format!("midstream text {got:?}, error {e}"));
                }
            } else if !prefix_of.starts_with(&got) {
                return Err(format!("text before the drop {got:?} is not a prefix"));
            }
            Ok(())
        }
        _ => {
            let want = expected_text(true);
            if let Some(e) = error {
                Err(format!("unexpected error event {e}"))
            } else if !done {
                Err("no [DONE]".into())
            } else if got != want {
                Err(format!("streamed text {got:?}, want {want:?}"))
            } else if finishes != ["stop"] {
                Err(format!("finish reasons {finishes:?}, want [stop]"))
            } else {
                Ok(())
            }
        }
    }
}

async fn one(client: &reqwest::Client, url: &str, i: u64) -> Outcome {
    let p = plan(i);
    let body = json!({
        "model": "qwen-plus",
        "stream": p.stream,
        "messages": [
            {"role": "system", "content": "You are a soak test."},
            {"role": "user", "content": format!("request {i} scenario:{}", p.scenario)}
        ]
    });
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Outcome::Hung,
        Err(e) => return Outcome::Wrong(format!("request {i}: send failed: {e:?}")),
    };
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) if e.is_timeout() => return Outcome::Hung,
        Err(e) => return Outcome::Wrong(format!("request {i}: body failed: {e:?}")),
    };
    match check(p, status, &ctype, &bytes) {
        Ok(()) => Outcome::Ok,
        Err(why) => Outcome::Wrong(format!(
            "request {i} ({}, stream={}, fault={}): {why}",
            p.scenario, p.stream, p.fault
        )),
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    ok: AtomicU64,
    faults: AtomicU64,
    wrong: AtomicU64,
    hung: AtomicU64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak_client: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    dashbridge::upstream::install_tls_provider();
    let client = match reqwest::Client::builder()
        .timeout(args.timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(args.concurrency)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soak_client: {e}");
            return ExitCode::from(2);
        }
    };
    let url = format!("{}/v1/chat/completions", args.base);
    let (rss_start, hwm_start) = rss(args.pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let counters = Arc::new(Counters::default());
    let next = Arc::new(AtomicU64::new(0));
    let examples: Arc<Mutex<Vec<String>>> = Arc::default();

    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, url) = (client.clone(), url.clone());
        let (counters, next, examples) = (counters.clone(), next.clone(), examples.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                counters.sent.fetch_add(1, Ordering::Relaxed);
                match one(&client, &url, i).await {
                    Outcome::Ok => {
                        let c = if plan(i).fault {
                            &counters.faults
                        } else {
                            &counters.ok
                        };
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Hung => {
                        counters.hung.fetch_add(1, Ordering::Relaxed);
                        let mut ex = examples.lock().unwrap_or_else(PoisonError::into_inner);
                        if ex.len() < 10 {
                            ex.push(format!("request {i}: timed out (hung)"));
                        }
                    }
                    Outcome::Wrong(why) => {
                        counters.wrong.fetch_add(1, Ordering::Relaxed);
                        let mut ex = examples.lock().unwrap_or_else(PoisonError::into_inner);
                        if ex.len() < 10 {
                            ex.push(why);
                        }
                    }
                }
            }
        }));
    }

    // RSS samples every 10 s while the workers run.
    let mut samples = vec![rss_start];
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let (r, _) = rss(args.pid);
                samples.push(r);
                println!(
                    "soak: t={}s requests={} wrong={} hung={} rss={r}KiB",
                    started.elapsed().as_secs(),
                    counters.sent.load(Ordering::Relaxed),
                    counters.wrong.load(Ordering::Relaxed),
                    counters.hung.load(Ordering::Relaxed),
                );
            }
            () = tokio::time::sleep_until(deadline.into()) => break,
        }
    }
    for w in workers {
        if w.await.is_err() {
            counters.wrong.fetch_add(1, Ordering::Relaxed);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (rss_end, hwm_end) = rss(args.pid);
    samples.push(rss_end);

    for ex in examples
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        eprintln!("soak: {ex}");
    }
    let sent = counters.sent.load(Ordering::Relaxed);
    let wrong = counters.wrong.load(Ordering::Relaxed);
    let hung = counters.hung.load(Ordering::Relaxed);
    let rss_series: Vec<String> = samples.iter().map(u64::to_string).collect();
    println!("soak: rss_samples_kib={}", rss_series.join(","));
    println!(
        "soak: requests={sent} wrong={wrong} hung={hung} rss_start={rss_start}KiB \
         rss_end={rss_end}KiB hwm_start={hwm_start}KiB hwm_end={hwm_end}KiB ok={} \
         faults_ok={} seconds={elapsed:.1} rps={:.0}",
        counters.ok.load(Ordering::Relaxed),
        counters.faults.load(Ordering::Relaxed),
        sent as f64 / elapsed.max(0.001),
    );
    if wrong > 0 || hung > 0 || sent == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
