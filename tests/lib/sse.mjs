// Minimal SSE client for Node tests (fetch + streamed body), and raw-socket helpers.
import { createHmac } from 'node:crypto';
import { connect } from 'node:net';

/**
 * An incremental SSE parser for tests: feed it decoded text chunks; it calls
 * `onEvent({id, event, data})` for every dispatched event (ids containing NUL
 * ignored, like the WHATWG rules) and `onId(id)` when a frame sets an id.
 */
export function sseParser(onEvent) {
  let buf = '';
  let cur = { id: null, event: 'message', data: [] };
  return (text) => {
    buf += text;
    let nl;
    while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        onEvent({ id: cur.id, event: cur.event, data: cur.data.length ? cur.data.join('\n') : null });
        cur = { id: null, event: 'message', data: [] };
      } else if (!line.startsWith(':')) {
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'data') cur.data.push(value);
        else if (field === 'event') cur.event = value;
        else if (field === 'id' && !value.includes('\0')) cur.id = value;
      }
    }
  };
}

/**
 * Opens an SSE stream and collects its events. `events` fills as they arrive;
 * `close()` aborts. Event = {id, event, data}.
 */
export async function openSse(url, { headers = {} } = {}) {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
  const events = [];
  const state = { status: res.status, ended: false, events, close: () => controller.abort() };
  if (!res.ok || !res.body) { state.body = await res.text(); state.ended = true; return state; }
  (async () => {
    const decoder = new TextDecoder();
    const feed = sseParser((e) => { if (e.data !== null) events.push(e); });
    try {
      for await (const chunk of res.body) feed(decoder.decode(chunk, { stream: true }));
    } catch { /* aborted */ }
    state.ended = true;
  })();
  return state;
}

/** Signs an HS256 (or other HMAC) JWT with `secret`; `header` overrides let tests forge algorithms. */
export function signJwt(claims, secret, header = { alg: 'HS256', typ: 'JWT' }) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64(header)}.${b64(claims)}`;
  const algo = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[header.alg] ?? 'sha256';
  return `${input}.${createHmac(algo, secret).update(input).digest('base64url')}`;
}

/** The fixed secret `tidings-server --dev` signs with when no --jwt-secret is given. */
export const DEV_SECRET = 'tidings-dev-secret-do-not-use-in-production';

/**
 * A raw HTTP/1.1 GET on its own socket that never reads its response
 * (socket paused), like a stuck or malicious client. Returns the socket.
 */
export function stuckClient(base, path, headers = {}) {
  const { hostname, port } = new URL(base);
  const sock = connect({ host: hostname, port: Number(port) });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  sock.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n${extra}\r\n`);
  sock.pause();
  sock.on('error', () => {});
  return sock;
}

/** Resident memory of a process in KiB (Linux /proc). */
export async function rssKiB(pid) {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}
