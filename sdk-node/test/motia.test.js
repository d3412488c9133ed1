'use strict';
// flowscope/motia against a real agent: Motia handler contexts of the documented shape (fake
// ctx objects; some methods return promises, some throw), the RFC's registration flow as three
// invocations forming one trace, errors, return values, correlate, logger, Motia 1.x
// instrumentMotia, the trace id mapping, ESM/types, disabled mode and the runnable example.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { randomUUID } = require('node:crypto');
const { mkdtempSync, writeFileSync, symlinkSync, mkdirSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');

const flowscope = require('..');
const motia = require('flowscope/motia');
const { instrument, instrumentMotia, traceIdFor, entryFor } = motia;
const { startAgent, runNode, stepNamed, eventsOf, SDK_DIR, REPO_DIR } = require('./helpers');

const EXAMPLE = path.join(REPO_DIR, 'examples', 'motia', 'registration.js');

let agent;

before(async () => {
  agent = await startAgent();
  flowscope.init({ service: 'motia-test', socket: agent.socket });
});

after(async () => {
  flowscope.shutdown(2000);
  await agent.stop();
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The agent's view of the trace of Motia trace `motiaId`, once completed/failed. */
async function traceOf(motiaId, until) {
  await flowscope.flush();
  return agent.trace(traceIdFor(motiaId), until);
}

/** [kind, action, key | topic | stream, id, ok] of a step's ops. */
const opsOf = (step) => step.ops.map((o) => [o.kind, o.action, o.key ?? o.topic ?? o.stream, o.id, o.ok]);

/**
 * A Motia 0.x handler context: `state` (async get/set/getGroup, sync delete/clear), `emit`
 * (async, dispatch left to the caller), `streams.<name>` (async get/set/delete/send), `logger`
 * (sync; records calls). `delays` slows some calls down (ms).
 */
function fakeContext(traceId, { store = new Map(), emitted = [], logged = [], delays = {}, streamItems = new Map() } = {}) {
  const k = (scope, key) => `${scope}\u0000${key}`;
  const state = {
    async get(scope, key) {
      if (delays.get) await sleep(delays.get);
      return store.has(k(scope, key)) ? store.get(k(scope, key)) : null;
    },
    async set(scope, key, value) {
      if (delays.set) await sleep(delays.set);
      store.set(k(scope, key), value);
      return value;
    },
    delete(scope, key) {
      const had = store.delete(k(scope, key));
      return had;
    },
    clear(scope) {
      for (const key of [...store.keys()]) if (key.startsWith(`${scope}\u0000`)) store.delete(key);
    },
    async getGroup(scope) {
      return [...store.entries()].filter(([key]) => key.startsWith(`${scope}\u0000`)).map(([, v]) => v);
    },
  };
  const stream = (name) => ({
    async get(groupId, id) {
      return streamItems.get(`${name}/${groupId}/${id}`) ?? null;
    },
    async set(groupId, id, data) {
      if (delays.stream) await sleep(delays.stream);
      const item = { ...data, id };
      streamItems.set(`${name}/${groupId}/${id}`, item);
      return item;
    },
    async delete(groupId, id) {
      const item = streamItems.get(`${name}/${groupId}/${id}`) ?? null;
      streamItems.delete(`${name}/${groupId}/${id}`);
      return item;
    },
    async send(channel, event) {
      emitted.push({ stream: name, channel, event });
    },
  });
  const logger = {};
  for (const level of ['info', 'warn', 'error', 'debug']) {
    logger[level] = (message, fields) => {
      logged.push([level, message, fields]);
    };
  }
  return {
    traceId,
    state,
    streams: { users: stream('users'), 'email-queue': stream('email-queue') },
    logger,
    emit: async (event) => {
      if (delays.emit) await sleep(delays.emit);
      emitted.push(event);
    },
  };
}

// The RFC's registration flow, as Motia 0.x step files would define it.
const validateUserConfig = { type: 'api', name: 'validate-user', path: '/users', method: 'POST', emits: ['user.validated'], flows: ['user-registration'] };
const saveUserConfig = { type: 'event', name: 'save-user', subscribes: ['user.validated'], emits: ['user.saved'], flows: ['user-registration'] };
const sendEmailConfig = { type: 'event', name: 'send-email', subscribes: ['user.saved'], flows: ['user-registration'] };

const validateUser = instrument(validateUserConfig, async (req, { state, emit, traceId }) => {
  await state.get('user', 'email');
  await state.set('validation', 'status', 'pending');
  await state.set('validation', 'result', { email: req.body.email, valid: true });
  await emit({ topic: 'user.validated', data: { email: req.body.email } });
  return { status: 202, body: { traceId } };
});
const saveUser = instrument(saveUserConfig, async (input, { state, emit, streams }) => {
  const validation = await state.get('validation', 'result');
  await streams.users.set('all', 'user-1', { email: validation.email });
  await state.set('user', 'saved', true);
  await emit({ topic: 'user.saved', data: { userId: 'user-1', email: input.email } });
  return 'saved';
});
const sendEmail = instrument(sendEmailConfig, async (input, { state, streams }) => {
  await state.get('user', 'saved');
  await streams['email-queue'].set('outbox', 'email-1', { to: input.email });
  await state.set('email', 'queued', true);
});

describe('the registration flow', () => {
  test('three invocations with one ctx.traceId form ONE trace: validate-user → save-user → send-email', async () => {
    const motiaId = randomUUID();
    const shared = { store: new Map(), emitted: [], delays: { stream: 15, set: 2 } };
    const response = await validateUser({ body: { email: 'ada@example.com' } }, fakeContext(motiaId, shared));
    assert.deepEqual(response, { status: 202, body: { traceId: motiaId } });
    // The runtime delivers each emitted event to its subscriber, with the same traceId.
    const validated = shared.emitted.shift();
    assert.equal(validated.topic, 'user.validated');
    assert.equal(await saveUser(validated.data, fakeContext(motiaId, shared)), 'saved');
    const saved = shared.emitted.shift();
    assert.equal(saved.topic, 'user.saved');
    assert.equal(await sendEmail(saved.data, fakeContext(motiaId, shared)), undefined);

    // `flush()` only says the events were written, and the trace already reads completed after
    // its first segment: wait for all three.
    const trace = await traceOf(motiaId, (t) => t.status !== 'running' && t.segments.length === 3);
    assert.equal(trace.id, traceIdFor(motiaId));
    assert.equal(trace.status, 'completed');
    assert.equal(trace.flowName, 'user-registration');
    assert.deepEqual(trace.entryPoint, { type: 'api', stepName: 'validate-user' });
    assert.deepEqual(trace.steps.map((s) => s.name), ['validate-user', 'save-user', 'send-email']);
    assert.deepEqual(trace.segments.map((s) => s.entryPoint), [
      { type: 'api', stepName: 'validate-user' },
      { type: 'event', stepName: 'save-user' },
      { type: 'event', stepName: 'send-email' },
    ]);
    assert.equal(trace.attributes?.['motia.traceId'], motiaId);

    const v = stepNamed(trace, 'validate-user');
    assert.deepEqual(opsOf(v), [
      ['state', 'get', 'user.email', undefined, true],
      ['state', 'set', 'validation.status', undefined, true],
      ['state', 'set', 'validation.result', undefined, true],
      ['emit', 'send', 'user.validated', undefined, true],
    ]);
    assert.deepEqual(v.operations, { state: 3, emit: 1, stream: 0 });
    const s = stepNamed(trace, 'save-user');
    assert.deepEqual(opsOf(s), [
      ['state', 'get', 'validation.result', undefined, true],
      ['stream', 'set', 'users', 'user-1', true],
      ['state', 'set', 'user.saved', undefined, true],
      ['emit', 'send', 'user.saved', undefined, true],
    ]);
    assert.deepEqual(s.operations, { state: 2, emit: 1, stream: 1 });
    const e = stepNamed(trace, 'send-email');
    assert.deepEqual(opsOf(e), [
      ['state', 'get', 'user.saved', undefined, true],
      ['stream', 'set', 'email-queue', 'email-1', true],
      ['state', 'set', 'email.queued', undefined, true],
    ]);
    assert.deepEqual(e.operations, { state: 2, emit: 0, stream: 1 });

    // Timed until the promises settled: the slow stream writes and state sets show.
    for (const step of [v, s, e]) {
      assert.equal(step.status, 'completed');
      for (const op of step.ops) assert.equal(typeof op.duration, 'number');
    }
    assert.ok(s.ops[1].duration >= 12, `stream set took ${s.ops[1].duration} ms`);
    assert.ok(v.ops[1].duration >= 1.5, `state set took ${v.ops[1].duration} ms`);
    assert.ok(s.duration >= 15 && e.duration >= 15, JSON.stringify([s.duration, e.duration]));
    // In order in time: each step starts after the one that triggered it.
    assert.ok(v.startTime <= s.startTime && s.startTime <= e.startTime);
  });

  test('the same Motia run from separate processes still lands in one trace', async () => {
    const motiaId = randomUUID();
    const script = (config, ops) => `
      const flowscope = require(${JSON.stringify(SDK_DIR)});
      const { instrument } = require('flowscope/motia');
      flowscope.init({ service: ${JSON.stringify(config.name)} });
      const state = { get: async () => 1, set: async () => {} };
      const handler = instrument(${JSON.stringify(config)}, async (input, ctx) => { ${ops} });
      handler({}, { traceId: ${JSON.stringify(motiaId)}, state, emit: async () => {} }).then(() => flowscope.flush());
    `;
    for (const [config, ops] of [
      [validateUserConfig, "await ctx.state.get('user', 'email'); await ctx.emit({ topic: 'user.validated' });"],
      [saveUserConfig, "await ctx.state.set('user', 'saved', true); await ctx.emit({ topic: 'user.saved' });"],
      [sendEmailConfig, "await ctx.state.set('email', 'queued', true);"],
    ]) {
      const run = await runNode({ code: script(config, ops), env: { FLOWSCOPE_SOCKET: agent.socket } });
      assert.equal(run.code, 0, run.stderr);
    }
    const trace = await agent.trace(traceIdFor(motiaId), (t) => t.status === 'completed' && t.steps.length === 3);
    assert.deepEqual(trace.steps.map((s) => s.name), ['validate-user', 'save-user', 'send-email']);
    assert.deepEqual(trace.services, ['validate-user', 'save-user', 'send-email']);
    assert.deepEqual(trace.entryPoint, { type: 'api', stepName: 'validate-user' });
    assert.deepEqual(opsOf(stepNamed(trace, 'save-user')), [
      ['state', 'set', 'user.saved', undefined, true],
      ['emit', 'send', 'user.saved', undefined, true],
    ]);
  });

  test('an emit that runs its subscriber in-process, inside the emitting step, stays one trace', async () => {
    const motiaId = randomUUID();
    const store = new Map();
    let ctxFor;
    const subscriber = instrument(saveUserConfig, async (input, { state }) => {
      await state.set('user', 'saved', input.email);
      return flowscope.getContext().traceId;
    });
    let seenInside;
    const api = instrument(validateUserConfig, async (req, { emit }) => {
      await emit({ topic: 'user.validated', data: req.body });
      return 'ok';
    });
    ctxFor = (id) => ({
      ...fakeContext(id, { store }),
      emit: async (event) => {
        seenInside = await subscriber(event.data, fakeContext(id, { store }));
      },
    });
    assert.equal(await api({ body: { email: 'b@c.d' } }, ctxFor(motiaId)), 'ok');
    assert.equal(seenInside, traceIdFor(motiaId));
    const trace = await traceOf(motiaId);
    assert.deepEqual(trace.steps.map((s) => s.name), ['validate-user', 'save-user']);
    assert.equal(trace.parentTraceId, undefined);
    assert.equal(stepNamed(trace, 'save-user').parentId, undefined);
    // The subscriber's own state call is recorded in its step, not hidden by the emit around it.
    assert.deepEqual(opsOf(stepNamed(trace, 'save-user')), [['state', 'set', 'user.saved', undefined, true]]);
    assert.deepEqual(opsOf(stepNamed(trace, 'validate-user')), [['emit', 'send', 'user.validated', undefined, true]]);
  });
});

describe('errors and return values', () => {
  test('a throwing state call is recorded as failed and the exception propagates unchanged', async () => {
    const motiaId = randomUUID();
    const boom = Object.assign(new Error('redis is down'), { code: 'ECONNREFUSED' });
    const syncBoom = new TypeError('bad scope');
    const ctx = fakeContext(motiaId);
    ctx.state.set = async () => {
      await sleep(3);
      throw boom;
    };
    ctx.state.delete = () => {
      throw syncBoom;
    };
    let caughtSync;
    const handler = instrument(saveUserConfig, async (input, { state }) => {
      try {
        state.delete('user', 'tmp');
      } catch (err) {
        caughtSync = err;
      }
      await state.set('user', 'saved', true);
      return 'unreachable';
    });
    await assert.rejects(handler({}, ctx), (err) => err === boom);
    assert.equal(caughtSync, syncBoom);

    const trace = await traceOf(motiaId);
    assert.equal(trace.status, 'failed');
    const step = stepNamed(trace, 'save-user');
    assert.equal(step.status, 'failed');
    assert.equal(step.error.message, 'redis is down');
    assert.equal(step.error.code, 'ECONNREFUSED');
    assert.deepEqual(opsOf(step), [
      ['state', 'delete', 'user.tmp', undefined, false],
      ['state', 'set', 'user.saved', undefined, false],
    ]);
    assert.equal(step.ops[0].error, 'TypeError: bad scope'); // `Type: message`, as in every SDK
    assert.equal(step.ops[1].error, 'Error: redis is down');
    assert.ok(step.ops[1].duration >= 2, `timed until the rejection: ${step.ops[1].duration}`);
  });

  test('a sync handler returns its value as is (no promise); a sync throw propagates as is', async () => {
    const motiaId = randomUUID();
    const value = { status: 200, body: { ok: true } };
    const handler = instrument({ type: 'api', name: 'sync-step', flows: ['sync-flow'] }, (req, ctx) => {
      ctx.state.delete('a', 'b'); // sync method
      ctx.state.clear('a');
      return value;
    });
    const result = handler({}, fakeContext(motiaId));
    assert.equal(result, value);

    const failure = new RangeError('nope');
    const failing = instrument({ type: 'api', name: 'sync-fail', flows: ['sync-flow'] }, () => {
      throw failure;
    });
    const failedId = randomUUID();
    assert.throws(() => failing({}, fakeContext(failedId)), (err) => err === failure);

    const trace = await traceOf(motiaId);
    assert.equal(trace.flowName, 'sync-flow');
    assert.deepEqual(opsOf(stepNamed(trace, 'sync-step')), [
      ['state', 'delete', 'a.b', undefined, true],
      ['state', 'clear', 'a', undefined, true],
    ]);
    const failed = await traceOf(failedId);
    assert.equal(failed.status, 'failed');
    assert.equal(stepNamed(failed, 'sync-fail').error.type, 'RangeError');
  });

  test('delegates with the original `this`, arguments and results; extra ctx members read through', async () => {
    const motiaId = randomUUID();
    const ctx = fakeContext(motiaId);
    ctx.traceId = motiaId;
    ctx.custom = { answer: 42 };
    let self;
    const handler = instrument(saveUserConfig, async function (input, c, extra) {
      self = this;
      await c.state.set('k', 'v', input);
      const group = await c.state.getGroup('k');
      return { group, same: c.state === c.state, custom: c.custom, extra, traceId: c.traceId, keys: Object.keys(c).sort() };
    });
    const owner = { handler };
    const out = await owner.handler({ n: 1 }, ctx, 'third');
    assert.equal(self, owner);
    assert.deepEqual(out.group, [{ n: 1 }]);
    assert.equal(out.same, true);
    assert.equal(out.custom, ctx.custom);
    assert.equal(out.extra, 'third');
    assert.equal(out.traceId, motiaId);
    assert.deepEqual(out.keys, ['correlate', 'emit', 'logger', 'state', 'streams', 'traceId', 'custom'].sort());
    const trace = await traceOf(motiaId);
    // getGroup is a state get of the scope
    assert.deepEqual(opsOf(stepNamed(trace, 'save-user')), [
      ['state', 'set', 'k.v', undefined, true],
      ['state', 'get', 'k', undefined, true],
    ]);
  });

  test('streams: get/set/delete/send are stream ops on the stream name with the item id', async () => {
    const motiaId = randomUUID();
    const emitted = [];
    const handler = instrument(sendEmailConfig, async (input, { streams }) => {
      await streams.users.set('g', 'u-1', { a: 1 });
      const got = await streams.users.get('g', 'u-1');
      await streams['email-queue'].send({ groupId: 'g', id: 'e-1' }, { type: 'queued', data: {} });
      await streams.users.delete('g', 'u-1');
      return got;
    });
    assert.deepEqual(await handler({}, fakeContext(motiaId, { emitted })), { a: 1, id: 'u-1' });
    assert.equal(emitted[0].stream, 'email-queue');
    const trace = await traceOf(motiaId);
    assert.deepEqual(opsOf(stepNamed(trace, 'send-email')), [
      ['stream', 'set', 'users', 'u-1', true],
      ['stream', 'get', 'users', 'u-1', true],
      ['stream', 'send', 'email-queue', 'e-1', true],
      ['stream', 'delete', 'users', 'u-1', true],
    ]);
  });

  test('without ctx.traceId the invocation is a fresh trace', async () => {
    let id;
    const handler = instrument(validateUserConfig, async (req, ctx) => {
      id = flowscope.getContext().traceId;
      await ctx.state.get('x', 'y');
    });
    const ctx = fakeContext(undefined);
    delete ctx.traceId;
    await handler({}, ctx);
    assert.match(id, /^[0-9a-f]{32}$/);
    await flowscope.flush();
    const trace = await agent.trace(id);
    assert.deepEqual(trace.steps.map((s) => s.name), ['validate-user']);
    assert.deepEqual(opsOf(trace.steps[0]), [['state', 'get', 'x.y', undefined, true]]);
  });
});

describe('correlate and logger', () => {
  test("ctx.correlate('user-123') puts the trace in that group and resolves", async () => {
    const motiaId = randomUUID();
    const group = `user-123-${motiaId.slice(0, 8)}`;
    const handler = instrument(validateUserConfig, async (req, ctx) => {
      const result = ctx.correlate(group);
      assert.ok(result instanceof Promise);
      assert.equal(await result, undefined);
      return 'done';
    });
    assert.equal(await handler({}, fakeContext(motiaId)), 'done');
    const trace = await traceOf(motiaId);
    assert.equal(trace.correlationId, group);
    const g = await agent.group(group);
    assert.deepEqual(g.traces.map((t) => t.id), [traceIdFor(motiaId)]);
  });

  test('a ctx that already has correlate keeps it: it is called too, its result returned', async () => {
    const motiaId = randomUUID();
    const calls = [];
    const ctx = fakeContext(motiaId);
    ctx.correlate = async (id) => {
      calls.push(id);
      return 'theirs';
    };
    const handler = instrument(validateUserConfig, async (req, c) => c.correlate('order-7'));
    assert.equal(await handler({}, ctx), 'theirs');
    assert.deepEqual(calls, ['order-7']);
    assert.equal((await traceOf(motiaId)).correlationId, 'order-7');
  });

  test('logger calls become flowscope logs with their levels; the original logger still runs', async () => {
    const motiaId = randomUUID();
    const logged = [];
    const handler = instrument(saveUserConfig, async (input, { logger }) => {
      logger.info('saving', { userId: 'u-1' });
      logger.warn('slow store');
      logger.error('write failed', { attempt: 2 });
      logger.debug('raw', 'not an object');
    });
    await handler({}, fakeContext(motiaId, { logged }));
    assert.deepEqual(logged, [
      ['info', 'saving', { userId: 'u-1' }],
      ['warn', 'slow store', undefined],
      ['error', 'write failed', { attempt: 2 }],
      ['debug', 'raw', 'not an object'],
    ]);
    const trace = await traceOf(motiaId);
    const logs = eventsOf(stepNamed(trace, 'save-user'), 'log');
    assert.deepEqual(
      logs.map((l) => [l.level, l.message, l.fields ?? undefined]),
      [
        ['info', 'saving', { userId: 'u-1' }],
        ['warn', 'slow store', undefined],
        ['error', 'write failed', { attempt: 2 }],
        ['debug', 'raw', { value: 'not an object' }],
      ],
    );
  });
});

describe('Motia 1.x', () => {
  /** A fake `motia` module: stateManager, enqueue, logger (what 1.x step files import). */
  function fakeMotiaModule() {
    const store = new Map();
    const calls = { enqueued: [], logged: [] };
    const mod = {
      stateManager: {
        async get(scope, key) {
          await sleep(1);
          return store.get(`${scope}.${key}`) ?? null;
        },
        async set(scope, key, value) {
          store.set(`${scope}.${key}`, value);
          return { new_value: value, old_value: null };
        },
        async delete(scope, key) {
          store.delete(`${scope}.${key}`);
        },
        async clear(scope) {
          if (scope === 'locked') throw new Error('group locked');
        },
        async getGroup() {
          return [...store.values()];
        },
      },
      enqueue: async (event) => {
        calls.enqueued.push(event);
      },
      logger: {
        info: (m, f) => calls.logged.push(['info', m, f]),
        warn: (m, f) => calls.logged.push(['warn', m, f]),
        error: (m, f) => calls.logged.push(['error', m, f]),
        debug: (m, f) => calls.logged.push(['debug', m, f]),
      },
    };
    return { mod, calls };
  }

  test('instrumentMotia wraps the module in place (idempotently); calls in handlers are recorded', async () => {
    const { mod, calls } = fakeMotiaModule();
    const originalGet = mod.stateManager.get;
    assert.equal(instrumentMotia(mod), mod);
    const wrappedGet = mod.stateManager.get;
    assert.notEqual(wrappedGet, originalGet);
    instrumentMotia(mod); // again: no double wrapping
    assert.equal(mod.stateManager.get, wrappedGet);

    // Step files use the module's functions (import { stateManager, enqueue, logger } from 'motia').
    const { stateManager, enqueue, logger } = mod;
    const http = instrument(
      { name: 'validate-user', flows: ['user-registration-1x'], triggers: [{ type: 'http', method: 'POST', path: '/users' }] },
      async (req) => {
        await stateManager.get('user', 'email');
        await stateManager.set('validation', 'result', { valid: true });
        logger.info('validated', { email: req.body.email });
        await enqueue({ topic: 'user.validated', data: req.body });
        return { status: 202 };
      },
    );
    const queue = instrument(
      { name: 'save-user', flows: ['user-registration-1x'], triggers: [{ type: 'queue', topic: 'user.validated' }] },
      async () => {
        await stateManager.getGroup('validation');
        await stateManager.delete('validation', 'result');
        await stateManager.clear('locked').catch(() => {});
        logger.warn('saved late');
        await enqueue({ topic: 'user.saved', data: {} });
      },
    );
    const motiaId = randomUUID();
    assert.deepEqual(await http({ body: { email: 'x@y.z' } }, { traceId: motiaId, logger }), { status: 202 });
    await queue(calls.enqueued[0].data, { traceId: motiaId, logger, trigger: { type: 'queue', topic: 'user.validated' } });
    assert.deepEqual(calls.enqueued.map((e) => e.topic), ['user.validated', 'user.saved']);
    assert.deepEqual(calls.logged.map((l) => l[0]), ['info', 'warn']);

    // Both segments stored (the first alone already reads completed).
    const trace = await traceOf(motiaId, (t) => t.status !== 'running' && t.segments.length === 2);
    assert.equal(trace.flowName, 'user-registration-1x');
    assert.deepEqual(trace.entryPoint, { type: 'api', stepName: 'validate-user' });
    assert.deepEqual(trace.segments.map((s) => s.entryPoint.type), ['api', 'event']);
    assert.deepEqual(trace.steps.map((s) => s.name), ['validate-user', 'save-user']);
    assert.deepEqual(opsOf(stepNamed(trace, 'validate-user')), [
      ['state', 'get', 'user.email', undefined, true],
      ['state', 'set', 'validation.result', undefined, true],
      ['emit', 'send', 'user.validated', undefined, true],
    ]);
    assert.deepEqual(opsOf(stepNamed(trace, 'save-user')), [
      ['state', 'get', 'validation', undefined, true],
      ['state', 'delete', 'validation.result', undefined, true],
      ['state', 'clear', 'locked', undefined, false],
      ['emit', 'send', 'user.saved', undefined, true],
    ]);
    assert.deepEqual(eventsOf(stepNamed(trace, 'validate-user'), 'log').map((l) => [l.level, l.message]), [['info', 'validated']]);
    assert.deepEqual(eventsOf(stepNamed(trace, 'save-user'), 'log').map((l) => [l.level, l.message]), [['warn', 'saved late']]);
  });

  test('a ctx sharing the wrapped module objects records each call once', async () => {
    const { mod } = fakeMotiaModule();
    instrumentMotia(mod);
    const motiaId = randomUUID();
    const handler = instrument({ name: 'both', triggers: [{ type: 'cron', expression: '* * * * *' }] }, async (input, ctx) => {
      await ctx.state.set('a', 'b', 1); // ctx.state IS the (wrapped) stateManager
      await ctx.enqueue({ topic: 't' });
      ctx.logger.info('once');
    });
    await handler(undefined, { traceId: motiaId, state: mod.stateManager, enqueue: mod.enqueue, logger: mod.logger });
    const trace = await traceOf(motiaId);
    assert.deepEqual(trace.entryPoint, { type: 'cron', stepName: 'both' });
    assert.equal(trace.flowName, 'both'); // no flows: the step name
    assert.deepEqual(opsOf(stepNamed(trace, 'both')), [
      ['state', 'set', 'a.b', undefined, true],
      ['emit', 'send', 't', undefined, true],
    ]);
    assert.equal(eventsOf(stepNamed(trace, 'both'), 'log').length, 1);
  });

  test('outside a trace the wrapped module just delegates', async () => {
    const { mod, calls } = fakeMotiaModule();
    instrumentMotia(mod);
    assert.equal(flowscope.getContext(), undefined);
    assert.deepEqual(await mod.stateManager.set('a', 'b', 3), { new_value: 3, old_value: null });
    assert.equal(await mod.stateManager.get('a', 'b'), 3);
    await assert.rejects(mod.stateManager.clear('locked'), /group locked/);
    await mod.enqueue({ topic: 'x' });
    mod.logger.error('plain');
    assert.deepEqual(calls.enqueued, [{ topic: 'x' }]);
    assert.deepEqual(calls.logged, [['error', 'plain', undefined]]);
  });
});

describe('mapping, entry types, packaging', () => {
  test('the trace id mapping is deterministic, distinct per Motia trace, 32 lowercase hex', () => {
    const a = randomUUID();
    assert.equal(traceIdFor(a), traceIdFor(a));
    assert.notEqual(traceIdFor(a), traceIdFor(randomUUID()));
    assert.match(traceIdFor(a), /^[0-9a-f]{32}$/);
    assert.notEqual(traceIdFor(a), '0'.repeat(32));
    // SHA-256("motia:trace-abc123")[0..16]: the same value the Python adapter computes.
    assert.equal(traceIdFor('trace-abc123'), require('node:crypto').createHash('sha256').update('motia:trace-abc123').digest('hex').slice(0, 32));
    assert.equal(traceIdFor('trace-abc123'), '474bb88df9ca079cbc3cfdb25c4e3bbc');
  });

  test('entry types: 0.x type, 1.x triggers, the trigger that fired', () => {
    assert.equal(entryFor({ type: 'api' }), 'api');
    assert.equal(entryFor({ type: 'event' }), 'event');
    assert.equal(entryFor({ type: 'cron' }), 'cron');
    assert.equal(entryFor({ triggers: [{ type: 'http' }] }), 'api');
    for (const t of ['queue', 'state', 'stream']) assert.equal(entryFor({ triggers: [{ type: t }] }), 'event');
    assert.equal(entryFor({ triggers: [{ type: 'cron' }] }), 'cron');
    const multi = { triggers: [{ type: 'http' }, { type: 'queue' }, { type: 'cron' }] };
    assert.equal(entryFor(multi), 'api');
    assert.equal(entryFor(multi, { trigger: { type: 'cron' } }), 'cron');
    assert.equal(entryFor(multi, { trigger: { type: 'queue' } }), 'event');
    assert.equal(entryFor({}), 'event');
  });

  test('a 0.x cron handler called with only ctx gets the wrapped ctx', async () => {
    const motiaId = randomUUID();
    const handler = instrument({ type: 'cron', name: 'nightly', cron: '0 0 * * *', flows: ['cleanup'] }, async (ctx) => {
      await ctx.state.clear('sessions');
      ctx.logger.info('cleaned');
      return typeof ctx.correlate;
    });
    assert.equal(await handler(fakeContext(motiaId)), 'function');
    const trace = await traceOf(motiaId);
    assert.deepEqual(trace.entryPoint, { type: 'cron', stepName: 'nightly' });
    assert.deepEqual(opsOf(stepNamed(trace, 'nightly')), [['state', 'clear', 'sessions', undefined, true]]);
  });

  test("ESM `import … from 'flowscope/motia'` is the same module", async () => {
    const esm = await import('flowscope/motia');
    for (const name of ['instrument', 'instrumentMotia', 'traceIdFor', 'entryFor']) assert.equal(esm[name], motia[name], name);
    assert.equal(esm.default, motia);
    const pkg = require('../package.json');
    assert.equal(pkg.exports['./motia'].require.default, './motia.js');
    for (const file of ['motia.js', 'motia.mjs', 'motia.d.ts']) assert.ok(pkg.files.includes(file), file);
  });

  test('the types compile for CommonJS and ESM TypeScript consumers', (t) => {
    let tsc;
    try {
      tsc = require.resolve('typescript/bin/tsc', { paths: [SDK_DIR] });
    } catch {
      return t.skip('typescript is not installed');
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'flowscope-motia-types-'));
    try {
      mkdirSync(path.join(dir, 'node_modules'));
      symlinkSync(SDK_DIR, path.join(dir, 'node_modules', 'flowscope'), 'dir');
      writeFileSync(path.join(dir, 'package.json'), '{"name": "motia-types-consumer", "private": true}');
      const body = `
        const config = { type: 'event', name: 'save-user', subscribes: ['user.validated'], flows: ['user-registration'] } as const;
        export const handler = instrument(config, async (input: { email: string }, ctx: MotiaContext) => {
          await ctx.state?.set?.('user', 'saved', true);
          await ctx.correlate?.(input.email);
          return { ok: true };
        });
        const r: Promise<{ ok: boolean }> = handler({ email: 'a@b.c' }, { traceId: 't' });
        const id: string = traceIdFor('t');
        const entry: 'api' | 'cron' | 'event' = entryFor({ name: 'x', triggers: [{ type: 'http' }] });
        const mod = instrumentMotia({ stateManager: {}, enqueue: async () => {} });
        void [r, id, entry, mod];
      `;
      writeFileSync(path.join(dir, 'consumer.cts'), `import { instrument, instrumentMotia, traceIdFor, entryFor, type MotiaContext } from 'flowscope/motia';\n${body}`);
      writeFileSync(
        path.join(dir, 'consumer.mts'),
        `import motia, { instrument, instrumentMotia, traceIdFor, entryFor, type MotiaContext } from 'flowscope/motia';\n${body}\nvoid motia.instrument;`,
      );
      writeFileSync(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'nodenext',
            moduleResolution: 'nodenext',
            target: 'es2022',
            strict: true,
            noEmit: true,
            types: ['node'],
            typeRoots: [path.join(SDK_DIR, 'node_modules', '@types')],
            skipLibCheck: false,
            preserveSymlinks: true,
          },
          files: ['consumer.cts', 'consumer.mts'],
        }),
      );
      const { execFileSync } = require('node:child_process');
      try {
        execFileSync(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { cwd: dir, stdio: 'pipe' });
      } catch (err) {
        assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('disabled flowscope: handlers and ctx work unchanged, ctx.correlate resolves, nothing is sent', async () => {
    const code = `
      const flowscope = require(${JSON.stringify(SDK_DIR)});
      const { instrument, instrumentMotia } = require('flowscope/motia');
      const info = flowscope.init({ service: 'motia-disabled' });
      if (info.enabled) throw new Error('should be disabled');
      const mod = instrumentMotia({ stateManager: { get: async () => 'v' }, enqueue: async (e) => e.topic, logger: { info: () => 'logged' } });
      const seen = [];
      const handler = instrument({ type: 'api', name: 'off', flows: ['off'] }, async (req, ctx) => {
        seen.push(await ctx.state.get('a', 'b'));
        seen.push(await ctx.correlate('g'));
        seen.push(await mod.stateManager.get('x', 'y'), await mod.enqueue({ topic: 't' }), mod.logger.info('m'));
        try { ctx.state.set('a', 'b', 1); } catch (err) { seen.push(err.message); }
        return req.n + 1;
      });
      const ctx = { traceId: 'run-1', state: { get: async () => 1, set: () => { throw new Error('ro'); } } };
      handler({ n: 1 }, ctx).then((r) => {
        console.log(JSON.stringify({ r, seen, stats: flowscope.stats() }));
      });
    `;
    const run = await runNode({ code, env: { FLOWSCOPE_SOCKET: agent.socket, FLOWSCOPE_DISABLED: '1' } });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout);
    assert.equal(out.r, 2);
    assert.deepEqual(out.seen, [1, null, 'v', 't', 'logged', 'ro']);
    assert.equal(out.stats.enqueued, 0);
    assert.equal((await agent.get(`/api/traces/${traceIdFor('run-1')}`)).status, 404);
  });

  test('examples/motia/registration.js runs one flow run end to end into one trace', async () => {
    const run = await runNode({ file: EXAMPLE, env: { FLOWSCOPE_SOCKET: agent.socket } });
    assert.equal(run.code, 0, run.stderr);
    const motiaId = /^motia trace (\S+)$/m.exec(run.stdout)[1];
    const id = /^flowscope trace ([0-9a-f]{32})$/m.exec(run.stdout)[1];
    assert.equal(id, traceIdFor(motiaId));
    assert.match(run.stdout, /^response 202 /m);
    const trace = await agent.trace(id, (t) => t.status !== 'running' && t.steps.length === 3);
    assert.equal(trace.status, 'completed');
    assert.equal(trace.service, 'motia-registration');
    assert.equal(trace.flowName, 'user-registration');
    assert.deepEqual(trace.entryPoint, { type: 'api', stepName: 'validate-user' });
    assert.equal(trace.correlationId, 'user-ada');
    assert.deepEqual(trace.steps.map((s) => [s.name, s.status]), [
      ['validate-user', 'completed'],
      ['save-user', 'completed'],
      ['send-email', 'completed'],
    ]);
    // The RFC's operation counts: 3/1/0, 2/1/1, 2/0/1.
    assert.deepEqual(trace.steps.map((s) => s.operations), [
      { state: 3, emit: 1, stream: 0 },
      { state: 2, emit: 1, stream: 1 },
      { state: 2, emit: 0, stream: 1 },
    ]);
    assert.deepEqual(opsOf(stepNamed(trace, 'save-user')), [
      ['state', 'get', 'validation.result', undefined, true],
      ['stream', 'set', 'users', 'user-ada', true],
      ['state', 'set', 'user.saved', undefined, true],
      ['emit', 'send', 'user.saved', undefined, true],
    ]);
    assert.deepEqual(eventsOf(stepNamed(trace, 'send-email'), 'log').map((l) => [l.level, l.message]), [['info', 'welcome email queued']]);
  });
});
