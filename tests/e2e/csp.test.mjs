// What README "Bundlers and CSP" says, in headless Chromium against real servers:
// the wasm is served as application/wasm; a Content-Security-Policy needs
// 'wasm-unsafe-eval' in script-src (without it the load fails with a reason);
// the wasm can come from another origin (a CDN) through init({ module_or_path }).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, cpSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, api, siteDir } from '../lib/server.mjs';
import { launchBrowser } from '../lib/browser.mjs';

/**
 * The page's script: subscribes to team answers with no init step (the wasm
 * loads on first use), or preloads it from ?wasm=URL first. The outcome lands
 * on <body>: data-state (the manager's state), data-error (its onError).
 */
const PAGE_JS = `import init, { connect } from '/pkg/index.js';
const wasm = new URLSearchParams(location.search).get('wasm');
window.got = [];
if (wasm) await init({ module_or_path: wasm });
const m = connect('/api/team-answers/sse/');
m.onError((e) => { document.body.dataset.error = e.kind + ': ' + e.message; });
m.onState((s) => { document.body.dataset.state = s; });
m.on('create', (msg) => window.got.push(msg.data.qa));
`;
const page = (csp) => `<!doctype html><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>CSP</title><link rel="icon" href="data:,"><script type="module" src="/page.js"></script><body></body>`;

let site;
let app;
let cdn;
let browser;

before(async () => {
  site = mkdtempSync(join(tmpdir(), 'tidings-csp-'));
  cpSync(join(siteDir(), 'pkg'), join(site, 'pkg'), { recursive: true });
  writeFileSync(join(site, 'page.js'), PAGE_JS);
  // Another origin standing in for a CDN that hosts the package files.
  cdn = await startServer({ staticDir: site });
  writeFileSync(join(site, 'strict.html'), page(`default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ${cdn.url}`));
  writeFileSync(join(site, 'no-wasm-eval.html'), page(`default-src 'self'; script-src 'self'; connect-src 'self'`));
  app = await startServer({ staticDir: site });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await app?.stop();
  await cdn?.stop();
  if (site) rmSync(site, { recursive: true, force: true });
});

/** Opens `path` of the app and waits for the stream to open or the load to fail. */
async function open(path) {
  const p = await browser.newPage();
  const requests = [];
  p.on('request', (r) => requests.push(r.url()));
  await p.goto(`${app.url}${path}`);
  await p.waitForSelector('body[data-state="open"], body[data-state="failed"]', { state: 'attached', timeout: 15_000 });
  return { p, requests, state: await p.getAttribute('body', 'data-state'), error: await p.getAttribute('body', 'data-error') };
}

async function receives(p, text) {
  await api(app.url, 'POST', '/api/team-answers/', { body: { video_name: 'v.mp4', frame_index: 1, url: 'http://127.0.0.1/f.jpg', qa: text } });
  await p.waitForFunction((t) => window.got.includes(t), text, { timeout: 10_000 });
}

test('the server sends the wasm as application/wasm', async () => {
  const res = await fetch(`${app.url}/pkg/tidings_bg.wasm`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/wasm');
});

test("a strict CSP with 'wasm-unsafe-eval' in script-src runs the SDK", async () => {
  const { p, state, error } = await open('/strict.html');
  assert.equal(state, 'open', error);
  await receives(p, `under CSP ${Date.now()}`);
  await p.close();
});

test("without 'wasm-unsafe-eval' the manager fails with a load error giving the CSP reason", async () => {
  const { p, state, error } = await open('/no-wasm-eval.html');
  assert.equal(state, 'failed');
  assert.match(error, /^load: .*(Content Security Policy|unsafe-eval)/i);
  await p.close();
});

test('init({ module_or_path }) loads the wasm from another origin (a CDN path)', async () => {
  const wasm = `${cdn.url}/pkg/tidings_bg.wasm`;
  const { p, state, error, requests } = await open(`/strict.html?wasm=${encodeURIComponent(wasm)}`);
  assert.equal(state, 'open', error);
  assert.ok(requests.includes(wasm), `fetched ${wasm}: ${requests}`);
  assert.ok(!requests.some((u) => u.startsWith(`${app.url}/pkg/`) && u.endsWith('.wasm')), `no wasm from the app origin: ${requests}`);
  await receives(p, `from a CDN ${Date.now()}`);
  await p.close();
});
