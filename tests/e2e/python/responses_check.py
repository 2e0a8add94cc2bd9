"""One checker for every Responses API event stream the e2e suite sees.

    check_sse(raw)            -> final response (dict); raw SSE text or bytes from the wire
    check_events(events)      -> final response (dict); [(sse_event_name or None, data dict), ...]
    python responses_check.py [--events] < FILE   (CLI for the Node suite; exit 1 on a violation)

The rules (issue 10, surfaces.md §1.9), each failure an AssertionError naming the event:

- framing: every SSE event has exactly one `event:` line and one JSON object of `data:`; the
  `event:` name equals the JSON `type`; comment lines (`: keepalive`) are allowed between events;
  no `[DONE]` and no other non-JSON data;
- `sequence_number` is 0, 1, 2 … with no gap; `response.created` first; one response id in every
  lifecycle event; exactly one terminal event (`response.completed` / `.incomplete` / `.failed`),
  and it is the last;
- only event types of the Responses API (the Node SDK throws on any other);
- every item is `output_item.added` (with a non-empty `id`, and `output_index` = its position in
  `response.output`) before any event that names it, and `output_item.done` once, keeping its
  `id`, `type` and `call_id`, before the terminal event; every item-scoped event has the item's
  `item_id` and `output_index`;
- `content_part.added` (`content_index` = the next part's position) before the text deltas of
  that part, of the part type the delta expects; `reasoning_summary_part.added` before summary
  deltas; function calls open with `arguments: ""`; every `.done` text / arguments / input equals
  the joined deltas, and the done item carries the same text;
- the terminal response has the status of its event, `output` equal to the done items in order,
  and (for completed / incomplete) `usage` with all five integers, total = input + output.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable

LIFECYCLE = {
    "response.created": "in_progress",
    "response.in_progress": "in_progress",
    "response.queued": "queued",
}
TERMINAL = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}
ITEM_EVENTS = {"response.output_item.added", "response.output_item.done"}
PART_EVENTS = {"response.content_part.added", "response.content_part.done"}
# delta type -> (done type, field of the done event, content part type or None, item type)
TEXT_DELTAS = {
    "response.output_text.delta": ("response.output_text.done", "text", "output_text", "message"),
    "response.refusal.delta": ("response.refusal.done", "refusal", "refusal", "message"),
    "response.reasoning_text.delta": (
        "response.reasoning_text.done",
        "text",
        "reasoning_text",
        "reasoning",
    ),
    "response.reasoning_summary_text.delta": (
        "response.reasoning_summary_text.done",
        "text",
        None,
        "reasoning",
    ),
    "response.function_call_arguments.delta": (
        "response.function_call_arguments.done",
        "arguments",
        None,
        "function_call",
    ),
    "response.custom_tool_call_input.delta": (
        "response.custom_tool_call_input.done",
        "input",
        None,
        "custom_tool_call",
    ),
}
DONE_OF = {v[0]: k for k, v in TEXT_DELTAS.items()}
SUMMARY_EVENTS = {
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done",
}
OTHER_KNOWN = {"response.output_text.annotation.added", "error"}
KNOWN = (
    set(LIFECYCLE)
    | set(TERMINAL)
    | ITEM_EVENTS
    | PART_EVENTS
    | set(TEXT_DELTAS)
    | set(DONE_OF)
    | SUMMARY_EVENTS
    | OTHER_KNOWN
)
USAGE_INTS = [
    ("input_tokens",),
    ("input_tokens_details", "cached_tokens"),
    ("output_tokens",),
    ("output_tokens_details", "reasoning_tokens"),
    ("total_tokens",),
]


class StreamViolation(AssertionError):
    pass


def _fail(i: int, ev: dict | None, msg: str) -> None:
    t = ev.get("type") if isinstance(ev, dict) else None
    raise StreamViolation(f"event #{i} ({t}): {msg}")


def parse_sse(raw: str | bytes) -> list[tuple[str | None, dict]]:
    """Splits an SSE body into (event name, JSON data) pairs, strictly."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    raw = raw.replace("\r\n", "\n")
    out: list[tuple[str | None, dict]] = []
    for block in raw.split("\n\n"):
        if not block.strip("\n"):
            continue
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                if name is not None:
                    raise StreamViolation(f"SSE event #{len(out)} has two event: lines: {block!r}")
                name = value
            elif field == "data":
                data.append(value)
            else:
                raise StreamViolation(f"SSE event #{len(out)}: unexpected line {line!r}")
        if not data and name is None:
            continue  # comments only (keep-alive)
        text = "\n".join(data)
        if text.strip() == "[DONE]":
            raise StreamViolation(f"SSE event #{len(out)}: a [DONE] sentinel")
        if name is None:
            raise StreamViolation(f"SSE event #{len(out)} has no event: line: {block!r}")
        try:
            obj = json.loads(text)
        except ValueError as e:
            raise StreamViolation(f"SSE event #{len(out)} ({name}): data is not JSON: {e}") from e
        if not isinstance(obj, dict):
            raise StreamViolation(f"SSE event #{len(out)} ({name}): data is not a JSON object")
        out.append((name, obj))
    return out


def check_sse(raw: str | bytes, expect: str | None = "response.completed") -> dict:
    return check_events(parse_sse(raw), expect=expect)


class _Item:
    def __init__(self, index: int, item: dict):
        self.index = index
        self.added = item
        self.id = item.get("id")
        self.type = item.get("type")
        self.parts: list[dict] = []  # content parts as accumulated
        self.parts_done: list[bool] = []
        self.summary: list[str] = []
        self.summary_done: list[bool] = []
        self.text: dict[tuple[str, int], str] = {}  # (delta type, content/summary index) -> text
        self.text_done: set[tuple[str, int]] = set()
        self.done: dict | None = None


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_events(
    events: Iterable[tuple[str | None, dict]], expect: str | None = "response.completed"
) -> dict:
    """Checks a whole stream; returns the terminal event's `response`.

    `events` are (SSE event name, data) pairs; a name of None means "not seen" (events as an SDK
    yields them), and then only the JSON is checked. `expect` is the terminal event the caller
    expects (None: any).
    """
    events = list(events)
    if not events:
        raise StreamViolation("empty stream")
    resp_id: str | None = None
    items: list[_Item] = []
    by_id: dict[str, _Item] = {}
    final: dict | None = None
    for i, (name, ev) in enumerate(events):
        if not isinstance(ev, dict):
            _fail(i, None, "data is not an object")
        t = ev.get("type")
        if not isinstance(t, str) or not t:
            _fail(i, ev, "no JSON type")
        if name is not None and name != t:
            _fail(i, ev, f"event: line {name!r} differs from JSON type {t!r}")
        if t not in KNOWN:
            _fail(i, ev, "not a Responses API event type")
        if ev.get("sequence_number") != i or not _int(ev.get("sequence_number")):
            _fail(i, ev, f"sequence_number {ev.get('sequence_number')!r}, expected {i}")
        if final is not None:
            _fail(i, ev, "event after the terminal event")
        if i == 0 and t != "response.created":
            _fail(i, ev, "the first event is not response.created")
        if t == "response.created" and i != 0:
            _fail(i, ev, "response.created is not the first event")
        if t == "error":
            _fail(i, ev, f"error event: {ev}")

        if t in LIFECYCLE or t in TERMINAL:
            r = ev.get("response")
            if not isinstance(r, dict):
                _fail(i, ev, "no response object")
            rid = r.get("id")
            if not isinstance(rid, str) or not rid.startswith("resp_"):
                _fail(i, ev, f"response id {rid!r} is not resp_…")
            if resp_id is None:
                resp_id = rid
            elif rid != resp_id:
                _fail(i, ev, f"response id changed: {rid!r} != {resp_id!r}")
            if r.get("object") != "response":
                _fail(i, ev, f"response.object {r.get('object')!r}")
            want = LIFECYCLE.get(t) or TERMINAL[t]
            if r.get("status") != want:
                _fail(i, ev, f"response.status {r.get('status')!r}, expected {want!r}")
            if t in LIFECYCLE and r.get("output") not in ([], None) and i == 0:
                _fail(i, ev, "response.created carries output")
            if t in TERMINAL:
                _check_terminal(i, ev, r, items)
                final = r
            continue

        if t in ITEM_EVENTS:
            item = ev.get("item")
            idx = ev.get("output_index")
            if not isinstance(item, dict):
                _fail(i, ev, "no item")
            if t == "response.output_item.added":
                if idx != len(items):
                    _fail(i, ev, f"output_index {idx!r}, expected the next position {len(items)}")
                iid = item.get("id")
                if not isinstance(iid, str) or not iid:
                    _fail(i, ev, "item without a non-empty id")
                if iid in by_id:
                    _fail(i, ev, f"duplicate item id {iid!r}")
                if item.get("type") in ("function_call", "custom_tool_call"):
                    if not item.get("call_id"):
                        _fail(i, ev, "tool call item without call_id")
                    if not item.get("name"):
                        _fail(i, ev, "tool call item without name")
                    key = "arguments" if item["type"] == "function_call" else "input"
                    if item.get(key) != "":
                        _fail(i, ev, f"tool call item opens with {key}={item.get(key)!r}, not ''")
                if item.get("type") == "reasoning" and not isinstance(item.get("summary"), list):
                    _fail(i, ev, "reasoning item without a summary list")
                if item.get("status") != "in_progress":
                    _fail(i, ev, f"added item status {item.get('status')!r}")
                it = _Item(idx, item)
                items.append(it)
                by_id[iid] = it
            else:
                it = _item_at(i, ev, items, idx)
                for k in ("id", "type", "call_id"):
                    if item.get(k) != it.added.get(k):
                        _fail(i, ev, f"done item {k} {item.get(k)!r} != added {it.added.get(k)!r}")
                _check_done_item(i, ev, it, item)
                it.done = item
            continue

        # Item-scoped events.
        it = _item_at(i, ev, items, ev.get("output_index"))
        if ev.get("item_id") != it.id:
            _fail(i, ev, f"item_id {ev.get('item_id')!r} != item id {it.id!r}")

        if t in PART_EVENTS:
            ci = ev.get("content_index")
            part = ev.get("part")
            if not isinstance(part, dict) or part.get("type") not in (
                "output_text",
                "refusal",
                "reasoning_text",
            ):
                _fail(i, ev, f"bad part {part!r}")
            if t == "response.content_part.added":
                if ci != len(it.parts):
                    _fail(i, ev, f"content_index {ci!r}, expected {len(it.parts)}")
                want_item = "reasoning" if part["type"] == "reasoning_text" else "message"
                if it.type != want_item:
                    _fail(i, ev, f"{part['type']} part on a {it.type} item")
                field = "refusal" if part["type"] == "refusal" else "text"
                if part.get(field) != "":
                    _fail(i, ev, f"part opens with {field}={part.get(field)!r}, not ''")
                it.parts.append(part)
                it.parts_done.append(False)
            else:
                if not _int(ci) or ci >= len(it.parts):
                    _fail(i, ev, f"content_part.done for unknown content_index {ci!r}")
                if it.parts_done[ci]:
                    _fail(i, ev, "content part done twice")
                added = it.parts[ci]
                if part.get("type") != added.get("type"):
                    _fail(i, ev, "part type changed")
                field = "refusal" if part["type"] == "refusal" else "text"
                dt = _delta_for_part(part["type"])
                if (dt, ci) not in it.text_done and it.text.get((dt, ci), "") != "":
                    _fail(i, ev, "content_part.done before its text .done")
                if part.get(field) != it.text.get((dt, ci), ""):
                    _fail(i, ev, f"content_part.done {field} differs from the joined deltas")
                it.parts[ci] = part
                it.parts_done[ci] = True
            continue

        if t in SUMMARY_EVENTS:
            si = ev.get("summary_index")
            if it.type != "reasoning":
                _fail(i, ev, f"summary event on a {it.type} item")
            if t == "response.reasoning_summary_part.added":
                if si != len(it.summary):
                    _fail(i, ev, f"summary_index {si!r}, expected {len(it.summary)}")
                it.summary.append("")
                it.summary_done.append(False)
            else:
                if not _int(si) or si >= len(it.summary):
                    _fail(i, ev, f"summary part done for unknown summary_index {si!r}")
                key = ("response.reasoning_summary_text.delta", si)
                text = (ev.get("part") or {}).get("text")
                if text != it.text.get(key, ""):
                    _fail(i, ev, "summary part text differs from the joined deltas")
                it.summary_done[si] = True
            continue

        if t in TEXT_DELTAS or t in DONE_OF:
            dt = t if t in TEXT_DELTAS else DONE_OF[t]
            done_t, field, part_type, item_type = TEXT_DELTAS[dt]
            if it.type != item_type:
                _fail(i, ev, f"{t} on a {it.type} item")
            if dt == "response.reasoning_summary_text.delta":
                idx = ev.get("summary_index")
                if not _int(idx) or idx >= len(it.summary) or it.summary_done[idx]:
                    _fail(i, ev, f"summary_index {idx!r} is not an open summary part")
            elif part_type is not None:
                idx = ev.get("content_index")
                if not _int(idx) or idx >= len(it.parts):
                    _fail(i, ev, f"content_index {idx!r} before its content_part.added")
                if it.parts[idx].get("type") != part_type:
                    _fail(i, ev, f"{t} on a {it.parts[idx].get('type')} part")
                if it.parts_done[idx]:
                    _fail(i, ev, f"{t} after content_part.done")
            else:
                idx = 0
            key = (dt, idx)
            if key in it.text_done:
                _fail(i, ev, f"{t} after {done_t}")
            if t in TEXT_DELTAS:
                d = ev.get("delta")
                if not isinstance(d, str):
                    _fail(i, ev, f"delta {d!r} is not a string")
                it.text[key] = it.text.get(key, "") + d
            else:
                if ev.get(field) != it.text.get(key, ""):
                    _fail(
                        i,
                        ev,
                        f"{field} {ev.get(field)!r} != joined deltas {it.text.get(key, '')!r}",
                    )
                it.text_done.add(key)
            continue

        _fail(i, ev, "unhandled event type")  # annotation.added: not produced by a Qwen bridge

    if final is None:
        raise StreamViolation("the stream ended without a terminal event")
    terminal = next(t for t in TERMINAL if TERMINAL[t] == final.get("status"))
    if expect is not None and terminal != expect:
        raise StreamViolation(f"terminal event {terminal}, expected {expect}: {final}")
    return final


def _delta_for_part(part_type: str) -> str:
    return {
        "output_text": "response.output_text.delta",
        "refusal": "response.refusal.delta",
        "reasoning_text": "response.reasoning_text.delta",
    }[part_type]


def _item_at(i: int, ev: dict, items: list[_Item], idx: Any) -> _Item:
    if not _int(idx) or idx < 0 or idx >= len(items):
        _fail(i, ev, f"output_index {idx!r} names no added item")
    it = items[idx]
    if it.done is not None:
        _fail(i, ev, f"event for item {it.id!r} after its output_item.done")
    return it


def _check_done_item(i: int, ev: dict, it: _Item, item: dict) -> None:
    if not all(it.parts_done):
        _fail(i, ev, "output_item.done before its content_part.done")
    if not all(it.summary_done):
        _fail(i, ev, "output_item.done before its reasoning_summary_part.done")
    if item.get("status") not in ("completed", "incomplete"):
        _fail(i, ev, f"done item status {item.get('status')!r}")
    ty = it.type
    if ty in ("message", "reasoning"):
        content = item.get("content")
        if ty == "reasoning" and content is None and not it.parts:
            content = []
        if not isinstance(content, list) or len(content) != len(it.parts):
            _fail(i, ev, f"done item content {content!r} does not match its {len(it.parts)} parts")
        for ci, part in enumerate(it.parts):
            if content[ci] != part:
                _fail(i, ev, f"done item content[{ci}] {content[ci]!r} != part {part!r}")
        if ty == "reasoning":
            summary = item.get("summary")
            if not isinstance(summary, list) or len(summary) != len(it.summary):
                _fail(i, ev, f"done reasoning summary {summary!r}")
            for si in range(len(it.summary)):
                key = ("response.reasoning_summary_text.delta", si)
                if (summary[si] or {}).get("text") != it.text.get(key, ""):
                    _fail(i, ev, f"done reasoning summary[{si}] differs from the joined deltas")
    elif ty in ("function_call", "custom_tool_call"):
        field = "arguments" if ty == "function_call" else "input"
        dt = (
            "response.function_call_arguments.delta"
            if ty == "function_call"
            else "response.custom_tool_call_input.delta"
        )
        if (dt, 0) not in it.text_done:
            _fail(i, ev, f"output_item.done before the {field} .done event")
        if item.get(field) != it.text.get((dt, 0), ""):
            _fail(i, ev, f"done item {field} differs from the joined deltas")
        if ty == "function_call":
            try:
                json.loads(item[field])
            except ValueError:
                _fail(i, ev, f"function call arguments are not JSON: {item[field]!r}")


def _check_terminal(i: int, ev: dict, r: dict, items: list[_Item]) -> None:
    open_items = [it.id for it in items if it.done is None]
    if open_items:
        _fail(i, ev, f"terminal event with items not done: {open_items}")
    done = [it.done for it in items]
    if r.get("output") != done:
        _fail(i, ev, f"response.output {r.get('output')!r} != the done items {done!r}")
    status = r.get("status")
    if status in ("completed", "incomplete"):
        u = r.get("usage")
        if not isinstance(u, dict):
            _fail(i, ev, f"usage {u!r}")
        for path in USAGE_INTS:
            v: Any = u
            for k in path:
                v = v.get(k) if isinstance(v, dict) else None
            if not _int(v) or v < 0:
                _fail(i, ev, f"usage.{'.'.join(path)} = {v!r}")
        if u["total_tokens"] != u["input_tokens"] + u["output_tokens"]:
            _fail(i, ev, f"usage total {u['total_tokens']} != input + output")
    if status == "incomplete":
        if not (r.get("incomplete_details") or {}).get("reason"):
            _fail(i, ev, "incomplete response without incomplete_details.reason")
    if status == "failed":
        err = r.get("error") or {}
        if not err.get("code") or not err.get("message"):
            _fail(i, ev, f"failed response without error code and message: {err!r}")


def check_response(r: dict, status: str = "completed") -> dict:
    """Checks a non-streaming response object (the rules of a terminal event's response)."""
    if not isinstance(r.get("id"), str) or not r["id"].startswith("resp_"):
        raise StreamViolation(f"response id {r.get('id')!r} is not resp_…")
    if r.get("object") != "response" or r.get("status") != status:
        raise StreamViolation(f"object {r.get('object')!r} / status {r.get('status')!r}")
    items = []
    seen = set()
    for n, item in enumerate(r.get("output") or []):
        if not item.get("id") or item["id"] in seen:
            raise StreamViolation(f"output[{n}] id {item.get('id')!r} missing or duplicated")
        seen.add(item["id"])
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text" and part.get("annotations") != []:
                    raise StreamViolation(f"output[{n}] output_text without annotations: []")
        if item.get("type") == "reasoning" and not isinstance(item.get("summary"), list):
            raise StreamViolation(f"output[{n}] reasoning item without a summary list")
        if item.get("type") == "function_call":
            if not item.get("call_id") or not item.get("name"):
                raise StreamViolation(f"output[{n}] function call without call_id / name")
            try:
                json.loads(item.get("arguments"))
            except (TypeError, ValueError):
                raise StreamViolation(f"output[{n}] arguments are not JSON") from None
        it = _Item(n, item)
        it.done = item
        items.append(it)
    fake_ev = {"type": "response." + status}
    _check_terminal(-1, fake_ev, dict(r, output=r.get("output") or []), items)
    return r


def main(argv: list[str]) -> int:
    data = sys.stdin.buffer.read()
    expect: str | None = "response.completed"
    for a in argv:
        if a.startswith("--expect="):
            expect = a.split("=", 1)[1] or None
    try:
        if "--events" in argv:
            evs = [(None, json.loads(line)) for line in data.decode().splitlines() if line.strip()]
            final = check_events(evs, expect=expect)
        else:
            final = check_sse(data, expect=expect)
    except StreamViolation as e:
        print(f"responses stream violation: {e}", file=sys.stderr)
        return 1
    json.dump(final, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
