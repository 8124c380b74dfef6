// The demand board (M2.4) in a real headless chromium on the demo data: the demo company
// publishes a demand with an attachment (a negative budget is explained first), the demo OPC proposes, the
// company accepts and records a payment, the OPC confirms it, and the company's confirmed
// total for the year grows by it.
// Run by .ci/run: OPCHUB_BIN names the built binary; CHROMIUM the browser (default /usr/bin/chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataDirFor, launch, signIn, startServer } from './support.mjs';

const server = dataDirFor('demand');

test('publish → propose → accept → pay → confirm on the demand board', { timeout: 180_000 }, async () => {
  const { url, child } = await startServer(server);
  const browser = await launch();
  try {
    const company = await signIn(browser, url, 'enterprise');
    const opc = await signIn(browser, url, 'opc');

    // The demo company already has a completed cooperation; remember its confirmed total.
    await company.goto(url + '/demands/mine');
    const before = Number((await company.textContent('#confirmed-total')).replace(/[^\d]/g, ''));

    // Publish: a negative budget is explained next to the field, then the demand goes out.
    await company.goto(url + '/demands/new');
    await company.fill('#title', '浏览器测试：合同审查插件');
    await company.fill('#description', '在合同管理系统中加入条款风险审查，标出不利条款并给出修改建议。');
    await company.selectOption('#category', 'vertical_plugin');
    await company.fill('#tags', '法律，合同审查');
    await company.fill('#budget_min', '-1');
    await company.fill('#budget_max', '20000');
    await company.fill('#deadline', '2999-12-31');
    await Promise.all([company.waitForLoadState('load'), company.click('#publish-demand')]);
    assert.match(await company.textContent('#error-budget_min_fen'), /负数/);
    await company.fill('#budget_min', '5000');
    // A file chosen in the form's file input is uploaded with the demand (multipart form).
    await company.setInputFiles('#attachments', {
      name: '条款清单.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('需要审查的条款：违约责任、知识产权、保密。\n'),
    });
    await Promise.all([company.waitForURL(/\/demands\/[0-9a-f]{32}$/), company.click('#publish-demand')]);
    const demandUrl = company.url();
    assert.match(await company.textContent('#demand-status'), /开放中/);
    assert.match(await company.textContent('ul#attachments'), /条款清单\.txt/);

    // The OPC proposes.
    await opc.goto(demandUrl);
    await opc.fill('#price', '15000');
    await opc.fill('#timeline_days', '10');
    await opc.fill('#message', '做过合同审查插件，十天交付。');
    await Promise.all([opc.waitForLoadState('load'), opc.click('#submit-proposal')]);
    assert.match(await opc.textContent('#my-proposal-status'), /已提交/);

    // The company accepts and records a payment.
    await company.goto(demandUrl);
    await Promise.all([company.waitForURL(/\/cooperations\/[0-9a-f]{32}$/), company.click('.accept-proposal')]);
    const coopUrl = company.url();
    await company.fill('#amount', '5000');
    await company.fill('#invoice_number', 'BROWSER-0001');
    await Promise.all([company.waitForLoadState('load'), company.click('#record-payment')]);
    assert.match(await company.textContent('.payment-status'), /待确认/);

    // The OPC confirms it: confirmed, with its ledger leaf.
    await opc.goto(coopUrl);
    await Promise.all([opc.waitForLoadState('load'), opc.click('.confirm-payment')]);
    assert.match(await opc.textContent('.payment-status'), /已确认/);
    assert.match(await opc.textContent('#confirmed'), /5,000\.00/);

    // The company's confirmed total for the year grew by ¥5,000.00.
    await company.goto(url + '/demands/mine');
    const afterTotal = Number((await company.textContent('#confirmed-total')).replace(/[^\d]/g, ''));
    assert.equal(afterTotal - before, 500000, 'the confirmed total grew by 5,000.00 yuan (in fen digits)');
  } finally {
    await browser.close();
    child.kill('SIGTERM');
  }
});
