// The gateway console (issue 21 item 5, M2.2) in a real headless chromium on the demo data, in
// Chinese: the demo OPC creates an API key on /my/keys, opens /gateway, finds model demo-chat of
// the demo operator's built-in channel with its list and OPC prices in yuan, pastes the key into
// the playground and sends a message; the answer, its token counts and its status appear, with
// no script refused by the Content Security Policy. A wrong key gets the catalog's Chinese
// message. After a reload the request log and the key's cost chart show the call.
// OPCHUB_BIN names the built binary; CHROMIUM the browser (default /usr/bin/chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataDirFor, launch, signIn, startServer } from './support.mjs';

const server = dataDirFor('gateway');

async function submit(page, selector) {
  await Promise.all([page.waitForLoadState('load'), page.click(selector)]);
}

test('the demo OPC calls demo-chat from the console playground with its new key', { timeout: 180_000 }, async () => {
  const { url } = await startServer(server);
  const browser = await launch();
  try {
    const page = await signIn(browser, url, 'opc');
    const refused = [];
    page.on('console', (m) => { if (m.type() === 'error') refused.push(m.text()); });
    page.on('pageerror', (e) => refused.push(String(e)));

    // A key, shown once.
    await page.goto(url + '/my/keys');
    await page.fill('#name', '控制台体验');
    await submit(page, '#key-form button[type=submit]');
    const key = (await page.textContent('#new-secret')).trim();
    assert.match(key, /^opk_/);

    // The model list: the demo channel's model, its operator's communities, prices in yuan.
    await page.goto(url + '/gateway');
    const row = page.locator('#models tr[data-model="demo-chat"]');
    assert.equal(await row.count(), 1, await page.textContent('main'));
    assert.match(await row.locator('.operator').textContent(), /OPC/);
    const cell = async (c) => (await row.locator('.' + c).textContent()).trim();
    assert.deepEqual(
      [await cell('list-input'), await cell('opc-input'), await cell('list-output'), await cell('opc-output')],
      ['¥4.00', '¥2.00', '¥12.00', '¥6.00'],
    );
    assert.match(await page.textContent('#base-url'), new RegExp('^' + url.replace(/[.]/g, '\\.') + '/v1$'));

    // The playground: the reply quotes the message, with its tokens and status.
    const message = '你好，演示模型！';
    await page.selectOption('#pg-model', 'demo-chat');
    await page.fill('#pg-key', key);
    await page.fill('#pg-message', message);
    await page.click('#pg-send');
    await page.waitForFunction(() => document.getElementById('pg-reply').textContent.length > 0, null, { timeout: 20_000 });
    const reply = await page.textContent('#pg-reply');
    assert.ok(reply.includes(`「${message}」`), reply);
    assert.equal((await page.textContent('#pg-prompt-tokens')).trim(), String([...message].length));
    assert.equal((await page.textContent('#pg-completion-tokens')).trim(), String([...reply].length));
    assert.equal(
      (await page.textContent('#pg-total-tokens')).trim(),
      String([...message].length + [...reply].length),
    );
    assert.match(await page.textContent('#pg-status'), /^调用成功（HTTP 200），请求编号 \S+。$/);
    assert.ok(!(await page.isVisible('#pg-error')));

    // A wrong key: the catalog's message, in Chinese; the key field kept as typed.
    await page.fill('#pg-key', 'opk_not-a-real-key');
    await page.click('#pg-send');
    await page.waitForSelector('#pg-error:not([hidden])', { timeout: 20_000 });
    assert.match(await page.textContent('#pg-error'), /调用失败（HTTP 401）：API密钥无效、已吊销或已过期。/);

    // After a reload the call is in the key's request log and chart.
    // Metering is written off the request's path (background commits): on a busy machine the
    // row may take a moment, so the page is reloaded until it shows (at most 15 s).
    const card = page.locator('article.card', { hasText: '控制台体验' });
    const ok = card.locator('table.requests tr[data-outcome="ok"]');
    for (let i = 0; i < 30; i++) {
      await page.reload();
      if ((await ok.count()) > 0) break;
      await page.waitForTimeout(500);
    }
    assert.equal(await ok.count(), 1);
    assert.match(await ok.first().textContent(), /demo-chat/);
    assert.match(await ok.first().locator('.latency').textContent(), /^\d[\d,]* ms$/);
    assert.equal(await card.locator('.key-chart rect.bar').count(), 1, 'a bar for today');
    // The 401 of the wrong key is the browser's own console note; nothing else was refused.
    assert.deepEqual(refused.filter((t) => !/401/.test(t)), []);
  } finally {
    await browser.close();
  }
});
