"""A recording pass-through proxy on 127.0.0.1, between a client and the gateway.

Clients that do not expose the raw bytes they read (Codex, the Agents SDK, the SDK stream
helpers) are pointed at the proxy, which forwards every request to the gateway unchanged (bar
hop-by-hop headers), streams the answer back chunk by chunk as it arrives, and keeps a copy of
both, so that every Responses event stream a client consumed can be checked afterwards with
`responses_check`.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
}


@dataclass
class Exchange:
    method: str
    path: str
    request_headers: dict
    request_body: bytes
    status: int = 0
    response_headers: dict = field(default_factory=dict)
    response_body: bytes = b""

    @property
    def is_sse(self) -> bool:
        return self.response_headers.get("content-type", "").startswith("text/event-stream")


class TeeProxy:
    def __init__(self, upstream_base: str):
        """`upstream_base` is the gateway's `http://HOST:PORT/v1`; the proxy serves the same path."""
        u = urlsplit(upstream_base)
        self.host, self.port = u.hostname, u.port
        self.prefix = u.path.rstrip("/")
        self._lock = threading.Condition()
        self._exchanges: list[Exchange] = []
        self._in_flight = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                ex = Exchange(
                    self.command, self.path, {k.lower(): v for k, v in headers.items()}, body
                )
                with proxy._lock:
                    proxy._in_flight += 1
                conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=120)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    ex.status = resp.status
                    ex.response_headers = {k.lower(): v for k, v in resp.getheaders()}
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in HOP:
                            self.send_header(k, v)
                    self.send_header("connection", "close")
                    self.end_headers()
                    chunks = []
                    while True:
                        chunk = resp.read1(65536)
                        if not chunk:
                            break
                        chunks.append(chunk)
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    ex.response_body = b"".join(chunks)
                except (OSError, http.client.HTTPException) as e:
                    ex.response_body += f"\n<proxy: {type(e).__name__}: {e}>".encode()
                finally:
                    conn.close()
                    self.close_connection = True
                    with proxy._lock:
                        proxy._exchanges.append(ex)
                        proxy._in_flight -= 1
                        proxy._lock.notify_all()

            do_GET = do_POST = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def take(self) -> list[Exchange]:
        """The exchanges since the last call, oldest first (waits up to 10 s for open ones)."""
        with self._lock:
            self._lock.wait_for(lambda: self._in_flight == 0, timeout=10)
            out, self._exchanges = self._exchanges, []
        return out

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
