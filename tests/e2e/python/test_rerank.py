"""Rerank through plain `httpx` and the `cohere` Python SDK (`Client` v1, `ClientV2` v2)."""

import cohere
import httpx

import e2e_expected as x
import embed_expected as e

DOCS = ["short", "a much longer document about rerank", "mid-length text", "x"]
ORDER = [1, 2, 0, 3]


def test_httpx_rerank_v1():
    r = httpx.post(
        e.root_url() + "/v1/rerank",
        headers={"Authorization": f"Bearer {x.CLIENT_KEY}"},
        json={"model": "gte-rerank-v2", "query": "what is rerank", "documents": DOCS, "top_n": 2, "return_documents": True},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(res["index"], res["relevance_score"], res["document"]["text"]) for res in body["results"]] == [
        (i, e.fake_relevance(DOCS[i]), DOCS[i]) for i in ORDER[:2]
    ]
    tokens = len("what is rerank") * 4 + sum(len(d) for d in DOCS)
    assert body["usage"] == {"total_tokens": tokens}
    assert body["meta"]["billed_units"]["total_tokens"] == tokens
    assert r.headers["x-request-id"] == body["id"]


def test_cohere_client_v1():
    co = cohere.Client(base_url=e.root_url(), api_key=x.CLIENT_KEY, timeout=30)
    resp = co.rerank(model="gte-rerank-v2", query="what is rerank", documents=DOCS, top_n=3, return_documents=True)
    assert [r.index for r in resp.results] == ORDER[:3]
    assert [r.relevance_score for r in resp.results] == [e.fake_relevance(DOCS[i]) for i in ORDER[:3]]
    assert [r.document.text for r in resp.results] == [DOCS[i] for i in ORDER[:3]]
    assert resp.id.startswith("rerank-")


def test_cohere_client_v2():
    co = cohere.ClientV2(base_url=e.root_url(), api_key=x.CLIENT_KEY, timeout=30)
    resp = co.rerank(model="qwen3-rerank", query="what is rerank", documents=DOCS, top_n=2)
    assert [(r.index, r.relevance_score) for r in resp.results] == [(i, e.fake_relevance(DOCS[i])) for i in ORDER[:2]]
    assert resp.meta.api_version.version == "2"
