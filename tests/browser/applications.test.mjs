// Applications and funds (issue 8) in a real headless chromium on the demo data: the demo OPC
// applies for M5.1 (a negative amount is explained first), uploads a PDF for every evidence
// item through the page, submits; the committee takes it in, the commerce agency reviews it,
// the committee approves, the finance bureau pays it in a batch — each step by the right role —
// and the OPC sees every status change with its date.
// Run by .ci/run: OPCHUB_BIN names the built binary; CHROMIUM the browser (default /usr/bin/chromium).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.OPCHUB_BIN || resolve('../../target/debug/opchub');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const dataDir = mkdtempSync(join(tmpdir(), 'opchub-browser-apps-'));
const children = [];

after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

function startServer() {
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

async function signIn(browser, url, username) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(url + '/login');
  await page.fill('#username', username);
  await page.fill('#password', 'opchub-demo');
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
  assert.ok(!/\/login/.test(page.url()), `${username} could not sign in`);
  return page;
}


const PDF = Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n');

async function act(page, url, id, action, reason = '') {
  await page.goto(`${url}/applications/${id}`);
  await page.selectOption('#action', action);
  if (reason) await page.fill('#reason', reason);
  await Promise.all([page.waitForLoadState('load'), page.click('#do-review')]);
  assert.ok(await page.isVisible('#done'), `${action} was not accepted: ${await page.textContent('main')}`);
}

test('an application goes through every stage with the right role at each', { timeout: 180_000 }, async () => {
  const { url, child } = await startServer();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const year = new Date().getFullYear();
    const opc = await signIn(browser, url, 'opc');
    await opc.goto(url + '/applications');
    await Promise.all([opc.waitForLoadState('load'), opc.click('a[data-clause="M5.1"]')]);
    // A negative fee is explained on the form.
    await opc.fill('#compliance_fees-0-date', `${year}-03-01`);
    await opc.fill('#compliance_fees-0-amount', '-20000');
    await Promise.all([opc.waitForLoadState('load'), opc.click('#save-draft')]);
    assert.match(await opc.textContent('#form-error'), /compliance_fees\[0\]\.amount_fen/);
    await opc.fill('#compliance_fees-0-date', `${year}-03-01`);
    await opc.fill('#compliance_fees-0-amount', '20000');
    await Promise.all([opc.waitForURL(/\/applications\/[0-9a-f]{32}$/), opc.click('#save-draft')]);
    const appUrl = opc.url();
    const id = appUrl.split('/').pop();
    // 50% of ¥20,000 of compliance fees.
    assert.match(await opc.textContent('#engine-amount'), /10,000\.00/);
    // One PDF per evidence item, uploaded through the page (the page reloads after each).
    const slots = await opc.locator('.evidence-file').count();
    assert.ok(slots >= 1);
    for (let i = 0; i < slots; i++) {
      await Promise.all([opc.waitForEvent('load'), opc.setInputFiles(`#file-${i}`, { name: `evidence-${i}.pdf`, mimeType: 'application/pdf', buffer: PDF })]);
    }
    assert.equal(await opc.locator('#evidence li.file').count(), slots);
    await Promise.all([opc.waitForLoadState('load'), opc.click('#submit-application')]);
    assert.equal(await opc.getAttribute('#app-status', 'data-stage'), 'committee_intake');

    // Committee intake → the commerce agency (the science agency may not even open it) →
    // committee decision → finance payment.
    const committee = await signIn(browser, url, 'committee');
    await act(committee, url, id, 'pass');
    const sci = await signIn(browser, url, 'agency');
    const r = await sci.goto(`${url}/applications/${id}`);
    assert.equal(r.status(), 403, 'another agency cannot open it');
    const commerce = await signIn(browser, url, 'agency-commerce');
    await act(commerce, url, id, 'pass');
    await act(committee, url, id, 'approve');
    assert.equal(await committee.getAttribute('#app-status', 'data-status'), 'approved');

    const finance = await signIn(browser, url, 'finance');
    await finance.goto(url + '/finance/payments');
    await finance.check(`#pay-${id}`);
    await finance.fill(`#ref-${id}`, 'BANK-BROWSER-1');
    await finance.fill('#reference', `FB-BROWSER-${Date.now()}`);
    await Promise.all([finance.waitForLoadState('load'), finance.click('#pay')]);
    assert.ok(await finance.isVisible('#done'), await finance.textContent('main'));

    // The applicant sees it paid, and every status change with its date.
    await opc.goto(appUrl);
    assert.equal(await opc.getAttribute('#app-status', 'data-status'), 'paid');
    assert.match(await opc.textContent('#paid-amount'), /10,000\.00/);
    const steps = await opc.locator('#timeline li').evaluateAll((els) => els.map((e) => e.dataset.status));
    assert.deepEqual(steps, ['draft', 'in_review', 'in_review', 'in_review', 'approved', 'paid']);
  } finally {
    await browser.close();
    child.kill('SIGTERM');
  }
});
