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


# ---------------------------------------------------------------------------------------------
# The /v1/responses suites (test_responses.py, test_agents.py, test_codex.py)
# ---------------------------------------------------------------------------------------------

_ROUTE: dict = {}


def responses_route_or_skip(base_url: str) -> None:
    """Skips the calling test, loudly, only when the gateway answers 404 on POST /v1/responses
    (a build without the route); any other answer runs the test."""
    if "status" not in _ROUTE:
        import httpx

        r = httpx.post(
            f"{base_url}/responses",
            json={"model": x.MODEL, "input": "scenario:text probe"},
            headers={"authorization": f"Bearer {x.CLIENT_KEY}"},
            timeout=30.0,
        )
        _ROUTE["status"] = r.status_code
        if r.status_code == 404:
            import sys

            print(
                f"\n*** SKIP: POST {base_url}/responses answers 404 ({r.text[:120]!r}): "
                "this gateway has no Responses route; the Responses client tests are skipped ***",
                file=sys.__stderr__,
                flush=True,
            )
    if _ROUTE["status"] == 404:
        pytest.skip("SKIP: POST /v1/responses answers 404 (no Responses route in this build)")


@pytest.fixture(scope="session")
def tee(base_url: str):
    """A recording proxy in front of the gateway (tee_proxy.TeeProxy)."""
    from tee_proxy import TeeProxy

    p = TeeProxy(base_url)
    yield p
    p.close()


@pytest.fixture
def checked(tee):
    """Clears the proxy's record before the test; after it, checks every exchange the test
    made: each Responses event stream with responses_check (the expected terminal event can be
    set with `checked.expect[path_index] = ...`)."""
    import responses_check as rc

    tee.take()

    class Checked:
        expect: dict = {}
        exchanges: list = []

        def take(self):
            self.exchanges += tee.take()
            return self.exchanges

        def finals(self, expect="response.completed"):
            """Checks every SSE exchange so far; returns their final responses."""
            out = []
            for i, ex in enumerate(self.take()):
                if ex.is_sse and ex.path.endswith("/responses"):
                    out.append(rc.check_sse(ex.response_body, expect=self.expect.get(i, expect)))
            return out

    c = Checked()
    c.expect, c.exchanges = {}, []
    yield c
    c.finals()
