// 免申即享 settlement (issue 17) in a real headless chromium on the demo data, in Chinese: the
// committee drafts an M2.4 batch and may not approve it itself (the second signature); every
// beneficiary confirms its line on its own page; a second committee member approves; finance
// pays each line with a bank reference; the company then sees 已拨付 with the amount.
// Run by .ci/run: OPCHUB_BIN names the built binary; CHROMIUM the browser (default /usr/bin/chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataDirFor, launch, signIn, startServer } from './support.mjs';

const server = dataDirFor('settle');

async function submit(page, selector) {
  await Promise.all([page.waitForLoadState('load'), page.click(selector)]);
}

test('a batch is drafted, confirmed, approved by a second member and paid by finance', { timeout: 240_000 }, async () => {
  const { url } = await startServer(server);
  const browser = await launch();
  try {
    const committee = await signIn(browser, url, 'committee');
    await committee.goto(url + '/committee/settlements');
    await committee.fill('#s-clauses', 'M2.4');
    await Promise.all([committee.waitForURL(/\/committee\/settlements\/[0-9a-f]{32}$/), committee.click('#settle-form button[type=submit]')]);
    const batchUrl = committee.url();
    const id = batchUrl.split('/').pop();
    assert.equal((await committee.textContent('#batch-status')).trim(), '草稿（待确认）');

    // The drafter cannot approve its own batch; the page says why, in Chinese.
    await submit(committee, '#approve-form button[type=submit]');
    assert.match(await committee.textContent('#form-error'), /双人签批/);
    assert.equal((await committee.textContent('#batch-status')).trim(), '草稿（待确认）');

    // Every company with a line to confirm confirms it on /my/settlements (意愿确认).
    const confirmers = [];
    for (const who of ['enterprise', ...Array.from({ length: 9 }, (_, i) => `enterprise${String(i + 2).padStart(2, '0')}`)]) {
      const page = await signIn(browser, url, who);
      await page.goto(url + '/my/settlements');
      const accept = page.locator(`tr[data-batch="${id}"] button[name=accept][value=yes]`);
      if ((await accept.count()) > 0) {
        await Promise.all([page.waitForLoadState('load'), accept.first().click()]);
        assert.ok(await page.isVisible('#done'), await page.textContent('main'));
        confirmers.push(who);
      }
      await page.context().close();
    }
    assert.ok(confirmers.length >= 1, 'the demo has M2.4 lines to confirm');

    const second = await signIn(browser, url, 'committee2');
    await second.goto(batchUrl);
    await submit(second, '#approve-form button[type=submit]');
    assert.ok(await second.isVisible('#done'), await second.textContent('main'));
    assert.equal((await second.textContent('#batch-status')).trim(), '已审批待拨付');

    // Finance pays: a batch reference and one bank reference per line.
    const finance = await signIn(browser, url, 'finance');
    await finance.goto(batchUrl);
    await finance.fill('#pay-reference', `SB-BROWSER-${Date.now()}`);
    const refs = finance.locator('#pay-lines input[type=text]');
    const n = await refs.count();
    assert.equal(n, confirmers.length, 'one bank reference per approved line');
    for (let i = 0; i < n; i++) await refs.nth(i).fill(`BANK-${i + 1}`);
    await submit(finance, '#pay-form button[type=submit]');
    assert.ok(await finance.isVisible('#done'), await finance.textContent('main'));
    assert.equal((await finance.textContent('#batch-status')).trim(), '已拨付');

    // A company that confirmed sees its line paid, with the amount and the date.
    const company = await signIn(browser, url, confirmers[0]);
    await company.goto(url + '/my/settlements');
    const mark = company.locator(`tr[data-batch="${id}"] .paid-mark`);
    assert.equal(await mark.count(), 1);
    assert.match(await mark.textContent(), /已拨付 ¥[\d,]+\.\d\d · \d{4}-\d\d-\d\d/);
  } finally {
    await browser.close();
  }
});
