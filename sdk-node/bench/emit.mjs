// Emit cost of the flowscope Node SDK, side by side in one run with the OpenTelemetry JS SDK
// (BasicTracerProvider + BatchSpanProcessor + an exporter that discards, AsyncLocalStorage
// context manager) doing the equivalent spans. Mirrors sdk-rust/benches/emit.rs:
//
//   event           one op inside an active step   | OTel: one child span (start + end)
//   event, timed    one op timed around a callback | OTel: startActiveSpan around the callback
//   step + 3 ops    a step with 3 ops (5 events)   | OTel: a span with 3 child spans
//   async step      the same with an async step    | OTel: the same with an async callback
//
// Only the emitting thread is timed. Iterations run in chunks smaller than both queues; between
// chunks both sides are drained untimed (flowscope flush, OTel forceFlush), so neither measures
// its drop path. Rounds alternate the two SDKs; the median round is reported.
//
// flowscope sends to a sink process (handshake, then discard), like the Rust bench, so the agent's
// own CPU use is not in the figures; `--agent` sends to a real agent (FLOWSCOPE_AGENT_BIN or
// <repo>/target/{release,debug}/flowscope) instead.
//
//   node bench/emit.mjs [--agent] [--rounds N] [--chunks N]

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { trace as otelTrace, context as otelContext } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

import * as flowscope from '../index.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const ROUNDS = arg('--rounds', 7);
const CHUNKS = arg('--chunks', 20);
const CHUNK = 2000;
const useAgent = process.argv.includes('--agent');

// ---------------------------------------------------------------------------------------------
// The sink flowscope sends to.

const SINK = `
  const net = require('node:net');
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    let greeted = false;
    socket.on('data', (chunk) => {
      if (greeted) return; // discard everything after the hello
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 4 || buf.length < 4 + buf.readUInt32BE(0)) return;
      greeted = true;
      const reply = Buffer.from(JSON.stringify({ v: 1, ok: true, agent: 'sink', maxFrame: 4194304 }));
      const header = Buffer.alloc(4);
      header.writeUInt32BE(reply.length);
      socket.write(Buffer.concat([header, reply]));
    });
    socket.on('error', () => {});
  });
  server.listen(process.argv[1], () => console.log('ready'));
`;

async function startPeer(dir) {
  const socket = path.join(dir, 'bench.sock');
  let child;
  let pattern;
  if (useAgent) {
    const candidates = [
      process.env.FLOWSCOPE_AGENT_BIN,
      path.join(repo, 'target', 'release', 'flowscope'),
      path.join(repo, 'target', 'debug', 'flowscope'),
    ].filter(Boolean);
    const bin = candidates.find((c) => existsSync(c));
    if (!bin) throw new Error('no agent binary: cargo build -p flowscope-agent, or set FLOWSCOPE_AGENT_BIN');
    child = spawn(bin, ['--socket', socket, '--http', '127.0.0.1:0', '--log', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
    pattern = /^flowscope listening/m;
    console.log(`peer: agent ${bin}`);
  } else {
    child = spawn(process.execPath, ['-e', SINK, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    pattern = /^ready/m;
    console.log('peer: sink process (handshake, then discard)');
  }
  await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (pattern.test(out)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`peer exited (${code})`)));
  });
  child.stdout.resume();
  return { socket, stop: () => child.kill('SIGKILL') };
}

// ---------------------------------------------------------------------------------------------
// Timing

async function timed(body, drain) {
  let ns = 0n;
  for (let c = 0; c < CHUNKS; c++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < CHUNK; i++) body();
    ns += process.hrtime.bigint() - started;
    await drain();
  }
  return Number(ns) / (CHUNKS * CHUNK);
}

async function timedAsync(body, drain) {
  let ns = 0n;
  for (let c = 0; c < CHUNKS; c++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < CHUNK; i++) await body();
    ns += process.hrtime.bigint() - started;
    await drain();
  }
  return Number(ns) / (CHUNKS * CHUNK);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---------------------------------------------------------------------------------------------

const dir = mkdtempSync(path.join(tmpdir(), 'flowscope-bench-'));
const peer = await startPeer(dir);

flowscope.init({ service: 'bench', socket: peer.socket });
const fsDrain = async () => {
  if (!(await flowscope.flush(10000))) throw new Error('flowscope flush timed out');
};

let exported = 0;
const exporter = {
  export(spans, done) {
    exported += spans.length;
    done({ code: 0 });
  },
  shutdown: () => Promise.resolve(),
  forceFlush: () => Promise.resolve(),
};
otelContext.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const provider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 65536, maxExportBatchSize: 1024, scheduledDelayMillis: 50 })],
});
otelTrace.setGlobalTracerProvider(provider);
const tracer = otelTrace.getTracer('bench');
const otelDrain = () => provider.forceFlush();

const cases = [
  {
    name: 'event (op record)',
    flowscope: () => timed(() => flowscope.stateGet('user.email'), fsDrain),
    otel: () => timed(() => tracer.startSpan('state.get user.email').end(), otelDrain),
  },
  {
    name: 'event, timed callback',
    flowscope: () => timed(() => flowscope.stateGet('user.email', () => 1), fsDrain),
    otel: () =>
      timed(
        () =>
          tracer.startActiveSpan('state.get user.email', (span) => {
            const v = 1;
            span.end();
            return v;
          }),
        otelDrain,
      ),
  },
  {
    name: 'step + 3 ops',
    flowscope: () =>
      timed(
        () =>
          flowscope.step('validate-user', () => {
            flowscope.stateGet('user.email');
            flowscope.stateSet('validation.result');
            flowscope.emit('user.validated', { to: 'save-user' });
          }),
        fsDrain,
      ),
    otel: () =>
      timed(
        () =>
          tracer.startActiveSpan('validate-user', (span) => {
            tracer.startSpan('state.get user.email').end();
            tracer.startSpan('state.set validation.result').end();
            tracer.startSpan('emit user.validated').end();
            span.end();
          }),
        otelDrain,
      ),
  },
  {
    name: 'async step + 3 ops',
    flowscope: () =>
      timedAsync(
        () =>
          flowscope.step('validate-user', async () => {
            flowscope.stateGet('user.email');
            flowscope.stateSet('validation.result');
            flowscope.emit('user.validated', { to: 'save-user' });
          }),
        fsDrain,
      ),
    otel: () =>
      timedAsync(
        () =>
          tracer.startActiveSpan('validate-user', async (span) => {
            tracer.startSpan('state.get user.email').end();
            tracer.startSpan('state.set validation.result').end();
            tracer.startSpan('emit user.validated').end();
            span.end();
          }),
        otelDrain,
      ),
  },
];

console.log(
  `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; ${ROUNDS} rounds × ${CHUNKS} chunks × ${CHUNK} iterations per case and SDK`,
);

const results = [];
await flowscope.trace('bench-flow', async () => {
  await flowscope.step('bench-step', async () => {
    await tracer.startActiveSpan('flow bench-flow', async (root) => {
      await tracer.startActiveSpan('bench-step', async (otelStep) => {
        for (const c of cases) {
          // warm-up
          await c.flowscope();
          await c.otel();
          const fs = [];
          const ot = [];
          for (let r = 0; r < ROUNDS; r++) {
            fs.push(await c.flowscope());
            ot.push(await c.otel());
          }
          results.push({ name: c.name, flowscope: median(fs), otel: median(ot) });
        }
        otelStep.end();
      });
      root.end();
    });
  });
});

await fsDrain();
await otelDrain();
const s = flowscope.stats();

const pad = (v, n) => String(v).padStart(n);
console.log(`\n${'case'.padEnd(24)}${pad('flowscope ns', 14)}${pad('OTel ns', 12)}${pad('ratio', 9)}`);
for (const r of results) {
  console.log(`${r.name.padEnd(24)}${pad(r.flowscope.toFixed(0), 14)}${pad(r.otel.toFixed(0), 12)}${pad((r.otel / r.flowscope).toFixed(1) + '×', 9)}`);
}
console.log(`\nflowscope client: sent ${s.sent}, dropped ${s.dropped}; OTel exported ${exported} spans`);

await provider.shutdown();
flowscope.shutdown(1000);
peer.stop();
rmSync(dir, { recursive: true, force: true });
