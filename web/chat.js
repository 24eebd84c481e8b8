// The chat page: conversations kept in this browser, replies streamed and
// rendered as Markdown (raw HTML in a reply is shown as text, and the
// result is sanitised again before it reaches the page).

import { marked } from './vendor/marked.esm.js';
import DOMPurify from './vendor/purify.es.mjs';
import hljs from './vendor/highlight.min.js';
import { call, session, streamChat } from './api.js';
import { alertBox, field, h, mounter } from './dom.js';

const STORE = 'chatgate.conversations';

hljs.configure({ ignoreUnescapedHTML: true });

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
    // Highlighted by the fence's language (`language-…`), else as guessed;
    // highlight.js escapes the text it wraps.
    const code = pre.querySelector('code');
    const lang = [...(code?.classList || [])].find((c) => c.startsWith('language-'))?.slice(9);
    if (code && (!lang || hljs.getLanguage(lang))) hljs.highlightElement(code);
    const copy = h('button', { type: 'button', class: 'copy', text: 'Copy', 'aria-label': 'Copy code' });
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
// An image is counted as a high-detail tile set (OpenAI's 765 tokens).
const IMAGE_TOKENS = 765;
const tokensOf = (m) => Math.ceil(m.content.length / 4) + 4 + (m.images?.length ?? 0) * IMAGE_TOKENS;

/// Models that take images (OpenAI's, Anthropic's, Gemini's, and common
/// open vision models); for others "Attach image" is off.
export const takesImages = (model) => /^(gpt-4o|gpt-4\.1|gpt-5|o[1-9]|chatgpt-4o|claude|gemini)|vision|llava|pixtral|qwen.*vl/i.test(model);

/// A stored message as the API takes it: text, then its images as parts.
export function wire(m) {
  if (!m.images?.length) return { role: m.role, content: m.content };
  return {
    role: m.role,
    content: [{ type: 'text', text: m.content }, ...m.images.map((url) => ({ type: 'image_url', image_url: { url } }))],
  };
}

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
/// Keeps the conversations; false when the browser's storage is full
/// (images take room), so the page can say so.
function save(state) {
  try { localStorage.setItem(STORE, JSON.stringify(state)); return true; } catch { return false; }
}

/// What a reply's tokens cost at the gateway's prices (null: unpriced,
/// or not known).
async function costOf(model, usage) {
  const q = new URLSearchParams({
    model,
    prompt_tokens: usage.prompt_tokens ?? 0,
    completion_tokens: usage.completion_tokens ?? 0,
    cached_tokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
  });
  try { return (await call(`/v1/me/cost?${q}`, session.key())).cost_usd; } catch { return null; }
}

/// A reply's tokens (and cost, when the gateway priced it).
function usageText(u) {
  const tokens = `${(u.prompt_tokens ?? 0).toLocaleString('en-US')} + ${(u.completion_tokens ?? 0).toLocaleString('en-US')} tokens`;
  return typeof u.cost_usd === 'number' ? `${tokens} · $${u.cost_usd.toFixed(4)}` : tokens;
}

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
  // Images waiting to go with the next message (data: URLs), shown above it.
  let pending = [];
  const attached = h('div', { class: 'attached', 'aria-label': 'Attached images', role: 'list' });
  const picker = h('input', { type: 'file', accept: 'image/*', multiple: true, hidden: true });
  const attach = h('button', { type: 'button', text: 'Attach image', onclick: () => picker.click() });
  const MAX_IMAGE = 5 * 1024 * 1024;
  async function addImages(files) {
    for (const f of files) {
      if (!f.type.startsWith('image/')) continue;
      if (f.size > MAX_IMAGE) { notice.replaceChildren(alertBox(`${f.name} is larger than 5 MB.`)); continue; }
      const url = await new Promise((ok, fail) => {
        const r = new FileReader();
        r.onload = () => ok(r.result);
        r.onerror = () => fail(r.error);
        r.readAsDataURL(f);
      });
      pending.push(url);
    }
    drawAttached();
  }
  function drawAttached() {
    attached.replaceChildren(...pending.map((url, i) => h('div', { role: 'listitem', class: 'thumb' },
      h('img', { src: url, alt: `Image ${i + 1} to send` }),
      h('button', { type: 'button', text: 'Remove', 'aria-label': `Remove image ${i + 1}`, onclick: () => { pending.splice(i, 1); drawAttached(); } }))));
  }
  picker.addEventListener('change', () => { addImages([...picker.files]); picker.value = ''; });
  input.addEventListener('paste', (ev) => {
    const files = [...(ev.clipboardData?.files || [])].filter((f) => f.type.startsWith('image/'));
    if (files.length && takesImages(model.value)) { ev.preventDefault(); addImages(files); }
  });
  const send = h('button', { type: 'submit', text: 'Send' });
  const stop = h('button', { type: 'button', text: 'Stop', hidden: true });
  const notice = h('div', { class: 'notice' });
  let controller = null;

  /// A message, with what can be done to it: Copy and Regenerate on a
  /// reply, Edit on the last message of yours. `at`: its index (none
  /// while it streams).
  function article(m, at) {
    const name = m.role === 'user' ? 'You' : 'Assistant';
    const body = m.role === 'user'
      ? h('div', {}, h('p', { class: 'plain', text: m.content }),
        (m.images || []).map((url, i) => h('img', { src: url, class: 'sent', alt: `Attached image ${i + 1}` })))
      : renderMarkdown(m.content);
    const tools = h('div', { class: 'msg-tools' });
    if (at !== undefined) {
      const last = current.messages.length - 1;
      if (m.role === 'assistant') {
        tools.append(
          h('button', { type: 'button', text: 'Copy', onclick: () => navigator.clipboard?.writeText(m.content) }),
          h('button', { type: 'button', text: 'Regenerate', onclick: () => regenerate(at) }));
        if (m.usage) tools.append(h('span', { class: 'meta', text: usageText(m.usage) }));
      } else if (at === last || (at === last - 1 && current.messages[last].role === 'assistant')) {
        tools.append(h('button', { type: 'button', text: 'Edit', onclick: () => edit(at) }));
      }
    }
    return h('article', { 'aria-label': name, class: `msg ${m.role}` }, h('h3', { text: name }), body, tools);
  }

  /// Replies from `at` on are dropped and the one before is asked again.
  function regenerate(at) {
    if (controller) return;
    current.messages.splice(at);
    save(state);
    showConversation();
    ask(current);
  }

  /// Your message at `at` goes back to the box, with what came after it.
  function edit(at) {
    if (controller) return;
    input.value = current.messages[at].content;
    pending = current.messages[at].images || [];
    drawAttached();
    current.messages.splice(at);
    save(state);
    showConversation();
    input.focus();
  }

  function showConversation() {
    if (models.includes(current.model)) model.value = current.model;
    else current.model = model.value;
    system.value = current.system || '';
    log.replaceChildren(...current.messages.map((m, i) => article(m, i)));
    log.scrollTop = log.scrollHeight;
    drawList();
    fitAttach();
  }

  function drawList() {
    list.replaceChildren(...state.list.map((c) => h('li', { class: c.id === current.id ? 'current' : '' },
      h('button', {
        type: 'button', class: 'open', 'aria-current': c.id === current.id ? 'true' : null,
        onclick: () => { if (controller) return; current = c; state.current = c.id; save(state); showConversation(); },
      }, c.title),
      // Rename and Delete behind a small menu, so the list stays a list of titles.
      h('details', { class: 'menu' }, h('summary', { 'aria-label': `Actions for ${c.title}`, text: '⋯' }),
        h('div', { class: 'menu-items' },
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
      }))))));
  }

  model.addEventListener('change', () => { current.model = model.value; save(state); });
  system.addEventListener('change', () => { current.system = system.value; save(state); });

  async function submit(ev) {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    const convo = current;
    const images = pending;
    pending = [];
    drawAttached();
    convo.messages.push(images.length ? { role: 'user', content: text, images } : { role: 'user', content: text });
    if (convo.title === 'Untitled') convo.title = text.slice(0, 40);
    save(state);
    drawList();
    input.value = '';
    showConversation();
    if (!(await ask(convo)) && convo.messages.at(-1)?.content === text) {
      // Refused: the message goes back to the box, not lost.
      convo.messages.pop();
      save(state);
      if (convo === current) { input.value = text; pending = images; drawAttached(); showConversation(); }
    }
  }

  /// Streams a reply to the conversation as it stands; whether the
  /// gateway took the request.
  async function ask(convo) {
    let taken = true;
    notice.replaceChildren();
    convo.model = model.value;
    const reply = { role: 'assistant', content: '' };
    const shown = article(reply);
    shown.setAttribute('aria-busy', 'true');
    log.append(shown);
    log.scrollTop = log.scrollHeight;
    controller = new AbortController();
    send.disabled = true;
    stop.hidden = false;
    let frame = 0;
    const draw = () => {
      frame = 0;
      shown.children[1].replaceWith(renderMarkdown(reply.content));
      log.scrollTop = log.scrollHeight;
    };
    try {
      await streamChat(key, { model: convo.model, messages: fit(convo.system, convo.messages, convo.model).map(wire) },
        (piece) => {
          reply.content += piece;
          if (!frame) frame = requestAnimationFrame(draw);
        }, controller.signal, (usage) => { reply.usage = usage; });
      if (reply.usage) reply.usage.cost_usd = await costOf(convo.model, reply.usage);
    } catch (e) {
      if (e.name !== 'AbortError') {
        taken = false;
        shown.remove();
        notice.replaceChildren(alertBox(e.message));
      }
    } finally {
      if (frame) cancelAnimationFrame(frame);
      if (reply.content) convo.messages.push(reply);
      if (!save(state)) notice.replaceChildren(alertBox('This browser has no room left to keep the conversation (images take much); delete old conversations.'));
      controller = null;
      send.disabled = false;
      stop.hidden = true;
      // Drawn again with its tools (and its tokens, when the gateway said).
      if (convo === current) showConversation();
    }
    return taken;
  }
  stop.addEventListener('click', () => controller?.abort());
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });

  const form = h('form', { class: 'composer', onsubmit: submit }, input, attach, picker, send, stop);
  const fitAttach = () => { attach.disabled = !takesImages(model.value); attach.title = attach.disabled ? 'This model does not take images' : ''; };
  model.addEventListener('change', fitAttach);
  const newChat = h('button', {
    type: 'button', text: 'New chat',
    onclick: () => { if (controller) return; current = newConversation(state, model.value); showConversation(); input.focus(); },
  });
  mount(
    h('div', { class: 'chat' },
      h('aside', {}, newChat, list),
      h('section', {
        class: 'thread',
        // Images dropped anywhere on the conversation go with the next message.
        ondragover: (ev) => { if (!attach.disabled) ev.preventDefault(); },
        ondrop: (ev) => { if (attach.disabled) return; ev.preventDefault(); addImages([...ev.dataTransfer.files]); },
      },
        h('div', { class: 'toolbar' }, field('Model', model),
          h('details', {}, h('summary', { text: 'System prompt' }), field('System prompt', system))),
        log, notice, attached, form)));
  showConversation();
}
