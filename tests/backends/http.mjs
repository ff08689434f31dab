// What every test backend shares: CORS for the browser tests (any 127.0.0.1 /
// localhost origin, with credentials), JSON bodies, SSE response heads, and the
// process entry point (listen on 127.0.0.1, say where, stop with the parent).
// Node's own `http` only: no dependencies.
import { createServer } from 'node:http';

/** Largest request body a backend reads (bytes). */
export const MAX_BODY = 64 * 1024;

const LOOPBACK_ORIGIN = /^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?$/;

/**
 * Answers CORS for loopback origins. Returns true when the request was a
 * preflight and has been answered.
 */
export function cors(req, res) {
  const origin = req.headers.origin;
  if (origin && LOOPBACK_ORIGIN.test(origin)) {
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('vary', 'origin');
  }
  if (req.method === 'OPTIONS') {
    res.setHeader('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS');
    res.setHeader('access-control-allow-headers', req.headers['access-control-request-headers'] ?? '');
    res.setHeader('access-control-max-age', '600');
    res.writeHead(204).end();
    return true;
  }
  return false;
}

/** Sends a JSON answer. */
export function json(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Reads a JSON body (at most MAX_BODY bytes); rejects with a message on bad input. */
export function readJson(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new Error(`body over ${MAX_BODY} bytes`)); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try { resolve(text ? JSON.parse(text) : {}); } catch (e) { reject(new Error(`body is not JSON: ${e.message}`)); }
    });
    req.on('error', reject);
  });
}

/** Starts an SSE answer the way plain backends do (Express, Django, FastAPI). */
export function sseHead(res) {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.flushHeaders();
}

/** One SSE frame: optional id and event name, one `data:` line per line. */
export function frame({ id, event, data }) {
  let out = '';
  if (event) out += `event: ${event}\n`;
  if (id !== undefined && id !== null) out += `id: ${id}\n`;
  for (const line of String(data).split('\n')) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** The resume position of a request: the `Last-Event-ID` header, else the query parameter `param`. */
export function resumePosition(req, url, param) {
  const header = req.headers['last-event-id'];
  if (header !== undefined && header !== '') return header;
  const q = url.searchParams.get(param);
  return q === null || q === '' ? null : q;
}

/**
 * The entry point of a backend process: `node <backend>.mjs [--port P] [flags]`.
 * `makeHandler(flags)` gives the request handler. Listens on 127.0.0.1:P (0:
 * any free port), prints `listening on http://127.0.0.1:<port>`, and exits when
 * its parent goes away, on SIGTERM and on SIGINT, so a test that dies never
 * leaves it behind.
 */
export function main(makeHandler) {
  const flags = parseFlags(process.argv.slice(2));
  const sockets = new Set();
  const server = createServer(makeHandler(flags));
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.listen(Number(flags.port ?? 0), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
  const stop = () => {
    server.close();
    for (const s of sockets) s.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  exitWithParent(stop);
}

/**
 * Calls `stop` once this process's parent has gone (it is re-parented), checked
 * twice a second; the timer does not keep the process alive. The parent is the
 * one named by `TIDINGS_BACKEND_PARENT` when set (so a parent that died before
 * this process looked is noticed too), else the parent seen at start.
 */
export function exitWithParent(stop) {
  const parent = Number(process.env.TIDINGS_BACKEND_PARENT || process.ppid);
  setInterval(() => { if (process.ppid !== parent) stop(); }, 500).unref();
}

/** `--name value` pairs into an object. */
export function parseFlags(argv) {
  const flags = {};
  for (let i = 0; i < argv.length; i += 1) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
    flags[argv[i].slice(2)] = argv[i + 1];
    i += 1;
  }
  return flags;
}
