// The built binary as the Node tests run it (the SDK tests here, the
// browser tests in web/tests): a config file in a temp dir, `serve` on a
// free port, the CLI on the same config. No dependencies of its own.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import http from 'node:http';
import assert from 'node:assert/strict';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.BIN || join(root, 'target', 'debug', 'chatgate');

const freePort = () => new Promise((ok) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); });
});

/// Starts `chatgate serve` with `yaml` (the config without `listen` and
/// `database`), after `prepare(cli)` (adding users: a running server would
/// see them only within a second or two); answers { base, cli(...args),
/// prepared (what prepare answered), stop() }.
export async function startGateway(yaml, prepare = () => undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'chatgate-node-'));
  const config = join(dir, 'chatgate.yaml');
  const port = await freePort();
  writeFileSync(config, `listen: 127.0.0.1:${port}\nworkers: 1\ndatabase:\n  url: sqlite://${join(dir, 'gate.db')}\n${yaml}`);
  const cli = (...args) => execFileSync(BIN, ['-c', config, ...args], { encoding: 'utf8' });
  const prepared = prepare(cli);
  // GATE_LOG=1 shows the server's log.
  const server = spawn(BIN, ['-c', config, 'serve'], { stdio: ['ignore', 'ignore', process.env.GATE_LOG ? 'inherit' : 'ignore'] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, cli, prepared, stop: () => server.kill('SIGTERM') };
}

/// An OpenAI-compatible upstream that streams `count` chunks of chat
/// text, `piece(i)` each, one every `everyMs`, then usage and `[DONE]`:
/// a reply that takes its time, as a model's does. Answers the server.
export function pacedUpstream({ count, everyMs, piece }) {
  return new Promise((ok) => {
    const s = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        let i = 0;
        const timer = setInterval(() => {
          if (res.destroyed) return clearInterval(timer);
          if (i === count) {
            clearInterval(timer);
            const usage = { prompt_tokens: 3, completion_tokens: count, total_tokens: 3 + count };
            res.end(`data: ${JSON.stringify({ choices: [], usage })}\n\ndata: [DONE]\n\n`);
            return;
          }
          const content = piece(i++);
          res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`);
        }, everyMs);
      });
    }).listen(0, '127.0.0.1', () => ok(s));
  });
}

/// Waits (bounded) until the records hold, for each endpoint of `seen`,
/// the tokens the SDK saw, then checks they are all `client`'s and
/// nothing else's.
export async function recordedAs(gate, client, seen) {
  let rows = [];
  for (let i = 0; i < 100; i++) {
    const report = gate.cli('usage', 'report', '--period', 'today', '--by', 'client,endpoint', '--format', 'json');
    rows = JSON.parse(report).filter((r) => r.endpoint in seen);
    const total = (e) => rows.find((r) => r.endpoint === e)?.total_tokens;
    if (Object.keys(seen).every((e) => total(e) === seen[e])) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(
    rows.map((r) => [r.client, r.endpoint, r.total_tokens]).sort(),
    Object.entries(seen).map(([e, t]) => [client, e, t]).sort(),
  );
}
