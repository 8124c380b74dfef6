"""Shared by the Python tests and benchmarks: start a process that announces its URL on
stdout, and a signed-in browser session for OPC Hub's JSON API (cookie + CSRF header)."""
import re
import subprocess
import time

import httpx


def start(cmd, pattern, env=None):
    """Starts `cmd` and returns (process, first match of `pattern` in its stdout)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(pattern, line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise RuntimeError(f"{cmd[0]} did not start")


class Session:
    """A signed-in browser session used for the JSON API (cookie + CSRF header)."""

    def __init__(self, base, username, password, timeout=60):
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=timeout)
        self.http.get("/login")
        csrf = self.http.cookies.get("opchub_csrf")
        r = self.http.post("/login", data={"username": username, "password": password, "_csrf": csrf})
        assert r.status_code == 303, r.text

    def call(self, method, path, body=None):
        r = self.http.request(method, path, json=body, headers={"x-csrf-token": self.http.cookies.get("opchub_csrf")})
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()
