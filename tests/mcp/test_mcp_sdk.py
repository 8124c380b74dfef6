"""The official MCP Python SDK (`mcp` from PyPI) against OPC Hub's Skill Store `/mcp` (M2.3).

Starts a publisher's MCP server (`opchub-fake-mcp`, built on the official Rust SDK) and
`opchub serve` (test mode: loopback upstreams allowed), publishes a skill through the JSON
API, has the platform operator approve it and an invoker enable it, then connects with the
SDK's own client to `/mcp` using the invoker's API key: lists the tools, calls one and gets
the publisher's result. The ledger must then hold exactly one qualified `skill.call` for
that publisher and invoker.
"""
import asyncio
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from opchub_harness import Session, start  # noqa: E402
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

BIN = os.environ.get("OPCHUB_BIN", "target/debug/opchub")
FAKE_MCP = os.environ.get("OPCHUB_FAKE_MCP_BIN", "target/debug/opchub-fake-mcp")
PASSWORD = "mcp-test-pass-1"


@pytest.fixture(scope="module")
def platform():
    data = tempfile.mkdtemp(prefix="opchub-mcp-")
    env = dict(os.environ, OPCHUB_LOG="warn")
    publisher_server, publisher_url = start([FAKE_MCP, "--listen", "127.0.0.1:0"], r"listening on (http://\S+)")
    for user, role in [("mcppub", "opc_founder"), ("mcpuser", "opc_founder"), ("mcpplatform", "platform_operator")]:
        subprocess.run([BIN, "--data-dir", data, "user", "create", "--username", user, "--role", role, "--password", PASSWORD],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    server, base = start([BIN, "--data-dir", data, "serve", "--listen", "127.0.0.1:0", "--insecure-cookies",
                          "--allow-private-upstreams"], r"open (http://[\d.:]+)/", env)
    try:
        pub = Session(base, "mcppub", PASSWORD)
        out = pub.call("POST", "/api/v1/skills", {
            "slug": "sdk-calc", "name": "计算器 Calculator", "summary": "两数相加 adds numbers", "kind": "mcp_server",
            "category": "agent_tool", "tags": ["math"], "version": "1.0.0", "price_fen": 3,
            "mcp_url": publisher_url, "submit": True})
        staff = Session(base, "mcpplatform", PASSWORD)
        staff.call("POST", f"/api/v1/skill-versions/{out['version']['id']}/review", {"decision": "approve", "comment": "ok"})
        user = Session(base, "mcpuser", PASSWORD)
        user.call("PUT", f"/api/v1/skills/{out['skill']['id']}/enabled", {"enabled": True})
        key = user.call("POST", "/api/v1/me/api-keys", {"name": "agent"})
        yield {
            "base": base,
            "key": key["secret"],
            "staff": staff,
            "publisher": pub.call("GET", "/api/v1/me")["user"]["id"],
            "invoker": user.call("GET", "/api/v1/me")["user"]["id"],
        }
    finally:
        server.terminate()
        publisher_server.terminate()
        server.wait(timeout=30)
        publisher_server.wait(timeout=30)


async def list_and_call(base, key):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        async with Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
            tools = await client.list_tools()
            result = await client.call_tool("sdk-calc__add", {"a": 20, "b": 22})
            return [t.name for t in tools.tools], result


def test_list_and_call_through_mcp_counts_one_qualified_call(platform):
    names, result = asyncio.run(list_and_call(platform["base"], platform["key"]))
    assert sorted(names) == ["sdk-calc__add", "sdk-calc__echo", "sdk-calc__fail"]
    assert not result.is_error
    assert result.content[0].text == "42"
    st = platform["staff"].call("GET", f"/api/v1/ledger/statement?party={platform['invoker']}")
    calls = [t for t in st["totals"] if t["kind"] == "skill.call"]
    assert len(calls) == 1 and calls[0]["quantity"] == 1 and calls[0]["charged_fen"] == 3, st["totals"]
    events = [e for e in st["events"] if e["kind"] == "skill.call"]
    assert len(events) == 1, events
    e = events[0]
    assert e["counterparty"] == platform["publisher"]
    assert e["attributes"]["qualified"] == "true"
    assert e["attributes"]["tool"] == "add"


def test_a_key_is_required(platform):
    async def no_key():
        async with Client(platform["base"] + "/mcp") as client:
            await client.list_tools()
    with pytest.raises(Exception):
        asyncio.run(no_key())
