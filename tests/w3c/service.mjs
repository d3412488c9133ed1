// The test service of the W3C Trace Context validation harness
// (https://github.com/w3c/trace-context/tree/main/test), built on the flowscope Node SDK:
// `wrapHandler` makes each request one trace (a valid incoming traceparent/tracestate is
// continued, anything else restarts), and `wrapFetch` makes every call back to the harness a
// CLIENT span carrying the propagation headers. Run it with tests/w3c/run.sh.
//
// node service.mjs <port> [socket]

import http from 'node:http';
import flowscope from '../../sdk-node/index.js';

const [port, socket] = process.argv.slice(2);
flowscope.init({ service: 'w3c-test-service-node', ...(socket ? { socket } : {}) });
const tracedFetch = flowscope.wrapFetch(fetch);

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : [];
}

const server = http.createServer(
  flowscope.wrapHandler(async (req, res) => {
    try {
      for (const { url, arguments: args = [] } of await readJson(req)) {
        const response = await tracedFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(args),
        });
        await response.arrayBuffer();
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
    }
  }),
);
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${port}/test`);
});
