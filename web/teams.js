// The admin console's Teams: shared rules and budgets for a group of
// users, through the admin API (the same operations as `chatgate team …`).

import { call, session } from './api.js';
import { alertBox, field, fmtValue, h, mounter } from './dom.js';
import { adminLinks, modal, rechargeDialog, ruleBody, ruleFields, sortableHead, sorted, value } from './forms.js';

const COLUMNS = [
  ['name', 'Name'], ['members', 'Members'], ['tokens_used', 'Tokens used'], ['token_limit', 'Token limit'],
  ['requests_used', 'Requests used'], ['request_limit', 'Request limit'], ['spent_usd', 'Spent (USD)'],
  ['budget_usd', 'Budget (USD)'], ['limit_period', 'Period'], ['models', 'Models'], ['rpm', 'RPM'],
  ['max_parallel', 'Max parallel'], ['note', 'Note'], ['created_at', 'Created'],
];

export async function adminTeams(rerender) {
  const mount = mounter();
  const token = session.admin();
  const load = () => call('/admin/teams', token);
  let teams;
  try {
    teams = await load();
  } catch (e) {
    if (e.status === 401) { session.setAdmin(null); rerender(); return; }
    mount(alertBox(e.message));
    return;
  }
  const order = { sortBy: 'name', asc: true };
  const outcome = h('div', { class: 'outcome' });
  const head = h('tr');
  const body = h('tbody');
  const path = (name, rest = '') => `/admin/teams/${encodeURIComponent(name)}${rest}`;
  const act = async (what, run) => {
    outcome.replaceChildren();
    try {
      await run();
      teams = await load();
      draw();
    } catch (e) {
      outcome.replaceChildren(alertBox(`${what}: ${e.message}`));
    }
  };

  function draw() {
    sortableHead(head, COLUMNS, order, draw);
    body.replaceChildren(...sorted(teams, order).map((t) => h('tr', {},
      COLUMNS.map(([col]) => (col === 'name' ? h('th', { scope: 'row', text: t.name }) : h('td', { text: fmtValue(t[col], col) }))),
      h('td', { class: 'actions' },
        h('button', { type: 'button', text: 'Edit', onclick: () => edit(t) }),
        h('button', { type: 'button', text: 'Recharge', onclick: () => recharge(t) }),
        h('button', { type: 'button', text: 'Remove', onclick: () => remove(t) })))));
  }

  function add() {
    const d = modal('Add team', [
      field('Name', h('input', { 'data-field': 'Name', required: true })),
      ...ruleFields(null, { expires: false }),
    ], 'Create', async () => {
      await call('/admin/teams', token, { method: 'POST', body: { name: value(d, 'Name').trim(), ...ruleBody(d) } });
      await act('Add team', async () => null);
    });
  }
  function edit(t) {
    const d = modal(`Edit ${t.name}`, ruleFields(t, { expires: false }), 'Save', async () => {
      await call(path(t.name), token, { method: 'PATCH', body: ruleBody(d) });
      await act('Edit', async () => null);
    });
  }
  function recharge(t) {
    rechargeDialog(t.name, async (b) => {
      await call(path(t.name, '/recharge'), token, { method: 'POST', body: b });
      await act('Recharge', async () => null);
    });
  }
  function remove(t) {
    modal(`Remove ${t.name}?`, [h('p', { text: `The team ${t.name} goes; its usage history is kept. A team with members cannot be removed.` })], 'Remove',
      async () => { await call(path(t.name), token, { method: 'DELETE' }); await act('Remove', async () => null); });
  }

  mount(
    h('h2', { text: 'Teams' }),
    h('div', { class: 'toolbar' }, h('button', { type: 'button', text: 'Add team', onclick: add }),
      ...adminLinks('#/admin/teams')),
    outcome,
    h('div', { class: 'scroll' }, h('table', { 'aria-label': 'Teams' }, h('thead', {}, head), body)),
  );
  draw();
}
