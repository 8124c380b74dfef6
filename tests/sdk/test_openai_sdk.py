"""The official `openai` Python SDK against OPC Hub's gateway (M2.2).

Starts the fake upstream and `opchub serve` (binaries named by OPCHUB_BIN and
OPCHUB_FAKE_UPSTREAM_BIN), sets up a channel, a price table and an OPC key through the
platform's own JSON API, then uses the SDK exactly as an OPC would: model list, plain and
streaming chat, embeddings. Content must arrive unchanged and the ledger must hold exactly
the tokens the upstream emitted.
"""
import os
import sys
import re
import subprocess
import tempfile
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from opchub_harness import Session, start  # noqa: E402
import openai
import pytest

BIN = os.environ.get("OPCHUB_BIN", "target/debug/opchub")
FAKE = os.environ.get("OPCHUB_FAKE_UPSTREAM_BIN", "target/debug/opchub-fake-upstream")
PASSWORD = "sdk-test-pass-1"


@pytest.fixture(scope="module")
def platform():
    data = tempfile.mkdtemp(prefix="opchub-sdk-")
    env = dict(os.environ, OPCHUB_LOG="warn")
    fake, fake_url = start([FAKE, "--listen", "127.0.0.1:0"], r"listening on (http://\S+)")
    for user, role in [("sdkop", "community_operator"), ("sdkplatform", "platform_operator"), ("sdkopc", "opc_founder")]:
        subprocess.run([BIN, "--data-dir", data, "user", "create", "--username", user, "--role", role, "--password", PASSWORD],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    # httpx (unlike browsers) will not send Secure cookies to plain-HTTP loopback.
    # Test mode (--allow-private-upstreams): the fake upstream listens on loopback, which a
    # gateway channel may not point at in production.
    server, base = start([BIN, "--data-dir", data, "serve", "--listen", "127.0.0.1:0", "--insecure-cookies",
                          "--allow-private-upstreams"], r"open (http://[\d.:]+)/", env)
    try:
        op = Session(base, "sdkop", PASSWORD)
        models = ["fake-final", "fake-cumulative", "fake-no-usage", "fake-embed"]
        ch = op.call("POST", "/api/v1/gateway/channels",
                     {"name": "sdk", "base_url": fake_url, "secret": "sk-fake", "models": models, "timeout_ms": 5000})
        Session(base, "sdkplatform", PASSWORD).call("PUT", f"/api/v1/gateway/channels/{ch['id']}/status", {"status": "approved"})
        prices = [{"model": m, "list_input": 400, "opc_input": 200, "list_cached": 100, "opc_cached": 50,
                   "list_output": 1200, "opc_output": 600} for m in models]
        op.call("POST", "/api/v1/gateway/prices", {"version": "sdk-v1", "prices": prices})
        # A price table prices nothing until the platform operator approves it (issue 18).
        op_id = op.call("GET", "/api/v1/me")["user"]["id"]
        Session(base, "sdkplatform", PASSWORD).call("PUT", f"/api/v1/gateway/prices/{op_id}/sdk-v1/status", {"status": "approved"})
        opc = Session(base, "sdkopc", PASSWORD)
        key = opc.call("POST", "/api/v1/me/api-keys", {"name": "sdk"})
        me = opc.call("GET", "/api/v1/me")
        yield {
            "client": openai.OpenAI(base_url=base + "/v1", api_key=key["secret"], max_retries=0),
            "fake": httpx.Client(base_url=fake_url.rsplit("/v1", 1)[0]),
            "staff": Session(base, "sdkplatform", PASSWORD),
            "party": me["user"]["id"],
        }
    finally:
        server.terminate()
        fake.terminate()
        server.wait(timeout=30)
        fake.wait(timeout=30)


def ledger_matches_upstream(p):
    """Polls until the ledger's totals equal what the upstream emitted (streams are metered
    right after they end)."""
    deadline = time.time() + 15
    while True:
        stats = p["fake"].get("/__stats").json()
        st = p["staff"].call("GET", f"/api/v1/ledger/statement?party={p['party']}")
        tot = {t["kind"]: t["quantity"] for t in st["totals"]}
        got = (tot.get("token.input", 0) + tot.get("token.cached_input", 0), tot.get("token.output", 0))
        want = (stats["prompt_tokens"] + stats["embedding_tokens"], stats["completion_tokens"])
        if got == want or time.time() > deadline:
            assert got == want, f"ledger {got} != upstream {want}"
            return got


def test_model_list(platform):
    ids = sorted(m.id for m in platform["client"].models.list())
    assert ids == ["fake-cumulative", "fake-embed", "fake-final", "fake-no-usage"]


def test_plain_chat(platform):
    r = platform["client"].chat.completions.create(
        model="fake-final", messages=[{"role": "user", "content": "hello hello hello"}], max_tokens=5)
    assert r.choices[0].message.content == "hello hello hello hello hello"
    assert r.usage.completion_tokens == 5
    ledger_matches_upstream(platform)


@pytest.mark.parametrize("model", ["fake-final", "fake-cumulative", "fake-no-usage"])
def test_streaming_chat(platform, model):
    stream = platform["client"].chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello hello"}], max_tokens=8, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == " ".join(["hello"] * 8)
    ledger_matches_upstream(platform)


def test_streaming_with_usage_as_asked(platform):
    chunks = list(platform["client"].chat.completions.create(
        model="fake-final", messages=[{"role": "user", "content": "hello"}], max_tokens=4, stream=True,
        stream_options={"include_usage": True}))
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage and usage[-1].completion_tokens == 4
    ledger_matches_upstream(platform)


def test_embeddings(platform):
    r = platform["client"].embeddings.create(model="fake-embed", input=["hello hello", "hello"])
    assert len(r.data) == 2 and len(r.data[0].embedding) > 0
    assert r.usage.prompt_tokens == 3
    ledger_matches_upstream(platform)


def test_errors_are_openai_errors(platform):
    with pytest.raises(openai.NotFoundError):
        platform["client"].chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "hi"}])
    bad = openai.OpenAI(base_url=platform["client"].base_url, api_key="opk_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
