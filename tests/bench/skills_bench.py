#!/usr/bin/env python3
"""The Skill Store's added latency (issue 5, "Speed").

Starts the publisher MCP server (`opchub-fake-mcp`) and `opchub serve` (test mode, so a loopback
publisher is allowed), both pinned to CPU 0; publishes and approves an MCP skill and enables it
for an invoker. Then, for each rate and repetition, the open-loop Rust generator
(`opchub-loadgen --mcp`, pinned to CPU 1) sends `tools/call` requests on one MCP session:
first straight to the publisher's server, then through OPC Hub's `/mcp` (key auth, schema
validation, the key's budget hold, the rmcp client to the publisher, one ledger event, call row and
budget settlement per call in one commit). Prints p50/p99 of both and the difference (the latency
`/mcp` adds), then checks that the ledger holds exactly one `skill.call` event (and one counted
call row) per successful call through `/mcp`, and that the key's budget spent exactly the price of
each (issue 19 item 1; `--budget-fen 0` benchmarks a key without a budget).

Optionally (`--skills N`, default 0 = skip) it also inserts N listed skills and times search
through `GET /api/v1/skills` over HTTP; `opchub bench search` measures the search itself.

Builds nothing: expects release binaries (see tests/bench/README.md). Everything listens on
127.0.0.1 with port 0 and every run is bounded (rate x duration requests, each with a timeout).

    python3 tests/bench/skills_bench.py [--rate 500,1000] [--duration 10] [--repeat 2] [--skills 0]
"""
import argparse
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from opchub_harness import Session, start  # noqa: E402

BIN = os.environ.get("OPCHUB_BIN", "target/release/opchub")
FAKE_MCP = os.environ.get("OPCHUB_FAKE_MCP_BIN", "target/release/opchub-fake-mcp")
LOADGEN = os.environ.get("LOADGEN_BIN", "target/release/opchub-loadgen")
PASSWORD = "bench-pass-123"
TASKSET = shutil.which("taskset")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pinned(cpu, cmd):
    """The command pinned to one CPU when taskset exists (taskset execs it: same pid)."""
    return [TASKSET, "-c", str(cpu), *cmd] if TASKSET else cmd


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def loadgen(url, rate, duration, tool, key=None):
    cmd = [LOADGEN, "--mcp", "--url", url, "--rate", str(rate), "--duration", str(duration), "--tool", tool,
           "--arguments", '{"a": 2, "b": 3}']
    if key:
        cmd += ["--key", key]
    r = subprocess.run(pinned(1, cmd), capture_output=True, text=True, timeout=duration + 90)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen failed ({r.returncode}): {r.stderr.strip()}")
    if r.stderr.strip():
        print(f"    loadgen: {r.stderr.strip()}", file=sys.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def fmt(v):
    return "-" if v is None else f"{v:.2f}"


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[max(1, math.ceil(p / 100 * len(xs))) - 1]


def insert_skills(db, publisher_user, n):
    """N listed skills straight into the database (the server's index is built on the next search)."""
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", default="500,1000", help="comma-separated calls/s (default 500,1000)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per rate (default 2)")
    ap.add_argument("--skills", type=int, default=0, help="also time HTTP search over this many inserted skills (default 0: skip)")
    ap.add_argument("--searches", type=int, default=2000)
    ap.add_argument("--budget-fen", type=int, default=10**12,
                    help="the invoker key's monthly budget in fen (default: ample, so every call holds and settles; 0: no budget)")
    a = ap.parse_args()
    rates = [int(r) for r in a.rate.split(",") if r.strip()]
    for b in (BIN, FAKE_MCP, LOADGEN):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} not found: cargo build --release -p opchub -p opchub-testkit --bins")

    data = tempfile.mkdtemp(prefix="opchub-skills-bench-")
    db = os.path.join(data, "opchub.db")
    env = dict(os.environ, OPCHUB_LOG="error")
    procs = []
    try:
        pub, pub_url = start(pinned(0, [FAKE_MCP, "--listen", "127.0.0.1:0"]), r"listening on (http://\S+)")
        procs.append(pub)
        for user, role in [("benchpub", "opc_founder"), ("benchuser", "opc_founder"), ("benchplat", "platform_operator")]:
            subprocess.run([BIN, "--data-dir", data, "user", "create", "--username", user, "--role", role, "--password", PASSWORD],
                           check=True, env=env, stdout=subprocess.DEVNULL)
        server, base = start(pinned(0, [BIN, "--data-dir", data, "serve", "--listen", "127.0.0.1:0", "--insecure-cookies",
                                        "--allow-private-upstreams"]), r"open (http://[\d.:]+)/", env)
        procs.append(server)

        p = Session(base, "benchpub", PASSWORD)
        out = p.call("POST", "/api/v1/skills", {"slug": "bench-calc", "name": "bench", "summary": "bench", "kind": "mcp_server",
                                                "category": "agent_tool", "version": "1.0.0", "price_fen": 1, "mcp_url": pub_url,
                                                "submit": True})
        Session(base, "benchplat", PASSWORD).call("POST", f"/api/v1/skill-versions/{out['version']['id']}/review",
                                                  {"decision": "approve", "comment": "bench"})
        u = Session(base, "benchuser", PASSWORD)
        u.call("PUT", f"/api/v1/skills/{out['skill']['id']}/enabled", {"enabled": True})
        k = u.call("POST", "/api/v1/me/api-keys", {"name": "bench"})
        key, key_id = k["secret"], k["key"]["id"]
        if a.budget_fen:
            u.call("PUT", f"/api/v1/me/api-keys/{key_id}/limits",
                   {"allowed_models": [], "rpm": 0, "tpm": 0, "monthly_budget_fen": a.budget_fen})

        print(f"hub {base}  publisher {pub_url}  {a.duration} s per run, {a.repeat} run(s) per rate"
              f"{'' if TASKSET else '  (no taskset: not pinned)'}", flush=True)
        rows = []
        mcp_ok = 0
        for rate in rates:
            for rep in range(a.repeat):
                load = loadavg()
                d = loadgen(pub_url, rate, a.duration, "add")
                cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
                h = loadgen(base + "/mcp", rate, a.duration, "bench-calc__add", key)
                cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
                mcp_ok += h["ok"]
                added = [None if h[k] is None or d[k] is None else h[k] - d[k] for k in ("p50_ms", "p99_ms")]
                cpu = {"us_per_call": (cpu1 - cpu0) / max(h["sent"], 1) * 1e6, "share": (cpu1 - cpu0) / (t1 - t0)}
                rows.append((rate, rep + 1, d, h, added, cpu, load))
                print(f"  {rate:5}/s #{rep + 1}  direct p50 {fmt(d['p50_ms'])} p99 {fmt(d['p99_ms'])} max {fmt(d['max_ms'])}"
                      f"  /mcp p50 {fmt(h['p50_ms'])} p99 {fmt(h['p99_ms'])} max {fmt(h['max_ms'])}"
                      f"  errors {d['errors']}/{h['errors']}  lag max {fmt(d['lag_max_ms'])}/{fmt(h['lag_max_ms'])} ms"
                      f"  hub CPU {cpu['share']:.0%} of a core  load {load}", flush=True)

        print()
        print(f"{'rate/s':>6} {'run':>3} | {'direct p50':>10} {'p99':>6} | {'/mcp p50':>8} {'p99':>6} | {'added p50':>9} {'p99':>6} | "
              f"{'errors d//mcp':>13} | {'hub CPU/call':>12} | {'loadavg before':>14}")
        print("-" * 112)
        for rate, rep, d, h, added, cpu, load in rows:
            print(f"{rate:>6} {rep:>3} | {fmt(d['p50_ms']):>10} {fmt(d['p99_ms']):>6} | {fmt(h['p50_ms']):>8} {fmt(h['p99_ms']):>6} | "
                  f"{fmt(added[0]):>9} {fmt(added[1]):>6} | {str(d['errors']) + '/' + str(h['errors']):>13} | "
                  f"{cpu['us_per_call']:>9.0f} µs | {load:>14}")
        print("(ms, from each call's scheduled send time to the end of its response; added = /mcp - direct;")
        print(" hub CPU/call = opchub's user+system CPU during the /mcp run / calls)")

        # One skill.call event and one counted call per successful call through /mcp.
        con = sqlite3.connect(db)
        events, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT source_event_id) FROM ledger_events "
                                       "WHERE kind = 'skill.call'").fetchone()
        ok_events = con.execute("SELECT COUNT(*) FROM ledger_events WHERE kind = 'skill.call' "
                                "AND attributes LIKE '%\"outcome\":\"ok\"%'").fetchone()[0]
        calls = con.execute("SELECT COUNT(*) FROM skill_calls WHERE outcome = 'ok'").fetchone()[0]
        spent, held = con.execute("SELECT COALESCE(SUM(spent_fen), 0), COALESCE(SUM(held_fen), 0) FROM gateway_budgets "
                                  "WHERE api_key_id = ?", (key_id,)).fetchone()
        con.close()
        ok = events == distinct == ok_events == calls == mcp_ok
        if a.budget_fen:
            # 1 fen per call: the budget spent what the calls were charged, nothing left held.
            budget_ok = spent == mcp_ok and held == 0
            print(f"budget: spent {spent} fen, held {held} fen for {mcp_ok} calls at 1 fen -> "
                  f"{'exact' if budget_ok else 'MISMATCH'}")
            ok = ok and budget_ok
        print()
        print(f"ledger: {events} skill.call events ({distinct} distinct keys, {ok_events} with outcome ok), {calls} ok call rows; "
              f"successful calls through /mcp: {mcp_ok} -> {'exactly one event per call' if ok else 'MISMATCH'}")

        if a.skills:
            import httpx
            me = p.call("GET", "/api/v1/me")["user"]["id"]
            insert_skills(db, me, a.skills)
            queries = ["发票", "视频 生成", "contract", "翻译 工具", "finance legal", "数据分析", "skill number", "客服"]
            lat = []
            with httpx.Client(base_url=base, timeout=30) as c:
                c.get("/api/v1/skills", params={"q": "warm"})  # the first search builds the index
                for i in range(a.searches):
                    t = time.perf_counter()
                    r = c.get("/api/v1/skills", params={"q": queries[i % len(queries)]})
                    r.raise_for_status()
                    lat.append((time.perf_counter() - t) * 1000)
            print(f"HTTP search over {a.skills} inserted skills: p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms "
                  f"({a.searches} sequential queries, Python client)")
        return 0 if ok else 1
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
