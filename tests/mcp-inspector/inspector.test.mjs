// The official MCP Inspector CLI (`@modelcontextprotocol/inspector --cli`) against OPC Hub's
// Skill Store `/mcp` (M2.3).
//
// Starts a publisher's MCP server (`opchub-fake-mcp`, built on the official Rust SDK) and
// `opchub serve` (test mode: loopback publishers allowed), publishes a skill through the JSON
// API, has the platform operator approve it and an invoker enable it; then the Inspector CLI,
// with the invoker's API key in its Authorization header, lists the tools and calls one. The
// ledger must then hold exactly one qualified `skill.call` for that publisher and invoker.
//
// OPCHUB_BIN and OPCHUB_FAKE_MCP_BIN name the binaries (default: target/debug/…).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const BIN = process.env.OPCHUB_BIN || join(root, "target/debug/opchub");
const FAKE_MCP = process.env.OPCHUB_FAKE_MCP_BIN || join(root, "target/debug/opchub-fake-mcp");
const INSPECTOR = join(here, "node_modules/@modelcontextprotocol/inspector/cli/build/cli.js");
const PASSWORD = "inspector-pass-1";
const run = promisify(execFile);

const procs = [];
let dataDir;
let base;
let key;
let staff;
let invokerId;
let publisherId;

/** Starts `cmd` and resolves with the first match of `pattern` in its stdout. */
function start(cmd, args, pattern, env) {
  return new Promise((ok, fail) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    procs.push(p);
    let out = "";
    const timer = setTimeout(() => fail(new Error(`${cmd} did not start: ${out}`)), 60_000);
    p.stdout.on("data", (d) => {
      out += d;
      const m = out.match(pattern);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    p.on("exit", (code) => fail(new Error(`${cmd} exited with ${code}: ${out}`)));
  });
}

/** A signed-in browser session used for the JSON API (cookie + CSRF header). */
async function session(username) {
  const jar = new Map();
  const keep = (r) => {
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  keep(await fetch(`${base}/login`));
  const form = new URLSearchParams({ username, password: PASSWORD, _csrf: jar.get("opchub_csrf") });
  const r = await fetch(`${base}/login`, { method: "POST", body: form, redirect: "manual", headers: { cookie: cookie() } });
  assert.equal(r.status, 303, `login of ${username}`);
  keep(r);
  return async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { cookie: cookie(), "x-csrf-token": jar.get("opchub_csrf"), "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
}

/** The Inspector CLI in CLI mode against /mcp with the invoker's key; its JSON output. */
async function inspector(...args) {
  const { stdout } = await run(
    process.execPath,
    [INSPECTOR, "--cli", `${base}/mcp`, "--transport", "http", "--header", `Authorization: Bearer ${key}`, ...args],
    { timeout: 60_000, env: { ...process.env, NODE_NO_WARNINGS: "1" } },
  );
  return JSON.parse(stdout);
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "opchub-inspector-"));
  const env = { OPCHUB_LOG: "warn" };
  const publisherUrl = await start(FAKE_MCP, ["--listen", "127.0.0.1:0"], /listening on (http:\/\/\S+)/);
  for (const [user, role] of [
    ["inspub", "opc_founder"],
    ["insuser", "opc_founder"],
    ["insplatform", "platform_operator"],
  ]) {
    await run(BIN, ["--data-dir", dataDir, "user", "create", "--username", user, "--role", role, "--password", PASSWORD], {
      env: { ...process.env, ...env },
    });
  }
  base = await start(
    BIN,
    ["--data-dir", dataDir, "serve", "--listen", "127.0.0.1:0", "--insecure-cookies", "--allow-private-upstreams"],
    /open (http:\/\/[\d.:]+)\//,
    env,
  );
  const pub = await session("inspub");
  const out = await pub("POST", "/api/v1/skills", {
    slug: "inspector-calc",
    name: "计算器 Calculator",
    summary: "两数相加 adds numbers",
    kind: "mcp_server",
    category: "agent_tool",
    tags: ["math"],
    version: "1.0.0",
    price_fen: 3,
    mcp_url: publisherUrl,
    submit: true,
  });
  staff = await session("insplatform");
  await staff("POST", `/api/v1/skill-versions/${out.version.id}/review`, { decision: "approve", comment: "ok" });
  const user = await session("insuser");
  await user("PUT", `/api/v1/skills/${out.skill.id}/enabled`, { enabled: true });
  key = (await user("POST", "/api/v1/me/api-keys", { name: "inspector" })).secret;
  invokerId = (await user("GET", "/api/v1/me")).user.id;
  publisherId = (await pub("GET", "/api/v1/me")).user.id;
});

after(() => {
  for (const p of procs) p.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("the Inspector CLI lists the enabled skill's tools and calls one; the ledger holds one qualified call", async () => {
  const listed = await inspector("--method", "tools/list");
  const names = listed.tools.map((t) => t.name).sort();
  assert.deepEqual(names, ["inspector-calc__add", "inspector-calc__echo", "inspector-calc__fail"]);
  const add = listed.tools.find((t) => t.name === "inspector-calc__add");
  assert.deepEqual(add.inputSchema.required, ["a", "b"], "the pinned schema is served");

  const result = await inspector("--method", "tools/call", "--tool-name", "inspector-calc__add", "--tool-arg", "a=20", "b=22");
  assert.equal(result.isError, false, JSON.stringify(result));
  assert.equal(result.content[0].text, "42", "the publisher's result passes through");

  const st = await staff("GET", `/api/v1/ledger/statement?party=${invokerId}`);
  const events = st.events.filter((e) => e.kind === "skill.call");
  assert.equal(events.length, 1, JSON.stringify(events));
  const e = events[0];
  assert.equal(e.counterparty, publisherId);
  assert.equal(e.attributes.qualified, "true");
  assert.equal(e.attributes.tool, "add");
  assert.equal(e.charged_fen, 3);
  const totals = st.totals.filter((t) => t.kind === "skill.call");
  assert.equal(totals.length, 1);
  assert.equal(totals[0].quantity, 1);
});

test("without the invoker's key the Inspector CLI is refused", async () => {
  await assert.rejects(
    run(process.execPath, [INSPECTOR, "--cli", `${base}/mcp`, "--transport", "http", "--method", "tools/list"], { timeout: 60_000 }),
  );
});
