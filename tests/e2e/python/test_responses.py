"""POST /v1/responses with the official `openai` Python SDK (issue 10).

Every call goes through the recording proxy (`tee` in conftest.py) and every event stream the
SDK consumed is checked with responses_check (the `checked` fixture, also after each test).
Skipped, loudly, only while the gateway answers 404 on /v1/responses.
"""

import json

import pytest
from openai import OpenAI

import e2e_expected as x
import responses_check as rc
from conftest import responses_route_or_skip


@pytest.fixture(autouse=True)
def _route(base_url):
    responses_route_or_skip(base_url)


@pytest.fixture(scope="module")
def rclient(tee):
    c = OpenAI(base_url=tee.base_url, api_key=x.CLIENT_KEY, max_retries=0, timeout=30.0)
    yield c
    c.close()


def usage_of(u):
    if not isinstance(u, dict):
        u = u.to_dict()
    return (
        u["input_tokens"],
        u["input_tokens_details"]["cached_tokens"],
        u["output_tokens"],
        u["output_tokens_details"]["reasoning_tokens"],
        u["total_tokens"],
    )


def sdk_events(stream):
    """Consumes an SDK event iterator; returns the events as (None, dict) for the checker."""
    return [(None, ev.to_dict()) for ev in stream]


def deltas(events, kind):
    return "".join(e["delta"] for _, e in events if e["type"] == kind)


def test_create_text_nonstream(rclient, checked):
    raw = rclient.responses.with_raw_response.create(model=x.MODEL, input="scenario:text hi")
    r = raw.parse()
    rc.check_response(r.to_dict())
    assert raw.headers["x-request-id"] == x.TEXT_REQUEST_ID
    assert r.model == x.MODEL
    assert r.status == "completed"
    assert r.output_text == x.TEXT
    [msg] = r.output
    assert (msg.type, msg.role, msg.status) == ("message", "assistant", "completed")
    assert [p.to_dict() for p in msg.content] == [
        {"type": "output_text", "text": x.TEXT, "annotations": [], "logprobs": []}
    ] or [p.to_dict() for p in msg.content] == [
        {"type": "output_text", "text": x.TEXT, "annotations": []}
    ]
    assert usage_of(r.usage) == x.TEXT_RESPONSE_USAGE
    assert r.store is True


def test_create_stream_raw_events(rclient, checked):
    events = sdk_events(rclient.responses.create(model=x.MODEL, input="scenario:text", stream=True))
    final = rc.check_events(events)
    assert deltas(events, "response.output_text.delta") == x.STREAM_TEXT
    assert [e["type"] for _, e in events][:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert final["output"][0]["content"][0]["text"] == x.STREAM_TEXT
    assert usage_of(final["usage"]) == x.STREAM_RESPONSE_USAGE
    [wire] = checked.finals()
    assert wire == final


def test_stream_helper_get_final_response(rclient, checked):
    with rclient.responses.stream(model=x.MODEL, input="scenario:text") as s:
        texts = [ev.delta for ev in s if ev.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(texts) == x.STREAM_TEXT
    assert final.output_text == x.STREAM_TEXT
    assert final.id.startswith("resp_")
    assert usage_of(final.usage) == x.STREAM_RESPONSE_USAGE
    [wire] = checked.finals()
    assert wire["id"] == final.id


def test_instructions_and_json_schema_reach_the_native_request(rclient, checked):
    schema = {
        "type": "object",
        "properties": {"model": {"type": "string"}},
        "required": ["model"],
        "additionalProperties": False,
    }
    r = rclient.responses.create(
        model=x.MODEL,
        instructions="Answer in JSON.",
        input="scenario:echo give me JSON",
        text={"format": {"type": "json_schema", "name": "echo", "schema": schema, "strict": True}},
        max_output_tokens=64,
    )
    native = json.loads(r.output_text)  # the fake echoes the native request it received
    assert native["model"] == x.MODEL
    assert native["input"]["messages"] == [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "scenario:echo give me JSON"},
    ]
    fmt = native["parameters"]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "echo"
    assert fmt["json_schema"]["schema"] == schema
    assert native["parameters"]["max_tokens"] == 64


@pytest.mark.parametrize("url", [x.IMAGE_URL, x.IMAGE_DATA_URL], ids=["url", "data-url"])
def test_image_input_goes_multimodal(rclient, checked, url):
    r = rclient.responses.create(
        model=x.VL_MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "scenario:echo what is this?"},
                    {"type": "input_image", "image_url": url, "detail": "auto"},
                ],
            }
        ],
    )
    native = json.loads(r.output_text)
    assert native["model"] == x.VL_MODEL
    assert native["input"]["messages"][-1] == {
        "role": "user",
        "content": [{"text": "scenario:echo what is this?"}, {"image": url}],
    }


def test_tools_nonstream_two_function_calls(rclient, checked):
    r = rclient.responses.create(
        model=x.MODEL,
        input="scenario:tools weather in Beijing and Shanghai?",
        tools=[x.WEATHER_RESPONSES_TOOL],
    )
    rc.check_response(r.to_dict())
    calls = [(o.call_id, o.name, o.arguments) for o in r.output if o.type == "function_call"]
    assert calls == x.TOOL_CALLS
    assert [o.type for o in r.output] == ["function_call", "function_call"]
    assert all(o.status == "completed" and o.id for o in r.output)
    assert usage_of(r.usage) == x.TOOLS_RESPONSE_USAGE


def test_tools_stream_function_call_arguments(rclient, checked):
    with rclient.responses.stream(
        model=x.MODEL, input="scenario:tools weather in Hangzhou?", tools=[x.WEATHER_RESPONSES_TOOL]
    ) as s:
        events = [(None, ev.to_dict()) for ev in s]
        final = s.get_final_response()
    [call] = final.output
    assert (call.type, call.call_id, call.name, call.arguments) == ("function_call", *x.STREAM_TOOL_CALL)
    assert deltas(events, "response.function_call_arguments.delta") == x.STREAM_TOOL_CALL[2]
    assert usage_of(final.usage) == x.STREAM_TOOLS_RESPONSE_USAGE
    checked.finals()


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_function_call_round_trip(rclient, checked, stream):
    prompt = x.call_tool_prompt("get_current_weather", '{"location": "Hangzhou"}', "Weather? ")
    tools = [x.WEATHER_RESPONSES_TOOL]

    def turn(input_):
        if not stream:
            return rclient.responses.create(model=x.MODEL, input=input_, tools=tools)
        with rclient.responses.stream(model=x.MODEL, input=input_, tools=tools) as s:
            return s.get_final_response()

    history = [{"role": "user", "content": prompt}]
    r1 = turn(history)
    [call] = r1.output
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments) == (
        x.CALL_TOOL_ID,
        "get_current_weather",
        '{"location":"Hangzhou"}',
    )
    assert usage_of(r1.usage) == x.CALL_TOOL_USAGE
    # The client sends the call back as an item, with its output.
    history += [call.to_dict(), {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 25°C"}]
    r2 = turn(history)
    assert r2.output_text == x.CALL_TOOL_ANSWER_PREFIX + "sunny, 25°C"
    assert [o.type for o in r2.output] == ["message"]
    assert usage_of(r2.usage) == x.CALL_TOOL_ANSWER_USAGE
    # Each turn is its own response (the ids come from the upstream request ids).
    assert r1.id.startswith("resp_") and r2.id.startswith("resp_") and r2.id != r1.id
    # Both requests reached /v1/responses; the second carried the output item.
    sent = [json.loads(ex.request_body) for ex in checked.take()]
    assert [s["input"][-1].get("type") for s in sent] == [None, "function_call_output"]
    if stream:
        assert len(checked.finals()) == 2


def test_thinking_model_reasoning_item(rclient, checked):
    r = rclient.responses.create(
        model=x.MODEL, input="scenario:reasoning who are you?", reasoning={"effort": "medium"}
    )
    rc.check_response(r.to_dict())
    assert [o.type for o in r.output] == ["reasoning", "message"]
    reasoning = r.output[0].to_dict()
    assert reasoning["content"] == [{"type": "reasoning_text", "text": x.REASONING_CONTENT}]
    # Mirrored as one summary part by default (the AI SDK, LangChain and pydantic-ai show only
    # the summary).
    assert reasoning["summary"] == [{"type": "summary_text", "text": x.REASONING_CONTENT}]
    assert r.output_text == x.REASONING_TEXT
    assert usage_of(r.usage) == x.REASONING_RESPONSE_USAGE


def test_thinking_model_stream_reasoning_events(rclient, checked):
    with rclient.responses.stream(
        model=x.MODEL, input="scenario:reasoning who are you?", reasoning={"effort": "high"}
    ) as s:
        events = [(None, ev.to_dict()) for ev in s]
        final = s.get_final_response()
    assert deltas(events, "response.reasoning_text.delta") == x.REASONING_CONTENT
    assert deltas(events, "response.output_text.delta") == x.REASONING_TEXT
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert usage_of(final.usage) == x.REASONING_RESPONSE_USAGE
    checked.finals()


def test_midstream_output_moderation_is_incomplete_content_filter(rclient, checked):
    events = sdk_events(
        rclient.responses.create(model=x.MODEL, input="scenario:midstream-error", stream=True)
    )
    final = rc.check_events(events, expect="response.incomplete")
    assert final["incomplete_details"] == {"reason": x.MIDSTREAM_INCOMPLETE_REASON}
    assert deltas(events, "response.output_text.delta") == x.MIDSTREAM_TEXT
    checked.expect[0] = "response.incomplete"


def test_dropped_upstream_is_response_failed(rclient, checked):
    events = sdk_events(rclient.responses.create(model=x.MODEL, input="scenario:drop", stream=True))
    final = rc.check_events(events, expect="response.failed")
    assert final["error"]["code"]
    assert deltas(events, "response.output_text.delta") == x.DROP_TEXT
    checked.expect[0] = "response.failed"


@pytest.mark.parametrize(
    "scenario,exc,status,code",
    [
        ("error-401", "AuthenticationError", 401, "invalid_api_key"),
        ("error-429", "RateLimitError", 429, "rate_limit_exceeded"),
        ("model-not-exist", "NotFoundError", 404, "model_not_found"),
    ],
)
def test_upstream_errors_before_output_are_http_errors(rclient, checked, scenario, exc, status, code):
    import openai

    with pytest.raises(getattr(openai, exc)) as e:
        rclient.responses.create(model=x.MODEL, input=f"scenario:{scenario}", stream=True)
    assert e.value.status_code == status
    assert e.value.code == code


def test_previous_response_id_is_refused(rclient, checked):
    import openai

    with pytest.raises(openai.BadRequestError) as e:
        rclient.responses.create(model=x.MODEL, input="scenario:text", previous_response_id="resp_x")
    assert e.value.code == "previous_response_not_found"


def test_stored_conversation_retrieve_input_items_delete(rclient, checked):
    """store (the default) keeps the turn: retrieve, input_items.list, previous_response_id, delete."""
    import openai

    r1 = rclient.responses.create(model=x.MODEL, input="scenario:text stored")
    assert r1.store is True
    got = rclient.responses.retrieve(r1.id)
    assert (got.id, got.output_text, got.store) == (r1.id, x.TEXT, True)
    items = rclient.responses.input_items.list(r1.id)
    assert len(items.data) == 1
    [item] = items.data
    assert item.to_dict()["content"] == [{"type": "input_text", "text": "scenario:text stored"}]
    assert (items.first_id, items.last_id, items.has_more) == (item.id, item.id, False)

    r2 = rclient.responses.create(
        model=x.MODEL, input="scenario:text again", previous_response_id=r1.id
    )
    assert (r2.status, r2.previous_response_id, r2.output_text) == ("completed", r1.id, x.TEXT)

    deleted = rclient.responses.delete(r2.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        rclient.responses.retrieve(r2.id)
    with pytest.raises(openai.BadRequestError) as e:
        rclient.responses.create(model=x.MODEL, input="x", previous_response_id="resp_unknown")
    assert e.value.code == "previous_response_not_found"
