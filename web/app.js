// The app's shell: sign-in, the navigation, and which page `#/…` shows.

import { call, session } from './api.js';
import { accountPage } from './account.js';
import { adminAudit } from './audit.js';
import { adminUsage, adminUsers } from './admin.js';
import { adminOverview } from './overview.js';
import { chatPage } from './chat.js';
import { keysPage } from './keys.js';
import { adminTeams } from './teams.js';
import { alertBox, beginPage, field, h, mount, mounter } from './dom.js';

/// "Sign in with <name>", when the gateway has an identity provider, and
/// why the last sign-in was refused (it comes back as `?sign_in_error=`).
function ssoPart() {
  const parts = [];
  const params = new URLSearchParams(location.search);
  const error = params.get('sign_in_error');
  if (error) {
    parts.push(alertBox(error));
    history.replaceState(null, '', location.pathname + location.hash);
  }
  const { sso } = session.sso();
  if (sso) parts.push(h('button', { type: 'button', text: `Sign in with ${sso}`, onclick: () => location.assign('/auth/login') }));
  return parts;
}

function signIn({ label, title, check, store }) {
  const input = h('input', { type: 'password', 'aria-label': label, autocomplete: 'off', required: true });
  const problem = h('div');
  const form = h('form', {
    class: 'signin',
    onsubmit: async (ev) => {
      ev.preventDefault();
      problem.replaceChildren();
      const value = input.value.trim();
      try {
        await check(value);
        store(value);
        route();
      } catch (e) {
        problem.replaceChildren(alertBox(e.message));
      }
    },
  }, h('h2', { text: title }), ...ssoPart(), field(label, input), h('button', { type: 'submit', text: 'Sign in' }), problem);
  mount(form);
  input.focus();
}

function nav() {
  const links = [];
  const person = session.sso().user;
  if (session.key()) links.push(['#/chat', 'Chat']);
  if (session.key() || person) links.push(['#/account', 'Account'], ['#/keys', 'Keys']);
  links.push(['#/admin', 'Admin']);
  const here = location.hash || '#/chat';
  const items = links.map(([href, text]) => h('a', { href, text, 'aria-current': here.startsWith(href) ? 'page' : null }));
  if (session.key() || session.admin() || person) {
    items.push(h('button', {
      type: 'button', text: 'Sign out',
      onclick: async () => {
        session.setKey(null); session.setAdmin(null);
        await session.signOutSso();
        location.hash = '#/chat'; route();
      },
    }));
  }
  document.getElementById('nav').replaceChildren(...items);
}

export async function route() {
  beginPage();
  const here = mounter();
  await session.refreshSso();
  if (!here.live()) return;
  nav();
  const person = session.sso().user;
  let page = location.hash || '#/chat';
  // Signed in with the identity provider only: the chat needs a key.
  if (page.startsWith('#/chat') && person && !session.key()) page = '#/account';
  if (page.startsWith('#/admin')) {
    if (!session.admin() && !session.sso().admin) {
      signIn({
        label: 'Admin token', title: 'Admin sign-in',
        check: (t) => call('/admin/users?all=false', t).catch((e) => {
          throw e.status === 404 ? new Error('The admin API is off: set admin.token in the gateway\'s config.') : e;
        }),
        store: session.setAdmin,
      });
      return;
    }
    if (page.startsWith('#/admin/usage')) return adminUsage(route);
    if (page.startsWith('#/admin/audit')) return adminAudit(route);
    if (page.startsWith('#/admin/teams')) return adminTeams(route);
    return page.startsWith('#/admin/users') ? adminUsers(route) : adminOverview(route);
  }
  if (!session.key() && !person) {
    signIn({ label: 'API key', title: 'Sign in', check: (k) => call('/v1/me', k), store: session.setKey });
    return;
  }
  try {
    if (page.startsWith('#/keys')) return await keysPage(route);
    return await (page.startsWith('#/account') ? accountPage() : chatPage());
  } catch (e) {
    mount(alertBox(e.message));
  }
}

window.addEventListener('hashchange', route);
route();
