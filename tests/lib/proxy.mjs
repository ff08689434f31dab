// A loopback TCP proxy the soak harness controls: pass traffic, cut every
// connection, stall them without closing, trickle bytes, or refuse new ones.
import { createServer, connect } from 'node:net';

/**
 * Starts a proxy on 127.0.0.1 (ephemeral port) in front of `target` ("host:port"), or of
 * several targets taken in turn, one per new connection (so a client that reconnects
 * lands on the next server).
 * @returns {Promise<{url: string, port: number, mode: string, setMode: (mode: 'pass'|'stall'|'trickle'|'refuse') => void,
 *   cut: () => number, open: () => number, close: () => Promise<void>}>}
 */
export async function startProxy(target) {
  const targets = [].concat(target).map((t) => t.split(':'));
  let turn = 0;
  const pairs = new Set();
  let mode = 'pass';
  const server = createServer((client) => {
    if (mode === 'refuse') { client.destroy(); return; }
    const [host, port] = targets[turn++ % targets.length];
    const upstream = connect({ host, port: Number(port) });
    const pair = { client, upstream, timers: [] };
    pairs.add(pair);
    const forget = () => {
      pair.timers.forEach(clearInterval);
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    pipe(pair, client, upstream);
    pipe(pair, upstream, client);
  });
  // Forwards `from` → `to` honouring the current mode at each chunk.
  function pipe(pair, from, to) {
    const queue = [];
    let trickling = null;
    from.on('data', (chunk) => {
      if (mode === 'pass' && queue.length === 0) { to.write(chunk); return; }
      queue.push(chunk);
      if (!trickling) {
        trickling = setInterval(() => {
          if (mode === 'stall') return;
          if (queue.length === 0) { clearInterval(trickling); trickling = null; return; }
          if (mode === 'pass') { while (queue.length) to.write(queue.shift()); return; }
          // trickle: 64 bytes every 20 ms
          const head = queue[0];
          to.write(head.subarray(0, 64));
          if (head.length > 64) queue[0] = head.subarray(64); else queue.shift();
        }, 20);
        pair.timers.push(trickling);
      }
    });
  }
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port: own } = server.address();
  return {
    url: `http://127.0.0.1:${own}`,
    port: own,
    get mode() { return mode; },
    setMode(m) { mode = m; },
    /** Destroys every open connection; returns how many. */
    cut() {
      const n = pairs.size;
      for (const p of [...pairs]) { p.client.destroy(); p.upstream.destroy(); }
      return n;
    },
    open: () => pairs.size,
    close: () => new Promise((r) => {
      for (const p of [...pairs]) { p.client.destroy(); p.upstream.destroy(); }
      server.close(() => r());
    }),
  };
}
