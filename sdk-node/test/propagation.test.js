'use strict';
// inject/extract (W3C Trace Context rules + X-Motia-Correlation-Id), and the middleware + fetch
// wrapper across a real HTTP hop between two processes.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { once } = require('node:events');

const flowscope = require('..');
const { startAgent, startServer, stepNamed, eventsOf, REPO_DIR } = require('./helpers');

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const ORDER_SERVICE = path.join(REPO_DIR, 'examples', 'node', 'order-service.js');
const INVENTORY_SERVICE = path.join(__dirname, 'fixtures', 'inventory-service.js');

let agent;

before(async () => {
  agent = await startAgent();
  flowscope.init({ service: 'node-propagation-test', socket: agent.socket });
});

after(async () => {
  flowscope.shutdown(2000);
  await agent.stop();
});

describe('extract', () => {
  test('reads the W3C example and the correlation id', () => {
    assert.deepEqual(
      flowscope.extract({ traceparent: VALID, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7', 'x-motia-correlation-id': ' order-1 ' }),
      {
        correlationId: 'order-1',
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        parentSpanId: '00f067aa0ba902b7',
        sampled: true,
        flags: 1,
        traceparent: VALID,
        tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
      },
    );
  });

  test('tracestate follows the W3C grammar: one bad member drops the header', () => {
    const ts = (value) => flowscope.extract({ traceparent: VALID, tracestate: value }).tracestate;
    assert.equal(ts('a=1 , ,b=2'), 'a=1,b=2');
    assert.equal(ts('a=1,a=2'), 'a=1');
    assert.equal(ts('t@vendor=x'), 't@vendor=x');
    for (const bad of ['a=1,B=2', '@a=1,b=2', 'a=,b=2', 'a=b=c', Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')]) {
      assert.equal(ts(bad), undefined, bad);
    }
  });

  test('ignores invalid traceparent values, and tracestate with them', () => {
    for (const bad of [
      '',
      'garbage',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g',
      '00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x',
      [VALID, VALID],
    ]) {
      const got = flowscope.extract({ traceparent: bad, tracestate: 'a=b' });
      assert.equal(got.traceId, undefined, `${bad} should be ignored`);
      assert.equal(got.tracestate, undefined, `tracestate kept with ${bad}`);
    }
  });

  test('accepts a future version with extra fields; flags decide sampled', () => {
    const future = flowscope.extract({ traceparent: 'cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more' });
    assert.equal(future.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(future.sampled, false);
  });

  test('any header container and name case', () => {
    const expected = '4bf92f3577b34da6a3ce929d0e0e4736';
    assert.equal(flowscope.extract({ TraceParent: VALID }).traceId, expected);
    assert.equal(flowscope.extract(new Headers({ Traceparent: VALID })).traceId, expected);
    assert.equal(flowscope.extract(new Map([['TRACEPARENT', VALID]])).traceId, expected);
    assert.equal(flowscope.extract({ 'X-Motia-Correlation-Id': 'c' }).correlationId, 'c');
    assert.equal(flowscope.extract({ tracestate: ['a=1', 'b=2'], traceparent: VALID }).tracestate, 'a=1,b=2');
    assert.deepEqual(flowscope.extract(undefined), {
      correlationId: undefined,
      traceId: undefined,
      parentSpanId: undefined,
      sampled: undefined,
      flags: undefined,
      traceparent: undefined,
      tracestate: undefined,
    });
  });
});

describe('inject', () => {
  test('each call gets its own client span; flags, correlation id and tracestate travel', async () => {
    let traceId;
    let stepSpan;
    const parents = new Set();
    flowscope.trace('inject-flow', { correlationId: 'cid-9' }, () => {
      const atTrace = flowscope.inject();
      traceId = flowscope.getContext().traceId;
      // A new trace: random ids (Level 2 random flag) and sampled by the agent's ratio (1).
      assert.match(atTrace.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-03$`));
      assert.equal(atTrace['x-motia-correlation-id'], 'cid-9');
      parents.add(atTrace.traceparent.split('-')[2]);
      flowscope.step('call', () => {
        stepSpan = flowscope.getContext().spanId;
        const headers = flowscope.inject({ Traceparent: 'stale', accept: 'application/json' });
        assert.deepEqual(Object.keys(headers).sort(), ['accept', 'traceparent', 'x-motia-correlation-id']);
        assert.equal(headers['x-motia-correlation-id'], 'cid-9');
        parents.add(headers.traceparent.split('-')[2]);
        flowscope.correlate('cid-10');
        const h = flowscope.inject(new Headers());
        assert.equal(h.get('x-motia-correlation-id'), 'cid-10');
        parents.add(h.get('traceparent').split('-')[2]);
      });
    });
    assert.equal(parents.size, 3, 'one parent-id per outgoing call');
    assert.ok(!parents.has(stepSpan));
    await flowscope.flush(5000);
    const trace = await agent.trace(traceId);
    const calls = trace.steps.filter((s) => s.kind === 'client');
    assert.deepEqual(new Set(calls.map((c) => c.id)), parents);
    assert.equal(calls.filter((c) => c.parentId === stepSpan).length, 2);
  });

  test('an incoming traceparent is continued with its flags and tracestate', () => {
    for (const flags of ['00', '01', '02', '03']) {
      const incoming = `00-${flowscope.newTraceId()}-00f067aa0ba902b7-${flags}`;
      const [, tid] = incoming.split('-');
      flowscope.trace('continued', { traceparent: incoming, tracestate: 'k=v' }, () => {
        assert.equal(flowscope.getContext().traceId, tid);
        const out = flowscope.inject();
        assert.equal(out.traceparent.split('-')[3], flags);
        assert.equal(out.tracestate, 'k=v');
      });
    }
  });

  test('nothing outside a trace', () => {
    assert.deepEqual(flowscope.inject(), {});
  });
});

test('wrapHandler (node:http) continues the incoming trace id; aborted and 5xx fail', async () => {
  const handler = flowscope.wrapHandler(
    (req, res) => {
      res.setHeader('x-trace-id', flowscope.getContext().traceId);
      if (req.url === '/boom') {
        res.statusCode = 503;
        return res.end('down');
      }
      res.end('ok');
    },
    { flow: 'in-process' },
  );
  const server = http.createServer(handler).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    const ok = await fetch(`${base}/hello?x=1`, { headers: { traceparent: VALID, 'x-motia-correlation-id': 'in-proc' } });
    assert.equal(ok.headers.get('x-trace-id'), '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(ok.headers.get('x-motia-correlation-id'), 'in-proc');
    const boom = await fetch(`${base}/boom`);
    assert.equal(boom.status, 503);
    await flowscope.flush(5000);
    const trace = await agent.trace('4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(trace.flowName, 'in-process');
    assert.equal(trace.status, 'completed');
    assert.equal(trace.correlationId, 'in-proc');
    assert.equal(trace.correlationMethod, 'header');
    assert.equal(trace.parentTraceId, undefined);
    assert.deepEqual(trace.entryPoint, { type: 'api', stepName: 'GET /hello' });
    assert.equal(trace.attributes['http.request.method'], 'GET');
    assert.equal(trace.attributes['url.path'], '/hello');
    assert.equal(trace.segments[0].parentSpanId, '00f067aa0ba902b7');
    assert.equal(stepNamed(trace, 'GET /hello').status, 'completed');
    const [failed] = await agent.traces({ flow: 'in-process', status: 'failed' });
    const failedTrace = await agent.trace(failed.id);
    assert.equal(failedTrace.error.message, 'HTTP 503');
    assert.equal(stepNamed(failedTrace, 'GET /boom').status, 'failed');
  } finally {
    server.close();
  }
});

describe('across a real HTTP hop between two processes', () => {
  let inventory;
  let orders;

  before(async () => {
    const env = { FLOWSCOPE_SOCKET: agent.socket, FLOWSCOPE_DISABLED: '' };
    inventory = await startServer(INVENTORY_SERVICE, env);
    orders = await startServer(ORDER_SERVICE, { ...env, PORT: '0', DOWNSTREAM_URL: `${inventory.url}/reserve`, PAYMENT_DELAY_MS: '5' });
  });

  after(async () => {
    await Promise.all([orders?.stop(), inventory?.stop()]);
  });

  test('middleware + fetch wrapper: one trace across both services, the callee under the call', async () => {
    const upstreamTrace = flowscope.newTraceId();
    const response = await fetch(`${orders.url}/orders`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-motia-correlation-id': 'checkout-42',
        traceparent: `00-${upstreamTrace}-1111222233334444-01`,
        tracestate: 'vendor=abc,other=1',
      },
      body: JSON.stringify({ customer: 'c-1', items: [{ sku: 'sku-1', qty: 2 }, { sku: 'sku-2', qty: 1 }] }),
    });
    assert.equal(response.status, 201);
    const created = await response.json();
    const { traceId: orderTraceId, inventory: downstream } = created;
    assert.equal(downstream.reserved, true);
    assert.equal(orderTraceId, upstreamTrace, "the caller's trace id continues");
    assert.equal(downstream.traceId, upstreamTrace, 'and again one hop further');

    const trace = await agent.trace(upstreamTrace, (t) => t.status === 'completed' && t.segments.length === 2);
    assert.equal(trace.service, 'order-service');
    assert.deepEqual(trace.services, ['order-service', 'inventory-service']);
    assert.equal(trace.correlationId, 'checkout-42');
    assert.equal(trace.correlationMethod, 'header');
    assert.equal(trace.parentTraceId, undefined);
    const [orderPart, inventoryPart] = ['order-service', 'inventory-service'].map((s) => trace.segments.find((g) => g.service === s));
    assert.equal(orderPart.parentSpanId, '1111222233334444');
    const reserveStep = stepNamed(trace, 'reserve-inventory');
    assert.equal(reserveStep.parentId, stepNamed(trace, 'create-order').id);
    const call = trace.steps.find((s) => s.kind === 'client');
    assert.equal(call.parentId, reserveStep.id);
    assert.equal(call.service, 'order-service');
    assert.equal(call.attributes['http.request.method'], 'POST');
    assert.equal(call.attributes['http.response.status_code'], 200);
    assert.equal(inventoryPart.parentSpanId, call.id);
    assert.equal(inventoryPart.flowName, 'inventory');

    // What the inventory process received on the wire: the client span as parent-id.
    assert.equal(downstream.seen.traceparent, `00-${upstreamTrace}-${call.id}-01`);
    assert.equal(downstream.seen.tracestate, 'vendor=abc,other=1');
    assert.equal(downstream.seen.correlationId, 'checkout-42');

    const reserveStock = stepNamed(trace, 'reserve-stock');
    assert.equal(reserveStock.service, 'inventory-service');
    assert.deepEqual(
      reserveStock.ops.map((o) => o.key),
      ['inventory.sku-1', 'inventory.sku-2'],
    );
    assert.equal(reserveStock.parentId, stepNamed(trace, 'POST /reserve').id);

    // The payment trace (started by the emit) is a child of the order trace, same group.
    const group = await agent.group('checkout-42', (g) => g.traces.length === 2 && g.traces.every((t) => t.status !== 'running'));
    const payment = group.traces.find((t) => t.id !== upstreamTrace);
    assert.equal(payment.parentTraceId, upstreamTrace);
    const paymentTrace = await agent.trace(payment.id);
    const processPayment = stepNamed(paymentTrace, 'process-payment');
    assert.deepEqual(eventsOf(processPayment, 'transition').map((t) => [t.from, t.to]), [['pending', 'paid']]);
    assert.equal(group.status, 'completed');
  });

  test('without incoming headers the order id becomes the correlation id', async () => {
    const response = await fetch(`${orders.url}/orders`, {
      method: 'POST',
      body: JSON.stringify({ items: [{ sku: 'sku-3' }] }),
    });
    const { orderId, traceId, inventory: downstream } = await response.json();
    assert.equal(downstream.seen.correlationId, orderId);
    assert.equal(downstream.seen.tracestate, null);
    assert.equal(downstream.traceId, traceId);
    const orderTrace = await agent.trace(traceId, (t) => t.status === 'completed' && t.segments.length === 2);
    assert.equal(orderTrace.correlationId, orderId);
    assert.equal(orderTrace.correlationMethod, 'manual');
    assert.equal(orderTrace.parentTraceId, undefined);
    const group = await agent.group(orderId, (g) => g.traces.length === 2);
    assert.equal(group.name, `order ${orderId}`);
  });

  test('an invalid traceparent is ignored by the middleware (tracestate too)', async () => {
    const response = await fetch(`${inventory.url}/reserve`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
        tracestate: 'vendor=abc',
      },
      body: JSON.stringify({ items: [] }),
    });
    const { traceId } = await response.json();
    assert.notEqual(traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    const trace = await agent.trace(traceId);
    assert.equal(trace.parentTraceId, undefined);
    assert.equal(trace.correlationId, undefined);
    assert.equal(trace.segments[0].parentSpanId, undefined);
  });

  test('errorMiddleware records the thrown error on the request trace', async () => {
    const response = await fetch(`${inventory.url}/fail`, { method: 'POST', headers: { 'x-motia-correlation-id': 'fail-1' } });
    assert.equal(response.status, 500);
    const group = await agent.group('fail-1', (g) => g.traces.length === 1 && g.traces[0].status === 'failed');
    const trace = await agent.trace(group.traces[0].id);
    assert.equal(trace.error.message, 'inventory db down');
    assert.equal(trace.error.type, 'Error');
    assert.equal(trace.error.code, 'E_DB');
    assert.match(trace.error.stack, /inventory-service\.js/);
    assert.equal(stepNamed(trace, 'POST /fail').status, 'failed');
  });
});
