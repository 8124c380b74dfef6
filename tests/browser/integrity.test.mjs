// Integrity findings (issue 18) in a real headless chromium on the demo data, in Chinese: the
// committee scans the year and sees each finding with its drawn graph and the ledger events it
// rests on; the flagged OPC answers on its own page; one member proposes upholding it (the
// lines stay held, the page says a second member must confirm); a second member confirms; the
// flagged OPC then reads 已认定 with the reason.
// Run by .ci/run: OPCHUB_BIN names the built binary; CHROMIUM the browser (default /usr/bin/chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataDirFor, launch, signIn, startServer } from './support.mjs';

const server = dataDirFor('integrity');

async function submit(page, selector) {
  await Promise.all([page.waitForLoadState('load'), page.click(selector)]);
}

/** This year in Beijing (the demo's usage is dated in it). */
function beijingYear() {
  return new Date(Date.now() + 8 * 3600 * 1000).getUTCFullYear();
}

test('a finding is scanned, answered, proposed and confirmed by two members', { timeout: 240_000 }, async () => {
  const { url } = await startServer(server);
  const browser = await launch();
  try {
    const committee = await signIn(browser, url, 'committee');
    await committee.goto(url + '/integrity');
    await committee.fill('#scan-year', String(beijingYear()));
    await submit(committee, '#scan');
    // The demo's ring of two OPCs calling each other's paid skills (else the first open one).
    const open = await committee.$$('tr[data-finding][data-status="open"]');
    assert.ok(open.length >= 1, 'the scan of the demo year opens a finding');
    let id = await open[0].getAttribute('data-finding');
    for (const row of open) {
      if ((await row.textContent()).includes('互相调用')) {
        id = await row.getAttribute('data-finding');
        break;
      }
    }
    const finding = `#finding-${id}`;
    assert.ok(await committee.isVisible(`${finding} svg.ring-graph`), 'the finding is drawn');
    assert.match(await committee.textContent(`${finding} .explanation`), /¥/);
    const leaves = await committee.$$(`${finding} .leaves a[href^="/ledger/proof?leaf_index="]`);
    assert.ok(leaves.length >= 1, 'the finding names the ledger events it rests on');

    // The flagged OPC: the demo founder whose page offers the answer form.
    let party = null;
    for (const u of ['opc', ...Array.from({ length: 15 }, (_, i) => `opc${String(i + 2).padStart(2, '0')}`)]) {
      let page;
      try {
        page = await signIn(browser, url, u);
      } catch {
        continue;
      }
      await page.goto(url + '/integrity');
      if (await page.$(`${finding} form.answer-form`)) {
        party = page;
        break;
      }
      await page.context().close();
    }
    assert.ok(party, 'a demo founder is named by the finding');
    await party.fill(`#statement-${id}`, '我们是真实的业务往来，附合同编号 HT-2026-018。');
    await submit(party, `${finding} form.answer-form button[type=submit]`);
    assert.match(await party.textContent(`${finding} blockquote.statement`), /真实的业务往来/);
    assert.ok(!(await party.$(`${finding} form.decide-form`)), 'a party does not decide');

    // First member: a proposal only; the page says a second member must confirm.
    await committee.goto(url + '/integrity');
    assert.match(await committee.textContent(`${finding} blockquote.statement`), /HT-2026-018/);
    await committee.fill(`#reason-${id}`, '双方互相调用，无真实业务');
    await submit(committee, `${finding} form.decide-form button[value=uphold]`);
    assert.match(await committee.textContent(`${finding} .proposal`), /待另一位委员确认/);
    assert.equal((await committee.textContent(`${finding} .finding-status`)).trim(), '核查中');

    // The second member confirms: decided.
    const second = await signIn(browser, url, 'committee2');
    await second.goto(url + '/integrity');
    await second.fill(`#reason-${id}`, '同意认定');
    await submit(second, `${finding} form.decide-form button[value=uphold]`);
    assert.equal((await second.textContent(`${finding} .finding-status`)).trim(), '已认定');

    await party.goto(url + '/integrity');
    assert.equal((await party.textContent(`${finding} .finding-status`)).trim(), '已认定');
    assert.match(await party.textContent(`${finding} .decision`), /双方互相调用/);
    assert.ok(!(await party.$(`${finding} form.answer-form`)), 'a decided finding takes no more answers');
  } finally {
    await browser.close();
  }
});
