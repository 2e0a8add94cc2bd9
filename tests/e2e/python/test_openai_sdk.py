"""The official `openai` Python SDK against the real dashbridge binary and the fake upstream.

Every test asserts the exact values the fake's canned reply must turn into (see e2e_expected.py).
"""

import asyncio
import json

import openai
import pytest
from openai import AsyncOpenAI

import e2e_expected as x


def echoed_request(completion) -> dict:
    """scenario:echo answers with the compact JSON of the native request the fake received."""
    return json.loads(completion.choices[0].message.content)


# 1. Non-streaming chat completion.
def test_create_nonstream_text(client):
    c = client.chat.completions.create(model=x.MODEL, messages=x.user("scenario:text who are you?"))
    assert c.id == x.TEXT_ID
    assert c.object == "chat.completion"
    assert c.model == x.MODEL
    assert len(c.choices) == 1
    choice = c.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == x.TEXT
    assert choice.message.tool_calls is None
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == x.TEXT_USAGE


# 2. stream=True with include_usage.
def test_create_stream_text_with_usage(client):
    stream = client.chat.completions.create(
        model=x.MODEL,
        messages=x.user("scenario:text who are you?"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [ch.choices[0].delta.content for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert pieces == x.STREAM_PIECES
    assert "".join(pieces) == x.STREAM_TEXT
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert {ch.id for ch in chunks} == {x.STREAM_ID}
    assert {ch.model for ch in chunks} == {x.MODEL}
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    # Only the last chunk carries usage, with no choices (OpenAI's include_usage shape).
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == x.STREAM_USAGE
    assert all(ch.usage is None for ch in chunks[:-1])
    assert chunks[0].choices[0].delta.role == "assistant"


def test_create_stream_without_include_usage_has_no_usage_chunk(client):
    stream = client.chat.completions.create(
        model=x.MODEL, messages=x.user("scenario:text who are you?"), stream=True
    )
    chunks = list(stream)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == x.STREAM_TEXT
    assert all(ch.usage is None for ch in chunks)
    assert all(len(ch.choices) == 1 for ch in chunks)


# 3. The .stream() helper.
def test_stream_helper_final_completion(client):
    deltas = []
    with client.chat.completions.stream(
        model=x.MODEL, messages=x.user("scenario:text who are you?")
    ) as stream:
        for event in stream:
            if event.type == "content.delta":
                deltas.append(event.delta)
        final = stream.get_final_completion()
    assert "".join(deltas) == x.STREAM_TEXT
    assert final.id == x.STREAM_ID
    assert final.choices[0].message.content == x.STREAM_TEXT
    assert final.choices[0].finish_reason == "stop"


def test_async_client_stream(base_url):
    async def run():
        async with AsyncOpenAI(base_url=base_url, api_key=x.CLIENT_KEY, max_retries=0, timeout=30.0) as ac:
            stream = await ac.chat.completions.create(
                model=x.MODEL, messages=x.user("scenario:text who are you?"), stream=True
            )
            return [ch.choices[0].delta.content async for ch in stream if ch.choices and ch.choices[0].delta.content]

    assert asyncio.run(run()) == x.STREAM_PIECES


# 4. Tools.
def test_tools_nonstream_two_calls(client):
    c = client.chat.completions.create(
        model=x.MODEL,
        messages=x.user("What's the weather in Beijing and Shanghai? scenario:tools"),
        tools=[x.WEATHER_TOOL],
    )
    choice = c.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = [(t.id, t.function.name, t.function.arguments) for t in choice.message.tool_calls]
    assert calls == x.TOOL_CALLS
    assert all(t.type == "function" for t in choice.message.tool_calls)
    assert [json.loads(t.function.arguments) for t in choice.message.tool_calls] == [
        {"location": "Beijing"},
        {"location": "Shanghai"},
    ]
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == x.TOOLS_USAGE


def test_tools_stream_helper_accumulates_arguments(client):
    with client.chat.completions.stream(
        model=x.MODEL,
        messages=x.user("What's the weather in Hangzhou? scenario:tools"),
        tools=[x.WEATHER_TOOL],
    ) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == x.STREAM_TOOL_CALL
    assert [(e.name, e.arguments) for e in done] == [x.STREAM_TOOL_CALL[1:]]


def test_tool_result_followup_turn(client):
    first = client.chat.completions.create(
        model=x.MODEL,
        messages=x.user("What's the weather in Beijing and Shanghai? scenario:tools"),
        tools=[x.WEATHER_TOOL],
    )
    calls = first.choices[0].message.tool_calls
    results = {"call_c2d8a3a24c4d4929b26ae2": "sunny, 25°C", "call_dc7f2f678f1944da9194cd": "cloudy, 22°C"}
    messages = [
        {"role": "user", "content": "What's the weather in Beijing and Shanghai? scenario:tool-result"},
        first.choices[0].message.model_dump(exclude_none=True),
        *[{"role": "tool", "tool_call_id": t.id, "content": results[t.id]} for t in calls],
    ]
    c = client.chat.completions.create(model=x.MODEL, messages=messages, tools=[x.WEATHER_TOOL])
    assert c.choices[0].finish_reason == "stop"
    assert c.choices[0].message.content == x.TOOL_RESULT_TEXT
    assert c.choices[0].message.tool_calls is None


# 5. Images and extra_body.
@pytest.mark.parametrize("url", [x.IMAGE_URL, x.IMAGE_DATA_URL], ids=["url", "base64"])
def test_image_parts_become_native_multimodal(client, url):
    c = client.chat.completions.create(
        model=x.VL_MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "scenario:echo describe"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    )
    assert c.model == x.VL_MODEL
    native = echoed_request(c)
    assert native["model"] == x.VL_MODEL
    assert native["input"]["messages"] == [
        {"role": "user", "content": [{"text": "scenario:echo describe"}, {"image": url}]}
    ]
    assert native["parameters"] == {"result_format": "message"}


def test_extra_body_parameters_keep_json_types(client):
    c = client.chat.completions.create(
        model=x.MODEL,
        messages=x.user("scenario:echo hi"),
        extra_body={"top_k": 5, "enable_thinking": False, "repetition_penalty": 1.05},
    )
    params = echoed_request(c)["parameters"]
    assert params == {
        "enable_thinking": False,
        "repetition_penalty": 1.05,
        "result_format": "message",
        "top_k": 5,
    }
    assert params["enable_thinking"] is False
    assert type(params["top_k"]) is int
    assert type(params["repetition_penalty"]) is float
    assert '"enable_thinking":false' in c.choices[0].message.content


# 6. Raw responses and headers.
def test_with_raw_response_request_id_header(client):
    raw = client.chat.completions.with_raw_response.create(
        model=x.MODEL, messages=x.user("scenario:text who are you?")
    )
    assert raw.status_code == 200
    assert raw.headers["x-request-id"] == x.TEXT_REQUEST_ID
    assert raw.headers.get("x-dashbridge-warning") is None
    assert raw.parse().choices[0].message.content == x.TEXT


def test_with_raw_response_warning_for_frequency_penalty(client):
    raw = client.chat.completions.with_raw_response.create(
        model=x.MODEL, messages=x.user("scenario:text who are you?"), frequency_penalty=0.5
    )
    assert raw.status_code == 200
    warning = raw.headers["x-dashbridge-warning"]
    assert "frequency_penalty" in warning
    assert warning == "frequency_penalty dropped (no DashScope equivalent)"
    assert raw.parse().choices[0].message.content == x.TEXT


# 7. Errors.
@pytest.mark.parametrize(
    "scenario, exc",
    [
        ("error-401", openai.AuthenticationError),
        ("error-429", openai.RateLimitError),
        ("error-400", openai.BadRequestError),
        ("model-not-exist", openai.NotFoundError),
    ],
)
def test_upstream_errors_raise_the_sdk_exception(client, scenario, exc):
    status, etype, code, message = x.ERRORS[scenario]
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=x.MODEL, messages=x.user(f"scenario:{scenario} hi"))
    e = info.value
    assert type(e) is exc
    assert e.status_code == status
    assert e.code == code
    assert e.type == etype
    assert e.param is None
    assert e.body == {"message": message, "type": etype, "param": None, "code": code}


def test_midstream_moderation_ends_the_choice_with_content_filter(client):
    # DataInspectionFailed after the answer started: the choice ends with content_filter and
    # the stream ends normally (no exception, nothing re-generated).
    stream = client.chat.completions.create(
        model=x.MODEL, messages=x.user("scenario:midstream-error tell me a story"), stream=True
    )
    text, finishes = [], []
    for chunk in stream:
        if chunk.choices:
            if chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
            if chunk.choices[0].finish_reason:
                finishes.append(chunk.choices[0].finish_reason)
    assert "".join(text) == x.MIDSTREAM_TEXT
    assert finishes == ["content_filter"]


def test_dropped_upstream_stream_raises_instead_of_ending_silently(client):
    stream = client.chat.completions.create(
        model=x.MODEL, messages=x.user("scenario:drop who are you?"), stream=True
    )
    text = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
    assert "".join(text) == x.DROP_TEXT
    e = info.value
    assert e.message.startswith(x.DROP_MESSAGE_PREFIX)
    assert e.code == "bad_upstream_response"
    assert e.type == "server_error"


def test_stream_helper_reports_midstream_moderation(client):
    # The helper's final completion raises the SDK's own content-filter error.
    with pytest.raises(openai.ContentFilterFinishReasonError):
        with client.chat.completions.stream(
            model=x.MODEL, messages=x.user("scenario:midstream-error tell me a story")
        ) as stream:
            for _ in stream:
                pass
            stream.get_final_completion()
    assert stream.current_completion_snapshot.choices[0].message.content == x.MIDSTREAM_TEXT
    assert stream.current_completion_snapshot.choices[0].finish_reason == "content_filter"


# 8. Models.
def test_models_list(client):
    models = list(client.models.list())
    assert models, "the model list is empty"
    ids = [m.id for m in models]
    assert len(ids) == len(set(ids))
    assert x.MODEL in ids
    assert x.VL_MODEL in ids
    for m in models:
        assert m.id
        assert m.object == "model"
        assert m.owned_by.startswith("dashscope")
        assert isinstance(m.created, int)


# 9. Thinking.
def test_thinking_nonstream_aggregates_reasoning_content(client):
    c = client.chat.completions.create(
        model=x.MODEL,
        messages=x.user("scenario:reasoning who are you?"),
        extra_body={"enable_thinking": True},
    )
    assert len(c.choices) == 1
    msg = c.choices[0].message
    assert msg.content == x.REASONING_TEXT
    assert msg.model_extra["reasoning_content"] == x.REASONING_CONTENT
    assert msg.reasoning_content == x.REASONING_CONTENT
    assert c.choices[0].finish_reason == "stop"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == x.REASONING_USAGE
    assert c.usage.completion_tokens_details.reasoning_tokens == x.REASONING_TOKENS


def test_thinking_stream_separates_reasoning_and_content(client):
    stream = client.chat.completions.create(
        model=x.MODEL,
        messages=x.user("scenario:reasoning who are you?"),
        extra_body={"enable_thinking": True},
        stream=True,
    )
    reasoning, content = [], []
    for ch in stream:
        if not ch.choices:
            continue
        delta = ch.choices[0].delta
        reasoning.append((delta.model_extra or {}).get("reasoning_content") or "")
        content.append(delta.content or "")
    assert "".join(reasoning) == x.REASONING_CONTENT
    assert "".join(content) == x.REASONING_TEXT
