"""The official `openai` Python SDK's `embeddings.create` against the real dashbridge binary."""

import base64
import struct

import httpx
import pytest
from openai import OpenAI

import e2e_expected as x
import embed_expected as e

MODEL = "text-embedding-v4"


@pytest.fixture
def wire(base_url):
    """A client whose raw response bodies are kept, to see what crossed the wire."""
    seen = []

    def keep(response: httpx.Response) -> None:
        response.read()
        seen.append((response.request.content, response.content))

    http = httpx.Client(event_hooks={"response": [keep]}, timeout=30.0)
    c = OpenAI(base_url=base_url, api_key=x.CLIENT_KEY, max_retries=0, http_client=http)
    yield c, seen
    c.close()


def test_default_call_is_base64_on_the_wire_and_floats_in_the_sdk(wire):
    client, seen = wire
    resp = client.embeddings.create(model=MODEL, input=["风急天高猿啸哀", "hello"])
    request, body = seen[-1]
    assert b'"encoding_format":"base64"' in request.replace(b" ", b"")
    raw = httpx.Response(200, content=body).json()
    s = raw["data"][0]["embedding"]
    assert isinstance(s, str)
    floats = list(struct.unpack(f"<{len(base64.b64decode(s)) // 4}f", base64.b64decode(s)))
    assert floats == e.fake_vector("风急天高猿啸哀", 1024)
    assert [d.index for d in resp.data] == [0, 1]
    e.check_vector(resp.data[0].embedding, "风急天高猿啸哀")
    e.check_vector(resp.data[1].embedding, "hello")
    assert resp.model == MODEL
    assert resp.usage.prompt_tokens == resp.usage.total_tokens == 7 + 5


def test_float_encoding(client):
    resp = client.embeddings.create(model=MODEL, input="float please", encoding_format="float")
    e.check_vector(resp.data[0].embedding, "float please")


def test_dimensions(client):
    resp = client.embeddings.create(model=MODEL, input="short vector", dimensions=256)
    e.check_vector(resp.data[0].embedding, "short vector", 256)


def test_dimensions_not_offered_by_the_model_is_a_400(client):
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as err:
        client.embeddings.create(model="text-embedding-v3", input="x", dimensions=2048)
    assert err.value.body["param"] == "dimensions"


def test_25_inputs_three_upstream_calls_order_and_usage(client):
    before = e.metric_count("embeddings", "embedding")
    resp = client.embeddings.create(model=MODEL, input=e.TEXTS_25)
    assert [d.index for d in resp.data] == list(range(25))
    for d, text in zip(resp.data, e.TEXTS_25):
        e.check_vector(d.embedding, text)
    tokens = sum(e.fake_tokens(t) for t in e.TEXTS_25)
    assert resp.usage.prompt_tokens == resp.usage.total_tokens == tokens
    # One request on the route; the gateway's x-request-id is the first chunk's.
    assert e.metric_count("embeddings", "embedding") == before + 1
    raw = client.embeddings.with_raw_response.create(model=MODEL, input=e.TEXTS_25)
    assert raw.headers["x-request-id"].startswith("emb-")
