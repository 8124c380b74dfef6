#!/usr/bin/env python3
"""The Skill Store's added latency (issue 5, "Speed").

Starts the publisher MCP server (`opchub-fake-mcp`) and `opchub serve` (test mode), publishes
and approves an MCP skill, enables it for an invoker, then runs an open-loop generator of
`tools/call` requests at fixed rates — first straight to the publisher's server, then through
OPC Hub's `/mcp` (auth, schema validation, proxying through the rmcp client, one ledger event
per call) — and prints p50/p99 of both and the difference. Then search p99 over 10,000 listed
skills (inserted straight into the database, then searched through `GET /api/v1/skills`).

Request i is scheduled at start + i/rate whatever earlier requests do; its latency runs from
its scheduled time to the end of the response (no coordinated omission). Everything listens on
127.0.0.1 and every run is bounded (rate x duration requests, 30 s timeout each).

    python3 tests/bench/skills_bench.py [--rate 500,1000] [--duration 5] [--skills 10000]
"""
import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from opchub_harness import Session, start  # noqa: E402

BIN = os.environ.get("OPCHUB_BIN", "target/release/opchub")
FAKE_MCP = os.environ.get("OPCHUB_FAKE_MCP_BIN", "target/release/opchub-fake-mcp")
PASSWORD = "bench-pass-123"
ACCEPT = "application/json, text/event-stream"


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


async def mcp_session(client, url, headers):
    r = await client.post(url, headers={**headers, "accept": ACCEPT}, json={
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    r.raise_for_status()
    sid = r.headers.get("mcp-session-id")
    h = {**headers, "accept": ACCEPT}
    if sid:
        h["mcp-session-id"] = sid
    await client.post(url, headers=h, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return h


async def open_loop(url, headers, tool, rate, duration):
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        h = await mcp_session(client, url, headers)
        n = int(rate * duration)
        lat, errors = [], 0
        start_t = time.perf_counter() + 0.2

        async def one(i):
            nonlocal errors
            scheduled = start_t + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                r = await client.post(url, headers=h, json={"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                                                            "params": {"name": tool, "arguments": {"a": i, "b": 1}}})
                ok = r.status_code == 200 and '"isError":false' in r.text.replace(" ", "")
            except Exception:
                ok = False
            if ok:
                lat.append((time.perf_counter() - scheduled) * 1000)
            else:
                errors += 1

        await asyncio.gather(*(one(i) for i in range(n)))
        return lat, errors


def insert_skills(db, publisher_user, n):
    con = sqlite3.connect(db)
    now = int(time.time() * 1000)
    words = ["发票", "视频生成", "合同审查", "翻译", "客服", "数据分析", "invoice", "video", "contract", "translate", "legal", "finance"]
    rows, vrows = [], []
    for i in range(n):
        sid, vid = uuid.uuid4().hex, uuid.uuid4().hex
        name = f"{words[i % len(words)]} {words[(i * 7) % len(words)]} 工具 {i}"
        rows.append((sid, f"bench-{i}", name, f"{name} 帮助OPC自动处理业务 skill number {i}", "mcp_server", "agent_tool",
                     '["bench"]', None, publisher_user, publisher_user, vid, None, None, now, now))
        vrows.append((vid, sid, "1.0.0", "approved", "0" * 64, i % 10, "http://127.0.0.1:9/mcp", "[]", "0" * 64, None, None, "{}",
                      now, now, now))
    con.executemany("INSERT INTO skills (id, slug, name, summary, kind, category, tags, homepage_url, publisher_user_id, "
                    "publisher_party, live_version_id, drifted_at, drifted_hash, created_at, updated_at) VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.executemany("INSERT INTO skill_versions (id, skill_id, version, status, content_hash, price_fen, endpoint_url, tools, "
                    "tools_hash, manifest, package_b64, checks, submitted_at, decided_at, created_at) VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", vrows)
    con.commit()
    con.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", default="500,1000")
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--skills", type=int, default=10000)
    ap.add_argument("--searches", type=int, default=2000)
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="opchub-skills-bench-")
    env = dict(os.environ, OPCHUB_LOG="error")
    pub, pub_url = start([FAKE_MCP, "--listen", "127.0.0.1:0"], r"listening on (http://\S+)")
    for user, role in [("benchpub", "opc_founder"), ("benchuser", "opc_founder"), ("benchplat", "platform_operator")]:
        subprocess.run([BIN, "--data-dir", data, "user", "create", "--username", user, "--role", role, "--password", PASSWORD],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    server, base = start([BIN, "--data-dir", data, "serve", "--listen", "127.0.0.1:0", "--insecure-cookies",
                          "--allow-private-upstreams"], r"open (http://[\d.:]+)/", env)
    try:
        p = Session(base, "benchpub", PASSWORD)
        out = p.call("POST", "/api/v1/skills", {"slug": "bench-calc", "name": "bench", "summary": "bench", "kind": "mcp_server",
                                                "category": "agent_tool", "version": "1.0.0", "price_fen": 1, "mcp_url": pub_url,
                                                "submit": True})
        Session(base, "benchplat", PASSWORD).call("POST", f"/api/v1/skill-versions/{out['version']['id']}/review",
                                                  {"decision": "approve", "comment": "bench"})
        u = Session(base, "benchuser", PASSWORD)
        u.call("PUT", f"/api/v1/skills/{out['skill']['id']}/enabled", {"enabled": True})
        key = u.call("POST", "/api/v1/me/api-keys", {"name": "bench"})["secret"]
        print(f"{'rate/s':>7} {'direct p50':>11} {'direct p99':>11} {'/mcp p50':>9} {'/mcp p99':>9} {'added p50':>10} {'added p99':>10} {'errors':>7}")
        for rate in [int(r) for r in a.rate.split(",")]:
            d, de = asyncio.run(open_loop(pub_url, {}, "add", rate, a.duration))
            h, he = asyncio.run(open_loop(base + "/mcp", {"authorization": f"Bearer {key}"}, "bench-calc__add", rate, a.duration))
            print(f"{rate:>7} {pct(d, 50):>10.2f}ms {pct(d, 99):>10.2f}ms {pct(h, 50):>8.2f}ms {pct(h, 99):>8.2f}ms "
                  f"{pct(h, 50) - pct(d, 50):>9.2f}ms {pct(h, 99) - pct(d, 99):>9.2f}ms {de + he:>7}")
        me = p.call("GET", "/api/v1/me")["user"]["id"]
        insert_skills(os.path.join(data, "opchub.db"), me, a.skills)
        queries = ["发票", "视频 生成", "contract", "翻译 工具", "finance legal", "数据分析", "skill number", "客服"]
        lat = []
        with httpx.Client(base_url=base, timeout=30) as c:
            c.get("/api/v1/skills", params={"q": "warm"})  # the first search builds the index
            for i in range(a.searches):
                t = time.perf_counter()
                r = c.get("/api/v1/skills", params={"q": queries[i % len(queries)]})
                r.raise_for_status()
                lat.append((time.perf_counter() - t) * 1000)
        print(f"search over {a.skills} listed skills: p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms ({a.searches} queries)")
    finally:
        server.terminate()
        pub.terminate()
        server.wait(timeout=30)
        pub.wait(timeout=30)


if __name__ == "__main__":
    main()
