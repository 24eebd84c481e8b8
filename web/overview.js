// The admin console's first page: who is spending what. Spend this
// month, by day and by team and model, the users closest to their
// limits, and the errors of the last hour; all from `/admin/usage` and
// `/admin/users` (the numbers `usage report` and `user list` give).

import uPlot from './vendor/uPlot.esm.js';
import { call, session } from './api.js';
import { alertBox, fmtNumber, h, mounter } from './dom.js';
import { adminLinks } from './forms.js';

const usd = (n) => (n === null || n === undefined ? '—' : `$${Number(n).toFixed(2)}`);

/// How far along a user is towards their nearest limit (0..1+), and which.
export function nearest(u) {
  const parts = [
    ['tokens', u.tokens_used, u.token_limit],
    ['requests', u.requests_used, u.request_limit],
    ['budget', u.spent_usd, u.budget_usd],
  ].filter(([, , limit]) => limit !== null && limit !== undefined)
    .map(([what, used, limit]) => [what, limit > 0 ? used / limit : 1]);
  if (!parts.length) return null;
  return parts.reduce((a, b) => (b[1] > a[1] ? b : a));
}

function spendChart(container, byDay) {
  const today = new Date();
  const first = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1);
  const spend = new Map(byDay.map((r) => [r.day, r.cost_usd || 0]));
  const xs = [], ys = [];
  for (let t = first; t <= today.getTime(); t += 86_400_000) {
    xs.push(t / 1000);
    ys.push(spend.get(new Date(t).toISOString().slice(0, 10)) ?? 0);
  }
  // The canvas takes colours, not `currentColor`: the theme's, read here.
  const ink = getComputedStyle(document.body).color;
  const grid = { stroke: 'rgba(128, 128, 128, 0.25)', width: 1 };
  const opts = {
    width: Math.max(Math.min(container.clientWidth || 600, 720), 280), height: 180,
    series: [{}, { label: 'Spend (USD)', stroke: '#2f6fde', fill: 'rgba(47,111,222,0.15)', value: (_u, v) => usd(v) }],
    legend: { show: false },
    axes: [
      { stroke: ink, grid, ticks: grid, incrs: [86_400, 7 * 86_400], values: (_u, vals) => vals.map((v) => new Date(v * 1000).toISOString().slice(5, 10)) },
      { stroke: ink, grid, ticks: grid, values: (_u, vals) => vals.map((v) => `$${v}`) },
    ],
    scales: { x: { time: true } },
  };
  return new uPlot(opts, [xs, ys], container);
}

/// A small table: `name` (its accessible name), headings, rows of cells.
function table(name, heads, rows) {
  return h('div', { class: 'scroll' }, h('table', { 'aria-label': name },
    h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, rows.map(([first, ...rest]) => h('tr', {}, h('th', { scope: 'row', text: first }), rest.map((c) => h('td', { text: c })))))));
}

export async function adminOverview(rerender) {
  const mount = mounter();
  const token = session.admin();
  const hourAgo = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  let byDay, byTeam, byModel, users, lastHour;
  try {
    [byDay, byTeam, byModel, users, lastHour] = await Promise.all([
      call('/admin/usage?period=this-month&by=day', token),
      call('/admin/usage?period=this-month&by=team', token),
      call('/admin/usage?period=this-month&by=model', token),
      call('/admin/users?all=false', token),
      call(`/admin/usage?since=${encodeURIComponent(hourAgo)}&by=user`, token),
    ]);
  } catch (e) {
    if (e.status === 401) { session.setAdmin(null); rerender(); return; }
    mount(alertBox(e.message));
    return;
  }
  const total = byDay.reduce((s, r) => s + (r.cost_usd || 0), 0);
  const requests = byDay.reduce((s, r) => s + r.requests, 0);
  const errors = lastHour.reduce((s, r) => s + r.errors, 0);
  const closest = users
    .map((u) => ({ u, near: nearest(u) }))
    .filter((x) => x.near && x.near[1] > 0)
    .sort((a, b) => b.near[1] - a.near[1])
    .slice(0, 5);
  const byCost = (rows) => [...rows].sort((a, b) => (b.cost_usd || 0) - (a.cost_usd || 0));
  const plot = h('div', { class: 'plot', role: 'img', 'aria-label': 'Spend per day this month' });
  mount(
    h('h2', { text: 'Overview' }),
    h('div', { class: 'toolbar' }, ...adminLinks('#/admin')),
    h('dl', { class: 'facts', 'aria-label': 'This month' },
      h('dt', { text: 'Spend this month' }), h('dd', { text: usd(total) }),
      h('dt', { text: 'Requests this month' }), h('dd', { text: fmtNumber(requests) }),
      h('dt', { text: 'Errors in the last hour' }), h('dd', { text: fmtNumber(errors) })),
    h('section', { 'aria-label': 'Spend by day' }, h('h3', { text: 'Spend by day' }), plot),
    h('div', { class: 'columns' },
      h('section', {}, h('h3', { text: 'By team' }),
        table('Spend by team', ['Team', 'Requests', 'Tokens', 'Spend'],
          byCost(byTeam).map((r) => [r.team ?? '(no team)', fmtNumber(r.requests), fmtNumber(r.total_tokens), usd(r.cost_usd)]))),
      h('section', {}, h('h3', { text: 'By model' }),
        table('Spend by model', ['Model', 'Requests', 'Tokens', 'Spend'],
          byCost(byModel).map((r) => [r.model || '(no model)', fmtNumber(r.requests), fmtNumber(r.total_tokens), usd(r.cost_usd)])))),
    h('section', {}, h('h3', { text: 'Closest to their limits' }),
      closest.length
        ? table('Closest to their limits', ['User', 'Limit', 'Used'],
          closest.map(({ u, near }) => [u.name, near[0], `${Math.round(near[1] * 100)}%`]))
        : h('p', { text: 'No user has used any of a limit yet.' })),
  );
  let drawn = spendChart(plot, byDay);
  // Drawn again in the theme's colours when the system switches theme.
  const scheme = matchMedia('(prefers-color-scheme: dark)');
  const redraw = () => {
    if (!plot.isConnected) { scheme.removeEventListener('change', redraw); return; }
    drawn.destroy();
    drawn = spendChart(plot, byDay);
  };
  scheme.addEventListener('change', redraw);
}
