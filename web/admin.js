// The admin console: users and usage, all through the admin API (the same
// operations `chatgate user …` and `usage report` run).

import { call, session } from './api.js';
import { chart, dailySeries } from './account.js';
import { alertBox, field, fmtDate, fmtNumber, fmtUsd, h, mount } from './dom.js';

const COLUMNS = [
  ['name', 'Name'], ['status', 'Status'], ['key_hint', 'Key'], ['created_at', 'Created'],
  ['expires_at', 'Expires'], ['last_used_at', 'Last used'], ['tokens_used', 'Tokens used'],
  ['token_limit', 'Token limit'], ['requests_used', 'Requests used'], ['request_limit', 'Request limit'],
  ['spent_usd', 'Spent (USD)'], ['budget_usd', 'Budget (USD)'], ['limit_period', 'Period'], ['models', 'Models'], ['rpm', 'RPM'], ['max_parallel', 'Max parallel'],
  ['note', 'Note'],
];

function show(v, col) {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.join(', ');
  if (col.endsWith('_at')) return fmtDate(v);
  if (col.endsWith('_usd')) return fmtUsd(v);
  return typeof v === 'number' ? fmtNumber(v) : String(v);
}

/// `""` leaves a setting as it is in an edit, clears it where `clear`.
function numberOrNull(s) {
  const t = s.trim();
  if (t === '' || t === 'none') return null;
  const n = Number(t);
  if (!Number.isInteger(n) || n < 0) throw new Error(`“${t}” is not a whole number ≥ 0`);
  return n;
}

/// `""`/`none` clears; otherwise an amount of USD ≥ 0 (sent as a number).
function usdOrNull(s) {
  const t = s.trim().replace(/^\$/, '');
  if (t === '' || t === 'none') return null;
  if (!/^\d*\.?\d+$|^\d+\.$/.test(t)) throw new Error(`“${t}” is not an amount of USD ≥ 0`);
  return Number(t);
}

function modal(title, fields, submitLabel, onSubmit) {
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

function keyShown(name, key) {
  const box = h('input', { 'aria-label': 'New key', readonly: true, value: key, size: 40 });
  return h('div', { class: 'newkey', role: 'status' },
    h('p', { text: `The key of ${name}, shown this once:` }), box,
    h('button', { type: 'button', text: 'Copy', onclick: () => { box.select(); navigator.clipboard?.writeText(key); } }));
}

export async function adminUsers(rerender) {
  const token = session.admin();
  let users;
  try {
    users = await call('/admin/users?all=true', token);
  } catch (e) {
    if (e.status === 401) { session.setAdmin(null); rerender(); return; }
    mount(alertBox(e.message));
    return;
  }
  let sortBy = 'name', asc = true;
  const filter = h('input', { type: 'search', 'aria-label': 'Filter', placeholder: 'Filter users' });
  const outcome = h('div', { class: 'outcome' });
  const body = h('tbody');
  const head = h('tr');
  const act = async (what, run) => {
    outcome.replaceChildren();
    try {
      const shown = await run();
      users = await call('/admin/users?all=true', token);
      draw();
      if (shown) outcome.replaceChildren(shown);
    } catch (e) {
      outcome.replaceChildren(alertBox(`${what}: ${e.message}`));
    }
  };
  const path = (name, rest = '') => `/admin/users/${encodeURIComponent(name)}${rest}`;

  function rowButtons(u) {
    const disabled = u.status === 'disabled';
    return h('td', { class: 'actions' },
      h('button', { type: 'button', text: 'Edit', onclick: () => edit(u) }),
      h('button', {
        type: 'button', text: disabled ? 'Enable' : 'Disable',
        onclick: () => act(disabled ? 'Enable' : 'Disable', () => call(path(u.name), token, { method: 'PATCH', body: { disabled: !disabled } })),
      }),
      h('button', {
        type: 'button', text: 'Rotate key',
        onclick: () => act('Rotate key', async () => {
          const r = await call(path(u.name, '/rotate'), token, { method: 'POST' });
          return keyShown(u.name, r.key);
        }),
      }),
      h('button', { type: 'button', text: 'Recharge', onclick: () => recharge(u) }),
      h('button', { type: 'button', text: 'Remove', onclick: () => remove(u) }));
  }

  function draw() {
    head.replaceChildren(...COLUMNS.map(([col, title]) => h('th', { scope: 'col', 'aria-sort': col === sortBy ? (asc ? 'ascending' : 'descending') : null },
      h('button', { type: 'button', text: title, onclick: () => { asc = sortBy === col ? !asc : true; sortBy = col; draw(); } }))),
    h('th', { scope: 'col', text: 'Actions' }));
    const needle = filter.value.trim().toLowerCase();
    const shown = users
      .filter((u) => !needle || [u.name, u.note, u.status, u.key_hint].some((v) => (v || '').toLowerCase().includes(needle)))
      .sort((a, b) => {
        const x = a[sortBy] ?? '', y = b[sortBy] ?? '';
        const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
    body.replaceChildren(...shown.map((u) => h('tr', {},
      COLUMNS.map(([col]) => (col === 'name' ? h('th', { scope: 'row', text: u.name }) : h('td', { text: show(u[col], col) }))),
      rowButtons(u))));
  }

  function settingsFields(u) {
    const input = (label, value) => field(label, h('input', { value: value ?? '', 'data-field': label }));
    return [
      input('Token limit', u?.token_limit), input('Request limit', u?.request_limit),
      field('Budget (USD)', h('input', { value: u?.budget_usd ?? '', 'data-field': 'Budget (USD)', inputmode: 'decimal' })),
      field('Period', h('select', { 'data-field': 'Period' }, ['total', 'day', 'month'].map((p) => h('option', { value: p, text: p, selected: (u?.limit_period ?? 'total') === p })))),
      input('Models', u?.models?.join(',')), input('Expires', u?.expires_at),
      input('RPM', u?.rpm), input('Max parallel', u?.max_parallel), input('Note', u?.note),
    ];
  }
  const value = (dialog, label) => dialog.querySelector(`[data-field="${label}"]`).value;
  function settingsBody(dialog) {
    const models = value(dialog, 'Models').trim();
    const expires = value(dialog, 'Expires').trim();
    return {
      token_limit: numberOrNull(value(dialog, 'Token limit')),
      request_limit: numberOrNull(value(dialog, 'Request limit')),
      budget_usd: usdOrNull(value(dialog, 'Budget (USD)')),
      limit_period: value(dialog, 'Period'),
      models: models ? models.split(',').map((m) => m.trim()).filter(Boolean) : null,
      expires: expires || null,
      rpm: numberOrNull(value(dialog, 'RPM')),
      max_parallel: numberOrNull(value(dialog, 'Max parallel')),
      note: value(dialog, 'Note'),
    };
  }

  function add() {
    const d = modal('Add user', [
      field('Name', h('input', { 'data-field': 'Name', required: true })),
      ...settingsFields(null),
    ], 'Create', async () => {
      const body = { name: value(d, 'Name').trim(), ...settingsBody(d) };
      if (body.expires === null) delete body.expires;
      const r = await call('/admin/users', token, { method: 'POST', body });
      await act('Add user', async () => keyShown(r.name, r.key));
    });
  }
  function edit(u) {
    const d = modal(`Edit ${u.name}`, settingsFields(u), 'Save', async () => {
      await call(path(u.name), token, { method: 'PATCH', body: settingsBody(d) });
      await act('Edit', async () => null);
    });
  }
  function recharge(u) {
    const d = modal(`Recharge ${u.name}`, [
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
      await call(path(u.name, '/recharge'), token, { method: 'POST', body });
      await act('Recharge', async () => null);
    });
  }
  function remove(u) {
    modal(`Remove ${u.name}?`, [h('p', { text: `${u.name}'s key stops working at once; their usage history is kept.` })], 'Remove',
      async () => { await call(path(u.name), token, { method: 'DELETE' }); await act('Remove', async () => null); });
  }

  filter.addEventListener('input', draw);
  mount(
    h('h2', { text: 'Users' }),
    h('div', { class: 'toolbar' }, field('Filter', filter), h('button', { type: 'button', text: 'Add user', onclick: add }),
      h('a', { href: '#/admin/usage', text: 'Usage' })),
    outcome,
    h('div', { class: 'scroll' }, h('table', { 'aria-label': 'Users' }, h('thead', {}, head), body)),
  );
  draw();
}

function csv(rows, keys) {
  const cols = [...keys, 'requests', 'errors', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'cached_tokens', 'cost_usd'];
  // Text a spreadsheet would run as a formula is kept as text (a leading ').
  const text = (v) => (typeof v === 'string' && /^[=+\-@\t\r]/.test(v) ? `'${v}` : v);
  const cell = (v) => { const s = v === null || v === undefined ? '' : String(text(v)); return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
  return [cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

export async function adminUsage(rerender) {
  const token = session.admin();
  const period = h('select', { 'aria-label': 'Period' },
    ['this-month', 'last-month', 'today', 'yesterday', '7d', '30d', '90d'].map((p) => h('option', { value: p, text: p })));
  period.value = sessionStorage.getItem('chatgate.usage.period') || '30d';
  const plot = h('div', { class: 'plot', role: 'img', 'aria-label': 'Tokens and requests per day' });
  const table = h('div', { class: 'scroll' });
  const clients = h('div', { class: 'scroll' });
  const download = h('a', { href: '#', text: 'Download CSV', download: 'chatgate-usage.csv' });
  const notice = h('div');
  async function load() {
    sessionStorage.setItem('chatgate.usage.period', period.value);
    notice.replaceChildren();
    let byDay, byUser, byClient;
    try {
      [byDay, byUser, byClient] = await Promise.all([
        call(`/admin/usage?period=${period.value}&by=day`, token),
        call(`/admin/usage?period=${period.value}&by=user,model`, token),
        call(`/admin/usage?period=${period.value}&by=client,endpoint`, token),
      ]);
    } catch (e) {
      if (e.status === 401) { session.setAdmin(null); rerender(); return; }
      notice.replaceChildren(alertBox(e.message));
      return;
    }
    const days = Math.max(1, Math.round(byDay.length ? (Date.now() - Date.parse(byDay[0].day)) / 86_400_000 + 1 : 1));
    plot.replaceChildren();
    chart(plot, dailySeries(byDay, Math.min(days, 400)), plot.clientWidth || 600);
    // Two groupings, one table shape: the first two columns name the row.
    const grouped = (name, heads, rows, keys) => h('table', { 'aria-label': name },
      h('thead', {}, h('tr', {}, [...heads, 'Requests', 'Errors', 'Tokens', 'Cost (USD)'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, rows.map((r) => h('tr', {}, ...keys.map((k) => h('td', { text: r[k] || '—' })),
        h('td', { text: fmtNumber(r.requests) }), h('td', { text: fmtNumber(r.errors) }),
        h('td', { text: fmtNumber(r.total_tokens) }), h('td', { text: r.cost_usd === null ? '—' : r.cost_usd.toFixed(4) })))));
    table.replaceChildren(grouped('Usage by user', ['User', 'Model'], byUser, ['user', 'model']));
    clients.replaceChildren(grouped('Usage by client', ['Client', 'Endpoint'], byClient, ['client', 'endpoint']));
    URL.revokeObjectURL(download.href);
    download.href = URL.createObjectURL(new Blob([csv(byUser, ['user', 'model'])], { type: 'text/csv' }));
    download.download = `chatgate-usage-${period.value}.csv`;
  }
  period.addEventListener('change', load);
  mount(h('h2', { text: 'Usage' }),
    h('div', { class: 'toolbar' }, field('Period', period), download, h('a', { href: '#/admin', text: 'Users' })),
    notice, plot, table, h('h3', { text: 'By client and endpoint' }), clients);
  await load();
}
