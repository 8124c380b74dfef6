// Issue 21, "done when": each role's core job in headless chromium, in Chinese, on the demo
// data, where the other browser tests do not already do it (the enterprise's demand board,
// the committee's second signature and finance's payment, the agency's review, the playground
// and the finding review each have their own file):
// - OPC: the usage chart of its statement, a bill it owes paid through the form (its own
//   settlement line is ¥0 in the demo, held by that unpaid bill: the operator confirms one);
// - community operator: a settlement line confirmed from its workbench's count; a new channel
//   and a price table through the forms, then its usage;
// - finance: an approved application paid, and the payment batch's spreadsheet downloaded;
// - auditor: a ledger event's inclusion proof verified on the proof page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { dataDirFor, startServer, launch, signIn, draftSettlement } from './support.mjs';

const ctx = dataDirFor('roles');
let server;
let browser;

async function submit(page, selector) {
  await Promise.all([page.waitForLoadState('load'), page.click(selector)]);
}

before(async () => {
  server = await startServer(ctx);
  browser = await launch();
  // A draft settlement batch of every clause; its lines are confirmed below.
  await draftSettlement(browser, server.url);
});
after(async () => {
  await browser?.close();
});

test('OPC: the usage chart, a bill it owes paid through the form', async () => {
  const page = await signIn(browser, server.url, 'opc');
  await page.goto(server.url + '/ledger/statement');
  assert.ok((await page.locator('svg.chart rect.bar').count()) >= 1, 'the usage chart has bars');
  assert.match(await page.textContent('#totals'), /词元/);

  // The demo OPC still owes its skill bill of the last closed month (its M2.3 line waits on
  // it): it records paying it in full, and the payment waits for the payee's confirmation.
  await page.goto(server.url + '/my/bills?status=issued&side=payer');
  const owed = page.locator('#bills tbody tr', { has: page.locator('.badge-issued') }).first().locator('a');
  await Promise.all([page.waitForLoadState('load'), owed.click()]);
  assert.ok((await page.locator('#bill-lines tbody tr').count()) >= 1, await page.textContent('main'));
  const outstanding = (await page.textContent('#bill-outstanding')).replace(/[¥,\s]/g, '');
  assert.ok(Number(outstanding) > 0, outstanding);
  await page.fill('#amount', outstanding);
  await page.fill('#reference', `OPC-BROWSER-${Date.now()}`);
  await submit(page, '#record-payment');
  assert.ok(!(await page.isVisible('#form-error')), await page.textContent('main'));
  assert.equal(await page.locator('#bill-payments tbody tr').count(), 1);
  assert.match(await page.textContent('#bill-payments'), /待确认/);
  await page.context().close();
});

test('community operator: its settlement line confirmed from the workbench count', async () => {
  const page = await signIn(browser, server.url, 'operator');
  const count = Number((await page.textContent('#todo-lines_to_confirm .todo-count')).trim());
  assert.ok(count >= 1, 'the draft batch has a payable line for the demo operator');
  await Promise.all([page.waitForLoadState('load'), page.click('#todo-lines_to_confirm a')]);
  assert.equal(new URL(page.url()).pathname, '/my/settlements');
  assert.equal(await page.locator('button[name=accept][value=yes]').count(), count, 'the count is the page\'s');
  await Promise.all([page.waitForLoadState('load'), page.locator('button[name=accept][value=yes]').first().click()]);
  assert.ok(await page.isVisible('#done'), await page.textContent('main'));
  await page.goto(server.url + '/workbench');
  assert.equal(Number((await page.textContent('#todo-lines_to_confirm .todo-count')).trim()), count - 1);
  await page.context().close();
});

test('community operator: a channel and a price table through the forms, then its usage', async () => {
  const page = await signIn(browser, server.url, 'operator');
  await page.goto(server.url + '/gateway/channels');
  await page.fill('#name', '浏览器测试渠道');
  await page.fill('#base_url', 'https://api.example.com/v1');
  await page.fill('#secret', 'sk-browser-test');
  await page.fill('#models', 'browser-model');
  await submit(page, '#channel-form button[type=submit]');
  assert.ok(await page.isVisible('#done'), await page.textContent('main'));
  const row = page.locator('#channels tr', { hasText: '浏览器测试渠道' });
  assert.equal(await row.getAttribute('data-status'), 'pending', 'a new channel waits for the platform operator');

  await page.fill('#version', 'browser-1');
  await page.fill('#prices-input', 'browser-model 400 200 100 50 1200 600');
  await submit(page, '#publish-prices');
  assert.ok(await page.isVisible('#done'), await page.textContent('main'));
  assert.equal(await page.locator('#price-tables tr#price-table-browser-1').getAttribute('data-status'), 'pending');

  // What it served its OPCs (the statement as counterparty).
  await page.goto(server.url + '/ledger/statement?role=counterparty');
  assert.ok((await page.locator('#totals tbody tr').count()) >= 1, await page.textContent('main'));
  await page.context().close();
});

test('finance: pays an approved application and downloads the payment batch', async () => {
  const page = await signIn(browser, server.url, 'finance');
  await page.goto(server.url + '/finance/payments');
  const row = page.locator('#approved tbody tr').first();
  const id = await row.getAttribute('data-id');
  assert.ok(id, 'the demo has an application approved for payment (M5.1)');
  await page.check(`#pay-${id}`);
  await page.fill(`#ref-${id}`, 'BANK-BROWSER-1');
  await page.fill('#reference', `FB-BROWSER-${Date.now()}`);
  await submit(page, '#pay');
  assert.ok(await page.isVisible('#done'), await page.textContent('main'));
  const href = await page.locator('#batches a[href^="/api/v1/fund-batches/"]').first().getAttribute('href');
  const r = await page.context().request.get(server.url + href);
  assert.equal(r.status(), 200);
  assert.match(r.headers()['content-disposition'] || '', /attachment/);
  const body = await r.body();
  assert.equal(body.subarray(0, 2).toString(), 'PK', 'a spreadsheet (XLSX is a zip)');
  await page.context().close();
});

test('auditor: an event of the ledger verified by its inclusion proof', async () => {
  const page = await signIn(browser, server.url, 'auditor');
  await page.goto(server.url + '/ledger/proof');
  await page.fill('#leaf_index', '0');
  await submit(page, '#proof-form button[type=submit]');
  assert.equal(await page.getAttribute('#verdict', 'data-verified'), 'true', await page.textContent('main'));
  assert.ok((await page.locator('#checks li').count()) >= 2);
  await page.context().close();
});
