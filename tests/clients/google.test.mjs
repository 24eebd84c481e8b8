// Google's official SDK (@google/genai) against the built binary, on the
// echo upstream: a plain and a streamed generation, countTokens,
// embeddings and a forced function call with its response, each usage
// recorded exactly as the SDK saw it, under the client `google-genai`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI, FunctionCallingConfigMode } from '@google/genai';
import { startGateway, recordedAs } from './gateway.mjs';

let gate, key;
const MODEL = 'gemini-2.5-flash';
// Tokens the SDK saw, by the endpoint they are recorded under.
const seen = { ':generateContent': 0, ':streamGenerateContent': 0 };

before(async () => {
  gate = await startGateway('upstreams:\n  - name: echo\n    kind: echo\n    models: ["gemini-*"]\n',
    (cli) => JSON.parse(cli('user', 'add', 'alice', '--format', 'json')).key);
  key = gate.prepared;
});
after(() => gate?.stop());

const client = (k = key) => new GoogleGenAI({ apiKey: k, httpOptions: { baseUrl: gate.base } });

test('generateContent, plain and streamed, with its usage', async () => {
  const reply = await client().models.generateContent({ model: MODEL, contents: 'Hello from the SDK' });
  assert.equal(reply.text, 'Hello from the SDK');
  assert.ok(reply.usageMetadata.promptTokenCount > 0 && reply.usageMetadata.candidatesTokenCount > 0);
  seen[':generateContent'] += reply.usageMetadata.totalTokenCount;

  let text = '';
  let last;
  let chunks = 0;
  for await (const chunk of await client().models.generateContentStream({ model: MODEL, contents: 'streamed word by word' })) {
    text += chunk.text ?? '';
    last = chunk.usageMetadata ?? last;
    chunks += 1;
  }
  assert.equal(text, 'streamed word by word');
  assert.ok(chunks > 1, 'the text came in pieces');
  seen[':streamGenerateContent'] += last.totalTokenCount;
});

test('countTokens and embeddings', async () => {
  const counted = await client().models.countTokens({ model: MODEL, contents: 'count me' });
  assert.ok(counted.totalTokens > 0);
  const embedded = await client().models.embedContent({ model: 'gemini-embedding-001', contents: ['one', 'two'] });
  assert.equal(embedded.embeddings.length, 2);
  assert.ok(embedded.embeddings[0].values.length > 0);
});

test('a forced function call and its response', async () => {
  const tools = [{ functionDeclarations: [{
    name: 'get_weather',
    parametersJsonSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  }] }];
  const config = { tools, toolConfig: { functionCallingConfig: { mode: FunctionCallingConfigMode.ANY } } };
  const asked = { role: 'user', parts: [{ text: 'Weather in Oslo?' }] };
  const first = await client().models.generateContent({ model: MODEL, contents: [asked], config });
  assert.equal(first.functionCalls.length, 1);
  const call = first.functionCalls[0];
  assert.deepEqual([call.name, call.args], ['get_weather', { city: 'echo' }]);
  seen[':generateContent'] += first.usageMetadata.totalTokenCount;
  const second = await client().models.generateContent({
    model: MODEL, config,
    contents: [asked, { role: 'model', parts: [{ functionCall: call }] },
      { role: 'user', parts: [{ functionResponse: { name: call.name, response: { result: 'sunny, 21 C' } } }] }],
  });
  assert.equal(second.text, 'sunny, 21 C');
  seen[':generateContent'] += second.usageMetadata.totalTokenCount;
});

test('a refusal is the SDK\'s own error, in Google\'s shape', async () => {
  await assert.rejects(
    client('sk-not-a-key-000000000000000000000000000000000000000000').models.generateContent({ model: MODEL, contents: 'x' }),
    (e) => e.status === 401 && /UNAUTHENTICATED|Incorrect API key/.test(e.message),
  );
});

test('every generation is recorded, as the SDK\'s client, with the tokens it saw', async () => {
  await recordedAs(gate, 'google-genai', seen);
});
