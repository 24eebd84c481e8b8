// The console's forms: a dialog, the rule fields users and teams share
// (the same names as their JSON), and a new key shown once.

import { alertBox, field, h } from './dom.js';

/// `""`/`none` clears; otherwise a whole number ≥ 0.
export function numberOrNull(s) {
  const t = s.trim();
  if (t === '' || t === 'none') return null;
  const n = Number(t);
  if (!Number.isInteger(n) || n < 0) throw new Error(`“${t}” is not a whole number ≥ 0`);
  return n;
}

/// `""`/`none` clears; otherwise an amount of USD ≥ 0 (sent as a number).
export function usdOrNull(s) {
  const t = s.trim().replace(/^\$/, '');
  if (t === '' || t === 'none') return null;
  if (!/^\d*\.?\d+$|^\d+\.$/.test(t)) throw new Error(`“${t}” is not an amount of USD ≥ 0`);
  return Number(t);
}

/// A modal dialog named `title`; `onSubmit` may throw, and its message is
/// shown in the dialog, which then stays open.
export function modal(title, fields, submitLabel, onSubmit) {
  const problem = h('div', { class: 'notice' });
  const dialog = h('dialog', { 'aria-label': title });
  const form = h('form', {
    method: 'dialog',
    onsubmit: async (ev) => {
      ev.preventDefault();
      problem.replaceChildren();
      try {
        await onSubmit();
        dialog.close();
        dialog.remove();
      } catch (e) {
        problem.replaceChildren(alertBox(e.message));
      }
    },
  }, h('h3', { text: title }), fields, problem,
  h('div', { class: 'buttons' }, h('button', { type: 'submit', text: submitLabel }),
    h('button', { type: 'button', text: 'Cancel', onclick: () => { dialog.close(); dialog.remove(); } })));
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/// The value of the field labelled `label` in `dialog`.
export const value = (dialog, label) => dialog.querySelector(`[data-field="${label}"]`).value;

/// The rules of a user or team (`r`, or empty for a new one); a team has
/// no expiry.
export function ruleFields(r, { expires = true } = {}) {
  const input = (label, v) => field(label, h('input', { value: v ?? '', 'data-field': label }));
  return [
    input('Token limit', r?.token_limit), input('Request limit', r?.request_limit),
    field('Budget (USD)', h('input', { value: r?.budget_usd ?? '', 'data-field': 'Budget (USD)', inputmode: 'decimal' })),
    field('Period', h('select', { 'data-field': 'Period' }, ['total', 'day', 'month'].map((p) => h('option', { value: p, text: p, selected: (r?.limit_period ?? 'total') === p })))),
    input('Models', r?.models?.join(',')), expires ? input('Expires', r?.expires_at) : null,
    input('RPM', r?.rpm), input('Max parallel', r?.max_parallel), input('Note', r?.note),
  ];
}

/// What `ruleFields` hold, as the admin API's body.
export function ruleBody(dialog) {
  const models = value(dialog, 'Models').trim();
  const body = {
    token_limit: numberOrNull(value(dialog, 'Token limit')),
    request_limit: numberOrNull(value(dialog, 'Request limit')),
    budget_usd: usdOrNull(value(dialog, 'Budget (USD)')),
    limit_period: value(dialog, 'Period'),
    models: models ? models.split(',').map((m) => m.trim()).filter(Boolean) : null,
    rpm: numberOrNull(value(dialog, 'RPM')),
    max_parallel: numberOrNull(value(dialog, 'Max parallel')),
    note: value(dialog, 'Note'),
  };
  if (dialog.querySelector('[data-field="Expires"]')) body.expires = value(dialog, 'Expires').trim() || null;
  return body;
}

/// A top-up dialog for `path` (a user's or a team's `/recharge`).
export function rechargeDialog(name, run) {
  const d = modal(`Recharge ${name}`, [
    field('Tokens', h('input', { 'data-field': 'Tokens', inputmode: 'numeric' })),
    field('Requests', h('input', { 'data-field': 'Requests', inputmode: 'numeric' })),
    field('USD', h('input', { 'data-field': 'USD', inputmode: 'decimal' })),
  ], 'Recharge', async () => {
    const body = {};
    const t = numberOrNull(value(d, 'Tokens')), r = numberOrNull(value(d, 'Requests'));
    const usd = usdOrNull(value(d, 'USD'));
    if (t !== null) body.tokens = t;
    if (r !== null) body.requests = r;
    if (usd !== null) body.usd = usd;
    await run(body);
  });
}

/// A new key, shown this once, with a button that copies it.
export function keyShown(whose, key) {
  const box = h('input', { 'aria-label': 'New key', readonly: true, value: key, size: 40 });
  return h('div', { class: 'newkey', role: 'status' },
    h('p', { text: `The key of ${whose}, shown this once:` }), box,
    h('button', { type: 'button', text: 'Copy', onclick: () => { box.select(); navigator.clipboard?.writeText(key); } }));
}

/// A sortable table's header row; `state` holds `sortBy` and `asc`.
export function sortableHead(head, columns, state, draw) {
  head.replaceChildren(...columns.map(([col, title]) => h('th', { scope: 'col', 'aria-sort': col === state.sortBy ? (state.asc ? 'ascending' : 'descending') : null },
    h('button', { type: 'button', text: title, onclick: () => { state.asc = state.sortBy === col ? !state.asc : true; state.sortBy = col; draw(); } }))),
  h('th', { scope: 'col', text: 'Actions' }));
}

/// `rows` sorted as `state` says.
export function sorted(rows, state) {
  return [...rows].sort((a, b) => {
    const x = a[state.sortBy] ?? '', y = b[state.sortBy] ?? '';
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return state.asc ? c : -c;
  });
}

/// The console's other pages, for a page's toolbar.
export function adminLinks(here) {
  return [['#/admin', 'Overview'], ['#/admin/users', 'Users'], ['#/admin/usage', 'Usage'], ['#/admin/teams', 'Teams'], ['#/admin/audit', 'Audit']]
    .filter(([href]) => href !== here)
    .map(([href, text]) => h('a', { href, text }));
}
