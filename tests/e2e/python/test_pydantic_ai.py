"""pydantic-ai's default structured output (`Agent(output_type=...)`) against the real dashbridge
binary.

pydantic-ai asks for structured output with one `final_result` tool and `tool_choice:
"required"`. DashScope has no `required`, so the gateway sends that one tool by name. The fake
upstream (scenario `forced-tool`) answers a named `tool_choice` with a call to that tool, and
any other `tool_choice` with plain text, so these tests pass only if the gateway emulated
`required` as the named tool (a 400, or `auto`, makes the agent fail).
"""

from openai import AsyncOpenAI
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

import e2e_expected as x

PROMPT = (
    "Where were the 2012 Olympics held? scenario:forced-tool "
    'tool_args:{"city": "London", "country": "United Kingdom"}'
)


class City(BaseModel):
    city: str
    country: str


def agent(base_url: str) -> Agent:
    client = AsyncOpenAI(base_url=base_url, api_key=x.CLIENT_KEY, max_retries=0, timeout=30.0)
    model = OpenAIChatModel(x.MODEL, provider=OpenAIProvider(openai_client=client))
    return Agent(model, output_type=City)


def test_default_structured_output(base_url):
    result = agent(base_url).run_sync(PROMPT)
    assert result.output == City(city="London", country="United Kingdom")
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens) == (40, 12)
    # One model request: the forced tool call was answered the first time.
    assert usage.requests == 1


def test_default_structured_output_streamed(base_url):
    async def run():
        async with agent(base_url).run_stream(PROMPT) as result:
            return await result.get_output()

    import asyncio

    assert asyncio.run(run()) == City(city="London", country="United Kingdom")
