// Browser tests of multi-service traces (W3C Trace Context: a callee continues the caller's trace
// id), against a real agent. Three wire connections with different hello `service` names feed one
// trace id in three segments (order-service → chat-service → inventory-service, each hop an HTTP
// client step), plus a single-service trace. The API is checked first, so a failure says whether
// the server or the UI is wrong; then the timeline lanes, nesting under the client steps, client
// step badges and details, the header's services and segments, the list marker and the `service`
// filter (server-side and for live events). Run with `node --test` in tests/ui (see ci.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgent, launchBrowser, newPage, getJson, waitFor, waitForStepDetails, clickStep, screenshot, demoTraces } from './lib/harness.mjs';
import { WireClient, traceId, spanId, nowNs, msToNs } from './lib/wire.mjs';

const ORDER = 'order-service';
const CHAT = 'chat-service';
const INVENTORY = 'inventory-service';
const SERVICES = [ORDER, CHAT, INVENTORY];

let agent;
let browser;
let conns; // {order, chat, inventory}: one wire connection per service
let multi; // the three-segment trace: {tr, seg, sp, expected}
let single; // a trace of order-service alone: {tr}

/**
 * The events of one trace crossing three services, per connection. Times in ms from `t0`:
 *
 *   order-service  create-order 0–40
 *                    validate-cart 1–4
 *                    POST http://127.0.0.1:9/x 5–35 → 200        (client, calls chat-service)
 *                    audit-log 8–12                                (runs while the call is in flight)
 *                    confirm-order 36–39
 *   chat-service   handle-message 6–33                            (segment ps = the client above)
 *                    compose-reply 7–10
 *                    POST http://127.0.0.1:9/reserve 12–30 → 200 (client, calls inventory-service)
 *   inventory-svc  reserve-items 13–28                             (segment ps = chat's client)
 *                    GET http://127.0.0.1:9/stock 14–20 → 503    (client, failed)
 *                    fallback-cache 21–27
 *
 * In time order audit-log (order-service) falls between chat-service's steps; the timeline puts
 * each callee's work under its client step, so the lanes stay contiguous.
 */
function multiServiceTrace(t0 = nowNs() - msToNs(2000)) {
  const tr = traceId();
  const seg = { order: spanId(), chat: spanId(), inventory: spanId() };
  const sp = {
    createOrder: spanId(),
    validateCart: spanId(),
    callChat: spanId(),
    auditLog: spanId(),
    confirmOrder: spanId(),
    handleMessage: spanId(),
    composeReply: spanId(),
    callInventory: spanId(),
    reserveItems: spanId(),
    getStock: spanId(),
    fallbackCache: spanId(),
  };
  const at = (ms) => t0 + msToNs(ms);
  const start = (ms, id, ps, name, extra = {}) => ({ k: 'step_start', t: at(ms), tr, sp: id, ps, name, ...extra });
  const end = (ms, id, name, extra = {}) => ({ k: 'step_end', t: at(ms), tr, sp: id, name, ...extra });
  const client = (method, url) => ({ kind: 'client', attrs: { 'http.request.method': method, 'url.full': url } });
  const order = {
    begin: [
      { k: 'trace_start', t: at(0), tr, flow: 'place-order', entry: 'api', step: 'create-order', sp: seg.order },
      start(0, sp.createOrder, seg.order, 'create-order'),
      start(1, sp.validateCart, sp.createOrder, 'validate-cart'),
      { k: 'op', t: at(2), tr, sp: sp.validateCart, op: 'state', action: 'get', key: 'cart.items', dur: msToNs(1) },
      end(4, sp.validateCart, 'validate-cart'),
      start(5, sp.callChat, sp.createOrder, 'POST chat', client('POST', 'http://127.0.0.1:9/x')),
      start(8, sp.auditLog, sp.createOrder, 'audit-log'),
      end(12, sp.auditLog, 'audit-log'),
    ],
    finish: [
      end(35, sp.callChat, 'POST chat', { attrs: { 'http.response.status_code': 200 } }),
      start(36, sp.confirmOrder, sp.createOrder, 'confirm-order'),
      end(39, sp.confirmOrder, 'confirm-order'),
      end(40, sp.createOrder, 'create-order'),
      { k: 'trace_end', t: at(40), tr, sp: seg.order },
    ],
  };
  const chat = {
    begin: [
      { k: 'trace_start', t: at(6), tr, flow: 'notify-customer', entry: 'api', step: 'handle-message', sp: seg.chat, ps: sp.callChat, fl: 1 },
      start(6, sp.handleMessage, seg.chat, 'handle-message'),
      start(7, sp.composeReply, sp.handleMessage, 'compose-reply'),
      end(10, sp.composeReply, 'compose-reply'),
      start(12, sp.callInventory, sp.handleMessage, 'POST inventory', client('POST', 'http://127.0.0.1:9/reserve')),
    ],
    finish: [
      end(30, sp.callInventory, 'POST inventory', { attrs: { 'http.response.status_code': 200 } }),
      end(33, sp.handleMessage, 'handle-message'),
      { k: 'trace_end', t: at(33), tr, sp: seg.chat },
    ],
  };
  const inventory = [
    { k: 'trace_start', t: at(13), tr, flow: 'reserve-stock', entry: 'api', step: 'reserve-items', sp: seg.inventory, ps: sp.callInventory, fl: 1 },
    start(13, sp.reserveItems, seg.inventory, 'reserve-items'),
    start(14, sp.getStock, sp.reserveItems, 'GET stock', client('GET', 'http://127.0.0.1:9/stock?sku=42')),
    end(20, sp.getStock, 'GET stock', { status: 'failed', error: { message: 'stock service unavailable', type: 'HttpError' }, attrs: { 'http.response.status_code': 503, 'error.type': '503' } }),
    start(21, sp.fallbackCache, sp.reserveItems, 'fallback-cache'),
    { k: 'op', t: at(22), tr, sp: sp.fallbackCache, op: 'state', action: 'get', key: 'stock.42', dur: msToNs(1) },
    end(27, sp.fallbackCache, 'fallback-cache'),
    end(28, sp.reserveItems, 'reserve-items'),
    { k: 'trace_end', t: at(28), tr, sp: seg.inventory },
  ];
  // Timeline rows: name, service, depth (callees indented under the client step that called them).
  const expected = [
    ['create-order', ORDER, 0],
    ['validate-cart', ORDER, 1],
    ['POST chat', ORDER, 1],
    ['handle-message', CHAT, 2],
    ['compose-reply', CHAT, 3],
    ['POST inventory', CHAT, 3],
    ['reserve-items', INVENTORY, 4],
    ['GET stock', INVENTORY, 5],
    ['fallback-cache', INVENTORY, 5],
    ['audit-log', ORDER, 1],
    ['confirm-order', ORDER, 1],
  ];
  const stepService = Object.fromEntries(expected.map(([name, service]) => [name, service]));
  return { tr, seg, sp, order, chat, inventory, expected, stepService };
}

/** A single-service trace of order-service. */
function singleServiceTrace(t0 = nowNs() - msToNs(1000)) {
  const tr = traceId();
  const seg = spanId();
  const a = spanId();
  const b = spanId();
  const at = (ms) => t0 + msToNs(ms);
  return {
    tr,
    a,
    events: [
      { k: 'trace_start', t: at(0), tr, flow: 'refund-order', entry: 'api', step: 'check-refund', sp: seg },
      { k: 'step_start', t: at(0), tr, sp: a, ps: seg, name: 'check-refund' },
      { k: 'step_end', t: at(3), tr, sp: a, name: 'check-refund' },
      { k: 'step_start', t: at(4), tr, sp: b, ps: seg, name: 'issue-refund' },
      { k: 'step_end', t: at(9), tr, sp: b, name: 'issue-refund' },
      { k: 'trace_end', t: at(10), tr, sp: seg },
    ],
  };
}

/**
 * Feeds a multi-service trace over the three connections, in the order the calls happen. The agent
 * reads connections concurrently, so each hop waits until the previous segment is in (as a real
 * callee only starts once the caller's request reached it); segments are then in a known order.
 */
async function feedMulti(m) {
  const segments = (n) =>
    waitFor(async () => ((await getJson(agent.url, `api/traces/${m.tr}?view=timeline`).catch(() => null))?.segments || []).length >= n, {
      what: `${n} segment(s) of ${m.tr}`,
    });
  await conns.order.send(m.order.begin);
  await segments(1);
  await conns.chat.send(m.chat.begin);
  await segments(2);
  await conns.inventory.send(m.inventory);
  await segments(3);
  await conns.chat.send(m.chat.finish);
  await conns.order.send(m.order.finish);
}

const done = (tr, steps) =>
  waitFor(
    async () => {
      const t = await getJson(agent.url, `api/traces/${tr}`);
      return t.status !== 'running' && t.steps.length === steps && (t.segments || []).every((s) => s.status !== 'running') ? t : null;
    },
    { what: `trace ${tr} finished with ${steps} steps` },
  );

before(async () => {
  agent = await startAgent();
  browser = await launchBrowser();
  // The demo's own traces first, so the list is settled before ours arrive.
  await demoTraces(agent);
  conns = {
    order: await WireClient.connect(agent.socket, { service: ORDER }),
    chat: await WireClient.connect(agent.socket, { service: CHAT }),
    inventory: await WireClient.connect(agent.socket, { service: INVENTORY }),
  };
  single = singleServiceTrace();
  await conns.order.send(single.events);
  multi = multiServiceTrace();
  await feedMulti(multi);
  await done(single.tr, 2);
  await done(multi.tr, multi.expected.length);
});

after(async () => {
  for (const c of Object.values(conns || {})) await c.close();
  await browser?.close();
  await agent?.stop();
});

/** Collects Content-Security-Policy violations in `window.__csp`, before any script runs. */
async function watchCsp(page) {
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  });
}

async function cleanPage(page) {
  assert.deepEqual(await page.evaluate(() => window.__csp), [], 'no CSP violation');
  assert.deepEqual(page.errors, []);
  await page.context().close();
}

const listIds = (page) => page.$$eval('.traces-page .trace-item', (els) => els.map((e) => e.dataset.traceId));

async function waitForList(page, expected, what) {
  const want = [...expected].sort();
  await waitFor(async () => JSON.stringify((await listIds(page)).sort()) === JSON.stringify(want), { what: `list = ${what}` });
}

async function apiIds(query) {
  const { traces } = await getJson(agent.url, `api/traces?limit=1000&${query}`);
  return traces.map((t) => t.id);
}

/** Timeline rows as rendered, in row order. */
const timelineRows = (page) =>
  page.$$eval('.tl-row', (rows) =>
    rows
      .map((r) => ({
        id: r.dataset.id,
        index: Number(r.dataset.index),
        name: r.dataset.name,
        label: r.querySelector('.tl-name').textContent,
        service: r.dataset.service || null,
        chip: r.querySelector('.tl-svc')?.textContent ?? null,
        chipColour: r.querySelector('.tl-svc') ? getComputedStyle(r.querySelector('.tl-svc')).backgroundColor : null,
        bandColour: getComputedStyle(r.querySelector('.tl-label'), '::before').backgroundColor,
        laneStart: r.classList.contains('svc-start'),
        depth: Number(r.dataset.depth),
        parent: r.dataset.parent || null,
        indent: parseFloat(r.querySelector('.tl-label').style.paddingLeft),
      }))
      .sort((a, b) => a.index - b.index),
  );

test('API: the three-segment trace has services, segments, per-step services and client attributes', async () => {
  const m = multi;
  for (const view of ['', '?view=timeline']) {
    const t = await getJson(agent.url, `api/traces/${m.tr}${view}`);
    assert.equal(t.service, ORDER, `root service (${view || 'full'})`);
    assert.deepEqual(t.services, SERVICES, `services, root first (${view || 'full'})`);
    assert.deepEqual(
      t.segments.map((s) => [s.service, s.flowName, s.spanId, s.parentSpanId ?? null, s.entryPoint?.stepName]),
      [
        [ORDER, 'place-order', m.seg.order, null, 'create-order'],
        [CHAT, 'notify-customer', m.seg.chat, m.sp.callChat, 'handle-message'],
        [INVENTORY, 'reserve-stock', m.seg.inventory, m.sp.callInventory, 'reserve-items'],
      ],
      `segments (${view || 'full'})`,
    );
    for (const s of t.segments) {
      assert.equal(s.status, 'completed', `segment ${s.service} completed`);
      assert.equal(typeof s.startTime, 'number');
      assert.equal(typeof s.duration, 'number');
    }
    assert.equal(t.segments[1].startTime, 6);
    assert.equal(t.segments[2].startTime, 13);
    assert.equal(t.steps.length, m.expected.length);
    for (const st of t.steps) assert.equal(st.service, m.stepService[st.name], `service of ${st.name}`);
    // Callee entry steps have no parentId: their segment's parentSpanId places them.
    const byName = Object.fromEntries(t.steps.map((st) => [st.name, st]));
    assert.equal(byName['handle-message'].parentId, undefined);
    assert.equal(byName['reserve-items'].parentId, undefined);
    assert.equal(byName['compose-reply'].parentId, m.sp.handleMessage);
    const call = byName['POST chat'];
    assert.equal(call.kind, 'client');
    assert.deepEqual(call.attributes, { 'http.request.method': 'POST', 'url.full': 'http://127.0.0.1:9/x', 'http.response.status_code': 200 });
    assert.equal(byName['GET stock'].kind, 'client');
    assert.equal(byName['GET stock'].attributes['http.response.status_code'], 503);
    assert.equal(byName['GET stock'].attributes['error.type'], '503');
    assert.equal(byName['GET stock'].status, 'failed');
    assert.equal(byName['create-order'].kind, undefined, 'internal steps have no kind');
  }
  const step = await getJson(agent.url, `api/traces/${m.tr}/steps/${m.sp.callChat}`);
  assert.equal(step.service, ORDER);
  assert.equal(step.kind, 'client');
  assert.equal(step.attributes['url.full'], 'http://127.0.0.1:9/x');

  // List summaries and the service filter.
  const { traces } = await getJson(agent.url, 'api/traces?limit=1000');
  const summary = traces.find((t) => t.id === m.tr);
  assert.equal(summary.service, ORDER);
  assert.deepEqual(summary.services, SERVICES);
  assert.deepEqual(traces.find((t) => t.id === single.tr).services, [ORDER]);
  const inv = await apiIds(`service=${INVENTORY}`);
  assert.ok(inv.includes(m.tr) && !inv.includes(single.tr), 'service=inventory-service: the multi-service trace only');
  const ord = await apiIds(`service=${ORDER}`);
  assert.ok(ord.includes(m.tr) && ord.includes(single.tr), 'service=order-service: both');
  const res = await fetch(new URL('api/traces?service=', agent.url));
  assert.equal(res.status, 400, 'an empty service is refused');
});

test('the timeline shows service lanes, nests each callee under the client step that called it', async () => {
  const m = multi;
  const page = await newPage(browser);
  await watchCsp(page);
  await page.goto(`${agent.url}/#/traces/${m.tr}`);
  await page.waitForSelector('.timeline.multi-service .tl-row[data-name="fallback-cache"]');
  const rows = await timelineRows(page);
  assert.deepEqual(
    rows.map((r) => [r.name, r.service, r.depth]),
    m.expected,
    'rows in lane order, with their services and depths',
  );
  // One chip per row naming its service; one colour per service, different between services.
  for (const r of rows) assert.equal(r.chip, r.service, `chip of ${r.name}`);
  const colours = new Map();
  for (const r of rows) {
    if (!colours.has(r.service)) colours.set(r.service, r.chipColour);
    assert.equal(r.chipColour, colours.get(r.service), `${r.service} has one colour`);
    assert.ok(r.bandColour && r.bandColour !== 'rgba(0, 0, 0, 0)', `lane band on ${r.name}`);
  }
  assert.equal(new Set(colours.values()).size, 3, 'three distinct service colours');
  // A lane starts where the service changes: order, chat, inventory, then order again.
  assert.deepEqual(
    rows.filter((r) => r.laneStart).map((r) => [r.index, r.service]),
    [
      [0, ORDER],
      [3, CHAT],
      [6, INVENTORY],
      [9, ORDER],
    ],
  );
  // Each lane's rows.
  const lane = (svc) => rows.filter((r) => r.service === svc).map((r) => r.name);
  assert.deepEqual(lane(ORDER), ['create-order', 'validate-cart', 'POST chat', 'audit-log', 'confirm-order']);
  assert.deepEqual(lane(CHAT), ['handle-message', 'compose-reply', 'POST inventory']);
  assert.deepEqual(lane(INVENTORY), ['reserve-items', 'GET stock', 'fallback-cache']);

  // The callee's entry step sits right under the caller's client step, indented one level deeper.
  const row = (name) => rows.find((r) => r.name === name);
  for (const [callee, caller] of [
    ['handle-message', 'POST chat'],
    ['reserve-items', 'POST inventory'],
  ]) {
    assert.equal(row(callee).index, row(caller).index + 1, `${callee} right after ${caller}`);
    assert.equal(row(callee).parent, row(caller).id, `${callee} hangs under ${caller}`);
    assert.ok(row(callee).indent > row(caller).indent, `${callee} indented under ${caller} (${row(callee).indent} > ${row(caller).indent})`);
  }

  // Client steps: arrow, method + host/path, status badge; the failed call in the failure style.
  const client = (id) =>
    page.$eval(`.tl-row[data-id="${id}"]`, (r) => ({
      cls: [...r.classList],
      arrow: !!r.querySelector('.call-arrow'),
      method: r.querySelector('.call-method')?.textContent,
      label: r.querySelector('.tl-name').textContent,
      code: r.querySelector('.badge.b-http')?.textContent,
      codeFail: r.querySelector('.badge.b-http')?.classList.contains('fail'),
    }));
  const ok = await client(m.sp.callChat);
  assert.ok(ok.cls.includes('k-client') && ok.arrow, 'client step marked');
  assert.equal(ok.method, 'POST');
  assert.equal(ok.label, 'POST 127.0.0.1:9/x');
  assert.equal(ok.code, '200');
  assert.equal(ok.codeFail, false);
  assert.ok(!ok.cls.includes('call-failed'));
  assert.equal((await client(m.sp.callInventory)).label, 'POST 127.0.0.1:9/reserve');
  const bad = await client(m.sp.getStock);
  assert.equal(bad.label, 'GET 127.0.0.1:9/stock', 'no query string in the label');
  assert.equal(bad.code, '503');
  assert.ok(bad.codeFail && bad.cls.includes('call-failed') && bad.cls.includes('s-failed'), 'failed call in the failure style');
  // Internal steps have none of that.
  assert.equal(await page.$(`.tl-row[data-id="${m.sp.createOrder}"] .b-http, .tl-row[data-id="${m.sp.createOrder}"] .call-arrow`), null);
  await screenshot(page, 'services-01-timeline-lanes');
  await page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(page, 'services-02-timeline-lanes-dark');
  await cleanPage(page);
});

test('the trace header lists the services and summarizes the segments', async () => {
  const m = multi;
  const page = await newPage(browser);
  await watchCsp(page);
  await page.goto(`${agent.url}/#/traces/${m.tr}`);
  await page.waitForSelector('.tl-header .segments .seg-item');
  assert.equal(await page.textContent('.tl-header [data-meta=services] .meta-label'), 'Services');
  assert.deepEqual(await page.$$eval('.tl-header [data-meta=services] .svc-chip', (els) => els.map((e) => e.textContent)), SERVICES);
  const segs = await page.$$eval('.tl-header .seg-item', (els) =>
    els.map((e) => [e.querySelector('.svc-chip').textContent, e.querySelector('.seg-flow').textContent, e.querySelector('.status-dot').getAttribute('aria-label'), e.querySelector('.seg-dur').textContent]),
  );
  assert.deepEqual(segs, [
    [ORDER, 'place-order', 'completed', '40 ms'],
    [CHAT, 'notify-customer', 'completed', '27 ms'],
    [INVENTORY, 'reserve-stock', 'completed', '15 ms'],
  ]);
  // A segment opens its entry step.
  await page.click(`.tl-header .seg-item[data-service="${INVENTORY}"]`);
  await waitForStepDetails(page, m.sp.reserveItems);
  assert.ok((await page.evaluate(() => location.hash)).includes(`step=${m.sp.reserveItems}`));
  await screenshot(page, 'services-03-header-segments');
  await cleanPage(page);
});

test('step details show the service of every step, and the HTTP call of a client step', async () => {
  const m = multi;
  const page = await newPage(browser);
  await watchCsp(page);
  const facts = () =>
    page.$$eval('.details .facts:not(.http-facts) .fact', (els) => Object.fromEntries(els.map((e) => [e.querySelector('dt').textContent, e.querySelector('dd').textContent])));
  await page.goto(`${agent.url}/#/traces/${m.tr}?step=${m.sp.callChat}`);
  await waitForStepDetails(page, m.sp.callChat);
  const http = await page.$$eval('.details .http-facts .fact', (els) => Object.fromEntries(els.map((e) => [e.querySelector('dt').textContent, e.querySelector('dd').textContent])));
  assert.equal(http.Method, 'POST');
  assert.match(http.URL, /^http:\/\/127\.0\.0\.1:9\/x/);
  assert.equal(http.Status, '200');
  assert.equal(await page.$('.details .http-facts a'), null, 'the URL is text, not a link');
  let f = await facts();
  assert.equal(f.Service, ORDER);
  assert.match(f.Calls, new RegExp(`${CHAT}.*notify-customer`));
  await screenshot(page, 'services-04-client-details');

  // A callee's entry step: its service and the client step it runs under.
  await clickStep(page, m.sp.handleMessage);
  assert.equal(await page.textContent('.details .dt-name'), 'handle-message');
  f = await facts();
  assert.equal(f.Service, CHAT);
  assert.match(f['Called by'], new RegExp(`${ORDER}.*POST chat`));
  assert.equal(await page.$('.details .dt-http'), null, 'no HTTP section for an internal step');

  // The failed call: status 503 and its error type.
  await clickStep(page, m.sp.getStock);
  assert.equal(await page.textContent('.details .http-facts .http-status'), '503');
  assert.ok(await page.$('.details .http-facts .http-status.fail'));
  assert.equal(await page.textContent('.details .http-facts .http-error'), '503');
  assert.equal((await facts()).Service, INVENTORY);
  assert.match(await page.textContent('.details .error-block'), /stock service unavailable/);
  await cleanPage(page);
});

test('a single-service trace has no lanes, chips or segment summary', async () => {
  const page = await newPage(browser);
  await watchCsp(page);
  await page.goto(`${agent.url}/#/traces/${single.tr}?step=${single.a}`);
  await page.waitForSelector('.tl-row[data-name="issue-refund"]');
  await page.waitForSelector('.details .dt-name');
  assert.equal(await page.$('.timeline.multi-service'), null);
  assert.equal(await page.$('.tl-row .tl-svc, .tl-row[data-service], .tl-row.svc-start'), null);
  assert.equal(await page.$('.tl-header .segments'), null);
  assert.equal(await page.textContent('.tl-axis-title'), 'Step');
  assert.equal(await page.textContent('.tl-header [data-meta=services] .meta-label'), 'Service');
  assert.deepEqual(await page.$$eval('.tl-header [data-meta=services] .svc-chip', (els) => els.map((e) => e.textContent)), [ORDER]);
  // The details still name the service.
  const facts = await page.$$eval('.details .facts .fact', (els) => Object.fromEntries(els.map((e) => [e.querySelector('dt').textContent, e.querySelector('dd').textContent])));
  assert.equal(facts.Service, ORDER);
  assert.equal(facts['Called by'], undefined);
  await screenshot(page, 'services-05-single-service');
  await cleanPage(page);
});

test('the list marks multi-service traces and filters by service, on the server and for live events', async () => {
  const page = await newPage(browser);
  await watchCsp(page);
  const listRequests = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/api/traces') listRequests.push(u.search);
  });
  await page.goto(`${agent.url}/#/traces`);
  await page.waitForSelector('#live-indicator[data-state=live]', { timeout: 10_000 });
  await waitForList(page, await apiIds(''), 'all');
  assert.equal(await page.textContent(`.trace-item[data-trace-id="${multi.tr}"] .ti-svcs`), '3 services');
  assert.equal(await page.getAttribute(`.trace-item[data-trace-id="${multi.tr}"] .ti-svcs`, 'title'), `Services: ${SERVICES.join(' → ')}`);
  assert.equal(await page.$(`.trace-item[data-trace-id="${single.tr}"] .ti-svcs`), null, 'no marker on a single-service trace');
  assert.equal((await page.$$('.trace-item .ti-svcs')).length, 1, 'only the multi-service trace is marked');

  // The service filter offers the services seen and narrows to what the API returns.
  if (await page.isHidden('#trace-filters')) await page.click('.filter-toggle');
  await page.waitForSelector('#trace-filters:not([hidden])');
  const options = await page.$$eval('select[name=service] option', (os) => os.map((o) => o.value));
  for (const s of SERVICES) assert.ok(options.includes(s), `service option ${s}`);
  await page.selectOption('select[name=service]', INVENTORY);
  const want = await apiIds(`service=${INVENTORY}`);
  assert.deepEqual(want, [multi.tr]);
  await waitForList(page, want, `service=${INVENTORY}`);
  assert.ok((await page.evaluate(() => location.hash)).includes(`service=${INVENTORY}`), 'the filter is in the URL');
  assert.ok(listRequests.some((q) => new URLSearchParams(q).get('service') === INVENTORY), 'sent as ?service=');
  await screenshot(page, 'services-06-list-filter');

  // Live: with the filter on, a new single-service trace stays out; a new trace that reaches
  // inventory-service comes in once its inventory segment does (client-side, no refetch).
  const requestsBefore = listRequests.length;
  const lone = singleServiceTrace(nowNs());
  await conns.order.send(lone.events);
  await done(lone.tr, 2);
  const next = multiServiceTrace(nowNs());
  await feedMulti(next);
  await waitForList(page, [multi.tr, next.tr], 'live multi-service trace added');
  await done(next.tr, next.expected.length);
  await waitFor(async () => (await page.textContent(`.trace-item[data-trace-id="${next.tr}"] .ti-svcs`).catch(() => null)) === '3 services', {
    what: 'live trace marked',
  });
  assert.deepEqual((await listIds(page)).sort(), [multi.tr, next.tr].sort(), 'the live single-service trace is not listed');
  assert.equal(listRequests.length, requestsBefore, 'live events were filtered in the page, without refetching the list');

  // A shared link restores the filter; order-service has both kinds.
  await page.goto(`${agent.url}/#/traces?service=${ORDER}`);
  await page.reload();
  await waitForList(page, await apiIds(`service=${ORDER}`), `service=${ORDER} from the URL`);
  assert.equal(await page.inputValue('select[name=service]'), ORDER);
  await cleanPage(page);
});

/** OTLP/JSON as the OpenTelemetry JS http/json exporter sends it: hex ids, string nanos. */
function otlpJson(service, spans) {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [{ scope: { name: 'ui-test' }, spans }],
      },
    ],
  };
}

test('an OpenTelemetry service (OTLP/JSON) calling a flowscope service shows as one trace with two lanes', async () => {
  const tr = traceId();
  const root = spanId();
  const call = spanId();
  const seg = spanId();
  const charge = spanId();
  const t0 = nowNs() - msToNs(1000);
  const ns = (ms) => String(t0 + msToNs(ms));
  const span = (id, parent, name, kind, from, to, extra = {}) => ({
    traceId: tr,
    spanId: id,
    ...(parent ? { parentSpanId: parent } : {}),
    name,
    kind,
    startTimeUnixNano: ns(from),
    endTimeUnixNano: ns(to),
    ...extra,
  });
  const body = otlpJson('storefront-otel', [
    span(call, root, 'POST /pay', 3, 2, 18, { attributes: [{ key: 'http.request.method', value: { stringValue: 'POST' } }] }),
    span(root, null, 'GET /checkout', 2, 0, 20, { attributes: [{ key: 'workflow.name', value: { stringValue: 'checkout-otel' } }] }),
  ]);
  const response = await fetch(`${agent.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), {});
  // The callee, a flowscope service continuing the OpenTelemetry CLIENT span.
  const at = (ms) => t0 + msToNs(ms);
  await conns.chat.send([
    { k: 'trace_start', t: at(4), tr, flow: 'payment', entry: 'api', step: 'charge-card', sp: seg, ps: call, fl: 1 },
    { k: 'step_start', t: at(4), tr, sp: charge, ps: seg, name: 'charge-card' },
    { k: 'step_end', t: at(15), tr, sp: charge, name: 'charge-card' },
    { k: 'trace_end', t: at(16), tr, sp: seg },
  ]);
  const t = await done(tr, 2);
  assert.equal(t.flowName, 'checkout-otel');
  assert.deepEqual(t.services, ['storefront-otel', CHAT]);

  const page = await newPage(browser);
  await watchCsp(page);
  await page.goto(`${agent.url}/#/traces/${tr}`);
  await page.waitForSelector('.timeline.multi-service .tl-row[data-name="charge-card"]');
  const rows = await timelineRows(page);
  assert.deepEqual(
    rows.map((r) => [r.name, r.service, r.depth]),
    [
      ['POST /pay', 'storefront-otel', 0],
      ['charge-card', CHAT, 1],
    ],
    'the flowscope step nests under the OpenTelemetry client span',
  );
  await screenshot(page, 'services-07-otlp-mixed');
  await cleanPage(page);
});
