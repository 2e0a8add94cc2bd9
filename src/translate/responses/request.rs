//! `openai::responses::ResponsesRequest` → `openai::ChatCompletionRequest`.
//!
//! The Responses request is rewritten as the chat request it means, so the chat translator
//! (aliases, defaults/overrides, thinking, extras, tool rules, media routing) applies to it
//! unchanged. What only Responses has is settled here: input items merged into chat messages,
//! custom and namespace tools wrapped as functions (with the map to restore them on output),
//! hosted tools mapped, dropped with a note or refused, `text.format`, `include`, the state
//! fields a stateless gateway refuses, and the response-object template echoing the request.

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{ToolKind, ToolName, ToolNames, decode_reasoning};
use crate::lenient::TextOrParts;
use crate::openai::request::{FunctionCall, ToolCall};
use crate::openai::responses::{self as rs, InputItem, InputPart, ResponsesRequest};
use crate::openai::{self, ChatCompletionRequest, Content, MediaUrl, Message, Part, Role};
use crate::translate::{Notes, TranslateError};

/// What the translation needs to know about the model and the gateway's settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Opts {
    /// Reasoning from earlier turns is sent back as `reasoning_content` (the model's
    /// `preserve_thinking` setting); otherwise it is dropped.
    pub preserve_thinking: bool,
}

/// The chat request plus what the response side needs.
#[derive(Debug)]
pub struct Converted {
    pub chat: ChatCompletionRequest,
    /// The response object without id, timestamps, output or usage: echoes the request.
    pub template: rs::Response,
    /// Flattened tool names → how to present a call to them.
    pub tools: ToolNames,
    /// `include` asks for `reasoning.encrypted_content`.
    pub encrypted_reasoning: bool,
    pub stream: bool,
    pub notes: Notes,
}

/// OpenAI fields with no native meaning: accepted, never sent upstream, no warning (clients
/// such as Codex send them on every request).
const IGNORED: &[&str] = &[
    "prompt_cache_key",
    "prompt_cache_retention",
    "client_metadata",
    "service_tier",
    "safety_identifier",
    "user",
    "truncation",
    "stream_options",
    "context_management",
];

/// Hosted tools some clients send by default: dropped with a note instead of refused.
const DROPPED_TOOLS: &[&str] = &["image_generation", "tool_search"];

/// Input item types a stateless gateway that never emits them cannot represent.
fn refuse_item(kind: &str, param: String) -> TranslateError {
    let why = match kind {
        "item_reference" => {
            "item_reference is not supported: this gateway is stateless, send the item itself (with the Vercel AI SDK set providerOptions.openai.store = false)".to_owned()
        }
        other => format!("input item type '{other}' is not supported by this gateway"),
    };
    TranslateError::unsupported(param, why)
}

pub fn to_chat(req: ResponsesRequest, opts: Opts) -> Result<Converted, TranslateError> {
    let ResponsesRequest {
        model,
        input,
        instructions,
        tools,
        tool_choice,
        parallel_tool_calls,
        reasoning,
        include,
        text,
        max_output_tokens,
        temperature,
        top_p,
        top_logprobs,
        stream,
        store: _,
        previous_response_id,
        background,
        conversation,
        prompt,
        metadata,
        mut extra,
    } = req;
    match model.as_deref() {
        None => return Err(TranslateError::missing("model")),
        Some("") => {
            return Err(TranslateError::invalid(
                "model",
                "'model' must not be empty",
            ));
        }
        Some(_) => {}
    }
    if let Some(id) = previous_response_id {
        return Err(TranslateError {
            message: format!(
                "Previous response with id '{}' not found. This gateway is stateless; resend the conversation in input.",
                id.chars().take(100).collect::<String>()
            ),
            param: Some("previous_response_id".into()),
            code: "previous_response_not_found",
        });
    }
    if background == Some(true) {
        return Err(TranslateError::unsupported(
            "background",
            "background responses are not supported by this gateway (it stores nothing)",
        ));
    }
    if conversation.as_ref().is_some_and(|c| !c.is_null()) {
        return Err(TranslateError::unsupported(
            "conversation",
            "conversations are not supported by this gateway (it stores nothing); send the history in input",
        ));
    }
    if prompt.as_ref().is_some_and(|p| !p.is_null()) {
        return Err(TranslateError::unsupported(
            "prompt",
            "stored prompts are not supported by this gateway; send instructions and input",
        ));
    }
    let mut notes = Notes::default();
    for k in IGNORED {
        extra.remove(*k);
    }

    // Reasoning effort is checked here so the 400 names the Responses field.
    let (effort, summary) = match reasoning {
        Some(r) => (r.effort, r.summary),
        None => (None, None),
    };
    if let Some(e) = &effort
        && !matches!(
            e.as_str(),
            "none" | "minimal" | "low" | "medium" | "high" | "xhigh" | "max"
        )
    {
        return Err(TranslateError::invalid(
            "reasoning.effort",
            format!(
                "reasoning.effort '{e}' is not one of none, minimal, low, medium, high, xhigh, max"
            ),
        ));
    }

    // Tools: the request's plus Codex's `additional_tools` items.
    let echo_tools = tools.as_deref().map(echo_tools).unwrap_or_default();
    let mut tool_specs = tools.unwrap_or_default();
    let mut items = match input {
        None => return Err(TranslateError::missing("input")),
        Some(TextOrParts::Text(s)) => {
            vec![InputItem {
                role: Some("user".into()),
                content: Some(TextOrParts::Text(s)),
                ..InputItem::default()
            }]
        }
        Some(TextOrParts::Parts(items)) => items,
    };
    for item in &mut items {
        if item.kind.as_deref() == Some("additional_tools") {
            tool_specs.extend(item.tools.take().unwrap_or_default());
        }
    }
    let mut names = ToolNames::default();
    let mut native_tools: Vec<Value> = Vec::new();
    for (i, spec) in tool_specs.into_iter().enumerate() {
        convert_tool(
            spec,
            &format!("tools[{i}]"),
            None,
            &mut native_tools,
            &mut names,
            &mut extra,
            &mut notes,
        )?;
    }

    let choice_echo = tool_choice.clone().unwrap_or_else(|| json!("auto"));
    let chat_choice = match tool_choice {
        None => None,
        Some(c) => map_tool_choice(c, &mut native_tools, &names, &mut extra)?,
    };

    let mut messages = Vec::new();
    if let Some(sys) = &instructions {
        messages.push(message(Role::System, Some(Content::Text(sys.clone()))));
    }
    convert_items(items, opts, &names, &mut messages, &mut notes)?;
    if messages.is_empty() {
        return Err(TranslateError::invalid(
            "input",
            "'input' must contain at least one item",
        ));
    }

    let mut logprobs = None;
    let mut encrypted_reasoning = false;
    for v in include.iter().flatten() {
        match v.as_str() {
            "message.output_text.logprobs" => logprobs = Some(true),
            "reasoning.encrypted_content" => encrypted_reasoning = true,
            _ => {}
        }
    }

    let (response_format, text_echo) = match text {
        Some(t) => convert_text(t)?,
        None => (None, json!({"format": {"type": "text"}})),
    };

    let tools_raw = native_tools
        .into_iter()
        .map(|t| {
            RawValue::from_string(t.to_string())
                .map_err(|_| TranslateError::invalid("tools", "a tool is not valid JSON"))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let stream = stream.unwrap_or(false);
    let chat = ChatCompletionRequest {
        model: model.clone(),
        messages: Some(messages),
        stream: Some(stream),
        temperature,
        top_p,
        max_tokens: max_output_tokens,
        tools: (!tools_raw.is_empty()).then_some(tools_raw),
        tool_choice: chat_choice,
        parallel_tool_calls,
        response_format,
        logprobs,
        top_logprobs,
        reasoning_effort: effort.clone(),
        extra,
        ..ChatCompletionRequest::default()
    };
    let template = rs::Response {
        id: String::new(),
        object: "response",
        created_at: 0,
        status: "in_progress",
        error: None,
        incomplete_details: None,
        model: model.unwrap_or_default(),
        instructions,
        output: Vec::new(),
        parallel_tool_calls: parallel_tool_calls.unwrap_or(true),
        tool_choice: choice_echo,
        tools: echo_tools,
        temperature,
        top_p,
        max_output_tokens,
        previous_response_id: None,
        reasoning: json!({"effort": effort, "summary": summary}),
        store: false,
        text: text_echo,
        truncation: "disabled",
        metadata: metadata
            .filter(|m| !m.is_null())
            .unwrap_or_else(|| json!({})),
        usage: None,
    };
    Ok(Converted {
        chat,
        template,
        tools: names,
        encrypted_reasoning,
        stream,
        notes,
    })
}

/// The tools as the response object echoes them: as sent, with OpenAI's default filled in
/// where strict clients require the key (a custom tool's `format` is `{"type":"text"}`).
fn echo_tools(tools: &[Value]) -> Vec<Value> {
    fn fill(t: &Value) -> Value {
        let mut t = t.clone();
        if let Some(obj) = t.as_object_mut() {
            match obj.get("type").and_then(Value::as_str) {
                Some("custom") => {
                    obj.entry("format")
                        .or_insert_with(|| json!({"type": "text"}));
                }
                Some("namespace") => {
                    if let Some(Value::Array(inner)) = obj.get_mut("tools") {
                        for i in inner.iter_mut() {
                            *i = fill(i);
                        }
                    }
                }
                _ => {}
            }
        }
        t
    }
    tools.iter().map(fill).collect()
}

fn message(role: Role, content: Option<Content>) -> Message {
    Message {
        role: Some(role),
        content,
        ..Message::default()
    }
}

// ---- tools ------------------------------------------------------------------------------------

fn str_field<'a>(spec: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    spec.get(key).and_then(Value::as_str)
}

fn convert_tool(
    spec: Value,
    param: &str,
    namespace: Option<&str>,
    out: &mut Vec<Value>,
    names: &mut ToolNames,
    extra: &mut Map<String, Value>,
    notes: &mut Notes,
) -> Result<(), TranslateError> {
    let Value::Object(spec) = spec else {
        return Err(TranslateError::invalid(param, "a tool must be an object"));
    };
    let kind = str_field(&spec, "type")
        .ok_or_else(|| TranslateError::missing(&format!("{param}.type")))?
        .to_owned();
    match kind.as_str() {
        "function" | "custom" => {
            let name = str_field(&spec, "name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| TranslateError::missing(&format!("{param}.name")))?
                .to_owned();
            let wire = match namespace {
                Some(ns) => format!("{ns}__{name}"),
                None => name.clone(),
            };
            let mut function = Map::new();
            function.insert("name".into(), json!(wire));
            if let Some(d) = str_field(&spec, "description") {
                function.insert("description".into(), json!(d));
            }
            let tool_kind = if kind == "function" {
                let mut params = spec
                    .get("parameters")
                    .cloned()
                    .filter(|p| !p.is_null())
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
                if let Some(obj) = params.as_object_mut() {
                    obj.remove("$schema");
                }
                function.insert("parameters".into(), params);
                ToolKind::Function
            } else {
                function.insert("parameters".into(), custom_parameters(&spec));
                ToolKind::Custom
            };
            out.push(json!({"type": "function", "function": function}));
            names.0.push(ToolName {
                wire,
                name,
                namespace: namespace.map(str::to_owned),
                kind: tool_kind,
            });
        }
        "namespace" if namespace.is_none() => {
            let ns = str_field(&spec, "name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| TranslateError::missing(&format!("{param}.name")))?
                .to_owned();
            let inner = match spec.get("tools") {
                Some(Value::Array(list)) => list.clone(),
                _ => return Err(TranslateError::missing(&format!("{param}.tools"))),
            };
            for (j, t) in inner.into_iter().enumerate() {
                convert_tool(
                    t,
                    &format!("{param}.tools[{j}]"),
                    Some(&ns),
                    out,
                    names,
                    extra,
                    notes,
                )?;
            }
        }
        "web_search"
        | "web_search_preview"
        | "web_search_2025_08_26"
        | "web_search_preview_2025_03_11" => {
            if spec.get("external_web_access") == Some(&Value::Bool(false)) {
                notes.push(format!(
                    "{param} ({kind} with external_web_access false) dropped: it enables nothing"
                ));
            } else {
                extra.insert("enable_search".into(), json!(true));
                if spec.contains_key("filters") || spec.contains_key("user_location") {
                    notes.push(format!(
                        "{param}.filters/user_location dropped (no native equivalent)"
                    ));
                }
            }
        }
        k if DROPPED_TOOLS.contains(&k) => {
            notes.push(format!("{param} ({k}) dropped: no DashScope equivalent"));
        }
        other => {
            return Err(TranslateError::unsupported(
                format!("{param}.type"),
                format!(
                    "tool type '{other}' is not supported by this gateway (supported: function, custom, namespace, web_search)"
                ),
            ));
        }
    }
    Ok(())
}

/// A freeform tool becomes a function with one string parameter `input`; its grammar (if
/// any) is the parameter's description, so the model knows the expected format.
fn custom_parameters(spec: &Map<String, Value>) -> Value {
    let mut desc = String::from("The raw input for this tool, as plain text.");
    if let Some(f) = spec.get("format")
        && str_field(f.as_object().unwrap_or(&Map::new()), "type") == Some("grammar")
    {
        let syntax = f.get("syntax").and_then(Value::as_str).unwrap_or("grammar");
        if let Some(def) = f.get("definition").and_then(Value::as_str) {
            desc = format!(
                "The raw input for this tool, as plain text in this {syntax} grammar:\n{def}"
            );
        }
    }
    json!({
        "type": "object",
        "properties": {"input": {"type": "string", "description": desc}},
        "required": ["input"]
    })
}

/// Responses `tool_choice` → the chat `tool_choice` (None: leave it to the model).
fn map_tool_choice(
    choice: Value,
    native_tools: &mut Vec<Value>,
    names: &ToolNames,
    extra: &mut Map<String, Value>,
) -> Result<Option<Value>, TranslateError> {
    let obj = match choice {
        Value::Null => return Ok(None),
        Value::String(_) => return Ok(Some(choice)),
        Value::Object(o) => o,
        _ => {
            return Err(TranslateError::invalid(
                "tool_choice",
                "tool_choice must be a string or an object",
            ));
        }
    };
    let kind = str_field(&obj, "type").unwrap_or_default();
    match kind {
        "function" | "custom" => {
            let name = str_field(&obj, "name")
                .ok_or_else(|| TranslateError::missing("tool_choice.name"))?;
            let wire = names.wire_name(name, str_field(&obj, "namespace"));
            Ok(Some(
                json!({"type": "function", "function": {"name": wire}}),
            ))
        }
        "allowed_tools" => {
            let allowed: Vec<String> = match obj.get("tools") {
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Value::as_str))
                    .map(|n| names.wire_name(n, None))
                    .collect(),
                _ => return Err(TranslateError::missing("tool_choice.tools")),
            };
            native_tools.retain(|t| {
                t.pointer("/function/name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| allowed.iter().any(|a| a == n))
            });
            let mode = str_field(&obj, "mode").unwrap_or("auto");
            Ok(Some(json!(mode)))
        }
        "web_search" | "web_search_preview" => {
            extra.insert("enable_search".into(), json!(true));
            extra.insert("search_options".into(), json!({"forced_search": true}));
            Ok(None)
        }
        other => Err(TranslateError::unsupported(
            "tool_choice.type",
            format!("tool_choice type '{other}' is not supported by this gateway"),
        )),
    }
}

// ---- text.format ------------------------------------------------------------------------------

fn convert_text(t: rs::TextConfig) -> Result<(Option<Value>, Value), TranslateError> {
    let Some(f) = t.format else {
        return Ok((None, json!({"format": {"type": "text"}})));
    };
    let kind = f.kind.unwrap_or_else(|| "text".into());
    match kind.as_str() {
        "text" => Ok((None, json!({"format": {"type": "text"}}))),
        "json_object" => Ok((
            Some(json!({"type": "json_object"})),
            json!({"format": {"type": "json_object"}}),
        )),
        "json_schema" => {
            let name = f
                .name
                .ok_or_else(|| TranslateError::missing("text.format.name"))?;
            let schema = f
                .schema
                .ok_or_else(|| TranslateError::missing("text.format.schema"))?;
            let mut inner = Map::new();
            inner.insert("name".into(), json!(name));
            if let Some(d) = f.description {
                inner.insert("description".into(), json!(d));
            }
            inner.insert("schema".into(), schema);
            if let Some(s) = f.strict {
                inner.insert("strict".into(), json!(s));
            }
            let mut echo = inner.clone();
            echo.insert("type".into(), json!("json_schema"));
            Ok((
                Some(json!({"type": "json_schema", "json_schema": inner})),
                json!({ "format": echo }),
            ))
        }
        other => Err(TranslateError::invalid(
            "text.format.type",
            format!("text.format.type '{other}' is not one of text, json_object, json_schema"),
        )),
    }
}

// ---- input items ------------------------------------------------------------------------------

fn convert_items(
    items: Vec<InputItem>,
    opts: Opts,
    names: &ToolNames,
    out: &mut Vec<Message>,
    notes: &mut Notes,
) -> Result<(), TranslateError> {
    // call_id → the tool name the model used, for each tool message's `name`.
    let mut call_names: Vec<(String, String)> = Vec::new();
    // Reasoning text waiting for the assistant message it belongs to.
    let mut pending_reasoning: Option<String> = None;
    // The last message is an assistant message that tool calls may still join.
    let mut assistant_open = false;
    for (i, item) in items.into_iter().enumerate() {
        let at = |f: &str| format!("input[{i}].{f}");
        let kind = item.kind.clone().unwrap_or_else(|| "message".into());
        match kind.as_str() {
            "message" => {
                let role = item
                    .role
                    .as_deref()
                    .ok_or_else(|| TranslateError::missing(&at("role")))?;
                let role = match role {
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    "system" => Role::System,
                    "developer" => Role::Developer,
                    other => {
                        return Err(TranslateError::invalid(
                            at("role"),
                            format!(
                                "role '{other}' is not one of user, assistant, system, developer"
                            ),
                        ));
                    }
                };
                let content = item
                    .content
                    .ok_or_else(|| TranslateError::missing(&at("content")))?;
                let content = convert_content(content, role, &at("content"))?;
                let mut m = message(role, Some(content));
                if role == Role::Assistant {
                    m.reasoning_content = pending_reasoning.take();
                    assistant_open = true;
                } else {
                    assistant_open = false;
                }
                out.push(m);
            }
            "function_call" | "custom_tool_call" => {
                let call_id = item
                    .call_id
                    .ok_or_else(|| TranslateError::missing(&at("call_id")))?;
                let name = item
                    .name
                    .ok_or_else(|| TranslateError::missing(&at("name")))?;
                let wire = names.wire_name(&name, item.namespace.as_deref());
                let arguments = if kind == "function_call" {
                    item.arguments.unwrap_or_default()
                } else {
                    json!({ "input": item.input.unwrap_or_default() }).to_string()
                };
                call_names.push((call_id.clone(), wire.clone()));
                let call = ToolCall {
                    id: Some(call_id),
                    kind: Some("function".into()),
                    function: Some(FunctionCall {
                        name: Some(wire),
                        arguments: Some(arguments),
                        extra: Map::new(),
                    }),
                    extra: Map::new(),
                };
                if !assistant_open {
                    let mut m = message(Role::Assistant, None);
                    m.tool_calls = Some(Vec::new());
                    out.push(m);
                    assistant_open = true;
                }
                if let Some(m) = out.last_mut() {
                    if let Some(r) = pending_reasoning.take() {
                        match &mut m.reasoning_content {
                            Some(existing) => existing.push_str(&r),
                            None => m.reasoning_content = Some(r),
                        }
                    }
                    m.tool_calls.get_or_insert_with(Vec::new).push(call);
                }
            }
            "function_call_output" | "custom_tool_call_output" => {
                let call_id = item
                    .call_id
                    .ok_or_else(|| TranslateError::missing(&at("call_id")))?;
                let output = tool_output_text(item.output, &at("output"), notes)?;
                let name = call_names
                    .iter()
                    .rev()
                    .find(|(id, _)| *id == call_id)
                    .map(|(_, n)| n.clone());
                out.push(Message {
                    role: Some(Role::Tool),
                    content: Some(Content::Text(output)),
                    tool_call_id: Some(call_id),
                    name,
                    ..Message::default()
                });
                assistant_open = false;
            }
            "reasoning" => {
                if opts.preserve_thinking
                    && let Some(text) = reasoning_text(&item)
                {
                    pending_reasoning
                        .get_or_insert_with(String::new)
                        .push_str(&text);
                }
            }
            "additional_tools" | "compaction" => {}
            other => return Err(refuse_item(other, at("type"))),
        }
    }
    Ok(())
}

/// The reasoning text of an earlier turn: our own encrypted form, else the plain content.
fn reasoning_text(item: &InputItem) -> Option<String> {
    if let Some(t) = item.encrypted_content.as_deref().and_then(decode_reasoning) {
        return Some(t);
    }
    match &item.content {
        Some(TextOrParts::Parts(parts)) => {
            let text: String = parts.iter().filter_map(|p| p.text.as_deref()).collect();
            (!text.is_empty()).then_some(text)
        }
        Some(TextOrParts::Text(t)) if !t.is_empty() => Some(t.clone()),
        _ => None,
    }
}

fn convert_content(
    content: TextOrParts<InputPart>,
    role: Role,
    param: &str,
) -> Result<Content, TranslateError> {
    let parts = match content {
        TextOrParts::Text(s) => return Ok(Content::Text(s)),
        TextOrParts::Parts(p) => p,
    };
    if role == Role::Assistant {
        // Assistant history is text: output_text and refusal parts concatenated.
        let mut text = String::new();
        for (j, p) in parts.into_iter().enumerate() {
            match p.kind.as_deref() {
                Some("output_text" | "input_text" | "text") => {
                    text.push_str(p.text.as_deref().unwrap_or_default());
                }
                Some("refusal") => text.push_str(p.refusal.as_deref().unwrap_or_default()),
                other => {
                    return Err(TranslateError::unsupported(
                        format!("{param}[{j}].type"),
                        format!(
                            "assistant content part type '{}' is not supported",
                            other.unwrap_or("")
                        ),
                    ));
                }
            }
        }
        return Ok(Content::Text(text));
    }
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.into_iter().enumerate() {
        let at = format!("{param}[{j}]");
        let kind = p
            .kind
            .as_deref()
            .ok_or_else(|| TranslateError::missing(&format!("{at}.type")))?;
        let part = match kind {
            "input_text" | "output_text" | "text" => Part {
                kind: Some("text".into()),
                text: Some(
                    p.text
                        .ok_or_else(|| TranslateError::missing(&format!("{at}.text")))?,
                ),
                ..Part::default()
            },
            "input_image" => {
                if p.file_id.is_some() && p.image_url.is_none() {
                    return Err(TranslateError::unsupported(
                        format!("{at}.file_id"),
                        "input_image with file_id is not supported (no Files API); send image_url as a URL or data URL",
                    ));
                }
                let url = p
                    .image_url
                    .ok_or_else(|| TranslateError::missing(&format!("{at}.image_url")))?;
                Part {
                    kind: Some("image_url".into()),
                    image_url: Some(MediaUrl::Url(url)),
                    ..Part::default()
                }
            }
            "input_audio" => {
                let a = p
                    .input_audio
                    .ok_or_else(|| TranslateError::missing(&format!("{at}.input_audio")))?;
                Part {
                    kind: Some("input_audio".into()),
                    input_audio: Some(openai::InputAudio {
                        data: a.data,
                        format: a.format,
                        extra: Map::new(),
                    }),
                    ..Part::default()
                }
            }
            other => {
                return Err(TranslateError::unsupported(
                    format!("{at}.type"),
                    format!(
                        "content part type '{other}' is not supported (supported: input_text, input_image, input_audio)"
                    ),
                ));
            }
        };
        out.push(part);
    }
    Ok(Content::Parts(out))
}

/// A tool output: a string, or a list whose text parts are joined (images dropped, noted).
fn tool_output_text(
    output: Option<TextOrParts<InputPart>>,
    param: &str,
    notes: &mut Notes,
) -> Result<String, TranslateError> {
    match output {
        None => Err(TranslateError::missing(param)),
        Some(TextOrParts::Text(s)) => Ok(s),
        Some(TextOrParts::Parts(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            let mut dropped = false;
            for p in parts {
                match p.kind.as_deref() {
                    Some("input_text" | "output_text" | "text") => {
                        texts.push(p.text.unwrap_or_default());
                    }
                    _ => dropped = true,
                }
            }
            if dropped {
                notes.push(format!(
                    "{param}: non-text parts dropped (DashScope tool results are text)"
                ));
            }
            Ok(texts.join("\n"))
        }
    }
}
