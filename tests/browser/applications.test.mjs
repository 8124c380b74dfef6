// Applications and funds (issue 8) in a real headless chromium on the demo data: the demo OPC
// applies for M5.1 (a negative amount is explained first), uploads a PDF for every evidence
// item through the page, submits; the committee takes it in, the commerce agency reviews it,
// the committee approves, the finance bureau pays it in a batch — each step by the right role —
// and the OPC sees every status change with its date.
// Run by .ci/run: OPCHUB_BIN names the built binary; CHROMIUM the browser (default /usr/bin/chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataDirFor, launch, signIn, startServer } from './support.mjs';

const server = dataDirFor('apps');

const PDF = Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n');

async function act(page, url, id, action, reason = '') {
  await page.goto(`${url}/applications/${id}`);
  await page.selectOption('#action', action);
  if (reason) await page.fill('#reason', reason);
  await Promise.all([page.waitForLoadState('load'), page.click('#do-review')]);
  assert.ok(await page.isVisible('#done'), `${action} was not accepted: ${await page.textContent('main')}`);
}

test('an application goes through every stage with the right role at each', { timeout: 180_000 }, async () => {
  const { url, child } = await startServer(server);
  const browser = await launch();
  try {
    // A fee paid today (Beijing): inside the measures' validity window (S2) whether the demo
    // previews them (before their publication date) or they are in force.
    const today = new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
    const opc = await signIn(browser, url, 'opc');
    await opc.goto(url + '/applications');
    await Promise.all([opc.waitForLoadState('load'), opc.click('a[data-clause="M5.1"]')]);
    // A negative fee is explained on the form.
    await opc.fill('#compliance_fees-0-date', today);
    await opc.fill('#compliance_fees-0-amount', '-20000');
    await Promise.all([opc.waitForLoadState('load'), opc.click('#save-draft')]);
    assert.match(await opc.textContent('#form-error'), /compliance_fees\[0\]\.amount_fen/);
    await opc.fill('#compliance_fees-0-date', today);
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
