// Type-checked (not run) by test/package.test.js: the API as a CommonJS TypeScript user sees it.
import flowscope = require('flowscope');
import http = require('node:http');

const info: flowscope.InitResult = flowscope.init({ service: 'typed', exitFlushMs: 500 });
const enabled: boolean = info.enabled;

const total: Promise<number> = flowscope.trace('checkout', { entry: 'api', correlationId: 'c-1' }, async () => {
  const email: string = await flowscope.stateGet('user.email', async () => 'a@b.c');
  flowscope.emit('user.validated', { to: 'save-user' });
  flowscope.log('info', 'validated', { email });
  flowscope.log.warn('slow');
  flowscope.llm({ model: 'gpt-4o-mini', inputTokens: 1, outputTokens: 2, prompt: [{ role: 'user', content: 'hi' }] });
  return flowscope.step('sum', () => 42);
});

const handler = flowscope.wrapHandler((req, res) => {
  const ctx: flowscope.Context | undefined = flowscope.getContext();
  res.end(ctx?.traceId ?? '');
}, { flow: 'http', step: (req) => req.url ?? '/' });
http.createServer(handler);

const headers: Record<string, string> = flowscope.inject({});
const ex: flowscope.Extracted = flowscope.extract(headers);
const tracedFetch: typeof fetch = flowscope.wrapFetch();
const stats: Promise<boolean> = flowscope.flush(100);
void [enabled, total, ex, tracedFetch, stats, flowscope.stats().sent];
