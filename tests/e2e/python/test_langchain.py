"""LangChain's `ChatOpenAI` (langchain-openai) against the real dashbridge binary."""

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

import e2e_expected as x


@tool
def get_current_weather(location: str) -> str:
    """Get the current weather in a city."""
    return f"sunny in {location}"


def chat(base_url: str, **kw) -> ChatOpenAI:
    return ChatOpenAI(base_url=base_url, api_key=x.CLIENT_KEY, model=x.MODEL, max_retries=0, timeout=30, **kw)


@pytest.fixture(scope="module")
def llm(base_url):
    return chat(base_url)


def test_invoke_exact_content(llm):
    msg = llm.invoke("scenario:text who are you?")
    assert isinstance(msg, AIMessage)
    assert msg.content == x.TEXT
    assert msg.response_metadata["id"] == x.TEXT_ID
    assert msg.response_metadata["model_name"] == x.MODEL
    assert msg.response_metadata["finish_reason"] == "stop"
    usage = msg.usage_metadata
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == x.TEXT_USAGE
    assert msg.tool_calls == []


def test_stream_joined_chunks_exact(base_url):
    llm = chat(base_url, stream_usage=True)
    chunks = list(llm.stream("scenario:text who are you?"))
    assert "".join(c.content for c in chunks) == x.STREAM_TEXT
    assert [c.content for c in chunks if c.content] == x.STREAM_PIECES
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.content == x.STREAM_TEXT
    usage = total.usage_metadata
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == x.STREAM_USAGE
    assert total.response_metadata["finish_reason"] == "stop"


def test_bind_tools_parses_tool_calls(llm):
    msg = llm.bind_tools([get_current_weather]).invoke(
        "What's the weather in Beijing and Shanghai? scenario:tools"
    )
    assert msg.content == ""
    assert msg.invalid_tool_calls == []
    assert msg.tool_calls == [
        {
            "name": "get_current_weather",
            "args": {"location": "Beijing"},
            "id": "call_c2d8a3a24c4d4929b26ae2",
            "type": "tool_call",
        },
        {
            "name": "get_current_weather",
            "args": {"location": "Shanghai"},
            "id": "call_dc7f2f678f1944da9194cd",
            "type": "tool_call",
        },
    ]
    assert msg.response_metadata["finish_reason"] == "tool_calls"


def test_bind_tools_stream_accumulates_tool_call(llm):
    chunks = list(llm.bind_tools([get_current_weather]).stream("Weather in Hangzhou? scenario:tools"))
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.tool_calls == [
        {
            "name": "get_current_weather",
            "args": {"location": "Hangzhou"},
            "id": "call_8f08d2b0fc0c4d8fab7123",
            "type": "tool_call",
        }
    ]
    assert total.tool_call_chunks[0]["args"] == x.STREAM_TOOL_CALL[2]


def test_tool_result_followup(llm):
    first = llm.bind_tools([get_current_weather]).invoke(
        "What's the weather in Beijing and Shanghai? scenario:tools"
    )
    results = [
        ToolMessage(content=get_current_weather.invoke(call["args"]), tool_call_id=call["id"])
        for call in first.tool_calls
    ]
    assert [r.content for r in results] == [
        "sunny in Beijing",
        "sunny in Shanghai",
    ]
    answer = llm.bind_tools([get_current_weather]).invoke(
        [HumanMessage("What's the weather in Beijing and Shanghai? scenario:tool-result"), first, *results]
    )
    assert answer.content == x.TOOL_RESULT_TEXT
    assert answer.tool_calls == []


def test_error_propagates_as_openai_exception(llm):
    with pytest.raises(openai.AuthenticationError) as info:
        llm.invoke("scenario:error-401 hi")
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
