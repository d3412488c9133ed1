'use strict';
// Process lifecycle: scripts that only emit exit by themselves (after a bounded flush), absent
// agent, disabled mode, no init, and misuse never throwing.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { startAgent, runNode, stepNamed, SDK_DIR } = require('./helpers');

const SDK = JSON.stringify(SDK_DIR);
let agent;

before(async () => {
  agent = await startAgent();
});

after(async () => {
  await agent.stop();
});

/** A script that emits one trace with `ops` ops and prints the trace id, then `tail` code. */
const emitter = (ops, tail = '') => `
  const flowscope = require(${SDK});
  flowscope.init({ service: 'exit-test' });
  const id = flowscope.trace('emit-only', () => flowscope.step('work', () => {
    for (let i = 0; i < ${ops}; i++) flowscope.stateSet('key.' + i);
    return flowscope.getContext().traceId;
  }));
  console.log(id);
  ${tail}
`;

test('a script that only emits exits by itself, promptly, and its events arrive', async () => {
  const run = await runNode({ code: emitter(500), env: { FLOWSCOPE_SOCKET: agent.socket }, timeoutMs: 15000 });
  assert.equal(run.timedOut, false, 'the process was still alive after 15 s');
  assert.equal(run.code, 0, run.stderr);
  // Node start + a bounded exit flush (default 1 s at most); typically ~100 ms in total.
  assert.ok(run.ms < 5000, `exit took ${run.ms} ms`);
  const trace = await agent.trace(run.stdout.trim());
  assert.equal(trace.status, 'completed');
  assert.equal(stepNamed(trace, 'work').ops.length, 500);
});

test('process.exit() right after emitting still delivers (exit hook flush)', async () => {
  const run = await runNode({ code: emitter(50, 'process.exit(3);'), env: { FLOWSCOPE_SOCKET: agent.socket } });
  assert.equal(run.code, 3, run.stderr);
  const trace = await agent.trace(run.stdout.trim());
  assert.equal(stepNamed(trace, 'work').ops.length, 50);
});

test('the JSON encoding works too', async () => {
  const code = emitter(5).replace("flowscope.init({ service: 'exit-test' })", "flowscope.init({ service: 'json-test', encoding: 'json' })");
  const run = await runNode({ code, env: { FLOWSCOPE_SOCKET: agent.socket } });
  assert.equal(run.code, 0, run.stderr);
  const trace = await agent.trace(run.stdout.trim());
  assert.equal(trace.service, 'json-test');
  assert.equal(stepNamed(trace, 'work').ops.length, 5);
});

test('absent agent: nothing throws, events are dropped when the queue is full, exit is prompt', async () => {
  const code = `
    const flowscope = require(${SDK});
    const info = flowscope.init({ service: 'no-agent', queueCapacity: 1000 });
    if (!info.enabled) throw new Error('should be enabled');
    const fetchTraced = flowscope.wrapFetch(async () => 'fetched');
    (async () => {
      for (let t = 0; t < 100; t++) {
        await flowscope.trace('lonely', async () => {
          await flowscope.step('s', async () => {
            for (let i = 0; i < 50; i++) flowscope.stateGet('k');
            flowscope.log('info', 'x');
            await fetchTraced('http://example.invalid/');
          });
        });
      }
      const flushed = await flowscope.flush(200);
      const s = flowscope.stats();
      console.log(JSON.stringify({ flushed, ...s }));
    })();
  `;
  const run = await runNode({ code, env: { FLOWSCOPE_SOCKET: path.join(agent.dir, 'nobody-here.sock') } });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, '');
  const result = JSON.parse(run.stdout);
  assert.equal(result.flushed, false);
  assert.equal(result.connected, false);
  assert.equal(result.sent, 0);
  assert.ok(result.dropped > 0, JSON.stringify(result));
  assert.ok(run.ms < 5000, `exit took ${run.ms} ms`);
});

test('FLOWSCOPE_DISABLED=1: every call is a cheap no-op, nothing reaches the agent', async () => {
  const code = `
    const assert = require('node:assert/strict');
    const flowscope = require(${SDK});
    const info = flowscope.init({ service: 'disabled-test' });
    assert.equal(info.enabled, false);
    assert.equal(flowscope.isEnabled(), false);
    const value = flowscope.trace('disabled-flow', { correlationId: 'nope' }, () =>
      flowscope.step('s', () => {
        assert.equal(flowscope.getContext(), undefined);
        assert.deepEqual(flowscope.inject({}), {});
        flowscope.correlate('x');
        return flowscope.stateGet('k', () => 7);
      }));
    assert.equal(value, 7);
    let nextCalled = false;
    flowscope.middleware()({ headers: {} }, {}, () => { nextCalled = true; });
    assert.ok(nextCalled);
    const started = process.hrtime.bigint();
    const n = 200000;
    for (let i = 0; i < n; i++) {
      flowscope.step('s', () => { flowscope.stateGet('k'); flowscope.log('info', 'm'); });
    }
    const perIteration = Number(process.hrtime.bigint() - started) / n;
    flowscope.flush(100).then((flushed) => {
      assert.equal(flushed, true);
      assert.equal(flowscope.stats().enqueued, 0);
      console.log(perIteration.toFixed(1));
    });
  `;
  const run = await runNode({ code, env: { FLOWSCOPE_SOCKET: agent.socket, FLOWSCOPE_DISABLED: '1' } });
  assert.equal(run.code, 0, run.stderr);
  const perIteration = Number(run.stdout.trim());
  // A step + op + log in disabled mode: a few tens of ns; the bound only catches accidents.
  assert.ok(perIteration < 2000, `disabled step+op+log costs ${perIteration} ns`);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await agent.traces({ flow: 'disabled-flow' }), []);
});

test('without init every call is a no-op too', async () => {
  const code = `
    const flowscope = require(${SDK});
    const v = flowscope.trace('f', () => flowscope.step('s', () => { flowscope.checkpoint('c'); return flowscope.getContext(); }));
    if (v !== undefined) throw new Error('context without init');
    flowscope.flush().then((ok) => console.log(ok, JSON.stringify(flowscope.stats())));
  `;
  const run = await runNode({ code, env: { FLOWSCOPE_SOCKET: agent.socket } });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^true /);
});

test('odd arguments never throw from event calls; invalid init options do', async () => {
  const code = `
    const assert = require('node:assert/strict');
    const flowscope = require(${SDK});
    assert.throws(() => flowscope.init({ queueCapacity: 0 }), /queueCapacity/);
    assert.throws(() => flowscope.init({ encoding: 'xml' }), /encoding/);
    flowscope.init({ service: 'odd-args' });
    const circular = {}; circular.self = circular;
    const id = flowscope.trace('odd', { attributes: circular, traceId: 'not-hex' }, () => {
      flowscope.step(42, () => {
        flowscope.log('nonsense-level', { toString() { return 'obj message'; } }, circular);
        flowscope.log(undefined, undefined);
        flowscope.checkpoint(null);
        flowscope.transition(1, 2);
        flowscope.custom('c', circular);
        flowscope.custom('big', 10n === 10n ? { n: 1 } : null);
        flowscope.llm({ model: 'm', inputTokens: 'many', cost: NaN, prompt: circular });
        flowscope.llm(null);
        flowscope.retry('x');
        flowscope.artifact(undefined, { size: -1 });
        flowscope.stateGet(Symbol.for('k').description);
        flowscope.op('state', 'explode', { key: 'k' });
        flowscope.emit('t', 'target-as-string');
        flowscope.correlate({});
        flowscope.stateSet(Object.create(null));
        flowscope.checkpoint({ toString() { throw new Error('no'); } });
      });
      return flowscope.getContext().traceId;
    });
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.throws(() => flowscope.op('nope', 'get', 'k'), TypeError);
    console.log(id);
  `;
  const run = await runNode({ code, env: { FLOWSCOPE_SOCKET: agent.socket } });
  assert.equal(run.code, 0, run.stderr);
  const trace = await agent.trace(run.stdout.trim());
  const step = stepNamed(trace, '42');
  assert.deepEqual(
    step.ops.map((o) => [o.kind, o.action]),
    [
      ['state', 'get'],
      ['state', 'other'],
      ['emit', 'send'],
      ['state', 'set'],
    ],
  );
  assert.equal(step.ops[2].to, 'target-as-string');
  assert.equal(step.ops[3].key, '[unprintable]');
  assert.ok(step.events.some((e) => e.type === 'checkpoint' && e.id === '[unprintable]'));
  assert.ok(step.events.some((e) => e.type === 'log' && e.message === 'obj message' && e.level === 'info'));
});

test('redaction happens before events leave the process', async () => {
  const code = `
    const flowscope = require(${SDK});
    flowscope.init({ service: 'redacting', redact: ['password,api_key', 're:sk-[a-z0-9]{8,}'], hideLlmContent: true });
    const id = flowscope.trace('redaction-node', { attributes: { api_key: 'k-123', user: 'ann' } }, () =>
      flowscope.step('s', () => {
        flowscope.log('info', 'using sk-abcdefgh12', { password: 'hunter2', note: 'fine' });
        flowscope.llm({ model: 'm-1', prompt: 'secret prompt', response: 'secret answer', inputTokens: 1, outputTokens: 2 });
        return flowscope.getContext().traceId;
      }));
    console.log(id);
  `;
  const run = await runNode({ code, env: { FLOWSCOPE_SOCKET: agent.socket } });
  assert.equal(run.code, 0, run.stderr);
  const trace = await agent.trace(run.stdout.trim());
  const text = JSON.stringify(trace);
  for (const secret of ['hunter2', 'sk-abcdefgh12', 'secret prompt', 'secret answer']) {
    assert.ok(!text.includes(secret), `${secret} left the process`);
  }
  const step = stepNamed(trace, 's');
  const log = step.events.find((e) => e.type === 'log');
  assert.equal(log.message, 'using [redacted]');
  assert.deepEqual([log.fields.password, log.fields.note], ['[redacted]', 'fine']);
  const llm = step.events.find((e) => e.type === 'llm');
  assert.deepEqual([llm.model, llm.totalTokens, llm.prompt], ['m-1', 3, '[redacted]']);
});

test('an invalid redact pattern throws at init', async () => {
  const code = `
    const flowscope = require(${SDK});
    try { flowscope.init({ service: 'x', redact: ['re:('] }); console.log('accepted'); }
    catch (e) { console.log('refused: ' + e.message); }
  `;
  const run = await runNode({ code, env: { FLOWSCOPE_SOCKET: path.join(agent.dir, 'none.sock') } });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /refused: .*not a valid regular expression/);
});

const burster = (overflow) => `
  const flowscope = require(${SDK});
  flowscope.init({ service: 'node-burst', queueBytes: 16384, overflow: ${JSON.stringify(overflow)} });
  const id = flowscope.trace('burst', () => {
    flowscope.step('hot-loop', () => {
      for (let i = 0; i < 20000; i++) flowscope.stateSet('key-' + i);
    });
    return flowscope.getContext().traceId;
  });
  flowscope.flushSync(30000);
  console.log(JSON.stringify({ trace: id, dropped: flowscope.stats().dropped }));
`;

test('a full queue drops per trace and the agent marks the trace incomplete', async () => {
  const run = await runNode({ code: burster('drop'), env: { FLOWSCOPE_SOCKET: agent.socket }, timeoutMs: 60000 });
  assert.equal(run.code, 0, run.stderr);
  const { trace, dropped } = JSON.parse(run.stdout.trim());
  assert.ok(dropped > 0, 'a 16 KiB queue overflows in a tight loop');
  const t = await agent.trace(trace, (t) => t.droppedEvents === dropped);
  assert.equal(t.incomplete, true);
});

test("overflow: 'block' waits for room and loses nothing", async () => {
  const run = await runNode({ code: burster('block'), env: { FLOWSCOPE_SOCKET: agent.socket }, timeoutMs: 60000 });
  assert.equal(run.code, 0, run.stderr);
  const { trace, dropped } = JSON.parse(run.stdout.trim());
  assert.equal(dropped, 0);
  const t = await agent.trace(trace);
  assert.equal(t.steps[0].operations.state, 20000);
  assert.equal(t.incomplete, undefined);
});

test('an unknown overflow mode throws', async () => {
  const flowscope = require('..');
  assert.throws(() => flowscope.init({ service: 'x', overflow: 'wait', socket: '/nonexistent/x.sock' }), /overflow must be/);
});
