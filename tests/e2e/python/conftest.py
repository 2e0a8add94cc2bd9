import pytest
from openai import OpenAI

import e2e_expected as x


@pytest.fixture(scope="session")
def base_url() -> str:
    return x.base_url()


@pytest.fixture(scope="session")
def client(base_url: str):
    # max_retries=0: the SDK must surface the gateway's answer as is (the gateway itself runs
    # with DASHBRIDGE_UPSTREAM_RETRIES=0), and a 429 must not be retried behind our back.
    c = OpenAI(base_url=base_url, api_key=x.CLIENT_KEY, max_retries=0, timeout=30.0)
    yield c
    c.close()
