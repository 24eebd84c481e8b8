// Lighthouse (npm `lighthouse`, driving Debian's chromium through
// puppeteer-core) on the web app's pages: accessibility and best
// practices at 95 or more on Chat, Account, Keys and the admin's
// Overview, Users and Usage, signed in as a person and as the admin.
// SCORES=1 prints the scores (README "Web app" shows them).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import puppeteer from 'puppeteer-core';
import { startFlow } from 'lighthouse';
import { startGateway } from '../../tests/clients/gateway.mjs';

const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium';
const ADMIN = 'adm-lighthouse-token-0123456789';
// Each page, and what shows it is that page (not a sign-in form).
const PAGES = [
  ['Chat', '#/chat', 'textarea[aria-label="Message"]'], ['Account', '#/account', 'section[aria-label="Usage by day"]'],
  ['Keys', '#/keys', 'table[aria-label="Keys"]'], ['Overview', '#/admin', 'table[aria-label="Spend by model"]'],
  ['Users', '#/admin/users', 'table[aria-label="Users"]'], ['Usage', '#/admin/usage', 'table[aria-label="Usage by user"]'],
];
let gate, browser;

before(async () => {
  gate = await startGateway(`admin:\n  token: ${ADMIN}\nupstreams:\n  - name: echo\n    kind: echo\n    models: [gpt-4o, gpt-4o-mini]\n`,
    (run) => JSON.parse(run('user', 'add', 'alice', '--request-limit', '100', '--format', 'json')).key);
  browser = await puppeteer.launch({ executablePath: BROWSER, args: ['--no-sandbox'], headless: true });
});

after(async () => {
  await browser?.close();
  gate?.stop();
});

test('every page scores 95 or more for accessibility and best practices', async () => {
  // The browser's own first tab: a background tab paints nothing.
  const [page] = await browser.pages();
  // Signed in as alice (her key) and as the admin (this tab's token).
  await page.goto(`${gate.base}/`);
  await page.evaluate((key, admin) => {
    localStorage.setItem('chatgate.key', key);
    sessionStorage.setItem('chatgate.admin', admin);
  }, gate.prepared, ADMIN);
  // A conversation with a reply, so the chat page shows its controls.
  await page.goto(`${gate.base}/#/chat`);
  await page.waitForSelector('textarea[aria-label="Message"]');
  await page.type('textarea[aria-label="Message"]', 'Some **Markdown** and `code`.');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => [...document.querySelectorAll('button')].some((b) => b.textContent === 'Regenerate'));
  const flow = await startFlow(page, {
    config: {
      extends: 'lighthouse:default',
      settings: { onlyCategories: ['accessibility', 'best-practices'], disableStorageReset: true, formFactor: 'desktop', screenEmulation: { disabled: true } },
    },
  });
  for (const [name, hash, shown] of PAGES) {
    // A query makes each a full load (a new hash alone would not paint).
    await flow.navigate(`${gate.base}/?page=${encodeURIComponent(name)}${hash}`, { name });
    assert.ok(await page.$(shown), `${name} did not show ${shown}`);
  }
  const result = await flow.createFlowResult();
  const scores = result.steps.map((s) => ({
    page: s.name,
    accessibility: Math.round(s.lhr.categories.accessibility.score * 100),
    best: Math.round(s.lhr.categories['best-practices'].score * 100),
    error: s.lhr.runtimeError?.code,
    failed: Object.values(s.lhr.audits).filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode === 'binary').map((a) => a.id),
  }));
  if (process.env.SCORES) console.table(scores);
  for (const s of scores) {
    assert.ok(s.accessibility >= 95 && s.best >= 95, `${s.page}: accessibility ${s.accessibility}, best practices ${s.best} (${s.failed.join(', ')})`);
  }
  assert.deepEqual(scores.map((s) => s.page), PAGES.map(([n]) => n));
});
