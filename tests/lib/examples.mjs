// Builds and serves the framework examples for the e2e tests.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, lstatSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from './server.mjs';

/** Directory of an example app (examples/<name>). */
export const exampleDir = (name) => join(repoRoot, 'examples', name);

/** Runs an npm script of an example synchronously (bounded by `timeoutMs`), returning its output. */
export function npmRun(name, script, { env = {}, timeoutMs = 300_000 } = {}) {
  return execFileSync('npm', ['run', script], {
    cwd: exampleDir(name), env: { ...process.env, ...env }, timeout: timeoutMs, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolvePort(port)); });
  });
}

/**
 * Starts a long-running npm script (e.g. `next start`) and resolves when `readyPattern` appears in its output.
 * @returns {Promise<{stop: () => Promise<void>}>}
 */
export async function npmServe(name, args, readyPattern, { env = {}, timeoutMs = 60_000 } = {}) {
  const proc = spawn('npx', args, { cwd: exampleDir(name), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${args.join(' ')} not ready in ${timeoutMs} ms:\n${log}`)), timeoutMs);
    const onData = (c) => { log += c; if (readyPattern.test(log)) { clearTimeout(timer); ok(); } };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => { clearTimeout(timer); fail(new Error(`${args.join(' ')} exited (${code}):\n${log}`)); });
  });
  const exited = new Promise((r) => proc.on('exit', r));
  return {
    log: () => log,
    stop: async () => {
      try { process.kill(-proc.pid, 'SIGTERM'); } catch { /* already gone */ }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    },
  };
}

/**
 * Where an example's `tidings` came from, by npm's record of its last install:
 * scripts/test.sh installs the packed tarball (`npm pack`), as users get it
 * from a registry. Throws when it is a link or a folder instead.
 */
export function tidingsTarball(name) {
  const dir = join(exampleDir(name), 'node_modules', 'tidings');
  if (lstatSync(dir).isSymbolicLink()) throw new Error(`${dir} is a link, not an installed package`);
  const lock = JSON.parse(readFileSync(join(exampleDir(name), 'node_modules', '.package-lock.json'), 'utf8'));
  const resolved = lock.packages?.['node_modules/tidings']?.resolved ?? '';
  if (!/\.tgz$/.test(resolved)) throw new Error(`examples/${name}: tidings resolved from ${resolved || 'nowhere'}, not a packed tarball (run scripts/test.sh)`);
  return resolved;
}

/** Fetches /api/stats from a tidings-server. */
export async function stats(base) {
  return (await fetch(`${base}/api/stats`)).json();
}
