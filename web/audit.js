// The admin console's Audit page: every change to users, teams and keys,
// newest first, from `GET /admin/audit` (the rows `chatgate audit list`
// shows).

import { call, session } from './api.js';
import { alertBox, field, h, mounter } from './dom.js';
import { adminLinks } from './forms.js';

// The newest this many (a large import leaves a row per user).
const SHOWN = 2000;

const side = (v) => (v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v));

/// `field: old → new` per changed field.
function changesText(changes) {
  return Object.entries(changes || {}).map(([f, c]) => `${f}: ${side(c.old)} → ${side(c.new)}`).join('; ');
}

export async function adminAudit(rerender) {
  const mount = mounter();
  const token = session.admin();
  let rows;
  try {
    rows = await call(`/admin/audit?limit=${SHOWN}`, token);
  } catch (e) {
    if (e.status === 401) { session.setAdmin(null); rerender(); return; }
    mount(alertBox(e.message));
    return;
  }
  rows.reverse();
  const filter = h('input', { type: 'search', 'aria-label': 'Filter', placeholder: 'Filter by actor, action, target or change' });
  const body = h('tbody');
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const shown = rows
      .map((r) => ({ ...r, text: changesText(r.changes) }))
      .filter((r) => !q || [r.actor, r.action, r.target, r.text].some((s) => s.toLowerCase().includes(q)));
    body.replaceChildren(...shown.map((r) => h('tr', {},
      h('td', { text: new Date(r.at).toLocaleString() }), h('td', { text: r.actor }), h('td', { text: r.action }),
      h('th', { scope: 'row', text: r.target }), h('td', { text: r.text }))));
  };
  filter.addEventListener('input', draw);
  mount(
    h('h2', { text: 'Audit' }),
    h('div', { class: 'toolbar' }, field('Filter', filter), ...adminLinks('#/admin/audit')),
    h('div', { class: 'scroll' }, h('table', { 'aria-label': 'Audit' },
      h('thead', {}, h('tr', {}, ['When', 'Actor', 'Action', 'Target', 'Changes'].map((t) => h('th', { scope: 'col', text: t })))),
      body)),
  );
  draw();
}
