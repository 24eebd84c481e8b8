// Anthropic's official TypeScript SDK against the built binary, on the
// echo upstream: messages (plain and streamed through the SDK's stream
// helper), count_tokens, the model list, and each refusal raised as the
// SDK's own error class, a spent quota without retries.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startGateway } from './gateway.mjs';

let gate, key, limitedKey;
const MODEL = 'claude-sonnet-4-5';

before(async () => {
  const add = (cli, ...args) => JSON.parse(cli('user', 'add', ...args, '--format', 'json')).key;
  gate = await startGateway('upstreams:\n  - name: echo\n    kind: echo\n    models: ["claude-*", "gpt-4o"]\n',
    (cli) => [add(cli, 'alice'), add(cli, 'carol', '--request-limit', '1')]);
  [key, limitedKey] = gate.prepared;
});
after(() => gate?.stop());

const client = (k = key, opts = {}) => new Anthropic({ baseURL: gate.base, apiKey: k, ...opts });

test('a message, plain and streamed, with its usage', async () => {
  const message = await client().messages.create({
    model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'Hello from the SDK' }],
  });
  assert.equal(message.type, 'message');
  assert.equal(message.content[0].text, 'Hello from the SDK');
  assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0);

  const seen = [];
  const stream = client().messages.stream({
    model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'streamed word by word' }],
  }).on('text', (t) => seen.push(t));
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, 'streamed word by word');
  assert.ok(seen.length > 1, 'the text came in pieces');
  assert.ok(final.usage.input_tokens > 0 && final.usage.output_tokens > 0);
});

test('a Bearer token (Claude Code\'s ANTHROPIC_AUTH_TOKEN) works as the key', async () => {
  const c = new Anthropic({ baseURL: gate.base, apiKey: null, authToken: key });
  const message = await c.messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(message.content[0].text, 'hi');
});

test('count_tokens and the model list', async () => {
  const counted = await client().messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'count me' }] });
  assert.ok(counted.input_tokens > 0);
  const ids = [];
  for await (const m of client().models.list()) ids.push(m.id);
  assert.ok(ids.length > 0);
});

test('refusals are the SDK\'s own errors', async () => {
  await assert.rejects(
    client('sk-not-a-key-000000000000000000000000000000000000000000', { maxRetries: 0 }).messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.AuthenticationError && /Incorrect API key/.test(e.message),
  );
  await assert.rejects(
    client().messages.create({ model: 'not-served', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.NotFoundError,
  );
  // The first request spends carol's limit of one; the second is refused
  // and not retried (x-should-retry: false), though the SDK retries 429s.
  await client(limitedKey).messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
  let calls = 0;
  const counting = (...args) => { calls += 1; return fetch(...args); };
  await assert.rejects(
    client(limitedKey, { fetch: counting }).messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.RateLimitError && /request limit/.test(e.message),
  );
  assert.equal(calls, 1, 'asked once, not retried');
});

// Claude Code with a wrong key once retried for minutes: it retries
// errors the SDK would not (a 401: it may refresh its credentials) unless
// the server says a retry cannot help. This client does the same: it
// retries everything but `x-should-retry: false`. Each refusal a retry
// cannot fix says so, and it asks once.
class RetriesEverything extends Anthropic {
  async shouldRetry(response) {
    return response.headers.get('x-should-retry') !== 'false';
  }
}

test('a client that retries every error stops at once on a refusal no retry fixes', async () => {
  for (const [k, model, kind] of [
    ['sk-not-a-key-000000000000000000000000000000000000000000', MODEL, Anthropic.AuthenticationError],
    [key, 'not-served', Anthropic.NotFoundError],
  ]) {
    let calls = 0;
    const counting = (...args) => { calls += 1; return fetch(...args); };
    const c = new RetriesEverything({ baseURL: gate.base, apiKey: k, fetch: counting, maxRetries: 3 });
    await assert.rejects(
      c.messages.create({ model, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof kind,
    );
    assert.equal(calls, 1, `${kind.name}: asked once, not retried`);
  }
});

test('a forced tool call and its result, streamed through the SDK\'s helper', async () => {
  const tools = [{
    name: 'Bash', description: 'Runs a command',
    input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] },
  }];
  const asked = { role: 'user', content: 'list the files' };
  const first = await client().messages.stream({
    model: MODEL, max_tokens: 64, tools, tool_choice: { type: 'any' }, messages: [asked],
  }).finalMessage();
  assert.equal(first.stop_reason, 'tool_use');
  const use = first.content[0];
  assert.equal(use.type, 'tool_use');
  assert.equal(use.name, 'Bash');
  assert.deepEqual(use.input, { command: 'echo' });
  const second = await client().messages.create({
    model: MODEL, max_tokens: 64, tools, tool_choice: { type: 'any' }, messages: [
      asked,
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'README.md' }] },
    ],
  });
  assert.equal(second.stop_reason, 'end_turn');
  assert.equal(second.content[0].text, 'README.md');
});
