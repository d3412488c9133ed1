'use strict';
// The user-registration flow of the Motia observability RFC, as three Motia (0.x-style) steps
// instrumented with flowscope/motia:
//
//   validate-user (api, POST /users) --user.validated--> save-user (event) --user.saved--> send-email (event)
//
// A tiny in-memory stand-in for the Motia runtime runs one flow run end to end: a state store,
// two streams (users, email-queue), a logger, and an emit that queues the event and then
// dispatches it to the subscribed step with the same ctx.traceId, after the emitting step
// returned (as Motia does). The three handler invocations report into ONE flowscope trace
// (flowscope/motia derives its id from ctx.traceId), which this script prints.
//
//   cargo run -p flowscope-agent &                 # the agent, http://127.0.0.1:4319
//   node examples/motia/registration.js [email]
//   curl -s localhost:4319/api/traces/<printed id>
//
// Environment: FLOWSCOPE_SOCKET (the agent socket), FLOWSCOPE_DISABLED.

const { randomUUID } = require('node:crypto');

let flowscope;
let motia;
try {
  flowscope = require('flowscope');
  motia = require('flowscope/motia');
} catch {
  // Running from a checkout without `npm install` in this folder.
  flowscope = require('../../sdk-node');
  motia = require('../../sdk-node/motia.js');
}
const { instrument, traceIdFor } = motia;

flowscope.init({ service: 'motia-registration' });

// ---------------------------------------------------------------------------------------------
// The steps (in a Motia project: one `*.step.js` file each, exporting config and handler)

const validateUser = {
  config: {
    type: 'api',
    name: 'validate-user',
    path: '/users',
    method: 'POST',
    emits: ['user.validated'],
    flows: ['user-registration'],
  },
  async handler(req, { state, emit, logger, traceId }) {
    const { email, name } = req.body;
    const already = await state.get('user', 'email');
    if (already === email) return { status: 409, body: { error: 'already registered' } };
    await state.set('validation', 'status', 'pending');
    const valid = typeof email === 'string' && /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email);
    await state.set('validation', 'result', { email, name, valid, checkedAt: new Date().toISOString() });
    if (!valid) {
      logger.warn('invalid email', { email });
      return { status: 400, body: { error: 'invalid email' } };
    }
    logger.info('user validated', { email });
    await emit({ topic: 'user.validated', data: { email, name } });
    return { status: 202, body: { traceId } };
  },
};

const saveUser = {
  config: {
    type: 'event',
    name: 'save-user',
    subscribes: ['user.validated'],
    emits: ['user.saved'],
    flows: ['user-registration'],
  },
  async handler(input, { state, emit, streams, logger, correlate }) {
    const validation = await state.get('validation', 'result');
    if (!validation || !validation.valid) throw new Error('user.validated without a valid validation result');
    const userId = `user-${validation.email.split('@')[0]}`;
    await correlate(userId); // the trace joins the group of this user
    await streams.users.set('all', userId, { id: userId, email: input.email, name: input.name });
    await state.set('user', 'saved', true);
    logger.info('user saved', { userId });
    await emit({ topic: 'user.saved', data: { userId, email: input.email } });
  },
};

const sendEmail = {
  config: {
    type: 'event',
    name: 'send-email',
    subscribes: ['user.saved'],
    emits: [],
    flows: ['user-registration'],
  },
  async handler(input, { state, streams, logger }) {
    if (!(await state.get('user', 'saved'))) throw new Error('user.saved before the user was saved');
    const emailId = `welcome-${input.userId}`;
    await streams['email-queue'].set('outbox', emailId, { to: input.email, template: 'welcome' });
    await state.set('email', 'queued', true);
    logger.info('welcome email queued', { emailId });
  },
};

const steps = [validateUser, saveUser, sendEmail].map((s) => ({ config: s.config, handler: instrument(s.config, s.handler) }));

// ---------------------------------------------------------------------------------------------
// An in-memory stand-in for the Motia runtime

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function createRuntime(stepList) {
  const groups = new Map(); // scope -> Map(key -> value)
  const group = (scope) => {
    if (!groups.has(scope)) groups.set(scope, new Map());
    return groups.get(scope);
  };
  const state = {
    async get(scope, key) {
      await sleep(1);
      return group(scope).has(key) ? group(scope).get(key) : null;
    },
    async set(scope, key, value) {
      await sleep(1);
      group(scope).set(key, value);
      return value;
    },
    async delete(scope, key) {
      const old = group(scope).get(key);
      group(scope).delete(key);
      return old ?? null;
    },
    async clear(scope) {
      groups.delete(scope);
    },
    async getGroup(scope) {
      return [...group(scope).values()];
    },
  };
  const stream = (latencyMs) => {
    const items = new Map();
    return {
      async get(groupId, id) {
        return items.get(`${groupId}/${id}`) ?? null;
      },
      async set(groupId, id, data) {
        await sleep(latencyMs); // a remote store
        const item = { ...data, id };
        items.set(`${groupId}/${id}`, item);
        return item;
      },
      async delete(groupId, id) {
        const item = items.get(`${groupId}/${id}`) ?? null;
        items.delete(`${groupId}/${id}`);
        return item;
      },
      async send() {},
    };
  };
  const streams = { users: stream(5), 'email-queue': stream(3) };
  const queue = [];

  const context = (traceId, stepName) => ({
    traceId,
    state,
    streams,
    emit: async (event) => {
      queue.push({ traceId, event });
    },
    logger: Object.fromEntries(
      ['info', 'warn', 'error', 'debug'].map((level) => [level, (message, fields) => console.log(`[${stepName}] ${level} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`)]),
    ),
  });

  /** Delivers queued events to their subscribers (same traceId) until the queue is empty. */
  async function drain() {
    while (queue.length > 0) {
      const { traceId, event } = queue.shift();
      for (const s of stepList.filter((x) => (x.config.subscribes || []).includes(event.topic))) {
        await s.handler(event.data, context(traceId, s.config.name));
      }
    }
  }

  /** An HTTP request to the api step at `path`: a new flow run (a new Motia traceId). */
  async function request(method, path, body) {
    const api = stepList.find((s) => s.config.type === 'api' && s.config.path === path && s.config.method === method);
    const traceId = randomUUID();
    const response = await api.handler({ body, headers: {}, pathParams: {}, queryParams: {} }, context(traceId, api.config.name));
    await drain();
    return { traceId, response };
  }

  return { request, state, streams };
}

async function main() {
  const email = process.argv[2] || 'ada@example.com';
  const runtime = createRuntime(steps);
  const { traceId, response } = await runtime.request('POST', '/users', { email, name: 'Ada' });
  console.log(`response ${response.status} ${JSON.stringify(response.body)}`);
  await flowscope.flush();
  console.log(`motia trace ${traceId}`);
  console.log(`flowscope trace ${traceIdFor(traceId)}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
