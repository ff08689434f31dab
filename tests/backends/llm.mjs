// An LLM-style endpoint: a POST whose answer streams as SSE and then ends.
// The answer is a pure function of the prompt, so a restarted process can
// resume one: a request with `Last-Event-ID: k` continues after chunk k.
//
//   POST /chat    {prompt, chunks?} → text/event-stream: `id: i` and
//                 `data: {"i":i,"text":"…"}` for i = 1..chunks (default 20), one
//                 every --chunk-ms (default 40), then the response ends normally.
//                 A bad body is 400 JSON; `?format=json` answers the whole text
//                 as application/json instead (a wrong content type for a stream).
//   GET  /chat    405.
//   GET  /stats   {boot, posts, resumed, finished} for this process.
//
// Flags: --port P, --chunk-ms MS.
import { randomUUID } from 'node:crypto';
import { cors, json, readJson, sseHead, frame, main } from './http.mjs';

const MAX_CHUNKS = 1000;

/** Chunk `i` (1-based) of the answer to `prompt`. */
export function chunkText(prompt, i) {
  return `${i === 1 ? '' : ' '}${prompt}#${i}`;
}

/** The request handler of one backend process. */
export function llmBackend({ 'chunk-ms': chunkMs = '40' } = {}) {
  const boot = randomUUID();
  const stats = { boot, posts: 0, resumed: 0, finished: 0 };
  const pace = Number(chunkMs);

  const chat = async (req, res, url) => {
    stats.posts += 1;
    let body;
    try { body = await readJson(req); } catch (e) { return json(res, 400, { error: e.message }); }
    const chunks = body.chunks ?? 20;
    if (typeof body.prompt !== 'string' || body.prompt === '') return json(res, 400, { error: 'prompt must be a non-empty string' });
    if (!Number.isInteger(chunks) || chunks < 1 || chunks > MAX_CHUNKS) return json(res, 400, { error: `chunks must be 1..${MAX_CHUNKS}` });
    if (url.searchParams.get('format') === 'json') {
      const text = Array.from({ length: chunks }, (_, k) => chunkText(body.prompt, k + 1)).join('');
      return json(res, 200, { text });
    }
    const after = Number.parseInt(req.headers['last-event-id'] ?? '0', 10);
    const start = Number.isInteger(after) && after > 0 ? after + 1 : 1;
    if (start > 1) stats.resumed += 1;
    sseHead(res);
    let i = start;
    const timer = setInterval(() => {
      if (i > chunks) {
        clearInterval(timer);
        stats.finished += 1;
        res.end();
        return;
      }
      res.write(frame({ id: i, data: JSON.stringify({ i, text: chunkText(body.prompt, i) }) }));
      i += 1;
    }, pace);
    res.on('close', () => clearInterval(timer));
    return undefined;
  };

  return (req, res) => {
    if (cors(req, res)) return;
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/chat' && req.method === 'POST') return chat(req, res, url);
    if (url.pathname === '/chat') return json(res, 405, { error: 'use POST' });
    if (url.pathname === '/stats' && req.method === 'GET') return json(res, 200, stats);
    return json(res, 404, { error: 'not found' });
  };
}

if (import.meta.url === `file://${process.argv[1]}`) main(llmBackend);
