"""Codex CLI (`codex exec`, pinned in node/package.json) against /v1/responses.

Codex runs non-interactively in an isolated CODEX_HOME and working directory under the test's
temp dir, with a `[model_providers.dashbridge]` entry (wire_api = "responses") whose base_url is
the recording proxy in front of the gateway; every event stream Codex consumed is then checked.
Codex may reach only 127.0.0.1: its proxy variables point at a closed loopback port and only
loopback is exempt; shell commands run in its workspace-write sandbox (no network) with approval
"never". Skipped, loudly, only while the gateway answers 404 on /v1/responses.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

import e2e_expected as x
from conftest import responses_route_or_skip

CODEX_MODEL = "qwen3-coder-plus"  # a text-path model on the fake
MARKER = "dashbridge-e2e-marker-7d41"


@pytest.fixture(autouse=True)
def _route(base_url):
    responses_route_or_skip(base_url)


@pytest.fixture
def codex_bin():
    path = os.environ.get("DASHBRIDGE_E2E_CODEX", "")
    if not path or not Path(path).exists():
        pytest.fail("DASHBRIDGE_E2E_CODEX is not set to the codex binary: run through tests/e2e/run.sh")
    return path


def config_toml(base_url: str) -> str:
    # The snippet of README.md's Responses section, plus what makes a test run hermetic.
    return f"""\
model = "{CODEX_MODEL}"
model_provider = "dashbridge"
approval_policy = "never"
sandbox_mode = "workspace-write"
check_for_update_on_startup = false

[model_providers.dashbridge]
name = "dashbridge"
base_url = "{base_url}"
env_key = "DASHBRIDGE_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 30000

[analytics]
enabled = false
"""


def run_codex(codex_bin, tmp_path, base_url, prompt):
    home = tmp_path / "codex-home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir(exist_ok=True)
    (home / "config.toml").write_text(config_toml(base_url))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CODEX_HOME": str(home),
        "TMPDIR": str(tmp_path),
        "DASHBRIDGE_API_KEY": x.CLIENT_KEY,
        # Nothing but loopback: any other destination goes to a closed port.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "ALL_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "RUST_LOG": "error",
    }
    last = tmp_path / "last-message.txt"
    p = subprocess.run(
        [
            codex_bin,
            "exec",
            "--skip-git-repo-check",
            "--color",
            "never",
            "-C",
            str(work),
            "--output-last-message",
            str(last),
            prompt,
        ],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p, (last.read_text() if last.exists() else None)


def responses_requests(checked):
    ex = [e for e in checked.take() if e.path.endswith("/responses")]
    return ex, [json.loads(e.request_body) for e in ex]


def test_codex_exec_plain_answer(codex_bin, tmp_path, tee, checked):
    p, last = run_codex(codex_bin, tmp_path, tee.base_url, "scenario:text Say who you are.")
    assert p.returncode == 0, p.stderr[-3000:]
    assert last == x.STREAM_TEXT
    assert p.stdout.strip() == x.STREAM_TEXT
    ex, bodies = responses_requests(checked)
    assert [e.status for e in ex] == [200]
    assert bodies[0]["model"] == CODEX_MODEL and bodies[0]["stream"] is True
    assert "exec_command" in [t.get("name") for t in bodies[0]["tools"]]
    [final] = checked.finals()
    assert final["output"][0]["content"][0]["text"] == x.STREAM_TEXT


def test_codex_exec_shell_tool_round_trip(codex_bin, tmp_path, tee, checked):
    work = tmp_path / "work"
    work.mkdir()
    (work / "hello.txt").write_text(MARKER + "\n")
    prompt = x.call_tool_prompt("exec_command", json.dumps({"cmd": "cat hello.txt"}), "Show hello.txt. ")
    p, last = run_codex(codex_bin, tmp_path, tee.base_url, prompt)
    assert p.returncode == 0, p.stderr[-3000:]
    ex, bodies = responses_requests(checked)
    assert [e.status for e in ex] == [200, 200], [e.response_body[:300] for e in ex]
    # Turn 2 replays the call and carries what the command printed.
    call, output = bodies[1]["input"][-2:]
    assert (call["type"], call["call_id"], call["name"]) == ("function_call", x.CALL_TOOL_ID, "exec_command")
    assert json.loads(call["arguments"]) == {"cmd": "cat hello.txt"}
    assert output["type"] == "function_call_output" and output["call_id"] == x.CALL_TOOL_ID
    assert MARKER in output["output"] and "exited with code 0" in output["output"]
    # The final answer is the model's answer built from that output.
    assert last.rstrip() == (x.CALL_TOOL_ANSWER_PREFIX + output["output"]).rstrip()
    assert MARKER in p.stdout
    first, second = checked.finals()
    assert [o["type"] for o in first["output"]] == ["function_call"]
    assert [o["type"] for o in second["output"]] == ["message"]
