// examples/webpack: a plain webpack 5 build of the packed package, served by the real server, in headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, api } from '../lib/server.mjs';
import { launchBrowser, collectErrors } from '../lib/browser.mjs';
import { npmRun, exampleDir, tidingsTarball } from '../lib/examples.mjs';

const dist = join(exampleDir('webpack'), 'dist');
let server;
let browser;

before(async () => {
  tidingsTarball('webpack');
  npmRun('webpack', 'build');
  server = await startServer({ staticDir: dist });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('webpack 5 with a plain config emits the wasm and the page receives events', async () => {
  assert.ok(readdirSync(dist).some((f) => f.endsWith('.wasm')), `a .wasm asset in ${readdirSync(dist)}`);
  const page = await browser.newPage();
  const errors = collectErrors(page);
  await page.goto(`${server.url}/`);
  await page.waitForSelector('#state[data-state="open"]', { timeout: 15_000 });
  const text = `webpack answer ${Date.now()}`;
  const created = await api(server.url, 'POST', '/api/team-answers/', {
    body: { video_name: 'v.mp4', frame_index: 2, url: 'http://127.0.0.1/f.jpg', qa: text },
  });
  await page.waitForSelector(`#answers li[data-answer="${created.id}"]:has-text("${text}")`, { timeout: 10_000 });
  assert.deepEqual(errors, []);
  await page.close();
});
