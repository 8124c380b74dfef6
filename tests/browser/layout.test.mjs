// Issue 21 items 2 and 3 in headless chromium: every demo role lands on its workbench, and at
// 390, 1366 and 1920 px wide no page its menus lead to scrolls sideways and no menu entry is
// out of reach (on phones behind the 菜单 toggle, elsewhere in its menu's drop-down).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { dataDirFor, startServer, launch, signIn } from './support.mjs';

const ctx = dataDirFor('layout');
let server;
let browser;

before(async () => {
  server = await startServer(ctx);
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const ROLES = ['opc', 'enterprise', 'operator', 'platform', 'specialist', 'committee', 'agency', 'finance', 'auditor'];
const WIDTHS = [390, 1366, 1920];

/** How far the page scrolls sideways (0 when it does not). */
async function sideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** Opens the phone menu if it is shut; returns the menus' summaries. */
async function openMenu(page) {
  const toggle = page.locator('label.nav-toggle-label');
  if (await toggle.isVisible()) {
    if (!(await page.locator('#nav-toggle').isChecked())) await toggle.click();
  }
  return page.locator('.site-nav details > summary');
}

/** Every entry of every menu, opened one after the other: each visible and inside the window. */
async function everyEntryReachable(page, width, who) {
  const summaries = await openMenu(page);
  const n = await summaries.count();
  assert.ok(n >= 3, `${who} at ${width}px has ${n} menus`);
  const hrefs = new Set();
  for (let i = 0; i < n; i++) {
    const summary = summaries.nth(i);
    await summary.click();
    const details = page.locator('.site-nav details').nth(i);
    assert.equal(await details.getAttribute('open'), '', `${who} at ${width}px: menu ${i} did not open`);
    const links = details.locator('a');
    const m = await links.count();
    assert.ok(m >= 1);
    for (let j = 0; j < m; j++) {
      const link = links.nth(j);
      assert.ok(await link.isVisible(), `${who} at ${width}px: ${await link.textContent()} is hidden`);
      const box = await link.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= width + 1,
        `${who} at ${width}px: ${await link.textContent()} is outside the window (${JSON.stringify(box)})`);
      hrefs.add(await link.getAttribute('href'));
    }
    assert.equal(await sideways(page), 0, `${who} at ${width}px: an open menu makes the page scroll sideways`);
    await summary.click();
  }
  return [...hrefs];
}

for (const who of ROLES) {
  test(`${who}: a workbench, menus that fit and pages that do not scroll sideways`, async () => {
    const page = await signIn(browser, server.url, who);
    assert.match(new URL(page.url()).pathname, /^\/workbench$/, `${who} landed on ${page.url()}`);
    assert.equal(await page.locator('h1').first().textContent().then((t) => t.includes('工作台')), true);
    assert.ok(await page.locator('#todos li').count() >= 1, `${who}'s workbench lists no to-do`);
    let hrefs = [];
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(server.url + '/workbench');
      assert.equal(await sideways(page), 0, `${who}: /workbench scrolls sideways at ${width}px`);
      const found = await everyEntryReachable(page, width, who);
      if (hrefs.length === 0) hrefs = found;
      assert.deepEqual([...found].sort(), [...hrefs].sort(), `${who}: the menus differ at ${width}px`);
    }
    // Every page the menus lead to, at the phone's and the laptop's width.
    const wide = [];
    for (const width of [390, 1366]) {
      await page.setViewportSize({ width, height: 900 });
      for (const href of hrefs) {
        const r = await page.goto(server.url + href);
        assert.ok(r.status() < 400, `${who}: ${href} answered ${r.status()}`);
        const d = await sideways(page);
        if (d > 0) wide.push(`${href} at ${width}px by ${d}px`);
      }
    }
    assert.deepEqual(wide, [], `${who}: pages scroll sideways`);
    await page.context().close();
  });
}

test('a visitor: the public menu fits on a phone', async () => {
  const page = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  await page.goto(server.url + '/');
  assert.equal(await sideways(page), 0);
  await page.locator('label.nav-toggle-label').click();
  for (const name of ['首页', '注册OPC', '登录']) {
    const link = page.locator('.site-nav a', { hasText: name }).first();
    assert.ok(await link.isVisible(), `${name} is hidden`);
  }
  await page.context().close();
});
