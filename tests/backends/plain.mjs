// A plain SSE backend, written the way an Express or Django app writes one,
// knowing nothing of Tidings. State lives in memory, so a restart starts over.
//
//   GET  /events     the stream: unnamed (or named) events with an `id:`; resumes
//                    after `Last-Event-ID` (header) or `?<resume-param>=` when this
//                    process still has that id, else live. Every other query
//                    parameter is ignored, so the Tidings polling URL
//                    (`/events?poll=1&lastEventId=N`) gets the endless stream too.
//   POST /publish    {event?, data} (data: a string, or JSON sent as its text) to
//                    every open stream; answers {id}.
//   GET  /stats      {boot, connections, published}; `boot` changes on restart.
//   GET  /app/…      200 text/html (an SPA fallback route).
//   else             404 text/html (Express's default page).
//
// Flags: --port P, --ids counter|uuid (counter: 1, 2, 3… per process, so ids
// start again at 1 after a restart), --resume-param NAME (default lastEventId).
import { randomUUID } from 'node:crypto';
import { cors, json, readJson, sseHead, frame, resumePosition, main } from './http.mjs';

/** Events kept for resuming (per process). */
const LOG_SIZE = 1000;

/** The request handler of one backend process. */
export function plainBackend({ ids = 'counter', 'resume-param': resumeParam = 'lastEventId' } = {}) {
  if (ids !== 'counter' && ids !== 'uuid') throw new Error(`--ids must be counter or uuid, not ${ids}`);
  const boot = randomUUID();
  const streams = new Set();
  const log = [];
  let counter = 0;
  const nextId = () => (ids === 'uuid' ? randomUUID() : String(++counter));

  const subscribe = (req, res, url) => {
    sseHead(res);
    // A first comment, as Express apps write: some browsers (Firefox) report an
    // EventSource open only once body bytes arrive.
    res.write(': connected\n\n');
    const from = resumePosition(req, url, resumeParam);
    const at = from === null ? -1 : log.findIndex((e) => e.id === from);
    for (const e of at < 0 ? [] : log.slice(at + 1)) res.write(frame(e));
    streams.add(res);
    res.on('close', () => streams.delete(res));
  };

  const publish = async (req, res) => {
    let body;
    try { body = await readJson(req); } catch (e) { return json(res, 400, { error: e.message }); }
    if (body.data === undefined) return json(res, 422, { error: 'data is required' });
    if (body.event !== undefined && (typeof body.event !== 'string' || /[\r\n]/.test(body.event))) {
      return json(res, 422, { error: 'event must be a one-line string' });
    }
    const e = { id: nextId(), event: body.event, data: typeof body.data === 'string' ? body.data : JSON.stringify(body.data) };
    log.push(e);
    if (log.length > LOG_SIZE) log.shift();
    const bytes = frame(e);
    for (const s of streams) s.write(bytes);
    return json(res, 200, { id: e.id });
  };

  return (req, res) => {
    if (cors(req, res)) return;
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/events') return subscribe(req, res, url);
    if (req.method === 'POST' && url.pathname === '/publish') return publish(req, res);
    if (req.method === 'GET' && url.pathname === '/stats') {
      return json(res, 200, { boot, connections: streams.size, published: log.length });
    }
    const page = url.pathname.startsWith('/app/')
      ? [200, '<!doctype html><html><body><div id="root"></div></body></html>']
      : [404, `<!DOCTYPE html><html><body><pre>Cannot ${req.method} ${url.pathname}</pre></body></html>`];
    res.writeHead(page[0], { 'content-type': 'text/html; charset=utf-8' });
    return res.end(page[1]);
  };
}

if (import.meta.url === `file://${process.argv[1]}`) main(plainBackend);
