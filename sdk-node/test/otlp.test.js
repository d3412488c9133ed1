'use strict';
// OTLP ingest with the real OpenTelemetry JS SDK and its three OTLP exporters (http/json,
// http/protobuf, grpc) → a real agent → its API; and a mixed trace where an OpenTelemetry service
// calls a flowscope one over W3C headers.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const otel = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { OTLPTraceExporter: JsonExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { OTLPTraceExporter: ProtoExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { OTLPTraceExporter: GrpcExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');

const flowscope = require('..');
const { startAgent, stepNamed, eventsOf } = require('./helpers');

let agent;
let grpcAddress;

before(async () => {
  agent = await startAgent(['--otlp-grpc-listen', '127.0.0.1:0']);
  const { body } = await agent.get('/readyz');
  const state = body.otlpReceivers.grpc;
  assert.match(state, /^listening on /);
  grpcAddress = state.replace('listening on ', '');
  otel.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  otel.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  flowscope.init({ service: 'payments', socket: agent.socket });
});

after(async () => {
  flowscope.shutdown(2000);
  await agent.stop();
});

function exporter(transport) {
  switch (transport) {
    case 'http/json':
      return new JsonExporter({ url: `${agent.url}/v1/traces` });
    case 'http/protobuf':
      return new ProtoExporter({ url: `${agent.url}/v1/traces` });
    case 'grpc':
      return new GrpcExporter({ url: `http://${grpcAddress}` });
    default:
      throw new Error(transport);
  }
}

function provider(transport, service) {
  return new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    spanProcessors: [new BatchSpanProcessor(exporter(transport))],
  });
}

const hexTrace = (span) => span.spanContext().traceId;
const hexSpan = (span) => span.spanContext().spanId;

for (const transport of ['http/json', 'http/protobuf', 'grpc']) {
  test(`OpenTelemetry JS spans over ${transport} become a flowscope trace`, async () => {
    const tp = provider(transport, 'shop-js');
    const tracer = tp.getTracer('checkout');
    const session = `sess-${transport}-${process.pid}`;
    let root;
    tracer.startActiveSpan(
      'POST /orders',
      { kind: otel.SpanKind.SERVER, attributes: { 'workflow.name': 'place-order', 'session.id': session } },
      (span) => {
        root = span;
        tracer.startActiveSpan('validate', (validate) => {
          validate.addEvent('cart checked', { items: 3 });
          tracer
            .startSpan('chat gpt-4o', {
              kind: otel.SpanKind.CLIENT,
              attributes: {
                'gen_ai.provider.name': 'openai',
                'gen_ai.request.model': 'gpt-4o',
                'gen_ai.usage.input_tokens': 12,
                'gen_ai.usage.output_tokens': 30,
              },
            })
            .end();
          validate.end();
        });
        tracer
          .startSpan('orders publish', {
            kind: otel.SpanKind.PRODUCER,
            attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': 'order.placed' },
          })
          .end();
        const charge = tracer.startSpan('charge');
        charge.recordException(new TypeError('card declined'));
        charge.setStatus({ code: otel.SpanStatusCode.ERROR, message: 'card declined' });
        charge.end();
        span.end();
      },
    );
    await tp.forceFlush();

    const t = await agent.trace(hexTrace(root));
    assert.equal(t.flowName, 'place-order');
    assert.equal(t.service, 'shop-js');
    assert.deepEqual(t.entryPoint, { type: 'api', stepName: 'POST /orders' });
    assert.equal(t.segments[0].spanId, hexSpan(root));
    assert.deepEqual(t.steps.map((s) => s.name).sort(), ['charge', 'chat gpt-4o', 'orders publish', 'validate']);
    assert.equal(stepNamed(t, 'chat gpt-4o').parentId, stepNamed(t, 'validate').id);
    const [llm] = eventsOf(stepNamed(t, 'chat gpt-4o'), 'llm');
    assert.deepEqual([llm.model, llm.provider, llm.inputTokens, llm.outputTokens], ['gpt-4o', 'openai', 12, 30]);
    const [log] = eventsOf(stepNamed(t, 'validate'), 'log');
    assert.deepEqual([log.message, log.fields], ['cart checked', { items: 3 }]);
    const [emit] = stepNamed(t, 'orders publish').ops;
    assert.deepEqual([emit.kind, emit.topic], ['emit', 'order.placed']);
    const charge = stepNamed(t, 'charge');
    assert.equal(charge.status, 'failed');
    assert.equal(charge.error.type, 'TypeError');
    assert.equal(charge.error.message, 'card declined');
    assert.match(charge.error.stack, /TypeError: card declined/);
    const group = await agent.group(session, (g) => g.traces.length === 1);
    assert.equal(group.traces[0].id, hexTrace(root));
    await tp.shutdown();
  });
}

test('an OpenTelemetry JS service calling a flowscope service is one trace', async () => {
  const tp = provider('http/json', 'storefront-js');
  const tracer = tp.getTracer('storefront');
  let root;
  let call;
  await tracer.startActiveSpan('GET /checkout', { kind: otel.SpanKind.SERVER }, async (span) => {
    root = span;
    await tracer.startActiveSpan('POST /pay', { kind: otel.SpanKind.CLIENT }, async (client) => {
      call = client;
      const headers = {};
      otel.propagation.inject(otel.context.active(), headers);
      // The callee: a flowscope trace continuing the incoming traceparent.
      await flowscope.trace('payment', { traceparent: headers.traceparent }, async () => {
        await flowscope.step('charge-card', async () => {
          flowscope.stateSet('payment:1');
        });
      });
      client.end();
    });
    span.end();
  });
  await tp.forceFlush();
  flowscope.flush(2000);

  const t = await agent.trace(hexTrace(root), (t) => t.status !== 'running' && t.segments.length === 2);
  assert.deepEqual([...t.services].sort(), ['payments', 'storefront-js']);
  const byService = Object.fromEntries(t.segments.map((s) => [s.service, s]));
  assert.equal(byService['storefront-js'].spanId, hexSpan(root));
  assert.equal(byService.payments.parentSpanId, hexSpan(call));
  assert.equal(stepNamed(t, 'POST /pay').kind, 'client');
  assert.equal(stepNamed(t, 'charge-card').service, 'payments');
  const ids = new Set(t.steps.map((s) => s.id));
  for (const s of t.steps) assert.ok(s.parentId === undefined || ids.has(s.parentId), JSON.stringify(s));
  for (const seg of t.segments) assert.ok(seg.parentSpanId === undefined || ids.has(seg.parentSpanId), JSON.stringify(seg));
  await tp.shutdown();
});
