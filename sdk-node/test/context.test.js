'use strict';
// The context follows awaits, timers and event emitters; concurrent steps nest correctly; errors
// are recorded and propagate unchanged.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter, once } = require('node:events');
const { setTimeout: sleep } = require('node:timers/promises');

const flowscope = require('..');
const { startAgent, stepNamed, eventsOf } = require('./helpers');

let agent;

before(async () => {
  agent = await startAgent();
  flowscope.init({ service: 'node-context-test', socket: agent.socket });
});

after(async () => {
  flowscope.shutdown(2000);
  await agent.stop();
});

const jitter = () => sleep(Math.floor(Math.random() * 8));

test('concurrent async steps and traces nest correctly', async () => {
  // Three traces at once, each with two concurrent branches of nested steps; every op names
  // its own trace/branch/step so any cross-talk shows.
  const runOne = (n) =>
    flowscope.trace(`concurrent-${n}`, async () => {
      const branch = (b) =>
        flowscope.step(`branch-${b}`, async () => {
          await jitter();
          flowscope.stateGet(`t${n}.b${b}.before`);
          await flowscope.step(`leaf-${b}`, async () => {
            await jitter();
            flowscope.stateSet(`t${n}.b${b}.leaf`);
            await jitter();
          });
          await jitter();
          flowscope.stateGet(`t${n}.b${b}.after`);
        });
      await Promise.all([branch(1), branch(2)]);
      return flowscope.getContext().traceId;
    });
  const ids = await Promise.all([1, 2, 3].map(runOne));
  assert.equal(new Set(ids).size, 3);
  await flowscope.flush(5000);
  for (const [i, id] of ids.entries()) {
    const n = i + 1;
    const trace = await agent.trace(id);
    assert.equal(trace.flowName, `concurrent-${n}`);
    assert.equal(trace.steps.length, 4);
    for (const b of [1, 2]) {
      const branch = stepNamed(trace, `branch-${b}`);
      const leaf = stepNamed(trace, `leaf-${b}`);
      assert.equal(branch.parentId, undefined);
      assert.equal(leaf.parentId, branch.id);
      assert.deepEqual(
        branch.ops.map((o) => o.key),
        [`t${n}.b${b}.before`, `t${n}.b${b}.after`],
      );
      assert.deepEqual(
        leaf.ops.map((o) => o.key),
        [`t${n}.b${b}.leaf`],
      );
      assert.equal(branch.status, 'completed');
      assert.equal(leaf.status, 'completed');
    }
  }
});

test('the context follows timers, event emitters and promise callbacks', async () => {
  const emitter = new EventEmitter();
  const traceId = await flowscope.trace('follows', async () => {
    await flowscope.step('timers', async () => {
      await new Promise((resolve) =>
        setTimeout(() => {
          flowscope.checkpoint('from-setTimeout');
          setImmediate(() => {
            flowscope.checkpoint('from-setImmediate');
            process.nextTick(() => {
              flowscope.checkpoint('from-nextTick');
              resolve();
            });
          });
        }, 5),
      );
      await Promise.resolve().then(() => flowscope.checkpoint('from-then'));
    });
    // A listener registered inside a step runs in the emitter's caller context; the event is
    // emitted from inside the step so it lands there.
    await flowscope.step('emitter', async () => {
      emitter.on('data', (chunk) => flowscope.log('info', `got ${chunk}`));
      setTimeout(() => emitter.emit('data', 'chunk-1'), 2);
      await once(emitter, 'data');
    });
    return flowscope.getContext().traceId;
  });
  await flowscope.flush(5000);
  const trace = await agent.trace(traceId);
  assert.deepEqual(
    eventsOf(stepNamed(trace, 'timers'), 'checkpoint').map((c) => c.id),
    ['from-setTimeout', 'from-setImmediate', 'from-nextTick', 'from-then'],
  );
  assert.deepEqual(
    eventsOf(stepNamed(trace, 'emitter'), 'log').map((l) => l.message),
    ['got chunk-1'],
  );
});

test('sync callbacks: the step ends when the callback returns', async () => {
  let inner;
  const traceId = flowscope.trace('sync-flow', () => {
    const result = flowscope.step('outer', () => flowscope.step('inner', () => {
      inner = flowscope.getContext();
      return 42;
    }));
    assert.equal(result, 42);
    assert.equal(flowscope.getContext().step, undefined);
    return flowscope.getContext().traceId;
  });
  assert.equal(inner.step, 'inner');
  assert.equal(inner.traceId, traceId);
  await flowscope.flush(5000);
  const trace = await agent.trace(traceId);
  assert.equal(stepNamed(trace, 'inner').parentId, stepNamed(trace, 'outer').id);
});

class PaymentError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PaymentError';
    this.code = 'E_CARD';
  }
}

test('a thrown error fails the step and trace with name, message, code and stack, unchanged', async () => {
  const error = new PaymentError('card declined');
  let traceId;
  assert.throws(
    () =>
      flowscope.trace('sync-failure', () => {
        traceId = flowscope.getContext().traceId;
        flowscope.step('charge', () => {
          throw error;
        });
      }),
    (err) => err === error,
  );
  await flowscope.flush(5000);
  const trace = await agent.trace(traceId);
  assert.equal(trace.status, 'failed');
  const charge = stepNamed(trace, 'charge');
  assert.equal(charge.status, 'failed');
  assert.equal(charge.error.message, 'card declined');
  assert.equal(charge.error.type, 'PaymentError');
  assert.equal(charge.error.code, 'E_CARD');
  assert.equal(charge.error.stack, error.stack);
  assert.match(charge.error.stack, /context\.test\.js/);
  assert.deepEqual(trace.error, charge.error);
  assert.equal(trace.metadata.errorCount, 1);
});

test('a rejected promise fails the step; the same rejection reason propagates', async () => {
  const error = new TypeError('bad input');
  let traceId;
  await assert.rejects(
    flowscope.trace('async-failure', async () => {
      traceId = flowscope.getContext().traceId;
      await flowscope.step('ok-step', async () => sleep(1));
      await flowscope.step('parse', async () => {
        await sleep(2);
        throw error;
      });
    }),
    (err) => err === error,
  );
  await flowscope.flush(5000);
  const trace = await agent.trace(traceId);
  assert.equal(stepNamed(trace, 'ok-step').status, 'completed');
  const parse = stepNamed(trace, 'parse');
  assert.equal(parse.status, 'failed');
  assert.equal(parse.error.type, 'TypeError');
  assert.equal(parse.error.message, 'bad input');
  assert.equal(trace.status, 'failed');
});

test('non-Error throw values are recorded and propagate', async () => {
  let traceId;
  await assert.rejects(
    flowscope.trace('odd-throws', async () => {
      traceId = flowscope.getContext().traceId;
      try {
        flowscope.step('string', () => {
          throw 'plain string';
        });
      } catch (e) {
        assert.equal(e, 'plain string');
      }
      await flowscope.step('object', () => Promise.reject({ reason: 'custom object' }));
    }),
    (err) => err.reason === 'custom object',
  );
  await flowscope.flush(5000);
  const trace = await agent.trace(traceId);
  assert.equal(stepNamed(trace, 'string').error.message, 'plain string');
  assert.equal(stepNamed(trace, 'string').error.type, 'string');
  assert.equal(stepNamed(trace, 'object').status, 'failed');
});

test('a trace started inside another records it as parent and inherits its correlation id', async () => {
  const [parentId, childId] = await flowscope.trace('orders', { correlationId: 'order-77' }, async () => {
    const parent = flowscope.getContext().traceId;
    const child = await flowscope.trace('payments', { entry: 'event', step: 'charge' }, async () => {
      await flowscope.step('charge', () => sleep(1));
      return flowscope.getContext();
    });
    assert.equal(child.correlationId, 'order-77');
    return [parent, child.traceId];
  });
  await flowscope.flush(5000);
  const child = await agent.trace(childId);
  assert.equal(child.parentTraceId, parentId);
  assert.equal(child.correlationId, 'order-77');
  assert.equal(child.correlationMethod, 'event');
  const group = await agent.group('order-77', (g) => g.traces.length === 2);
  assert.deepEqual(group.traces.map((t) => t.id).sort(), [parentId, childId].sort());
});
