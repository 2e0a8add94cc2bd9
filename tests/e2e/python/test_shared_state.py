"""Two gateways sharing one Redis (started by run.sh): a conversation stored through gateway A is
retrieved, continued and deleted through gateway B, with the official `openai` Python SDK.
Skipped only when run.sh found no redis-server outside CI (in CI it fails instead)."""

import os

import openai
import pytest
from openai import OpenAI

import e2e_expected as x

A = os.environ.get("DASHBRIDGE_E2E_SHARED_A")
B = os.environ.get("DASHBRIDGE_E2E_SHARED_B")

pytestmark = pytest.mark.skipif(not (A and B), reason="no shared-state gateways (redis-server missing)")


def client(url, key=x.CLIENT_KEY):
    return OpenAI(base_url=url, api_key=key, max_retries=0, timeout=30.0)


def test_conversation_created_on_a_continues_on_b():
    a, b = client(A), client(B)
    r1 = a.responses.create(model=x.MODEL, input="scenario:text shared")
    assert r1.store is True
    got = b.responses.retrieve(r1.id)
    assert (got.id, got.output_text) == (r1.id, x.TEXT)
    items = b.responses.input_items.list(r1.id)
    assert [i.to_dict()["content"] for i in items.data] == [
        [{"type": "input_text", "text": "scenario:text shared"}]
    ]
    r2 = b.responses.create(model=x.MODEL, input="scenario:text more", previous_response_id=r1.id)
    assert (r2.status, r2.previous_response_id) == ("completed", r1.id)
    # Another key sees nothing of it, on either gateway.
    with pytest.raises(openai.NotFoundError):
        client(A, "sk-someone-else").responses.retrieve(r1.id)
    b.responses.delete(r2.id)
    with pytest.raises(openai.NotFoundError):
        a.responses.retrieve(r2.id)


# ---------------------------------------------------------------------------------------------
# A gateway restarted mid-conversation: the state is in Redis, so the conversation goes on.
# ---------------------------------------------------------------------------------------------

GATEWAY_BIN = os.environ.get("DASHBRIDGE_E2E_GATEWAY_BIN")
STATE_URL = os.environ.get("DASHBRIDGE_E2E_STATE_URL")


class Gateway:
    """A dashbridge process of this test's own on the shared Redis (clean environment, the same
    settings as run.sh's gateways). `restart()` stops it by its PID (SIGTERM, graceful drain)
    and starts a new process on the same port."""

    def __init__(self):
        self.port = 0
        self.proc = None
        self.start()

    def start(self):
        import re
        import subprocess
        import time

        env = {
            "PATH": os.environ["PATH"],
            "DASHBRIDGE_LISTEN": f"127.0.0.1:{self.port}",
            "DASHBRIDGE_UPSTREAM": os.environ["FAKE_BASE_URL"],
            "DASHSCOPE_API_KEY": os.environ["DASHBRIDGE_E2E_SERVER_KEY"],
            "DASHBRIDGE_UPSTREAM_RETRIES": "0",
            "DASHBRIDGE_LOG_FORMAT": "json",
            "DASHBRIDGE_SHUTDOWN_GRACE_SECS": "5",
            "DASHBRIDGE_STATE_URL": STATE_URL,
        }
        self.proc = subprocess.Popen([GATEWAY_BIN], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        for line in self.proc.stderr:
            m = re.search(r'"listening on http://127\.0\.0\.1:(\d+)"', line)
            if m:
                self.port = int(m.group(1))
                break
            assert time.monotonic() < deadline, "the gateway did not log its address within 10 s"
        else:
            raise AssertionError(f"the gateway exited with {self.proc.wait()} before listening")
        # Keep draining its log so the pipe never fills.
        import threading

        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=15) == 0
        self.proc = None

    def restart(self):
        self.stop()
        self.start()


@pytest.fixture
def gateway():
    if not (GATEWAY_BIN and STATE_URL):
        pytest.skip("run.sh did not export the gateway binary and the state URL")
    g = Gateway()
    yield g
    g.stop()


def native_messages(text):
    """What scenario:echo answers: the compact JSON of the native request the fake received."""
    import json

    return [(m["role"], m["content"]) for m in json.loads(text)["input"]["messages"]]


def test_a_restarted_gateway_continues_the_conversation(gateway):
    c = client(gateway.url)
    r1 = c.responses.create(model=x.MODEL, input="scenario:text before the restart")
    pid = gateway.proc.pid
    gateway.restart()
    assert gateway.proc.pid != pid
    c = client(gateway.url)
    got = c.responses.retrieve(r1.id)
    assert (got.id, got.output_text, got.status) == (r1.id, x.TEXT, "completed")
    r2 = c.responses.create(
        model=x.MODEL, input="scenario:echo after the restart", previous_response_id=r1.id
    )
    assert (r2.status, r2.previous_response_id) == ("completed", r1.id)
    # The fake received the whole chain: turn one's input and answer, then turn two.
    assert native_messages(r2.output_text) == [
        ("user", "scenario:text before the restart"),
        ("assistant", x.TEXT),
        ("user", "scenario:echo after the restart"),
    ]
    # The replica B sees the turn the restarted gateway stored, and continues it too.
    r3 = client(B).responses.create(model=x.MODEL, input="scenario:text on b", previous_response_id=r2.id)
    assert (r3.status, r3.previous_response_id) == ("completed", r2.id)
    c.responses.delete(r1.id)
    with pytest.raises(openai.NotFoundError):
        client(B).responses.retrieve(r1.id)


def test_agents_sdk_across_a_restart_and_replicas(gateway):
    """The Agents SDK with auto_previous_response_id=True: its tool loop chains turns on the
    gateway; the gateway restarts; the next run continues from the last response through
    replica B."""
    import asyncio
    import json

    from agents import Agent, Runner, function_tool, set_tracing_disabled
    from agents.models.openai_responses import OpenAIResponsesModel
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    city = "Hangzhou"
    calls = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        calls.append(city)
        return f"sunny, 25°C in {city}"

    def agent(url):
        model = OpenAIResponsesModel(
            model=x.MODEL, openai_client=AsyncOpenAI(base_url=url, api_key=x.CLIENT_KEY, max_retries=0, timeout=30.0)
        )
        return Agent(name="weather", instructions="Use the tool, then answer.", model=model, tools=[get_weather])

    prompt = x.call_tool_prompt("get_weather", json.dumps({"city": city}), "What is the weather? ")
    first = asyncio.run(Runner.run(agent(gateway.url), prompt, max_turns=4, auto_previous_response_id=True))
    assert calls == [city]
    assert first.final_output == x.CALL_TOOL_ANSWER_PREFIX + f"sunny, 25°C in {city}"
    gateway.restart()
    second = asyncio.run(
        Runner.run(
            agent(B),
            "scenario:echo and tomorrow?",
            previous_response_id=first.last_response_id,
            auto_previous_response_id=True,
        )
    )
    sent = native_messages(second.final_output)
    roles = [r for r, _ in sent]
    # system (the agent's instructions for this turn), the first run's user prompt, its tool call
    # and result, its answer, then the new question: nothing of the first run was lost.
    assert sent[0] == ("system", "Use the tool, then answer.")
    assert sent[1] == ("user", prompt)
    assert roles[2:] == ["assistant", "tool", "assistant", "user"]
    assert sent[3] == ("tool", f"sunny, 25°C in {city}")
    assert sent[4] == ("assistant", x.CALL_TOOL_ANSWER_PREFIX + f"sunny, 25°C in {city}")
    assert sent[5] == ("user", "scenario:echo and tomorrow?")
