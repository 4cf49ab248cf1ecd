// The chat page in a real browser: Debian's chromium driven by puppeteer-core against a real
// `hearth serve` (started by scripts/test-ui-browser.sh with API keys on and two models:
// stories-raw, stories260K whose template passes the user's text through, and slow.gguf).
// Screenshots of each state and results.json go to $ARTEFACTS.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { probeScript, tokenLatencies, summary } from './probe.mjs';

const URL = process.env.HEARTH_URL;
const KEY = process.env.HEARTH_KEY;
const ARTEFACTS = process.env.ARTEFACTS;
const results = {};
const problems = [];  // console errors, page errors, CSP violations
let expected401 = true;  // the 401s of the key test are expected network errors
let browser;
let page;

const shot = (name) => page.screenshot({ path: join(ARTEFACTS, `${name}.png`) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function metric(name, labelPart) {
  const res = await fetch(`${URL}/metrics`, { headers: { Authorization: `Bearer ${KEY}` } });
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(`${name}{`) && line.includes(labelPart)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function lastReply() {
  return page.$eval('#messages', (m) => {
    const all = m.querySelectorAll('.message.assistant');
    const last = all[all.length - 1];
    return last ? { text: last.querySelector('.body').textContent, stats: last.querySelector('.stats').textContent,
      streaming: last.classList.contains('streaming'), html: last.querySelector('.body').innerHTML } : null;
  });
}

async function waitDone(timeout = 30000) {
  await page.waitForFunction(() => {
    const all = document.querySelectorAll('#messages .message.assistant');
    const last = all[all.length - 1];
    return last && !last.classList.contains('streaming') && !document.querySelector('#send').hidden;
  }, { timeout });
}

async function setOption(name, value) {
  await page.$eval(`#opt-${name}`, (el, v) => { el.value = v; el.dispatchEvent(new Event('change')); }, String(value));
}

async function newChat() {
  await page.click('#new-chat');
  await page.waitForFunction(() => !document.querySelector('#messages .message'));
}

async function send(text) {
  await page.focus('#prompt');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

before(async () => {
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--disable-extensions'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 800 });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expected401 && /status of 401/.test(m.text())) return;
    problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('dialog', async (d) => {
    if (d.type() === 'confirm' && d.message().startsWith('Delete')) await d.accept();
    else { problems.push(`dialog: ${d.type()} ${d.message()}`); await d.dismiss(); }
  });
  await page.evaluateOnNewDocument(probeScript);
});

after(async () => {
  if (browser) await browser.close();
  results.problems = problems;
  writeFileSync(join(ARTEFACTS, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log('results:', JSON.stringify(results, null, 2));
});

test('first load: under 300 KB gzip, then the API key prompt (401), a wrong key refused, the right one taken', async () => {
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  const sizes = new Map();
  cdp.on('Network.responseReceived', (e) => sizes.set(e.requestId, { url: e.response.url, encoding: e.response.headers['content-encoding'] || e.response.headers['Content-Encoding'] || '' }));
  cdp.on('Network.loadingFinished', (e) => { if (sizes.has(e.requestId)) sizes.get(e.requestId).bytes = e.encodedDataLength; });
  await page.goto(`${URL}/`, { waitUntil: 'load' });
  await page.waitForSelector('#key-dialog[open]', { timeout: 10000 });
  await sleep(200);
  const files = [...sizes.values()].filter((s) => s.bytes !== undefined);
  const total = files.reduce((n, s) => n + s.bytes, 0);
  results.first_load = { bytes_transferred: total, files: files.map((s) => ({ url: s.url.replace(URL, ''), bytes: s.bytes, encoding: s.encoding })) };
  await cdp.detach();
  assert.ok(files.some((s) => s.url.endsWith('/ui/app.js') && s.encoding === 'gzip'), 'app.js came gzip-encoded');
  assert.ok(total < 300 * 1024, `first load transferred ${total} bytes`);

  assert.match(await page.$eval('#key-message', (e) => e.textContent), /API key/);
  await shot('01-api-key-prompt');
  await page.type('#key-input', 'not-the-key');
  await page.click('#key-ok');
  await page.waitForFunction(() => /not accepted/.test(document.querySelector('#key-message').textContent) && document.querySelector('#key-dialog').open);
  await page.type('#key-input', KEY);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => !document.querySelector('#key-dialog').open);
  await page.waitForFunction(() => [...document.querySelectorAll('#model option')].some((o) => o.value === 'stories-raw:latest'));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('hearth.apiKey')), KEY);
  const options = await page.$$eval('#model option', (os) => os.map((o) => o.textContent));
  assert.ok(options.some((t) => /stories-raw:latest · 1\.\d MB · F32/.test(t)), options.join(' | '));
  expected401 = false;
  await shot('02-models');
});

test('a reply at temperature 0 streams in and equals `hearth generate --temp 0`', async () => {
  const prompt = 'Once upon a time, there was a little dog';
  const n = 60;
  const want = execFileSync(process.env.HEARTH_BIN, ['generate', '-m', process.env.STORIES_GGUF, '-p', prompt, '-n', String(n), '--temp', '0', '-t', '1'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  await page.select('#model', 'stories-raw:latest');
  await page.click('#settings-toggle');
  await setOption('temperature', 0);
  await setOption('num_predict', n);
  await setOption('seed', 42);
  await shot('03-settings');
  await page.click('#settings-toggle');
  await page.evaluate(() => window.__hearthProbe.reset());
  await send(prompt);
  await page.waitForSelector('#messages .message.assistant');
  await waitDone();
  const reply = await lastReply();
  const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('hearth.conversations'))[0]);
  const content = stored.messages[1].content;
  // generate prints the prompt, then the continuation
  const continuation = want.startsWith(prompt) ? want.slice(prompt.length) : want;
  assert.equal(content.trim(), continuation.trim(), 'reply == hearth generate --temp 0');
  assert.equal(reply.text.replace(/\s+/g, ' ').trim(), content.replace(/\s+/g, ' ').trim());
  assert.equal(stored.options.temperature, 0);
  assert.match(reply.stats, /\d+ tokens · [\d.]+ tok\/s · TTFT \d+ ms · prompt \d+ tokens/);
  await shot('04-reply');
});

test('Stop mid-stream (Esc and the button) cancels the request; /metrics counts it cancelled', async () => {
  const before = await metric('hearth_requests_finished_total', 'reason="cancelled"');
  await newChat();
  await page.select('#model', 'slow:latest');
  assert.equal(await page.$eval('#model', (e) => e.value), 'slow:latest');
  await setOption('num_predict', 450);
  await page.evaluate(() => window.__hearthProbe.reset());
  await send('Tell me a long story');
  // ~60 tokens in (this model makes tens per second), measure, then stop.
  await page.waitForFunction(() => window.__hearthProbe.data().chunks.length >= 60, { timeout: 60000 });
  assert.equal(await page.$eval('#stop', (e) => e.hidden), false, 'Stop shown while streaming');
  await shot('05-streaming');
  await page.keyboard.press('Escape');
  // Token latency: each chunk of the stream from its arrival in the page to its text on the page.
  const lat = tokenLatencies(await page.evaluate(() => window.__hearthProbe.data()));
  results.token_latency_ms = { ...summary(lat), chunks: lat.length };
  assert.ok(lat.length >= 40, `measured ${lat.length} chunks`);
  assert.ok(results.token_latency_ms.p95 < 50, `95th percentile ${results.token_latency_ms.p95} ms`);
  await waitDone(10000);
  const reply = await lastReply();
  assert.match(reply.stats, /\d+ tokens received · TTFT \d+ ms · stopped/);
  let after = before;
  for (let i = 0; i < 50 && after <= before; ++i) { await sleep(100); after = await metric('hearth_requests_finished_total', 'reason="cancelled"'); }
  assert.equal(after, before + 1, 'one more request finished "cancelled"');
  await shot('06-stopped');

  // The Stop button does the same.
  await send('Another long story');
  await page.waitForFunction(() => {
    const all = document.querySelectorAll('#messages .message.assistant .body');
    return all.length === 2 && all[1].textContent.length > 0;
  }, { timeout: 60000 });
  await page.click('#stop');
  await waitDone(10000);
  assert.match((await lastReply()).stats, /stopped/);
  let again = after;
  for (let i = 0; i < 50 && again <= after; ++i) { await sleep(100); again = await metric('hearth_requests_finished_total', 'reason="cancelled"'); }
  assert.equal(again, after + 1);
});

test('markup in a reply is shown as text and nothing runs', async () => {
  const evil = [
    'Look: <img src=x onerror="window.__pwned=1"> and ',
    '<script>window.__pwned=2</script>\n\n',
    '[click me](javascript:window.__pwned=3) <b onmouseover="window.__pwned=4">bold?</b> ![pic](http://example.invalid/p.png)\n\n',
    '```js\nconst s = "<script>alert(1)</script>";\n```\n',
  ];
  const lines = [JSON.stringify({ model: 'evil', message: { role: 'assistant', content: '', thinking: 'Plan: <b>not</b> this' }, done: false })];
  lines.push(...evil.map((c) => JSON.stringify({ model: 'evil', message: { role: 'assistant', content: c }, done: false })));
  lines.push(JSON.stringify({ model: 'evil', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop',
    eval_count: 4, eval_duration: 2e6, prompt_eval_count: 3, total_duration: 3e6 }));
  await page.setRequestInterception(true);
  const handler = (req) => {
    if (req.url().endsWith('/api/chat')) req.respond({ status: 200, contentType: 'application/x-ndjson', body: `${lines.join('\n')}\n` });
    else req.continue();
  };
  page.on('request', handler);
  try {
    await newChat();
    await page.select('#model', 'stories-raw:latest');
    await send('Echo <img src=x onerror="window.__pwned=5"><script>window.__pwned=6</script>');
    await waitDone();
  } finally {
    page.off('request', handler);
    await page.setRequestInterception(false);
  }
  await sleep(300);  // give any handler a chance to fire
  const check = await page.evaluate(() => {
    const m = document.querySelector('#messages');
    return {
      pwned: window.__pwned,
      imgs: m.querySelectorAll('img').length,
      scripts: m.querySelectorAll('script').length,
      handlers: [...m.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
      jsLinks: m.querySelectorAll('a[href^="javascript" i]').length,
      reply: m.querySelector('.message.assistant .body').textContent,
      user: m.querySelector('.message.user .body').textContent,
      title: document.querySelector('#conversations li.active .conv-title').textContent,
      code: !!m.querySelector('.message.assistant pre code.hljs .hljs-string'),
      thinking: { shown: !m.querySelector('.message.assistant .thinking').hidden,
        open: m.querySelector('.message.assistant .thinking').open,
        text: m.querySelector('.message.assistant .thinking-text').textContent },
      copy: !!m.querySelector('.message.assistant pre button.copy'),
    };
  });
  assert.equal(check.pwned, undefined);
  assert.equal(check.imgs, 0);
  assert.equal(check.scripts, 0);
  assert.equal(check.handlers, 0);
  assert.equal(check.jsLinks, 0);
  assert.ok(check.reply.includes('<img src=x onerror="window.__pwned=1">'), check.reply);
  assert.ok(check.reply.includes('<script>window.__pwned=2</script>'), check.reply);
  assert.ok(check.reply.includes('<b onmouseover="window.__pwned=4">'), check.reply);
  assert.ok(check.reply.includes('"<script>alert(1)</script>"'), 'code block text');
  assert.ok(check.user.includes('<img src=x onerror="window.__pwned=5"><script>'), check.user);
  assert.ok(check.title.startsWith('Echo <img'), check.title);
  assert.ok(check.code, 'code highlighted');
  assert.ok(check.copy, 'copy button on the code block');
  assert.deepEqual(check.thinking, { shown: true, open: false, text: 'Plan: <b>not</b> this' }, 'thinking collapsed, as text');
  await shot('07-untrusted-markup');
  await page.click('.message.assistant .thinking summary');
  assert.equal(await page.$eval('.message.assistant .thinking', (d) => d.open), true, 'thinking expands');

  // The code block's Copy button puts the code on the clipboard.
  await browser.defaultBrowserContext().overridePermissions(URL, ['clipboard-read', 'clipboard-write', 'clipboard-sanitized-write']);
  await page.click('.message.assistant pre button.copy');
  await page.waitForFunction(() => document.querySelector('.message.assistant pre button.copy').textContent === 'Copied');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'const s = "<script>alert(1)</script>";');
});

test('pull progress, loaded models with unload, conversations renamed / kept / deleted, keyboard', async () => {
  // Pull: the progress stream is played back in the browser (no registry in the test).
  const progress = [
    { status: 'pulling manifest' },
    { status: 'pulling 1234', digest: 'sha256:1234', total: 1000, completed: 250 },
    { status: 'pulling 1234', digest: 'sha256:1234', total: 1000, completed: 1000 },
    { status: 'success' },
  ].map((o) => JSON.stringify(o)).join('\n');
  await page.setRequestInterception(true);
  let release;
  const gate = new Promise((r) => { release = r; });
  const handler = async (req) => {
    if (req.url().endsWith('/api/pull')) { await gate; req.respond({ status: 200, contentType: 'application/x-ndjson', body: `${progress}\n` }); }
    else req.continue();
  };
  page.on('request', handler);
  try {
    await page.type('#pull-name', 'tinymodel');
    await page.click('#pull-form-button');
    await page.waitForFunction(() => !document.querySelector('#pull-progress').hidden);
    await shot('08-pulling');
    release();
    await page.waitForFunction(() => /Pulled tinymodel/.test(document.querySelector('#pull-status').textContent));
  } finally {
    page.off('request', handler);
    await page.setRequestInterception(false);
  }

  // Loaded models: stories-raw and slow are loaded; unload one.
  await page.click('#refresh-models');
  await page.waitForFunction(() => /stories-raw/.test(document.querySelector('#loaded').textContent));
  await shot('09-loaded-models');
  await page.evaluate(() => [...document.querySelectorAll('#loaded li')]
    .find((li) => li.querySelector('.name')?.textContent.startsWith('stories-raw')).querySelector('button').click());
  await page.waitForFunction(() => !/stories-raw/.test(document.querySelector('#loaded').textContent));
  const ps = await (await fetch(`${URL}/api/ps`, { headers: { Authorization: `Bearer ${KEY}` } })).json();
  assert.ok(!ps.models.some((m) => m.name.startsWith('stories-raw')), 'unloaded on the server');

  // Keyboard: Shift+Enter is a new line, not a send.
  await page.focus('#prompt');
  await page.keyboard.type('line one');
  await page.keyboard.down('Shift');
  await page.keyboard.press('Enter');
  await page.keyboard.up('Shift');
  await page.keyboard.type('line two');
  assert.equal(await page.$eval('#prompt', (e) => e.value), 'line one\nline two');
  await page.$eval('#prompt', (e) => { e.value = ''; });

  // Rename the current conversation, reload: it is still there (localStorage), with its messages.
  const count = await page.$$eval('#conversations li', (l) => l.length);
  assert.ok(count >= 3, `${count} conversations listed`);
  await page.click('#conversations li.active .conv-actions button');  // Rename
  await page.waitForSelector('#conversations input.rename');
  await page.$eval('#conversations input.rename', (e) => { e.value = ''; });
  await page.type('#conversations input.rename', 'Renamed chat');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('#conversations li.active .conv-title')?.textContent === 'Renamed chat');
  await page.reload({ waitUntil: 'load' });
  await page.waitForFunction(() => document.querySelector('#conversations li.active .conv-title')?.textContent === 'Renamed chat');
  assert.ok(await page.$eval('#messages', (m) => m.querySelectorAll('.message').length) >= 2, 'messages kept');
  await page.waitForFunction(() => [...document.querySelectorAll('#model option')].some((o) => o.value === 'stories-raw:latest'));
  // Export: the conversation as a JSON download.
  const cdp = await page.createCDPSession();
  await cdp.send('Page.setDownloadBehavior', { behavior: 'allow', downloadPath: ARTEFACTS });
  await page.click('#conversations li.active .conv-actions button[title="Export as JSON"]');
  const exported = join(ARTEFACTS, 'Renamed_chat.json');
  for (let i = 0; i < 50 && !existsSync(exported); ++i) await sleep(100);
  await cdp.detach();
  const conv = JSON.parse(readFileSync(exported, 'utf8'));
  assert.equal(conv.title, 'Renamed chat');
  assert.ok(conv.messages.length >= 2 && conv.messages[0].role === 'user');
  await page.click('#conversations li.active .conv-actions button.danger');  // Delete (confirm accepted)
  await page.waitForFunction((n) => document.querySelectorAll('#conversations li').length === n - 1, {}, count);
  assert.ok(!(await page.$$eval('#conversations .conv-title', (l) => l.map((e) => e.textContent))).includes('Renamed chat'));
});

test('dark theme and a phone-sized viewport', async () => {
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.click('#theme');
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(light, dark);
  await shot('10-dark');
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  await sleep(200);
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(fits, 'no horizontal scrolling on a 390 px wide screen');
  assert.equal(await page.$eval('#sidebar', (e) => e.getBoundingClientRect().right <= 0), true, 'sidebar tucked away');
  await shot('11-phone');
  await page.tap('#menu');
  await page.waitForFunction(() => document.querySelector('#sidebar').getBoundingClientRect().left >= 0);
  await sleep(250);
  await shot('12-phone-menu');
  await page.click('#theme');  // back to light for the next runs' screenshots
  await page.setViewport({ width: 1200, height: 800 });
});

test('no console errors, page errors or CSP violations', async () => {
  assert.deepEqual(problems, []);
});
