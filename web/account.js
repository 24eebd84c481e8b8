// The caller's own account: key hint, status, limits and their use, and
// the last 30 days of usage (a chart and tables), from /v1/me and
// /v1/me/usage.

import uPlot from './vendor/uPlot.esm.js';
import { call, session } from './api.js';
import { alertBox, fmtDate, fmtNumber, fmtUsd, h, mounter } from './dom.js';

/// When the current period ends (UTC), as the gateway counts it.
function resets(period) {
  const now = new Date();
  if (period === 'day') return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  if (period === 'month') return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  return null;
}

function limitRow(what, used, limit) {
  const left = limit === null || limit === undefined ? 'no limit' : `${fmtNumber(Math.max(limit - used, 0))} left of ${fmtNumber(limit)}`;
  return h('tr', {}, h('th', { scope: 'row', text: what }), h('td', { text: fmtNumber(used) }), h('td', { text: left }));
}

export function usageTable(label, rows, keyName, keyTitle) {
  return h('table', { 'aria-label': label },
    h('thead', {}, h('tr', {}, [keyTitle, 'Requests', 'Tokens', 'Cost (USD)'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('td', { text: r[keyName] }), h('td', { text: fmtNumber(r.requests) }),
      h('td', { text: fmtNumber(r.total_tokens) }),
      h('td', { text: r.cost_usd === null ? '—' : r.cost_usd.toFixed(4) })))));
}

/// The last `days` days, each present (a day without use is 0).
export function dailySeries(rows, days) {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const xs = [], tokens = [], requests = [];
  const today = new Date();
  for (let i = days - 1; i >= 0; i--) {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
    const key = d.toISOString().slice(0, 10);
    xs.push(d.getTime() / 1000);
    tokens.push(byDay.get(key)?.total_tokens ?? 0);
    requests.push(byDay.get(key)?.requests ?? 0);
  }
  return { xs, tokens, requests };
}

export function chart(container, series, width) {
  const opts = {
    width: Math.max(Math.min(width, 720), 280), height: 200,
    series: [{}, { label: 'Tokens', stroke: '#2f6fde', fill: 'rgba(47,111,222,0.15)' },
      { label: 'Requests', stroke: '#d9822b', scale: 'r' }],
    axes: [{}, { label: 'tokens' }, { side: 1, scale: 'r', label: 'requests', grid: { show: false } }],
    scales: { x: { time: true } },
  };
  return new uPlot(opts, [series.xs, series.tokens, series.requests], container);
}

export async function accountPage() {
  const mount = mounter();
  const key = session.key();
  let me, days, models;
  try {
    [me, days, models] = await Promise.all([
      call('/v1/me', key),
      call('/v1/me/usage?period=30d&by=day', key),
      call('/v1/me/usage?period=30d&by=model', key),
    ]);
  } catch (e) {
    mount(alertBox(e.message));
    return;
  }
  const reset = resets(me.limit_period);
  const plot = h('div', { class: 'plot', role: 'img', 'aria-label': 'Tokens and requests per day, last 30 days' });
  const shownDays = [...days].reverse();
  mount(
    h('h2', { text: 'Account' }),
    h('dl', { class: 'facts' },
      h('dt', { text: 'User' }), h('dd', { text: me.name }),
      h('dt', { text: 'Key' }), h('dd', { text: me.key_hint }),
      h('dt', { text: 'Status' }), h('dd', { text: me.status }),
      h('dt', { text: 'Expires' }), h('dd', { text: me.expires_at ? fmtDate(me.expires_at) : 'never' }),
      h('dt', { text: 'Limit period' }), h('dd', { text: me.limit_period + (reset ? ` (resets ${fmtDate(reset.toISOString())})` : '') }),
      h('dt', { text: 'Models' }), h('dd', { text: me.models ? me.models.join(', ') : 'all' })),
    h('table', { 'aria-label': 'Limits' },
      h('thead', {}, h('tr', {}, ['Limit', 'Used this period', 'Left'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {},
        limitRow('Tokens', me.tokens_used, me.token_limit),
        limitRow('Requests', me.requests_used, me.request_limit),
        h('tr', {}, h('th', { scope: 'row', text: 'Budget (USD)' }), h('td', { text: fmtUsd(me.spent_usd) }),
          h('td', { text: me.budget_usd === null ? 'no limit' : `${fmtUsd(Math.max(me.budget_usd - me.spent_usd, 0))} left of ${fmtUsd(me.budget_usd)}` })),
        h('tr', {}, h('th', { scope: 'row', text: 'Requests per minute' }), h('td', { text: '—' }), h('td', { text: me.rpm ?? 'no limit' })),
        h('tr', {}, h('th', { scope: 'row', text: 'Requests at once' }), h('td', { text: '—' }), h('td', { text: me.max_parallel ?? 'no limit' })))),
    h('section', { 'aria-label': 'Usage by day', class: 'usage' },
      h('h3', { text: 'Usage by day' }), plot,
      usageTable('Usage by day', shownDays, 'day', 'Day')),
    h('section', { 'aria-label': 'Usage by model' },
      h('h3', { text: 'Usage by model' }), usageTable('Usage by model', models, 'model', 'Model')),
  );
  chart(plot, dailySeries(days, 30), plot.clientWidth || 600);
}
