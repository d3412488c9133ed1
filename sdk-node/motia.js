'use strict';
/**
 * flowscope/motia — an adapter for Motia step handlers.
 *
 *   const { instrument } = require('flowscope/motia');
 *   exports.config = { type: 'event', name: 'save-user', subscribes: ['user.validated'], flows: ['user-registration'] };
 *   exports.handler = instrument(exports.config, async (input, { state, emit, logger }) => { … });
 *
 * Every invocation of an instrumented handler reports into ONE flowscope trace per Motia flow run:
 * the trace id is derived from `ctx.traceId` (traceIdFor), so the API step and the event steps it
 * triggers — separate invocations, possibly in separate processes — form one trace. Each
 * invocation sends its own trace_start for that id (the agent merges the segments; the first one,
 * the API or cron step, is the trace's entry) and runs the handler as a step named `config.name`.
 * State, emit, stream and logger calls made through the context are recorded (timed, ok/failed)
 * and delegated unchanged. Nothing here throws because of flowscope: when it is disabled or not
 * initialised, the handler runs with the same context and nothing is recorded.
 *
 * See README.md ("Motia") and motia.d.ts.
 */

const { AsyncLocalStorage } = require('node:async_hooks');
const { createHash } = require('node:crypto');

const flowscope = require('./index.js');

/** Set while a recorded call runs, so a wrapped function calling another one records once. */
const recording = new AsyncLocalStorage();
const WRAPPED = Symbol.for('flowscope.motia.wrapped');

/** Motia 0.x `config.type` and 1.x trigger types → flowscope entry types. */
const ENTRY_OF = {
  api: 'api',
  http: 'api',
  event: 'event',
  queue: 'event',
  state: 'event',
  stream: 'event',
  cron: 'cron',
};

/**
 * The flowscope trace id of a Motia trace id: the first 16 bytes of SHA-256("motia:" + id), as
 * 32 lowercase hex digits (never all zeros). The same in every process and in the Python SDK.
 */
function traceIdFor(motiaTraceId) {
  const hex = createHash('sha256').update(`motia:${String(motiaTraceId)}`, 'utf8').digest('hex').slice(0, 32);
  return /^0+$/.test(hex) ? `${hex.slice(0, 31)}1` : hex;
}

/**
 * The entry type of a step: Motia 0.x `config.type` (api | event | cron), or for Motia 1.x the
 * trigger that fired (`ctx.trigger.type`, when the context says) else the first of
 * `config.triggers` (http → api; queue, state, stream → event; cron → cron). Default `event`.
 */
function entryFor(config, ctx) {
  const cfg = config || {};
  const fired = ctx && typeof ctx === 'object' && ctx.trigger && typeof ctx.trigger === 'object' ? ctx.trigger.type : undefined;
  if (typeof fired === 'string' && ENTRY_OF[fired] !== undefined) return ENTRY_OF[fired];
  if (typeof cfg.type === 'string' && ENTRY_OF[cfg.type] !== undefined) return ENTRY_OF[cfg.type];
  if (Array.isArray(cfg.triggers)) {
    for (const trigger of cfg.triggers) {
      const type = trigger && typeof trigger === 'object' ? trigger.type : trigger;
      if (typeof type === 'string' && ENTRY_OF[type] !== undefined) return ENTRY_OF[type];
    }
  }
  return 'event';
}

function text(value) {
  try {
    return String(value);
  } catch {
    return '[unprintable]';
  }
}

/** State key of `scope` + `key` (`scope.key`; `scope` alone when there is no key). */
function stateKey(scope, key) {
  if (key === undefined || key === null) return text(scope);
  return `${text(scope)}.${text(key)}`;
}

/** The topic of an emit/enqueue argument `{ topic, data }`. */
function topicOf(event) {
  if (event !== null && typeof event === 'object' && event.topic !== undefined) return text(event.topic);
  return typeof event === 'string' ? event : undefined;
}

/** Stream item id: the id argument, or `channel.id` for `send({ groupId, id }, event)`. */
function streamId(first, second, method) {
  if (method === 'send' && first !== null && typeof first === 'object') {
    return first.id === undefined || first.id === null ? undefined : text(first.id);
  }
  return second === undefined || second === null ? undefined : text(second);
}

/**
 * Runs `fn` as a flowscope op (timed until it returns or settles; a throw or rejection marks it
 * failed and propagates). Records nothing outside a trace, when disabled, or inside another
 * recorded call.
 */
function timed(kind, action, target, fn) {
  if (!flowscope.isEnabled() || recording.getStore() === true) return fn();
  return flowscope.op(kind, action, target, () => recording.run(true, fn));
}

/** Log fields: an object as is, anything else under `value`. */
function fieldsOf(fields) {
  if (fields === undefined || fields === null) return undefined;
  if (typeof fields === 'object' && !Array.isArray(fields)) return fields;
  return { value: fields };
}

// ---------------------------------------------------------------------------------------------
// Wrapping objects of the context (proxies: identity of everything else is kept)

/** What each method of a state object records: [kind, action, target] of its arguments. */
const STATE_METHODS = {
  get: (scope, key) => ['state', 'get', stateKey(scope, key)],
  set: (scope, key) => ['state', 'set', stateKey(scope, key)],
  delete: (scope, key) => ['state', 'delete', stateKey(scope, key)],
  clear: (scope) => ['state', 'clear', stateKey(scope)],
  getGroup: (scope) => ['state', 'get', stateKey(scope)],
  list: (scope) => ['state', 'get', stateKey(scope)],
};

function streamMethods(name) {
  const of = (method, action) => (first, second) => ['stream', action, { stream: name, id: streamId(first, second, method) }];
  return {
    get: of('get', 'get'),
    set: of('set', 'set'),
    delete: of('delete', 'delete'),
    send: of('send', 'send'),
    getGroup: () => ['stream', 'get', { stream: name }],
  };
}

const LOG_LEVELS = ['info', 'warn', 'error', 'debug'];

/** A function recording `describe(...args)` around each call of `fn` (called on `self`). */
function recorded(fn, self, describe) {
  const wrapper = function flowscopeRecorded(...args) {
    let op;
    try {
      op = describe(...args);
    } catch {
      op = undefined;
    }
    if (op === undefined) return fn.apply(self, args);
    return timed(op[0], op[1], op[2], () => fn.apply(self, args));
  };
  wrapper[WRAPPED] = fn;
  return wrapper;
}

/** A logger method that also writes a flowscope log line of `level`. */
function loggedMethod(fn, self, level) {
  const wrapper = function flowscopeLogged(message, fields, ...rest) {
    if (!flowscope.isEnabled()) return fn.call(self, message, fields, ...rest);
    if (recording.getStore() !== true) {
      try {
        flowscope.log(level, typeof message === 'string' ? message : text(message), fieldsOf(fields));
      } catch {
        // never throw from instrumentation
      }
    }
    return recording.run(true, () => fn.call(self, message, fields, ...rest));
  };
  wrapper[WRAPPED] = fn;
  return wrapper;
}

/**
 * A proxy of `target` whose methods listed in `methods` are replaced by `make(fn, target, spec)`;
 * other functions are bound to `target` (class instances with private fields keep working);
 * everything else reads through. Wrappers are cached (the same function on every read).
 */
function proxyOf(target, methods, make) {
  const cache = new Map();
  return new Proxy(target, {
    get(obj, prop) {
      const value = Reflect.get(obj, prop, obj);
      if (typeof value !== 'function' || typeof prop === 'symbol') return value;
      const desc = Reflect.getOwnPropertyDescriptor(obj, prop);
      if (desc !== undefined && desc.configurable === false && desc.writable === false) return value; // proxy invariant
      const hit = cache.get(prop);
      if (hit !== undefined && hit.fn === value) return hit.wrapped;
      const spec = Object.prototype.hasOwnProperty.call(methods, prop) ? methods[prop] : undefined;
      const wrapped = spec !== undefined ? make(value, obj, spec) : value.bind(obj);
      cache.set(prop, { fn: value, wrapped });
      return wrapped;
    },
  });
}

const proxies = new WeakMap();

/** The cached proxy of `target` for `kind` (made by `build` on first use). */
function cached(target, kind, build) {
  if (target === null || (typeof target !== 'object' && typeof target !== 'function')) return target;
  let byKind = proxies.get(target);
  if (byKind === undefined) {
    byKind = new Map();
    proxies.set(target, byKind);
  }
  let proxy = byKind.get(kind);
  if (proxy === undefined) {
    proxy = build(target);
    byKind.set(kind, proxy);
  }
  return proxy;
}

const wrapState = (state) => cached(state, 'state', (s) => proxyOf(s, STATE_METHODS, recorded));
const wrapLogger = (logger) => cached(logger, 'logger', (l) => proxyOf(l, Object.fromEntries(LOG_LEVELS.map((lv) => [lv, lv])), loggedMethod));
const describeEmit = (event) => ['emit', 'send', { topic: topicOf(event) }];

/** `ctx.streams`: each named stream becomes a proxy recording get/set/delete/send. */
function wrapStreams(streams) {
  return cached(streams, 'streams', (target) => {
    const byName = new Map();
    return new Proxy(target, {
      get(obj, prop) {
        const value = Reflect.get(obj, prop, obj);
        if (typeof prop === 'symbol' || value === null || typeof value !== 'object') return value;
        const desc = Reflect.getOwnPropertyDescriptor(obj, prop);
        if (desc !== undefined && desc.configurable === false && desc.writable === false) return value;
        const hit = byName.get(prop);
        if (hit !== undefined && hit.stream === value) return hit.proxy;
        const proxy = proxyOf(value, streamMethods(prop), recorded);
        byName.set(prop, { stream: value, proxy });
        return proxy;
      },
    });
  });
}

/** ctx.correlate(id): joins the current trace to group `id`; delegates to an existing one. */
function correlator(original, self) {
  return function correlate(id, ...rest) {
    try {
      flowscope.correlate(id);
    } catch {
      // never throw from instrumentation
    }
    if (typeof original === 'function') return original.call(self, id, ...rest);
    return Promise.resolve();
  };
}

/**
 * The handler's view of `ctx`: a proxy reading through to it, with `state`, `emit`, `enqueue`,
 * `streams` and `logger` recorded, and `correlate` added (or wrapped). Writes go to `ctx`.
 */
function wrapContext(ctx) {
  const overrides = new Map();
  const override = (obj, prop) => {
    const value = Reflect.get(obj, prop, obj);
    const hit = overrides.get(prop);
    if (hit !== undefined && hit.value === value) return hit.wrapped;
    let wrapped = value;
    if (prop === 'correlate') wrapped = correlator(value, obj);
    else if (value !== null && value !== undefined) {
      if (prop === 'state' && typeof value === 'object') wrapped = wrapState(value);
      else if ((prop === 'emit' || prop === 'enqueue') && typeof value === 'function') {
        wrapped = value[WRAPPED] !== undefined ? value : recorded(value, obj, describeEmit);
      }
      else if (prop === 'streams' && typeof value === 'object') wrapped = wrapStreams(value);
      else if (prop === 'logger' && typeof value === 'object') wrapped = wrapLogger(value);
    }
    overrides.set(prop, { value, wrapped });
    return wrapped;
  };
  const WRAPPED_PROPS = new Set(['state', 'emit', 'enqueue', 'streams', 'logger', 'correlate']);
  // Proxy invariant: a non-configurable, non-writable data property reads as itself.
  const frozen = (obj, prop) => {
    const desc = Reflect.getOwnPropertyDescriptor(obj, prop);
    return desc !== undefined && desc.configurable === false && desc.writable === false;
  };
  return new Proxy(ctx, {
    get(obj, prop) {
      if (typeof prop === 'string' && WRAPPED_PROPS.has(prop) && !frozen(obj, prop)) return override(obj, prop);
      return Reflect.get(obj, prop, obj);
    },
    has(obj, prop) {
      return prop === 'correlate' || Reflect.has(obj, prop);
    },
    ownKeys(obj) {
      const keys = Reflect.ownKeys(obj);
      if (!keys.includes('correlate') && Object.isExtensible(obj)) keys.push('correlate');
      return keys;
    },
    getOwnPropertyDescriptor(obj, prop) {
      const desc = Reflect.getOwnPropertyDescriptor(obj, prop);
      if (typeof prop !== 'string' || !WRAPPED_PROPS.has(prop) || frozen(obj, prop)) return desc;
      if (desc === undefined) {
        if (prop !== 'correlate' || !Object.isExtensible(obj)) return undefined;
        return { value: override(obj, prop), writable: true, enumerable: true, configurable: true };
      }
      if ('value' in desc) return { ...desc, value: override(obj, prop) };
      return desc;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// instrument / instrumentMotia

function isContext(value) {
  return value !== null && typeof value === 'object';
}

/**
 * Wraps a Motia step handler: `instrument(config, handler)` returns a handler with the same
 * arguments, `this` and result (value, promise, throw or rejection, unchanged).
 *
 * - flow = `config.flows[0]` (else the step name), step = `config.name`, entry = entryFor(config);
 * - trace id = traceIdFor(ctx.traceId) (a fresh trace without one);
 * - the context is `(input, ctx)`'s second argument (a cron handler's only argument when it is
 *   called with one), replaced by a recording view of it (see wrapContext).
 */
function instrument(config, handler) {
  if (typeof handler !== 'function') throw new TypeError('flowscope/motia: instrument(config, handler): handler must be a function');
  const cfg = config !== null && typeof config === 'object' ? config : {};
  const stepName = cfg.name !== undefined && cfg.name !== null ? text(cfg.name) : handler.name || 'step';
  const flow = Array.isArray(cfg.flows) && cfg.flows.length > 0 && cfg.flows[0] !== undefined && cfg.flows[0] !== null ? text(cfg.flows[0]) : stepName;

  const instrumented = function flowscopeMotiaHandler(...args) {
    const at = args.length >= 2 ? 1 : args.length === 1 && entryFor(cfg) === 'cron' && isContext(args[0]) ? 0 : -1;
    const ctx = at === -1 ? undefined : args[at];
    if (isContext(ctx)) args[at] = wrapContext(ctx);
    const run = () => recording.run(false, () => handler.apply(this, args));
    if (!flowscope.isEnabled()) return run();

    const options = { entry: entryFor(cfg, ctx), step: stepName };
    const motiaId = isContext(ctx) ? ctx.traceId : undefined;
    if (motiaId !== undefined && motiaId !== null && motiaId !== '') {
      options.traceId = traceIdFor(motiaId);
      options.attributes = { 'motia.traceId': text(motiaId) };
      // Dispatched from inside another step of the same run (in-process emit): a segment of
      // the same trace, not a child of itself.
      const outer = flowscope.getContext();
      if (outer !== undefined && outer.traceId === options.traceId) options.parentTraceId = null;
    }
    return flowscope.trace(flow, options, () => flowscope.step(stepName, run));
  };
  try {
    Object.defineProperty(instrumented, 'name', { value: handler.name || 'flowscopeMotiaHandler' });
  } catch {
    // keep the wrapper's own name
  }
  instrumented[WRAPPED] = handler;
  return instrumented;
}

/** Replaces `obj[prop]` (a function) with `make(fn)` unless already wrapped; true when done. */
function replace(obj, prop, make) {
  if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) return false;
  let fn;
  try {
    fn = obj[prop];
  } catch {
    return false;
  }
  if (typeof fn !== 'function') return false;
  if (fn[WRAPPED] !== undefined) return true;
  const wrapped = make(fn);
  try {
    obj[prop] = wrapped;
  } catch {
    try {
      Object.defineProperty(obj, prop, { value: wrapped, writable: true, configurable: true, enumerable: true });
    } catch {
      return false;
    }
  }
  return obj[prop] === wrapped;
}

/**
 * Motia 1.x: wraps the module's `stateManager` methods (get, set, delete, clear, getGroup, list),
 * `enqueue({ topic, data })` and `logger` (info, warn, error, debug) in place, idempotently, so
 * calls made inside an instrumented handler are recorded like the context's. Outside a trace they
 * just delegate. Pass the CommonJS module object (`require('motia')`): the properties of an ES
 * module namespace are read-only, so for one its `default` export is used when it has one.
 * Returns the module.
 */
function instrumentMotia(motia) {
  if (motia === null || (typeof motia !== 'object' && typeof motia !== 'function')) return motia;
  const targets = [motia];
  if (motia.default !== null && typeof motia.default === 'object' && motia.default !== motia) targets.push(motia.default);
  for (const mod of targets) {
    const stateManager = mod.stateManager;
    if (stateManager !== null && typeof stateManager === 'object') {
      for (const [method, describe] of Object.entries(STATE_METHODS)) {
        replace(stateManager, method, (fn) => recorded(fn, stateManager, describe));
      }
    }
    replace(mod, 'enqueue', (fn) => recorded(fn, mod, describeEmit));
    const logger = mod.logger;
    if (logger !== null && typeof logger === 'object') {
      for (const level of LOG_LEVELS) replace(logger, level, (fn) => loggedMethod(fn, logger, level));
    }
  }
  return motia;
}

module.exports = { instrument, instrumentMotia, traceIdFor, entryFor };
