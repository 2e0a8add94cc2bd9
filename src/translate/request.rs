//! `openai::ChatCompletionRequest` → `dashscope::GenerationRequest`.
//!
//! Messages keep all of the history (tool calls, tool results, names); content parts become
//! modality-keyed native parts; every parameter is mapped, clamped with a note, passed through
//! as an extra, or refused with a 400 naming it — never silently dropped.

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{TranslateError, Warnings};
use crate::dashscope::Endpoint;
use crate::dashscope::request as ds;
use crate::openai;

pub use crate::policy::{EffortBudgets, RequiredToolChoice, UnknownPolicy, UnsupportedPolicy};

/// Per-request settings resolved from config before translation.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// The model name DashScope gets (after alias resolution).
    pub upstream_model: &'a str,
    /// The endpoint the routing table chose; media parts force `Multimodal`.
    pub endpoint: Endpoint,
    /// Parameters applied when the request does not set them.
    pub defaults: &'a Map<String, Value>,
    /// Parameters that replace whatever the request set.
    pub overrides: &'a Map<String, Value>,
    pub preserve_thinking: bool,
    /// The model takes `reasoning_effort` natively (DeepSeek-V4, GLM, qwen3.8-max).
    pub native_reasoning_effort: bool,
    pub budgets: &'a EffortBudgets,
    pub unknown: UnknownPolicy,
    pub unsupported: UnsupportedPolicy,
    /// The model takes `max_completion_tokens` (caps thinking + answer) natively.
    pub native_max_completion_tokens: bool,
    /// The model thinks unless told `enable_thinking: false` (qwen3.5+ plus/flash, …).
    pub thinks_by_default: bool,
    pub required_tool_choice: RequiredToolChoice,
}

/// The translated request plus what the rest of the pipeline needs to know about it.
#[derive(Debug)]
pub struct Translated {
    pub body: ds::GenerationRequest,
    pub endpoint: Endpoint,
    pub stream: bool,
    pub include_usage: bool,
    /// `enable_thinking` is explicitly true in the parameters sent upstream.
    pub thinking: bool,
    /// Some media is an `oss://` URL: send `X-DashScope-OssResourceResolve: enable`.
    pub oss_resources: bool,
    pub notes: Warnings,
}

/// DashScope parameters a client may send as extra top-level fields (the SDKs' `extra_body`).
/// They are forwarded whatever the unknown-field policy says.
pub const NATIVE_EXTRAS: &[&str] = &[
    "top_k",
    "repetition_penalty",
    "enable_thinking",
    "thinking_budget",
    "preserve_thinking",
    "clear_thinking",
    "enable_search",
    "search_options",
    "enable_code_interpreter",
    "vl_high_resolution_images",
    "vl_enable_image_hw_output",
    "tool_stream",
    "ocr_options",
    "modalities",
    "audio",
    "translation_options",
    "max_input_tokens",
];

/// OpenAI fields with no native meaning: dropped with a warning (or refused, by policy).
pub const UNSUPPORTED: &[&str] = &[
    "frequency_penalty",
    "logit_bias",
    "user",
    "store",
    "metadata",
    "service_tier",
    "prediction",
    "safety_identifier",
    "prompt_cache_key",
    "verbosity",
];

/// Parameters the gateway owns: a client value is replaced, with a note.
const GATEWAY_OWNED: &[&str] = &["result_format", "incremental_output"];

/// Does any message carry an image, audio or video part?
pub fn has_media(req: &openai::ChatCompletionRequest) -> bool {
    req.messages.iter().flatten().any(|m| match &m.content {
        Some(openai::Content::Parts(parts)) => parts.iter().any(|p| {
            matches!(
                p.kind.as_deref(),
                Some("image_url" | "input_audio" | "video_url" | "video" | "image" | "audio")
            )
        }),
        _ => false,
    })
}

/// Check the fields every request needs, before anything else looks at it.
pub fn validate(req: &openai::ChatCompletionRequest) -> Result<(), TranslateError> {
    match req.model.as_deref() {
        None => return Err(TranslateError::missing("model")),
        Some("") => {
            return Err(TranslateError::invalid(
                "model",
                "'model' must not be empty",
            ));
        }
        Some(_) => {}
    }
    match &req.messages {
        None => Err(TranslateError::missing("messages")),
        Some(m) if m.is_empty() => Err(TranslateError::invalid(
            "messages",
            "'messages' must contain at least one message",
        )),
        Some(_) => Ok(()),
    }
}

/// Translate a validated request. Consumes it: large strings move, they are not copied.
pub fn to_dashscope(
    req: openai::ChatCompletionRequest,
    ctx: &Ctx<'_>,
) -> Result<Translated, TranslateError> {
    validate(&req)?;
    let endpoint = if has_media(&req) {
        Endpoint::Multimodal
    } else {
        ctx.endpoint
    };
    let mut notes = Warnings::default();
    let openai::ChatCompletionRequest {
        model: _,
        messages,
        stream,
        stream_options,
        temperature,
        top_p,
        max_tokens,
        max_completion_tokens,
        stop,
        seed,
        presence_penalty,
        n,
        tools,
        tool_choice,
        parallel_tool_calls,
        functions,
        function_call,
        response_format,
        logprobs,
        top_logprobs,
        reasoning_effort,
        web_search_options,
        extra,
    } = req;
    let stream = stream.unwrap_or(false);
    let include_usage = stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);

    let mut p = Map::new();
    p.insert("result_format".into(), json!("message"));
    if let Some(t) = temperature {
        let t = if t >= 2.0 {
            notes.push(format!(
                "temperature {t} clamped to 1.99 (DashScope range is [0, 2))"
            ));
            1.99
        } else {
            t
        };
        p.insert("temperature".into(), json!(t));
    }
    if let Some(v) = top_p {
        let clamped = v.clamp(1e-6, 1.0);
        if clamped != v {
            notes.push(format!(
                "top_p {v} clamped to {clamped} (DashScope range is (0, 1])"
            ));
        }
        p.insert("top_p".into(), json!(clamped));
    }
    // max_completion_tokens caps thinking + answer natively on newer models; elsewhere only
    // max_tokens exists, and it caps the answer alone (a warning below, if thinking is on).
    let mut completion_cap_as_max_tokens = false;
    match (max_completion_tokens, max_tokens) {
        (Some(m), other) if ctx.native_max_completion_tokens => {
            p.insert("max_completion_tokens".into(), json!(m));
            if let Some(t) = other {
                p.insert("max_tokens".into(), json!(t));
            }
        }
        (Some(m), _) => {
            completion_cap_as_max_tokens = true;
            p.insert("max_tokens".into(), json!(m));
        }
        (None, Some(t)) => {
            p.insert("max_tokens".into(), json!(t));
        }
        (None, None) => {}
    }
    match stop {
        Some(openai::Stop::One(s)) => {
            p.insert("stop".into(), json!([s]));
        }
        Some(openai::Stop::Many(list)) => {
            p.insert("stop".into(), Value::Array(list));
        }
        None => {}
    }
    if let Some(s) = seed {
        p.insert("seed".into(), json!(s));
    }
    if let Some(v) = presence_penalty {
        p.insert("presence_penalty".into(), json!(v));
    }
    if let Some(v) = n {
        p.insert("n".into(), json!(v));
    }
    if let Some(v) = response_format {
        p.insert("response_format".into(), v);
    }
    if let Some(v) = logprobs {
        p.insert("logprobs".into(), json!(v));
    }
    if let Some(v) = top_logprobs {
        p.insert("top_logprobs".into(), json!(v));
    }
    if let Some(v) = parallel_tool_calls {
        p.insert("parallel_tool_calls".into(), json!(v));
    }

    // Tools: `tools` as sent; legacy `functions` wrapped into tools.
    let client_sent_tools = tools.is_some();
    let tools = match (tools, functions) {
        (Some(t), _) => Some(t),
        (None, Some(fs)) => Some(legacy_functions_to_tools(fs)?),
        (None, None) => None,
    };
    let choice = match (tool_choice, function_call) {
        (Some(c), _) => Some(map_tool_choice(c, "tool_choice", ctx.required_tool_choice)?),
        (None, Some(fc)) => Some(map_legacy_function_call(fc)?),
        (None, None) => None,
    };
    if let Some(c) = choice {
        p.insert("tool_choice".into(), c);
    }

    if let Some(opts) = web_search_options {
        p.insert("enable_search".into(), json!(true));
        let strategy = match opts.get("search_context_size").and_then(Value::as_str) {
            Some("high") => Some("max"),
            Some("low" | "medium") => Some("turbo"),
            _ => None,
        };
        if let Some(s) = strategy {
            p.insert("search_options".into(), json!({ "search_strategy": s }));
        }
        if opts.get("user_location").is_some() {
            notes.push("web_search_options.user_location dropped (no native equivalent)");
        }
    }

    // Extras: native ones forward, unsupported OpenAI ones warn/reject, the rest by policy.
    for (key, value) in extra {
        if GATEWAY_OWNED.contains(&key.as_str()) {
            notes.push(format!("{key} is set by the gateway; client value ignored"));
        } else if NATIVE_EXTRAS.contains(&key.as_str()) {
            p.insert(key, value);
        } else if UNSUPPORTED.contains(&key.as_str()) {
            match ctx.unsupported {
                UnsupportedPolicy::Warn => {
                    notes.push(format!("{key} dropped (no DashScope equivalent)"));
                }
                UnsupportedPolicy::Reject => {
                    return Err(TranslateError::unsupported(
                        key.clone(),
                        format!("'{key}' is not supported by DashScope"),
                    ));
                }
            }
        } else {
            super::unknown_field(ctx.unknown, key, value, &mut p, &mut notes)?;
        }
    }

    if let Some(effort) = reasoning_effort {
        apply_reasoning_effort(&mut p, &effort, ctx)?;
    }

    // Config: defaults fill gaps, overrides win.
    for (k, v) in ctx
        .defaults
        .iter()
        .filter(|(k, _)| !GATEWAY_OWNED.contains(&k.as_str()))
    {
        let already_set = p.contains_key(k) || (k == "tools" && tools.is_some());
        if !already_set {
            p.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in ctx.overrides {
        if !GATEWAY_OWNED.contains(&k.as_str()) {
            p.insert(k.clone(), v.clone());
        }
    }

    // OpenAI's default is parallel tool calls, DashScope's is not: say it explicitly.
    if client_sent_tools && !p.contains_key("parallel_tool_calls") {
        p.insert("parallel_tool_calls".into(), json!(true));
    }
    json_mode_without_thinking(&mut p, ctx, &mut notes);
    let thinking_on = match p.get("enable_thinking").and_then(Value::as_bool) {
        Some(on) => on,
        None => ctx.thinks_by_default,
    };
    if p.get("tool_choice").and_then(Value::as_str) == Some("required") {
        let choice = emulate_required(tools.as_deref(), thinking_on, &mut notes)?;
        p.insert("tool_choice".into(), choice);
    }
    if completion_cap_as_max_tokens && thinking_on {
        notes.push(
            "max_completion_tokens sent as max_tokens: this model does not cap its thinking, only the answer",
        );
    }

    let preserve =
        ctx.preserve_thinking || p.get("preserve_thinking").and_then(Value::as_bool) == Some(true);
    let messages = translate_messages(messages.unwrap_or_default(), preserve, &mut notes)?;
    let thinking = p.get("enable_thinking").and_then(Value::as_bool) == Some(true);
    let oss_resources = messages.iter().any(has_oss_media);

    let mut body = ds::GenerationRequest {
        model: ctx.upstream_model.to_owned(),
        input: ds::Input { messages },
        parameters: ds::Parameters { tools, values: p },
    };
    shape_for_endpoint(&mut body, endpoint);
    Ok(Translated {
        body,
        endpoint,
        stream,
        include_usage,
        thinking,
        oss_resources,
        notes,
    })
}

/// DashScope refuses JSON mode while thinking: on a model that thinks by default, a JSON
/// `response_format` turns thinking off (unless the request or config set it), with a warning.
fn json_mode_without_thinking(p: &mut Map<String, Value>, ctx: &Ctx<'_>, notes: &mut Warnings) {
    let json_mode = matches!(
        p.get("response_format")
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str),
        Some("json_object" | "json_schema")
    );
    if json_mode && ctx.thinks_by_default && !p.contains_key("enable_thinking") {
        p.insert("enable_thinking".into(), json!(false));
        notes.push(
            "enable_thinking set to false: DashScope does not take a JSON response_format while thinking",
        );
    }
}

/// `tool_choice: "required"` as DashScope can say it: the one tool by name, or `auto` (with
/// a warning) when there are several tools or the model thinks (a forced tool is refused then).
/// Public so every route that takes OpenAI tools (chat, Responses) applies the same rule.
pub fn emulate_required(
    tools: Option<&[Box<RawValue>]>,
    thinking: bool,
    notes: &mut Warnings,
) -> Result<Value, TranslateError> {
    let tools = tools.unwrap_or_default();
    if tools.is_empty() {
        return Err(TranslateError::invalid(
            "tool_choice",
            "tool_choice 'required' needs at least one tool in 'tools'",
        ));
    }
    let why = if thinking {
        "DashScope cannot force a tool call while the model thinks"
    } else if tools.len() > 1 {
        "DashScope cannot require a call among several tools"
    } else {
        let name = serde_json::from_str::<Value>(tools[0].get())
            .ok()
            .and_then(|t| {
                t.pointer("/function/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        match name {
            Some(name) => return Ok(json!({"type": "function", "function": {"name": name}})),
            None => "the tool has no function name",
        }
    };
    notes.push(format!(
        "tool_choice 'required' sent as 'auto' ({why}); the model may answer without a tool call"
    ));
    Ok(json!("auto"))
}

/// Does a native message carry an `oss://` image, audio or video (or video frame)?
fn has_oss_media(m: &ds::Message) -> bool {
    let Some(ds::Content::Parts(parts)) = &m.content else {
        return false;
    };
    let is_oss = |v: &Value| {
        v.as_str()
            .is_some_and(|u| u.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("oss://")))
    };
    parts.iter().any(|p| {
        ["image", "audio", "video"].iter().any(|k| match p.get(*k) {
            Some(Value::Array(frames)) => frames.iter().any(is_oss),
            Some(v) => is_oss(v),
            None => false,
        })
    })
}

/// Streaming upstream needs `incremental_output: true` (thinking models refuse anything
/// else, and deltas need no diffing); a non-stream call sends no such key.
pub fn set_upstream_stream(body: &mut ds::GenerationRequest, stream: bool) {
    if stream {
        body.parameters
            .values
            .insert("incremental_output".into(), json!(true));
    } else {
        body.parameters.values.remove("incremental_output");
    }
}

/// Put message content in the shape an endpoint accepts. Idempotent, and reversible, so a
/// request can be re-shaped when the upstream says the model lives on the other path.
///
/// - text path: a list of plain text parts becomes one string (parts joined with "\n"); parts
///   with siblings (`cache_control`) stay a list in the documented `{"type":"text",…}` form.
/// - multimodal path: strings become `[{"text": …}]` (tool results stay strings, as
///   documented); an empty assistant content is left out.
pub fn shape_for_endpoint(body: &mut ds::GenerationRequest, endpoint: Endpoint) {
    for m in &mut body.input.messages {
        let content = m.content.take();
        m.content = match (endpoint, content) {
            (_, None) => None,
            (Endpoint::Text, Some(ds::Content::Parts(mut parts))) => {
                let plain = parts.iter().all(|p| {
                    p.len() == 1 && p.get("text").is_some_and(Value::is_string)
                        || p.len() == 2
                            && p.get("type").and_then(Value::as_str) == Some("text")
                            && p.get("text").is_some_and(Value::is_string)
                });
                if plain {
                    let texts: Vec<&str> = parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect();
                    Some(ds::Content::Text(texts.join("\n")))
                } else {
                    for part in &mut parts {
                        if part.contains_key("text") && !part.contains_key("type") {
                            part.insert("type".into(), json!("text"));
                        }
                    }
                    Some(ds::Content::Parts(parts))
                }
            }
            (Endpoint::Text, Some(text)) => Some(text),
            (Endpoint::Multimodal, Some(ds::Content::Text(s))) => {
                if m.role == "tool" {
                    Some(ds::Content::Text(s))
                } else if s.is_empty() && m.role == "assistant" {
                    None
                } else {
                    let mut part = Map::new();
                    part.insert("text".into(), Value::String(s));
                    Some(ds::Content::Parts(vec![part]))
                }
            }
            (Endpoint::Multimodal, Some(ds::Content::Parts(mut parts))) => {
                for part in &mut parts {
                    if part.get("type").and_then(Value::as_str) == Some("text") {
                        part.remove("type");
                    }
                }
                Some(ds::Content::Parts(parts))
            }
        };
        if endpoint == Endpoint::Text && m.role == "assistant" && m.content.is_none() {
            m.content = Some(ds::Content::Text(String::new()));
        }
    }
}

fn translate_messages(
    messages: Vec<openai::Message>,
    preserve_thinking: bool,
    notes: &mut Warnings,
) -> Result<Vec<ds::Message>, TranslateError> {
    let mut out = Vec::with_capacity(messages.len());
    let mut dropped_reasoning = false;
    // Legacy function calling: the id given to the last assistant `function_call`.
    let mut last_function_call_id: Option<String> = None;
    for (i, m) in messages.into_iter().enumerate() {
        let at = |field: &str| format!("messages[{i}].{field}");
        let role = m.role.ok_or_else(|| TranslateError::missing(&at("role")))?;
        let (role, native_role) = match role {
            openai::Role::System | openai::Role::Developer => (role, "system"),
            openai::Role::User => (role, "user"),
            openai::Role::Assistant => (role, "assistant"),
            openai::Role::Tool | openai::Role::Function => (role, "tool"),
        };
        let content = match m.content {
            None => None,
            Some(openai::Content::Text(s)) => Some(ds::Content::Text(s)),
            Some(openai::Content::Parts(parts)) => {
                let parts = parts
                    .into_iter()
                    .enumerate()
                    .map(|(j, p)| translate_part(p, &format!("messages[{i}].content[{j}]"), notes))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(ds::Content::Parts(parts))
            }
        };
        let mut tool_calls = m.tool_calls.map(|calls| {
            calls
                .into_iter()
                .enumerate()
                .map(|(k, c)| translate_tool_call(c, i, k))
                .collect::<Result<Vec<_>, _>>()
        });
        if tool_calls.is_none()
            && let Some(fc) = m.function_call
        {
            let id = format!("call_legacy_{i}");
            last_function_call_id = Some(id.clone());
            tool_calls = Some(Ok(vec![ds::ToolCall {
                id,
                kind: "function".into(),
                index: 0,
                function: ds::FunctionCall {
                    name: fc.name.unwrap_or_default(),
                    arguments: fc.arguments.unwrap_or_default(),
                },
            }]));
        }
        let tool_calls = tool_calls.transpose()?;
        let mut tool_call_id = m.tool_call_id;
        match role {
            openai::Role::User | openai::Role::System | openai::Role::Developer
                if content.is_none() =>
            {
                return Err(TranslateError::missing(&at("content")));
            }
            openai::Role::Assistant if content.is_none() && tool_calls.is_none() => {
                return Err(TranslateError::invalid(
                    at("content"),
                    format!(
                        "{} must be set unless the message has tool_calls",
                        at("content")
                    ),
                ));
            }
            openai::Role::Tool if tool_call_id.is_none() => {
                return Err(TranslateError::missing(&at("tool_call_id")));
            }
            openai::Role::Function => {
                tool_call_id = tool_call_id.or_else(|| last_function_call_id.clone());
            }
            _ => {}
        }
        // Tool results must be strings natively: join text parts.
        let content = if native_role == "tool" {
            Some(ds::Content::Text(tool_content_text(
                content,
                &at("content"),
            )?))
        } else {
            content
        };
        let reasoning_content = match m.reasoning_content {
            Some(r) if preserve_thinking && role == openai::Role::Assistant => Some(r),
            Some(_) => {
                dropped_reasoning = true;
                None
            }
            None => None,
        };
        out.push(ds::Message {
            role: native_role,
            content,
            tool_calls,
            tool_call_id,
            name: m.name,
            reasoning_content,
            extra: m.extra,
        });
    }
    if dropped_reasoning {
        notes.push(
            "reasoning_content in history dropped (enable preserve_thinking for this model to keep it)",
        );
    }
    Ok(out)
}

fn tool_content_text(content: Option<ds::Content>, param: &str) -> Result<String, TranslateError> {
    match content {
        None => Ok(String::new()),
        Some(ds::Content::Text(s)) => Ok(s),
        Some(ds::Content::Parts(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for p in &parts {
                match p.get("text").and_then(Value::as_str) {
                    Some(t) => texts.push(t),
                    None => {
                        return Err(TranslateError::invalid(
                            param,
                            "tool message content must be text (DashScope takes a string)",
                        ));
                    }
                }
            }
            Ok(texts.join("\n"))
        }
    }
}

fn translate_tool_call(
    c: openai::request::ToolCall,
    msg: usize,
    k: usize,
) -> Result<ds::ToolCall, TranslateError> {
    let param = format!("messages[{msg}].tool_calls[{k}]");
    let function = c
        .function
        .ok_or_else(|| TranslateError::missing(&format!("{param}.function")))?;
    let name = function
        .name
        .ok_or_else(|| TranslateError::missing(&format!("{param}.function.name")))?;
    Ok(ds::ToolCall {
        id: c.id.unwrap_or_else(|| format!("call_{msg}_{k}")),
        kind: c.kind.unwrap_or_else(|| "function".into()),
        index: u32::try_from(k).unwrap_or(u32::MAX),
        function: ds::FunctionCall {
            name,
            arguments: function.arguments.unwrap_or_default(),
        },
    })
}

/// One OpenAI content part → one native part (keyed by modality, siblings kept).
fn translate_part(
    part: openai::Part,
    param: &str,
    notes: &mut Warnings,
) -> Result<Map<String, Value>, TranslateError> {
    let openai::Part {
        kind,
        text,
        image_url,
        input_audio,
        video_url,
        video,
        extra,
    } = part;
    let mut out = Map::new();
    let kind = kind.ok_or_else(|| TranslateError::missing(&format!("{param}.type")))?;
    match kind.as_str() {
        "text" => {
            let t = text.ok_or_else(|| TranslateError::missing(&format!("{param}.text")))?;
            out.insert("text".into(), Value::String(t));
        }
        "image_url" => {
            let (url, detail, siblings) = image_url
                .ok_or_else(|| TranslateError::missing(&format!("{param}.image_url")))?
                .into_parts();
            let url =
                url.ok_or_else(|| TranslateError::missing(&format!("{param}.image_url.url")))?;
            check_media_url(&url, &format!("{param}.image_url.url"))?;
            if detail.is_some() {
                notes.push_each(
                    "image_url.detail ignored (no native equivalent)",
                    "parts",
                    format!("{param}.image_url.detail ignored (no native equivalent)"),
                );
            }
            out.insert("image".into(), Value::String(url));
            out.extend(siblings);
        }
        "input_audio" => {
            let audio = input_audio
                .ok_or_else(|| TranslateError::missing(&format!("{param}.input_audio")))?;
            let data = audio
                .data
                .ok_or_else(|| TranslateError::missing(&format!("{param}.input_audio.data")))?;
            let url = if data.starts_with("data:") {
                data
            } else if let Some(fmt) = audio.format {
                format!("data:audio/{fmt};base64,{data}")
            } else {
                format!("data:;base64,{data}")
            };
            out.insert("audio".into(), Value::String(url));
        }
        "video_url" => {
            let (url, _, siblings) = video_url
                .ok_or_else(|| TranslateError::missing(&format!("{param}.video_url")))?
                .into_parts();
            let url =
                url.ok_or_else(|| TranslateError::missing(&format!("{param}.video_url.url")))?;
            check_media_url(&url, &format!("{param}.video_url.url"))?;
            out.insert("video".into(), Value::String(url));
            out.extend(siblings);
        }
        "video" => {
            let v = video.ok_or_else(|| TranslateError::missing(&format!("{param}.video")))?;
            match &v {
                Value::String(u) => check_media_url(u, &format!("{param}.video"))?,
                Value::Array(frames) => {
                    for (f, frame) in frames.iter().enumerate() {
                        let u = frame.as_str().ok_or_else(|| {
                            TranslateError::invalid(
                                format!("{param}.video[{f}]"),
                                "video frames must be image URLs",
                            )
                        })?;
                        check_media_url(u, &format!("{param}.video[{f}]"))?;
                    }
                }
                _ => {
                    return Err(TranslateError::invalid(
                        format!("{param}.video"),
                        "video must be a URL or a list of frame image URLs",
                    ));
                }
            }
            out.insert("video".into(), v);
        }
        other => {
            return Err(TranslateError::unsupported(
                format!("{param}.type"),
                format!(
                    "content part type '{other}' cannot be sent to DashScope (supported: text, image_url, input_audio, video_url, video)"
                ),
            ));
        }
    }
    // Siblings such as cache_control, min_pixels, max_pixels, fps.
    for (k, v) in extra {
        out.entry(k).or_insert(v);
    }
    Ok(out)
}

/// Media must be fetched by DashScope, never by us: http(s), data: and oss:// only.
fn check_media_url(url: &str, param: &str) -> Result<(), TranslateError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let ok = lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("data:")
        || lower.starts_with("oss://");
    if ok {
        Ok(())
    } else {
        Err(TranslateError::invalid(
            param,
            "media URLs must be http(s)://, data: or oss:// URLs; local files and file:// are refused",
        ))
    }
}

fn map_tool_choice(
    choice: Value,
    param: &str,
    required: RequiredToolChoice,
) -> Result<Value, TranslateError> {
    match &choice {
        Value::String(s) if s == "auto" || s == "none" => Ok(choice),
        // Emulated once the tools and the thinking mode are known.
        Value::String(s) if s == "required" && required == RequiredToolChoice::Emulate => {
            Ok(choice)
        }
        Value::String(s) if s == "required" => Err(TranslateError::unsupported(
            param,
            "tool_choice 'required' is not supported by DashScope (it accepts 'auto', 'none' or a specific function); this gateway is configured to refuse it rather than emulate it",
        )),
        Value::String(s) => Err(TranslateError::invalid(
            param,
            format!("tool_choice '{s}' is not one of 'auto', 'none' or a function object"),
        )),
        Value::Object(o) if o.get("function").and_then(|f| f.get("name")).is_some() => Ok(choice),
        _ => Err(TranslateError::invalid(
            param,
            "tool_choice must be 'auto', 'none' or {\"type\":\"function\",\"function\":{\"name\":…}}",
        )),
    }
}

fn map_legacy_function_call(fc: Value) -> Result<Value, TranslateError> {
    match fc {
        Value::Object(o) => match o.get("name") {
            Some(name) => Ok(json!({"type": "function", "function": {"name": name}})),
            None => Err(TranslateError::missing("function_call.name")),
        },
        other => map_tool_choice(other, "function_call", RequiredToolChoice::Reject),
    }
}

fn legacy_functions_to_tools(
    functions: Vec<Box<RawValue>>,
) -> Result<Vec<Box<RawValue>>, TranslateError> {
    functions
        .into_iter()
        .map(|f| {
            RawValue::from_string(format!(r#"{{"type":"function","function":{}}}"#, f.get()))
                .map_err(|_| TranslateError::invalid("functions", "invalid function definition"))
        })
        .collect()
}

fn apply_reasoning_effort(
    p: &mut Map<String, Value>,
    effort: &str,
    ctx: &Ctx<'_>,
) -> Result<(), TranslateError> {
    if ctx.native_reasoning_effort {
        p.insert("reasoning_effort".into(), json!(effort));
        return Ok(());
    }
    let budget = match effort {
        "none" | "minimal" => {
            p.entry("enable_thinking").or_insert(json!(false));
            return Ok(());
        }
        "low" => Some(ctx.budgets.low),
        "medium" => Some(ctx.budgets.medium),
        "high" => Some(ctx.budgets.high),
        "max" | "xhigh" => None,
        other => {
            return Err(TranslateError::invalid(
                "reasoning_effort",
                format!(
                    "reasoning_effort '{other}' is not one of none, minimal, low, medium, high"
                ),
            ));
        }
    };
    p.entry("enable_thinking").or_insert(json!(true));
    if let Some(b) = budget {
        p.entry("thinking_budget").or_insert(json!(b));
    }
    Ok(())
}
