"""The OpenAI Agents SDK (`openai-agents`, default Responses mode) against /v1/responses.

An agent with one function tool: the fake model (scenario:call-tool) calls the tool on the first
turn and answers from the tool's output on the second, so the final output proves the whole
loop: the call item reached the SDK, the SDK ran the tool, and the `function_call_output` it sent
back reached the model as a native `tool` message. Every stream goes through the recording proxy
and is checked. Skipped, loudly, only while the gateway answers 404 on /v1/responses.
"""

import asyncio
import json

import pytest
from agents import (
    Agent,
    Runner,
    function_tool,
    set_default_openai_client,
    set_tracing_disabled,
)
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI

import e2e_expected as x
from conftest import responses_route_or_skip

set_tracing_disabled(True)

CITY = "Hangzhou"
PROMPT = x.call_tool_prompt("get_weather", json.dumps({"city": CITY}), "What is the weather? ")
TOOL_RESULT = f"sunny, 25°C in {CITY}"


@pytest.fixture(autouse=True)
def _route(base_url):
    responses_route_or_skip(base_url)


def make_agent(calls):
    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        calls.append(city)
        return f"sunny, 25°C in {city}"

    return Agent(
        name="weather",
        instructions="Use the tool, then answer from its result.",
        model=x.MODEL,
        tools=[get_weather],
    )


def run(coro_fn, tee):
    async def go():
        client = AsyncOpenAI(base_url=tee.base_url, api_key=x.CLIENT_KEY, max_retries=0, timeout=30.0)
        set_default_openai_client(client, use_for_tracing=False)
        try:
            return await coro_fn()
        finally:
            await client.close()

    return asyncio.run(go())


def assert_sent(checked, stream):
    exchanges = checked.take()
    assert [(e.method, e.path.rsplit("/", 1)[-1], e.status) for e in exchanges] == [
        ("POST", "responses", 200),
        ("POST", "responses", 200),
    ]
    first, second = (json.loads(e.request_body) for e in exchanges)
    assert first.get("stream") is (True if stream else None)
    assert first["instructions"] == "Use the tool, then answer from its result."
    assert [t["name"] for t in first["tools"]] == ["get_weather"]
    out = second["input"][-1]
    assert out == {"call_id": x.CALL_TOOL_ID, "output": TOOL_RESULT, "type": "function_call_output"}
    assert second["input"][-2]["type"] == "function_call"
    return exchanges


def test_default_model_is_responses():
    agent = make_agent([])
    # No model provider configured: the SDK's default is the Responses API.
    from agents.models.openai_provider import OpenAIProvider

    model = OpenAIProvider(openai_client=AsyncOpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")).get_model(
        agent.model
    )
    assert isinstance(model, OpenAIResponsesModel)


def test_runner_run_with_function_tool(tee, checked):
    calls = []
    agent = make_agent(calls)
    result = run(lambda: Runner.run(agent, PROMPT, max_turns=4), tee)
    assert calls == [CITY]
    assert result.final_output == x.CALL_TOOL_ANSWER_PREFIX + TOOL_RESULT
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert_sent(checked, stream=False)
    # Runner.run is non-streaming: nothing to check as a stream, but the bodies are responses.
    assert checked.finals() == []


def test_runner_run_streamed_with_function_tool(tee, checked):
    calls = []
    agent = make_agent(calls)

    async def go():
        streamed = Runner.run_streamed(agent, PROMPT, max_turns=4)
        raw_types, item_types = [], []
        async for ev in streamed.stream_events():
            if ev.type == "raw_response_event":
                raw_types.append(ev.data.type)
            elif ev.type == "run_item_stream_event":
                item_types.append(ev.item.type)
        return streamed, raw_types, item_types

    streamed, raw_types, item_types = run(go, tee)
    assert calls == [CITY]
    assert streamed.final_output == x.CALL_TOOL_ANSWER_PREFIX + TOOL_RESULT
    assert item_types == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert raw_types.count("response.completed") == 2
    assert "response.function_call_arguments.delta" in raw_types
    assert_sent(checked, stream=True)
    assert len(checked.finals()) == 2


def test_runner_run_with_auto_previous_response_id(tee, checked):
    """Response chaining: the second turn sends only the tool output and `previous_response_id`;
    the gateway prepends the stored first turn, so the model still answers from the tool."""
    calls = []
    agent = make_agent(calls)
    result = run(
        lambda: Runner.run(agent, PROMPT, max_turns=4, auto_previous_response_id=True), tee
    )
    assert calls == [CITY]
    assert result.final_output == x.CALL_TOOL_ANSWER_PREFIX + TOOL_RESULT
    exchanges = checked.take()
    assert [(e.method, e.status) for e in exchanges] == [("POST", 200), ("POST", 200)]
    first, second = (json.loads(e.request_body) for e in exchanges)
    first_id = json.loads(exchanges[0].response_body)["id"]
    assert "previous_response_id" not in first
    assert second["previous_response_id"] == first_id
    assert [i["type"] for i in second["input"]] == ["function_call_output"]
    assert checked.finals() == []
