// Flow analytics, three pages:
//   FlowsPage    `#/flows`: live flow status, per flow its steps with running/completed/failed
//                counts and live stats (active traces, average duration, success rate). Updated by
//                `flow.status` events. Each card links to the flow's insights.
//   InsightsPage `#/flows/<flow>/insights[?since=&until=]`: what a flow's stored runs add up to.
//   ComparePage  `#/compare?a=<traceId>&b=<traceId>`: two traces (runs) step by step.
// All figures come from the agent; these pages lay them out.

import { api, ChangesDuringLoad } from './api.js';
import {
  h,
  icon,
  coalesce,
  deltaClass,
  fmtCost,
  fmtDateTime,
  fmtDelta,
  fmtDuration,
  fmtNumber,
  fmtPercent,
  fmtRelative,
  fmtSigned,
  rafThrottle,
  setChildren,
  shortId,
  statusDot,
  statusPill,
} from './util.js';

export class FlowsPage {
  constructor(main, ctx) {
    this.ctx = ctx;
    this.flows = new Map();
    // One change per flow: bounded by the flows the agent keeps.
    this.liveDuringLoad = new ChangesDuringLoad(Infinity);
    this.visible = false;
    this.error = null;
    this.renderSoon = rafThrottle(() => this.render());
    this.grid = h('div', { class: 'flow-grid' });
    this.el = h(
      'div',
      { class: 'page flows-page', hidden: true },
      h(
        'div',
        { class: 'flows-head' },
        h('h2', { class: 'pane-title' }, 'Live flow status'),
        h('p', { class: 'muted small' }, 'Each flow with its steps, how many executions are in each right now, and how the flow is doing.'),
      ),
      this.grid,
    );
    main.appendChild(this.el);
  }

  title() {
    return 'Flows';
  }

  show() {
    this.visible = true;
    this.el.hidden = false;
    this.load();
  }

  hide() {
    this.visible = false;
    this.el.hidden = true;
  }

  route() {}

  resync() {
    this.load();
  }

  setPolling(on) {
    clearInterval(this.pollTimer);
    if (on) this.pollTimer = setInterval(() => this.visible && this.load(), 3000);
  }

  async load() {
    // Flow changes that arrive while the list is on its way are applied on top when the list
    // may predate them (its `seq`, as for traces).
    this.liveDuringLoad.begin();
    try {
      const { flows, seq } = await api.flows();
      this.flows = new Map((flows || []).map((f) => [f.flowName, f]));
      this.error = null;
      for (const f of this.liveDuringLoad.newer(seq, (data) => this.flows.has(data.flowName))) this.flows.set(f.flowName, f);
    } catch (e) {
      this.error = e;
    } finally {
      this.liveDuringLoad.end();
    }
    this.render();
  }

  onLive(type, data, seq = null) {
    if (type !== 'flow.status' || !data) return;
    this.liveDuringLoad.keep(data.flowName, seq, data);
    const prev = this.flows.get(data.flowName);
    this.flows.set(data.flowName, data);
    if (this.visible) {
      this.changed = this.changed || new Set();
      if (!prev || JSON.stringify(prev) !== JSON.stringify(data)) this.changed.add(data.flowName);
      this.renderSoon();
    }
  }

  render() {
    const flows = [...this.flows.values()].sort((a, b) => b.activeTraces - a.activeTraces || a.flowName.localeCompare(b.flowName));
    if (!flows.length) {
      setChildren(this.grid, 
        h(
          'div',
          { class: 'empty' },
          this.error
            ? [h('strong', null, 'Flow status is not available'), h('p', { class: 'muted' }, this.error.message)]
            : [h('strong', null, 'No flows yet'), h('p', { class: 'muted' }, 'Flows appear here as soon as their first trace starts.')],
        ),
      );
      return;
    }
    const changed = this.changed || new Set();
    this.changed = null;
    this.grid.replaceChildren(...flows.map((f) => flowCard(f, changed.has(f.flowName))));
  }
}

function flowCard(f, flash) {
  const steps = f.steps || [];
  const max = Math.max(1, ...steps.map((s) => s.completed + s.failed + s.running));
  const rows = steps.map((s) => {
    const state = s.running ? 'running' : s.failed && !s.completed ? 'failed' : s.completed ? 'completed' : 'waiting';
    const pct = (n) => `${(n / max) * 100}%`;
    return h(
      'a',
      {
        class: `flow-step st-${state}`,
        href: `#/traces?flow=${encodeURIComponent(f.flowName)}&stepName=${encodeURIComponent(s.name)}`,
        dataset: { step: s.name, running: s.running, completed: s.completed, failed: s.failed },
        title: `${s.name}: ${s.running} running, ${s.completed} completed, ${s.failed} failed`,
      },
      h('span', { class: 'fs-name' }, h('span', { class: `status-dot s-${state}` }), h('span', { class: 'fs-label' }, s.name)),
      h('span', { class: `fs-running${s.running ? ' on' : ''}` }, s.running ? `${fmtNumber(s.running)} running` : '—'),
      h('span', { class: 'fs-bar', 'aria-hidden': 'true' }, h('span', { class: 'r', style: { width: pct(s.running) } }), h('span', { class: 'c', style: { width: pct(s.completed) } }), h('span', { class: 'f', style: { width: pct(s.failed) } })),
      h('span', { class: 'fs-done', title: 'completed' }, icon('check'), fmtNumber(s.completed)),
      h('span', { class: `fs-failed${s.failed ? ' on' : ''}`, title: 'failed' }, icon('x'), fmtNumber(s.failed)),
    );
  });
  const rate = f.successRate;
  return h(
    'article',
    { class: `flow-card${f.activeTraces ? ' active' : ''}${flash ? ' flash' : ''}`, dataset: { flow: f.flowName } },
    h(
      'header',
      { class: 'flow-card-head' },
      h('h3', null, f.flowName),
      f.activeTraces ? h('span', { class: 'pill pill-running' }, h('span', { class: 'dot' }), `${f.activeTraces} active`) : h('span', { class: 'pill pill-idle' }, 'idle'),
      h('span', { class: 'spacer' }),
      h('a', { class: 'btn btn-ghost btn-xs insights-link', href: `#/flows/${encodeURIComponent(f.flowName)}/insights`, title: `Percentiles, bottleneck, operations and LLM usage of ${f.flowName}` }, icon('chart'), 'Insights'),
      h('a', { class: 'btn btn-ghost btn-xs', href: `#/traces?flow=${encodeURIComponent(f.flowName)}` }, 'Traces →'),
    ),
    h(
      'div',
      { class: 'flow-stats' },
      stat('Active traces', fmtNumber(f.activeTraces), 'active'),
      stat('Avg duration', f.avgDuration != null ? fmtDuration(f.avgDuration) : '—', 'avg'),
      stat(
        'Success rate',
        h('span', null, fmtPercent(rate), h('span', { class: 'rate-bar' }, h('span', { style: { width: `${Math.max(0, Math.min(1, rate || 0)) * 100}%` }, class: rate >= 0.95 ? 'good' : rate >= 0.8 ? 'ok' : 'bad' }))),
        'rate',
      ),
    ),
    h(
      'div',
      { class: 'flow-steps', role: 'list', 'aria-label': `Steps of ${f.flowName}` },
      h('div', { class: 'flow-steps-head' }, h('span', null, 'Step'), h('span', null, 'Now'), h('span', null, 'Runs'), h('span', null, 'Done'), h('span', null, 'Failed')),
      rows,
      // The agent sends at most 100 steps per flow.
      f.stepsTruncated ? h('div', { class: 'flow-steps-more muted small' }, `+ more steps (the agent lists ${fmtNumber(steps.length)})`) : null,
    ),
  );
}

function stat(label, value, key, extra = null) {
  return h('div', { class: 'stat', dataset: { stat: key } }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), extra);
}

// ---------------------------------------------------------------- flow insights
//
// `GET /api/flows/{flow}/insights`: runs and outcomes, run-duration percentiles, a per-step table
// in start order (percentiles, error rate, share of flow time and of the critical path, the
// bottleneck highlighted), the operations, the state keys, streams and topics used, and LLM usage
// per run and per model. An optional time range (the runs started in it) travels in the URL as
// unix ms, the API's `since`/`until`. Refreshed (throttled) when a trace of the flow changes.

const KINDS = [
  ['state', 'State'],
  ['emit', 'Emit'],
  ['stream', 'Stream'],
];
const PRESETS = [
  ['15m', 'Last 15 min', 15 * 60_000],
  ['1h', 'Last hour', 3_600_000],
  ['24h', 'Last 24 h', 86_400_000],
];

export class InsightsPage {
  constructor(main, ctx) {
    this.ctx = ctx;
    this.flow = null;
    this.range = { since: null, until: null }; // strings from the URL, as sent to the API
    // At most one refetch per 750 ms while the flow's traces keep changing.
    this.refresh = coalesce(() => this.load({ quiet: true }), 750);
    this.data = null;
    this.visible = false;
    this.key = null;

    this.titleEl = h('h2', { class: 'tl-title ins-title' });
    this.tracesLink = h('a', { class: 'btn btn-ghost btn-xs ins-traces' }, 'Traces →');
    const head = h(
      'div',
      { class: 'tl-title-row' },
      h('a', { class: 'btn btn-ghost btn-icon ins-back', href: '#/flows', title: 'Back to the flows', 'aria-label': 'Back to the flows' }, icon('back')),
      icon('chart', 'ins-icon'),
      this.titleEl,
      h('span', { class: 'spacer' }),
      h('a', { class: 'btn btn-ghost btn-xs ins-live', href: '#/flows' }, 'Live status'),
      this.tracesLink,
    );

    const input = (name, label) => {
      const el = h('input', { class: 'input', type: 'datetime-local', step: '0.001', name, id: `ins-${name}` });
      return [el, h('label', { class: 'field', for: `ins-${name}` }, h('span', { class: 'field-label' }, label), el)];
    };
    let sinceField;
    let untilField;
    [this.sinceInput, sinceField] = input('since', 'Since');
    [this.untilInput, untilField] = input('until', 'Until');
    this.rangeError = h('p', { class: 'range-error', role: 'alert', hidden: true });
    this.rangeText = h('p', { class: 'muted small range-text' });
    this.form = h(
      'form',
      { class: 'range-form', 'aria-label': 'Time range', novalidate: true, onsubmit: (e) => this.applyRange(e) },
      sinceField,
      untilField,
      h('div', { class: 'range-actions' }, h('button', { class: 'btn btn-xs range-apply', type: 'submit' }, 'Apply'), h('button', { class: 'btn btn-ghost btn-xs range-clear', type: 'button', onclick: () => this.setRange(null, null) }, 'All runs')),
      h(
        'div',
        { class: 'range-presets', role: 'group', 'aria-label': 'Recent runs' },
        PRESETS.map(([key, label, ms]) => h('button', { class: 'btn btn-ghost btn-xs', type: 'button', dataset: { preset: key }, onclick: () => this.setRange(Date.now() - ms, null) }, label)),
      ),
      this.rangeError,
    );
    this.body = h('div', { class: 'ins-body', 'aria-live': 'polite', 'aria-busy': 'false' });
    this.el = h(
      'div',
      { class: 'page insights-page', hidden: true },
      h('div', { class: 'ins-scroll' }, h('div', { class: 'ins-head' }, head, this.form, this.rangeText), this.body),
    );
    main.appendChild(this.el);
  }

  title() {
    return this.flow ? `${this.flow} insights` : 'Insights';
  }

  show() {
    this.visible = true;
    this.el.hidden = false;
    this.stale = true; // refetched by the route() that follows
  }

  hide() {
    this.visible = false;
    this.el.hidden = true;
    this.refresh.cancel();
  }

  resync() {
    if (this.flow) this.load({ quiet: true });
  }

  setPolling(on) {
    clearInterval(this.pollTimer);
    if (on) this.pollTimer = setInterval(() => this.visible && this.flow && this.load({ quiet: true }), 3000);
  }

  route(route) {
    const since = route.params.get('since');
    const until = route.params.get('until');
    const key = JSON.stringify([route.id, since, until]);
    if (key === this.key && !this.stale && (this.data || this.inflight)) return;
    this.stale = false;
    const flowChanged = route.id !== this.flow;
    this.key = key;
    this.flow = route.id;
    this.range = { since: since || null, until: until || null };
    if (flowChanged) this.data = null;
    setChildren(this.titleEl, this.flow, h('span', { class: 'muted ins-sub' }, ' · insights'));
    const tracesParams = new URLSearchParams({ flow: this.flow });
    this.tracesLink.href = `#/traces?${tracesParams}`;
    this.syncInputs();
    this.load({ quiet: !flowChanged && !!this.data });
  }

  /** The time-range inputs show the range of the URL (local time). */
  syncInputs() {
    for (const [input, v] of [
      [this.sinceInput, this.range.since],
      [this.untilInput, this.range.until],
    ]) {
      const ms = v === null ? null : Number(v);
      input.value = ms !== null && Number.isFinite(ms) ? toLocalInput(ms) : '';
    }
    this.rangeError.hidden = true;
    const { since, until } = this.range;
    const when = (v) => (Number.isFinite(Number(v)) ? fmtDateTime(Number(v)) : v);
    this.rangeText.textContent =
      since && until ? `Runs started from ${when(since)} to ${when(until)}` : since ? `Runs started since ${when(since)}` : until ? `Runs started until ${when(until)}` : 'All stored runs of this flow';
  }

  applyRange(e) {
    e.preventDefault();
    const since = fromLocalInput(this.sinceInput.value);
    const until = fromLocalInput(this.untilInput.value);
    if (Number.isNaN(since) || Number.isNaN(until)) return this.showRangeError('Enter a complete date and time.');
    if (since !== null && until !== null && since > until) return this.showRangeError('“Since” must not be after “Until”.');
    this.setRange(since, until);
  }

  showRangeError(message) {
    this.rangeError.textContent = message;
    this.rangeError.hidden = false;
  }

  setRange(since, until) {
    const params = new URLSearchParams();
    if (since !== null) params.set('since', String(Math.max(0, Math.floor(since))));
    if (until !== null) params.set('until', String(Math.max(0, Math.floor(until))));
    this.ctx.navigate({ view: 'insights', id: this.flow, params });
  }

  onLive(type, data) {
    if (!this.visible || !this.flow || !data) return;
    if ((type === 'flow.status' || type.startsWith('trace.')) && data.flowName === this.flow) this.refresh.schedule();
  }

  async load({ quiet = false } = {}) {
    this.abort?.abort();
    const ctrl = (this.abort = new AbortController());
    const key = this.key;
    if (!quiet) setChildren(this.body, h('div', { class: 'pane-msg' }, h('div', { class: 'spinner', 'aria-label': 'Loading' })));
    this.body.setAttribute('aria-busy', 'true');
    this.inflight = true;
    try {
      const d = await api.insights(this.flow, this.range, { signal: ctrl.signal });
      if (ctrl.signal.aborted || key !== this.key) return;
      this.data = d;
      this.render();
      if (this.visible) document.title = `${this.title()} · flowscope`;
    } catch (e) {
      if (e.name === 'AbortError' || key !== this.key) return;
      this.data = null;
      if (e.status === 400) this.showRangeError(e.message);
      setChildren(
        this.body,
        h(
          'div',
          { class: 'empty ins-error' },
          h('strong', null, e.status === 404 ? `No flow named “${this.flow}”` : e.status === 400 ? 'This time range is not valid' : 'Cannot load the insights'),
          h('p', { class: 'muted' }, e.status === 404 ? 'It has no stored runs (the agent keeps the most recent traces).' : e.message),
          e.status === 404 ? h('a', { class: 'btn btn-xs', href: '#/flows' }, 'Back to the flows') : null,
        ),
      );
    } finally {
      if (this.abort === ctrl) {
        this.inflight = false;
        this.body.setAttribute('aria-busy', 'false');
      }
    }
  }

  render() {
    const d = this.data;
    if (!d.runs) {
      setChildren(
        this.body,
        h(
          'div',
          { class: 'empty ins-empty' },
          h('strong', null, 'No runs in this range'),
          h('p', { class: 'muted' }, 'No run of this flow started in the chosen time range.'),
          h('button', { class: 'btn btn-xs', type: 'button', onclick: () => this.setRange(null, null) }, 'Show all runs'),
        ),
      );
      return;
    }
    setChildren(this.body, summary(d), bottleneck(d), section('Steps', 'steps', insightSteps(d, this.flow), 'In the order they start. Share of flow time: the step’s time over the runs’ time; critical share: its time on the runs’ critical paths.'), section('Operations', 'operations', operations(d)), section('State keys, streams and topics', 'resources', resources(d, this.flow)), section('LLM usage', 'llm', llmUsage(d)));
  }
}

function section(title, key, content, help) {
  return h('section', { class: `ins-section ins-${key}`, dataset: { section: key }, 'aria-label': title }, h('h3', { class: 'ins-h' }, title), help ? h('p', { class: 'muted small ins-help' }, help) : null, content);
}

function summary(d) {
  const done = (d.completed || 0) + (d.failed || 0);
  const rate = done ? d.completed / done : null;
  const dur = d.duration || {};
  return h(
    'div',
    { class: 'ins-summary' },
    h(
      'div',
      { class: 'ins-stats', role: 'group', 'aria-label': 'Runs' },
      stat('Runs', fmtNumber(d.runs), 'runs'),
      stat('Completed', fmtNumber(d.completed), 'completed'),
      stat('Failed', fmtNumber(d.failed), 'failed'),
      d.running ? stat('Running', fmtNumber(d.running), 'running') : null,
      stat('Success rate', fmtPercent(rate), 'rate', h('span', { class: 'rate-bar', 'aria-hidden': 'true' }, h('span', { class: rate >= 0.95 ? 'good' : rate >= 0.8 ? 'ok' : 'bad', style: { width: `${clamp01(rate) * 100}%` } }))),
    ),
    h(
      'div',
      { class: 'ins-stats ins-durations', role: 'group', 'aria-label': 'Run duration' },
      ['p50', 'p95', 'p99', 'avg', 'max'].map((k) => stat(k === 'avg' ? 'Avg' : k === 'max' ? 'Max' : k, fmtDuration(dur[k]), `duration-${k}`)),
    ),
  );
}

function bottleneck(d) {
  const name = d.bottleneck;
  if (!name) return null;
  const s = (d.steps || []).find((x) => x.name === name);
  return h(
    'div',
    { class: 'ins-bottleneck', role: 'note', dataset: { step: name } },
    icon('flag'),
    h('span', null, h('strong', null, 'Bottleneck: '), h('code', { class: 'ins-bottleneck-name' }, name)),
    s
      ? h(
          'span',
          { class: 'muted' },
          `${fmtPercent(s.criticalShare)} of the time on the critical path · p95 ${fmtDuration(s.duration?.p95)}${s.errorRate ? ` · ${fmtPercent(s.errorRate)} errors` : ''}`,
        )
      : null,
  );
}

/** A share as a bar and a percentage. */
function shareBar(x, cls) {
  return h('span', { class: `share ${cls}` }, h('span', { class: 'share-track', 'aria-hidden': 'true' }, h('span', { class: 'share-fill', style: { width: `${clamp01(x) * 100}%` } })), h('span', { class: 'share-value' }, fmtPercent(x)));
}

function insightSteps(d, flow) {
  const rows = (d.steps || []).map((s) => {
    const dur = s.duration || {};
    const hot = s.name === d.bottleneck;
    const filter = new URLSearchParams({ flow, stepName: s.name });
    return h(
      'tr',
      { class: `ins-step${hot ? ' bottleneck' : ''}`, dataset: { step: s.name } },
      h(
        'th',
        { scope: 'row', class: 'ins-step-name' },
        h('a', { href: `#/traces?${filter}`, title: `Traces of ${flow} with the step ${s.name}` }, s.name),
        hot ? h('span', { class: 'badge b-bottleneck', title: 'The step with the largest share of the critical path' }, icon('flag'), 'Bottleneck') : null,
      ),
      h('td', { class: 'num', dataset: { col: 'count' }, title: `${s.count} execution${s.count === 1 ? '' : 's'} in ${s.runs} run${s.runs === 1 ? '' : 's'}` }, fmtNumber(s.count), s.runs !== s.count ? h('span', { class: 'muted' }, ` in ${fmtNumber(s.runs)}`) : null),
      h('td', { class: 'num', dataset: { col: 'p50' } }, fmtDuration(dur.p50)),
      h('td', { class: 'num', dataset: { col: 'p95' } }, fmtDuration(dur.p95)),
      h('td', { class: 'num', dataset: { col: 'p99' } }, fmtDuration(dur.p99)),
      h('td', { class: `num${s.errorRate > 0 ? ' ins-errors' : ''}`, dataset: { col: 'errorRate' } }, fmtPercent(s.errorRate)),
      h('td', { class: 'ins-share', dataset: { col: 'shareOfFlowTime' } }, shareBar(s.shareOfFlowTime, 'flow-time')),
      h('td', { class: 'ins-share', dataset: { col: 'criticalShare' } }, shareBar(s.criticalShare, 'critical')),
    );
  });
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'ops-table ins-table' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col' }, 'Step'),
          h('th', { scope: 'col', title: 'Executions (in how many runs, when it differs)' }, 'Count'),
          h('th', { scope: 'col' }, 'p50'),
          h('th', { scope: 'col' }, 'p95'),
          h('th', { scope: 'col' }, 'p99'),
          h('th', { scope: 'col' }, 'Errors'),
          h('th', { scope: 'col', title: 'The step’s time over the runs’ time' }, 'Share of flow time'),
          h('th', { scope: 'col', title: 'The step’s time on the critical path over the runs’ time' }, 'Critical share'),
        ),
      ),
      h('tbody', null, rows),
    ),
  );
}

function actionChips(actions) {
  return h(
    'span',
    { class: 'ins-actions' },
    Object.entries(actions || {}).map(([a, n]) => h('span', { class: 'chip ins-action', dataset: { action: a } }, h('span', null, a), ' ', h('strong', null, fmtNumber(n)))),
  );
}

function operations(d) {
  const ops = d.operations || {};
  const totals = KINDS.map(([k]) => Object.values(ops[k] || {}).reduce((a, b) => a + b, 0));
  const all = totals.reduce((a, b) => a + b, 0);
  if (!all) return h('p', { class: 'muted' }, 'No state, emit or stream operations in these runs.');
  return h(
    'div',
    { class: 'ins-ops' },
    h(
      'div',
      { class: 'ins-ops-bar', 'aria-hidden': 'true' },
      KINDS.map(([k], i) => (totals[i] ? h('span', { class: `k-${k}`, style: { flexGrow: String(totals[i]) }, title: `${k}: ${totals[i]}` }) : null)),
    ),
    h(
      'ul',
      { class: 'ins-ops-list' },
      KINDS.map(([k, label], i) =>
        h(
          'li',
          { class: 'ins-op', dataset: { kind: k, total: totals[i] } },
          h('span', { class: `kind-tag k-${k}` }, icon(k), label),
          h('span', { class: 'ins-op-total' }, fmtNumber(totals[i]), h('span', { class: 'muted' }, ` (${fmtPercent(totals[i] / all)})`)),
          totals[i] ? actionChips(ops[k]) : h('span', { class: 'muted' }, 'none'),
        ),
      ),
    ),
  );
}

function resources(d, flow) {
  const runs = d.runs || 0;
  const list = (key, title, items, filterKey) =>
    h(
      'div',
      { class: 'ins-res', dataset: { list: key } },
      h('h4', null, title, h('span', { class: 'count' }, String((items || []).length))),
      items && items.length
        ? h(
            'ul',
            { class: 'ins-res-list' },
            items.map((x) =>
              h(
                'li',
                { class: 'ins-res-item', dataset: { name: x.name } },
                filterKey ? h('a', { href: `#/traces?${new URLSearchParams({ flow, [filterKey]: x.name })}`, title: `Traces of ${flow} that used ${x.name}` }, h('code', null, x.name)) : h('code', null, x.name),
                actionChips(x.actions),
                h('span', { class: 'muted small ins-res-runs' }, `${fmtNumber(x.runs)}/${fmtNumber(runs)} runs`),
              ),
            ),
          )
        : h('p', { class: 'muted small' }, 'None'),
    );
  return h('div', { class: 'ins-res-grid' }, list('stateKeys', 'State keys', d.stateKeys, 'stateKey'), list('streams', 'Streams', d.streams, null), list('topics', 'Topics', d.topics, 'topic'));
}

function llmUsage(d) {
  if (!d.llmCalls) return h('p', { class: 'muted' }, 'No LLM calls in these runs.');
  const models = d.models || [];
  return h(
    'div',
    { class: 'ins-llm' },
    h(
      'div',
      { class: 'ins-stats', role: 'group', 'aria-label': 'LLM usage' },
      stat('Calls', fmtNumber(d.llmCalls), 'llmCalls'),
      stat('Tokens', fmtNumber(d.totalTokens), 'totalTokens'),
      stat('Cost', fmtCost(d.totalCost) ?? '—', 'totalCost'),
      stat('Tokens per run', fmtNumber(round(d.tokensPerRun, 1)), 'tokensPerRun'),
      stat('Cost per run', fmtCost(d.costPerRun) ?? '—', 'costPerRun'),
    ),
    models.length
      ? h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'ops-table ins-models' },
            h('thead', null, h('tr', null, ['Provider', 'Model', 'Calls', 'Input tokens', 'Output tokens', 'Cost'].map((x) => h('th', { scope: 'col' }, x)))),
            h(
              'tbody',
              null,
              models.map((m) =>
                h(
                  'tr',
                  { class: 'ins-model', dataset: { model: m.model || '' } },
                  h('td', null, m.provider || '—'),
                  h('th', { scope: 'row' }, h('code', null, m.model || '—')),
                  h('td', { class: 'num' }, fmtNumber(m.calls)),
                  h('td', { class: 'num' }, fmtNumber(m.inputTokens)),
                  h('td', { class: 'num' }, fmtNumber(m.outputTokens)),
                  h('td', { class: 'num' }, fmtCost(m.cost) ?? '—'),
                ),
              ),
            ),
          ),
        )
      : null,
  );
}

function clamp01(x) {
  return Number.isFinite(x) ? Math.max(0, Math.min(1, x)) : 0;
}

function round(x, digits) {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Unix ms → the value of a datetime-local input, in local time, to the millisecond. */
function toLocalInput(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** A datetime-local value (local time) → unix ms; null when empty, NaN when unparsable. */
function fromLocalInput(v) {
  if (!v) return null;
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? t : NaN;
}

// ---------------------------------------------------------------- compare
//
// `GET /api/compare` matches the steps of two traces by name and occurrence: a header with both
// traces and the duration delta, a table of the matched steps (A and B durations, delta, status
// change, ops delta) and the steps only one of them has. The trace list picks the two (traces.js,
// "Compare"). A positive delta means B took longer: red; negative: green.

export class ComparePage {
  constructor(main, ctx) {
    this.ctx = ctx;
    this.a = null;
    this.b = null;
    this.refresh = coalesce(() => this.load({ quiet: true }), 500);
    this.data = null;
    this.visible = false;
    this.body = h('div', { class: 'cmp-body', 'aria-busy': 'false' });
    this.el = h('div', { class: 'page compare-page', hidden: true }, h('div', { class: 'cmp-scroll' }, this.body));
    main.appendChild(this.el);
  }

  title() {
    return this.data ? `Compare ${shortId(this.a)} / ${shortId(this.b)}` : 'Compare';
  }

  show() {
    this.visible = true;
    this.el.hidden = false;
    this.stale = true;
  }

  hide() {
    this.visible = false;
    this.el.hidden = true;
    this.refresh.cancel();
  }

  resync() {
    if (this.a && this.b) this.load({ quiet: true });
  }

  setPolling(on) {
    clearInterval(this.pollTimer);
    // Only a running trace can still change.
    if (on) this.pollTimer = setInterval(() => this.visible && this.running() && this.load({ quiet: true }), 3000);
  }

  running() {
    const d = this.data;
    return !!d && (d.a?.status === 'running' || d.b?.status === 'running');
  }

  route(route) {
    const a = route.params.get('a');
    const b = route.params.get('b');
    if (a === this.a && b === this.b && !this.stale && (this.data || this.inflight)) return;
    this.stale = false;
    const same = a === this.a && b === this.b;
    this.a = a;
    this.b = b;
    if (!same) this.data = null;
    this.load({ quiet: same && !!this.data });
  }

  onLive(type, data) {
    if (!this.visible || !data || !type.startsWith('trace.')) return;
    if (data.id === this.a || data.id === this.b) this.refresh.schedule();
  }

  async load({ quiet = false } = {}) {
    this.abort?.abort();
    const { a, b } = this;
    if (!a || !b) {
      this.data = null;
      setChildren(
        this.body,
        h(
          'div',
          { class: 'empty cmp-missing' },
          h('strong', null, 'Pick two traces to compare'),
          h('p', { class: 'muted' }, 'In the trace list, turn on ', h('strong', null, 'Compare'), ' and tick two traces.'),
          h('a', { class: 'btn btn-xs', href: '#/traces' }, 'Go to the trace list'),
        ),
      );
      return;
    }
    const ctrl = (this.abort = new AbortController());
    if (!quiet) setChildren(this.body, h('div', { class: 'pane-msg' }, h('div', { class: 'spinner', 'aria-label': 'Loading' })));
    this.body.setAttribute('aria-busy', 'true');
    this.inflight = true;
    try {
      const d = await api.compare(a, b, { signal: ctrl.signal });
      if (ctrl.signal.aborted || a !== this.a || b !== this.b) return;
      this.data = d;
      this.render();
      if (this.visible) document.title = `${this.title()} · flowscope`;
    } catch (e) {
      if (e.name === 'AbortError' || a !== this.a || b !== this.b) return;
      this.data = null;
      setChildren(
        this.body,
        h(
          'div',
          { class: 'empty cmp-error' },
          h('strong', null, e.status === 404 ? 'A trace to compare is not there' : e.status === 400 ? 'These are not two trace ids' : 'Cannot compare the traces'),
          h('p', { class: 'muted' }, e.status === 404 ? 'It may have been evicted from memory (the agent keeps the most recent traces).' : e.message),
          h('a', { class: 'btn btn-xs', href: '#/traces' }, 'Back to the list'),
        ),
      );
    } finally {
      if (this.abort === ctrl) {
        this.inflight = false;
        this.body.setAttribute('aria-busy', 'false');
      }
    }
  }

  swap() {
    this.ctx.navigate({ view: 'compare', params: { a: this.b, b: this.a } });
  }

  render() {
    const d = this.data;
    const steps = d.steps || [];
    const onlyA = d.onlyInA || [];
    const onlyB = d.onlyInB || [];
    const now = Date.now();
    const head = h(
      'div',
      { class: 'cmp-head' },
      h(
        'div',
        { class: 'tl-title-row' },
        h('a', { class: 'btn btn-ghost btn-icon cmp-back', href: '#/traces', title: 'Back to the trace list', 'aria-label': 'Back to the trace list' }, icon('back')),
        icon('compare', 'ins-icon'),
        h('h2', { class: 'tl-title' }, 'Compare traces'),
        h('span', { class: 'spacer' }),
        h('button', { class: 'btn btn-ghost btn-xs cmp-swap', type: 'button', title: 'Swap A and B', onclick: () => this.swap() }, '⇄ Swap'),
      ),
      h('div', { class: 'cmp-sides' }, side('a', d.a, now), side('b', d.b, now)),
      h(
        'div',
        { class: 'meta-row cmp-summary' },
        cmpMeta('Duration', delta(d.durationDelta, d.a?.duration), 'duration'),
        cmpMeta(
          'Status',
          d.statusChanged
            ? h('span', { class: 'cmp-status changed' }, statusPill(d.a?.status), h('span', { class: 'cmp-arrow', 'aria-label': 'changed to' }, '→'), statusPill(d.b?.status))
            : h('span', { class: 'cmp-status' }, 'unchanged · ', d.a?.status),
          'status',
        ),
        cmpMeta('Steps', `${fmtNumber(steps.length)} matched · ${fmtNumber(onlyA.length)} only in A · ${fmtNumber(onlyB.length)} only in B`, 'steps'),
      ),
      d.a && d.b && d.a.flowName !== d.b.flowName
        ? h('p', { class: 'cmp-note', role: 'note' }, icon('error'), `Different flows (${d.a.flowName} and ${d.b.flowName}): steps are matched by name.`)
        : null,
    );
    setChildren(
      this.body,
      head,
      h('section', { class: 'ins-section cmp-steps', 'aria-label': 'Matched steps' }, h('h3', { class: 'ins-h' }, 'Matched steps', h('span', { class: 'count' }, String(steps.length))), steps.length ? compareSteps(d) : h('p', { class: 'muted' }, 'The traces have no step in common.')),
      h('div', { class: 'cmp-only-grid' }, onlyList('a', 'Only in A', onlyA, d.a), onlyList('b', 'Only in B', onlyB, d.b)),
    );
  }
}

function cmpMeta(label, value, key) {
  return h('div', { class: 'meta', dataset: { meta: key } }, h('span', { class: 'meta-label' }, label), h('span', { class: 'meta-value' }, value));
}

function side(which, t, now) {
  if (!t) return null;
  const label = which.toUpperCase();
  return h(
    'div',
    { class: `cmp-side s-${t.status}`, dataset: { side: which, traceId: t.id } },
    h('span', { class: `cmp-letter l-${which}`, 'aria-label': `Trace ${label}` }, label),
    h(
      'div',
      { class: 'cmp-side-main' },
      h(
        'div',
        { class: 'cmp-side-top' },
        h('a', { class: 'cmp-flow', href: `#/flows/${encodeURIComponent(t.flowName)}/insights`, title: `Insights for the flow ${t.flowName}` }, t.flowName),
        statusPill(t.status),
        h('span', { class: 'spacer' }),
        h('span', { class: 'cmp-dur mono' }, t.duration != null ? fmtDuration(t.duration) : t.status === 'running' ? 'running…' : '—'),
      ),
      h(
        'div',
        { class: 'cmp-side-sub muted small' },
        h('a', { class: 'mono', href: `#/traces/${t.id}`, title: `Open trace ${t.id}` }, shortId(t.id)),
        ' · ',
        h('span', { title: fmtDateTime(t.startTime) }, fmtRelative(t.startTime, now)),
      ),
    ),
  );
}

/** A duration delta (B − A) with its share of A. */
function delta(ms, base) {
  const pct = ms != null && base > 0 ? Math.round((ms / base) * 100) : null;
  return h(
    'span',
    { class: `delta ${deltaClass(ms)}`, title: ms == null ? 'Not comparable (one side has no duration)' : 'B − A' },
    h('span', { class: 'delta-value' }, fmtDelta(ms)),
    pct !== null && pct !== 0 ? h('span', { class: 'delta-pct' }, ` (${pct > 0 ? '+' : '−'}${Math.abs(pct)}%)`) : null,
  );
}

function stepLink(traceId, x) {
  if (!x) return h('span', { class: 'muted' }, '—');
  return h(
    'a',
    { class: 'cmp-step-link', href: `#/traces/${traceId}?step=${x.id}`, title: `${x.status} · ${fmtNumber(x.ops)} op${x.ops === 1 ? '' : 's'} · open the step` },
    statusDot(x.status),
    h('span', { class: 'mono' }, x.duration != null ? fmtDuration(x.duration) : '—'),
  );
}

function compareSteps(d) {
  const steps = d.steps || [];
  const max = Math.max(1e-9, ...steps.flatMap((s) => [s.a?.duration || 0, s.b?.duration || 0]));
  const bar = (x, cls) => h('span', { class: `cmp-bar ${cls}`, style: { width: `${Math.max(0, Math.min(1, (x?.duration || 0) / max)) * 100}%` } });
  const rows = steps.map((s) =>
    h(
      'tr',
      { class: `cmp-row${s.statusChanged ? ' status-changed' : ''}`, dataset: { name: s.name, occurrence: s.occurrence } },
      h('th', { scope: 'row', class: 'cmp-name' }, s.name),
      h('td', { class: 'num', title: `Occurrence ${s.occurrence + 1} of ${s.name} in each trace` }, `#${s.occurrence + 1}`),
      h('td', { class: 'num', dataset: { col: 'a' } }, stepLink(d.a.id, s.a)),
      h('td', { class: 'num', dataset: { col: 'b' } }, stepLink(d.b.id, s.b)),
      h('td', { class: 'num', dataset: { col: 'delta' } }, delta(s.durationDelta, s.a?.duration)),
      h(
        'td',
        { dataset: { col: 'status' } },
        s.statusChanged
          ? h('span', { class: 'cmp-status changed' }, statusPill(s.a?.status), h('span', { class: 'cmp-arrow', 'aria-label': 'changed to' }, '→'), statusPill(s.b?.status))
          : h('span', { class: 'cmp-status muted' }, s.a?.status || '—'),
      ),
      h(
        'td',
        { class: `num ops-delta${s.opsDelta ? ' changed' : ''}`, dataset: { col: 'ops' }, title: `A: ${fmtNumber(s.a?.ops ?? 0)} · B: ${fmtNumber(s.b?.ops ?? 0)} operations` },
        fmtSigned(s.opsDelta),
      ),
      h('td', { class: 'cmp-bars', 'aria-hidden': 'true' }, bar(s.a, 'a'), bar(s.b, 'b')),
    ),
  );
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'ops-table cmp-table' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col' }, 'Step'),
          h('th', { scope: 'col', title: 'Occurrence of the step name in the trace' }, '#'),
          h('th', { scope: 'col' }, 'A'),
          h('th', { scope: 'col' }, 'B'),
          h('th', { scope: 'col', title: 'B − A' }, 'Δ'),
          h('th', { scope: 'col' }, 'Status'),
          h('th', { scope: 'col', title: 'Operations in B − in A' }, 'Ops Δ'),
          h('th', { scope: 'col', class: 'cmp-bars' }, h('span', { class: 'cmp-key a' }, 'A'), ' ', h('span', { class: 'cmp-key b' }, 'B')),
        ),
      ),
      h('tbody', null, rows),
    ),
  );
}

function onlyList(which, title, items, t) {
  return h(
    'section',
    { class: `ins-section cmp-only`, dataset: { side: which }, 'aria-label': title },
    h('h3', { class: 'ins-h' }, h('span', { class: `cmp-letter small l-${which}`, 'aria-hidden': 'true' }, which.toUpperCase()), title, h('span', { class: 'count' }, String(items.length))),
    items.length
      ? h(
          'ul',
          { class: 'cmp-only-list' },
          items.map((x) =>
            h(
              'li',
              { class: 'cmp-only-item', dataset: { name: x.name, occurrence: x.occurrence } },
              h(
                'a',
                { href: `#/traces/${t.id}?step=${x.id}`, title: `Open ${x.name} in trace ${which.toUpperCase()}` },
                statusDot(x.status),
                h('span', { class: 'cmp-only-name' }, x.name),
                x.occurrence ? h('span', { class: 'muted' }, ` #${x.occurrence + 1}`) : null,
              ),
              h('span', { class: 'spacer' }),
              h('span', { class: 'muted small' }, `${fmtNumber(x.ops)} op${x.ops === 1 ? '' : 's'}`),
              h('span', { class: 'mono cmp-only-dur' }, x.duration != null ? fmtDuration(x.duration) : '—'),
            ),
          ),
        )
      : h('p', { class: 'muted small' }, 'None'),
  );
}
