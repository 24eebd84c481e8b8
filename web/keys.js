// The caller's own keys (`/v1/me/keys`): one per laptop, agent or CI job,
// each revocable without the others.

import { call, session } from './api.js';
import { alertBox, field, fmtDate, h, mounter } from './dom.js';
import { keyShown } from './forms.js';

export async function keysPage(rerender) {
  const mount = mounter();
  const key = session.key();
  const outcome = h('div', { class: 'outcome' });
  const body = h('tbody');
  const label = h('input', { 'aria-label': 'Label', placeholder: 'laptop, ci, …', maxlength: 64 });
  let keys;
  const load = async () => { keys = await call('/v1/me/keys', key); };
  const act = async (what, run) => {
    outcome.replaceChildren();
    try {
      const shown = await run();
      await load();
      draw();
      if (shown) outcome.replaceChildren(shown);
    } catch (e) {
      // The key this page signed in with was revoked: sign in again.
      if (e.status === 401) { session.setKey(null); rerender(); return; }
      outcome.replaceChildren(alertBox(`${what}: ${e.message}`));
    }
  };
  try {
    await load();
  } catch (e) {
    mount(alertBox(e.message));
    return;
  }
  function draw() {
    body.replaceChildren(...keys.map((k) => h('tr', {},
      h('th', { scope: 'row', text: k.label }), h('td', { text: k.key_hint }), h('td', { text: fmtDate(k.created_at) }),
      h('td', { text: fmtDate(k.last_used_at) }), h('td', { text: k.expires_at ? fmtDate(k.expires_at) : 'never' }),
      h('td', { text: k.models ? k.models.join(', ') : 'all yours' }),
      h('td', { class: 'actions' }, h('button', {
        type: 'button', text: 'Revoke',
        onclick: () => act('Revoke', () => call(`/v1/me/keys/${encodeURIComponent(k.label)}`, key, { method: 'DELETE' })),
      })))));
  }
  const form = h('form', {
    class: 'toolbar',
    onsubmit: (ev) => {
      ev.preventDefault();
      const wanted = label.value.trim();
      act('New key', async () => {
        const r = await call('/v1/me/keys', key, { method: 'POST', body: wanted ? { label: wanted } : {} });
        label.value = '';
        return keyShown(r.label, r.key);
      });
    },
  }, field('Label', label), h('button', { type: 'submit', text: 'New key' }));
  mount(
    h('h2', { text: 'Keys' }),
    h('p', { text: 'A key per laptop, agent or CI job: revoking one leaves the others working.' }),
    form, outcome,
    h('div', { class: 'scroll' }, h('table', { 'aria-label': 'Keys' },
      h('thead', {}, h('tr', {}, ['Label', 'Key', 'Created', 'Last used', 'Expires', 'Models', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
      body)),
  );
  draw();
}
