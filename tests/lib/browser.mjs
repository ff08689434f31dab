// Launches Debian's Chromium through playwright-core (never a downloaded browser).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './server.mjs';

/** Flags this machine needs: no GPU, no QUIC, and no background traffic to the (closed) internet. */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Launches headless Chromium (with `extraArgs` after the usual flags). Playwright gives every launch a fresh temporary
 * profile (the fresh --user-data-dir), removed when the browser closes.
 */
export async function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
}

/** Collects a page's console errors and page errors so a test can assert there were none. */
export function collectErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return errors;
}

/** Saves a screenshot under artifacts/ (ignored by git) and returns its path. */
export async function screenshot(page, name) {
  const dir = join(repoRoot, 'artifacts', 'screenshots');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * In a page of the server's origin: loads the package from /pkg and connects one manager per URL with `options`;
 * `window.ms[url]` is its manager and `window.got[url]` the id of every event it gets but the greetings
 * (`connected`, whose id is the stream's head).
 */
export async function recordIds(page, urls, options) {
  await page.evaluate(async ({ urls, options }) => {
    const mod = await import('/pkg/tidings.js');
    await mod.default();
    window.got = {};
    window.ms = {};
    for (const url of urls) {
      window.got[url] = [];
      const m = mod.connect(url, options);
      window.ms[url] = m;
      m.on('*', (_msg, info) => { if (info.id && info.type !== 'connected') window.got[url].push(info.id); });
    }
  }, { urls, options });
}
