// Browser tests of the UI's hardening ("safe to run beside production"), against real agents:
// the Content-Security-Policy (no inline script, no violation in any view), token auth (form,
// wrong token, SSE/WS with `?token=`, exports), safe URLs and click-to-load remote images, and
// traces cut by the agent's per-trace limits (banner, list marker, bounded step lists).
// Run with `node --test` in tests/ui (see ci.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgent, launchBrowser, newPage, getJson, waitFor, screenshot, demoTraces } from './lib/harness.mjs';
import { WireClient, traceId, spanId, nowNs, msToNs } from './lib/wire.mjs';

// What the agent sends (the server side of the contract).
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https: http:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
const TOKEN = 's3cret';
// A 1×1 PNG, the "remote image" the tests serve themselves.
const PIXEL = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

let agent;
let browser;
let demo; // the demo's traces (registration, chat thread, orders)

before(async () => {
  agent = await startAgent();
  browser = await launchBrowser();
  demo = await demoTraces(agent);
});

after(async () => {
  await browser?.close();
  await agent?.stop();
});

/** Collects the page's `securitypolicyviolation` events in `window.__csp` (before any script runs). */
async function watchCsp(page) {
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push({ directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample }),
    );
  });
}

const violations = (page) => page.evaluate(() => window.__csp);

/**
 * Holds `ui/app.js` until a request for `path` was made, so a request seen while it is held was
 * made by prefetch.js. Resolves to that request, or null after 10 s.
 */
function holdAppUntil(page, path) {
  let seen;
  const request = new Promise((resolve) => (seen = resolve));
  const onRequest = (r) => new URL(r.url()).pathname + new URL(r.url()).search === path && seen(r);
  page.on('request', onRequest);
  const result = new Promise((resolve) => {
    page.route('**/ui/app.js', async (route) => {
      const timer = setTimeout(() => seen(null), 10_000);
      const r = await request;
      clearTimeout(timer);
      page.off('request', onRequest);
      resolve(r);
      await route.continue();
    });
  });
  return result;
}

const listIds = (page) => page.$$eval('.traces-page .trace-item', (els) => els.map((e) => e.dataset.traceId));

async function waitForList(page, ids, what) {
  const want = JSON.stringify([...ids].sort());
  await waitFor(async () => JSON.stringify((await listIds(page)).sort()) === want, { what: `list = ${what}` });
}

// ---------------------------------------------------------------- Content-Security-Policy

test('CSP: every view renders under the Content-Security-Policy with no violation and no inline script', async () => {
  const page = await newPage(browser);
  await watchCsp(page);
  // The page is checked under the real header; if the agent does not send one (yet), under the
  // contract's, so the UI's side is tested either way. The header itself is asserted at the end.
  let documentCsp = null;
  await page.route(
    (url) => url.pathname === '/',
    async (route) => {
      const res = await route.fetch();
      const headers = res.headers();
      documentCsp = headers['content-security-policy'] || null;
      if (!documentCsp) headers['content-security-policy'] = CSP;
      await route.fulfill({ response: res, headers });
    },
  );

  // A shared link to an LLM step: prefetch.js (a file now, not inline) starts both fetches.
  const chat = demo.find((t) => t.flowName === 'chat-message');
  const full = await getJson(agent.url, `api/traces/${chat.id}`);
  const llmStep = full.steps.find((s) => s.events.some((e) => e.type === 'llm'));
  const prefetched = holdAppUntil(page, `/api/traces/${chat.id}?view=timeline`);
  await page.goto(`${agent.url}/#/traces/${chat.id}?step=${llmStep.id}`);
  assert.ok(await prefetched, 'prefetch.js fetched the timeline before app.js ran');
  await page.waitForSelector('.details .llm-card');
  await page.waitForSelector('#live-indicator[data-state=live]');
  assert.equal(await page.$$eval('script:not([src])', (s) => s.length), 0, 'no inline <script>');
  assert.deepEqual(await page.$$eval('script[src]', (s) => s.map((e) => e.getAttribute('src'))), ['ui/prefetch.js', 'ui/app.js']);
  // No inline event handlers anywhere (CSP would block them).
  const handlers = () => page.$$eval('*', (els) => els.flatMap((el) => [...el.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${el.tagName}[${a.name}]`)));
  assert.deepEqual(await handlers(), []);

  // The other views, and the help dialog (icons are SVG markup; styles are attributes).
  await page.click('.nav-link[data-view=groups]');
  await page.waitForSelector('.group-item');
  await page.click('.group-item[data-group-id="thread-1"]');
  await page.waitForSelector('.flow-seq .trace-card');
  await page.click('.nav-link[data-view=flows]');
  await page.waitForSelector('.flow-card .flow-step');
  await page.keyboard.press('?');
  await page.waitForSelector('.modal[role=dialog]');
  await page.keyboard.press('Escape');
  await page.click('.nav-link[data-view=traces]');
  await page.waitForSelector('.trace-item');
  assert.deepEqual(await handlers(), []);

  assert.deepEqual(await violations(page), [], 'no CSP violation');
  assert.deepEqual(page.errors, []);
  await page.context().close();

  // The WebSocket transport is allowed by connect-src 'self'. Under the agent's own header only:
  // Chromium's local-network checks refuse a WebSocket to 127.0.0.1 from a page Playwright served.
  const ws = await newPage(browser);
  await watchCsp(ws);
  await ws.goto(`${agent.url}/?transport=ws#/traces`);
  await ws.waitForSelector('#live-indicator[data-state=live]');
  await ws.waitForSelector('.trace-item');
  assert.deepEqual(await violations(ws), [], 'no CSP violation (WebSocket)');
  assert.deepEqual(ws.errors, []);
  await ws.context().close();

  // The agent's own headers (the server side; in FLOWSCOPE_UI_ASSETS mode, the real agent's).
  assert.ok(documentCsp, 'the agent sends Content-Security-Policy on the page');
  for (const p of ['/', '/ui/app.js', '/ui/prefetch.js', '/api/traces?limit=1', '/no-such-page']) {
    const res = await fetch(new URL(p, agent.agentUrl));
    await res.arrayBuffer();
    const csp = res.headers.get('content-security-policy');
    assert.ok(csp, `${p}: Content-Security-Policy header`);
    const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
    assert.deepEqual(directives['script-src'], ["'self'"], `${p}: script-src 'self' only`);
    assert.deepEqual(directives['object-src'], ["'none'"], `${p}: object-src`);
    assert.deepEqual(directives['frame-ancestors'], ["'none'"], `${p}: frame-ancestors`);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', `${p}: nosniff`);
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer', `${p}: Referrer-Policy`);
  }
  const prefetchJs = await fetch(new URL('/ui/prefetch.js', agent.agentUrl));
  assert.equal(prefetchJs.status, 200, 'the agent serves ui/prefetch.js');
  assert.match(prefetchJs.headers.get('content-type'), /^text\/javascript/);
});

// ---------------------------------------------------------------- token auth

test('token: the UI asks for the token, rejects a wrong one, then loads and goes live with it', async () => {
  const secured = await startAgent(['--token', TOKEN]);
  try {
    // The agent's side: the API wants the token, the UI's files do not.
    const refused = await fetch(new URL('api/traces', secured.url));
    assert.equal(refused.status, 401);
    assert.equal((await refused.json()).error.code, 'unauthorized');
    for (const p of ['/', '/ui/app.js', '/ui/prefetch.js']) assert.equal((await fetch(new URL(p, secured.url))).status, 200, `${p} without a token`);
    const traces = await demoTraces(secured, { token: TOKEN });

    const page = await newPage(browser);
    const streams = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.pathname === '/api/stream') streams.push(u);
    });
    page.on('websocket', (ws) => streams.push(new URL(ws.url())));
    await page.goto(`${secured.url}/#/traces`);
    await page.waitForSelector('#token-form', { state: 'visible' });
    assert.equal(await page.getAttribute('#token-input', 'type'), 'password');
    assert.ok(await page.evaluate(() => document.activeElement.id === 'token-input'), 'the token field has focus');
    assert.equal(await page.getAttribute('#live-indicator', 'data-state'), 'locked');
    assert.ok(await page.$('dialog#token-dialog[open][aria-labelledby]'), 'an open, labelled dialog');

    // A wrong token: the form stays, with an error, and the token is not kept.
    await page.fill('#token-input', 'wrong');
    await page.click('#token-form button[type=submit]');
    await page.waitForSelector('#token-error:not([hidden])');
    assert.match(await page.textContent('#token-error'), /not accept/);
    assert.ok(await page.isVisible('#token-form'));
    assert.equal(await page.evaluate(() => sessionStorage.getItem('flowscope.token')), null);
    await screenshot(page, '20-token-wrong');

    // The right one: the list loads and the live stream connects with ?token=.
    await page.fill('#token-input', TOKEN);
    await page.press('#token-input', 'Enter');
    await page.waitForSelector('#token-form', { state: 'hidden' });
    await waitForList(page, traces.map((t) => t.id), 'the demo traces');
    await page.waitForSelector('#live-indicator[data-state=live]');
    assert.ok(streams.some((u) => u.pathname === '/api/stream' && u.searchParams.get('token') === TOKEN), 'SSE URL carries the token');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('flowscope.token')), TOKEN);

    // Live events arrive over the authenticated stream, also after a reconnect.
    const client = await WireClient.connect(secured.socket);
    const live = traceId();
    await client.send([{ k: 'trace_start', t: nowNs(), tr: live, flow: 'token-live', entry: 'api', step: 'receive' }]);
    await page.waitForSelector(`.trace-item[data-trace-id="${live}"]`);
    const before = streams.length;
    await page.evaluate(() => window.__flowscope.live.failed()); // as if the connection dropped
    await waitFor(async () => streams.length > before && (await page.getAttribute('#live-indicator', 'data-state')) === 'live', { what: 'reconnected' });
    assert.equal(streams.at(-1).searchParams.get('token'), TOKEN, 'the reconnect carries the token');
    const again = traceId();
    await client.send([{ k: 'trace_start', t: nowNs(), tr: again, flow: 'token-live', entry: 'api', step: 'receive' }]);
    await page.waitForSelector(`.trace-item[data-trace-id="${again}"]`);
    await client.close();

    // Reloading a trace link in this tab: no form, and prefetch.js sends the stored token.
    const reg = traces.find((t) => t.flowName === 'user-registration');
    await page.goto(`${secured.url}/#/traces/${reg.id}`);
    const prefetched = holdAppUntil(page, `/api/traces/${reg.id}?view=timeline`);
    await page.reload();
    const early = await prefetched;
    assert.ok(early, 'prefetch.js fetched the timeline');
    assert.equal((await early.allHeaders()).authorization, `Bearer ${TOKEN}`, 'prefetch sends the token');
    await page.waitForSelector('.tl-row');
    assert.equal(await page.$('#token-form:visible'), null, 'no token form with a stored token');

    // Exports cannot be plain links with a token: fetched, then saved.
    await page.click('.export-menu summary');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('.export-menu a:has-text("Download JSON")')]);
    assert.equal(download.suggestedFilename(), `trace-${reg.id}.json`);
    await page.click('.export-menu summary');
    const [tab] = await Promise.all([page.context().waitForEvent('page'), page.click('.export-menu a:has-text("View JSON")')]);
    await tab.waitForLoadState();
    assert.equal(JSON.parse(await tab.textContent('body')).id, reg.id, 'View JSON opens the trace');
    await tab.close();

    // The WebSocket transport with the token.
    await page.goto(`${secured.url}/?transport=ws#/traces`);
    await page.waitForSelector('#live-indicator[data-state=live]');
    assert.ok(streams.some((u) => u.pathname === '/api/ws' && u.searchParams.get('token') === TOKEN), 'WebSocket URL carries the token');

    // The browser logs the refused requests; nothing else may be logged.
    assert.deepEqual(page.errors.filter((e) => !/401|Unauthorized|EventSource/i.test(e)), []);
    await page.context().close();
  } finally {
    await secured.stop();
  }
});

// ---------------------------------------------------------------- safe URLs, remote images

test('safe URLs: remote images load only on click, javascript: and data: links are never links', async () => {
  const client = await WireClient.connect(agent.socket);
  const tr = traceId();
  const sp = spanId();
  const t0 = nowNs();
  const artifact = (i, a) => ({ k: 'artifact', t: t0 + msToNs(1 + i), tr, sp, ...a });
  await client.send([
    { k: 'trace_start', t: t0, tr, flow: 'untrusted-artifacts', entry: 'api', step: 'render' },
    { k: 'step_start', t: t0, tr, sp, name: 'render' },
    // Same origin: shown at once (and the sentinel that the panel's images had their chance to load).
    artifact(0, { name: 'local.svg', mime: 'image/svg+xml', url: '/ui/favicon.svg' }),
    artifact(1, { name: 'pixel.png', mime: 'image/png', size: 68, url: 'https://tracker.example/x.png' }),
    artifact(2, { name: 'thumb.png', mime: 'image/png', preview: '//tracker.example/thumb.png' }),
    artifact(3, { name: 'evil.html', mime: 'text/html', url: 'javascript:alert(1)' }),
    artifact(4, { name: 'inline.html', mime: 'text/html', url: 'data:text/html,<script>alert(1)</script>' }),
    artifact(5, { name: 'report.pdf', mime: 'application/pdf', url: 'https://files.example.invalid/r.pdf' }),
    { k: 'step_end', t: t0 + msToNs(10), tr, sp, name: 'render' },
    { k: 'trace_end', t: t0 + msToNs(11), tr },
  ]);
  await client.close();
  await waitFor(async () => (await getJson(agent.url, `api/traces/${tr}`)).status === 'completed', { what: 'the artifacts trace' });

  const page = await newPage(browser);
  const remote = [];
  page.on('request', (r) => new URL(r.url()).hostname === 'tracker.example' && remote.push(r.url()));
  await page.route(
    (url) => url.hostname === 'tracker.example',
    (route) => route.fulfill({ status: 200, contentType: 'image/png', body: PIXEL }),
  );
  await page.goto(`${agent.url}/#/traces/${tr}?step=${sp}`);
  await page.waitForSelector('.details .artifact >> nth=5');
  await page.waitForFunction(() => {
    const img = document.querySelector('.artifact:first-child img.artifact-img');
    return img && img.complete && img.naturalWidth > 0;
  });
  assert.deepEqual(remote, [], 'nothing fetched from tracker.example before a click');
  assert.equal(await page.$('img[src*="tracker.example"]'), null);

  const card = (name) => `.artifact:has(.artifact-head strong:text-is("${name}"))`;
  assert.equal((await page.textContent(`${card('pixel.png')} .artifact-load-btn`)).trim(), 'Load image from tracker.example');
  assert.equal((await page.textContent(`${card('thumb.png')} .artifact-load-btn`)).trim(), 'Load image from tracker.example');
  const [req] = await Promise.all([page.waitForRequest((r) => r.url() === 'https://tracker.example/x.png'), page.click(`${card('pixel.png')} .artifact-load-btn`)]);
  assert.ok(req);
  const loaded = `${card('pixel.png')} img.artifact-img`;
  await page.waitForSelector(loaded);
  await waitFor(() => page.$eval(loaded, (img) => img.complete && img.naturalWidth === 1), { what: 'the clicked image' });
  assert.deepEqual(remote, ['https://tracker.example/x.png'], 'only the clicked image was fetched');
  await page.$eval(card('evil.html'), (el) => el.scrollIntoView());
  await screenshot(page, '21-untrusted-artifacts');

  // Links: http(s) only; remote ones open in a new tab without opener or referrer.
  const links = await page.$$eval('.details a[href]', (as) => as.map((a) => ({ href: a.href, rel: a.rel, target: a.target })));
  assert.deepEqual(
    links.filter((l) => !/^https?:/.test(l.href)),
    [],
    'no javascript:/data: link',
  );
  for (const href of ['https://tracker.example/x.png', 'https://files.example.invalid/r.pdf']) {
    const l = links.find((x) => x.href === href);
    assert.ok(l, `link to ${href}`);
    assert.deepEqual(l.rel.split(/\s+/).sort(), ['noopener', 'noreferrer']);
    assert.equal(l.target, '_blank');
  }
  assert.equal(await page.textContent(`${card('evil.html')} .artifact-refused code`), 'javascript:alert(1)');
  assert.match(await page.textContent(`${card('inline.html')} .artifact-refused`), /data:text\/html/);
  assert.equal(await page.$(`${card('inline.html')} a, ${card('evil.html')} a, iframe, object, embed`), null);

  // safeUrl / remoteHost themselves (the module the page loaded).
  const table = await page.evaluate(async () => {
    const { safeUrl, remoteHost } = await import(new URL('ui/util.js', location.href).href);
    const cases = [
      'javascript:alert(1)', 'JavaScript:alert(1)', '  javascript:alert(1)', 'java\tscript:alert(1)', 'vbscript:msgbox(1)',
      'data:text/html,<b>x</b>', 'data:image/png;base64,iVBORw0KGgo=', 'file:///etc/passwd', 'blob:http://x/1', 'mailto:a@b.example',
      '', '   ', null, 42,
      'https://a.example/x', 'http://a.example/x', '//a.example/x', '/ui/favicon.svg', 'img/x.png', '?q=1',
    ];
    return cases.map((c) => ({ c, safe: safeUrl(c), remote: remoteHost(c) }));
  });
  const origin = new URL(agent.url).origin;
  const want = {
    'https://a.example/x': ['https://a.example/x', 'a.example'],
    'http://a.example/x': ['http://a.example/x', 'a.example'],
    '//a.example/x': ['http://a.example/x', 'a.example'],
    '/ui/favicon.svg': [`${origin}/ui/favicon.svg`, null],
    'img/x.png': [`${origin}/img/x.png`, null],
    '?q=1': [`${origin}/?q=1`, null],
  };
  for (const { c, safe, remote: host } of table) assert.deepEqual([safe, host], want[c] || [null, null], `safeUrl(${JSON.stringify(c)})`);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

// ---------------------------------------------------------------- truncated traces

/** Events of a trace with `n` sequential steps named `${prefix}0…`. */
function stepsTrace({ n, flow, prefix = 'step-', tr = traceId(), t0 = nowNs(), end = true }) {
  const events = [{ k: 'trace_start', t: t0, tr, flow, entry: 'event', step: `${prefix}0` }];
  for (let i = 0; i < n; i++) {
    const sp = spanId();
    const t = t0 + msToNs(i);
    events.push({ k: 'step_start', t, tr, sp, name: `${prefix}${i}` }, { k: 'step_end', t: t + msToNs(0.5), tr, sp, name: `${prefix}${i}` });
  }
  if (end) events.push({ k: 'trace_end', t: t0 + msToNs(n), tr });
  return { tr, events, t0 };
}

test('truncated: a trace cut by --max-steps-per-trace shows a banner and a list marker', async () => {
  const capped = await startAgent(['--max-steps-per-trace', '5']);
  try {
    const client = await WireClient.connect(capped.socket);
    const { tr, events } = stepsTrace({ n: 8, flow: 'capped-flow' });
    await client.send(events);
    await client.close();
    await waitFor(async () => (await getJson(capped.url, `api/traces/${tr}?view=timeline`)).status === 'completed', { what: 'the capped trace' });

    const page = await newPage(browser);
    await page.goto(`${capped.url}/#/traces/${tr}`);
    await page.waitForSelector('.tl-row');
    await page.waitForSelector('.tl-header .trace-truncated');
    const banner = await page.textContent('.trace-truncated');
    assert.match(banner, /Truncated by the agent's limits/);
    assert.match(banner, /\b3 steps\b/);
    await screenshot(page, '22-truncated-trace');
    assert.equal(await page.$$eval('.tl-row', (r) => r.length), 5, 'the 5 steps kept');
    await page.waitForSelector(`.trace-item[data-trace-id="${tr}"] .ti-trunc`);
    assert.match(await page.getAttribute(`.trace-item[data-trace-id="${tr}"] .ti-trunc`, 'title'), /3 steps/);
    // Traces within the limit have neither.
    const small = (await getJson(capped.url, 'api/traces?flow=user-registration&limit=1', {})).traces[0];
    if (small && !small.truncated) {
      await page.click(`.trace-item[data-trace-id="${small.id}"]`);
      await page.waitForSelector(`.tl-header .tl-title:text-is("user-registration")`);
      assert.equal(await page.$('.trace-truncated'), null);
      assert.equal(await page.$(`.trace-item[data-trace-id="${small.id}"] .ti-trunc`), null);
    }
    assert.deepEqual(page.errors, []);
    await page.context().close();
  } finally {
    await capped.stop();
  }
});

test('incomplete: a trace whose SDK reported dropped events shows a banner saying how many', async () => {
  const client = await WireClient.connect(agent.socket);
  const { tr, events, t0 } = stepsTrace({ n: 3, flow: 'lossy-flow' });
  // What an SDK writer sends when its queue overflowed for this trace.
  events.push({ k: 'dropped', t: t0 + msToNs(4), tr, n: 1234 });
  await client.send(events);
  await client.close();
  const t = await waitFor(async () => {
    const body = await getJson(agent.url, `api/traces/${tr}`);
    return body.status === 'completed' && body.droppedEvents === 1234 ? body : null;
  }, { what: 'the incomplete trace' });
  assert.equal(t.incomplete, true);
  const page = await newPage(browser);
  await page.goto(`${agent.url}/#/traces/${tr}`);
  await page.waitForSelector('.tl-header .trace-dropped');
  assert.match(await page.textContent('.trace-dropped'), /the SDK dropped 1,234 events of this trace/);
  await screenshot(page, '23-incomplete-trace');
  // A trace without drops has no such banner.
  const whole = stepsTrace({ n: 2, flow: 'whole-flow' });
  const second = await WireClient.connect(agent.socket);
  await second.send(whole.events);
  await second.close();
  await waitFor(async () => (await getJson(agent.url, `api/traces/${whole.tr}`)).status === 'completed', { what: 'the whole trace' });
  await page.goto(`${agent.url}/#/traces/${whole.tr}`);
  await page.waitForSelector('.tl-row');
  assert.equal(await page.$('.trace-dropped'), null);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('truncated (UI side, mocked responses): banner wording, list and group markers, "+ more steps"', async () => {
  const reg = demo.find((t) => t.flowName === 'user-registration');
  const truncated = { steps: 1234, events: 5, depth: 12 };
  const page = await newPage(browser);
  const patch = (url, fn) =>
    page.route(url, async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      fn(body);
      await route.fulfill({ response: res, json: body });
    });
  await patch(
    (u) => u.pathname === '/api/traces',
    (b) => {
      const t = b.traces.find((x) => x.id === reg.id);
      Object.assign(t, { truncated, stepNamesTruncated: true });
    },
  );
  await patch(
    (u) => u.pathname === `/api/traces/${reg.id}`,
    (b) => Object.assign(b, { truncated }),
  );
  await patch(
    (u) => u.pathname === '/api/groups/thread-1',
    (b) => Object.assign(b.traces[0], { stepNamesTruncated: true, truncated: { strings: 1 } }),
  );
  await patch(
    (u) => u.pathname === '/api/flows',
    (b) => Object.assign(b.flows.find((f) => f.flowName === 'order-processing'), { stepsTruncated: true }),
  );

  await page.goto(`${agent.url}/#/traces/${reg.id}`);
  await page.waitForSelector('.tl-header .trace-truncated');
  assert.equal(
    (await page.textContent('.trace-truncated')).trim(),
    "Truncated by the agent's limits: 1,234 steps and 5 events not kept; 12 steps nested deeper than the limit were flattened. What is shown is incomplete.",
  );
  assert.equal(await page.textContent(`.trace-item[data-trace-id="${reg.id}"] .ti-trunc`), 'truncated');
  assert.equal(await page.$$eval('.ti-trunc', (m) => m.length), 1, 'only the truncated trace is marked');

  await page.goto(`${agent.url}/#/groups/thread-1`);
  await page.waitForSelector('.trace-card');
  assert.equal(await page.$$eval('.trace-card .chain-more', (m) => m.length), 1);
  assert.equal(await page.textContent('.trace-card .chain-more'), '+ more steps');
  assert.match(await page.getAttribute('.trace-card .ti-trunc', 'title'), /1 string cut/);

  await page.goto(`${agent.url}/#/flows`);
  await page.waitForSelector('.flow-card[data-flow="order-processing"] .flow-steps-more');
  assert.match(await page.textContent('.flow-card[data-flow="order-processing"] .flow-steps-more'), /^\+ more steps/);
  assert.equal(await page.$$eval('.flow-steps-more', (m) => m.length), 1);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('bounded lists: a trace whose step names were cut stays in a step-filtered list on live updates', async () => {
  // 60 distinct step names (the agent lists at most 50), the filtered-on one beyond the 50th.
  const client = await WireClient.connect(agent.socket);
  const { tr, events, t0 } = stepsTrace({ n: 60, flow: 'many-steps', end: false });
  await client.send(events);
  await waitFor(async () => (await getJson(agent.url, `api/traces/${tr}?view=timeline`)).steps.length === 60, { what: 'the 60-step trace' });
  const page = await newPage(browser);
  await page.goto(`${agent.url}/#/traces?stepName=step-55`);
  await page.waitForSelector('#live-indicator[data-state=live]');
  await waitForList(page, [tr], 'the server-side step filter');

  // A live update of it: its summary's names may not include step-55; it must stay listed.
  const sp = spanId();
  await client.send([
    { k: 'step_start', t: t0 + msToNs(61), tr, sp, name: 'step-60' },
    { k: 'step_end', t: t0 + msToNs(62), tr, sp, name: 'step-60' },
    { k: 'trace_end', t: t0 + msToNs(63), tr },
  ]);
  await page.waitForSelector(`.trace-item[data-trace-id="${tr}"].s-completed`);
  assert.equal(await page.textContent(`.trace-item[data-trace-id="${tr}"] .ti-steps`), '61 steps');
  assert.deepEqual(await listIds(page), [tr]);

  // A flow with more than 100 steps: "+ more steps" on the flows page.
  const wide = stepsTrace({ n: 110, flow: 'wide-flow', prefix: 'w-' });
  await client.send(wide.events);
  await client.close();
  await page.goto(`${agent.url}/#/flows`);
  await page.waitForSelector('.flow-card[data-flow="wide-flow"] .flow-step');
  const { flows } = await getJson(agent.url, 'api/flows');
  const wideFlow = flows.find((f) => f.flowName === 'wide-flow');
  assert.deepEqual(page.errors, []);

  // The agent's side of the contract.
  const [summary] = (await getJson(agent.url, `api/traces?flow=many-steps&limit=1`)).traces;
  assert.equal(summary.stepNames.length, 50, 'stepNames holds at most 50 names');
  assert.equal(summary.stepNamesTruncated, true);
  assert.ok(wideFlow.steps.length <= 100 && wideFlow.stepsTruncated === true, 'a flow lists at most 100 steps');
  await page.waitForSelector('.flow-card[data-flow="wide-flow"] .flow-steps-more');
  assert.equal(await page.$$eval('.flow-card[data-flow="wide-flow"] .flow-step', (r) => r.length), wideFlow.steps.length);
  await page.context().close();
});
