"""Replays every recorded DashScope exchange in ../shared/dashscope/captures/ through the gateway.

Each capture folder holds `meta.json` (the OpenAI request a client would send, the recorded
status, what the recording settles) and the native body or stream DashScope answered. The fake
upstream is told to serve that file verbatim (`POST /__fake/script`), the official SDK sends
`meta["openai_request"]`, and what the SDK got is compared with what a small reference reader,
written here independently of the gateway, reads out of the recording: text, reasoning, tool
calls, images, finish reason and usage, or the error.

The captures are third-party data: they are read from the shared folder at test time and never
copied into the repository. Without the folder (``DASHBRIDGE_CAPTURES`` or
``<repo>/../shared/dashscope/captures``) every case is skipped with a message saying so.

Captures the gateway does not handle yet are marked ``xfail(strict=True)`` with the issue item
that fixes them (KNOWN_FAILURES), so this suite passes today and fails loudly (XPASS) the day a
fix lands, asking for the mark to be removed.
"""

import json
import os
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

import e2e_expected as x

REPO = Path(__file__).resolve().parents[3]
CAPTURES = Path(os.environ.get("DASHBRIDGE_CAPTURES") or REPO.parent / "shared/dashscope/captures")

# capture id (or "id[variant]") → why it still fails. Empty: every capture replays exactly (the
# chat-core hardening fixed the ten that did not: cumulative streams, extension-only frames,
# image output, upstream-internal fields, Arrearage's code).
KNOWN_FAILURES: dict[str, str] = {}

# Native error codes whose OpenAI code the issue fixes (item 12).
ERROR_CODES = {"Arrearage": "insufficient_quota"}


# ---------------------------------------------------------------------------------------------
# The reference reader: what the recording says, computed from the recording alone.
# ---------------------------------------------------------------------------------------------


def content_text(content) -> str:
    """Native content: a string, or a list of modality parts whose `text` parts make the text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def content_images(content) -> list:
    if isinstance(content, list):
        return [p["image"] for p in content if isinstance(p, dict) and isinstance(p.get("image"), str)]
    return []


def finish_of(value):
    return None if value in (None, "", "null") else value


def sse_frames(text: str):
    """(event name, parsed JSON data) for each event of a native SSE body."""
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event, data = "result", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :])
        if data:
            yield event, json.loads("\n".join(data))


def new_choice() -> dict:
    return {"text": "", "reasoning": "", "tools": {}, "images": [], "finish": None}


def add_tool_fragments(tools: dict, fragments) -> None:
    """Tool calls assembled by index: first id and name seen, arguments concatenated."""
    for pos, tc in enumerate(fragments or []):
        slot = tools.setdefault(tc.get("index", pos), {"id": "", "name": "", "arguments": ""})
        fn = tc.get("function") or {}
        slot["id"] = slot["id"] or tc.get("id") or ""
        slot["name"] = slot["name"] or fn.get("name") or ""
        slot["arguments"] += fn.get("arguments") or ""


def expected_from_json(body: dict) -> dict:
    out = body.get("output") or {}
    choices = []
    for ch in out.get("choices") or []:
        msg = ch.get("message") or {}
        c = new_choice()
        c["text"] = content_text(msg.get("content"))
        c["reasoning"] = msg.get("reasoning_content") or ""
        c["images"] = content_images(msg.get("content"))
        add_tool_fragments(c["tools"], msg.get("tool_calls"))
        c["finish"] = finish_of(ch.get("finish_reason"))
        choices.append(c)
    if not choices and "text" in out:  # result_format "text"
        c = new_choice()
        c["text"] = out.get("text") or ""
        c["finish"] = finish_of(out.get("finish_reason"))
        choices.append(c)
    return {"choices": choices, "usage": body.get("usage"), "error": None}


def expected_from_stream(text: str, cumulative: bool) -> dict:
    """Incremental streams: the sum of the deltas. Cumulative ones: the last frame's text."""
    c, usage = new_choice(), None
    for event, data in sse_frames(text):
        if event == "error" or data.get("code"):
            return {"choices": [c], "usage": usage, "error": data}
        out = data.get("output") or {}
        choices = out.get("choices") or []
        if choices:
            ch = choices[0]
            msg = ch.get("message") or {}
            piece, thought = content_text(msg.get("content")), msg.get("reasoning_content") or ""
            c["images"] += content_images(msg.get("content"))
            add_tool_fragments(c["tools"], msg.get("tool_calls"))
            finish = finish_of(ch.get("finish_reason"))
        else:
            piece, thought = out.get("text") or "", ""
            finish = finish_of(out.get("finish_reason"))
        if cumulative:
            c["text"] = piece or c["text"]
            c["reasoning"] = thought or c["reasoning"]
        else:
            c["text"] += piece
            c["reasoning"] += thought
        c["finish"] = finish or c["finish"]
        usage = data.get("usage") or usage
    return {"choices": [c], "usage": usage, "error": None}


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------


def replies_of(folder: Path, meta: dict) -> list:
    """What the fake must answer, in call order."""
    headers = {k: v for k, v in (meta.get("upstream_headers") or {}).items() if k.lower() != "content-length"}
    if "paths" in meta:
        order = [p.strip() for p in meta["endpoint"].split("→")]
        return [{"file": str(folder / meta["paths"][p]["file"]), "status": meta["paths"][p]["status"]} for p in order]
    one = {"file": str(folder / meta["upstream_file"]), "status": meta.get("upstream_status", 200), "headers": headers}
    return [one] * int(meta.get("expect_upstream_calls", 1))


def recorded(folder: Path, meta: dict) -> dict:
    """The reference reading of the reply the client's answer must match (the last call's)."""
    last = replies_of(folder, meta)[-1]
    text = Path(last["file"]).read_text(encoding="utf-8")
    if last["file"].endswith(".sse"):
        return expected_from_stream(text, cumulative=meta.get("incremental_output") is False)
    body = json.loads(text)
    if last["status"] != 200 or body.get("code"):
        return {"choices": [], "usage": None, "error": body}
    return expected_from_json(body)


def cases():
    if not CAPTURES.is_dir():
        return [pytest.param(None, None, id="captures-absent")]
    out = []
    for folder in sorted(p for p in CAPTURES.iterdir() if (p / "meta.json").is_file()):
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        request = meta["openai_request"]
        variants = [("", request)]
        if meta.get("also_nonstream"):
            plain = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
            variants.append(("[nonstream]", plain))
        if meta.get("also_stream_without_usage"):
            variants.append(("[no-usage]", {**{k: v for k, v in request.items() if k != "stream_options"}, "stream": True}))
        for suffix, req in variants:
            cid = folder.name + suffix
            marks = []
            if cid in KNOWN_FAILURES:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[cid]))
            out.append(pytest.param(folder, req, id=cid, marks=marks))
    return out


@pytest.fixture(scope="module")
def fake():
    base = os.environ.get("FAKE_BASE_URL")
    if not base:
        pytest.skip("FAKE_BASE_URL is not set (run through tests/e2e/run.sh)")
    with httpx.Client(base_url=base, timeout=10.0, trust_env=False) as c:
        yield c


@pytest.fixture(scope="module")
def sdk(base_url):
    c = OpenAI(base_url=base_url, api_key=x.CLIENT_KEY, max_retries=0, timeout=30.0)
    yield c
    c.close()


def call(sdk: OpenAI, request: dict) -> dict:
    """Sends the request with the SDK; returns what the client got, normalised like `recorded`."""
    req = dict(request)
    extra_body = req.pop("extra_body", None)
    if not req.get("stream"):
        c = sdk.chat.completions.create(**req, extra_body=extra_body)
        choices = []
        for ch in c.choices:
            m = ch.message
            extra = m.model_extra or {}
            choices.append(
                {
                    "text": m.content or "",
                    "reasoning": extra.get("reasoning_content") or "",
                    "tools": {
                        i: {"id": t.id, "name": t.function.name, "arguments": t.function.arguments}
                        for i, t in enumerate(m.tool_calls or [])
                    },
                    "images": [img["image_url"]["url"] for img in extra.get("images") or []],
                    "finish": ch.finish_reason,
                }
            )
        return {"choices": choices, "usage": c.usage, "dump": c.model_dump(), "empty_mid_chunks": 0, "error": None}
    got = {**new_choice(), "finish": None}
    usage, dumps, empty_mid, error, seen_last = None, [], 0, None, False
    try:
        for chunk in sdk.chat.completions.create(**req, extra_body=extra_body):
            dumps.append(chunk.model_dump())
            if not chunk.choices:
                empty_mid += 1 if chunk.usage is None else 0
                usage = chunk.usage or usage
                seen_last = True
                continue
            if seen_last:
                empty_mid += 1  # a usage chunk that was not the last one
            d = chunk.choices[0].delta
            extra = d.model_extra or {}
            got["text"] += d.content or ""
            got["reasoning"] += extra.get("reasoning_content") or ""
            got["images"] += [img["image_url"]["url"] for img in extra.get("images") or []]
            for t in d.tool_calls or []:
                slot = got["tools"].setdefault(t.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = slot["id"] or t.id or ""
                if t.function:
                    slot["name"] = slot["name"] or t.function.name or ""
                    slot["arguments"] += t.function.arguments or ""
            got["finish"] = chunk.choices[0].finish_reason or got["finish"]
    except openai.APIError as e:
        error = e
    return {"choices": [got], "usage": usage, "dump": dumps, "empty_mid_chunks": empty_mid, "error": error}


def usage_numbers(native: dict):
    inp = native.get("input_tokens", native.get("prompt_tokens"))
    outp = native.get("output_tokens", native.get("completion_tokens"))
    total = native.get("total_tokens")
    if total is None and inp is not None and outp is not None:
        total = inp + outp
    return inp, outp, total


def contains_key(value, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(contains_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(contains_key(v, key) for v in value)
    return False


@pytest.mark.parametrize("folder,request_", cases())
def test_capture_replay(fake, sdk, folder, request_):
    if folder is None:
        pytest.skip(f"captures folder {CAPTURES} is absent: nothing to replay (CI has it)")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    stale = fake.post("/__fake/reset").json()["pending"]
    assert stale == 0, f"{stale} scripted replies left over from an earlier case"
    r = fake.post("/__fake/script", json={"replies": replies_of(folder, meta)})
    assert r.status_code == 200, r.text
    want = recorded(folder, meta)
    try:
        if "expect_error" in meta:
            check_error(sdk, request_, meta["expect_error"], want["error"])
        elif meta.get("expect_incomplete"):
            got = call(sdk, request_)
            assert isinstance(got["error"], openai.APIError), "a stream cut before its finish frame raises"
            assert got["choices"][0]["text"] == want["choices"][0]["text"]
        elif "expect_midstream_error" in meta:
            got = call(sdk, request_)
            spec = meta["expect_midstream_error"]
            assert isinstance(got["error"], openai.APIError), "the SDK raised mid-stream"
            assert spec["message_contains"] in str(got["error"])
            assert got["choices"][0]["text"] == spec["content_before"]
        else:
            check_answer(call(sdk, request_), want, meta, request_)
    finally:
        left = fake.post("/__fake/reset").json()["pending"]
    assert left == 0, f"the gateway made fewer upstream calls than the recording has ({left} unused)"


def check_error(sdk, request_, spec, native) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        got = call(sdk, request_)
        if got["error"] is not None:  # raised while iterating a stream
            raise got["error"]
    assert info.value.status_code in spec["status"], info.value
    assert spec["message_contains"] in str(info.value), info.value
    assert info.value.code, "the error names a code"
    want_code = ERROR_CODES.get((native or {}).get("code"))
    if want_code:
        assert info.value.code == want_code, info.value


def check_answer(got: dict, want: dict, meta: dict, request_: dict) -> None:
    assert got["error"] is None, f"the SDK raised: {got['error']!r}"
    assert want["error"] is None
    # The client's model name comes back; upstream-internal fields never leak (item 12).
    for d in got["dump"] if isinstance(got["dump"], list) else [got["dump"]]:
        assert d["model"] == request_["model"], d["model"]
    assert not contains_key(got["dump"], "model_name")
    assert len(got["choices"]) == len(want["choices"]), got["choices"]
    for g, w in zip(got["choices"], want["choices"]):
        assert g["text"] == w["text"]
        assert g["reasoning"] == w["reasoning"]
        assert g["images"] == w["images"]
        assert len(g["tools"]) == len(w["tools"]), g["tools"]
        for gt, wt in zip(sorted(g["tools"].values(), key=str), sorted(w["tools"].values(), key=str)):
            # The recorded id is kept; an empty one (seen in the wild) gets a generated id.
            assert gt["id"] == wt["id"] if wt["id"] else gt["id"], (gt, wt)
            assert (gt["name"], gt["arguments"]) == (wt["name"], wt["arguments"])
        allowed = [w["finish"] or "stop"] + list(meta.get("finish_alternatives") or [])
        assert g["finish"] in allowed, (g["finish"], allowed)
    assert got["empty_mid_chunks"] == 0, "a chunk with `choices: []` that is not the final usage chunk"
    wants_usage = not request_.get("stream") or (request_.get("stream_options") or {}).get("include_usage")
    if meta.get("usage_check", True) and want["usage"] and wants_usage:
        assert got["usage"] is not None, "no usage"
        u = got["usage"]
        assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == usage_numbers(want["usage"])
        if "expect_cached_tokens" in meta:
            details = u.prompt_tokens_details
            assert details is not None and details.cached_tokens == meta["expect_cached_tokens"]
    if meta.get("expect_extension"):
        assert contains_key(got["dump"], meta["expect_extension"]), meta["expect_extension"]
    if meta.get("expect_logprobs"):
        assert contains_key(got["dump"], "logprobs") and got["dump"]["choices"][0]["logprobs"]
