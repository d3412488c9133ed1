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
        tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
      },
    );
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
      tracestate: undefined,
    });
  });
});

describe('inject', () => {
  test('current trace and step, the trace correlation id and the received tracestate', () => {
    flowscope.trace('inject-flow', { correlationId: 'cid-9' }, () => {
      const atTrace = flowscope.inject();
      const { traceId } = flowscope.getContext();
      assert.match(atTrace.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      assert.equal(atTrace['x-motia-correlation-id'], 'cid-9');
      flowscope.step('call', () => {
        const { spanId } = flowscope.getContext();
        const headers = flowscope.inject({ Traceparent: 'stale', accept: 'application/json' });
        assert.deepEqual(headers, {
          accept: 'application/json',
          traceparent: `00-${traceId}-${spanId}-01`,
          'x-motia-correlation-id': 'cid-9',
        });
        flowscope.correlate('cid-10');
        const h = flowscope.inject(new Headers());
        assert.equal(h.get('x-motia-correlation-id'), 'cid-10');
        const m = flowscope.inject(new Map());
        assert.equal(m.get('traceparent'), `00-${traceId}-${spanId}-01`);
      });
    });
  });

  test('nothing outside a trace', () => {
    assert.deepEqual(flowscope.inject(), {});
  });
});

test('wrapHandler (node:http): continueTrace adopts the incoming trace id; aborted and 5xx fail', async () => {
  const handler = flowscope.wrapHandler(
    (req, res) => {
      res.setHeader('x-trace-id', flowscope.getContext().traceId);
      if (req.url === '/boom') {
        res.statusCode = 503;
        return res.end('down');
      }
      res.end('ok');
    },
    { flow: 'in-process', continueTrace: true },
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
    assert.equal(trace.attributes['w3c.parent_span_id'], '00f067aa0ba902b7');
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

  test('middleware + fetch wrapper carry traceparent, tracestate and the correlation id', async () => {
    const upstreamTrace = 'aaaabbbbccccddddeeeeffff00001111';
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

    // The order trace, as the agent built it from the order-service process.
    const orderTrace = await agent.trace(orderTraceId);
    assert.equal(orderTrace.service, 'order-service');
    assert.equal(orderTrace.status, 'completed');
    assert.equal(orderTrace.correlationId, 'checkout-42');
    assert.equal(orderTrace.correlationMethod, 'header');
    assert.equal(orderTrace.parentTraceId, upstreamTrace);
    assert.equal(orderTrace.attributes['w3c.parent_span_id'], '1111222233334444');
    const reserveStep = stepNamed(orderTrace, 'reserve-inventory');
    assert.equal(reserveStep.parentId, stepNamed(orderTrace, 'create-order').id);

    // What the inventory process received on the wire.
    assert.equal(downstream.seen.traceparent, `00-${orderTraceId}-${reserveStep.id}-01`);
    assert.equal(downstream.seen.tracestate, 'vendor=abc,other=1');
    assert.equal(downstream.seen.correlationId, 'checkout-42');

    // The inventory trace links back and joins the same group.
    const inventoryTrace = await agent.trace(downstream.traceId);
    assert.equal(inventoryTrace.service, 'inventory-service');
    assert.equal(inventoryTrace.flowName, 'inventory');
    assert.equal(inventoryTrace.parentTraceId, orderTraceId);
    assert.equal(inventoryTrace.correlationId, 'checkout-42');
    assert.equal(inventoryTrace.correlationMethod, 'header');
    assert.equal(inventoryTrace.attributes['w3c.parent_span_id'], reserveStep.id);
    const reserveStock = stepNamed(inventoryTrace, 'reserve-stock');
    assert.deepEqual(
      reserveStock.ops.map((o) => o.key),
      ['inventory.sku-1', 'inventory.sku-2'],
    );
    assert.equal(reserveStock.parentId, stepNamed(inventoryTrace, 'POST /reserve').id);

    // The payment trace (started by the emit) is a child of the order trace, same group.
    const group = await agent.group('checkout-42', (g) => g.traces.length === 3 && g.traces.every((t) => t.status !== 'running'));
    const payment = group.traces.find((t) => t.id !== orderTraceId && t.id !== downstream.traceId);
    assert.equal(payment.parentTraceId, orderTraceId);
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
    const orderTrace = await agent.trace(traceId);
    assert.equal(orderTrace.correlationId, orderId);
    assert.equal(orderTrace.correlationMethod, 'manual');
    assert.equal(orderTrace.parentTraceId, undefined);
    const group = await agent.group(orderId, (g) => g.traces.length === 3);
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
    assert.equal(trace.attributes['w3c.parent_span_id'], undefined);
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
