// chatgate's own API, as this page calls it: keys only in the
// Authorization header, never in a URL.

const KEY = 'chatgate.key';
const ADMIN = 'chatgate.admin';

// Sign-in with the identity provider: `{sso, user, admin, csrf}` from
// `/auth/session` (the session itself is an HttpOnly cookie).
let sso = { sso: null, user: null };

export const session = {
  key: () => localStorage.getItem(KEY),
  setKey: (k) => (k ? localStorage.setItem(KEY, k) : localStorage.removeItem(KEY)),
  // The admin token is kept for this tab only.
  admin: () => sessionStorage.getItem(ADMIN),
  setAdmin: (t) => (t ? sessionStorage.setItem(ADMIN, t) : sessionStorage.removeItem(ADMIN)),
  sso: () => sso,
  /// Asks the gateway who is signed in with the identity provider (once,
  /// where the gateway has none: nothing changes until a reload).
  async refreshSso() {
    if (sso.checked && !sso.sso) return sso;
    try {
      const res = await fetch('/auth/session', { cache: 'no-store' });
      sso = { ...(res.ok ? await res.json() : { sso: null, user: null }), checked: true };
    } catch { sso = { sso: null, user: null }; }
    return sso;
  },
  async signOutSso() {
    if (sso.user) await fetch('/auth/logout', { method: 'POST', headers: { 'x-csrf-token': sso.csrf } });
    sso = { ...sso, user: null };
  },
};

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(res) {
  let message = `The gateway answered ${res.status}.`;
  let code = '';
  try {
    const body = await res.json();
    message = body?.error?.message || message;
    code = body?.error?.code || '';
  } catch { /* not JSON */ }
  return new ApiError(res.status, message, code);
}

/// A request with `token` (none: the sign-in session's cookie, and its
/// CSRF token for a change); JSON in and out. Throws ApiError on refusal.
export async function call(path, token, { method = 'GET', body, signal } = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  if (!token && sso.csrf && method !== 'GET') headers['x-csrf-token'] = sso.csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method, headers, signal,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  return (res.headers.get('content-type') || '').includes('json') ? res.json() : res.text();
}

/// Streams a chat completion: calls `onText` with each piece of text as
/// its chunk arrives, and `onUsage` with the usage the last chunk carries.
/// Resolves when the stream ends (or is aborted).
export async function streamChat(token, request, onText, signal, onUsage = () => {}) {
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...request, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!res.ok) throw await errorOf(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
      for (const line of event.split(/\r?\n/)) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') return;
        try {
          const chunk = JSON.parse(data);
          const text = chunk.choices?.[0]?.delta?.content;
          if (text) onText(text);
          if (chunk.usage) onUsage(chunk.usage);
        } catch { /* a keep-alive or a foreign event */ }
      }
    }
  }
}
