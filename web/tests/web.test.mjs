// The web app in a real browser: Debian's chromium, headless, driven by
// playwright-core, against the built binary (`serve --demo`: SQLite file,
// the echo upstream) with an admin token. Elements are found by their
// accessible names (SPEC §8). Run by ./test.sh after `cargo test`.
// SCREENSHOTS=1 writes docs/web-*.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { pacedUpstream, root, startGateway } from '../../tests/clients/gateway.mjs';

const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium';
const ADMIN = 'adm-web-test-token';
let gate, cli, browser, base, key, limitedKey, slow;

before(async () => {
  // The `slow` model streams a chunk every 60 ms (the echo upstream
  // answers at once), so that progressive rendering and Stop can be seen.
  slow = await pacedUpstream({ count: 20, everyMs: 60, piece: (i) => `word${i} ` });
  gate = await startGateway(`admin:\n  token: ${ADMIN}\nweb:\n  help_link: https://help.example.test/quota\n`
    + `upstreams:\n  - name: slow\n    kind: openai\n    base_url: http://127.0.0.1:${slow.address().port}/v1\n`
    + `    api_keys: [sk-slow-upstream]\n    models: [slow]\n  - name: echo\n    kind: echo\n    models: [gpt-4o, gpt-4o-mini]\n`
    + 'prices:\n  gpt-4o: { input: 2.5, output: 10 }\n',
  (run) => [
    JSON.parse(run('user', 'add', 'alice', '--format', 'json')).key,
    JSON.parse(run('user', 'add', 'carol', '--request-limit', '1', '--format', 'json')).key,
  ]);
  ({ base, cli } = gate);
  [key, limitedKey] = gate.prepared;
  browser = await chromium.launch({ executablePath: BROWSER, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  gate?.stop();
  slow?.close();
});

/// A fresh page that fails the test on any request to another origin.
async function page(viewport = { width: 1200, height: 900 }, colorScheme = 'light') {
  const context = await browser.newContext({ viewport, colorScheme });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const p = await context.newPage();
  p.foreign = [];
  p.on('request', (r) => { const u = r.url(); if (!u.startsWith(base) && !u.startsWith('blob:') && !u.startsWith('data:')) p.foreign.push(u); });
  p.errors = [];
  p.on('pageerror', (e) => p.errors.push(String(e)));
  return p;
}

async function signIn(p, k = key) {
  await p.goto(`${base}/`);
  await p.getByRole('textbox', { name: 'API key' }).fill(k);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('combobox', { name: 'Model' }).waitFor();
}

/// docs/web-NAME.png and docs/web-NAME-dark.png, with SCREENSHOTS=1.
async function shot(p, name) {
  if (!process.env.SCREENSHOTS) return;
  await p.screenshot({ path: join(root, 'docs', `web-${name}.png`) });
  await p.emulateMedia({ colorScheme: 'dark' });
  await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
  await p.screenshot({ path: join(root, 'docs', `web-${name}-dark.png`) });
  await p.emulateMedia({ colorScheme: 'light' });
}

test('the page is served with its security headers and compressed', async () => {
  const res = await fetch(`${base}/`, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(res.status, 200);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|https?:/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  const html = await res.text();
  const js = html.match(/src="(\/assets\/[0-9a-f]+\/app\.js)"/)[1];
  const asset = await fetch(base + js, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.match(asset.headers.get('content-type'), /^text\/javascript/);
  assert.match(asset.headers.get('cache-control'), /immutable/);
  assert.equal(asset.headers.get('content-encoding'), 'gzip');
});

test('the icon is served, so no browser logs a 404', async () => {
  const r = await fetch(`${base}/favicon.ico`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'image/svg+xml');
});

test('the page follows the system: light or dark', async () => {
  const luminance = async (scheme) => {
    const context = await browser.newContext({ colorScheme: scheme });
    const p = await context.newPage();
    await p.goto(`${base}/`);
    await p.getByRole('textbox', { name: 'API key' }).waitFor();
    const [bg, fg] = await p.evaluate(() => {
      const s = getComputedStyle(document.body);
      return [s.backgroundColor, s.color];
    });
    await context.close();
    const l = (c) => { const [r, g, b] = c.match(/\d+/g).map(Number); return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; };
    return [l(bg), l(fg)];
  };
  const [lightBg, lightFg] = await luminance('light');
  const [darkBg, darkFg] = await luminance('dark');
  assert.ok(lightBg > 0.9 && lightFg < 0.3, `light: ${lightBg} on ${lightFg}`);
  assert.ok(darkBg < 0.15 && darkFg > 0.8, `dark: ${darkBg} on ${darkFg}`);
});

test('a page still loading does not draw over the one the person moved to', async () => {
  const p = await page();
  await signIn(p);
  // The chat waits for its models; meanwhile the person opens Admin.
  let release;
  const held = new Promise((ok) => { release = ok; });
  await p.route('**/v1/models', async (r) => { await held; await r.continue(); });
  await p.reload();
  const models = p.waitForResponse('**/v1/models');
  await p.getByRole('link', { name: 'Admin' }).click();
  await p.getByRole('textbox', { name: 'Admin token' }).waitFor();
  release();
  await (await models).finished();
  // The chat page's data has arrived and been handled; the admin page stays.
  await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
  assert.equal(await p.getByRole('textbox', { name: 'Admin token' }).count(), 1);
  assert.equal(await p.getByRole('combobox', { name: 'Model' }).count(), 0);
  await p.context().close();
});

test('a refused key shows the gateway message; a good one opens the chat', async () => {
  const p = await page();
  await p.goto(`${base}/`);
  await p.getByRole('textbox', { name: 'API key' }).fill('sk-not-a-real-key-000000000000');
  await p.getByRole('button', { name: 'Sign in' }).click();
  const alert = p.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /Incorrect API key/);
  assert.equal(await alert.getByRole('link').getAttribute('href'), 'https://help.example.test/quota');
  await signIn(p);
  assert.ok((await p.getByRole('combobox', { name: 'Model' }).locator('option').count()) > 0);
  assert.deepEqual(p.foreign, []);
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('a reply streams in, renders Markdown, and keeps no HTML of its own', async () => {
  const p = await page();
  await signIn(p);
  const hostile = '# Title\n\n```\ncode here\n```\n\n<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> [click](javascript:window.pwned=3)';
  await p.getByRole('textbox', { name: 'Message' }).fill(hostile);
  // Watch the reply grow chunk by chunk.
  await p.evaluate(() => {
    window.lengths = [];
    new MutationObserver(() => {
      const a = [...document.querySelectorAll('article[aria-label="Assistant"]')].pop();
      if (a) window.lengths.push(a.textContent.length);
    }).observe(document.getElementById('main'), { subtree: true, childList: true, characterData: true });
  });
  await p.getByRole('button', { name: 'Send' }).click();
  const reply = p.getByRole('article', { name: 'Assistant' }).last();
  await reply.locator('pre').waitFor();
  await p.waitForFunction(() => !document.querySelector('article[aria-busy]'));

  assert.equal(await reply.locator('h1').textContent(), 'Title');
  assert.match(await reply.locator('pre').textContent(), /code here/);
  assert.equal(await reply.locator('img, script').count(), 0);
  assert.equal(await reply.locator('a[href^="javascript"]').count(), 0);
  assert.equal(await p.evaluate(() => window.pwned), undefined);
  assert.deepEqual(p.foreign, []);
  await p.context().close();
});

test('code is highlighted; a reply is copied and regenerated, the last message edited and resent', async () => {
  const p = await page();
  await signIn(p);
  await p.getByRole('button', { name: 'New chat' }).click();
  const box = p.getByRole('textbox', { name: 'Message' });
  await box.fill('Look:\n\n```js\nconst answer = 42;\n```');
  await p.getByRole('button', { name: 'Send' }).click();
  let reply = p.getByRole('article', { name: 'Assistant' }).last();
  await reply.getByRole('button', { name: 'Regenerate' }).waitFor();
  // Highlighted by its language: the keyword is marked up, the text intact.
  assert.equal(await reply.locator('pre code.language-js .hljs-keyword').first().textContent(), 'const');
  assert.match(await reply.locator('pre').textContent(), /const answer = 42;/);
  // Its tokens, as the gateway counted them, and their cost at its prices.
  assert.match(await reply.textContent(), /\d+ \+ \d+ tokens · \$0\.\d{4}/);

  await reply.getByRole('button', { name: 'Copy', exact: true }).click();
  const copied = await p.evaluate(() => navigator.clipboard.readText());
  assert.match(copied, /^Look:[\s\S]*```js\nconst answer = 42;\n```/);
  await shot(p, 'chat');

  const requests = () => JSON.parse(cli('usage', 'report', '--period', 'today', '--user', 'alice', '--format', 'json'))
    .reduce((n, r) => n + r.requests, 0);
  const before = requests();
  await reply.getByRole('button', { name: 'Regenerate' }).click();
  await p.waitForFunction(() => document.querySelectorAll('article[aria-label="Assistant"]').length === 1
    && !document.querySelector('article[aria-busy]'));
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) { // usage is written in batches, off the request
    await new Promise((ok) => setTimeout(ok, 100));
    after = requests();
  }
  assert.equal(after, before + 1, 'Regenerate asked the gateway again');
  assert.equal(await p.getByRole('article', { name: 'You' }).count(), 1, 'and kept one question');

  // Edit: the last question goes back to the box, with its reply gone.
  await p.getByRole('article', { name: 'You' }).getByRole('button', { name: 'Edit' }).click();
  assert.match(await box.inputValue(), /const answer = 42;/);
  assert.equal(await p.getByRole('article').count(), 0);
  await box.fill('edited, then sent');
  await box.press('Enter');
  reply = p.getByRole('article', { name: 'Assistant' }).last();
  await reply.getByText('edited, then sent').waitFor();
  assert.equal(await p.getByRole('article', { name: 'You' }).count(), 1);
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('an image is attached, sent as a content part and shown; a model without vision cannot take one', async () => {
  const p = await page();
  await signIn(p);
  await p.getByRole('button', { name: 'New chat' }).click();
  await p.getByRole('combobox', { name: 'Model' }).selectOption('gpt-4o');
  const sent = [];
  p.on('request', (r) => { if (r.url().endsWith('/v1/chat/completions')) sent.push(JSON.parse(r.postData())); });
  // A 1x1 PNG, through the file picker the button opens.
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
  const chooser = p.waitForEvent('filechooser');
  await p.getByRole('button', { name: 'Attach image' }).click();
  await (await chooser).setFiles({ name: 'dot.png', mimeType: 'image/png', buffer: png });
  await p.getByRole('img', { name: 'Image 1 to send' }).waitFor();
  await p.getByRole('textbox', { name: 'Message' }).fill('what is this?');
  await p.getByRole('button', { name: 'Send' }).click();
  await p.getByRole('article', { name: 'Assistant' }).last().getByRole('button', { name: 'Regenerate' }).waitFor();
  const parts = sent.at(-1).messages.at(-1).content;
  assert.deepEqual(parts[0], { type: 'text', text: 'what is this?' });
  assert.equal(parts[1].type, 'image_url');
  assert.equal(parts[1].image_url.url, `data:image/png;base64,${png.toString('base64')}`);
  await p.getByRole('article', { name: 'You' }).last().getByRole('img', { name: 'Attached image 1' }).waitFor();
  assert.equal(await p.getByRole('list', { name: 'Attached images' }).getByRole('img').count(), 0, 'sent, so no longer waiting');
  // A model not known to take images.
  await p.getByRole('combobox', { name: 'Model' }).selectOption('slow');
  assert.equal(await p.getByRole('button', { name: 'Attach image' }).isDisabled(), true);
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('a slow stream is shown as it arrives, and Stop ends it', async () => {
  const p = await page();
  await signIn(p);
  await p.getByRole('combobox', { name: 'Model' }).selectOption('slow');
  await p.getByRole('textbox', { name: 'Message' }).fill('go slowly');
  await p.getByRole('button', { name: 'Send' }).click();
  const reply = p.getByRole('article', { name: 'Assistant' }).last();
  await reply.getByText('word2').waitFor();
  assert.doesNotMatch(await reply.textContent(), /word19/, 'shown before the stream ended');
  await p.getByRole('button', { name: 'Stop' }).click();
  await p.waitForFunction(() => !document.querySelector('article[aria-busy]'));
  await p.getByRole('button', { name: 'Stop' }).waitFor({ state: 'hidden' });
  const text = await reply.textContent();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await reply.textContent(), text, 'nothing arrives after Stop');
  assert.doesNotMatch(text, /word19/);
  await p.context().close();
});

test('conversations survive a reload and each request carries only its own', async () => {
  const p = await page();
  await signIn(p);
  await p.getByRole('button', { name: 'New chat', exact: true }).click();
  await p.getByRole('textbox', { name: 'Message' }).fill('first conversation');
  await p.getByRole('button', { name: 'Send' }).click();
  await p.getByRole('article', { name: 'Assistant' }).last().waitFor();
  await p.waitForFunction(() => !document.querySelector('article[aria-busy]'));
  await p.getByRole('button', { name: 'New chat', exact: true }).click();
  const sent = [];
  p.on('request', (r) => { if (r.url().endsWith('/v1/chat/completions')) sent.push(JSON.parse(r.postData())); });
  await p.getByRole('textbox', { name: 'Message' }).fill('second conversation');
  await p.getByRole('button', { name: 'Send' }).click();
  await p.waitForFunction(() => document.querySelectorAll('article[aria-label="Assistant"]').length === 1
    && !document.querySelector('article[aria-busy]'));
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0].messages.map((m) => m.content), ['second conversation']);
  await p.reload();
  const list = p.getByRole('list', { name: 'Conversations' });
  await list.waitFor();
  await list.getByRole('button', { name: 'first conversation', exact: true }).click();
  assert.equal(await p.getByRole('article', { name: 'You' }).locator('p').textContent(), 'first conversation');
  await p.context().close();
});

test('a refusal shows the gateway message and the help link', async () => {
  const p = await page();
  await signIn(p, limitedKey);
  for (const text of ['one', 'two']) {
    await p.getByRole('textbox', { name: 'Message' }).fill(text);
    await p.getByRole('button', { name: 'Send' }).click();
    await p.waitForFunction(() => !document.querySelector('article[aria-busy]'));
  }
  const alert = p.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /request limit/i);
  assert.equal(await alert.getByRole('link').getAttribute('href'), 'https://help.example.test/quota');
  await p.context().close();
});

test('the account page shows the numbers the database holds', async () => {
  const p = await page();
  await signIn(p);
  await p.getByRole('link', { name: 'Account' }).click();
  const region = p.getByRole('region', { name: 'Usage by day' });
  await region.waitFor();
  await region.locator('canvas').waitFor();
  const today = new Date().toISOString().slice(0, 10);
  const row = region.getByRole('row').filter({ hasText: today });
  const cells = await row.getByRole('cell').allTextContents();
  const report = JSON.parse(cli('usage', 'report', '--period', 'today', '--user', 'alice', '--by', 'day', '--format', 'json'));
  assert.equal(cells[1], report[0].requests.toLocaleString('en-US'));
  assert.equal(cells[2], report[0].total_tokens.toLocaleString('en-US'));
  await shot(p, 'account');
  await p.context().close();
});

test('the admin adds, disables, enables and removes a user, as the CLI then sees', async () => {
  const p = await page();
  const users = await adminSignIn(p);
  await p.getByRole('button', { name: 'Add user' }).click();
  const dialog = p.getByRole('dialog');
  await dialog.getByRole('textbox', { name: 'Name' }).fill('bob');
  await dialog.getByRole('textbox', { name: 'Token limit' }).fill('5000');
  await dialog.getByRole('textbox', { name: 'Budget (USD)' }).fill('12.50');
  await dialog.getByRole('textbox', { name: 'Models' }).fill('gpt-4o, echo*');
  await dialog.getByRole('textbox', { name: 'Note' }).fill('from the console');
  await dialog.getByRole('button', { name: 'Create' }).click();
  const newKey = await p.getByRole('textbox', { name: 'New key' }).inputValue();
  assert.match(newKey, /^sk-/);
  let bob = JSON.parse(cli('user', 'show', 'bob', '--format', 'json'));
  assert.equal(bob.token_limit, 5000);
  assert.equal(bob.budget_usd, 12.5);
  assert.deepEqual(bob.models, ['gpt-4o', 'echo*']);
  assert.equal(bob.note, 'from the console');
  // A running server sees a new key within a second.
  let me;
  for (let i = 0; i < 50 && !me?.name; i++) {
    me = await (await fetch(`${base}/v1/me`, { headers: { Authorization: `Bearer ${newKey}` } })).json();
    if (!me.name) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(me.name, 'bob');
  await shot(p, 'admin-users');
  // Row buttons carry SPEC §8's names; the row tells whose they are.
  const bobRow = users.getByRole('row').filter({ has: p.getByRole('rowheader', { name: 'bob', exact: true }) });
  await bobRow.getByRole('button', { name: 'Disable', exact: true }).click();
  await bobRow.getByRole('button', { name: 'Enable', exact: true }).click();
  await bobRow.getByRole('button', { name: 'Disable', exact: true }).waitFor();
  assert.equal(JSON.parse(cli('user', 'show', 'bob', '--format', 'json')).status, 'active');
  await bobRow.getByRole('button', { name: 'Disable', exact: true }).click();
  await bobRow.getByRole('button', { name: 'Enable', exact: true }).waitFor();
  assert.equal(JSON.parse(cli('user', 'show', 'bob', '--format', 'json')).status, 'disabled');
  await bobRow.getByRole('button', { name: 'Remove', exact: true }).click();
  await p.getByRole('dialog').getByRole('button', { name: 'Remove', exact: true }).click();
  await bobRow.waitFor({ state: 'detached' });
  assert.throws(() => cli('user', 'show', 'bob'));
  await p.getByRole('link', { name: 'Usage' }).click();
  await p.getByRole('table', { name: 'Usage by user' }).waitFor();
  // Which tools spent: the chat page's requests came from a browser.
  const byClient = p.getByRole('table', { name: 'Usage by client' });
  await byClient.getByRole('row').filter({ hasText: 'browser' }).filter({ hasText: '/chat/completions' }).first().waitFor();
  await shot(p, 'admin-usage');
  assert.deepEqual(p.foreign, []);
  await p.context().close();
});

for (const [width, height] of [[390, 844], [1440, 900]]) {
  for (const colorScheme of ['light', 'dark']) {
    test(`at ${width} px, ${colorScheme}: every page fits and every new control is there`, async () => {
      const p = await page({ width, height }, colorScheme);
      const wide = async (what) => {
        const px = await p.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(px <= width, `${what} is ${px}px wide`);
      };
      const inView = async (locator, what) => {
        const box = await locator.boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= width, `${what} is outside the page: ${JSON.stringify(box)}`);
      };
      await signIn(p);
      const dark = await p.evaluate(() => matchMedia('(prefers-color-scheme: dark)').matches);
      assert.equal(dark, colorScheme === 'dark');
      await p.getByRole('button', { name: 'New chat' }).click();
      await p.getByRole('textbox', { name: 'Message' }).fill('```py\nprint("fits")\n```');
      await p.getByRole('button', { name: 'Send' }).click();
      const reply = p.getByRole('article', { name: 'Assistant' }).last();
      await reply.getByRole('button', { name: 'Regenerate' }).waitFor();
      await inView(reply.getByRole('button', { name: 'Regenerate' }), 'Regenerate');
      await inView(reply.getByRole('button', { name: 'Copy', exact: true }), 'Copy');
      await inView(reply.getByRole('button', { name: 'Copy code' }), 'Copy code');
      await inView(p.getByRole('article', { name: 'You' }).last().getByRole('button', { name: 'Edit' }), 'Edit');
      await inView(p.getByRole('button', { name: 'Attach image' }), 'Attach image');
      await wide('chat');
      await p.getByRole('link', { name: 'Account' }).click();
      await p.getByRole('region', { name: 'Usage by day' }).locator('canvas').waitFor();
      await wide('account');
      await p.getByRole('link', { name: 'Keys' }).click();
      await inView(p.getByRole('button', { name: 'New key' }), 'New key');
      await wide('keys');
      await p.goto(`${base}/#/admin`);
      await p.getByRole('textbox', { name: 'Admin token' }).fill(ADMIN);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByRole('table', { name: 'Spend by model' }).waitFor();
      await p.getByRole('img', { name: 'Spend per day this month' }).locator('canvas').waitFor();
      await wide('overview');
      for (const [link, table] of [['Users', 'Users'], ['Usage', 'Usage by user'], ['Teams', 'Teams'], ['Audit', 'Audit']]) {
        await p.getByRole('link', { name: link, exact: true }).click();
        await p.getByRole('table', { name: table }).waitFor();
        await wide(`admin ${link}`);
      }
      assert.deepEqual(p.errors, []);
      await p.context().close();
    });
  }
}

/// Signs in to the console, which opens on its Overview; then its Users.
async function adminSignIn(p) {
  await p.goto(`${base}/#/admin`);
  await p.getByRole('textbox', { name: 'Admin token' }).fill(ADMIN);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('heading', { name: 'Overview' }).waitFor();
  await p.getByRole('link', { name: 'Users' }).click();
  const users = p.getByRole('table', { name: 'Users' });
  await users.waitFor();
  return users;
}

/// Asks `/v1/me` with KEY until it answers STATUS (a running server sees
/// a key change within a second or two); answers the last reply's body.
async function meUntil(k, status) {
  let res;
  for (let i = 0; i < 50; i++) {
    res = await fetch(`${base}/v1/me`, { headers: { Authorization: `Bearer ${k}` } });
    if (res.status === status) return res.json();
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`/v1/me answered ${res.status}, not ${status}`);
}

test('the admin sorts, filters, edits, recharges and rotates, as the CLI then sees', async () => {
  const daveKey = JSON.parse(cli('user', 'add', 'dave', '--token-limit', '100', '--note', 'sorting', '--format', 'json')).key;
  const p = await page();
  const users = await adminSignIn(p);
  const names = () => users.getByRole('rowheader').allTextContents();
  const before = await names();
  assert.deepEqual(before, [...before].sort());
  await users.getByRole('button', { name: 'Name', exact: true }).click();
  assert.deepEqual(await names(), [...before].sort().reverse());
  assert.equal(await users.getByRole('columnheader', { name: 'Name', exact: true }).getAttribute('aria-sort'), 'descending');

  await p.getByRole('searchbox', { name: 'Filter' }).fill('dav');
  assert.deepEqual(await names(), ['dave']);
  const row = users.getByRole('row').filter({ has: p.getByRole('rowheader', { name: 'dave', exact: true }) });

  await row.getByRole('button', { name: 'Edit', exact: true }).click();
  let dialog = p.getByRole('dialog', { name: 'Edit dave' });
  assert.equal(await dialog.getByRole('textbox', { name: 'Token limit' }).inputValue(), '100');
  await dialog.getByRole('textbox', { name: 'Token limit' }).fill('900');
  await dialog.getByRole('textbox', { name: 'RPM' }).fill('30');
  await dialog.getByRole('combobox', { name: 'Period' }).selectOption('month');
  await dialog.getByRole('textbox', { name: 'Token limit' }).press('Enter');
  await dialog.waitFor({ state: 'detached' });
  let dave = JSON.parse(cli('user', 'show', 'dave', '--format', 'json'));
  assert.equal(dave.token_limit, 900);
  assert.equal(dave.rpm, 30);
  assert.equal(dave.limit_period, 'month');
  assert.equal(dave.note, 'sorting', 'a field left alone stays');

  // A bad number is refused in the dialog, which stays open with what was typed.
  await row.getByRole('button', { name: 'Recharge', exact: true }).click();
  dialog = p.getByRole('dialog', { name: 'Recharge dave' });
  await dialog.getByRole('textbox', { name: 'Tokens' }).fill('lots');
  await dialog.getByRole('button', { name: 'Recharge' }).click();
  await dialog.getByRole('alert').waitFor();
  assert.equal(await dialog.getByRole('textbox', { name: 'Tokens' }).inputValue(), 'lots');
  await dialog.getByRole('textbox', { name: 'Tokens' }).fill('100');
  await dialog.getByRole('button', { name: 'Recharge' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.equal(JSON.parse(cli('user', 'show', 'dave', '--format', 'json')).token_limit, 1000);
  // A budget set in Edit, topped up in dollars.
  await row.getByRole('button', { name: 'Edit', exact: true }).click();
  dialog = p.getByRole('dialog', { name: 'Edit dave' });
  await dialog.getByRole('textbox', { name: 'Budget (USD)' }).fill('5');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'detached' });
  await row.getByRole('button', { name: 'Recharge', exact: true }).click();
  dialog = p.getByRole('dialog', { name: 'Recharge dave' });
  await dialog.getByRole('textbox', { name: 'USD' }).fill('2.25');
  await dialog.getByRole('button', { name: 'Recharge' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.equal(JSON.parse(cli('user', 'show', 'dave', '--format', 'json')).budget_usd, 7.25);
  await row.getByRole('cell', { name: '$7.25', exact: true }).waitFor();
  await row.getByRole('cell', { name: '1,000', exact: true }).waitFor();

  await row.getByRole('button', { name: 'Rotate key', exact: true }).click();
  const newKey = await p.getByRole('textbox', { name: 'New key' }).inputValue();
  assert.match(newKey, /^sk-/);
  assert.notEqual(newKey, daveKey);
  await p.getByRole('button', { name: 'Copy' }).click();
  assert.equal(await p.evaluate(() => navigator.clipboard.readText()), newKey);
  assert.equal((await meUntil(newKey, 200)).name, 'dave');
  await meUntil(daveKey, 401);
  assert.deepEqual(p.foreign, []);
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('a person makes and revokes their own keys; the others keep working', async () => {
  const own = JSON.parse(cli('user', 'add', 'erin', '--format', 'json')).key;
  await meUntil(own, 200);
  const p = await page();
  await signIn(p, own);
  await p.getByRole('link', { name: 'Keys' }).click();
  const keys = p.getByRole('table', { name: 'Keys' });
  await keys.getByRole('rowheader', { name: 'default', exact: true }).waitFor();
  await p.getByRole('textbox', { name: 'Label' }).fill('laptop');
  await p.getByRole('button', { name: 'New key' }).click();
  const laptop = await p.getByRole('textbox', { name: 'New key' }).inputValue();
  assert.match(laptop, /^sk-/);
  await p.getByRole('button', { name: 'Copy' }).click();
  assert.equal(await p.evaluate(() => navigator.clipboard.readText()), laptop);
  const laptopRow = keys.getByRole('row').filter({ has: p.getByRole('rowheader', { name: 'laptop', exact: true }) });
  await laptopRow.waitFor();
  assert.deepEqual(JSON.parse(cli('key', 'list', 'erin', '--format', 'json')).map((k) => k.label), ['default', 'laptop']);
  assert.equal((await meUntil(laptop, 200)).name, 'erin');
  // A label taken is refused with the gateway's message.
  await p.getByRole('textbox', { name: 'Label' }).fill('laptop');
  await p.getByRole('button', { name: 'New key' }).click();
  assert.match(await p.getByRole('alert').textContent(), /laptop/);
  await laptopRow.getByRole('button', { name: 'Revoke', exact: true }).click();
  await laptopRow.waitFor({ state: 'detached' });
  await meUntil(laptop, 401);
  assert.equal((await meUntil(own, 200)).name, 'erin');
  await shot(p, 'keys');
  assert.deepEqual(p.foreign, []);
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('the admin adds, edits, recharges and removes a team, and puts a user in it', async () => {
  cli('user', 'add', 'frank', '--format', 'json');
  const p = await page();
  await adminSignIn(p);
  await p.getByRole('link', { name: 'Teams' }).click();
  const teams = p.getByRole('table', { name: 'Teams' });
  await teams.waitFor();
  await p.getByRole('button', { name: 'Add team' }).click();
  let dialog = p.getByRole('dialog', { name: 'Add team' });
  await dialog.getByRole('textbox', { name: 'Name' }).fill('data');
  await dialog.getByRole('textbox', { name: 'Budget (USD)' }).fill('500');
  await dialog.getByRole('combobox', { name: 'Period' }).selectOption('month');
  await dialog.getByRole('textbox', { name: 'Note' }).fill('Data science');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await dialog.waitFor({ state: 'detached' });
  const row = teams.getByRole('row').filter({ has: p.getByRole('rowheader', { name: 'data', exact: true }) });
  await row.getByRole('cell', { name: '$500.00', exact: true }).waitFor();
  let data = JSON.parse(cli('team', 'show', 'data', '--format', 'json'));
  assert.equal(data.budget_usd, 500);
  assert.equal(data.limit_period, 'month');

  await row.getByRole('button', { name: 'Edit', exact: true }).click();
  dialog = p.getByRole('dialog', { name: 'Edit data' });
  await dialog.getByRole('textbox', { name: 'Max parallel' }).fill('4');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'detached' });
  await row.getByRole('button', { name: 'Recharge', exact: true }).click();
  dialog = p.getByRole('dialog', { name: 'Recharge data' });
  await dialog.getByRole('textbox', { name: 'USD' }).fill('100');
  await dialog.getByRole('button', { name: 'Recharge' }).click();
  await dialog.waitFor({ state: 'detached' });
  data = JSON.parse(cli('team', 'show', 'data', '--format', 'json'));
  assert.equal(data.max_parallel, 4);
  assert.equal(data.budget_usd, 600);
  assert.equal(data.note, 'Data science', 'a field left alone stays');

  // frank joins in his Edit dialog; the team then cannot be removed.
  await p.getByRole('link', { name: 'Users' }).click();
  const users = p.getByRole('table', { name: 'Users' });
  const frank = users.getByRole('row').filter({ has: p.getByRole('rowheader', { name: 'frank', exact: true }) });
  await frank.getByRole('button', { name: 'Edit', exact: true }).click();
  dialog = p.getByRole('dialog', { name: 'Edit frank' });
  await dialog.getByRole('combobox', { name: 'Team' }).selectOption('data');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.equal(JSON.parse(cli('user', 'show', 'frank', '--format', 'json')).team, 'data');
  await frank.getByRole('cell', { name: 'data', exact: true }).waitFor();

  await p.getByRole('link', { name: 'Teams' }).click();
  await row.getByRole('button', { name: 'Remove', exact: true }).click();
  dialog = p.getByRole('dialog', { name: 'Remove data?' });
  await dialog.getByRole('button', { name: 'Remove', exact: true }).click();
  assert.match(await dialog.getByRole('alert').textContent(), /frank/);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  cli('user', 'edit', 'frank', '--team', 'none');
  await row.getByRole('button', { name: 'Remove', exact: true }).click();
  await p.getByRole('dialog', { name: 'Remove data?' }).getByRole('button', { name: 'Remove', exact: true }).click();
  await row.waitFor({ state: 'detached' });
  assert.throws(() => cli('team', 'show', 'data'));
  await shot(p, 'admin-teams');

  // Every change above is on the Audit page, newest first, as `audit list` has it.
  await p.getByRole('link', { name: 'Audit' }).click();
  const audit = p.getByRole('table', { name: 'Audit' });
  const teamRows = audit.getByRole('row').filter({ has: p.getByRole('rowheader', { name: 'data', exact: true }) });
  await teamRows.first().waitFor();
  const actions = await teamRows.evaluateAll((rows) => rows.map((r) => r.cells[2].textContent));
  assert.deepEqual(actions, ['team.remove', 'team.recharge', 'team.edit', 'team.add']);
  assert.match(await teamRows.nth(1).textContent(), /admin-token.*budget_usd: 500 → 600/);
  const listed = JSON.parse(cli('audit', 'list', '--target', 'data', '--format', 'json'));
  assert.deepEqual(listed.map((r) => r.action).reverse(), actions);
  await p.getByRole('searchbox', { name: 'Filter' }).fill('frank');
  await audit.getByRole('rowheader', { name: 'data', exact: true }).first().waitFor({ state: 'detached' });
  const frankRows = await audit.getByRole('rowheader').allTextContents();
  assert.ok(frankRows.length >= 3 && frankRows.every((t) => t === 'frank'), frankRows.join());
  await shot(p, 'admin-audit');
  assert.deepEqual(p.foreign, []);
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test("the admin's first page answers who is spending what", async () => {
  // carol has used her one request: the closest to a limit.
  await fetch(`${base}/v1/chat/completions`, {
    method: 'POST', headers: { Authorization: `Bearer ${limitedKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
  });
  const p = await page();
  await p.goto(`${base}/#/admin`);
  await p.getByRole('textbox', { name: 'Admin token' }).fill(ADMIN);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('heading', { name: 'Overview' }).waitFor();
  const report = JSON.parse(cli('usage', 'report', '--period', 'this-month', '--by', 'model', '--format', 'json'));
  const spent = report.reduce((s, r) => s + (r.cost_usd || 0), 0);
  await p.getByText(`$${spent.toFixed(2)}`, { exact: true }).first().waitFor();
  const models = p.getByRole('table', { name: 'Spend by model' });
  for (const r of report) await models.getByRole('rowheader', { name: r.model || '(no model)', exact: true }).waitFor();
  await p.getByRole('table', { name: 'Spend by team' }).waitFor();
  const closest = p.getByRole('table', { name: 'Closest to their limits' });
  const carol = closest.getByRole('row').filter({ has: p.getByRole('rowheader', { name: 'carol', exact: true }) });
  assert.match(await carol.textContent(), /requests.*100%/);
  await p.getByRole('img', { name: 'Spend per day this month' }).waitFor();
  await shot(p, 'admin-overview');
  assert.deepEqual(p.foreign, []);
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('the usage CSV holds what usage report holds', async () => {
  const p = await page();
  await adminSignIn(p);
  await p.getByRole('link', { name: 'Usage' }).click();
  await p.getByRole('table', { name: 'Usage by user' }).waitFor();
  await p.getByRole('combobox', { name: 'Period' }).selectOption('30d');
  const [download] = await Promise.all([
    p.waitForEvent('download'),
    p.getByRole('link', { name: 'Download CSV' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'chatgate-usage-30d.csv');
  const lines = (await (await import('node:fs/promises')).readFile(await download.path(), 'utf8')).trim().split('\n');
  const header = lines[0].split(',');
  assert.deepEqual(header.slice(0, 3), ['user', 'model', 'requests']);
  const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i], v])));
  const report = JSON.parse(cli('usage', 'report', '--period', '30d', '--by', 'user,model', '--format', 'json'));
  assert.ok(report.length > 0);
  assert.equal(rows.length, report.length);
  for (const want of report) {
    const got = rows.find((r) => r.user === want.user && r.model === (want.model ?? ''));
    assert.ok(got, `a row for ${want.user} ${want.model}`);
    assert.equal(Number(got.requests), want.requests);
    assert.equal(Number(got.total_tokens), want.total_tokens);
  }
  await p.context().close();
});

test('a conversation is renamed, and one too long for the model loses its oldest messages', async () => {
  const p = await page();
  await signIn(p);
  // Twelve long messages (about 1,000 tokens each) in a model of unknown
  // context (8,192 tokens, 1,024 kept for the reply).
  const long = Array.from({ length: 12 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `m${i} ${'x'.repeat(4000)}` }));
  await p.evaluate((messages) => {
    const id = crypto.randomUUID();
    localStorage.setItem('chatgate.conversations', JSON.stringify({
      current: id, list: [{ id, title: 'Long one', system: 'Be brief.', model: 'slow', messages }],
    }));
  }, long);
  await p.reload();
  const list = p.getByRole('list', { name: 'Conversations' });
  p.once('dialog', (d) => d.accept('Renamed one'));
  // Rename and Delete are in each conversation's menu.
  await list.locator('summary[aria-label="Actions for Long one"]').click();
  await list.getByRole('button', { name: 'Rename Long one' }).click();
  await list.getByRole('button', { name: 'Renamed one', exact: true }).waitFor();

  assert.equal(await p.getByRole('article').count(), 12);
  const sent = [];
  p.on('request', (r) => { if (r.url().endsWith('/v1/chat/completions')) sent.push(JSON.parse(r.postData())); });
  await p.getByRole('textbox', { name: 'Message' }).fill('latest');
  await p.getByRole('button', { name: 'Send' }).click();
  await p.waitForFunction(() => !document.querySelector('article[aria-busy]'), null, { timeout: 10_000 });
  const messages = sent[0].messages;
  assert.equal(messages[0].content, 'Be brief.', 'the system prompt is kept');
  assert.equal(messages.at(-1).content, 'latest');
  const kept = messages.slice(1, -1).map((m) => m.content.split(' ')[0]);
  assert.deepEqual(kept, ['m5', 'm6', 'm7', 'm8', 'm9', 'm10', 'm11'], 'the newest that fit, in order');
  assert.equal(await p.getByRole('article').count(), 14, 'the page still shows all of them');

  await p.reload();
  await list.getByRole('button', { name: 'Renamed one', exact: true }).waitFor();
  assert.equal(await p.getByRole('article').count(), 14);
  await p.context().close();
});

test('everything can be done with the keyboard alone', async () => {
  const p = await page();
  await p.goto(`${base}/`);
  const focused = () => p.evaluate(() => document.activeElement.getAttribute('aria-label') || document.activeElement.textContent);
  // The sign-in page (drawn once the app knows whether SSO is on) puts
  // the caret in its only box.
  await p.getByRole('textbox', { name: 'API key' }).waitFor();
  assert.equal(await focused(), 'API key');
  await p.keyboard.type(key);
  await p.keyboard.press('Enter');
  await p.getByRole('combobox', { name: 'Model' }).waitFor();
  const tabTo = async (name) => {
    for (let i = 0; i < 30; i++) {
      if (await focused() === name) return;
      await p.keyboard.press('Tab');
    }
    assert.fail(`Tab never reached ${name}`);
  };
  await tabTo('Message');
  await p.keyboard.type('typed, not clicked');
  await p.keyboard.press('Enter');
  await p.getByRole('article', { name: 'Assistant' }).last().getByText('typed, not clicked').waitFor();
  await tabTo('Account');
  await p.keyboard.press('Enter');
  await p.getByRole('region', { name: 'Usage by day' }).waitFor();
  await p.context().close();
});
