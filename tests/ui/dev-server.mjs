// Development server for the UI: serves agent/src/ui/assets straight from disk (edit, reload — no
// cargo rebuild) and proxies everything else (the API, the SSE stream) to a running agent.
//
//   node tests/ui/dev-server.mjs [--agent http://127.0.0.1:4319] [--port 4320]
//
// WebSocket (/api/ws) is not proxied; the UI uses SSE unless `?transport=ws` is given.

import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const agent = new URL(opt('--agent', process.env.FLOWSCOPE_URL || 'http://127.0.0.1:4319'));
const port = Number(opt('--port', '4320'));
const assets = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../agent/src/ui/assets');
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

http
  .createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const file = url.pathname === '/' ? 'index.html' : url.pathname.startsWith('/ui/') ? url.pathname.slice(4) : null;
    if (file !== null) {
      const full = path.join(assets, path.normalize(file));
      if (!full.startsWith(assets)) return res.writeHead(403).end();
      try {
        const body = await readFile(full);
        res.writeHead(200, { 'content-type': types[path.extname(full)] || 'application/octet-stream', 'cache-control': 'no-store' });
        return res.end(body);
      } catch {
        return res.writeHead(404).end('not found');
      }
    }
    const up = http.request(
      { host: agent.hostname, port: agent.port, path: req.url, method: req.method, headers: { ...req.headers, host: agent.host } },
      (r) => {
        res.writeHead(r.statusCode, r.headers);
        res.flushHeaders();
        r.pipe(res);
      },
    );
    up.on('error', (e) => {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'agent_unreachable', message: e.message } }));
    });
    req.pipe(up);
  })
  .listen(port, '127.0.0.1', () => console.log(`flowscope UI dev server: http://127.0.0.1:${port}/ (agent ${agent.origin})`));
