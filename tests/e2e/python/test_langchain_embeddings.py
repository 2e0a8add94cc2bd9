"""LangChain's `OpenAIEmbeddings` with its defaults (cl100k_base token arrays on the wire)."""

from langchain_openai import OpenAIEmbeddings

import e2e_expected as x
import embed_expected as e


def embedder(base_url: str) -> OpenAIEmbeddings:
    # Defaults: check_embedding_ctx_length=True (tiktoken token arrays), chunk_size=1000.
    return OpenAIEmbeddings(model="text-embedding-v4", base_url=base_url, api_key=x.CLIENT_KEY, max_retries=0)


def test_embed_documents_over_25_texts(base_url):
    vectors = embedder(base_url).embed_documents(e.TEXTS_25)
    assert len(vectors) == 25
    # The vectors are functions of the exact text the fake received.
    for v, text in zip(vectors, e.TEXTS_25):
        e.check_vector(v, text)


def test_embed_query(base_url):
    v = embedder(base_url).embed_query("What did Du Fu see from the terrace?")
    e.check_vector(v, "What did Du Fu see from the terrace?")
