// Issue 21 item 1 in headless chromium: the Chinese pages where money is decided — settlement
// batches and their traces, applications, findings, the audit log, a person's settlement
// lines — show no English words in their visible text. Codes (M2.3, token.input), identifiers
// (hex ids, USCCs) and acronyms (OPC, API) are allowed, and so are the product names below.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { dataDirFor, startServer, launch, signIn, draftSettlement } from './support.mjs';

const ctx = dataDirFor('words');
let server;
let browser;

before(async () => {
  server = await startServer(ctx);
  browser = await launch();
  // A draft settlement batch of every clause, so that its page and its lines' traces are read.
  await draftSettlement(browser, server.url);
});
after(async () => {
  await browser?.close();
});

/** Names that are English by nature: the language switch, the policy's own "Skill商店", the Ctrl key, products. */
const ALLOWED = new Set(['English', 'Skill', 'Ctrl', 'OpenAI', 'Anthropic', 'Claude', 'Codex', 'Inspector', 'Chromium', 'Excel']);

/** The English words of a text: runs of letters only, with a lower-case letter, not allowed. */
export function englishWords(text) {
  const words = [];
  for (const token of text.split(/[^A-Za-z0-9._\-]+/)) {
    if (!/^[A-Za-z]{2,}$/.test(token)) continue; // codes and identifiers carry digits or dots
    if (!/[a-z]/.test(token)) continue; // acronyms: OPC, API, GPU, USCC
    if (ALLOWED.has(token)) continue;
    words.push(token);
  }
  return words;
}

test('the counter counts words, not codes', () => {
  assert.deepEqual(englishWords('M2.3-publisher 条款 token.input OPC 01a252ce8a holds: located in'), ['holds', 'located', 'in']);
  assert.deepEqual(englishWords('中文 English · API · 9111010'), []);
});

/** Same-site links on the page matching `pattern`, at most `n`. */
async function linksLike(page, pattern, n) {
  const hrefs = await page.$$eval('main a[href]', (as) => as.map((a) => a.getAttribute('href')));
  return [...new Set(hrefs.filter((h) => pattern.test(h)))].slice(0, n);
}

async function wordsOn(page, path) {
  const r = await page.goto(server.url + path);
  assert.ok(r.status() < 400, `${path} answered ${r.status()}`);
  // Every <details> opened, so traces folded away are read too.
  await page.$$eval('main details', (ds) => ds.forEach((d) => (d.open = true)));
  // Codes shown as code, and records kept in their original English (marked lang="en", such as
  // an audit entry's stored text under its Chinese label), are not prose to translate.
  const text = await page.evaluate(() => {
    const main = document.querySelector('main').cloneNode(true);
    main.querySelectorAll('code, kbd, samp, [lang="en"]').forEach((e) => e.remove());
    document.body.appendChild(main);
    const t = main.innerText;
    main.remove();
    return t;
  });
  return englishWords(text);
}

for (const [who, start, detail] of [
  ['committee', ['/committee/settlements', '/applications', '/integrity', '/audit', '/committee/funds', '/policy'], [/^\/committee\/settlements\/[^/?#]+$/, /^\/applications\/[^/?#]+$/]],
  ['finance', ['/committee/settlements', '/finance/payments', '/applications'], [/^\/committee\/settlements\/[^/?#]+$/, /^\/applications\/[^/?#]+$/]],
  ['auditor', ['/audit', '/integrity', '/committee/settlements'], [/^\/committee\/settlements\/[^/?#]+$/]],
  ['opc', ['/my/settlements', '/applications', '/my/bills', '/workbench'], [/^\/applications\/[^/?#]+$/, /^\/my\/bills\/[^/?#]+$/]],
  ['agency', ['/applications'], [/^\/applications\/[^/?#]+$/]],
]) {
  test(`${who}: no English words on the Chinese decision pages`, async () => {
    const page = await signIn(browser, server.url, who);
    const found = [];
    const visited = [];
    for (const path of start) {
      for (const w of await wordsOn(page, path)) found.push(`${path}: ${w}`);
      visited.push(path);
      await page.goto(server.url + path);
      for (const pattern of detail) {
        for (const href of await linksLike(page, pattern, 2)) {
          if (visited.includes(href)) continue;
          visited.push(href);
          for (const w of await wordsOn(page, href)) found.push(`${href}: ${w}`);
        }
      }
    }
    assert.ok(visited.length > start.length, `${who} opened no detail page (${visited.join(', ')})`);
    assert.deepEqual([...new Set(found)], [], `${who} reads English on ${visited.length} pages`);
    await page.context().close();
  });
}
