// The admin console: users and usage, all through the admin API (the same
// operations `chatgate user …` and `usage report` run).

import { call, session } from './api.js';
import { chart, dailySeries } from './account.js';
import { alertBox, field, fmtNumber, fmtValue, h, mounter } from './dom.js';
import { adminLinks, keyShown, modal, rechargeDialog, ruleBody, ruleFields, sortableHead, sorted, value } from './forms.js';

const COLUMNS = [
  ['name', 'Name'], ['status', 'Status'], ['key_hint', 'Key'], ['created_at', 'Created'],
  ['expires_at', 'Expires'], ['last_used_at', 'Last used'], ['tokens_used', 'Tokens used'],
  ['token_limit', 'Token limit'], ['requests_used', 'Requests used'], ['request_limit', 'Request limit'],
  ['spent_usd', 'Spent (USD)'], ['budget_usd', 'Budget (USD)'], ['limit_period', 'Period'], ['models', 'Models'], ['rpm', 'RPM'], ['max_parallel', 'Max parallel'],
  ['team', 'Team'], ['note', 'Note'],
];

export async function adminUsers(rerender) {
  const mount = mounter();
  const token = session.admin();
  let users;
  try {
    users = await call('/admin/users?all=true', token);
  } catch (e) {
    if (e.status === 401) { session.setAdmin(null); rerender(); return; }
    mount(alertBox(e.message));
    return;
  }
  const order = { sortBy: 'name', asc: true };
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
    sortableHead(head, COLUMNS, order, draw);
    const needle = filter.value.trim().toLowerCase();
    const shown = sorted(users
      .filter((u) => !needle || [u.name, u.note, u.status, u.key_hint, u.team].some((v) => (v || '').toLowerCase().includes(needle))), order);
    body.replaceChildren(...shown.map((u) => h('tr', {},
      COLUMNS.map(([col]) => (col === 'name' ? h('th', { scope: 'row', text: u.name }) : h('td', { text: fmtValue(u[col], col) }))),
      rowButtons(u))));
  }

  function add() {
    const d = modal('Add user', [
      field('Name', h('input', { 'data-field': 'Name', required: true })),
      ...ruleFields(null),
    ], 'Create', async () => {
      const body = { name: value(d, 'Name').trim(), ...ruleBody(d) };
      if (body.expires === null) delete body.expires;
      const r = await call('/admin/users', token, { method: 'POST', body });
      await act('Add user', async () => keyShown(r.name, r.key));
    });
  }
  async function edit(u) {
    let teams;
    try {
      teams = await call('/admin/teams', token);
    } catch (e) {
      outcome.replaceChildren(alertBox(`Edit: ${e.message}`));
      return;
    }
    const team = h('select', { 'data-field': 'Team' },
      h('option', { value: '', text: 'No team', selected: !u.team }),
      teams.map((t) => h('option', { value: t.name, text: t.name, selected: u.team === t.name })));
    const d = modal(`Edit ${u.name}`, [field('Team', team), ...ruleFields(u)], 'Save', async () => {
      await call(path(u.name), token, { method: 'PATCH', body: { ...ruleBody(d), team: team.value || null } });
      await act('Edit', async () => null);
    });
  }
  function recharge(u) {
    rechargeDialog(u.name, async (body) => {
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
      ...adminLinks('#/admin/users')),
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
  const mount = mounter();
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
    h('div', { class: 'toolbar' }, field('Period', period), download, ...adminLinks('#/admin/usage')),
    notice, plot, table, h('h3', { text: 'By client and endpoint' }), clients);
  await load();
}
