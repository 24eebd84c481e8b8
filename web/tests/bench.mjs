// The chat page under load, in Debian's chromium (run by bench/web.sh):
// a 500-message conversation is opened, scrolled and streamed into, and
// the page measures itself: how long opening takes, the longest gap
// between two frames while scrolling and while streaming (a gap over 50 ms
// is a stall one sees), and how long each chunk takes from the moment the
// page's stream reader gets it to the moment it is in the document.
// Prints a Markdown table.

import { chromium } from 'playwright-core';
import { pacedUpstream, startGateway } from '../../tests/clients/gateway.mjs';

const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium';
const CHUNKS = 300, EVERY_MS = 15;

// A reply like a model's: prose, lists and code, a few words a chunk.
const words = ('Here is **how** it works: the `gateway` reads the key, checks the limits and '
  + 'forwards the request.\n\n- one\n- two\n\n```rust\nfn main() { println!("hello"); }\n```\n\n').split(/(?<= )/);

const upstream = await pacedUpstream({ count: CHUNKS, everyMs: EVERY_MS, piece: (i) => words[i % words.length] });
const gate = await startGateway(`upstreams:\n  - name: model\n    kind: openai\n`
  + `    base_url: http://127.0.0.1:${upstream.address().port}/v1\n    api_keys: [sk-upstream]\n    models: [gpt-4o]\n`,
(cli) => JSON.parse(cli('user', 'add', 'bench', '--format', 'json')).key);
const { base, prepared: key } = gate;

const browser = await chromium.launch({ executablePath: BROWSER, args: ['--no-sandbox'] });
try {
  const page = await (await browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
  // Before any page script: note each chunk the stream reader hands over,
  // and keep a record of the gaps between frames.
  await page.addInitScript(() => {
    window.reads = [];
    const read = ReadableStreamDefaultReader.prototype.read;
    ReadableStreamDefaultReader.prototype.read = async function () {
      const r = await read.call(this);
      if (!r.done) window.reads.push(performance.now());
      return r;
    };
    window.frames = [];
    const tick = (t) => { window.frames.push(t); requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  });
  await page.goto(`${base}/`);
  const reply = words.join('').repeat(2);
  const messages = Array.from({ length: 500 }, (_, i) => (i % 2
    ? { role: 'assistant', content: reply } : { role: 'user', content: `question ${i / 2}: how does it work?` }));
  await page.evaluate(({ k, messages }) => {
    localStorage.setItem('chatgate.key', k);
    const id = crypto.randomUUID();
    localStorage.setItem('chatgate.conversations', JSON.stringify({
      current: id, list: [{ id, title: 'Five hundred', system: '', model: 'gpt-4o', messages }],
    }));
  }, { k: key, messages });

  const opened = Date.now();
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll('article').length === 500);
  const openMs = Date.now() - opened;

  const gapSince = (from) => page.evaluate((t0) => {
    const f = window.frames.filter((t) => t >= t0);
    let max = 0;
    for (let i = 1; i < f.length; i++) max = Math.max(max, f[i] - f[i - 1]);
    return { max, frames: f.length };
  }, from);

  // Scroll from the bottom to the top and back, a wheel turn a frame.
  let t0 = await page.evaluate(() => performance.now());
  await page.mouse.move(600, 450);
  for (let i = 0; i < 120; i++) { await page.mouse.wheel(0, i < 60 ? -2000 : 2000); }
  const scroll = await gapSince(t0);

  // Stream a reply into it.
  t0 = await page.evaluate(() => {
    window.shownAt = [];
    new MutationObserver(() => window.shownAt.push(performance.now()))
      .observe(document.querySelector('[role=log]'), { subtree: true, childList: true, characterData: true });
    return performance.now();
  });
  // Typed and sent with Enter, as a person does (Playwright's own click
  // checks lay out the page twice and would be measured with it).
  await page.getByRole('textbox', { name: 'Message' }).focus();
  await page.keyboard.type('and once more?', { delay: 30 });
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('article').length === 502
    && !document.querySelector('article[aria-busy]'), null, { timeout: 60_000 });
  const stream = await gapSince(t0);
  // For each chunk: the time until it is in the document, and how many
  // frames began in between (1: it is in the next frame drawn).
  const shown = await page.evaluate((from) => window.reads.filter((t) => t >= from).map((r) => {
    const at = window.shownAt.find((s) => s >= r) ?? Infinity;
    return { ms: at - r, frames: window.frames.filter((f) => f > r && f <= at).length };
  }), t0);
  const delays = shown.map((c) => c.ms);
  const frames = Math.max(...shown.map((c) => c.frames));
  delays.sort((a, b) => a - b);
  const q = (p) => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))];
  const ms = (v) => `${v.toFixed(1)} ms`;
  console.log(`Chat page, 500-message conversation (chromium, ${new Date().toISOString().slice(0, 10)}):\n`);
  console.log('| opening | longest frame gap, scrolling | longest frame gap, streaming | chunk read → in the page: median | p99 | max | frames begun before a chunk is in | chunks |');
  console.log('|---|---|---|---|---|---|---|---|');
  console.log(`| ${openMs} ms | ${ms(scroll.max)} | ${ms(stream.max)} | ${ms(q(0.5))} | ${ms(q(0.99))} | ${ms(delays.at(-1))} | at most ${frames} | ${delays.length} |`);
} finally {
  await browser.close();
  gate.stop();
  upstream.close();
}
