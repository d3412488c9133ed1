// HTTP API client and the live event stream (SSE by default, WebSocket on request).
// Every URL is relative to the page, so the UI also works behind a path prefix.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GET a JSON endpoint; throws ApiError with the agent's `{error:{code,message}}`. */
export async function getJson(path, { signal } = {}) {
  let res;
  try {
    // Started by index.html while the modules loaded; one use only, later loads are fresh (app.js
    // drops whatever the first route did not use).
    const early = window.__flowscopePrefetch;
    const pre = early && Object.hasOwn(early, path) ? early[path] : null;
    if (pre) {
      delete early[path];
      res = await pre;
    } else res = await fetch(path, { signal, headers: { accept: 'application/json' } });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The agent is not reachable.');
  }
  if (!res.ok) {
    let code = `http_${res.status}`;
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body && body.error) {
        code = body.error.code || code;
        message = body.error.message || message;
      }
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, code, message);
  }
  const text = await res.text();
  const t0 = performance.now();
  const body = JSON.parse(text);
  const perf = (window.__flowscope ||= {});
  (perf.fetches ||= []).push({ path, bytes: text.length, parseMs: performance.now() - t0, at: t0 });
  if (perf.fetches.length > 50) perf.fetches.shift();
  return body;
}

export const TRACE_FILTERS = ['q', 'flow', 'status', 'step', 'stateKey', 'topic', 'correlationId', 'minDuration'];

export function tracesUrl(filters, cursor, limit = 100) {
  const p = new URLSearchParams();
  for (const k of TRACE_FILTERS) if (filters[k]) p.set(k, filters[k]);
  p.set('limit', String(limit));
  if (cursor) p.set('cursor', cursor);
  return `api/traces?${p}`;
}

export const api = {
  traces: (filters, cursor, opts) => getJson(tracesUrl(filters, cursor), opts),
  /** The full trace: every step's operations and events (2 MB for 5,000 steps). */
  trace: (id, opts) => getJson(`api/traces/${encodeURIComponent(id)}`, opts),
  /** What the timeline draws: per step, op counts, emits and event counts, no ops/events. */
  traceTimeline: (id, opts) => getJson(`api/traces/${encodeURIComponent(id)}?view=timeline`, opts),
  /** One step in full (the step object of the full view). */
  step: (id, spanId, opts) => getJson(`api/traces/${encodeURIComponent(id)}/steps/${encodeURIComponent(spanId)}`, opts),
  groups: (opts) => getJson('api/groups', opts),
  group: (id, opts) => getJson(`api/groups/${encodeURIComponent(id)}`, opts),
  flows: (opts) => getJson('api/flows', opts),
};

export const EVENT_TYPES = ['trace.created', 'trace.updated', 'trace.completed', 'group.updated', 'flow.status', 'heartbeat'];

/**
 * The live connection. `onEvent(type, data)` for every message; `onState(state, detail)` with
 * state ∈ connecting | live | reconnecting | unavailable. Reconnects with backoff; a connection
 * that stays silent for longer than 2.5 heartbeats is considered dead and replaced.
 */
export class LiveStream {
  constructor({ transport = 'sse', onEvent, onState, onResync }) {
    this.transport = transport;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onResync = onResync;
    this.conn = null;
    this.backoff = 500;
    this.lastMessage = 0;
    this.everOpened = false;
    this.failures = 0;
    this.closed = false;
    this.watchdog = setInterval(() => this.checkAlive(), 5000);
  }

  start() {
    this.closed = false;
    this.connect();
  }

  stop() {
    this.closed = true;
    clearInterval(this.watchdog);
    this.teardown();
  }

  setState(s, detail) {
    this.state = s;
    this.onState?.(s, detail);
  }

  connect() {
    this.teardown();
    this.setState(this.everOpened ? 'reconnecting' : 'connecting');
    if (this.transport === 'ws') this.connectWs();
    else this.connectSse();
  }

  teardown() {
    if (!this.conn) return;
    try {
      this.conn.close();
    } catch {
      /* already closed */
    }
    this.conn = null;
  }

  opened() {
    const again = this.everOpened;
    this.everOpened = true;
    this.failures = 0;
    this.backoff = 500;
    this.lastMessage = Date.now();
    this.setState('live');
    // Events may have been missed while disconnected: let the pages refetch.
    if (again) this.onResync?.();
  }

  /** The agent dropped us (`error` event, e.g. code slow_client): reconnect and resync. */
  dropped(raw) {
    let info = {};
    try {
      info = JSON.parse(raw) || {};
    } catch {
      /* keep empty */
    }
    this.lastDrop = info;
    console.warn('flowscope: live stream dropped by the agent', info.code, info.message);
    this.failed();
  }

  failed() {
    this.teardown();
    if (this.closed) return;
    this.failures += 1;
    // Never opened after a few tries: the agent probably has no stream endpoint.
    const drop = this.lastDrop;
    this.lastDrop = null;
    this.setState(!this.everOpened && this.failures >= 3 ? 'unavailable' : 'reconnecting', drop);
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 10_000);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  deliver(type, data) {
    this.lastMessage = Date.now();
    if (this.state !== 'live') this.setState('live');
    this.onEvent?.(type, data);
  }

  connectSse() {
    const es = new EventSource('api/stream');
    this.conn = es;
    es.onopen = () => this.opened();
    es.onerror = (e) => {
      // The agent's own `event: error` (a slow client being dropped) arrives here too, as a
      // MessageEvent with data; the stream ends right after it.
      if (e && typeof e.data === 'string') {
        this.dropped(e.data);
        return;
      }
      // EventSource retries by itself, but after a close (server restart, drop) we want our
      // own backoff and state reporting; CLOSED means it gave up.
      if (es.readyState === EventSource.CLOSED || !this.everOpened) this.failed();
      else this.setState('reconnecting');
    };
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, (m) => {
        let data = null;
        try {
          data = m.data ? JSON.parse(m.data) : null;
        } catch {
          return;
        }
        this.deliver(type, data);
      });
    }
    es.onmessage = (m) => {
      // Untyped messages carry the {type, data} envelope.
      try {
        const msg = JSON.parse(m.data);
        if (msg && msg.type) this.deliver(msg.type, msg.data);
      } catch {
        /* ignore */
      }
    };
  }

  connectWs() {
    const url = new URL('api/ws', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    this.conn = ws;
    ws.onopen = () => this.opened();
    ws.onclose = () => {
      if (this.conn === ws) this.failed();
    };
    ws.onmessage = (m) => {
      try {
        const msg = JSON.parse(m.data);
        if (msg && msg.type === 'error') this.dropped(JSON.stringify(msg.data));
        else if (msg && msg.type) this.deliver(msg.type, msg.data);
      } catch {
        /* ignore */
      }
    };
  }

  checkAlive() {
    if (this.closed || this.state !== 'live') return;
    if (Date.now() - this.lastMessage > 40_000) this.failed();
  }
}
