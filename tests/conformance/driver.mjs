// Conformance driver for the Node SDK: runs scenario.json against the agent at FLOWSCOPE_SOCKET
// and prints the trace ids it produced, one JSON list on stdout.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const flowscope = require(process.env.FLOWSCOPE_NODE_SDK || '../../sdk-node');

function fail(error) {
  throw Object.assign(new Error(error.message), { name: error.type });
}

const OPS = {
  state_get: (a, fn) => flowscope.stateGet(a.key, fn),
  state_set: (a) => flowscope.stateSet(a.key),
  state_delete: (a) => flowscope.stateDelete(a.key),
  state_clear: () => flowscope.stateClear(),
  emit: (a) => flowscope.emit(a.topic, a.to === undefined ? undefined : { to: a.to }),
  stream_get: (a) => flowscope.streamGet(a.stream, a.id),
  stream_set: (a) => flowscope.streamSet(a.stream, a.id),
  stream_delete: (a) => flowscope.streamDelete(a.stream, a.id),
  stream_send: (a) => flowscope.streamSend(a.stream, a.id),
};

async function run(action) {
  if ('step' in action) {
    await flowscope.step(action.step, async () => {
      if (action.error) fail(action.error);
      for (const inner of action.body || []) await run(inner);
    });
  } else if ('op' in action) {
    if (action.failed !== undefined) {
      // The timed form, with a failure: the thrown error marks the op failed and propagates.
      const [name, message] = action.failed.split(': ');
      try {
        OPS[action.op](action, () => {
          throw Object.assign(new Error(message), { name });
        });
      } catch {
        // expected
      }
    } else {
      OPS[action.op](action);
    }
  } else if ('log' in action) {
    flowscope.log(action.log, action.message, action.fields);
  } else if ('llm' in action) {
    flowscope.llm(action.llm);
  } else if ('retry' in action) {
    flowscope.retry(action.retry.attempt, { reason: action.retry.reason, backoffMs: action.retry.backoffMs });
  } else if ('checkpoint' in action) {
    flowscope.checkpoint(action.checkpoint);
  } else if ('transition' in action) {
    flowscope.transition(action.transition.from, action.transition.to, action.transition.action);
  } else if ('artifact' in action) {
    const { name, ...options } = action.artifact;
    flowscope.artifact(name, options);
  } else if ('custom' in action) {
    flowscope.custom(action.custom.name, action.custom.payload);
  } else if ('http' in action) {
    const { method, url, status } = action.http;
    // A fetch that answers without a network: the SDK's client-call span is what is compared.
    const fetch = flowscope.wrapFetch(async () => ({ status, ok: status < 400, headers: new Headers() }));
    await fetch(url, { method });
  } else {
    throw new Error(`unknown action ${JSON.stringify(action)}`);
  }
}

const scenario = JSON.parse(readFileSync(process.argv[2], 'utf8'));
flowscope.init({ service: 'conformance' });
const ids = [];
for (const spec of scenario.traces) {
  try {
    await flowscope.trace(
      spec.flow,
      { entry: spec.entry, step: spec.step, correlationId: spec.correlationId, attributes: spec.attributes },
      async () => {
        ids.push(flowscope.getContext().traceId);
        for (const action of spec.body) await run(action);
      },
    );
  } catch {
    // the scenario's failing step fails its trace too
  }
}
/** Answers one request through wrapHandler; resolves with the trace id it recorded. */
async function serveOnce(spec) {
  const http = await import('node:http');
  const server = http.createServer(
    flowscope.wrapHandler((req, res) => {
      res.statusCode = spec.status;
      res.end('down');
    }),
  );
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}${spec.path}?${spec.query}`;
  const response = await fetch(url, { method: spec.method });
  await response.text();
  server.close();
  return response.headers.get('traceparent').split('-')[1];
}

const server = await serveOnce(scenario.server);
if (!flowscope.flushSync(10000)) throw new Error(`flush failed: ${JSON.stringify(flowscope.stats())}`);
console.log(JSON.stringify({ traces: ids, server }));
