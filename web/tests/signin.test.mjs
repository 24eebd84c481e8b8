// Sign-in with an identity provider (SPEC §9) in a real browser, against
// a real OpenID Connect provider: the npm package oidc-provider (a
// certified implementation) on 127.0.0.1, with its development login and
// consent pages. The gateway has no admin token: an admin group's member
// reaches the console by signing in.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { chromium } from 'playwright-core';
import Provider from 'oidc-provider';
import { startGateway } from '../../tests/clients/gateway.mjs';

const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium';
const SECRET = 'oidc-client-secret-for-tests-0123456789';
// Who the provider knows, by the login typed on its page.
const PEOPLE = {
  alice: { email: 'alice@example.test', groups: ['staff'], department: 'data' },
  root: { email: 'root@example.test', groups: ['staff', 'gateway-admins'] },
  dave: { email: 'dave@example.test', groups: ['staff'] },
};
let gate, idp, browser, base;

before(async () => {
  // The provider's port first (the gateway's config names it), the
  // provider itself once the gateway's callback URL is known.
  let handler = (_req, res) => { res.statusCode = 503; res.end(); };
  idp = http.createServer((req, res) => handler(req, res));
  await new Promise((ok) => idp.listen(0, '127.0.0.1', ok));
  const issuer = `http://127.0.0.1:${idp.address().port}`;
  gate = await startGateway(`web:\n  oidc:\n    issuer: ${issuer}\n    client_id: chatgate\n    client_secret: ${SECRET}\n`
    + '    name: Example ID\n    scopes: [openid, email, groups]\n    admin_groups: [gateway-admins]\n    team_claim: department\n'
    + '    defaults:\n      token_limit: 50000\n      models: [gpt-4o-mini]\n'
    + 'upstreams:\n  - name: echo\n    kind: echo\n    models: [gpt-4o, gpt-4o-mini]\n',
  (cli) => {
    cli('team', 'add', 'data');
    cli('user', 'add', 'dave@example.test');
    cli('user', 'disable', 'dave@example.test');
  });
  base = gate.base;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'chatgate', client_secret: SECRET, redirect_uris: [`${base}/auth/callback`],
      grant_types: ['authorization_code'], response_types: ['code'],
    }],
    claims: { openid: ['sub'], email: ['email'], groups: ['groups', 'department'] },
    findAccount: async (_ctx, id) => PEOPLE[id] && ({ accountId: id, claims: async () => ({ sub: id, ...PEOPLE[id] }) }),
    cookies: { keys: ['a-cookie-key-for-the-test-provider'] },
    pkce: { required: () => true },
  });
  handler = provider.callback();
  browser = await chromium.launch({ executablePath: BROWSER, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  gate?.stop();
  idp?.close();
});

async function page() {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const p = await context.newPage();
  p.errors = [];
  p.on('pageerror', (e) => p.errors.push(String(e)));
  return p;
}

/// Through the gateway's button and the provider's pages, as `login`.
async function signInAs(p, login) {
  await p.goto(`${base}/`);
  await p.getByRole('button', { name: 'Sign in with Example ID' }).click();
  await p.waitForURL((u) => u.origin !== base);
  await p.locator('input[name=login]').fill(login);
  await p.locator('input[name=password]').fill('any password');
  await p.getByRole('button', { name: 'Sign-in' }).click();
  // The first time, the provider asks to consent.
  const consent = p.getByRole('button', { name: 'Continue' });
  await Promise.race([p.waitForURL((u) => u.origin === base), consent.waitFor()]);
  if (new URL(p.url()).origin !== base) await consent.click();
  await p.waitForURL((u) => u.origin === base);
}

const audit = (target) => JSON.parse(gate.cli('audit', 'list', '--target', target, '--format', 'json'));

test('a person signs in, is created with the defaults and team, makes a key and uses it, and signs out', async () => {
  const p = await page();
  await signInAs(p, 'alice');
  await p.getByRole('heading', { name: 'Account' }).waitFor();
  await p.getByText('alice@example.test', { exact: true }).waitFor();
  const alice = JSON.parse(gate.cli('user', 'show', 'alice@example.test', '--format', 'json'));
  assert.equal(alice.team, 'data', 'the team the claim names');
  assert.equal(alice.token_limit, 50000);
  assert.deepEqual(alice.models, ['gpt-4o-mini']);
  const made = audit('alice@example.test');
  assert.deepEqual(made.map((r) => [r.actor, r.action]), [['oidc:alice@example.test', 'user.add']]);

  // The session cookie is HttpOnly, SameSite=Lax; the page never sees it.
  const cookie = (await p.context().cookies()).find((c) => c.name === 'chatgate_session');
  assert.ok(cookie.httpOnly && cookie.sameSite === 'Lax', JSON.stringify(cookie));
  assert.equal(await p.evaluate(() => document.cookie.includes('chatgate_session')), false);

  await p.getByRole('link', { name: 'Keys' }).click();
  await p.getByRole('textbox', { name: 'Label' }).fill('laptop');
  await p.getByRole('button', { name: 'New key' }).click();
  const key = await p.getByRole('textbox', { name: 'New key' }).inputValue();
  await p.getByRole('table', { name: 'Keys' }).getByRole('rowheader', { name: 'laptop' }).waitFor();
  let r;
  for (let i = 0; i < 50; i++) { // a running server knows a new key within 2 s
    r = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    if (r.status !== 401) break;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  assert.equal(r.status, 200, await r.text());
  assert.deepEqual(audit('alice@example.test').map((x) => [x.actor, x.action, x.target]).at(-1),
    ['oidc:alice@example.test', 'key.add', 'alice@example.test/laptop']);

  // A change with the cookie but without the page's CSRF token is refused.
  const forged = await p.evaluate(async () => {
    const res = await fetch('/v1/me/keys', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"label":"sneaky"}' });
    return [res.status, (await res.json()).error.code];
  });
  assert.deepEqual(forged, [403, 'csrf_failed']);
  assert.equal(audit('alice@example.test').length, 2, 'the refused change left nothing');
  // Not an admin: the console still asks for the admin token.
  assert.equal(await p.evaluate(async () => (await fetch('/admin/users')).status), 403);

  await p.getByRole('button', { name: 'Sign out' }).click();
  await p.getByRole('button', { name: 'Sign in with Example ID' }).waitFor();
  const replayed = await fetch(`${base}/v1/me`, { headers: { Cookie: `chatgate_session=${cookie.value}` } });
  assert.equal(replayed.status, 401, 'the session ended on the server, not only in the browser');
  assert.deepEqual(p.errors, []);
  await p.context().close();
});

test('an admin group member reaches the console without the admin token; a disabled user is refused', async () => {
  const p = await page();
  await signInAs(p, 'root');
  await p.getByRole('heading', { name: 'Overview' }).waitFor();
  await p.getByRole('link', { name: 'Users' }).click();
  const users = p.getByRole('table', { name: 'Users' });
  await users.waitFor();
  const dave = users.getByRole('row').filter({ has: p.getByRole('rowheader', { name: 'dave@example.test', exact: true }) });
  await dave.getByRole('button', { name: 'Enable', exact: true }).click();
  await dave.getByRole('button', { name: 'Disable', exact: true }).waitFor();
  assert.deepEqual(audit('dave@example.test').map((r) => [r.actor, r.action]).at(-1), ['oidc:root@example.test', 'user.enable']);
  await dave.getByRole('button', { name: 'Disable', exact: true }).click();
  await dave.getByRole('button', { name: 'Enable', exact: true }).waitFor();
  await p.getByRole('link', { name: 'Audit' }).click();
  await p.getByRole('table', { name: 'Audit' }).getByRole('cell', { name: 'oidc:root@example.test' }).first().waitFor();

  const q = await page();
  await signInAs(q, 'dave');
  assert.match(await q.getByRole('alert').textContent(), /dave@example\.test.*disabled/);
  await q.getByRole('button', { name: 'Sign in with Example ID' }).waitFor();
  assert.equal(await q.evaluate(async () => (await fetch('/v1/me')).status), 401);
  assert.deepEqual([...p.errors, ...q.errors], []);
  await p.context().close();
  await q.context().close();
});

test('a forged state is refused, and a disabled user loses their session at once', async () => {
  const p = await page();
  await p.goto(`${base}/auth/callback?code=stolen&state=forged`);
  assert.match(await p.getByRole('alert').textContent(), /state/);
  assert.equal(new URL(p.url()).search, '', 'the reason leaves the address bar');

  await signInAs(p, 'alice');
  await p.getByRole('heading', { name: 'Account' }).waitFor();
  gate.cli('user', 'disable', 'alice@example.test');
  assert.equal(await p.evaluate(async () => (await fetch('/v1/me')).status), 401);
  gate.cli('user', 'enable', 'alice@example.test');
  assert.deepEqual(p.errors, []);
  await p.context().close();
});
