"""A tiny recording Responses server on 127.0.0.1, to learn what a client sends.

    python3 tests/e2e/tools/record_responses.py --out DIR [--port 0]

Prints `listening on http://127.0.0.1:PORT` and then, for every POST, writes
DIR/NNN-request.json: {"method","path","headers" (secrets masked),"body"}. Every POST to a path
ending in /responses is answered with a minimal valid Responses event stream (or a JSON response
object when the body has no `"stream": true`):

- when the request's input has no `function_call_output` item and the last user text contains
  `record:call NAME ARGS_JSON`, a `function_call` item calling NAME with ARGS_JSON;
- otherwise one assistant message, "recorded answer".

Anything else gets 404. Used by hand to refresh tests/fixtures/responses/*.json; never in CI.
"""

import argparse
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_HEADERS = {"authorization", "api-key", "x-api-key", "openai-organization", "openai-project"}


def mask_headers(headers):
    out = {}
    for k, v in headers.items():
        out[k.lower()] = "<masked>" if k.lower() in SECRET_HEADERS else v
    return out


def last_user_text(body):
    items = body.get("input")
    if isinstance(items, str):
        return items
    text = ""
    for it in items or []:
        if not isinstance(it, dict) or it.get("role") != "user":
            continue
        c = it.get("content")
        if isinstance(c, str):
            text = c
        elif isinstance(c, list):
            text = "".join(p.get("text", "") for p in c if isinstance(p, dict))
    return text


def wants_call(body):
    items = body.get("input")
    if isinstance(items, list) and any(
        isinstance(it, dict) and it.get("type") == "function_call_output" for it in items
    ):
        return None
    m = re.search(r"record:call (\w+) (\{.*\})", last_user_text(body), re.S)
    return (m.group(1), m.group(2)) if m else None


def events(body, rid):
    model = body.get("model", "m")
    base = {
        "id": rid, "object": "response", "created_at": 1764400000, "model": model,
        "status": "in_progress", "output": [], "usage": None, "error": None,
        "incomplete_details": None, "parallel_tool_calls": True, "tool_choice": "auto",
        "tools": [], "store": False, "metadata": {}, "text": {"format": {"type": "text"}},
    }
    evs = [("response.created", {"response": dict(base)}),
           ("response.in_progress", {"response": dict(base)})]
    call = wants_call(body)
    if call:
        name, args = call
        item = {"id": "fc_1", "type": "function_call", "status": "in_progress",
                "call_id": "call_1", "name": name, "arguments": ""}
        done = dict(item, status="completed", arguments=args)
        evs += [
            ("response.output_item.added", {"output_index": 0, "item": item}),
            ("response.function_call_arguments.delta",
             {"item_id": "fc_1", "output_index": 0, "delta": args}),
            ("response.function_call_arguments.done",
             {"item_id": "fc_1", "output_index": 0, "arguments": args}),
            ("response.output_item.done", {"output_index": 0, "item": done}),
        ]
    else:
        text = "recorded answer"
        part0 = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        part = dict(part0, text=text)
        item = {"id": "msg_1", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}
        done = dict(item, status="completed", content=[part])
        scope = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        evs += [
            ("response.output_item.added", {"output_index": 0, "item": item}),
            ("response.content_part.added", dict(scope, part=part0)),
            ("response.output_text.delta", dict(scope, delta=text, logprobs=[])),
            ("response.output_text.done", dict(scope, text=text, logprobs=[])),
            ("response.content_part.done", dict(scope, part=part)),
            ("response.output_item.done", {"output_index": 0, "item": done}),
        ]
    final = dict(base, status="completed", output=[done], usage={
        "input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 13})
    evs.append(("response.completed", {"response": final}))
    return [dict(type=t, sequence_number=i, **d) for i, (t, d) in enumerate(evs)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counter = 0
    lock = threading.Lock()
    out_dir = "."

    def log_message(self, fmt, *args):
        sys.stderr.write("record: " + fmt % args + "\n")

    def do_GET(self):
        self.send_error(404)

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        with Handler.lock:
            Handler.counter += 1
            idx = Handler.counter
        rec = {"method": "POST", "path": self.path, "headers": mask_headers(self.headers),
               "body": body}
        with open(os.path.join(Handler.out_dir, f"{idx:03d}-request.json"), "w") as f:
            json.dump(rec, f, indent=2, ensure_ascii=False)
            f.write("\n")
        if not self.path.rstrip("/").endswith("/responses"):
            self.send_error(404)
            return
        evs = events(body, f"resp_{idx:032x}")
        if body.get("stream") is True:
            payload = "".join(
                f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in evs).encode()
            ctype = "text/event-stream"
        else:
            payload = json.dumps(evs[-1]["response"]).encode()
            ctype = "application/json"
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    Handler.out_dir = a.out
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"listening on http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
