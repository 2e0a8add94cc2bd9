"""The fake DashScope's deterministic embedding and rerank answers, computed here in Python.

They mirror `fake_vector`, `fake_tokens` and `fake_relevance` in tests/common/fake.rs: a vector
that matches proves the fake received exactly the text the client meant (LangChain's token
arrays included), and every value is exact in float32, so comparisons are `==`.
"""

import json
import os
import urllib.request


def fake_vector(text: str, dim: int) -> list[float]:
    cps = [ord(c) for c in text]
    s = sum(cps)
    w = sum((i + 1) * cp for i, cp in enumerate(cps))
    out = [float(len(cps)), float(s % 4096)]
    out += [(((w + 31 * j) % 2049) - 1024) / 1024 for j in range(2, dim)]
    return out[:dim]


def fake_tokens(text: str) -> int:
    return len(text)


def fake_relevance(document: str) -> float:
    n = len(document)
    return n / (n + 1)


def root_url() -> str:
    """The gateway without `/v1` (Cohere's SDKs add `/v1/rerank` or `/v2/rerank` themselves)."""
    base = os.environ["DASHBRIDGE_E2E_BASE_URL"].rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def metric_count(route: str, endpoint: str) -> float:
    """Sum of `dashbridge_requests_total` samples for one route and endpoint label."""
    with urllib.request.urlopen(root_url() + "/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("dashbridge_requests_total{") and f'route="{route}"' in line and f'endpoint="{endpoint}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


TEXTS_25 = [f"passage {i}: 渚清沙白鸟飞回 — item {i * 7}" for i in range(25)]


def check_vector(got, text: str, dim: int = 1024) -> None:
    assert len(got) == dim
    assert list(got) == fake_vector(text, dim), f"vector of {text!r} differs"


def dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)
