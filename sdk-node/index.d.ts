// Types of the flowscope Node SDK (hand-written; the generated native.d.ts is private).

import type { IncomingMessage, ServerResponse } from 'node:http';

/** The package version (same as the Rust workspace version). */
export declare const VERSION: string;
/** `x-motia-correlation-id` */
export declare const CORRELATION_HEADER: 'x-motia-correlation-id';
/** `traceparent` */
export declare const TRACEPARENT_HEADER: 'traceparent';
/** `tracestate` */
export declare const TRACESTATE_HEADER: 'tracestate';

export interface InitOptions {
  /** Service name (OTel `service.name`); default `OTEL_SERVICE_NAME`, else `unknown_service`. */
  service?: string;
  /** Agent socket; default `FLOWSCOPE_SOCKET`, else `$XDG_RUNTIME_DIR/flowscope/flowscope.sock`, else `/tmp/flowscope-$UID/flowscope.sock`. */
  socket?: string;
  /** No-op mode; default from `FLOWSCOPE_DISABLED` (`1`, `true`, `yes`, `on`). */
  disabled?: boolean;
  /** Events buffered before new ones overflow (default: bounded by `queueBytes` only). */
  queueCapacity?: number;
  /** Estimated bytes buffered before new events overflow (default 256 MiB, `FLOWSCOPE_QUEUE_BYTES`). */
  queueBytes?: number;
  /**
   * When the queue is full: `drop` (default; counted per trace, the agent marks the trace
   * incomplete, never waits), `block` (wait up to 5 s for room, then drop) or `block:<ms>` — for
   * batch jobs. Default from `FLOWSCOPE_OVERFLOW`. An unknown value throws.
   */
  overflow?: 'drop' | 'block' | `block:${number}`;
  /** Batch encoding on the socket (default `msgpack`). */
  encoding?: 'msgpack' | 'json';
  /** Longest wait for queued events when the process exits, in ms (default 1000; 0 = none). */
  exitFlushMs?: number;
  /**
   * What must never leave the process: key names (comma-separated) whose values in log fields,
   * attributes and payloads become `[redacted]`, or `re:<regex>` patterns replaced in any text.
   * An invalid pattern throws.
   */
  redact?: string[];
  /** Replace every LLM prompt and response with `[redacted]` before sending. */
  hideLlmContent?: boolean;
}

export interface InitResult {
  /** Whether events are recorded. */
  enabled: boolean;
  service: string;
  socket: string;
}

export interface Stats {
  /** Events accepted into the queue. */
  enqueued: number;
  /** Events written to the agent. */
  sent: number;
  /** Events dropped (queue full, oversized, undeliverable). */
  dropped: number;
  /** Reconnects after a lost connection. */
  reconnects: number;
  /** Events waiting in the queue. */
  queued: number;
  /** Estimated bytes waiting in the queue (bounded by `queueBytes`). */
  queuedBytes: number;
  /** Whether the writer holds a live connection to the agent. */
  connected: boolean;
  /** Why the SDK will not connect (e.g. a socket owned by another user), if it will not. */
  lastError?: string;
}

export type EntryType = 'api' | 'cron' | 'event';

export interface TraceOptions {
  /** What triggered the run (default `api`). */
  entry?: EntryType;
  /** Name of the entry step. */
  step?: string;
  /** Joins the trace group of this id. Inside another trace, defaults to its correlation id. */
  correlationId?: string | null;
  /** The trace that started this one. Inside another trace, defaults to it. */
  parentTraceId?: string;
  /** Use this trace id (32 lowercase hex digits) instead of a new one. */
  traceId?: string;
  /** Free-form attributes (JSON-able). */
  attributes?: Record<string, unknown>;
  /**
   * An incoming `traceparent` header value: when valid, this trace continues it (same trace id,
   * the caller's span as parent, sampled/random flags kept). Wins over `traceId`.
   */
  traceparent?: string;
  /** The incoming `tracestate` (kept only beside a valid `traceparent`, validated). */
  tracestate?: string;
}

export interface Context {
  traceId: string;
  /** The current step's span id (undefined directly under the trace). */
  spanId?: string;
  /** The current step's name. */
  step?: string;
  flow: string;
  correlationId?: string;
}

export type OpKind = 'state' | 'emit' | 'stream';
export type OpAction = 'get' | 'set' | 'delete' | 'clear' | 'send' | (string & {});
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'warning' | 'error' | 'critical' | 'fatal';

export interface OpTarget {
  /** State key. */
  key?: string;
  /** Emit topic. */
  topic?: string;
  /** Step an emit triggers. */
  to?: string;
  /** Stream name. */
  stream?: string;
  /** Stream item id. */
  id?: string;
}

export interface LlmCall {
  model: string;
  provider?: string;
  /** Text, or a JSON-able value (e.g. a messages array). */
  prompt?: unknown;
  /** Text, or a JSON-able value. */
  response?: unknown;
  inputTokens?: number;
  outputTokens?: number;
  /** USD. */
  cost?: number;
  durationMs?: number;
}

export interface ArtifactOptions {
  url?: string;
  /** Inline preview (text, or a JSON-able value). */
  preview?: unknown;
  mime?: string;
  /** Bytes. */
  size?: number;
}

export interface Extracted {
  correlationId?: string;
  /** The caller's trace id, from a valid traceparent. */
  traceId?: string;
  /** The caller's span id, from a valid traceparent. */
  parentSpanId?: string;
  sampled?: boolean;
  /** The caller's W3C trace flags (bit 0 sampled, bit 1 random). */
  flags?: number;
  /** The valid traceparent, normalised. */
  traceparent?: string;
  /** Kept only alongside a valid traceparent (validated: one bad member drops it). */
  tracestate?: string;
}

/** Anything headers can be read from: Node's IncomingHttpHeaders, fetch Headers, a Map, an object. */
export type HeaderSource =
  | Headers
  | Map<string, string | string[]>
  | Record<string, string | string[] | number | undefined>
  | null
  | undefined;

/** Anything headers can be written to. */
export type HeaderTarget =
  | Headers
  | Map<string, string>
  | { setHeader(name: string, value: string): unknown }
  | Record<string, unknown>;

export interface HttpOptions<Req = IncomingMessage> {
  /** Flow name of each request's trace (default: `METHOD /path`, as in every SDK). */
  flow?: string | ((req: Req) => string);
  /** Name of the request step (default `"METHOD /path"`). */
  step?: string | ((req: Req) => string);
  /** Send traceparent (the request step), tracestate and X-Motia-Correlation-Id on the response, as every SDK does (default true). */
  responseHeader?: boolean;
}

type Awaitable<T> = T | PromiseLike<T>;

export declare function init(options?: InitOptions | string): InitResult;
/** Flushes (bounded) and stops the client; later calls are no-ops until init(). */
export declare function shutdown(timeoutMs?: number): boolean;
/** Resolves true once everything queued so far is written, false after timeoutMs (default 1000). */
export declare function flush(timeoutMs?: number): Promise<boolean>;
/** Like flush(), blocking the thread. */
export declare function flushSync(timeoutMs?: number): boolean;
export declare function stats(): Stats;
export declare function isEnabled(): boolean;

/** Runs fn as a new trace of `flow`; returns fn's result. Throws/rejections fail the trace and propagate. */
export declare function trace<T>(flow: string, fn: () => T): T;
export declare function trace<T>(flow: string, options: TraceOptions | undefined, fn: () => T): T;
/** Runs fn as a step of the current trace; returns fn's result. Throws/rejections fail the step and propagate. */
export declare function step<T>(name: string, fn: () => T): T;
/** Wraps a handler: each call runs as step `name` (default: the handler's name). */
export declare function wrapStep<F extends (...args: any[]) => any>(name: string, handler: F): F;
export declare function wrapStep<F extends (...args: any[]) => any>(handler: F): F;
/** Wraps a handler: each call runs as a new trace of `flow`. */
export declare function wrapTrace<F extends (...args: any[]) => any>(flow: string, handler: F): F;
export declare function wrapTrace<F extends (...args: any[]) => any>(flow: string, options: TraceOptions | undefined, handler: F): F;
/** The current trace/step, or undefined outside a trace. */
export declare function getContext(): Context | undefined;

/** Records an op; with fn, times fn and returns its result (a throw marks the op failed). */
export declare function op(kind: OpKind, action: OpAction, target?: string | OpTarget): void;
export declare function op<T>(kind: OpKind, action: OpAction, target: string | OpTarget | undefined, fn: () => T): T;
export declare function stateGet(key: string): void;
export declare function stateGet<T>(key: string, fn: () => T): T;
export declare function stateSet(key: string): void;
export declare function stateSet<T>(key: string, fn: () => T): T;
export declare function stateDelete(key: string): void;
export declare function stateDelete<T>(key: string, fn: () => T): T;
export declare function stateClear(): void;
export declare function stateClear<T>(fn: () => T): T;
/** An emit to `topic`; `options.to` (or a string) names the step it triggers. */
export declare function emit(topic: string, options?: { to?: string } | string): void;
export declare function emit<T>(topic: string, fn: () => T): T;
export declare function emit<T>(topic: string, options: { to?: string } | string | undefined, fn: () => T): T;
export declare function streamGet(stream: string, id?: string): void;
export declare function streamGet<T>(stream: string, id: string | undefined, fn: () => T): T;
export declare function streamSet(stream: string, id?: string): void;
export declare function streamSet<T>(stream: string, id: string | undefined, fn: () => T): T;
export declare function streamDelete(stream: string, id?: string): void;
export declare function streamDelete<T>(stream: string, id: string | undefined, fn: () => T): T;
export declare function streamSend(stream: string, id?: string): void;
export declare function streamSend<T>(stream: string, fn: () => T): T;
export declare function streamSend<T>(stream: string, id: string | undefined, fn: () => T): T;

export interface Log {
  /** `level` as in every SDK: trace, debug, info, warn/warning, error/critical/fatal (any case; anything else is info). */
  (level: LogLevel | (string & {}), message: string, fields?: Record<string, unknown>): void;
  /** At info. */
  (message: string): void;
  trace(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}
export declare const log: Log;
export declare function llm(call: LlmCall): void;
export declare function artifact(name: string, options?: ArtifactOptions): void;
export declare function retry(attempt: number, options?: { reason?: string; backoffMs?: number }): void;
export declare function checkpoint(id: string): void;
export declare function transition(from: string, to: string, action?: string): void;
export declare function custom(name: string, payload?: unknown): void;
/** The current trace joins the group `id`; outgoing calls then carry it. */
export declare function correlate(
  id: string,
  options?: { name?: string; method?: 'manual' | 'header' | 'event' | 'state' | 'temporal' },
): void;

/** Reads the correlation id and W3C headers (invalid values are ignored). */
export declare function extract(headers: HeaderSource): Extracted;
/**
 * Writes traceparent, tracestate and X-Motia-Correlation-Id into headers; each call records its
 * own CLIENT span (ended at once), whose id is the parent-id sent.
 */
export declare function inject<H extends HeaderTarget = Record<string, string>>(headers?: H): H;

type Next = (err?: unknown) => void;
/** Express/Connect middleware: one trace per request (see README). */
export declare function middleware<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  options?: HttpOptions<Req>,
): (req: Req, res: Res, next: Next) => void;
/** Express error middleware recording the error on the request's trace, then calling next(err). */
export declare function errorMiddleware(): (err: unknown, req: IncomingMessage, res: ServerResponse, next: Next) => void;
/** Wraps a node:http request listener: one trace per request. */
export declare function wrapHandler<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse, R = unknown>(
  handler: (req: Req, res: Res) => R,
  options?: HttpOptions<Req>,
): (req: Req, res: Res) => R;
/** A fetch that adds the propagation headers inside a trace. */
/** Wraps node:http/https `request` or `get`: each call is a CLIENT span carrying the propagation headers. */
export declare function wrapRequest<F extends (...args: any[]) => any>(requestImpl: F): F;
export declare function wrapFetch(fetchImpl?: typeof fetch): typeof fetch;
export declare function wrapFetch<F extends (input: any, init?: any) => any>(fetchImpl: F): F;

export declare function newTraceId(): string;
export declare function newSpanId(): string;
