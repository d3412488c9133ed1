// Types of flowscope/motia (motia.js; motia.mjs exports the same names plus a default export).

import type { EntryType } from './index.js';

/** Motia 1.x trigger types. */
export type MotiaTriggerType = 'http' | 'queue' | 'cron' | 'state' | 'stream';

/** The parts of a Motia step config the adapter reads (any other field is allowed). */
export interface MotiaStepConfig {
  /** Step name: the flowscope step (and the trace's entry step for an api/cron step). */
  name: string;
  /** Motia 0.x step type: `api`, `event` or `cron` (the flowscope entry type). */
  type?: 'api' | 'event' | 'cron' | (string & {});
  /** Motia 1.x triggers: `http` → api; `queue`, `state`, `stream` → event; `cron` → cron. */
  triggers?: ReadonlyArray<{ readonly type: MotiaTriggerType | (string & {}); readonly [key: string]: unknown }>;
  /** The first one is the flowscope flow name (default: the step name). */
  flows?: readonly string[];
  readonly [key: string]: unknown;
}

type Awaitable<T> = T | PromiseLike<T>;

/** What the adapter reads and wraps in a Motia handler context (every member optional). */
export interface MotiaContext {
  /** Motia's id of the flow run: mapped to the flowscope trace id by traceIdFor(). */
  traceId?: string;
  /** Motia 1.x: the trigger that fired (decides the entry type of multi-trigger steps). */
  trigger?: { type?: string; [key: string]: unknown };
  state?: {
    get?(scope: string, key: string): Awaitable<unknown>;
    set?(scope: string, key: string, value: unknown): Awaitable<unknown>;
    delete?(scope: string, key: string): Awaitable<unknown>;
    clear?(scope: string): Awaitable<unknown>;
    getGroup?(scope: string): Awaitable<unknown>;
    [key: string]: unknown;
  };
  emit?(event: { topic: string; data?: unknown }): Awaitable<unknown>;
  enqueue?(event: { topic: string; data?: unknown }): Awaitable<unknown>;
  streams?: Record<string, unknown>;
  logger?: {
    info?(message: string, fields?: unknown): unknown;
    warn?(message: string, fields?: unknown): unknown;
    error?(message: string, fields?: unknown): unknown;
    debug?(message: string, fields?: unknown): unknown;
    [key: string]: unknown;
  };
  /** Added by the adapter: the current trace joins the group `id` (kept and called when present). */
  correlate?(id: string): Promise<void>;
  [key: string]: unknown;
}

/**
 * Wraps a Motia step handler `(input, ctx)` (a cron handler may take only `ctx`): each call runs as
 * step `config.name` of the flowscope trace `traceIdFor(ctx.traceId)` (flow `config.flows[0]`),
 * with the context's state/emit/stream/logger calls recorded and `ctx.correlate(id)` added. The
 * result, `this` and errors are those of `handler`.
 */
export declare function instrument<H extends (...args: any[]) => any>(config: MotiaStepConfig, handler: H): H;

/**
 * Motia 1.x: wraps `stateManager`, `enqueue` and `logger` of the module in place (idempotent), so
 * calls inside instrumented handlers are recorded. Returns the module.
 */
export declare function instrumentMotia<M>(motia: M): M;

/** The flowscope trace id of a Motia trace id: SHA-256("motia:" + id), first 16 bytes as hex. */
export declare function traceIdFor(motiaTraceId: string): string;

/** The flowscope entry type of a step config (and, for Motia 1.x, the trigger that fired). */
export declare function entryFor(config: MotiaStepConfig | undefined, ctx?: MotiaContext): EntryType;
