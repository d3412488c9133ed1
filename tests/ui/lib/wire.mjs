// A minimal flowscope SDK for tests, speaking the wire protocol (sdk-rust/PROTOCOL.md) with the
// JSON encoding straight from node:net: u32 big-endian length-prefixed frames, a JSON hello, then
// batches (JSON arrays of events). Timestamps are u64 nanoseconds, so they are BigInts here and
// written into the JSON as bare integers (a JS number would lose precision).

import net from 'node:net';
import { randomBytes } from 'node:crypto';

export const traceId = () => randomBytes(16).toString('hex');
export const spanId = () => randomBytes(8).toString('hex');

/** Unix time in nanoseconds (BigInt), from a millisecond wall clock with sub-ms precision. */
export function nowNs() {
  const ms = performance.timeOrigin + performance.now();
  return BigInt(Math.floor(ms * 1e3)) * 1000n;
}

export const msToNs = (ms) => BigInt(Math.round(ms * 1e6));

function encode(value) {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `__big__${v}` : v)).replace(/"__big__(\d+)"/g, '$1');
}

function frame(payload) {
  const body = Buffer.from(payload, 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** A connected client. `await WireClient.connect(socketPath)`, then `send([...events])`. */
export class WireClient {
  static connect(socketPath, { service = 'ui-tests' } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(socketPath);
      let buf = Buffer.alloc(0);
      const onData = (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 4) return;
        const len = buf.readUInt32BE(0);
        if (buf.length < 4 + len) return;
        const reply = JSON.parse(buf.subarray(4, 4 + len).toString('utf8'));
        sock.off('data', onData);
        if (!reply.ok) reject(new Error(`handshake refused: ${JSON.stringify(reply)}`));
        else resolve(new WireClient(sock, reply));
      };
      sock.on('data', onData);
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.write(frame(JSON.stringify({ v: 1, encoding: 'json', sdk: 'ui-tests/1', service, pid: process.pid })));
      });
    });
  }

  constructor(sock, hello) {
    this.sock = sock;
    this.hello = hello;
    this.maxFrame = hello.maxFrame || 4 * 1024 * 1024;
  }

  /** Sends one batch; resolves once written to the socket. Splits batches too big for a frame. */
  send(events) {
    const payload = encode(events);
    if (Buffer.byteLength(payload) > this.maxFrame - 16 && events.length > 1) {
      const mid = events.length >> 1;
      return this.send(events.slice(0, mid)).then(() => this.send(events.slice(mid)));
    }
    return new Promise((resolve, reject) => this.sock.write(frame(payload), (e) => (e ? reject(e) : resolve())));
  }

  close() {
    return new Promise((resolve) => this.sock.end(resolve));
  }
}

/**
 * Events for a trace with `n` sequential steps, each with a state op and an emit to the next step
 * (so the timeline draws n−1 arrows), every 10th step with an LLM call. Times are laid out
 * from `start` (ns) with `stepMs` per step.
 */
export function bigTraceEvents({ n, flow = 'bulk-import', start = nowNs(), stepMs = 2, tr = traceId() }) {
  const events = [{ k: 'trace_start', t: start, tr, flow, entry: 'event', step: 'step-0' }];
  const step = msToNs(stepMs);
  for (let i = 0; i < n; i++) {
    const sp = spanId();
    const t0 = start + step * BigInt(i);
    const name = `step-${i}`;
    events.push({ k: 'step_start', t: t0, tr, sp, name });
    events.push({ k: 'op', t: t0 + 1000n, tr, sp, op: 'state', action: 'get', key: `item.${i}`, dur: step / 4n });
    if (i % 10 === 0)
      events.push({ k: 'llm', t: t0 + step / 3n, tr, sp, model: 'gpt-4o-mini', provider: 'openai', prompt: `classify item ${i}`, response: 'ok', input_tokens: 12, output_tokens: 2, dur: step / 4n });
    if (i + 1 < n) events.push({ k: 'op', t: t0 + step / 2n, tr, sp, op: 'emit', action: 'send', topic: `item.${i}.done`, to: `step-${i + 1}`, dur: 1000n });
    events.push({ k: 'step_end', t: t0 + step - 1000n, tr, sp, name, status: i === n - 1 ? 'failed' : 'completed', ...(i === n - 1 ? { error: { message: 'last item rejected', type: 'Rejected' } } : {}) });
  }
  events.push({ k: 'trace_end', t: start + step * BigInt(n), tr, status: 'failed', error: { message: 'last item rejected', type: 'Rejected' } });
  return { tr, events };
}
