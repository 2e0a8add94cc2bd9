"""The Responses stream checker itself: a handmade valid stream passes, every broken variant fails.

No server needed: these run first in the Responses suite, so a checker that accepts everything
cannot make the client tests pass vacuously.
"""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

import responses_check as rc

RID = "resp_6f1c2b0e9a4d4c0f8d1e7a2b3c4d5e6f"
USAGE = {
    "input_tokens": 812,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 96,
    "output_tokens_details": {"reasoning_tokens": 41},
    "total_tokens": 908,
}


def resp(status, output, usage=None):
    return {
        "id": RID,
        "object": "response",
        "created_at": 1764400000,
        "status": status,
        "model": "qwen3-coder-plus",
        "output": output,
        "usage": copy.deepcopy(usage),
        "error": None,
        "incomplete_details": None,
    }


def valid_events():
    """The canonical "thinking, then text, then one tool call" stream of surfaces.md §1.9."""
    rs_part = {"type": "reasoning_text", "text": "Let me think."}
    rs_done = {
        "id": "rs_1",
        "type": "reasoning",
        "status": "completed",
        "summary": [{"type": "summary_text", "text": "Let me think."}],
        "content": [rs_part],
    }
    text = "I'll check the weather."
    msg_part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    msg_done = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [msg_part],
    }
    args = '{"city": "杭州"}'
    fc_done = {
        "id": "fc_1",
        "type": "function_call",
        "status": "completed",
        "call_id": "call_ecc4",
        "name": "get_weather",
        "arguments": args,
    }
    rs = {"item_id": "rs_1", "output_index": 0}
    ms = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
    fc = {"item_id": "fc_1", "output_index": 2}
    evs = [
        ("response.created", {"response": resp("in_progress", [])}),
        ("response.in_progress", {"response": resp("in_progress", [])}),
        (
            "response.output_item.added",
            {
                "output_index": 0,
                "item": {
                    "id": "rs_1",
                    "type": "reasoning",
                    "status": "in_progress",
                    "summary": [],
                    "content": [],
                },
            },
        ),
        (
            "response.content_part.added",
            dict(rs, content_index=0, part={"type": "reasoning_text", "text": ""}),
        ),
        ("response.reasoning_text.delta", dict(rs, content_index=0, delta="Let me")),
        ("response.reasoning_text.delta", dict(rs, content_index=0, delta=" think.")),
        ("response.reasoning_text.done", dict(rs, content_index=0, text="Let me think.")),
        ("response.content_part.done", dict(rs, content_index=0, part=rs_part)),
        (
            "response.reasoning_summary_part.added",
            dict(rs, summary_index=0, part={"type": "summary_text", "text": ""}),
        ),
        ("response.reasoning_summary_text.delta", dict(rs, summary_index=0, delta="Let me think.")),
        ("response.reasoning_summary_text.done", dict(rs, summary_index=0, text="Let me think.")),
        (
            "response.reasoning_summary_part.done",
            dict(rs, summary_index=0, part={"type": "summary_text", "text": "Let me think."}),
        ),
        ("response.output_item.done", {"output_index": 0, "item": rs_done}),
        (
            "response.output_item.added",
            {
                "output_index": 1,
                "item": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "status": "in_progress",
                    "content": [],
                },
            },
        ),
        (
            "response.content_part.added",
            dict(ms, part={"type": "output_text", "text": "", "annotations": [], "logprobs": []}),
        ),
        ("response.output_text.delta", dict(ms, delta="I'll check", logprobs=[])),
        ("response.output_text.delta", dict(ms, delta=" the weather.", logprobs=[])),
        ("response.output_text.done", dict(ms, text=text, logprobs=[])),
        ("response.content_part.done", dict(ms, part=msg_part)),
        ("response.output_item.done", {"output_index": 1, "item": msg_done}),
        (
            "response.output_item.added",
            {
                "output_index": 2,
                "item": dict(fc_done, status="in_progress", arguments=""),
            },
        ),
        ("response.function_call_arguments.delta", dict(fc, delta='{"city": "杭')),
        ("response.function_call_arguments.delta", dict(fc, delta='州"}')),
        ("response.function_call_arguments.done", dict(fc, arguments=args)),
        ("response.output_item.done", {"output_index": 2, "item": fc_done}),
        (
            "response.completed",
            {"response": resp("completed", [rs_done, msg_done, fc_done], USAGE)},
        ),
    ]
    return [dict({"type": t, "sequence_number": i}, **d) for i, (t, d) in enumerate(evs)]


def to_sse(events, names=None):
    out = []
    for i, e in enumerate(events):
        name = e["type"] if names is None else names[i]
        out.append(f"event: {name}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n")
    return "".join(out)


def renumber(evs):
    for i, e in enumerate(evs):
        e["sequence_number"] = i
    return evs


def find(evs, t, nth=0):
    return [i for i, e in enumerate(evs) if e["type"] == t][nth]


def test_valid_stream_passes():
    evs = valid_events()
    final = rc.check_sse(to_sse(evs))
    assert final["id"] == RID
    assert [o["id"] for o in final["output"]] == ["rs_1", "msg_1", "fc_1"]
    # The same through the events-only entry point, and with keep-alive comments and CRLF.
    assert rc.check_events([(None, e) for e in evs]) == final
    sse = ": keepalive\n\n" + to_sse(evs).replace("\n\n", "\n\n: keepalive\n\n", 3)
    assert rc.check_sse(sse.replace("\n", "\r\n")) == final


def test_valid_text_only_and_incomplete_pass():
    evs = valid_events()
    # Keep only the message item, as output_index 0.
    lo, hi = find(evs, "response.output_item.added", 1), find(evs, "response.output_item.done", 1)
    body = copy.deepcopy(evs[lo : hi + 1])
    for e in body:
        if "output_index" in e:
            e["output_index"] = 0
    msg = body[-1]["item"]
    end = {"type": "response.incomplete", "response": resp("incomplete", [msg], USAGE)}
    end["response"]["incomplete_details"] = {"reason": "max_output_tokens"}
    short = renumber(evs[:2] + body + [end])
    assert rc.check_sse(to_sse(short), expect="response.incomplete")["status"] == "incomplete"
    with pytest.raises(rc.StreamViolation, match="expected response.completed"):
        rc.check_sse(to_sse(short))


def broken(mutate):
    evs = valid_events()
    names = [e["type"] for e in evs]
    res = mutate(evs, names)
    if isinstance(res, str):
        return res
    return to_sse(evs, names)


def m_event_name(evs, names):
    names[4] = "response.output_text.delta"


def m_type_missing(evs, names):
    del evs[5]["type"]


def m_seq_gap(evs, names):
    for e in evs[7:]:
        e["sequence_number"] += 1


def m_seq_from_one(evs, names):
    for e in evs:
        e["sequence_number"] += 1


def m_seq_missing(evs, names):
    del evs[3]["sequence_number"]


def m_created_not_first(evs, names):
    evs[0], evs[1] = evs[1], evs[0]
    names[0], names[1] = names[1], names[0]
    renumber(evs)


def m_id_changed(evs, names):
    evs[-1]["response"]["id"] = "resp_other"


def m_delta_before_added(evs, names):
    # The message's first text delta moved before its output_item.added.
    d = evs.pop(find(evs, "response.output_text.delta"))
    evs.insert(find(evs, "response.output_item.added", 1), d)
    names[:] = [e["type"] for e in renumber(evs)]


def m_delta_before_part(evs, names):
    i = find(evs, "response.content_part.added", 1)
    evs[i], evs[i + 1] = evs[i + 1], evs[i]
    names[:] = [e["type"] for e in renumber(evs)]


def m_no_item_done(evs, names):
    evs.pop(find(evs, "response.output_item.done", 2))
    names[:] = [e["type"] for e in renumber(evs)]


def m_done_after_completed(evs, names):
    d = evs.pop(find(evs, "response.output_item.done", 2))
    evs.append(d)
    names[:] = [e["type"] for e in renumber(evs)]


def m_output_index_gap(evs, names):
    for e in evs:
        if e.get("output_index") == 2:
            e["output_index"] = 3


def m_output_index_reserved(evs, names):
    # LiteLLM's bug: index 0 reserved for a message that never comes, items start at 1.
    for e in evs:
        if "output_index" in e:
            e["output_index"] += 1


def m_completed_without_output(evs, names):
    evs[-1]["response"]["output"] = []


def m_completed_without_usage(evs, names):
    evs[-1]["response"]["usage"] = None


def m_usage_missing_cached(evs, names):
    del evs[-1]["response"]["usage"]["input_tokens_details"]


def m_usage_bad_total(evs, names):
    evs[-1]["response"]["usage"]["total_tokens"] = 1


def m_done_sentinel(evs, names):
    return to_sse(evs, names) + "data: [DONE]\n\n"


def m_no_terminal(evs, names):
    return to_sse(evs[:-1], names[:-1])


def m_unknown_event(evs, names):
    evs.insert(3, {"type": "response.dashbridge.note", "note": "x"})
    names[:] = [e["type"] for e in renumber(evs)]


def m_item_id_mismatch(evs, names):
    evs[find(evs, "response.output_text.delta")]["item_id"] = "msg_2"


def m_item_without_id(evs, names):
    i = find(evs, "response.output_item.added", 2)
    del evs[i]["item"]["id"]


def m_joined_text_differs(evs, names):
    evs[find(evs, "response.output_text.done")]["text"] = "I'll check the weather!"


def m_args_differ(evs, names):
    evs[find(evs, "response.output_item.done", 2)]["item"]["arguments"] = "{}"


def m_done_item_changes_call_id(evs, names):
    evs[find(evs, "response.output_item.done", 2)]["item"]["call_id"] = "call_other"


def m_args_not_empty_at_add(evs, names):
    evs[find(evs, "response.output_item.added", 2)]["item"]["arguments"] = '{"city"'


def m_status_wrong(evs, names):
    evs[-1]["response"]["status"] = "in_progress"


def m_two_event_lines(evs, names):
    return to_sse(evs, names).replace(
        "event: response.in_progress\n", "event: response.in_progress\nevent: x\n", 1
    )


def m_no_event_line(evs, names):
    return to_sse(evs, names).replace("event: response.in_progress\n", "", 1)


def m_data_not_json(evs, names):
    return to_sse(evs, names).replace("data: {", "data: {{", 1)


def m_reasoning_without_summary(evs, names):
    del evs[find(evs, "response.output_item.added", 0)]["item"]["summary"]


def m_text_delta_on_reasoning_part(evs, names):
    e = evs[find(evs, "response.reasoning_text.delta")]
    e["type"] = "response.output_text.delta"
    names[find(evs, "response.output_text.delta")] = "response.output_text.delta"


def m_error_event(evs, names):
    evs.insert(5, {"type": "error", "code": "server_error", "message": "x"})
    names[:] = [e["type"] for e in renumber(evs)]


BROKEN = {
    "event line differs from type": (m_event_name, "differs from JSON type"),
    "no JSON type": (m_type_missing, "no JSON type"),
    "sequence gap": (m_seq_gap, "sequence_number"),
    "sequence from 1": (m_seq_from_one, "sequence_number"),
    "sequence missing": (m_seq_missing, "sequence_number"),
    "created not first": (m_created_not_first, "first event"),
    "response id changed": (m_id_changed, "response id changed"),
    "delta before item added": (m_delta_before_added, "output_index"),
    "delta before content part": (m_delta_before_part, "content_index"),
    "item never done": (m_no_item_done, "not done"),
    "item done after completed": (m_done_after_completed, "not done"),
    "output_index gap": (m_output_index_gap, "output_index"),
    "output_index not position": (m_output_index_reserved, "output_index"),
    "completed without output": (m_completed_without_output, "response.output"),
    "completed without usage": (m_completed_without_usage, "usage"),
    "usage without cached": (m_usage_missing_cached, "cached_tokens"),
    "usage total wrong": (m_usage_bad_total, "total"),
    "[DONE] sentinel": (m_done_sentinel, r"\[DONE\]"),
    "no terminal event": (m_no_terminal, "without a terminal event"),
    "unknown event type": (m_unknown_event, "not a Responses API event"),
    "item_id mismatch": (m_item_id_mismatch, "item_id"),
    "item without id": (m_item_without_id, "non-empty id"),
    "done text differs": (m_joined_text_differs, "joined deltas"),
    "done item args differ": (m_args_differ, "joined deltas"),
    "done item call_id changed": (m_done_item_changes_call_id, "call_id"),
    "call opens with arguments": (m_args_not_empty_at_add, "not ''"),
    "terminal status wrong": (m_status_wrong, "status"),
    "two event lines": (m_two_event_lines, "two event"),
    "no event line": (m_no_event_line, "no event: line"),
    "data not JSON": (m_data_not_json, "not JSON"),
    "reasoning without summary": (m_reasoning_without_summary, "summary"),
    "text delta on reasoning part": (m_text_delta_on_reasoning_part, "reasoning"),
    "error event": (m_error_event, "error"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_stream_fails(case):
    mutate, pattern = BROKEN[case]
    with pytest.raises(rc.StreamViolation, match=pattern):
        rc.check_sse(broken(mutate))


def test_cli_for_node():
    script = Path(__file__).with_name("responses_check.py")
    good = subprocess.run(
        [sys.executable, str(script)], input=to_sse(valid_events()).encode(), capture_output=True
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["id"] == RID
    lines = "".join(json.dumps(e) + "\n" for e in valid_events())
    ev = subprocess.run(
        [sys.executable, str(script), "--events"], input=lines.encode(), capture_output=True
    )
    assert ev.returncode == 0, ev.stderr
    bad = subprocess.run(
        [sys.executable, str(script)], input=broken(m_seq_gap).encode(), capture_output=True
    )
    assert bad.returncode == 1
    assert b"sequence_number" in bad.stderr
