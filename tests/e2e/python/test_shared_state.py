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
