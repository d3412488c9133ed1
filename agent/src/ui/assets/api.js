// HTTP API client and the live event stream (SSE by default, WebSocket on request).
// Every URL is relative to the page, so the UI also works behind a path prefix.
//
// An agent started with `--token` answers 401 to /api/* without `Authorization: Bearer <token>`.
// The token the user enters is kept in sessionStorage (this tab only) and sent on every request;
// EventSource and WebSocket cannot set headers, so the live stream carries it as `?token=`.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const TOKEN_KEY = 'flowscope.token';

/** The access token of this tab, or null. */
export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || null;
  } catch {
    return null; // storage disabled
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives as long as this page */
  }
}

/** Request headers with the token, if any. */
export function authHeaders(headers = {}) {
  const token = getToken();
  return token ? { ...headers, authorization: `Bearer ${token}` } : headers;
}

let unauthorized = null;
/** `fn(error, {token})` runs when the agent refuses the current token (or the lack of one). */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** A 401 for the token still in use is reported; one for a token since replaced is not. */
function refused(err, token) {
  if (err.status === 401 && token === getToken()) unauthorized?.(err, { token });
}

/** An ApiError from a failed response (the agent's `{error:{code,message}}`, when it sent one). */
async function apiError(res) {
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
  return new ApiError(res.status, code, message);
}

/** GET a JSON endpoint; throws ApiError with the agent's `{error:{code,message}}`. */
export async function getJson(path, { signal } = {}) {
  let res;
  let token = getToken();
  let prefetched = null; // {res, body} or {res, error} from prefetch.js
  try {
    // Started, and parsed, by prefetch.js while the modules loaded; one use only, later loads are
    // fresh (app.js drops whatever the first route did not use).
    const early = window.__flowscopePrefetch;
    const pre = early && Object.hasOwn(early, path) ? early[path] : null;
    if (pre) {
      delete early[path];
      token = pre.token || null;
      prefetched = await pre.result;
      res = prefetched.res;
    } else res = await fetch(path, { signal, headers: authHeaders({ accept: 'application/json' }) });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The agent is not reachable.');
  }
  if (!res.ok) {
    const err = await apiError(res);
    refused(err, token);
    throw err;
  }
  if (prefetched) {
    if (prefetched.error) throw prefetched.error;
    return prefetched.body;
  }
  const text = await res.text();
  const t0 = performance.now();
  const body = JSON.parse(text);
  const perf = (window.__flowscope ||= {});
  (perf.fetches ||= []).push({ path, bytes: text.length, parseMs: performance.now() - t0, at: t0 });
  if (perf.fetches.length > 50) perf.fetches.shift();
  return body;
}

/**
 * Opens an API URL that is not JSON for the page (an export) as a download, or in a new tab when
 * `download` is null. With a token it has to be fetched (a link cannot send the header).
 */
export async function openFile(path, { download = null } = {}) {
  const token = getToken();
  let res;
  try {
    res = await fetch(path, { headers: authHeaders() });
  } catch {
    throw new ApiError(0, 'network', 'The agent is not reachable.');
  }
  if (!res.ok) {
    const err = await apiError(res);
    refused(err, token);
    throw err;
  }
  const blob = await res.blob();
  const named = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') || '');
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  if (download !== null) link.download = (named && named[1]) || download;
  else link.target = '_blank';
  link.rel = 'noopener';
  document.body.appendChild(link);
  link.click();
  link.remove();
  // Long enough for the new tab to load it.
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

export const TRACE_FILTERS = ['q', 'flow', 'service', 'status', 'step', 'stateKey', 'topic', 'correlationId', 'minDuration'];

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
  /** A flow's stored runs summarized; `range`: {since, until} in unix ms, either optional. */
  insights: (flow, range = {}, opts) => {
    const p = new URLSearchParams();
    if (range.since != null) p.set('since', String(range.since));
    if (range.until != null) p.set('until', String(range.until));
    const qs = p.toString();
    return getJson(`api/flows/${encodeURIComponent(flow)}/insights${qs ? `?${qs}` : ''}`, opts);
  },
  /** Two traces step by step (steps matched by name and occurrence). */
  compare: (a, b, opts) => getJson(`api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`, opts),
  /** A cheap authenticated request, to check a token. */
  check: (opts) => getJson('api/traces?limit=1', opts),
};

export const EVENT_TYPES = ['trace.created', 'trace.updated', 'trace.completed', 'group.updated', 'flow.status', 'heartbeat'];

/**
 * The live changes that arrive while a list is on its way (list, then watch). A page calls
 * `begin` and `end` around each load and `keep`s every live change by id meanwhile; once a list
 * lands, `newer` gives the changes it may predate: those numbered after its `seq` (the stream's
 * last event when the agent read the list) or, from an agent that sends no `seq`, those whose id
 * the list lacks. Past `max` changes it keeps none and `newer` returns null: fetch again.
 */
export class ChangesDuringLoad {
  constructor(max) {
    this.max = max;
    this.loads = 0;
    this.changes = new Map();
    this.overflow = false;
  }

  begin() {
    this.loads += 1;
  }

  end() {
    this.loads -= 1;
    if (this.loads === 0) {
      this.changes.clear();
      this.overflow = false;
    }
  }

  keep(id, seq, data) {
    if (this.loads === 0 || this.overflow) return;
    this.changes.delete(id); // the latest change of each, in arrival order
    this.changes.set(id, { seq, data });
    if (this.changes.size > this.max) {
      this.overflow = true;
      this.changes.clear();
    }
  }

  /** The kept changes the list read at `since` may predate; `listed(data)`: the list has it. */
  newer(since, listed) {
    if (this.overflow) return null;
    const known = Number.isSafeInteger(since);
    const out = [];
    for (const { seq, data } of this.changes.values()) if (known && seq !== null ? seq > since : !listed(data)) out.push(data);
    return out;
  }
}

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
    this.watchdog = 0;
  }

  start() {
    this.closed = false;
    if (!this.watchdog) this.watchdog = setInterval(() => this.checkAlive(), 5000);
    this.connect();
  }

  stop() {
    this.closed = true;
    clearInterval(this.watchdog);
    this.watchdog = 0;
    clearTimeout(this.retryTimer);
    this.teardown();
  }

  /** Starts over with fresh backoff (after stop(), e.g. once a token was entered). */
  restart() {
    this.stop();
    this.failures = 0;
    this.backoff = 500;
    this.start();
  }

  /** The stream URL, with the access token when there is one (no headers on EventSource/WS). */
  url(path) {
    const url = new URL(path, location.href);
    const token = getToken();
    if (token) url.searchParams.set('token', token);
    return url;
  }

  setState(s, detail) {
    this.state = s;
    this.onState?.(s, detail);
  }

  connect() {
    clearTimeout(this.retryTimer);
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

  /** One stream event; `seq` is the agent's sequence number (null when it sent none). */
  deliver(type, data, seq) {
    this.lastMessage = Date.now();
    if (this.state !== 'live') this.setState('live');
    this.onEvent?.(type, data, Number.isSafeInteger(seq) ? seq : null);
  }

  connectSse() {
    const es = new EventSource(this.url('api/stream'));
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
        this.deliver(type, data, m.lastEventId ? Number(m.lastEventId) : null);
      });
    }
    es.onmessage = (m) => {
      // Untyped messages carry the {type, data} envelope.
      try {
        const msg = JSON.parse(m.data);
        if (msg && msg.type) this.deliver(msg.type, msg.data, msg.seq);
      } catch {
        /* ignore */
      }
    };
  }

  connectWs() {
    const url = this.url('api/ws');
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
        else if (msg && msg.type) this.deliver(msg.type, msg.data, msg.seq);
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
