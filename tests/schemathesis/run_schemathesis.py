"""Schemathesis against OPC Hub's OpenAPI document (issue 20), bounded, on loopback only.

Starts `opchub serve --demo` on a free loopback port in a temporary data directory, signs in
as three demo accounts (an OPC founder, a committee member, the platform operator), creates an
API key for each through the API, and runs `st run` once per key with a bounded number of
examples per operation (the fuzzing phase) and the checks `not_a_server_error`,
`status_code_conformance`, `response_schema_conformance` and `content_type_conformance`: no
request may get a 5xx, and every answer is documented, in its documented shape. The operation that revokes the caller's own key is left out (it would end the run's
own authentication). Exits non-zero on any failure. OPCHUB_BIN names the built binary.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import requests

BIN = os.environ.get("OPCHUB_BIN", "target/debug/opchub")
EXAMPLES = os.environ.get("ST_MAX_EXAMPLES", "20")
ACCOUNTS = ["opc", "committee", "platform"]


def start(data_dir):
    proc = subprocess.Popen(
        [BIN, "--data-dir", data_dir, "serve", "--demo", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OPCHUB_LOG": "warn"},
    )
    deadline = time.time() + 120
    out = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out += line
        m = re.search(r"open (http://127\.0\.0\.1:\d+)/", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    sys.exit(f"the server did not start:\n{out}")


def key_for(url, username):
    # The session and CSRF cookies are `Secure`; over loopback HTTP they are passed by hand.
    jar = {}

    def keep(r):
        for c in r.cookies:
            jar[c.name] = c.value

    def cookie():
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}

    r = requests.get(url + "/login", timeout=10)
    keep(r)
    csrf = re.search(r'name="_csrf" value="([^"]+)"', r.text).group(1)
    r = requests.post(
        url + "/login",
        data={"_csrf": csrf, "username": username, "password": "opchub-demo"},
        headers=cookie(),
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 303, f"{username} could not sign in: {r.status_code}"
    keep(r)
    r = requests.post(
        url + "/api/v1/me/api-keys",
        json={"name": "schemathesis"},
        headers={**cookie(), "X-CSRF-Token": jar.get("opchub_csrf", "")},
        timeout=10,
    )
    assert r.status_code == 201, f"no key for {username}: {r.status_code} {r.text}"
    return r.json()["secret"]


def main():
    data_dir = tempfile.mkdtemp(prefix="opchub-st-")
    proc, url = start(data_dir)
    # This virtual environment's own `st` (another `st` on PATH may be something else).
    st = os.path.join(os.path.dirname(sys.executable), "st")
    failed = []
    try:
        for username in ACCOUNTS:
            key = key_for(url, username)
            print(f"==> schemathesis as {username}", flush=True)
            rc = subprocess.call(
                [
                    st, "run", url + "/api/openapi.json", "--url", url,
                    "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
                    "--max-examples", EXAMPLES,
                    "--phases", "fuzzing",
                    "--workers", "2",
                    "--request-timeout", "20",
                    "--generation-database", "none",
                    "--exclude-name", "DELETE /api/v1/me/api-keys/{id}",
                    "--no-color",
                    "--header", f"Authorization: Bearer {key}",
                ]
            )
            if rc != 0:
                failed.append(username)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    if failed:
        sys.exit(f"schemathesis failed as {', '.join(failed)}")


if __name__ == "__main__":
    main()
