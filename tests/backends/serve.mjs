// Runs one test backend as a child process that a test can restart on the
// same port (SIGKILL and start again: a real process restart, memory lost).
//
// From Node tests: `const b = await startBackend('plain'); … await b.restart(); … await b.stop();`
// From a shell (the wasm browser suite, whose tests run inside the browser):
//   node tests/backends/serve.mjs KIND
// prints `backend KIND on http://127.0.0.1:P control http://127.0.0.1:C` and serves,
// on C, `POST /restart`, `POST /down`, `POST /up` (CORS for loopback pages).
// It stops the backend on SIGTERM, SIGINT and when its own parent goes away.
//
// Kinds: plain (ids 1, 2, 3… per process), uuid (UUID ids; resumes with the
// Mercure-style `?lastEventID=`), llm (a POST streaming a finite answer),
// seed-003 (the FastAPI stack of tests/seed-stack, CORS on).
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cors, json, exitWithParent } from './http.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');

/** The command of each kind, given its port. */
const KINDS = {
  plain: (port) => ['node', [join(here, 'plain.mjs'), '--port', port, '--ids', 'counter']],
  uuid: (port) => ['node', [join(here, 'plain.mjs'), '--port', port, '--ids', 'uuid', '--resume-param', 'lastEventID']],
  llm: (port) => ['node', [join(here, 'llm.mjs'), '--port', port, '--chunk-ms', '40']],
  'seed-003': (port) => ['bash', [join(root, 'tests', 'seed-stack', 'run.sh'), port]],
};

/** How long a (re)start may take: the first seed-003 start creates its virtualenv. */
const READY_MS = { 'seed-003': 180_000 };

/** A free loopback port (asked of the kernel, then released). */
function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

/** Resolves once something accepts TCP on `port`; rejects after `ms` or when `exited` says the child died. */
async function waitListening(port, ms, exited) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`backend on port ${port} exited before listening`);
    const up = await new Promise((ok) => {
      const c = connect({ host: '127.0.0.1', port }, () => { c.destroy(); ok(true); });
      c.on('error', () => ok(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`backend on port ${port} did not listen within ${ms} ms`);
}

/**
 * Starts backend `kind` on a free port (or `port`).
 * @returns {Promise<{kind: string, url: string, port: number, restarts: number, up: () => Promise<void>, down: () => Promise<void>, restart: () => Promise<void>, stop: () => Promise<void>}>}
 */
export async function startBackend(kind, { port } = {}) {
  const command = KINDS[kind];
  if (!command) throw new Error(`unknown backend ${kind}; one of ${Object.keys(KINDS).join(', ')}`);
  const p = port ?? (await freePort());
  let child = null;
  const b = {
    kind,
    port: p,
    url: `http://127.0.0.1:${p}`,
    restarts: 0,
    async up() {
      if (child) return;
      const [cmd, args] = command(String(p));
      const proc = spawn(cmd, args, {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, SEED_CORS: '1', SEED_PING_SECS: '1', TIDINGS_BACKEND_PARENT: String(process.pid) },
      });
      proc.exited = new Promise((r) => proc.on('exit', r));
      let dead = false;
      proc.on('exit', () => { dead = true; });
      child = proc;
      try {
        await waitListening(p, READY_MS[kind] ?? 15_000, () => dead);
      } catch (e) {
        await b.down();
        throw e;
      }
    },
    async down() {
      const proc = child;
      child = null;
      if (!proc) return;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await proc.exited;
    },
    async restart() {
      await b.down();
      await b.up();
      b.restarts += 1;
    },
    stop: () => b.down(),
    /** Kills the child at once (for `process.on('exit')`, where nothing can be awaited). */
    killNow() { if (child) child.kill('SIGKILL'); },
  };
  await b.up();
  return b;
}

/** The shell entry point: one backend and its control server. */
async function cli(kind) {
  const b = await startBackend(kind);
  process.on('exit', () => b.killNow());
  const control = createHttpServer(async (req, res) => {
    if (cors(req, res)) return;
    const url = new URL(req.url, 'http://127.0.0.1');
    const act = { '/restart': b.restart, '/down': b.down, '/up': b.up }[url.pathname];
    if (req.method === 'POST' && act) {
      try { await act(); } catch (e) { return json(res, 500, { error: e.message }); }
    } else if (req.method !== 'GET' || url.pathname !== '/') {
      return json(res, 404, { error: 'POST /restart, /down or /up' });
    }
    return json(res, 200, { kind, url: b.url, restarts: b.restarts });
  });
  control.listen(0, '127.0.0.1', () => {
    console.log(`backend ${kind} on ${b.url} control http://127.0.0.1:${control.address().port}`);
  });
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  exitWithParent(stop);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  cli(process.argv[2]).catch((e) => { console.error(`[backends] ${e.message}`); process.exit(1); });
}
