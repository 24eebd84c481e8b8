// OpenAI's official TypeScript SDK against the built binary, on the echo
// upstream: an agent's tool round trip in both of OpenAI's shapes, chat
// completions (the SDK's tool runner, plain and streamed) and the
// Responses API (its stream helper), each recorded with the usage echo
// reported.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway, recordedAs } from './gateway.mjs';

let gate, key;
// Tokens the SDK saw, by endpoint, to compare with what was recorded.
const seen = { '/chat/completions': 0, '/responses': 0 };

before(async () => {
  gate = await startGateway('upstreams:\n  - name: echo\n    kind: echo\n    models: ["gpt-*"]\n',
    (cli) => JSON.parse(cli('user', 'add', 'alice', '--format', 'json')).key);
  key = gate.prepared;
});
after(() => gate?.stop());

const client = () => new OpenAI({ baseURL: `${gate.base}/v1`, apiKey: key });
const weather = {
  type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1 } },
  required: ['city', 'days'],
};

test('chat completions: the tool runner calls the forced tool and ends with text', async () => {
  for (const stream of [false, true]) {
    const called = [];
    const runner = client().chat.completions.runTools({
      model: 'gpt-4o', stream, tool_choice: 'required',
      ...(stream ? { stream_options: { include_usage: true } } : {}),
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools: [{
        type: 'function',
        function: {
          name: 'weather', parameters: weather, parse: JSON.parse,
          function: (args) => { called.push(args); return 'sunny, 21 C'; },
        },
      }],
    });
    const final = await runner.finalContent();
    assert.deepEqual(called, [{ city: 'echo', days: 1 }], `stream: ${stream}`);
    assert.equal(final, 'sunny, 21 C');
    const usage = await runner.totalUsage();
    assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    seen['/chat/completions'] += usage.total_tokens;
  }
});

test('the Responses API: a forced function call streamed, then text for its output', async () => {
  const tools = [{ type: 'function', name: 'weather', parameters: weather, strict: false }];
  const first = await client().responses.stream({
    model: 'gpt-4.1', input: 'Weather in Oslo?', tools, tool_choice: 'required',
  }).finalResponse();
  const call = first.output.find((o) => o.type === 'function_call');
  assert.ok(call, JSON.stringify(first.output));
  assert.deepEqual(JSON.parse(call.arguments), { city: 'echo', days: 1 });
  const second = await client().responses.create({
    model: 'gpt-4.1', tools, tool_choice: 'required',
    input: [
      { role: 'user', content: 'Weather in Oslo?' },
      { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
      { type: 'function_call_output', call_id: call.call_id, output: 'sunny, 21 C' },
    ],
  });
  assert.equal(second.output_text, 'sunny, 21 C');
  assert.ok(first.usage.output_tokens > 0 && second.usage.input_tokens > 0);
  seen['/responses'] += first.usage.total_tokens + second.usage.total_tokens;
});

test('every call is recorded, as the SDK\'s client, with the tokens it saw', async () => {
  await recordedAs(gate, 'openai-node', seen);
});
