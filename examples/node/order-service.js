'use strict';
// An order service instrumented with flowscope (node:http, no framework).
//
//   POST /orders {"customer": "c-1", "items": [{"sku": "sku-1", "qty": 2}]}
//     → 201 {"orderId", "traceId", "inventory"}
//   GET  /orders/{id} → the stored order
//
// Each request is a trace of the flow "order-processing" (flowscope.wrapHandler). The order is
// correlated end to end: an incoming X-Motia-Correlation-Id is honoured, otherwise the trace joins
// the group named by the order id. With DOWNSTREAM_URL set, the inventory reservation is an HTTP
// call made through flowscope.wrapFetch (a CLIENT span), so the downstream service (the Python
// example, or any instrumented service) receives traceparent, tracestate and the correlation id
// and continues the same trace under that call. Payment then runs as a child trace started by an emit (event-based
// correlation).
//
// Environment: PORT (default 3001; 0 picks a free port), HOST (127.0.0.1), DOWNSTREAM_URL
// (optional, full URL POSTed with {orderId, items}), RELAY_URL (optional: sent along as
// {"text", "relay"}, so the Python chat example forwards the call one hop further),
// FLOWSCOPE_SOCKET, FLOWSCOPE_DISABLED, PAYMENT_DELAY_MS (default 20).
//
//   cargo run -p flowscope-agent &            # the agent, http://127.0.0.1:4319
//   node examples/node/order-service.js
//   curl -s -XPOST localhost:3001/orders -H 'x-motia-correlation-id: demo-1' \
//        -d '{"customer":"c-1","items":[{"sku":"sku-1","qty":2}]}'
//   curl -s localhost:4319/api/groups/demo-1

const http = require('node:http');

let flowscope;
try {
  flowscope = require('flowscope');
} catch {
  // Running from a checkout without `npm install` in this folder.
  flowscope = require('../../sdk-node');
}

flowscope.init({ service: 'order-service' });

const PORT = Number(process.env.PORT ?? 3001);
const HOST = process.env.HOST || '127.0.0.1';
const DOWNSTREAM_URL = process.env.DOWNSTREAM_URL || '';
const RELAY_URL = process.env.RELAY_URL || '';
const PAYMENT_DELAY_MS = Number(process.env.PAYMENT_DELAY_MS ?? 20);

const fetchTraced = flowscope.wrapFetch();
const orders = new Map();
let nextOrder = 1000;

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = `HTTP_${status}`;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function readJson(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  if (!body) return {};
  try {
    return JSON.parse(body);
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Reserves stock downstream, retrying once on a network error. */
async function reserveInventory(orderId, items) {
  if (!DOWNSTREAM_URL) {
    flowscope.log('info', 'no DOWNSTREAM_URL: inventory reservation skipped');
    return { skipped: true };
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetchTraced(DOWNSTREAM_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(RELAY_URL ? { orderId, items, text: `order ${orderId}`, relay: RELAY_URL } : { orderId, items }),
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new HttpError(502, `inventory answered ${response.status}`);
      return body;
    } catch (err) {
      if (attempt >= 1 || err instanceof HttpError) throw err;
      flowscope.retry(attempt + 1, { reason: err.message, backoffMs: 50 });
      await sleep(50);
    }
  }
}

/** The payment flow, started by the order.created emit: a child trace of the order's trace. */
function processPayment(order) {
  return flowscope.trace('order-processing', { entry: 'event', step: 'process-payment' }, () =>
    flowscope.step('process-payment', async () => {
      await flowscope.streamSend('payments', order.id, () => sleep(PAYMENT_DELAY_MS));
      flowscope.transition('pending', 'paid', 'charge');
      order.status = 'paid';
      await flowscope.stateSet(`orders.${order.id}`, async () => orders.set(order.id, order));
      flowscope.checkpoint(`${order.id}-paid`);
    }),
  );
}

async function createOrder(req, res) {
  const input = await readJson(req);
  const orderId = `ord-${nextOrder++}`;
  // Without an incoming correlation id, the order id names the group.
  if (!flowscope.getContext()?.correlationId) flowscope.correlate(orderId, { name: `order ${orderId}` });

  const items = await flowscope.step('validate-order', async () => {
    const list = Array.isArray(input.items) ? input.items : [];
    if (list.length === 0) throw new HttpError(400, 'an order needs at least one item');
    await flowscope.stateGet(`customers.${input.customer ?? 'anonymous'}`, () => sleep(1));
    return list.map((i) => ({ sku: String(i.sku), qty: Number(i.qty) || 1 }));
  });

  const inventory = await flowscope.step('reserve-inventory', () => reserveInventory(orderId, items));

  const order = { id: orderId, customer: input.customer ?? null, items, status: 'pending' };
  await flowscope.stateSet(`orders.${orderId}`, async () => orders.set(orderId, order));
  flowscope.emit('order.created', { to: 'process-payment' });
  // The emit's subscriber runs after the response, as its own (child) trace.
  setImmediate(() => processPayment(order).catch(() => {}));

  send(res, 201, { orderId, traceId: flowscope.getContext().traceId, inventory });
}

async function getOrder(res, id) {
  const order = await flowscope.stateGet(`orders.${id}`, async () => orders.get(id));
  if (!order) throw new HttpError(404, `no order ${id}`);
  send(res, 200, order);
}

const handler = flowscope.wrapHandler(
  async (req, res) => {
    const path = (req.url || '/').split('?')[0];
    try {
      if (req.method === 'POST' && path === '/orders') return await createOrder(req, res);
      if (req.method === 'GET' && path.startsWith('/orders/')) return await getOrder(res, path.slice(8));
      if (path === '/healthz') return send(res, 200, { ok: true });
      throw new HttpError(404, `no route ${req.method} ${path}`);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (status >= 500) flowscope.log('error', err.message, { stack: err.stack });
      send(res, status, { error: err.message });
    }
  },
  {
    flow: 'order-processing',
    step: (req) => {
      const path = (req.url || '/').split('?')[0];
      if (req.method === 'POST' && path === '/orders') return 'create-order';
      if (req.method === 'GET' && path.startsWith('/orders/')) return 'get-order';
      return `${req.method} ${path}`;
    },
  },
);

const server = http.createServer(handler);
server.listen(PORT, HOST, () => {
  const { port } = server.address();
  console.log(`order-service listening http://${HOST}:${port}`);
});

async function stop() {
  server.close();
  await flowscope.flush(2000);
  process.exit(0);
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
