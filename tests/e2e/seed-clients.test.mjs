// Unchanged seed clients (plain EventSource, as the seeds wrote them) in headless
// Chromium against the reference server: the protocol hello (`event: tidings`)
// never reaches them, and they get exactly the events they got before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, api, devToken } from '../lib/server.mjs';
import { collectErrors } from '../lib/browser.mjs';
import { serverAndBrowser } from '../lib/harness.mjs';

const env = serverAndBrowser();

test('seed 000 onmessage client and seed 001/004 named-event client ignore the protocol hello', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.route('**/favicon.ico', (route) => route.fulfill({ status: 204 })); // the JSON page has none
  await page.goto(`${env.server.url}/api/stats`); // any same-origin document
  const token = await devToken(env.server.url, 'seedy');
  await page.evaluate((token) => {
    window.seen = { team: [], notes: [], parseErrors: 0 };
    // Seed 000, verbatim in shape: every unnamed message is JSON with a `type`.
    const es = new EventSource('/api/team-answers/sse/');
    es.onmessage = (event) => {
      try {
        const data = JSON.parse(event.data);
        window.seen.team.push(data.type);
      } catch {
        window.seen.parseErrors += 1;
      }
    };
    // Seeds 001/004: named events, one listener per name they know.
    const notes = new EventSource(`/api/notifications/stream?token=${token}`);
    notes.onmessage = (event) => window.seen.notes.push(`message:${event.data}`);
    for (const name of ['connected', 'unread_count', 'new_notification']) {
      notes.addEventListener(name, (event) => {
        JSON.parse(event.data);
        window.seen.notes.push(name);
      });
    }
  }, token);
  await waitFor(() => page.evaluate(() => window.seen.team.includes('connected') && window.seen.notes.includes('unread_count')), { what: 'greetings' });
  await api(env.server.url, 'POST', '/api/team-answers/', { body: { video_name: 'seed.mp4', frame_index: 1, url: 'http://example.com/f.jpg' } });
  await api(env.server.url, 'POST', '/api/notifications/trigger/', { body: { user_id: 'seedy', title: 't', message: 'm', type: 'info' } });
  await waitFor(() => page.evaluate(() => window.seen.team.includes('create') && window.seen.notes.includes('new_notification')), { what: 'create and new_notification' });
  const seen = await page.evaluate(() => window.seen);
  assert.deepEqual(seen.team, ['connected', 'create']);
  assert.deepEqual(seen.notes.slice(0, 3), ['connected', 'unread_count', 'new_notification']);
  assert.ok(!seen.notes.some((n) => n.startsWith('message:')), `no unnamed event on notifications: ${seen.notes}`);
  assert.equal(seen.parseErrors, 0);
  // Proof the hello is on the wire: a raw read of the same stream shows it.
  const res = await fetch(`${env.server.url}/api/team-answers/sse/`);
  const reader = res.body.getReader();
  let text = '';
  while (!text.includes('event: tidings')) text += new TextDecoder().decode((await reader.read()).value);
  await reader.cancel();
  assert.match(text, /^retry: 1000\n\nevent: tidings\ndata: \{"protocol":"tidings","version":1,/);
  assert.deepEqual(errors, []);
  await context.close();
});
