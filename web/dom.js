// Building the page: elements from plain data, never from HTML strings
// (the one exception, rendered Markdown, goes through the sanitiser).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/// A labelled form field: `<label>Name <input></label>`.
export function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

/// The gateway's refusal, in an alert, with `web.help_link` when set.
export function alertBox(message) {
  const help = document.body.dataset.helpLink;
  return h('div', { role: 'alert', class: 'alert' }, message,
    help ? [' ', h('a', { href: help, rel: 'noopener noreferrer', target: '_blank' }, 'Get help')] : null);
}

export function mount(...children) {
  const main = document.getElementById('main');
  main.replaceChildren(...children);
  return main;
}

// Which page is the current one: a page that is still loading its data
// when the person moves on must not draw over the next one.
let page = 0;

/// A navigation begins (app.js).
export function beginPage() { page += 1; }

/// The current page's `mount`, which does nothing once another page has
/// begun; `.live()` says whether it still would.
export function mounter() {
  const mine = page;
  const m = (...children) => (mine === page ? mount(...children) : null);
  m.live = () => mine === page;
  return m;
}

export function fmtNumber(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US');
}

export function fmtUsd(n) {
  if (n === null || n === undefined) return '—';
  const cents = Math.round(n * 100) / 100;
  return Math.abs(n - cents) < 1e-9 ? `$${cents.toFixed(2)}` : `$${n.toFixed(6)}`;
}

export function fmtDate(s) {
  return s ? s.replace('T', ' ').replace(/\.\d+/, '').replace('Z', ' UTC') : '—';
}

/// A field of a user or team as a table shows it (by the field's name).
export function fmtValue(v, col) {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.join(', ');
  if (col.endsWith('_at')) return fmtDate(v);
  if (col.endsWith('_usd')) return fmtUsd(v);
  return typeof v === 'number' ? fmtNumber(v) : String(v);
}
