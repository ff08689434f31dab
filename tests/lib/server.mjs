// Starts a real tidings-server on 127.0.0.1 with a fresh data dir, for tests.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests/ lives directly under it). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Path of the tidings-server binary: $TIDINGS_SERVER_BIN, else the workspace debug build. */
export function serverBinary() {
  if (process.env.TIDINGS_SERVER_BIN) return process.env.TIDINGS_SERVER_BIN;
  const targetDir = process.env.CARGO_TARGET_DIR ?? join(repoRoot, 'target');
  return join(targetDir, 'debug', 'tidings-server');
}

/** Directory assembled by scripts/build-site.sh: examples/vanilla + the npm package at /pkg/. */
export function siteDir() {
  return process.env.TIDINGS_SITE_DIR ?? join(repoRoot, 'target', 'site');
}

/** Every server started here that has not exited yet. */
const live = new Set();
/** Kills whatever is still running when this process ends, however it ends. */
function killLive() { for (const proc of live) proc.kill('SIGKILL'); }
let exitHooked = false;
function hookExit() {
  if (exitHooked) return;
  exitHooked = true;
  // 'exit' runs on a normal end, process.exit() and an uncaught exception or
  // rejection; a signal's default action skips it, so signals exit through it.
  process.on('exit', killLive);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
    process.once(sig, () => process.exit(code));
  }
}

/**
 * Starts the server and resolves once it prints its listening line.
 * @param {{args?: string[], dataDir?: string, addr?: string, staticDir?: string}} [opts] staticDir defaults to the demo site
 * @returns {Promise<{url: string, dataDir: string, proc: import('node:child_process').ChildProcess, stop: () => Promise<void>, kill: (signal?: string) => Promise<void>}>}
 */
export async function startServer(opts = {}) {
  const bin = serverBinary();
  if (!existsSync(bin)) throw new Error(`tidings-server binary not found at ${bin}: build it first (cargo build -p tidings-server)`);
  const ownsDataDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'tidings-e2e-'));
  const args = [
    '--dev', '--addr', opts.addr ?? '127.0.0.1:0', '--data-dir', dataDir,
    '--heartbeat-secs', '1', '--video-step-ms', '60',
    ...((opts.staticDir ?? siteDir()) && existsSync(opts.staticDir ?? siteDir()) ? ['--static-dir', opts.staticDir ?? siteDir()] : []),
    ...(opts.args ?? []),
  ];
  hookExit();
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } });
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  let log = '';
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 15 s:\n${log}`)), 15_000);
    const onData = (chunk) => {
      log += chunk;
      const m = /listening on (https?:\/\/[\d.:]+)/.exec(log);
      if (m) { clearTimeout(timer); resolveUrl(m[1]); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}) before listening:\n${log}`)); });
  });
  const exited = new Promise((r) => proc.on('exit', r));
  const running = () => proc.exitCode === null && proc.signalCode === null;
  // A server that has not exited 5 s after the signal gets SIGKILL: it never stays.
  const kill = async (signal = 'SIGTERM') => {
    if (running()) proc.kill(signal);
    let timer;
    const late = await Promise.race([exited.then(() => false), new Promise((r) => { timer = setTimeout(() => r(true), 5000); })]);
    clearTimeout(timer);
    if (late && running()) {
      proc.kill('SIGKILL');
      await exited;
    }
  };
  const stop = async () => {
    await kill('SIGTERM');
    if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return { url, dataDir, proc, stop, kill };
}

/** JSON request helper against the server; throws with the body on a non-2xx status. */
export async function api(base, method, path, { body, token } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A dev token for a user (server must run with --dev). */
export async function devToken(base, userId, channels = []) {
  return (await api(base, 'POST', '/api/auth/dev-token', { body: { user_id: userId, channels } })).token;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes; returns the value or throws. */
export async function waitFor(check, { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}
