#!/usr/bin/env python3
"""The factor gateway's added latency (issue 4, "Speed").

With the zero-latency fake upstream on loopback, runs the open-loop `opchub-loadgen` at fixed
rates, first straight against the fake upstream, then through the gateway (metering on), for
plain and streaming chat, and prints p50/p99 of both and their difference: what the gateway
adds. Then the gateway's peak memory (VmHWM) and whether the ledger holds exactly the tokens the
upstream emitted for the gateway's requests.

Builds nothing: expects release binaries (see tests/bench/README.md). Everything listens on
127.0.0.1 with port 0 and every run is bounded (rate x duration requests, each with a timeout).

    python3 tests/bench/gateway_bench.py [--rate 500,1000,2000] [--duration 10] [--modes plain,stream]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from opchub_harness import Session, start  # noqa: E402

BIN = os.environ.get("OPCHUB_BIN", "target/release/opchub")
FAKE = os.environ.get("FAKE_BIN", "target/release/opchub-fake-upstream")
LOADGEN = os.environ.get("LOADGEN_BIN", "target/release/opchub-loadgen")
PASSWORD = "bench-pass-1"
MODEL = "fake-final"
TASKSET = shutil.which("taskset")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pinned(cpu, cmd):
    """The command pinned to one CPU when taskset exists (taskset execs it: same pid)."""
    return [TASKSET, "-c", str(cpu), *cmd] if TASKSET else cmd


def proc_status(pid, field):
    """A `kB` field of /proc/<pid>/status (e.g. VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def loadgen(url, key, rate, duration, stream, max_tokens):
    cmd = pinned(1, [LOADGEN, "--url", url, "--key", key, "--rate", str(rate), "--duration", str(duration),
                     "--model", MODEL, "--max-tokens", str(max_tokens)] + (["--stream"] if stream else []))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 90)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen failed ({r.returncode}): {r.stderr.strip()}")
    if r.stderr.strip():
        print(f"    loadgen: {r.stderr.strip()}", file=sys.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def upstream_tokens(fake):
    s = fake.get("/__stats").json()
    return s["prompt_tokens"] + s["embedding_tokens"], s["completion_tokens"]


def ledger_tokens(staff, party):
    st = staff.call("GET", f"/api/v1/ledger/statement?party={party}")
    tot = {t["kind"]: t["quantity"] for t in st["totals"]}
    return tot.get("token.input", 0) + tot.get("token.cached_input", 0), tot.get("token.output", 0)


def fmt(v):
    return "-" if v is None else f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", default="500,1000,2000", help="comma-separated requests/s (default 500,1000,2000)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    ap.add_argument("--modes", default="plain,stream", help="plain, stream or both (default plain,stream)")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--by-second", action="store_true", help="also print each run's p99 second by second")
    ap.add_argument("--upstream-cpu", type=int, default=1,
                    help="CPU of the fake upstream: 1 the load generator's (default: a real upstream is remote and "
                         "takes none of the gateway's CPU; the direct baseline is measured the same way), 0 the gateway's")
    args = ap.parse_args()
    rates = [int(r) for r in args.rate.split(",") if r.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    assert all(m in ("plain", "stream") for m in modes), "modes are plain and stream"
    for b in (BIN, FAKE, LOADGEN):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} not found: cargo build --release -p opchub -p opchub-testkit --bins")

    data = tempfile.mkdtemp(prefix="opchub-bench-")
    env = dict(os.environ, OPCHUB_LOG="warn")
    procs = []
    try:
        fake, fake_url = start(pinned(args.upstream_cpu, [FAKE, "--listen", "127.0.0.1:0"]), r"listening on (http://\S+)")
        procs.append(fake)
        for user, role in [("benchop", "community_operator"), ("benchplatform", "platform_operator"), ("benchopc", "opc_founder")]:
            subprocess.run([BIN, "--data-dir", data, "user", "create", "--username", user, "--role", role, "--password", PASSWORD],
                           check=True, env=env, stdout=subprocess.DEVNULL)
        # httpx (unlike browsers) will not send Secure cookies to plain-HTTP loopback.
        server, base = start(pinned(0, [BIN, "--data-dir", data, "serve", "--listen", "127.0.0.1:0", "--insecure-cookies",
                                        "--allow-private-upstreams"]),
                             r"open (http://[\d.:]+)/", env)
        procs.append(server)

        op = Session(base, "benchop", PASSWORD)
        ch = op.call("POST", "/api/v1/gateway/channels",
                     {"name": "bench", "base_url": fake_url, "secret": "sk-fake", "models": [MODEL], "timeout_ms": 5000})
        staff = Session(base, "benchplatform", PASSWORD)
        staff.call("PUT", f"/api/v1/gateway/channels/{ch['id']}/status", {"status": "approved"})
        prices = [{"model": MODEL, "list_input": 400, "opc_input": 200, "list_cached": 100, "opc_cached": 50,
                   "list_output": 1200, "opc_output": 600}]
        op.call("POST", "/api/v1/gateway/prices", {"version": "bench-v1", "prices": prices})
        opc = Session(base, "benchopc", PASSWORD)
        key = opc.call("POST", "/api/v1/me/api-keys", {"name": "bench"})["secret"]
        party = opc.call("GET", "/api/v1/me")["user"]["id"]
        fake_http = httpx.Client(base_url=fake_url.rsplit("/v1", 1)[0], timeout=30)

        print(f"gateway {base} (CPU 0)  upstream {fake_url} (CPU {args.upstream_cpu})  {args.duration} s per run, model {MODEL}, max_tokens {args.max_tokens}"
              f"{'' if TASKSET else '  (no taskset: not pinned)'}", flush=True)
        rows = []
        via_gateway = [0, 0]  # tokens the upstream emitted for requests through the gateway
        for mode in modes:
            stream = mode == "stream"
            for rate in rates:
                direct = loadgen(fake_url, "sk-direct", rate, args.duration, stream, args.max_tokens)
                before, cpu0, t0 = upstream_tokens(fake_http), cpu_seconds(server.pid), time.monotonic()
                gw = loadgen(base + "/v1", key, rate, args.duration, stream, args.max_tokens)
                after, cpu1, t1 = upstream_tokens(fake_http), cpu_seconds(server.pid), time.monotonic()
                via_gateway = [via_gateway[i] + after[i] - before[i] for i in range(2)]
                added = [None if gw[k] is None or direct[k] is None else gw[k] - direct[k] for k in ("p50_ms", "p99_ms")]
                cpu = {"us_per_req": (cpu1 - cpu0) / max(gw["sent"], 1) * 1e6, "share": (cpu1 - cpu0) / (t1 - t0),
                       "rss_mib": proc_status(server.pid, "VmRSS") / 1024}
                rows.append((mode, rate, direct, gw, added, cpu))
                print(f"  {mode:6} {rate:5}/s  direct p50 {fmt(direct['p50_ms'])} p99 {fmt(direct['p99_ms'])}"
                      f"  gateway p50 {fmt(gw['p50_ms'])} p99 {fmt(gw['p99_ms'])} max {fmt(gw['max_ms'])}"
                      f"  errors {direct['errors']}/{gw['errors']}  loadgen lag max {fmt(direct['lag_max_ms'])}/{fmt(gw['lag_max_ms'])} ms"
                      f"  gateway CPU {cpu['share']:.0%} of a core, RSS {cpu['rss_mib']:.0f} MiB",
                      flush=True)
                if args.by_second:
                    for name, r in (("direct", direct), ("gateway", gw)):
                        print(f"    {name} p99 by second: {' '.join(fmt(v) for v in r['p99_by_second_ms'])}", flush=True)

        hwm = proc_status(server.pid, "VmHWM")
        rss = proc_status(server.pid, "VmRSS")

        # Metering on and exact under load: the ledger holds what the upstream emitted for the
        # gateway's requests (streams are metered right after they end, so poll a little).
        deadline = time.time() + 60
        while True:
            got = ledger_tokens(staff, party)
            if got == tuple(via_gateway) or time.time() > deadline:
                break
            time.sleep(0.5)

        print()
        print(f"{'mode':6} {'rate/s':>6} | {'direct p50':>10} {'p99':>7} | {'gateway p50':>11} {'p99':>7} | "
              f"{'added p50':>9} {'p99':>7} | {'errors d/g':>10} | {'gw CPU/req':>10} {'gw RSS':>7}")
        print("-" * 113)
        for mode, rate, d, g, added, cpu in rows:
            print(f"{mode:6} {rate:>6} | {fmt(d['p50_ms']):>10} {fmt(d['p99_ms']):>7} | {fmt(g['p50_ms']):>11} {fmt(g['p99_ms']):>7} | "
                  f"{fmt(added[0]):>9} {fmt(added[1]):>7} | {str(d['errors']) + '/' + str(g['errors']):>10} | "
                  f"{cpu['us_per_req']:>7.0f} µs {cpu['rss_mib']:>3.0f} MiB")
        print("(latencies in ms, from each request's scheduled send time to the end of its body; added = gateway - direct;")
        print(" gw CPU/req = the gateway process's user+system CPU during the run / requests; gw RSS = its VmRSS after the run)")
        print()
        print(f"gateway peak memory (VmHWM): {hwm / 1024:.1f} MiB (VmRSS now {rss / 1024:.1f} MiB)")
        ok = got == tuple(via_gateway)
        print(f"ledger tokens (input, output) {got} {'==' if ok else '!='} upstream emitted via gateway {tuple(via_gateway)}: "
              f"{'metering exact' if ok else 'MISMATCH'}")
        return 0 if ok else 1
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
