// Live flow status: per flow, its steps with running/completed/failed counts and live stats
// (active traces, average duration, success rate). Updated by `flow.status` events.

import { api } from './api.js';
import { h, icon, fmtDuration, fmtNumber, fmtPercent, rafThrottle, setChildren } from './util.js';

export class FlowsPage {
  constructor(main, ctx) {
    this.ctx = ctx;
    this.flows = new Map();
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
    try {
      const { flows } = await api.flows();
      this.flows = new Map((flows || []).map((f) => [f.flowName, f]));
      this.error = null;
    } catch (e) {
      this.error = e;
    }
    this.render();
  }

  onLive(type, data) {
    if (type !== 'flow.status' || !data) return;
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

function stat(label, value, key) {
  return h('div', { class: 'stat', dataset: { stat: key } }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value));
}
