// The chat page: conversations kept in this browser, replies streamed and
// rendered as Markdown (raw HTML in a reply is shown as text, and the
// result is sanitised again before it reaches the page).

import { marked } from './vendor/marked.esm.js';
import DOMPurify from './vendor/purify.es.mjs';
import { call, session, streamChat } from './api.js';
import { alertBox, field, h, mounter } from './dom.js';

const STORE = 'chatgate.conversations';

marked.use({
  gfm: true,
  // HTML written in a reply is text, never markup.
  renderer: { html: ({ text }) => escapeHtml(text) },
});

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

export function renderMarkdown(text) {
  const html = DOMPurify.sanitize(marked.parse(text), {
    FORBID_TAGS: ['style', 'form', 'input', 'img', 'iframe'],
    FORBID_ATTR: ['style'],
  });
  const box = h('div', { class: 'md' });
  box.innerHTML = html;
  for (const a of box.querySelectorAll('a')) {
    a.rel = 'noopener noreferrer';
    a.target = '_blank';
  }
  for (const pre of box.querySelectorAll('pre')) {
    const copy = h('button', { type: 'button', class: 'copy', text: 'Copy' });
    copy.addEventListener('click', () => navigator.clipboard?.writeText(pre.textContent));
    pre.before(copy);
  }
  return box;
}

// Context windows in tokens; anything else is taken as DEFAULT_CONTEXT.
const CONTEXT = [
  [/^gpt-4\.1/, 1_047_576], [/^gpt-4o/, 128_000], [/^gpt-4-turbo/, 128_000],
  [/^gpt-4/, 8_192], [/^gpt-3\.5/, 16_385], [/^o\d/, 200_000], [/^claude/, 200_000],
  [/^echo/, 8_192],
];
const DEFAULT_CONTEXT = 8_192;
const REPLY_RESERVE = 1_024;

export function contextOf(model) {
  const hit = CONTEXT.find(([re]) => re.test(model));
  return hit ? hit[1] : DEFAULT_CONTEXT;
}

// About four characters a token, plus each message's framing.
const tokensOf = (m) => Math.ceil(m.content.length / 4) + 4;

/// The messages to send: the system prompt, then the newest messages that
/// fit the model's context with room left for the reply.
export function fit(system, messages, model) {
  const budget = contextOf(model) - Math.min(REPLY_RESERVE, contextOf(model) / 4);
  const sys = system ? [{ role: 'system', content: system }] : [];
  let used = sys.reduce((n, m) => n + tokensOf(m), 0);
  const kept = [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const t = tokensOf(messages[i]);
    if (kept.length > 0 && used + t > budget) break;
    used += t;
    kept.unshift(messages[i]);
  }
  return [...sys, ...kept];
}

function load() {
  try { return JSON.parse(localStorage.getItem(STORE)) || { list: [], current: null }; }
  catch { return { list: [], current: null }; }
}
function save(state) { localStorage.setItem(STORE, JSON.stringify(state)); }

function newConversation(state, model) {
  const c = { id: crypto.randomUUID(), title: 'Untitled', system: '', model, messages: [] };
  state.list.unshift(c);
  state.current = c.id;
  save(state);
  return c;
}

export async function chatPage() {
  const mount = mounter();
  const key = session.key();
  const state = load();
  let models = [];
  try {
    models = (await call('/v1/models', key)).data.map((m) => m.id).sort();
  } catch (e) {
    mount(alertBox(e.message));
    return;
  }
  let current = state.list.find((c) => c.id === state.current) || state.list[0]
    || newConversation(state, models[0] || '');
  state.current = current.id;

  const list = h('ul', { 'aria-label': 'Conversations', class: 'conversations' });
  const model = h('select', { 'aria-label': 'Model' },
    models.map((m) => h('option', { value: m, text: m })));
  const system = h('textarea', { rows: 2, placeholder: 'Optional instructions for every reply' });
  const log = h('div', { role: 'log', 'aria-label': 'Messages', class: 'messages' });
  const input = h('textarea', { 'aria-label': 'Message', rows: 3, placeholder: 'Write a message…' });
  const send = h('button', { type: 'submit', text: 'Send' });
  const stop = h('button', { type: 'button', text: 'Stop', hidden: true });
  const notice = h('div', { class: 'notice' });
  let controller = null;

  function article(role, content) {
    const name = role === 'user' ? 'You' : 'Assistant';
    const body = role === 'user' ? h('p', { class: 'plain', text: content }) : renderMarkdown(content);
    return h('article', { 'aria-label': name, class: `msg ${role}` }, h('h3', { text: name }), body);
  }

  function showConversation() {
    if (models.includes(current.model)) model.value = current.model;
    else current.model = model.value;
    system.value = current.system || '';
    log.replaceChildren(...current.messages.map((m) => article(m.role, m.content)));
    log.scrollTop = log.scrollHeight;
    drawList();
  }

  function drawList() {
    list.replaceChildren(...state.list.map((c) => h('li', { class: c.id === current.id ? 'current' : '' },
      h('button', {
        type: 'button', class: 'open', 'aria-current': c.id === current.id ? 'true' : null,
        onclick: () => { if (controller) return; current = c; state.current = c.id; save(state); showConversation(); },
      }, c.title),
      h('button', {
        type: 'button', 'aria-label': `Rename ${c.title}`, text: 'Rename',
        onclick: () => {
          const title = prompt('Rename the conversation', c.title);
          if (title && title.trim()) { c.title = title.trim().slice(0, 80); save(state); drawList(); }
        },
      }),
      h('button', {
        type: 'button', 'aria-label': `Delete ${c.title}`, text: 'Delete',
        onclick: () => {
          if (controller && c.id === current.id) return;
          state.list = state.list.filter((x) => x.id !== c.id);
          current = state.list[0] || newConversation(state, model.value);
          state.current = current.id;
          save(state);
          showConversation();
        },
      }))));
  }

  model.addEventListener('change', () => { current.model = model.value; save(state); });
  system.addEventListener('change', () => { current.system = system.value; save(state); });

  async function submit(ev) {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    notice.replaceChildren();
    const convo = current;
    convo.model = model.value;
    convo.messages.push({ role: 'user', content: text });
    if (convo.title === 'Untitled') convo.title = text.slice(0, 40);
    save(state);
    drawList();
    input.value = '';
    log.append(article('user', text));
    const reply = { role: 'assistant', content: '' };
    const shown = article('assistant', '');
    shown.setAttribute('aria-busy', 'true');
    log.append(shown);
    log.scrollTop = log.scrollHeight;
    controller = new AbortController();
    send.disabled = true;
    stop.hidden = false;
    let frame = 0;
    const draw = () => {
      frame = 0;
      shown.lastChild.replaceWith(renderMarkdown(reply.content));
      log.scrollTop = log.scrollHeight;
    };
    try {
      await streamChat(key, { model: convo.model, messages: fit(convo.system, convo.messages, convo.model) },
        (piece) => {
          reply.content += piece;
          if (!frame) frame = requestAnimationFrame(draw);
        }, controller.signal);
    } catch (e) {
      if (e.name !== 'AbortError') {
        convo.messages.pop();
        shown.remove();
        notice.replaceChildren(alertBox(e.message));
      }
    } finally {
      if (frame) cancelAnimationFrame(frame);
      if (reply.content) {
        draw();
        convo.messages.push(reply);
      }
      shown.removeAttribute('aria-busy');
      save(state);
      controller = null;
      send.disabled = false;
      stop.hidden = true;
    }
  }
  stop.addEventListener('click', () => controller?.abort());
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });

  const form = h('form', { class: 'composer', onsubmit: submit }, input, send, stop);
  const newChat = h('button', {
    type: 'button', text: 'New chat',
    onclick: () => { if (controller) return; current = newConversation(state, model.value); showConversation(); input.focus(); },
  });
  mount(
    h('div', { class: 'chat' },
      h('aside', {}, newChat, list),
      h('section', { class: 'thread' },
        h('div', { class: 'toolbar' }, field('Model', model),
          h('details', {}, h('summary', { text: 'System prompt' }), field('System prompt', system))),
        log, notice, form)));
  showConversation();
}
