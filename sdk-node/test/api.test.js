'use strict';
// Every API call, as the agent shows it in /api/traces/{id}.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');

const flowscope = require('..');
const { startAgent, stepNamed, eventsOf } = require('./helpers');

let agent;

before(async () => {
  agent = await startAgent();
  const result = flowscope.init({ service: 'node-api-test', socket: agent.socket });
  assert.deepEqual(result, { enabled: true, service: 'node-api-test', socket: agent.socket });
});

after(async () => {
  flowscope.shutdown(2000);
  await agent.stop();
});

test('a trace with every kind of event', async () => {
  const traceId = await flowscope.trace(
    'user-registration',
    { entry: 'api', step: 'validate-user', correlationId: 'reg-1', attributes: { plan: 'pro', seats: 3 } },
    async () => {
      await flowscope.step('validate-user', async () => {
        const email = await flowscope.stateGet('user.email', async () => {
          await sleep(15);
          return 'a@b.c';
        });
        assert.equal(email, 'a@b.c');
        flowscope.stateSet('validation.result');
        flowscope.stateDelete('user.draft');
        flowscope.stateClear();
        flowscope.emit('user.validated', { to: 'save-user' });
        flowscope.streamGet('users', 'u-1');
        flowscope.streamSet('users', 'u-1', () => 'sync result');
        flowscope.streamDelete('users', 'u-2');
        flowscope.streamSend('notifications');
        flowscope.op('state', 'get', { key: 'user.flags' });
        flowscope.op('emit', 'send', { topic: 'audit', to: 'audit-log' });
        flowscope.op('stream', 'send', 'events');
        flowscope.log('warn', 'slow lookup', { ms: 15, user: 'u-1' });
        flowscope.log.info('validated');
        flowscope.llm({
          model: 'gpt-4o-mini',
          provider: 'openai',
          prompt: [{ role: 'user', content: 'Hi' }],
          response: 'Hello!',
          inputTokens: 12,
          outputTokens: 3,
          cost: 0.0001,
          durationMs: 120,
        });
        flowscope.artifact('report.csv', { url: 'https://example.invalid/report.csv', mime: 'text/csv', size: 42, preview: 'a,b\n1,2' });
        flowscope.retry(1, { reason: 'timeout', backoffMs: 50 });
        flowscope.checkpoint('cp-1');
        flowscope.transition('pending', 'validated', 'validate');
        flowscope.custom('fraud-score', { score: 0.12, flags: ['new-device'] });
      });
      await flowscope.step('save-user', async () => {
        await flowscope.stateSet('user.record', () => sleep(5));
      });
      flowscope.log('info', 'trace-level log');
      flowscope.correlate('reg-group', { name: 'Registration' });
      return flowscope.getContext().traceId;
    },
  );
  assert.match(traceId, /^[0-9a-f]{32}$/);
  assert.equal(await flowscope.flush(5000), true);

  const trace = await agent.trace(traceId);
  assert.equal(trace.flowName, 'user-registration');
  assert.equal(trace.service, 'node-api-test');
  assert.equal(trace.status, 'completed');
  assert.deepEqual(trace.entryPoint, { type: 'api', stepName: 'validate-user' });
  assert.deepEqual(trace.attributes, { plan: 'pro', seats: 3 });
  assert.equal(trace.correlationId, 'reg-group');
  assert.equal(trace.correlationMethod, 'manual');
  assert.equal(trace.metadata.totalSteps, 2);
  assert.equal(trace.metadata.completedSteps, 2);
  assert.equal(trace.metadata.errorCount, 0);
  assert.equal(typeof trace.duration, 'number');

  const validate = stepNamed(trace, 'validate-user');
  assert.equal(validate.status, 'completed');
  assert.equal(validate.parentId, undefined);
  assert.deepEqual(validate.operations, { state: 5, emit: 2, stream: 5 });
  const ops = validate.ops.map((o) => [o.kind, o.action, o.key ?? o.topic ?? o.stream ?? null, o.to ?? o.id ?? null]);
  assert.deepEqual(ops, [
    ['state', 'get', 'user.email', null],
    ['state', 'set', 'validation.result', null],
    ['state', 'delete', 'user.draft', null],
    ['state', 'clear', null, null],
    ['emit', 'send', 'user.validated', 'save-user'],
    ['stream', 'get', 'users', 'u-1'],
    ['stream', 'set', 'users', 'u-1'],
    ['stream', 'delete', 'users', 'u-2'],
    ['stream', 'send', 'notifications', null],
    ['state', 'get', 'user.flags', null],
    ['emit', 'send', 'audit', 'audit-log'],
    ['stream', 'send', 'events', null],
  ]);
  assert.ok(validate.ops.every((o) => o.ok === true));
  const timed = validate.ops[0];
  assert.ok(timed.duration >= 10 && timed.duration < 1000, `timed op duration ${timed.duration} ms`);

  const logs = eventsOf(validate, 'log');
  assert.deepEqual(
    logs.map((l) => [l.level, l.message, l.fields]),
    [
      ['warn', 'slow lookup', { ms: 15, user: 'u-1' }],
      ['info', 'validated', null],
    ],
  );
  const [llm] = eventsOf(validate, 'llm');
  assert.equal(llm.model, 'gpt-4o-mini');
  assert.equal(llm.provider, 'openai');
  assert.equal(llm.prompt, '[{"role":"user","content":"Hi"}]');
  assert.equal(llm.response, 'Hello!');
  assert.equal(llm.inputTokens, 12);
  assert.equal(llm.outputTokens, 3);
  assert.equal(llm.totalTokens, 15);
  assert.equal(llm.cost, 0.0001);
  assert.equal(llm.duration, 120);
  const [artifact] = eventsOf(validate, 'artifact');
  assert.deepEqual(
    { name: artifact.name, url: artifact.url, mime: artifact.mime, size: artifact.size, preview: artifact.preview },
    { name: 'report.csv', url: 'https://example.invalid/report.csv', mime: 'text/csv', size: 42, preview: 'a,b\n1,2' },
  );
  const [retry] = eventsOf(validate, 'retry');
  assert.deepEqual([retry.attempt, retry.reason, retry.backoffMs], [1, 'timeout', 50]);
  const [checkpoint] = eventsOf(validate, 'checkpoint');
  assert.equal(checkpoint.id, 'cp-1');
  const [transition] = eventsOf(validate, 'transition');
  assert.deepEqual([transition.from, transition.to, transition.action], ['pending', 'validated', 'validate']);
  const [custom] = eventsOf(validate, 'custom');
  assert.equal(custom.name, 'fraud-score');
  assert.deepEqual(custom.payload, { score: 0.12, flags: ['new-device'] });

  const save = stepNamed(trace, 'save-user');
  assert.equal(save.ops.length, 1);
  assert.ok(save.ops[0].duration >= 3, `save op duration ${save.ops[0].duration}`);
  assert.ok(save.startTime >= validate.startTime);

  assert.deepEqual(
    trace.events.map((e) => [e.type, e.message]),
    [['log', 'trace-level log']],
  );
});

test('ops sent in one batch keep the times they happened', async () => {
  // Before the names test below fills the core's name table: these names go as ids, batched.
  const busy = (ms) => {
    const until = Date.now() + ms;
    while (Date.now() < until);
  };
  let bounds;
  const traceId = flowscope.trace('op-times', () =>
    flowscope.step('batched', () => {
      const before = Date.now();
      flowscope.stateGet('times.first');
      const after = Date.now();
      // Busy, so the batch holding both ops goes out long after the first one.
      busy(30);
      flowscope.stateGet('times.timed', () => busy(10));
      flowscope.stateSet('times.last');
      bounds = [before, after];
      return flowscope.getContext().traceId;
    }),
  );
  assert.equal(await flowscope.flush(5000), true);
  const trace = await agent.trace(traceId);
  const [first, timed, last] = stepNamed(trace, 'batched').ops;
  assert.deepEqual([first.key, timed.key, last.key], ['times.first', 'times.timed', 'times.last']);
  const at = trace.startTime + first.startTime;
  assert.ok(at >= bounds[0] - 1 && at <= bounds[1] + 1, `first op at ${at}, called within ${bounds}`);
  assert.ok(timed.startTime - first.startTime >= 29, `timed op ${timed.startTime - first.startTime} ms later`);
  assert.ok(timed.duration >= 9 && timed.duration < 100, `timed op lasted ${timed.duration} ms`);
  assert.ok(last.startTime - timed.startTime >= timed.duration - 1, 'the last op follows the timed one');
});

test('batched ops go out at the end of the current job, with no other call to push them', async () => {
  await flowscope.trace('op-job-end', () =>
    flowscope.step('waits', async () => {
      flowscope.stateGet('job-end.key');
      const { traceId } = flowscope.getContext();
      // Still inside the step, and no flowscope call until the agent shows the op.
      // Polls until the step is there with its op (the step may not have arrived yet either).
      const arrived = (t) => (t.steps || []).some((s) => s.name === 'waits' && (s.ops || []).length === 1);
      const trace = await agent.trace(traceId, arrived, 5000);
      assert.equal(stepNamed(trace, 'waits').ops[0].key, 'job-end.key');
    }),
  );
});

test('steps batched with their ops nest, keep the ids getContext gave, and the times they ran', async () => {
  // Names go as ids here (before the names test fills the table), so these steps start and end
  // as batch records, with their ops, in one call.
  const busy = (ms) => {
    const until = Date.now() + ms;
    while (Date.now() < until);
  };
  const ids = {};
  let bounds;
  const traceId = flowscope.trace('step-batch', () => {
    flowscope.step('batch-outer', () => {
      const t0 = Date.now();
      ids.outer = flowscope.getContext().spanId;
      flowscope.stateGet('batch.outer-before');
      flowscope.step('batch-inner', () => {
        ids.inner = flowscope.getContext().spanId;
        flowscope.stateSet('batch.inner');
        busy(20);
      });
      flowscope.stateGet('batch.outer-after');
      bounds = [t0, Date.now()];
    });
    flowscope.step('batch-sibling', () => {
      ids.sibling = flowscope.getContext().spanId;
      flowscope.emit('batch.topic');
    });
    flowscope.stateGet('batch.trace-level');
    return flowscope.getContext().traceId;
  });
  assert.equal(await flowscope.flush(5000), true);
  const trace = await agent.trace(traceId, (t) => (t.steps || []).length === 3 && t.status === 'completed', 5000);
  const [outer, inner, sibling] = ['batch-outer', 'batch-inner', 'batch-sibling'].map((n) => stepNamed(trace, n));
  for (const [name, step] of Object.entries({ outer, inner, sibling })) {
    assert.match(ids[name], /^[0-9a-f]{16}$/);
    assert.equal(step.id, ids[name], `${name}: the span id getContext gave`);
    assert.equal(step.status, 'completed');
  }
  assert.equal(inner.parentId, outer.id, 'the inner step nests in the outer one');
  assert.notEqual(sibling.parentId, outer.id, 'the sibling is back at the trace level');
  assert.equal(sibling.parentId, outer.parentId);
  assert.deepEqual(outer.ops.map((o) => o.key), ['batch.outer-before', 'batch.outer-after']);
  assert.deepEqual(inner.ops.map((o) => o.key), ['batch.inner']);
  assert.deepEqual(sibling.ops.map((o) => o.topic), ['batch.topic']);
  // Times: the outer step started when it was called, the inner one ran its 20 ms inside it.
  const outerStart = trace.startTime + outer.startTime;
  assert.ok(outerStart >= bounds[0] - 1 && outerStart <= bounds[1] + 1, `outer started at ${outerStart}, within ${bounds}`);
  assert.ok(inner.duration >= 19 && inner.duration < 1000, `inner lasted ${inner.duration} ms`);
  assert.ok(inner.startTime >= outer.startTime && inner.startTime + inner.duration <= outer.startTime + outer.duration + 0.001);
  assert.ok(sibling.startTime >= outer.startTime + outer.duration - 0.001, 'the sibling follows the outer step');
});

test('names go as ids once kept, and as strings past the table or when too long', async () => {
  // The core keeps 4096 names per process (other tests keep some too): these 4200 fill it, so
  // the later ones go as strings, and so does a name longer than the core keeps.
  const keys = Array.from({ length: 4200 }, (_, i) => `names-test.key-${i}`);
  const long = `long.${'x'.repeat(200)}`;
  const traceId = flowscope.trace('names', () =>
    flowscope.step('many-names', () => {
      for (const key of keys) flowscope.stateGet(key);
      flowscope.stateSet(long);
      flowscope.stateGet(keys[0]);
      flowscope.emit('names-test.topic', { to: 'names-test.next' });
      return flowscope.getContext().traceId;
    }),
  );
  assert.equal(await flowscope.flush(5000), true);
  const trace = await agent.trace(traceId);
  const step = stepNamed(trace, 'many-names');
  assert.deepEqual(step.operations, { state: 4202, emit: 1, stream: 0 });
  const subjects = step.ops.map((o) => o.key ?? o.topic);
  assert.deepEqual(subjects.slice(0, 4200), keys);
  assert.deepEqual(subjects.slice(4200), [long, keys[0], 'names-test.topic']);
  assert.equal(step.ops[4202].to, 'names-test.next');
});

test('the correlation group lists the trace', async () => {
  const traceId = flowscope.trace('grouped', { correlationId: 'group-a' }, () => flowscope.getContext().traceId);
  await flowscope.flush(5000);
  const group = await agent.group('group-a', (g) => g.traces.some((t) => t.id === traceId));
  assert.equal(group.id, 'group-a');
  const listed = await agent.traces({ correlationId: 'group-a' });
  assert.deepEqual(
    listed.map((t) => t.id),
    [traceId],
  );
});

test('a failed timed op records ok=false and its error, and rethrows', async () => {
  const boom = new Error('state store down');
  let traceId;
  await assert.rejects(
    flowscope.trace('op-failure', () => {
      traceId = flowscope.getContext().traceId;
      return flowscope.step('load', () =>
        flowscope.stateGet('user.profile', async () => {
          throw boom;
        }),
      );
    }),
    (err) => err === boom,
  );
  await flowscope.flush(5000);
  const trace = await agent.trace(traceId);
  const load = stepNamed(trace, 'load');
  assert.equal(load.ops.length, 1);
  assert.equal(load.ops[0].ok, false);
  assert.equal(load.ops[0].error, 'Error: state store down'); // `Type: message`, as in every SDK
  assert.equal(load.status, 'failed');
  assert.equal(trace.status, 'failed');
});

test('entry types, explicit trace id and parent trace', async () => {
  const parentId = flowscope.newTraceId();
  const givenId = flowscope.newTraceId();
  const id = flowscope.trace(
    'nightly-report',
    { entry: 'cron', step: 'collect', traceId: givenId, parentTraceId: parentId },
    () => flowscope.getContext().traceId,
  );
  assert.equal(id, givenId);
  await flowscope.flush(5000);
  const trace = await agent.trace(givenId);
  assert.deepEqual(trace.entryPoint, { type: 'cron', stepName: 'collect' });
  assert.equal(trace.parentTraceId, parentId);
});

test('wrapTrace and wrapStep keep this, arguments and return values', async () => {
  const service = {
    factor: 3,
    handle: flowscope.wrapTrace('wrapped-flow', { entry: 'event' }, async function (x) {
      const inner = await this.compute(x);
      return { inner, traceId: flowscope.getContext().traceId };
    }),
    compute: flowscope.wrapStep('compute', async function (x) {
      flowscope.stateGet(`value.${x}`);
      return x * this.factor;
    }),
  };
  const { inner, traceId } = await service.handle(7);
  assert.equal(inner, 21);
  await flowscope.flush(5000);
  const trace = await agent.trace(traceId);
  assert.equal(trace.entryPoint.type, 'event');
  const compute = stepNamed(trace, 'compute');
  assert.equal(compute.ops[0].key, 'value.7');
  const named = flowscope.wrapStep(function namedHandler() {
    return flowscope.getContext().step;
  });
  assert.equal(flowscope.trace('x', () => named()), 'namedHandler');
});

test('stats count what was sent', async () => {
  await flowscope.flush(5000);
  const stats = flowscope.stats();
  assert.equal(stats.connected, true);
  assert.ok(stats.sent > 0);
  assert.equal(stats.dropped, 0);
  assert.equal(stats.queued, 0);
  assert.equal(stats.queuedBytes, 0, 'nothing waits after a flush');
  assert.equal(stats.enqueued, stats.sent);
});

test('calls outside a trace are no-ops that still run the callback', async () => {
  assert.equal(flowscope.getContext(), undefined);
  assert.equal(flowscope.step('lonely', () => 5), 5);
  assert.equal(await flowscope.stateGet('k', async () => 6), 6);
  flowscope.log('info', 'nobody hears this');
  flowscope.checkpoint('nothing');
  flowscope.correlate('nothing');
  assert.deepEqual(flowscope.inject({ a: '1' }), { a: '1' });
});
