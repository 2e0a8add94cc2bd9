//! The fuzz targets, bounded, on the stable toolchain: what `cargo fuzz` does for hours,
//! `cargo test` does for a few seconds on every run.
//!
//! The target bodies live in `fuzz/targets.rs` (shared with the cargo-fuzz crate, so the logic
//! is not duplicated). This file runs them on
//! - every committed corpus file in `fuzz/corpus/<target>/`, asserting exact outcomes for the
//!   seeds (how many frames a recorded stream decodes to, which status an error body maps to,
//!   which endpoint a request goes to), and
//! - random mutations of the corpus (byte flips, overwrites, truncation, deletion, insertion of
//!   JSON/SSE tokens, splicing two files): proptest with a fixed seed and case count, so a run
//!   is reproducible and bounded. Every target asserts its own properties (no panic, rendered
//!   JSON is JSON, statuses are 4xx/5xx, `shape_for_endpoint` is idempotent, SSE frames do not
//!   depend on how the bytes were split into reads).
//!
//! A crash found by `cargo fuzz` belongs in the corpus: it is replayed here from then on.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, PoisonError};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::Value;
use targets::{RequestOutcome, ResponseOutcome};

// ---- corpus ----------------------------------------------------------------------------------

/// (file name, bytes) of every file of one target's corpus.
type Corpus = Vec<(String, Vec<u8>)>;

/// `fuzz/corpus/<target>/*`, sorted by file name.
fn corpus(target: &str) -> Corpus {
    static CACHE: LazyLock<Mutex<Vec<(String, Corpus)>>> = LazyLock::new(|| Mutex::new(Vec::new()));
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, files)) = cache.iter().find(|(t, _)| t == target) {
        return files.clone();
    }
    let files = read_corpus(target);
    cache.push((target.to_owned(), files.clone()));
    files
}

fn read_corpus(target: &str) -> Corpus {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fuzz", "corpus", target]
        .iter()
        .collect();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => panic!("cannot read {}: {e}", dir.display()),
    };
    let mut files: Corpus = entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            match std::fs::read(&path) {
                Ok(bytes) => (name, bytes),
                Err(e) => panic!("cannot read {}: {e}", path.display()),
            }
        })
        .collect();
    files.sort();
    files
}

fn seed<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    match files.iter().find(|(n, _)| n == name) {
        Some((_, b)) => b,
        None => panic!("corpus file {name} is missing"),
    }
}

// ---- seeds: exact outcomes -------------------------------------------------------------------

fn translated(endpoint: &'static str, messages: usize) -> RequestOutcome {
    RequestOutcome::Translated { endpoint, messages }
}

#[test]
fn request_seeds_translate_as_expected() {
    let files = corpus("request");
    assert!(
        files.len() >= 40,
        "request corpus has {} files",
        files.len()
    );
    for (name, bytes) in &files {
        // Every file runs through the length-chosen context without panicking.
        targets::request(bytes);
        // Native requests are not OpenAI requests: they have no `messages`.
        if name.starts_with("native-") {
            assert_eq!(
                targets::request_with(bytes, 0),
                RequestOutcome::Invalid(Some("messages".into())),
                "{name}"
            );
        }
    }
    let expect = [
        ("openai-text.json", translated("text", 2)),
        ("openai-stream-usage.json", translated("text", 1)),
        ("openai-tools.json", translated("text", 3)),
        ("openai-legacy-functions.json", translated("text", 3)),
        ("openai-vision.json", translated("multimodal", 1)),
        ("openai-reasoning.json", translated("text", 4)),
        ("openai-json-mode-logprobs.json", translated("text", 1)),
        ("openai-partial-cjk.json", translated("text", 2)),
        ("openai-from-request-text.json", translated("text", 2)),
        ("openai-from-request-tools.json", translated("text", 2)),
        (
            "openai-from-request-tool-result.json",
            translated("text", 5),
        ),
        // Found by cargo fuzz: a lone surrogate escape inside a tool schema (forwarded raw).
        ("crash-lone-surrogate-in-tool.json", translated("text", 1)),
        (
            "openai-invalid-empty-messages.json",
            RequestOutcome::Invalid(Some("messages".into())),
        ),
        (
            "openai-invalid-no-model.json",
            RequestOutcome::Invalid(Some("model".into())),
        ),
    ];
    for (name, want) in expect {
        assert_eq!(targets::request_with(seed(&files, name), 0), want, "{name}");
    }
    // The unknown-field policy "reject" (selector 32) refuses the unknown field by name.
    assert_eq!(
        targets::request_with(seed(&files, "openai-json-mode-logprobs.json"), 32),
        RequestOutcome::Refused(Some("some_unknown_field".into()))
    );
    assert_eq!(targets::request(b"[1,2]"), RequestOutcome::NotARequest);
}

fn resp(whole: bool, frames: usize, chunks: usize, finished: bool, status: u16) -> ResponseOutcome {
    ResponseOutcome {
        whole,
        frames,
        chunks,
        finished,
        error_status: status,
    }
}

#[test]
fn response_seeds_translate_as_expected() {
    let files = corpus("response");
    assert!(
        files.len() >= 29,
        "response corpus has {} files",
        files.len()
    );
    for (_, bytes) in &files {
        targets::response(bytes);
    }
    let expect = [
        ("body-text-nonstream.json", resp(true, 0, 0, false, 400)),
        ("body-error-throttling.json", resp(true, 0, 0, false, 429)),
        ("body-error-invalid-key.json", resp(true, 0, 0, false, 401)),
        (
            "body-error-model-not-exist.json",
            resp(true, 0, 0, false, 404),
        ),
        (
            "body-error-data-inspection.json",
            resp(true, 0, 0, false, 400),
        ),
        ("error-html.txt", resp(false, 0, 0, false, 400)),
        ("error-msg.json", resp(true, 1, 0, false, 429)),
        ("in-band-code.json", resp(true, 1, 0, false, 400)),
        (
            "frames-text-stream-incremental.jsonl",
            resp(false, 8, 8, true, 400),
        ),
        (
            "frames-tool-calls-stream.jsonl",
            resp(false, 3, 3, true, 400),
        ),
        ("frames-n2.jsonl", resp(false, 5, 4, true, 400)),
        ("frames-parallel-tools.jsonl", resp(false, 3, 3, true, 400)),
        // Token counts near u64::MAX: totals saturate (they overflowed, a panic in debug).
        ("frames-usage-overflow.jsonl", resp(false, 2, 2, true, 400)),
        ("body-usage-overflow.json", resp(true, 1, 1, true, 400)),
    ];
    for (name, want) in expect {
        assert_eq!(targets::response(seed(&files, name)), want, "{name}");
    }
}

/// (frames, errors) a decoded stream holds.
fn counts(decoded: &[targets::Decoded]) -> (usize, usize) {
    let errors = decoded.iter().filter(|d| d.is_err()).count();
    (decoded.len() - errors, errors)
}

#[test]
fn sse_seeds_decode_the_same_whatever_the_split() {
    let files = corpus("sse");
    assert!(files.len() >= 24, "sse corpus has {} files", files.len());
    let expect: [(&str, (usize, usize)); 16] = [
        ("error-in-stream-first-frame.sse", (1, 0)),
        ("error-in-stream.sse", (3, 0)),
        ("multimodal-stream.sse", (8, 0)),
        ("reasoning-stream.sse", (10, 0)),
        ("reasoning-tool-calls-stream.sse", (6, 0)),
        ("text-stream-cumulative.sse", (7, 0)),
        ("text-stream-incremental.sse", (8, 0)),
        ("text-stream-resultformat-text.sse", (4, 0)),
        ("tool-calls-stream.sse", (3, 0)),
        ("crlf.sse", (2, 0)),
        ("bom-comments-done.sse", (1, 0)),
        ("bom-split-twice.sse", (1, 0)),
        ("multiline-data.sse", (2, 0)),
        ("cr-only-and-tail.sse", (2, 0)),
        ("bad-utf8.sse", (1, 1)),
        ("cjk-emoji.sse", (2, 0)),
    ];
    for (name, want) in expect {
        let decoded = targets::sse(seed(&files, name));
        assert_eq!(counts(&decoded), want, "{name}");
        // The same recording read in one piece decodes to the same frames.
        if let Some(stem) = name.strip_suffix(".sse") {
            let whole = format!("{stem}-whole.sse");
            if files.iter().any(|(n, _)| *n == whole) {
                assert_eq!(targets::sse(seed(&files, &whole)), decoded, "{whole}");
            }
        }
    }
    let multiline = targets::sse(seed(&files, "multiline-data.sse"));
    assert_eq!(
        multiline[0]
            .as_ref()
            .map(|f| (f.event.as_str(), f.data.as_str())),
        Ok(("result", "{\"output\":\n{\"text\":\"x\"}}"))
    );
    assert_eq!(multiline[1].as_ref().map(|f| f.is_error_event()), Ok(true));
    for (name, bytes) in &files {
        targets::sse(bytes);
        assert!(!name.is_empty());
    }
}

// ---- mutations -------------------------------------------------------------------------------

/// Tokens worth inserting: JSON structure, awkward numbers and strings, SSE line starts.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"4294967296",
    b"1e999",
    b"-0.0",
    b"18446744073709551616",
    b"\"\\ud800\"",
    b"\"\\u0000\"",
    b"\"index\":",
    b"\"finish_reason\":\"stop\"",
    b"\"tool_calls\":[{}]",
    b"\"content\":[{\"text\":1}]",
    b"\"type\":\"image_url\"",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"data:",
    b"event:error\n",
    b":comment\n",
    b"\xef\xbb\xbf",
    b"\xe4\xbd",
    b"\xff",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    Truncate {
        at: usize,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Token {
        at: usize,
        which: usize,
    },
    Random {
        at: usize,
        bytes: Vec<u8>,
    },
    Splice {
        at: usize,
        other: usize,
        from: usize,
        len: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        at.prop_map(|at| Mutation::Truncate { at }),
        (at, 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at, 0..TOKENS.len()).prop_map(|(at, which)| Mutation::Token { at, which }),
        (at, proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Random { at, bytes }),
        (at, any::<usize>(), any::<usize>(), 1usize..256).prop_map(|(at, other, from, len)| {
            Mutation::Splice {
                at,
                other,
                from,
                len,
            }
        }),
    ]
}

/// Apply `muts` to a copy of `files[pick]` (positions taken modulo the current length).
fn mutate(files: &[(String, Vec<u8>)], pick: usize, muts: &[Mutation]) -> Vec<u8> {
    let mut data = files[pick % files.len()].1.clone();
    let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    for m in muts {
        match m {
            Mutation::Flip { at, bit } => {
                if !data.is_empty() {
                    let i = at % data.len();
                    data[i] ^= 1 << bit;
                }
            }
            Mutation::Set { at, byte } => {
                if !data.is_empty() {
                    let i = at % data.len();
                    data[i] = *byte;
                }
            }
            Mutation::Truncate { at } => data.truncate(pos(*at, data.len())),
            Mutation::Delete { at, len } => {
                let i = pos(*at, data.len());
                let end = (i + len).min(data.len());
                data.drain(i..end);
            }
            Mutation::Token { at, which } => {
                let i = pos(*at, data.len());
                data.splice(i..i, TOKENS[*which].iter().copied());
            }
            Mutation::Random { at, bytes } => {
                let i = pos(*at, data.len());
                data.splice(i..i, bytes.iter().copied());
            }
            Mutation::Splice {
                at,
                other,
                from,
                len,
            } => {
                let src = &files[other % files.len()].1;
                let start = pos(*from, src.len());
                let piece = &src[start..(start + len).min(src.len())];
                let i = pos(*at, data.len());
                data.splice(i..i, piece.iter().copied());
            }
        }
    }
    data
}

/// Values a JSON node may be replaced with: wrong types, extremes, OpenAI and DashScope shapes.
const VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "1e308",
    "-1e308",
    "18446744073709551615",
    "-9223372036854775808",
    "\"\"",
    "\"x\"",
    "\"\\u0000\\n\\r\"",
    "\"写🌸\"",
    "\"auto\"",
    "\"none\"",
    "\"required\"",
    "\"high\"",
    "\"stop\"",
    "\"null\"",
    "\"json_object\"",
    "\"data:image/png;base64,AAAA\"",
    "[]",
    "[null]",
    "[{}]",
    "[\"https://example.invalid/a.jpg\"]",
    "{}",
    r#"{"type":"text","text":"t"}"#,
    r#"{"type":"image_url","image_url":{"url":"https://example.invalid/i.png"}}"#,
    r#"{"type":"input_audio","input_audio":{"data":"AAAA","format":"mp3"}}"#,
    r#"{"type":"function","function":{"name":"f","arguments":"{"}}"#,
    r#"{"role":"tool","tool_call_id":"c","content":"r"}"#,
    r#"{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}"#,
    r#"{"role":"user","content":[{"type":"text","text":"hi"}]}"#,
    r#"{"index":1,"id":"call_x","type":"function","function":{"name":"g","arguments":"{}"}}"#,
    r#"{"message":{"content":[{"text":"p"}],"reasoning_content":"r"},"finish_reason":"tool_calls","index":3}"#,
    r#"{"input_tokens":1,"output_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":1}}"#,
];

/// Keys worth adding: request fields, message and part keys, response fields.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "include_usage",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "response_format",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
    "web_search_options",
    "enable_thinking",
    "thinking_budget",
    "enable_search",
    "top_k",
    "result_format",
    "incremental_output",
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "reasoning_content",
    "partial",
    "type",
    "text",
    "image_url",
    "url",
    "input_audio",
    "video_url",
    "video",
    "index",
    "id",
    "function",
    "arguments",
    "output",
    "choices",
    "message",
    "finish_reason",
    "usage",
    "input_tokens",
    "output_tokens",
    "request_id",
    "code",
    "search_info",
    "logprobs",
];

/// A structure-aware mutation: `node` picks a node (pre-order, modulo the count) of the JSON
/// document (or of line `line` of a JSON-lines file).
#[derive(Debug, Clone)]
enum JsonMutation {
    Replace {
        line: usize,
        node: usize,
        with: usize,
    },
    Remove {
        line: usize,
        node: usize,
    },
    Insert {
        line: usize,
        node: usize,
        key: usize,
        with: usize,
    },
    Duplicate {
        line: usize,
        node: usize,
    },
}

fn json_mutation() -> impl Strategy<Value = JsonMutation> {
    let n = any::<usize>();
    prop_oneof![
        (n, n, 0..VALUES.len()).prop_map(|(line, node, with)| JsonMutation::Replace {
            line,
            node,
            with
        }),
        (n, n).prop_map(|(line, node)| JsonMutation::Remove { line, node }),
        (n, n, 0..KEYS.len(), 0..VALUES.len()).prop_map(|(line, node, key, with)| {
            JsonMutation::Insert {
                line,
                node,
                key,
                with,
            }
        }),
        (n, n).prop_map(|(line, node)| JsonMutation::Duplicate { line, node }),
    ]
}

fn value(i: usize) -> Value {
    serde_json::from_str(VALUES[i]).unwrap_or(Value::Null)
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Apply `m` to the node numbered `*left` (pre-order); true once applied.
fn apply_at(v: &mut Value, left: &mut usize, m: &JsonMutation) -> bool {
    if *left == 0 {
        match m {
            JsonMutation::Replace { with, .. } => *v = value(*with),
            JsonMutation::Insert { key, with, .. } => match v {
                Value::Object(o) => {
                    o.insert(KEYS[*key].to_owned(), value(*with));
                }
                Value::Array(a) => a.push(value(*with)),
                other => *other = value(*with),
            },
            JsonMutation::Duplicate { .. } => match v {
                Value::Array(a) if !a.is_empty() => a.push(a[0].clone()),
                Value::String(s) => *s = s.repeat(3),
                _ => {}
            },
            // Removing happens in the parent (below); the root becomes `{}`.
            JsonMutation::Remove { .. } => *v = Value::Object(serde_json::Map::new()),
        }
        return true;
    }
    *left -= 1;
    let children: Vec<&mut Value> = match v {
        Value::Array(a) => a.iter_mut().collect(),
        Value::Object(o) => o.values_mut().collect(),
        _ => return false,
    };
    let mut remove = None;
    for (k, child) in children.into_iter().enumerate() {
        if *left == 0 && matches!(m, JsonMutation::Remove { .. }) {
            remove = Some(k);
            break;
        }
        let size = count_nodes(child);
        if *left < size {
            return apply_at(child, left, m);
        }
        *left -= size;
    }
    if let Some(k) = remove {
        match v {
            Value::Array(a) => {
                a.remove(k);
            }
            Value::Object(o) => {
                if let Some(key) = o.keys().nth(k).cloned() {
                    o.remove(&key);
                }
            }
            _ => {}
        }
        return true;
    }
    false
}

/// Apply JSON mutations to a copy of `files[pick]`: the whole file if it is one JSON document,
/// else each non-empty line that is one (JSON lines). Files that are not JSON come back as is.
fn json_mutate(files: &[(String, Vec<u8>)], pick: usize, muts: &[JsonMutation]) -> Vec<u8> {
    let data = &files[pick % files.len()].1;
    let mut docs: Vec<Option<Value>> = match serde_json::from_slice::<Value>(data) {
        Ok(v) => vec![Some(v)],
        Err(_) => data
            .split(|b| *b == b'\n')
            .map(|l| serde_json::from_slice::<Value>(l).ok())
            .collect(),
    };
    let lines: Vec<usize> = (0..docs.len()).filter(|i| docs[*i].is_some()).collect();
    if lines.is_empty() {
        return data.clone();
    }
    for m in muts {
        let (JsonMutation::Replace { line, node, .. }
        | JsonMutation::Remove { line, node }
        | JsonMutation::Insert { line, node, .. }
        | JsonMutation::Duplicate { line, node }) = m;
        if let Some(doc) = docs[lines[line % lines.len()]].as_mut() {
            let mut left = node % count_nodes(doc);
            apply_at(doc, &mut left, m);
        }
    }
    let rendered: Vec<String> = docs
        .iter()
        .zip(String::from_utf8_lossy(data).split('\n'))
        .map(|(doc, raw)| {
            doc.as_ref()
                .map_or_else(|| raw.to_owned(), Value::to_string)
        })
        .collect();
    rendered.join("\n").into_bytes()
}

fn json_mutations() -> impl Strategy<Value = (usize, Vec<JsonMutation>)> {
    (
        any::<usize>(),
        proptest::collection::vec(json_mutation(), 1..6),
    )
}

/// Fixed seed and case count: the same inputs on every run, bounded time, no files written.
fn config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    }
}

fn mutations() -> impl Strategy<Value = (usize, Vec<Mutation>)> {
    (any::<usize>(), proptest::collection::vec(mutation(), 1..8))
}

proptest! {
    #![proptest_config(config(1500, 0x5eed_0001))]
    #[test]
    fn mutated_requests_never_panic((pick, muts) in mutations()) {
        let files = corpus("request");
        let data = mutate(&files, pick, &muts);
        targets::request(&data);
        for selector in [0, 0b1111, 32] {
            targets::request_with(&data, selector);
        }
    }
}

proptest! {
    #![proptest_config(config(1500, 0x5eed_0002))]
    #[test]
    fn mutated_responses_never_panic((pick, muts) in mutations()) {
        let files = corpus("response");
        targets::response(&mutate(&files, pick, &muts));
    }
}

proptest! {
    #![proptest_config(config(400, 0x5eed_0003))]
    #[test]
    fn mutated_sse_decodes_the_same_whatever_the_split((pick, muts) in mutations()) {
        let files = corpus("sse");
        let data = mutate(&files, pick, &muts);
        let whole = targets::sse(&data);
        // One more split plan: every 3rd byte, over the same body.
        let (_, body) = targets::split_plan(&data);
        let cuts: Vec<usize> = (3..body.len()).step_by(3).collect();
        prop_assert_eq!(targets::decode(targets::split_at(body, &cuts)), whole);
    }
}

proptest! {
    #![proptest_config(config(1500, 0x5eed_0004))]
    #[test]
    fn json_mutated_requests_never_panic((pick, muts) in json_mutations()) {
        let files = corpus("request");
        let data = json_mutate(&files, pick, &muts);
        targets::request(&data);
        for selector in [0, 0b1111, 32] {
            targets::request_with(&data, selector);
        }
    }
}

proptest! {
    #![proptest_config(config(1500, 0x5eed_0005))]
    #[test]
    fn json_mutated_responses_never_panic((pick, muts) in json_mutations()) {
        let files = corpus("response");
        targets::response(&json_mutate(&files, pick, &muts));
    }
}

// ---- Responses API ---------------------------------------------------------------------------

#[test]
fn responses_seeds_translate_as_expected() {
    use targets::ResponsesOutcome::Translated;
    let files = corpus("responses_request");
    let got: Vec<(String, targets::ResponsesOutcome)> = files
        .iter()
        .map(|(n, b)| (n.clone(), targets::responses_request(b, 0)))
        .collect();
    let want = |endpoint, messages, tools| Translated {
        endpoint,
        messages,
        tools,
    };
    assert_eq!(
        got,
        vec![
            ("additional-tools.json".into(), want("text", 1, 1)),
            ("codex.json".into(), want("text", 2, 3)),
            ("history.json".into(), want("text", 8, 2)),
            ("media.json".into(), want("multimodal", 1, 0)),
            ("params.json".into(), want("text", 2, 2)),
        ]
    );
}

#[test]
fn responses_stream_seeds_end_as_expected() {
    let files = corpus("responses_stream");
    let got: Vec<(String, usize, usize, &str)> = files
        .iter()
        .map(|(n, b)| {
            let s = targets::responses_stream(b);
            (n.clone(), s.frames, s.items, s.status)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("apply-patch.txt".into(), 6, 3, "completed"),
            ("error-in-stream.txt".into(), 2, 1, "incomplete"),
            ("reasoning-tool-calls-stream.txt".into(), 6, 2, "completed"),
            ("text-stream-incremental.txt".into(), 8, 1, "completed"),
            ("tool-calls-stream.txt".into(), 3, 1, "completed"),
        ]
    );
}

proptest! {
    #![proptest_config(config(1000, 0x5eed_0006))]
    #[test]
    fn json_mutated_responses_requests_never_panic((pick, muts) in json_mutations()) {
        let files = corpus("responses_request");
        let data = json_mutate(&files, pick, &muts);
        for selector in [0, 0b1111, 32] {
            targets::responses_request(&data, selector);
        }
    }
}

proptest! {
    #![proptest_config(config(1000, 0x5eed_0007))]
    #[test]
    fn mutated_responses_requests_never_panic((pick, muts) in mutations()) {
        let files = corpus("responses_request");
        targets::responses_request(&mutate(&files, pick, &muts), 4);
    }
}

proptest! {
    #![proptest_config(config(1000, 0x5eed_0008))]
    #[test]
    fn mutated_responses_streams_keep_the_event_rules((pick, muts) in mutations()) {
        let files = corpus("responses_stream");
        targets::responses_stream(&mutate(&files, pick, &muts));
    }
}

// ---- embedding answers -----------------------------------------------------------------------

#[test]
fn embedding_answer_seeds_read_as_expected() {
    let files = corpus("embedding_answer");
    // (file, items and numbers the fast reader read; `None`: left to serde)
    let expected: &[(&str, targets::EmbeddingOutcome)] = &[
        ("bare-point.json", None),
        ("duplicate-index.json", None),
        ("embedding-nonstream.json", Some((2, 8))),
        ("embedding-sparse-nonstream.json", None),
        ("error-embedding-batch-size.json", Some((0, 0))),
        ("escaped-id.json", None),
        ("fake-compact.json", Some((3, 48))),
        ("leading-zero.json", None),
        ("numbers-edge.json", Some((3, 27))),
        ("out-of-range.json", None),
        ("trailing-comma.json", None),
    ];
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let listed: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, listed, "every seed has its expected outcome");
    for (name, want) in expected {
        assert_eq!(
            targets::embedding_answer(seed(&files, name)),
            *want,
            "{name}"
        );
    }
}

proptest! {
    #![proptest_config(config(1500, 0x5eed_0009))]
    #[test]
    fn mutated_embedding_answers_read_as_serde_does((pick, muts) in mutations()) {
        let files = corpus("embedding_answer");
        targets::embedding_answer(&mutate(&files, pick, &muts));
    }
}

/// A JSON number's text: float32 values printed the ways upstreams print them, values next to
/// a float32 rounding midpoint, and arbitrary decimals (up to 25 digits each side, exponents
/// within ±60).
fn number_text() -> impl Strategy<Value = String> {
    let float32 = any::<u32>()
        .prop_map(f32::from_bits)
        .prop_filter("finite", |x| x.is_finite());
    let digits = |max: usize| proptest::collection::vec(0u8..10, 1..=max);
    prop_oneof![
        float32.clone().prop_map(|x| format!("{}", f64::from(x))),
        float32.clone().prop_map(|x| format!("{:e}", f64::from(x))),
        float32.clone().prop_map(|x| format!("{x}")),
        (
            float32.prop_filter("below the largest", |x| x.abs() < f32::MAX),
            14usize..=60
        )
            .prop_map(|(x, precision)| {
                // Halfway to the next float32 up, printed with 15 to 61 significant digits: the
                // shorter ones land a hair above or below the midpoint.
                let next = f32::from_bits(x.abs().to_bits() + 1);
                let mid = (f64::from(x.abs()) + f64::from(next)) / 2.0;
                format!("{mid:.precision$e}")
            }),
        (
            any::<bool>(),
            digits(25),
            proptest::option::of(digits(25)),
            proptest::option::of((any::<bool>(), 0u8..3, -60i32..=60)),
        )
            .prop_map(|(negative, int, frac, exp)| {
                let mut s = String::from(if negative { "-" } else { "" });
                let int: String = int.iter().map(|d| char::from(b'0' + d)).collect();
                s.push_str(int.trim_start_matches('0'));
                if s.is_empty() || s == "-" {
                    s.push('0');
                }
                if let Some(frac) = frac {
                    s.push('.');
                    s.extend(frac.iter().map(|d| char::from(b'0' + d)));
                }
                if let Some((upper, sign, e)) = exp {
                    s.push(if upper { 'E' } else { 'e' });
                    match sign {
                        0 => s.push_str(&e.to_string()),
                        1 => s.push_str(&format!("+{}", e.abs())),
                        _ => s.push_str(&format!("-{}", e.abs())),
                    }
                }
                s
            }),
    ]
}

proptest! {
    #![proptest_config(config(3000, 0x5eed_000a))]
    #[test]
    fn every_number_is_read_as_the_nearest_float32(numbers in proptest::collection::vec(number_text(), 1..40)) {
        let body = format!(
            r#"{{"output":{{"embeddings":[{{"text_index":0,"embedding":[{}]}}]}},"usage":{{"total_tokens":1}}}}"#,
            numbers.join(", ")
        );
        // The target checks each number against the standard library's parse; these are all
        // valid and within float64's range, so the fast reader reads every one.
        prop_assert_eq!(targets::embedding_answer(body.as_bytes()), Some((1, numbers.len())));
    }
}
