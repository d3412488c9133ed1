// Browser tests of the insights features against a real agent: the critical path on the timeline
// and in the step details, the flow insights view, the compare view (picked in the trace list) and
// the group rollups. A known workload goes over the real socket (lib/wire.mjs) with exact
// timestamps, so every figure is known in advance:
//
//   flow "checkout", 4 runs 1 s apart, correlation id "cart-9", ms from each run's start:
//     validate 0–10         state get cart.items, LLM gpt-4o (openai) 100 in / 20 out, $0.01
//     charge   10–(10+c)    c = 20, 40, 60 ms; the 4th run fails after c = 80 ms (and the run with it)
//     notify   10–15        (in parallel with charge) emit order.paid
//     ship     (10+c)–(30+c) stream set shipments; not in the failed run
//
//   run durations 50, 70, 90, 90 ms → p50 70, p95 90, avg 75; charge p50 40, p99 80, error rate
//   25 %, 200 of the 300 ms of flow time (2/3), all of it on the critical path → the bottleneck;
//   critical path of run 1: validate, charge, ship (notify ends before charge does); 4 LLM calls,
//   480 tokens, $0.04; run 1 vs run 4: +40 ms, charge +60 ms and completed → failed, ship only in A.
//
// The API is checked first, so a failure says whether the server or the UI is wrong. Run with
// `node --test` in tests/ui (see ci.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgent, launchBrowser, newPage, getJson, waitFor, clickStep, screenshot, demoTraces } from './lib/harness.mjs';
import { WireClient, traceId, spanId, nowNs, msToNs } from './lib/wire.mjs';

const FLOW = 'checkout';
const CID = 'cart-9';
const CHARGE = [20, 40, 60, 80]; // ms; the last run fails

let agent;
let browser;
let conn;
let runs; // [{tr, sp: {validate, charge, notify, ship}, start (unix ms), failed}]

/** The events of run `k` (0-based) of the workload, starting at `t0` (ns). */
function checkoutRun(k, t0) {
  const tr = traceId();
  const sp = { validate: spanId(), charge: spanId(), notify: spanId(), ship: spanId() };
  const c = CHARGE[k];
  const failed = k === CHARGE.length - 1;
  const at = (ms) => t0 + msToNs(ms);
  const events = [
    { k: 'trace_start', t: at(0), tr, flow: FLOW, entry: 'api', step: 'validate', cid: CID },
    { k: 'step_start', t: at(0), tr, sp: sp.validate, name: 'validate' },
    { k: 'op', t: at(1), tr, sp: sp.validate, op: 'state', action: 'get', key: 'cart.items', dur: msToNs(1) },
    { k: 'llm', t: at(2), tr, sp: sp.validate, model: 'gpt-4o', provider: 'openai', prompt: 'is the cart valid?', response: 'yes', input_tokens: 100, output_tokens: 20, cost: 0.01, dur: msToNs(1) },
    { k: 'step_end', t: at(10), tr, sp: sp.validate, name: 'validate' },
    { k: 'step_start', t: at(10), tr, sp: sp.charge, name: 'charge' },
    { k: 'step_start', t: at(10), tr, sp: sp.notify, name: 'notify' },
    { k: 'op', t: at(11), tr, sp: sp.notify, op: 'emit', action: 'send', topic: 'order.paid', dur: 0n },
    { k: 'step_end', t: at(15), tr, sp: sp.notify, name: 'notify' },
  ];
  if (failed) {
    events.push(
      { k: 'step_end', t: at(10 + c), tr, sp: sp.charge, name: 'charge', status: 'failed', error: { message: 'card declined', type: 'PaymentError' } },
      { k: 'trace_end', t: at(10 + c), tr, status: 'failed', error: { message: 'card declined', type: 'PaymentError' } },
    );
  } else {
    events.push(
      { k: 'step_end', t: at(10 + c), tr, sp: sp.charge, name: 'charge' },
      { k: 'step_start', t: at(10 + c), tr, sp: sp.ship, name: 'ship' },
      { k: 'op', t: at(11 + c), tr, sp: sp.ship, op: 'stream', action: 'set', stream: 'shipments', id: 's1', dur: msToNs(1) },
      { k: 'step_end', t: at(30 + c), tr, sp: sp.ship, name: 'ship' },
      { k: 'trace_end', t: at(30 + c), tr },
    );
  }
  return { tr, sp, failed, events };
}

before(async () => {
  agent = await startAgent();
  browser = await launchBrowser();
  // The demo's own traces first, so the list is settled before ours arrive.
  await demoTraces(agent);
  conn = await WireClient.connect(agent.socket, { service: 'shop' });
  const t0 = nowNs() - msToNs(20_000);
  runs = CHARGE.map((_, k) => checkoutRun(k, t0 + msToNs(k * 1000)));
  await conn.send(runs.flatMap((r) => r.events));
  for (const r of runs) {
    const t = await waitFor(
      async () => {
        const t = await getJson(agent.url, `api/traces/${r.tr}`).catch(() => null);
        return t && t.status !== 'running' ? t : null;
      },
      { what: `run ${r.tr} finished` },
    );
    r.start = t.startTime;
  }
});

after(async () => {
  await conn?.close();
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

/** No CSP violation and no page error; `expected`: the failed requests a test provoked on purpose. */
async function cleanPage(page, expected = null) {
  assert.deepEqual(await page.evaluate(() => window.__csp), [], 'no CSP violation');
  assert.deepEqual(
    page.errors.filter((e) => !(expected && expected.test(e))),
    [],
  );
  await page.context().close();
}

const close = (a, b) => Math.abs(a - b) < 1e-9;
const text = (page, sel) => page.textContent(sel).then((s) => s.trim());
/** No horizontal overflow of a page's own scroll container (wide tables scroll inside their frame). */
const noHScroll = (page, sel) => page.$eval(sel, (el) => el.scrollWidth <= el.clientWidth + 1 && document.documentElement.scrollWidth <= window.innerWidth);

/** A time range that holds runs 2 and 3 only, in whole seconds (unix ms). */
function middleRange() {
  return { since: Math.ceil((runs[0].start + 1) / 1000) * 1000, until: Math.floor((runs[2].start + 999) / 1000) * 1000 };
}

test('API: critical path, flow insights, compare and group rollups match the hand-computed figures', async () => {
  const [r1, , , r4] = runs;
  const full = await getJson(agent.url, `api/traces/${r1.tr}`);
  assert.deepEqual(full.criticalPath, [r1.sp.validate, r1.sp.charge, r1.sp.ship], 'critical path of run 1: validate, charge, ship');
  const timeline = await getJson(agent.url, `api/traces/${r1.tr}?view=timeline`);
  assert.deepEqual(timeline.criticalPath, full.criticalPath, 'the timeline view has the same critical path');

  const ins = await getJson(agent.url, `api/flows/${FLOW}/insights`);
  assert.equal(ins.flowName, FLOW);
  assert.deepEqual([ins.runs, ins.completed, ins.failed, ins.running], [4, 3, 1, 0]);
  assert.deepEqual([ins.duration.p50, ins.duration.p95, ins.duration.avg, ins.duration.max], [70, 90, 75, 90]);
  assert.deepEqual(
    ins.steps.map((s) => s.name),
    ['validate', 'charge', 'notify', 'ship'],
    'steps in the order they start',
  );
  const step = (n) => ins.steps.find((s) => s.name === n);
  const charge = step('charge');
  assert.deepEqual([charge.count, charge.duration.p50, charge.duration.p99, charge.errorRate], [4, 40, 80, 0.25]);
  assert.ok(close(charge.shareOfFlowTime, 200 / 300), `charge share of flow time ${charge.shareOfFlowTime}`);
  assert.ok(close(charge.criticalShare, 200 / 300), `charge critical share ${charge.criticalShare}`);
  assert.equal(step('notify').criticalShare, 0);
  assert.equal(step('ship').count, 3);
  assert.equal(ins.bottleneck, 'charge');
  assert.deepEqual(ins.operations, { state: { get: 4 }, emit: { send: 4 }, stream: { set: 3 } });
  assert.deepEqual(ins.stateKeys, [{ name: 'cart.items', actions: { get: 4 }, runs: 4 }]);
  assert.deepEqual(ins.streams, [{ name: 'shipments', actions: { set: 3 }, runs: 3 }]);
  assert.deepEqual(ins.topics, [{ name: 'order.paid', actions: { send: 4 }, runs: 4 }]);
  assert.deepEqual([ins.llmCalls, ins.totalTokens, ins.tokensPerRun], [4, 480, 120]);
  assert.ok(close(ins.totalCost, 0.04) && close(ins.costPerRun, 0.01), 'cost');
  assert.deepEqual(ins.models, [{ provider: 'openai', model: 'gpt-4o', calls: 4, inputTokens: 400, outputTokens: 80, cost: ins.models[0].cost }]);
  assert.ok(close(ins.models[0].cost, 0.04));

  const { since, until } = middleRange();
  const ranged = await getJson(agent.url, `api/flows/${FLOW}/insights?since=${since}&until=${until}`);
  assert.equal(ranged.runs, 2, 'the range holds runs 2 and 3');
  assert.equal((await fetch(new URL(`api/flows/nope/insights`, agent.url))).status, 404);
  assert.equal((await fetch(new URL(`api/flows/${FLOW}/insights?since=x`, agent.url))).status, 400);

  const cmp = await getJson(agent.url, `api/compare?a=${r1.tr}&b=${r4.tr}`);
  assert.deepEqual([cmp.a.id, cmp.b.id, cmp.a.status, cmp.b.status], [r1.tr, r4.tr, 'completed', 'failed']);
  assert.equal(cmp.durationDelta, 40);
  assert.equal(cmp.statusChanged, true);
  assert.deepEqual(
    cmp.steps.map((s) => [s.name, s.occurrence, s.durationDelta, s.statusChanged, s.opsDelta]),
    [
      ['validate', 0, 0, false, 0],
      ['charge', 0, 60, true, 0],
      ['notify', 0, 0, false, 0],
    ],
  );
  assert.deepEqual(
    cmp.onlyInA.map((s) => [s.name, s.id, s.ops]),
    [['ship', r1.sp.ship, 1]],
  );
  assert.deepEqual(cmp.onlyInB, []);

  const group = await getJson(agent.url, `api/groups/${CID}`);
  const md = group.metadata;
  assert.deepEqual([md.llmCalls, md.totalTokens, md.errorCount, md.totalTraces], [4, 480, 1, 4]);
  assert.ok(close(md.totalCost, 0.04));
  const listed = (await getJson(agent.url, 'api/groups')).groups.find((g) => g.id === CID);
  assert.deepEqual([listed.metadata.llmCalls, listed.metadata.totalTokens, listed.metadata.errorCount], [4, 480, 1]);
});

test('the flow insights view shows the runs, percentiles, steps with the bottleneck, operations, resources and LLM usage', async () => {
  const page = await newPage(browser);
  await watchCsp(page);
  // From the flow status card.
  await page.goto(`${agent.url}/#/flows`);
  await page.click(`.flow-card[data-flow="${FLOW}"] .insights-link`);
  await page.waitForSelector('.insights-page .ins-table tr[data-step="ship"]');
  assert.equal(await page.evaluate(() => location.hash), `#/flows/${FLOW}/insights`);
  assert.equal(await page.getAttribute('.nav-link[data-view=flows]', 'aria-current'), 'page', 'the Flows tab is current');
  assert.match(await text(page, '.ins-title'), /^checkout/);

  const stat = (key) => text(page, `.ins-summary [data-stat="${key}"] .stat-value`);
  assert.deepEqual([await stat('runs'), await stat('completed'), await stat('failed'), await stat('rate')], ['4', '3', '1', '75.0%']);
  assert.deepEqual(
    [await stat('duration-p50'), await stat('duration-p95'), await stat('duration-p99'), await stat('duration-avg'), await stat('duration-max')],
    ['70 ms', '90 ms', '90 ms', '75 ms', '90 ms'],
  );

  const rows = await page.$$eval('.ins-table tbody tr', (trs) =>
    trs.map((tr) => {
      const col = (c) => tr.querySelector(`[data-col="${c}"]`).textContent.trim();
      return {
        name: tr.dataset.step,
        bottleneck: tr.classList.contains('bottleneck'),
        badge: !!tr.querySelector('.b-bottleneck'),
        count: col('count'),
        p50: col('p50'),
        p95: col('p95'),
        p99: col('p99'),
        errors: col('errorRate'),
        flowShare: tr.querySelector('[data-col="shareOfFlowTime"] .share-value').textContent,
        flowBar: parseFloat(tr.querySelector('[data-col="shareOfFlowTime"] .share-fill').style.width),
        critShare: tr.querySelector('[data-col="criticalShare"] .share-value').textContent,
        critBar: parseFloat(tr.querySelector('[data-col="criticalShare"] .share-fill').style.width),
        background: getComputedStyle(tr.querySelector('td')).backgroundColor,
      };
    }),
  );
  assert.deepEqual(
    rows.map((r) => r.name),
    ['validate', 'charge', 'notify', 'ship'],
    'steps in start order',
  );
  const charge = rows[1];
  assert.deepEqual([charge.count, charge.p50, charge.p95, charge.p99, charge.errors], ['4', '40 ms', '80 ms', '80 ms', '25.0%']);
  assert.deepEqual([charge.flowShare, charge.critShare], ['66.7%', '66.7%']);
  assert.ok(Math.abs(charge.flowBar - 66.667) < 0.01 && Math.abs(charge.critBar - 66.667) < 0.01, `bars ${charge.flowBar} ${charge.critBar}`);
  assert.deepEqual([rows[2].critShare, rows[2].critBar], ['0%', 0], 'notify is never on the critical path');
  assert.equal(rows[3].count, '3', 'ship ran 3 times');
  assert.equal(rows[0].p50, '10 ms');
  assert.deepEqual(
    rows.map((r) => [r.bottleneck, r.badge]),
    [
      [false, false],
      [true, true],
      [false, false],
      [false, false],
    ],
    'only charge is the bottleneck',
  );
  assert.notEqual(charge.background, rows[0].background, 'the bottleneck row is highlighted');
  assert.equal(await text(page, '.ins-bottleneck .ins-bottleneck-name'), 'charge');

  // Operations, state keys / streams / topics, LLM usage.
  const ops = await page.$$eval('.ins-op', (els) => Object.fromEntries(els.map((e) => [e.dataset.kind, [...e.querySelectorAll('.ins-action')].map((a) => a.textContent)])));
  assert.deepEqual(ops, { state: ['get 4'], emit: ['send 4'], stream: ['set 3'] });
  const res = await page.$$eval('.ins-res', (els) =>
    Object.fromEntries(els.map((e) => [e.dataset.list, [...e.querySelectorAll('.ins-res-item')].map((i) => [i.dataset.name, i.querySelector('.ins-res-runs').textContent])])),
  );
  assert.deepEqual(res, { stateKeys: [['cart.items', '4/4 runs']], streams: [['shipments', '3/4 runs']], topics: [['order.paid', '4/4 runs']] });
  const llm = (key) => text(page, `.ins-llm [data-stat="${key}"] .stat-value`);
  assert.deepEqual([await llm('llmCalls'), await llm('totalTokens'), await llm('totalCost'), await llm('tokensPerRun'), await llm('costPerRun')], ['4', '480', '$0.04', '120', '$0.01']);
  assert.deepEqual(
    await page.$$eval('.ins-models tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent))),
    [['openai', 'gpt-4o', '4', '400', '80', '$0.04']],
  );
  // A step links to the traces with it.
  assert.equal(await page.getAttribute('.ins-table tr[data-step="charge"] .ins-step-name a', 'href'), `#/traces?flow=${FLOW}&stepName=charge`);
  await screenshot(page, 'insights-01-flow');
  await page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(page, 'insights-02-flow-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  // The time range: set in the inputs (local time), applied as ?since=&until= (unix ms).
  const { since, until } = middleRange();
  for (const [name, ms] of [
    ['since', since],
    ['until', until],
  ])
    await page.$eval(
      `.range-form input[name=${name}]`,
      (el, ms) => {
        const d = new Date(ms);
        const p = (n, w = 2) => String(n).padStart(w, '0');
        el.value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
      },
      ms,
    );
  await page.click('.range-form .range-apply');
  await waitFor(async () => (await stat('runs').catch(() => null)) === '2', { what: 'insights of the range: 2 runs' });
  const params = new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1]);
  assert.deepEqual([Number(params.get('since')), Number(params.get('until'))], [since, until], 'the range is in the URL as unix ms');
  assert.match(await text(page, '.range-text'), /^Runs started from /);
  // Reloading the link keeps the range in the inputs.
  await page.reload();
  await waitFor(async () => (await stat('runs').catch(() => null)) === '2', { what: 'the range from the URL' });
  assert.notEqual(await page.inputValue('.range-form input[name=since]'), '');
  await page.click('.range-form .range-clear');
  await waitFor(async () => (await stat('runs').catch(() => null)) === '4', { what: 'all runs again' });
  assert.equal(await page.evaluate(() => location.hash), `#/flows/${FLOW}/insights`);

  // Since after until: refused in the page; a bad parameter in the URL: the agent's 400 is shown.
  await page.$eval('.range-form input[name=since]', (el) => (el.value = '2030-01-02T00:00'));
  await page.$eval('.range-form input[name=until]', (el) => (el.value = '2030-01-01T00:00'));
  await page.click('.range-form .range-apply');
  await page.waitForSelector('.range-form .range-error:not([hidden])');
  assert.match(await text(page, '.range-error'), /must not be after/);
  await page.goto(`${agent.url}/#/flows/${FLOW}/insights?since=x`);
  await page.waitForSelector('.ins-error');
  assert.match(await text(page, '.ins-error strong'), /time range is not valid/);
  assert.match(await text(page, '.range-error'), /since/);
  await page.goto(`${agent.url}/#/flows/no-such-flow/insights`);
  await page.waitForSelector('.ins-error');
  assert.match(await text(page, '.ins-error strong'), /No flow named “no-such-flow”/);

  // From a trace's flow name.
  await page.goto(`${agent.url}/#/traces/${runs[0].tr}`);
  await page.waitForSelector('.tl-header .tl-title-link');
  await page.click('.tl-header .tl-title-link');
  await page.waitForSelector('.insights-page .ins-table tr[data-step="ship"]');
  assert.equal(await page.evaluate(() => location.hash), `#/flows/${FLOW}/insights`);
  await cleanPage(page, /Failed to load resource: the server responded with a status of (400|404)/);
});

test('the timeline highlights exactly the critical-path steps, with a toggle, and the details say so', async () => {
  const r = runs[0];
  const page = await newPage(browser);
  await watchCsp(page);
  await page.goto(`${agent.url}/#/traces/${r.tr}`);
  await page.waitForSelector('.tl-row[data-name="ship"]');
  const { criticalPath } = await getJson(agent.url, `api/traces/${r.tr}?view=timeline`);
  const rows = () =>
    page.$$eval('.tl-row', (els) =>
      els.map((e) => ({
        id: e.dataset.id,
        name: e.dataset.name,
        critical: e.classList.contains('critical'),
        marker: !!e.querySelector('.tl-crit'),
        bar: getComputedStyle(e.querySelector('.tl-bar')).boxShadow,
        stripe: getComputedStyle(e.querySelector('.tl-label')).boxShadow,
      })),
    );
  let got = await rows();
  assert.equal(got.length, 4);
  assert.deepEqual(
    got.filter((x) => x.critical).map((x) => x.id).sort(),
    [...criticalPath].sort(),
    'the rows of the critical path, and only those',
  );
  assert.deepEqual(
    got.filter((x) => x.critical).map((x) => x.name).sort(),
    ['charge', 'ship', 'validate'],
  );
  for (const x of got) {
    assert.equal(x.marker, x.critical, `marker on ${x.name}`);
    if (x.critical) assert.notEqual(x.bar, 'none', `outlined bar of ${x.name}`);
    else assert.equal(x.bar, 'none', `no outline on ${x.name}`);
    assert.equal(x.stripe !== 'none', x.critical, `stripe on ${x.name}`);
  }
  const toggle = '.tl-header .crit-toggle';
  assert.equal(await page.getAttribute(toggle, 'aria-pressed'), 'true');
  assert.match(await text(page, toggle), /Critical path\s*3/);
  await screenshot(page, 'insights-03-critical-path');
  await page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(page, 'insights-04-critical-path-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  // The toggle: off (remembered across a reload), then on again from the keyboard.
  await page.click(toggle);
  await waitFor(async () => (await page.$$('.tl-row.critical')).length === 0, { what: 'highlight off' });
  assert.equal(await page.getAttribute(toggle, 'aria-pressed'), 'false');
  assert.equal(await page.$('.tl-row .tl-crit'), null);
  await page.reload();
  await page.waitForSelector('.tl-row[data-name="ship"]');
  assert.equal(await page.getAttribute(toggle, 'aria-pressed'), 'false');
  assert.equal((await page.$$('.tl-row.critical')).length, 0);
  await page.focus(toggle);
  await page.keyboard.press('Enter');
  await waitFor(async () => (await page.$$('.tl-row.critical')).length === 3, { what: 'highlight on' });
  assert.equal(await page.getAttribute(toggle, 'aria-pressed'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('crit-toggle')), true, 'focus stays on the toggle');

  // Step details.
  await clickStep(page, r.sp.charge);
  assert.equal(await text(page, '.details .dt-name'), 'charge');
  assert.equal(await text(page, '.details .crit-chip'), 'On the critical path');
  await screenshot(page, 'insights-05-critical-step');
  await clickStep(page, r.sp.notify);
  assert.equal(await text(page, '.details .dt-name'), 'notify');
  assert.equal(await page.$('.details .crit-chip'), null, 'notify is not on the critical path');
  await cleanPage(page);
});

test('picking two traces in the list opens the compare view with the deltas', async () => {
  const [r1, r2, , r4] = runs;
  const page = await newPage(browser);
  await watchCsp(page);
  await page.goto(`${agent.url}/#/traces?flow=${FLOW}`);
  await waitFor(async () => (await page.$$('.traces-page .trace-item')).length === 4, { what: 'the 4 checkout runs listed' });
  assert.ok(await page.isHidden('.ti-pick'), 'no checkboxes outside picking mode');
  await page.click('.pick-toggle');
  assert.equal(await page.getAttribute('.pick-toggle', 'aria-pressed'), 'true');
  await page.waitForSelector('#compare-bar:not([hidden])');
  assert.ok(await page.isDisabled('.compare-go'));
  // Pick the failed run first: A is the one that started first whatever the order.
  const box = (r) => `.trace-item[data-trace-id="${r.tr}"] .ti-pick-box`;
  await page.check(box(r4));
  assert.match(await text(page, '.compare-hint'), /pick one more/);
  await page.check(box(r1));
  assert.ok(await page.isDisabled(box(r2)), 'two at most');
  assert.equal((await page.$$('.trace-item.picked')).length, 2);
  assert.equal(await page.evaluate(() => location.hash), `#/traces?flow=${FLOW}`, 'picking does not open a trace');
  await screenshot(page, 'insights-06-compare-pick');
  await page.click('.compare-go');
  await page.waitForSelector('.compare-page .cmp-table');
  const params = new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1]);
  assert.deepEqual([params.get('a'), params.get('b')], [r1.tr, r4.tr]);
  assert.equal(await page.getAttribute('.nav-link[data-view=traces]', 'aria-current'), 'page');

  const sides = await page.$$eval('.cmp-side', (els) => els.map((e) => [e.dataset.side, e.dataset.traceId, e.querySelector('.cmp-flow').textContent, e.querySelector('.pill').textContent, e.querySelector('.cmp-dur').textContent]));
  assert.deepEqual(sides, [
    ['a', r1.tr, FLOW, 'completed', '50 ms'],
    ['b', r4.tr, FLOW, 'failed', '90 ms'],
  ]);
  assert.equal(await text(page, '[data-meta=duration] .delta-value'), '+40 ms');
  assert.match(await page.getAttribute('[data-meta=duration] .delta', 'class'), /delta-up/);
  assert.match(await text(page, '[data-meta=status]'), /completed\s*→\s*failed/);
  assert.equal(await text(page, '[data-meta=steps] .meta-value'), '3 matched · 1 only in A · 0 only in B');

  const table = () =>
    page.$$eval('.cmp-table tbody tr', (trs) =>
      trs.map((tr) => {
        const col = (c) => tr.querySelector(`[data-col="${c}"]`);
        return {
          name: tr.dataset.name,
          occurrence: tr.dataset.occurrence,
          a: col('a').textContent,
          b: col('b').textContent,
          delta: col('delta').querySelector('.delta-value').textContent,
          deltaClass: [...col('delta').querySelector('.delta').classList].find((c) => c.startsWith('delta-')),
          status: col('status').textContent.replace(/\s+/g, ' ').trim(),
          changed: tr.classList.contains('status-changed'),
          ops: col('ops').textContent,
        };
      }),
    );
  assert.deepEqual(await table(), [
    { name: 'validate', occurrence: '0', a: '10 ms', b: '10 ms', delta: '±0 ms', deltaClass: 'delta-same', status: 'completed', changed: false, ops: '±0' },
    { name: 'charge', occurrence: '0', a: '20 ms', b: '80 ms', delta: '+60 ms', deltaClass: 'delta-up', status: 'completed→failed', changed: true, ops: '±0' },
    { name: 'notify', occurrence: '0', a: '5 ms', b: '5 ms', delta: '±0 ms', deltaClass: 'delta-same', status: 'completed', changed: false, ops: '±0' },
  ]);
  const only = (side) => page.$$eval(`.cmp-only[data-side=${side}] .cmp-only-item`, (els) => els.map((e) => [e.dataset.name, e.querySelector('a').getAttribute('href')]));
  assert.deepEqual(await only('a'), [['ship', `#/traces/${r1.tr}?step=${r1.sp.ship}`]]);
  assert.deepEqual(await only('b'), []);
  assert.equal(await text(page, '.cmp-only[data-side=b] p'), 'None');
  // Colours: B slower is red, unchanged is muted.
  const colour = (sel) => page.$eval(sel, (e) => getComputedStyle(e).color);
  assert.notEqual(await colour('.cmp-row[data-name="charge"] [data-col=delta] .delta'), await colour('.cmp-row[data-name="validate"] [data-col=delta] .delta'));
  await screenshot(page, 'insights-07-compare');
  await page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(page, 'insights-08-compare-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  // Swap: the signs turn, ship is only in B.
  await page.click('.cmp-swap');
  await waitFor(async () => (await page.$$eval('.cmp-only[data-side=b] .cmp-only-item', (e) => e.length).catch(() => 0)) === 1, { what: 'swapped' });
  assert.equal(await text(page, '.cmp-row[data-name="charge"] [data-col=delta] .delta-value'), '−60 ms');
  assert.match(await page.getAttribute('.cmp-row[data-name="charge"] [data-col=delta] .delta', 'class'), /delta-down/);
  assert.equal(await text(page, '[data-meta=duration] .delta-value'), '−40 ms');

  // A step link opens the step in its trace.
  await page.click('.cmp-row[data-name="charge"] [data-col=b] a');
  await waitFor(async () => (await page.textContent('.details .dt-name').catch(() => null)) === 'charge', { what: 'charge of B opened' });
  assert.ok((await page.evaluate(() => location.hash)).startsWith(`#/traces/${r1.tr}?step=${r1.sp.charge}`));

  // Back in the list, the picks are still there until Cancel; then the keyboard: x picks the open trace.
  await page.goto(`${agent.url}/#/traces/${r2.tr}?flow=${FLOW}`);
  await page.waitForSelector('.tl-row[data-name="ship"]');
  assert.ok(await page.isChecked(box(r1)) && (await page.isChecked(box(r4))), 'the picks are kept');
  await page.click('.compare-cancel');
  assert.ok(await page.isHidden('#compare-bar'));
  assert.ok(await page.isHidden('.ti-pick'));
  await page.keyboard.press('x');
  await page.waitForSelector('#compare-bar:not([hidden])');
  assert.match(await text(page, '.compare-hint'), new RegExp(`Picked checkout ${r2.tr.slice(0, 8)}: pick one more`));
  assert.equal(await page.getAttribute('.tl-header .compare-btn', 'aria-pressed'), 'true');
  assert.ok(await page.isChecked(box(r2)));
  await page.click('.compare-cancel');
  assert.ok(await page.isHidden('.ti-pick'));
  assert.equal(await page.getAttribute('.tl-header .compare-btn', 'aria-pressed'), 'false');

  // Errors: a missing id, an evicted trace.
  await page.goto(`${agent.url}/#/compare?a=${r1.tr}`);
  await page.waitForSelector('.cmp-missing');
  await page.goto(`${agent.url}/#/compare?a=${r1.tr}&b=${traceId()}`);
  await page.waitForSelector('.cmp-error');
  assert.match(await text(page, '.cmp-error strong'), /not there/);
  await cleanPage(page, /Failed to load resource: the server responded with a status of 404/);
});

test('the group view shows the LLM, cost and error rollups', async () => {
  const page = await newPage(browser);
  await watchCsp(page);
  await page.goto(`${agent.url}/#/groups/${CID}`);
  await page.waitForSelector('.group-head [data-meta=llm] .rollup-llm');
  assert.equal(await text(page, '.group-head [data-meta=llm] .rollup-calls'), '4 calls');
  assert.equal(await text(page, '.group-head [data-meta=llm] .rollup-tokens'), '480 tokens');
  assert.equal(await text(page, '.group-head [data-meta=llm] .rollup-cost'), '$0.04');
  assert.equal(await text(page, '.group-head [data-meta=llm] .meta-value'), '4 calls · 480 tokens · $0.04');
  assert.equal(await text(page, '.group-head [data-meta=errors] .meta-value'), '1');
  assert.equal(await text(page, `.group-item[data-group-id="${CID}"] .ti-err`), '1', 'the list marks the error too');
  await screenshot(page, 'insights-09-group-rollups');
  await cleanPage(page);
});

test('phone width: insights and compare stack without horizontal scrolling', async () => {
  const page = await newPage(browser, { width: 390, height: 844 });
  await watchCsp(page);
  await page.goto(`${agent.url}/#/flows/${FLOW}/insights`);
  await page.waitForSelector('.ins-table tr[data-step="ship"]');
  assert.ok(await noHScroll(page, '.ins-scroll'), 'insights: no horizontal scrolling');
  await screenshot(page, 'insights-10-phone-insights');
  await page.goto(`${agent.url}/#/compare?a=${runs[0].tr}&b=${runs[3].tr}`);
  await page.waitForSelector('.cmp-table');
  assert.ok(await noHScroll(page, '.cmp-scroll'), 'compare: no horizontal scrolling');
  assert.ok(await page.isHidden('.cmp-table td.cmp-bars'), 'no timing bars on a phone');
  await screenshot(page, 'insights-11-phone-compare');
  await cleanPage(page);
});
