//! The one checker every Responses event stream in the tests goes through: the rules of
//! surfaces.md §1.9 that the Python and Node SDK stream helpers, Codex and the Agents SDK
//! enforce, checked together. Returns the final response object.

use serde_json::Value;

/// Known event types (Node 7.57 throws on any other).
const KNOWN: &[&str] = &[
    "response.created",
    "response.in_progress",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.delta",
    "response.output_text.done",
    "response.reasoning_text.delta",
    "response.reasoning_text.done",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.custom_tool_call_input.delta",
    "response.custom_tool_call_input.done",
];

struct Tracked {
    item: Value,
    done: bool,
    content_parts: usize,
    summary_parts: usize,
    text: String,
    summary: String,
    args: String,
}

/// Parse an SSE body into `(event line, data JSON)` pairs; comments are skipped, and any
/// `data:` that is not JSON (such as `[DONE]`) is an error.
pub fn parse_sse(body: &str) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    for block in body.split("\n\n") {
        let mut event = None;
        let mut data = String::new();
        for line in block.lines() {
            if line.starts_with(':') || line.is_empty() {
                continue;
            }
            if let Some(e) = line.strip_prefix("event:") {
                event = Some(e.trim().to_owned());
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            } else {
                return Err(format!("unexpected SSE line {line:?}"));
            }
        }
        if data.is_empty() && event.is_none() {
            continue;
        }
        let json: Value =
            serde_json::from_str(&data).map_err(|e| format!("data is not JSON ({e}): {data}"))?;
        let event = event.ok_or_else(|| format!("no event: line for {data}"))?;
        out.push((event, json));
    }
    Ok(out)
}

/// Check a whole stream; returns the response of the terminal event.
pub fn check_events(events: &[(String, Value)]) -> Result<Value, String> {
    let mut items: Vec<Tracked> = Vec::new();
    let mut resp_id: Option<String> = None;
    let mut terminal: Option<Value> = None;
    for (n, (event, data)) in events.iter().enumerate() {
        let ctx = |m: &str| format!("event #{n} ({event}): {m}");
        let kind = data["type"].as_str().ok_or_else(|| ctx("no JSON type"))?;
        if kind != event {
            return Err(ctx(&format!(
                "JSON type {kind} differs from the event line"
            )));
        }
        if !KNOWN.contains(&kind) {
            return Err(ctx("unknown event type"));
        }
        if data.get("error").is_some() {
            return Err(ctx("top-level error key"));
        }
        if data["sequence_number"].as_u64() != Some(n as u64) {
            return Err(ctx(&format!(
                "sequence_number {} where {n} was due",
                data["sequence_number"]
            )));
        }
        if terminal.is_some() {
            return Err(ctx("event after the terminal event"));
        }
        if n == 0 && kind != "response.created" {
            return Err(ctx("the first event must be response.created"));
        }
        if n == 1 && kind != "response.in_progress" {
            return Err(ctx("the second event must be response.in_progress"));
        }
        if let Some(r) = data.get("response") {
            let id = r["id"].as_str().ok_or_else(|| ctx("response without id"))?;
            if !id.starts_with("resp_") {
                return Err(ctx("response id does not start with resp_"));
            }
            match &resp_id {
                None => resp_id = Some(id.to_owned()),
                Some(first) if first != id => return Err(ctx("response id changed")),
                _ => {}
            }
        }
        match kind {
            "response.created" | "response.in_progress" => {
                let r = &data["response"];
                if r["status"] != "in_progress" || r["output"] != Value::Array(vec![]) {
                    return Err(ctx("lifecycle start must be in_progress with empty output"));
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                let r = &data["response"];
                let want = kind.trim_start_matches("response.");
                if r["status"] != want {
                    return Err(ctx(&format!("status {} for {kind}", r["status"])));
                }
                if let Some(open) = items.iter().position(|t| !t.done) {
                    return Err(ctx(&format!("item {open} not done before the end")));
                }
                let output = r["output"].as_array().ok_or_else(|| ctx("no output"))?;
                if output.len() != items.len() {
                    return Err(ctx("output differs in length from the items streamed"));
                }
                for (i, t) in items.iter().enumerate() {
                    if output[i] != t.item {
                        return Err(ctx(&format!("output[{i}] differs from its done item")));
                    }
                }
                let u = &r["usage"];
                for k in [
                    "/input_tokens",
                    "/output_tokens",
                    "/total_tokens",
                    "/input_tokens_details/cached_tokens",
                    "/output_tokens_details/reasoning_tokens",
                ] {
                    if u.pointer(k).and_then(Value::as_u64).is_none() {
                        return Err(ctx(&format!("usage{k} is not an integer")));
                    }
                }
                if kind == "response.failed" && r["error"]["code"].as_str().is_none() {
                    return Err(ctx("failed without error.code"));
                }
                terminal = Some(r.clone());
            }
            "response.output_item.added" => {
                let idx = index(data, &ctx)?;
                if idx != items.len() {
                    return Err(ctx(&format!(
                        "output_index {idx}, expected {}",
                        items.len()
                    )));
                }
                let item = &data["item"];
                check_identity(item, &ctx)?;
                if item["status"] != "in_progress" {
                    return Err(ctx("added item not in_progress"));
                }
                let bad = match item["type"].as_str() {
                    Some("reasoning") => (item["summary"] != Value::Array(vec![]))
                        .then_some("reasoning item needs summary: []"),
                    Some("function_call") => (item["arguments"] != "")
                        .then_some("function_call added without arguments \"\""),
                    Some("custom_tool_call") => {
                        (item["input"] != "").then_some("custom_tool_call added without input \"\"")
                    }
                    _ => None,
                };
                if let Some(why) = bad {
                    return Err(ctx(why));
                }
                items.push(Tracked {
                    item: item.clone(),
                    done: false,
                    content_parts: 0,
                    summary_parts: 0,
                    text: String::new(),
                    summary: String::new(),
                    args: String::new(),
                });
            }
            "response.output_item.done" => {
                let idx = index(data, &ctx)?;
                let t = open_item(&mut items, idx, &ctx)?;
                let item = &data["item"];
                for k in ["type", "id", "call_id"] {
                    if item.get(k) != t.item.get(k) {
                        return Err(ctx(&format!("done item changed its {k}")));
                    }
                }
                match item["type"].as_str() {
                    Some("message") if item["content"][0]["text"] != t.text.as_str() => {
                        return Err(ctx("message text differs from its deltas"));
                    }
                    Some("reasoning") => {
                        if item["content"][0]["text"] != t.text.as_str() {
                            return Err(ctx("reasoning text differs from its deltas"));
                        }
                        if let Some(s) = item["summary"].get(0)
                            && s["text"] != t.summary.as_str()
                        {
                            return Err(ctx("summary differs from its deltas"));
                        }
                    }
                    Some("function_call") if item["arguments"] != t.args.as_str() => {
                        return Err(ctx("arguments differ from their deltas"));
                    }
                    Some("custom_tool_call") if item["input"] != t.args.as_str() => {
                        return Err(ctx("input differs from its deltas"));
                    }
                    _ => {}
                }
                t.item = item.clone();
                t.done = true;
            }
            _ => {
                let idx = index(data, &ctx)?;
                let t = open_item(&mut items, idx, &ctx)?;
                if data["item_id"] != t.item["id"] || data["item_id"] == "" {
                    return Err(ctx("item_id does not match the item"));
                }
                let ty = t.item["type"].as_str().unwrap_or("").to_owned();
                let expect = |want: &str| {
                    if ty == want {
                        Ok(())
                    } else {
                        Err(ctx(&format!("event for a {ty} item")))
                    }
                };
                match kind {
                    "response.content_part.added" => {
                        if data["content_index"].as_u64() != Some(t.content_parts as u64) {
                            return Err(ctx("content_index out of order"));
                        }
                        if data["part"]["text"] != "" {
                            return Err(ctx("part added without text \"\""));
                        }
                        t.content_parts += 1;
                    }
                    "response.reasoning_summary_part.added" => {
                        expect("reasoning")?;
                        t.summary_parts += 1;
                    }
                    "response.output_text.delta" => {
                        expect("message")?;
                        if t.content_parts == 0 {
                            return Err(ctx("text delta before content_part.added"));
                        }
                        if !data["logprobs"].is_array() {
                            return Err(ctx("text delta without logprobs list"));
                        }
                        t.text.push_str(data["delta"].as_str().unwrap_or(""));
                    }
                    "response.reasoning_text.delta" => {
                        expect("reasoning")?;
                        if t.content_parts == 0 {
                            return Err(ctx("reasoning delta before content_part.added"));
                        }
                        t.text.push_str(data["delta"].as_str().unwrap_or(""));
                    }
                    "response.reasoning_summary_text.delta" => {
                        expect("reasoning")?;
                        if t.summary_parts == 0 {
                            return Err(ctx("summary delta before summary_part.added"));
                        }
                        t.summary.push_str(data["delta"].as_str().unwrap_or(""));
                    }
                    "response.function_call_arguments.delta" => {
                        expect("function_call")?;
                        t.args.push_str(data["delta"].as_str().unwrap_or(""));
                    }
                    "response.custom_tool_call_input.delta" => {
                        expect("custom_tool_call")?;
                        t.args.push_str(data["delta"].as_str().unwrap_or(""));
                    }
                    "response.output_text.done" => {
                        expect("message")?;
                        if data["text"] != t.text.as_str() {
                            return Err(ctx("output_text.done differs from the deltas"));
                        }
                    }
                    "response.reasoning_text.done" => {
                        expect("reasoning")?;
                        if data["text"] != t.text.as_str() {
                            return Err(ctx("reasoning_text.done differs from the deltas"));
                        }
                    }
                    "response.function_call_arguments.done" => {
                        expect("function_call")?;
                        if data["arguments"] != t.args.as_str() {
                            return Err(ctx("arguments.done differs from the deltas"));
                        }
                    }
                    "response.custom_tool_call_input.done" => {
                        expect("custom_tool_call")?;
                        if data["input"] != t.args.as_str() {
                            return Err(ctx("input.done differs from the deltas"));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    terminal.ok_or_else(|| "the stream has no terminal event".to_owned())
}

fn index(data: &Value, ctx: &dyn Fn(&str) -> String) -> Result<usize, String> {
    data["output_index"]
        .as_u64()
        .map(|i| i as usize)
        .ok_or_else(|| ctx("no output_index"))
}

fn open_item<'a>(
    items: &'a mut [Tracked],
    idx: usize,
    ctx: &dyn Fn(&str) -> String,
) -> Result<&'a mut Tracked, String> {
    let t = items.get_mut(idx).ok_or_else(|| {
        ctx(&format!(
            "event for output_index {idx} before its item was added"
        ))
    })?;
    if t.done {
        return Err(ctx("event for an item already done"));
    }
    Ok(t)
}

fn check_identity(item: &Value, ctx: &dyn Fn(&str) -> String) -> Result<(), String> {
    if item["id"].as_str().is_none_or(str::is_empty) {
        return Err(ctx("item without id"));
    }
    if matches!(
        item["type"].as_str(),
        Some("function_call" | "custom_tool_call")
    ) && item["call_id"].as_str().is_none_or(str::is_empty)
    {
        return Err(ctx("call item without call_id"));
    }
    Ok(())
}
