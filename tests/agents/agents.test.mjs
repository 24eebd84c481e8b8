// The coding agents, as their users run them headless, against the built
// binary on the echo upstream (as `serve --demo` answers): Claude Code's
// `claude -p`, Codex's `codex exec` and Gemini CLI's `gemini -p`, each set
// up exactly as the guides
// in docs/agents/ say, each recorded under its own client with the
// tokens the agent itself reports.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway } from '../clients/gateway.mjs';

const bin = (name) => join(dirname(fileURLToPath(import.meta.url)), 'node_modules', '.bin', name);
let gate, key;

before(async () => {
  gate = await startGateway('upstreams:\n  - name: echo\n    kind: echo\n    models: ["*"]\n',
    (cli) => JSON.parse(cli('user', 'add', 'alice', '--format', 'json')).key);
  key = gate.prepared;
});
after(() => gate?.stop());

/// Runs an agent in a home of its own (no settings but the ones given),
/// nothing on stdin; answers its stdout.
function run(program, args, env) {
  const home = mkdtempSync(join(tmpdir(), 'chatgate-agent-'));
  return new Promise((ok, fail) => {
    const child = execFile(bin(program), args, {
      cwd: home, timeout: 120_000, maxBuffer: 16 << 20,
      env: { PATH: process.env.PATH, HOME: home, ...env(home) },
    }, (err, stdout, stderr) => (err ? fail(new Error(`${program}: ${err.message}\n${stderr}`)) : ok(stdout)));
    child.stdin.end();
  });
}

/// The report's row for `client` on `endpoint` (every endpoint: `null`),
/// once its total reaches `total` (records are written in batches, within
/// a second or two).
async function recorded(client, endpoint, total) {
  let row;
  for (let i = 0; i < 100; i++) {
    const by = endpoint ? 'client,endpoint' : 'client';
    const rows = JSON.parse(gate.cli('usage', 'report', '--period', 'today', '--by', by, '--format', 'json'));
    row = rows.find((r) => r.client === client && (!endpoint || r.endpoint === endpoint));
    if (row?.total_tokens >= total) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return row;
}

test('claude -p: Claude Code through the gateway, its tokens recorded', async () => {
  const out = await run('claude', ['-p', 'Say hello to the gateway', '--output-format', 'json'], () => ({
    ANTHROPIC_BASE_URL: gate.base,
    ANTHROPIC_AUTH_TOKEN: key,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  }));
  const result = JSON.parse(out);
  assert.equal(result.is_error, false, out);
  assert.match(result.result, /Say hello to the gateway/);
  const models = Object.values(result.modelUsage);
  const reported = models.reduce((n, m) => n + m.inputTokens + m.outputTokens
    + m.cacheReadInputTokens + m.cacheCreationInputTokens, 0);
  assert.ok(reported > 0);
  const row = await recorded('claude-code', '/messages', reported);
  assert.equal(row?.total_tokens, reported, JSON.stringify(row));
  assert.equal(row.requests, result.num_turns);
});

test('codex exec: Codex CLI through the gateway (Responses API), its tokens recorded', async () => {
  const out = await run('codex', ['exec', '--skip-git-repo-check', '--json', 'Say hello to the gateway'], (home) => {
    mkdirSync(join(home, '.codex'));
    writeFileSync(join(home, '.codex', 'config.toml'), [
      'model_provider = "chatgate"',
      '',
      '[model_providers.chatgate]',
      'name = "chatgate"',
      `base_url = "${gate.base}/v1"`,
      'env_key = "CHATGATE_API_KEY"',
      'wire_api = "responses"',
      '',
    ].join('\n'));
    return { CHATGATE_API_KEY: key };
  });
  const events = out.trim().split('\n').map((l) => JSON.parse(l));
  const said = events.find((e) => e.item?.type === 'agent_message');
  assert.match(said?.item.text ?? '', /Say hello to the gateway/, out);
  const turns = events.filter((e) => e.type === 'turn.completed');
  const reported = turns.reduce((n, e) => n + e.usage.input_tokens + e.usage.output_tokens, 0);
  assert.ok(reported > 0);
  const row = await recorded('codex', '/responses', reported);
  assert.equal(row?.total_tokens, reported, JSON.stringify(row));
});

test('gemini -p: Gemini CLI through the gateway (Gemini\'s API), its tokens recorded', async () => {
  const out = await run('gemini', ['-p', 'Say hello to the gateway', '--output-format', 'json'], (home) => {
    mkdirSync(join(home, '.gemini'));
    writeFileSync(join(home, '.gemini', 'settings.json'),
      JSON.stringify({ security: { auth: { selectedType: 'gemini-api-key' } } }));
    return {
      GOOGLE_GEMINI_BASE_URL: gate.base,
      GEMINI_API_KEY: key,
      GEMINI_CLI_TRUST_WORKSPACE: 'true',
    };
  });
  const result = JSON.parse(out.slice(out.indexOf('{')));
  assert.match(result.response, /Say hello to the gateway/);
  const models = Object.values(result.stats.models);
  const reported = models.reduce((n, m) => n + m.tokens.total, 0);
  const requests = models.reduce((n, m) => n + m.api.totalRequests, 0);
  assert.ok(reported > 0);
  const row = await recorded('gemini-cli', null, reported);
  assert.equal(row?.total_tokens, reported, JSON.stringify(row));
  assert.equal(row.requests, requests);
});
