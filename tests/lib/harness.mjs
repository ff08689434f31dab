// The fixture most e2e files share: one real tidings-server and one headless
// Chromium for the whole file, started before its first test and stopped after
// its last on every path (node:test runs `after` hooks when a test fails too).
import { before, after } from 'node:test';
import { startServer } from './server.mjs';
import { launchBrowser } from './browser.mjs';

/**
 * Registers the file's `before`/`after` hooks and returns `{ server, browser }`,
 * filled in once `before` has run. `serverOptions` go to `startServer`; a test may
 * replace `env.server` (a restart) as long as the replacement's `stop` stops both.
 * A file's own top-level `before` would run beside this one, not after it (node:test
 * starts root hooks as they are registered), so set-up that needs the server is done
 * lazily by the tests.
 */
export function serverAndBrowser(serverOptions = {}) {
  const env = { server: undefined, browser: undefined };
  before(async () => {
    env.server = await startServer(serverOptions);
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}

/**
 * A browser context closed when test `t` ends, passed or not, so no connection
 * outlives its test. Its pages' favicon probe is answered 204 here: pages showing
 * a static file have none, and a 404 would reach the console.
 */
export async function contextFor(browser, t) {
  const context = await browser.newContext();
  await context.route('**/favicon.ico', (route) => route.fulfill({ status: 204, body: '' }));
  t.after(() => context.close());
  return context;
}
