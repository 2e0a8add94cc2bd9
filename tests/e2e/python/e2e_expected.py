"""What the gateway must answer in each scenario of the fake DashScope upstream.

The fake (tests/common/fake.rs, AUTO mode) picks a canned native reply from a `scenario:NAME`
marker in the last user message; the values below are those replies (tests/fixtures/dashscope/)
as the gateway must translate them to the OpenAI shape. They are written out literally so that a
change in a fixture or in the translation shows up as a failing assertion here.
"""

import os

MODEL = "qwen-plus"
VL_MODEL = "qwen3-vl-plus"
CLIENT_KEY = "sk-client"

# text-nonstream.json
TEXT = (
    "I am Qwen, a large-scale language model developed by Alibaba Cloud. I can answer "
    "questions, write text, reason and write code. How can I help you?"
)
TEXT_ID = "chatcmpl-09dceb20-ae2e-999b-85f9-3c1d3b6ba1a4"
TEXT_REQUEST_ID = "09dceb20-ae2e-999b-85f9-3c1d3b6ba1a4"
TEXT_USAGE = (22, 29, 51)

# text-stream-incremental.sse
STREAM_TEXT = "I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?"
STREAM_PIECES = [
    "I am",
    " Qwen",
    ", a large language",
    " model developed by",
    " Alibaba Cloud.",
    " How can I",
    " help you today?",
]
STREAM_ID = "chatcmpl-d30a9914-ac97-9102-b746-ce0cb35e3fa2"
STREAM_USAGE = (22, 18, 40)

# tool-calls-nonstream.json
TOOL_CALLS = [
    ("call_c2d8a3a24c4d4929b26ae2", "get_current_weather", '{"location": "Beijing"}'),
    ("call_dc7f2f678f1944da9194cd", "get_current_weather", '{"location": "Shanghai"}'),
]
TOOLS_USAGE = (272, 40, 312)

# tool-calls-stream.sse (arguments arrive as '{"location":' + ' "Hangz' + 'hou"}')
STREAM_TOOL_CALL = ("call_8f08d2b0fc0c4d8fab7123", "get_current_weather", '{"location": "Hangzhou"}')

# tool-result-answer-nonstream.json
TOOL_RESULT_TEXT = "Beijing is sunny today at 25°C, while Shanghai is cloudy at 22°C."

# reasoning-stream.sse (a thinking model: the gateway streams upstream and aggregates)
REASONING_TEXT = "Hello! I am Qwen, a large language model by Alibaba Cloud."
REASONING_CONTENT = "Okay, the user asks who I am. I should introduce myself briefly."
REASONING_USAGE = (11, 31, 42)
REASONING_TOKENS = 15

# error-in-stream.sse: two text frames, then an in-band DataInspectionFailed error (output
# moderation: the gateway ends the choice with finish_reason content_filter).
MIDSTREAM_TEXT = "Here is the story"
# scenario:drop: the fake aborts the connection after the first three text frames.
DROP_TEXT = "I am Qwen, a large language"
DROP_MESSAGE_PREFIX = "DashScope sent an unreadable response: the upstream connection dropped mid-stream"

# scenario -> (HTTP status, OpenAI error type, OpenAI error code, message)
ERRORS = {
    "error-401": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Invalid API-key provided. "
        "(DashScope code InvalidApiKey, request_id 649b2bbc-c541-9e16-9845-db7fe4fe5b2d)",
    ),
    "error-429": (
        429,
        "rate_limit_exceeded",
        "rate_limit_exceeded",
        "Requests rate limit exceeded, please try again later. "
        "(DashScope code Throttling.RateQuota, request_id 0cbe6006-faec-9854-bf8b-c906d75c3bd8)",
    ),
    "error-400": (
        400,
        "invalid_request_error",
        "content_filter",
        "Input data may contain inappropriate content. "
        "(DashScope code DataInspectionFailed, request_id 71689cfc-1f42-9949-86e8-9563b7f832b1)",
    ),
    "model-not-exist": (
        404,
        "invalid_request_error",
        "model_not_found",
        "Model not exist. "
        "(DashScope code InvalidParameter, request_id 8c1e2f3a-4b5c-9d6e-a7f8-091a2b3c4d5e)",
    ),
}

IMAGE_URL = "https://images.example/dog.jpg"
# A 1x1 white PNG.
IMAGE_DATA_URL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "The city."}},
            "required": ["location"],
        },
    },
}


def base_url() -> str:
    url = os.environ.get("DASHBRIDGE_E2E_BASE_URL", "")
    if not url:
        raise RuntimeError(
            "DASHBRIDGE_E2E_BASE_URL is not set: run the suite through tests/e2e/run.sh"
        )
    return url


def user(text: str) -> list:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------------------------------------
# /v1/responses (test_responses.py, test_agents.py, test_codex.py)
# ---------------------------------------------------------------------------------------------

# Usage as the Responses API spells it: (input, cached, output, reasoning, total).
TEXT_RESPONSE_USAGE = (22, 0, 29, 0, 51)
STREAM_RESPONSE_USAGE = (22, 0, 18, 0, 40)
TOOLS_RESPONSE_USAGE = (272, 0, 40, 0, 312)
STREAM_TOOLS_RESPONSE_USAGE = (238, 0, 19, 0, 257)
REASONING_RESPONSE_USAGE = (11, 0, 31, 15, 42)

# Flat Responses function tool (the chat WEATHER_TOOL, unnested).
WEATHER_RESPONSES_TOOL = {
    "type": "function",
    "name": "get_current_weather",
    "description": "Get the current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "The city."}},
        "required": ["location"],
    },
}

# scenario:call-tool NAME {JSON} (tests/common/fake.rs): a native tool call on the first turn,
# then "The tool returned: " + the tool output once a tool message follows the user message.
CALL_TOOL_ID = "call_fa4e0c1d2b3a49f8a7c6d5e4"
CALL_TOOL_REQUEST_ID = "ca11ca11-7001-9a2b-8c3d-4e5f6a7b8c9d"  # the turn that calls the tool
CALL_TOOL_ANSWER_REQUEST_ID = "ca11ca11-7002-9a2b-8c3d-4e5f6a7b8c9d"  # the turn that answers
CALL_TOOL_ANSWER_PREFIX = "The tool returned: "
CALL_TOOL_USAGE = (50, 0, 12, 0, 62)
CALL_TOOL_ANSWER_USAGE = (50, 0, 9, 0, 59)

# error-in-stream.sse through /v1/responses: output moderation after "Here is the story".
MIDSTREAM_INCOMPLETE_REASON = "content_filter"


def call_tool_prompt(name: str, args: str, lead: str = "") -> str:
    return f"{lead}scenario:call-tool {name} {args}"
