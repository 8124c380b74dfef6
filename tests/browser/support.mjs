// Shared support of the browser tests: a real `opchub serve --demo` on a free loopback port in a
// temporary data directory (killed and removed after the test file), headless Debian chromium,
// and signing in as a demo account.
// OPCHUB_BIN names the built binary; CHROMIUM the browser (default /usr/bin/chromium).
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.OPCHUB_BIN || resolve('../../target/debug/opchub');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** A temporary data directory for one test file, removed (with its servers stopped) after it. */
export function dataDirFor(name) {
  const dataDir = mkdtempSync(join(tmpdir(), `opchub-browser-${name}-`));
  const children = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { dataDir, children };
}

/** Starts `opchub serve --demo` on a free loopback port; resolves with its URL and process. */
export function startServer({ dataDir, children }) {
  return new Promise((resolveUrl, reject) => {
    const child = spawn(BIN, ['--data-dir', dataDir, 'serve', '--demo', '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, OPCHUB_LOG: 'warn' },
    });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/open (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolveUrl({ url: m[1], child });
      }
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
}

/** Stops a server with SIGTERM; resolves with how it exited. */
export function stopServer(child) {
  return new Promise((res) => {
    child.on('exit', (code, signal) => res({ code, signal }));
    child.kill('SIGTERM');
  });
}

/** Headless chromium, without network side traffic. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** A new browser context signed in as a demo account (password `opchub-demo`). */
export async function signIn(browser, url, username) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(url + '/login');
  await page.fill('#username', username);
  await page.fill('#password', 'opchub-demo');
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
  assert.ok(!/\/login/.test(page.url()), `${username} could not sign in`);
  return page;
}

/** A draft settlement batch of every clause, made through the committee's form; its URL. */
export async function draftSettlement(browser, url) {
  const committee = await signIn(browser, url, 'committee');
  await committee.goto(url + '/committee/settlements');
  await Promise.all([
    committee.waitForURL(/\/committee\/settlements\/[0-9a-f]{32}$/),
    committee.click('#settle-form button[type=submit]'),
  ]);
  const batchUrl = committee.url();
  await committee.context().close();
  return batchUrl;
}
