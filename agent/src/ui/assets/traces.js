// Traces page: the filterable trace list (≈1/3) and the selected trace's timeline (≈2/3) with
// step details below it. "Compare" puts the list in a picking mode (a checkbox per trace, two at
// most) that opens `#/compare?a=…&b=…` (ComparePage in flows.js), the older trace as A.

import { api, ApiError, ChangesDuringLoad, getToken, openFile } from './api.js';
import {
  h,
  icon,
  fmtDuration,
  fmtRelative,
  fmtDateTime,
  fmtClock,
  fmtNumber,
  fmtCost,
  shortId,
  statusDot,
  statusPill,
  copyButton,
  debounce,
  rafThrottle,
  setChildren,
  truncatedText,
  serviceChip,
  serviceHue,
  servicesOf,
} from './util.js';
import { Timeline, traceServices } from './timeline.js';
import { renderStepDetails, errorBlock, renderTraceExtras } from './details.js';

const perf = (window.__flowscope = window.__flowscope || {});

// URL parameter ↔ API filter. `step` in the URL selects a step (span id), so the step-name
// filter travels as `stepName`.
const FILTERS = [
  { url: 'q', api: 'q' },
  { url: 'flow', api: 'flow' },
  { url: 'service', api: 'service' },
  { url: 'status', api: 'status' },
  { url: 'stepName', api: 'step' },
  { url: 'stateKey', api: 'stateKey' },
  { url: 'topic', api: 'topic' },
  { url: 'correlationId', api: 'correlationId' },
  { url: 'minDuration', api: 'minDuration' },
];
const MAX_ITEMS = 1000;
// Full steps fetched on selection, kept for this many traces (most recently used) …
const STEP_CACHE_TRACES = 8;
// … and this many steps per trace.
const STEP_CACHE_STEPS = 300;
// The header's LLM token and cost totals need every LLM event, which the timeline view does not
// carry: traces up to this size are fetched in full for them after the timeline is drawn.
const TOTALS_MAX_STEPS = 500;

function filtersFromParams(params) {
  const f = {};
  for (const { url, api: k } of FILTERS) {
    const v = params.get(url);
    if (v) f[k] = v;
  }
  return f;
}

function filterParams(f) {
  const p = new URLSearchParams();
  for (const { url, api: k } of FILTERS) if (f[k]) p.set(url, f[k]);
  return p;
}

const sameFilters = (a, b) => filterParams(a).toString() === filterParams(b).toString();

const newestFirst = (a, b) => b.startTime - a.startTime || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

export class TracesPage {
  constructor(main, ctx) {
    this.ctx = ctx;
    this.filters = {};
    this.items = [];
    this.byId = new Map();
    this.itemEls = new Map();
    this.nextCursor = null;
    this.selectedId = null;
    this.stepId = null;
    this.trace = null; // the open trace, timeline view (steps without ops/events)
    this.stepCache = new Map(); // trace id → Map(span id → {promise, step}), see fetchStep
    this.llmTotals = null; // {id, calls, tokens, cost, hasCost} of the open trace, see loadLlmTotals
    this.picking = false; // the list shows a checkbox per trace, to pick two to compare
    this.picks = []; // picked trace ids, at most two, in the order picked
    this.known = { flows: new Set(), services: new Set(), steps: new Set(), stateKeys: new Set(), topics: new Set(), cids: new Set() };
    this.loaded = false;
    this.visible = false;
    this.renderListSoon = rafThrottle(() => this.renderList());
    this.reloadQuiet = debounce(() => this.reloadList({ quiet: true }), 250);
    this.liveDuringLoad = new ChangesDuringLoad(MAX_ITEMS);
    this.build(main);
  }

  title() {
    return this.trace ? `${this.trace.flowName} ${shortId(this.trace.id)}` : 'Traces';
  }

  // ---------------------------------------------------------------- layout

  build(main) {
    this.search = h('input', {
      type: 'search',
      class: 'input search-input',
      name: 'q',
      placeholder: 'Search id, flow, step, correlation id…',
      'aria-label': 'Search traces',
      autocomplete: 'off',
      spellcheck: 'false',
    });
    this.search.addEventListener('input', debounce(() => this.setFilter('q', this.search.value.trim()), 200));
    this.search.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        this.search.blur();
        e.preventDefault();
      } else if (e.key === 'Enter' || e.key === 'ArrowDown') {
        this.search.blur();
        if (e.key === 'ArrowDown') this.moveTrace(1);
        e.preventDefault();
      }
    });

    this.filterToggle = h(
      'button',
      { class: 'btn btn-ghost filter-toggle', type: 'button', 'aria-expanded': 'true', title: 'Show or hide filters' },
      icon('filter'),
      h('span', null, 'Filters'),
      h('span', { class: 'filter-count', hidden: true }),
    );
    this.filterToggle.addEventListener('click', () => this.toggleFilters());

    // Status: a segmented control.
    this.statusSeg = h(
      'div',
      { class: 'seg', role: 'radiogroup', 'aria-label': 'Status' },
      ['', 'running', 'completed', 'failed'].map((s) =>
        h(
          'button',
          { type: 'button', role: 'radio', class: 'seg-btn', dataset: { status: s }, onclick: () => this.setFilter('status', s) },
          s ? h('span', { class: `status-dot s-${s}` }) : null,
          s ? s[0].toUpperCase() + s.slice(1) : 'All',
        ),
      ),
    );
    this.flowSelect = h('select', { class: 'input', name: 'flow', 'aria-label': 'Flow' }, h('option', { value: '' }, 'All flows'));
    this.flowSelect.addEventListener('change', () => this.setFilter('flow', this.flowSelect.value));
    // Services: those seen in the list and live events (a trace counts for every service it crossed).
    this.serviceSelect = h('select', { class: 'input', name: 'service', 'aria-label': 'Service' }, h('option', { value: '' }, 'All services'));
    this.serviceSelect.addEventListener('change', () => this.setFilter('service', this.serviceSelect.value));

    const textFilter = (key, label, placeholder, knownKey) => {
      const listId = `dl-${key}`;
      const input = h('input', {
        class: 'input',
        name: key,
        placeholder,
        'aria-label': label,
        list: listId,
        autocomplete: 'off',
        spellcheck: 'false',
        ...(key === 'minDuration' ? { type: 'number', min: '0', inputmode: 'numeric' } : { type: 'text' }),
      });
      const dl = h('datalist', { id: listId });
      const apply = () => this.setFilter(key, input.value.trim());
      input.addEventListener('input', debounce(apply, 350));
      input.addEventListener('change', apply);
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') apply();
        if (e.key === 'Escape') input.blur();
      });
      if (knownKey)
        input.addEventListener('focus', () => {
          this.learnKeys();
          fillDatalist(dl, this.known[knownKey]);
        });
      if (knownKey === 'steps') input.addEventListener('focus', () => this.loadFlows(), { once: true });
      return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input, dl);
    };
    this.filterInputs = {
      step: textFilter('step', 'Step', 'step name', 'steps'),
      stateKey: textFilter('stateKey', 'State key', 'e.g. user.email', 'stateKeys'),
      topic: textFilter('topic', 'Topic', 'e.g. user.validated', 'topics'),
      correlationId: textFilter('correlationId', 'Correlation id', 'e.g. thread-1', 'cids'),
      minDuration: textFilter('minDuration', 'Slower than (ms)', 'ms', null),
    };
    this.clearBtn = h('button', { class: 'btn btn-ghost btn-xs clear-filters', type: 'button', onclick: () => this.clearFilters() }, 'Clear filters');
    this.filterPanel = h(
      'div',
      { class: 'filters', id: 'trace-filters' },
      h(
        'div',
        { class: 'filter-grid' },
        h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Flow'), this.flowSelect),
        h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Service'), this.serviceSelect),
        Object.values(this.filterInputs),
      ),
      this.filterError = h('div', { class: 'filter-error', role: 'alert', hidden: true }),
    );
    this.filterToggle.setAttribute('aria-controls', 'trace-filters');

    this.pickBtn = h(
      'button',
      {
        class: 'btn btn-ghost btn-xs pick-toggle',
        type: 'button',
        'aria-pressed': 'false',
        'aria-controls': 'compare-bar',
        title: 'Pick two traces to compare them step by step (x picks the open trace)',
        onclick: () => this.setPicking(!this.picking),
      },
      icon('compare'),
      h('span', null, 'Compare'),
    );
    this.listMeta = h('div', { class: 'list-meta' }, h('span', { class: 'list-count' }, ''), h('span', { class: 'spacer' }), this.clearBtn, this.pickBtn);
    this.compareHint = h('span', { class: 'compare-hint', role: 'status' });
    this.compareGo = h('button', { class: 'btn btn-xs compare-go', type: 'button', disabled: true, onclick: () => this.openCompare() }, icon('compare'), h('span', null, 'Compare'));
    this.compareBar = h(
      'div',
      { class: 'compare-bar', id: 'compare-bar', role: 'group', 'aria-label': 'Compare traces', hidden: true },
      this.compareHint,
      h('span', { class: 'compare-actions' }, this.compareGo, h('button', { class: 'btn btn-ghost btn-xs compare-cancel', type: 'button', onclick: () => this.setPicking(false) }, 'Cancel')),
    );
    this.list = h('ul', { class: 'trace-list', role: 'listbox', 'aria-label': 'Traces', tabindex: '-1' });
    this.list.addEventListener('click', (e) => {
      if (e.target.closest('.ti-pick')) return; // the compare checkbox, not the trace
      const li = e.target.closest('.trace-item');
      if (li) this.openTrace(li.dataset.traceId);
    });
    this.list.addEventListener('change', (e) => {
      const box = e.target.closest('.ti-pick-box');
      const li = box && box.closest('.trace-item');
      if (li) this.togglePick(li.dataset.traceId, box.checked);
    });
    this.moreBtn = h('button', { class: 'btn load-more', type: 'button', hidden: true, onclick: () => this.loadMore() }, 'Load older traces');
    this.listBody = h('div', { class: 'list-scroll' }, this.list, this.moreBtn, (this.listEmpty = h('div', { class: 'empty', hidden: true })));

    this.listPane = h(
      'aside',
      { class: 'list-pane', 'aria-label': 'Trace list' },
      h('div', { class: 'list-toolbar' }, h('div', { class: 'search-box' }, icon('search'), this.search), this.filterToggle),
      h('div', { class: 'status-bar' }, this.statusSeg),
      this.filterPanel,
      this.listMeta,
      this.compareBar,
      this.listBody,
      h('div', { class: 'list-foot muted' }, h('kbd', null, 'j'), h('kbd', null, 'k'), ' move · ', h('kbd', null, '/'), ' search · ', h('kbd', null, '?'), ' help'),
    );

    // Right side.
    this.header = h('div', { class: 'tl-header' });
    this.tlRoot = h('div', { class: 'timeline' });
    this.splitter = h('div', { class: 'splitter', role: 'separator', 'aria-orientation': 'horizontal', title: 'Drag to resize', tabindex: '-1' });
    this.details = h('div', { class: 'details', 'aria-label': 'Step details', role: 'region' });
    this.detailsWrap = h('div', { class: 'details-wrap', hidden: true }, this.splitter, this.details);
    this.paneEmpty = h(
      'div',
      { class: 'pane-empty' },
      h('div', { class: 'pane-empty-art', 'aria-hidden': 'true' }, h('span'), h('span'), h('span')),
      h('h2', null, 'Select a trace'),
      h('p', { class: 'muted' }, 'Pick a trace on the left to see its steps on a timeline. New traces appear live as your app runs.'),
      h('p', { class: 'muted small' }, h('kbd', null, 'j'), '/', h('kbd', null, 'k'), ' to move through the list, ', h('kbd', null, 'Enter'), ' to jump into the timeline.'),
    );
    this.paneBody = h('div', { class: 'tl-body', hidden: true }, this.header, this.tlRoot, this.detailsWrap);
    this.paneMsg = h('div', { class: 'pane-msg', hidden: true });
    this.pane = h('section', { class: 'timeline-pane', 'aria-label': 'Trace timeline' }, this.paneEmpty, this.paneMsg, this.paneBody);

    this.el = h('div', { class: 'page traces-page', hidden: true }, this.listPane, this.pane);
    main.appendChild(this.el);

    this.timeline = new Timeline(this.tlRoot, {
      onSelect: (id) => this.openStep(id === this.stepId ? null : id),
      onRendered: (traceId, n) => this.rendered(traceId, n),
    });
    this.timeline.scroll.addEventListener('keydown', (e) => this.onTimelineKey(e));
    this.setupSplitter();

    const open = localStorage.getItem('fs.filtersOpen');
    this.setFiltersOpen(open === '1');
  }

  setupSplitter() {
    const saved = Number(localStorage.getItem('fs.detailsHeight'));
    if (saved > 80) this.detailsWrap.style.setProperty('--details-h', `${saved}px`);
    this.splitter.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      this.splitter.setPointerCapture(e.pointerId);
      const bodyRect = this.paneBody.getBoundingClientRect();
      const move = (ev) => {
        const hgt = Math.max(120, Math.min(bodyRect.bottom - ev.clientY, bodyRect.height - 160));
        this.detailsWrap.style.setProperty('--details-h', `${hgt}px`);
      };
      const up = () => {
        this.splitter.removeEventListener('pointermove', move);
        this.splitter.removeEventListener('pointerup', up);
        const hgt = parseInt(this.detailsWrap.style.getPropertyValue('--details-h'), 10);
        if (hgt) localStorage.setItem('fs.detailsHeight', String(hgt));
      };
      this.splitter.addEventListener('pointermove', move);
      this.splitter.addEventListener('pointerup', up);
    });
  }

  toggleFilters() {
    this.setFiltersOpen(this.filterPanel.hidden);
  }

  setFiltersOpen(open) {
    this.filterPanel.hidden = !open;
    this.filterToggle.setAttribute('aria-expanded', String(open));
    localStorage.setItem('fs.filtersOpen', open ? '1' : '0');
  }

  // ---------------------------------------------------------------- page lifecycle

  show() {
    this.visible = true;
    this.el.hidden = false;
    this.timer = setInterval(() => this.tick(), 1000);
    if (this.loaded) this.reloadList({ quiet: true });
    // Flow names for the filter come from the list and live events; the full flow status is
    // only fetched when idle, so it never competes with the first paint.
    clearTimeout(this.flowsTimer);
    this.flowsTimer = setTimeout(() => this.loadFlows(), 1500);
  }

  hide() {
    this.visible = false;
    this.el.hidden = true;
    clearInterval(this.timer);
  }

  resync() {
    this.stepCache.clear(); // events may have been missed
    this.reloadList({ quiet: true });
    if (this.selectedId) this.refreshTrace();
  }

  setPolling(on) {
    clearInterval(this.pollTimer);
    this.pollTimer = 0;
    if (on)
      this.pollTimer = setInterval(() => {
        if (!this.visible) return;
        this.reloadList({ quiet: true });
        if (this.selectedId) this.refreshTrace();
      }, 3000);
  }

  async loadFlows() {
    try {
      const { flows } = await api.flows();
      for (const f of flows || []) {
        this.known.flows.add(f.flowName);
        for (const s of f.steps || []) this.known.steps.add(s.name);
      }
      this.syncFlowOptions();
    } catch {
      /* /api/flows not available: flows come from the list */
    }
  }

  route(route) {
    const filters = filtersFromParams(route.params);
    const filtersChanged = !this.loaded || !sameFilters(filters, this.filters);
    this.filters = filters;
    this.syncFilterInputs();
    if (filtersChanged) this.reloadList();
    const id = route.id;
    const stepId = route.params.get('step');
    this.el.classList.toggle('has-selection', !!id);
    if (id !== this.selectedId) {
      this.selectedId = id;
      this.stepId = stepId;
      this.markSelected();
      if (id) this.loadTrace(id);
      else this.showEmpty();
    } else if (stepId !== this.stepId) {
      this.stepId = stepId;
      this.applyStep();
    }
  }

  /** The current route params with changes applied. */
  params(changes = {}) {
    const p = filterParams(this.filters);
    if (this.stepId) p.set('step', this.stepId);
    for (const [k, v] of Object.entries(changes)) {
      if (v) p.set(k, v);
      else p.delete(k);
    }
    return p;
  }

  openTrace(id, { replace = false } = {}) {
    if (!id) return;
    const p = filterParams(this.filters);
    this.ctx.navigate({ view: 'traces', id, params: p }, { replace });
  }

  openStep(stepId, { replace = false } = {}) {
    if (!this.selectedId) return;
    // While another trace loads, the timeline still shows the previous one: its steps are not
    // steps of the selected trace.
    if (stepId && (!this.trace || this.trace.id !== this.selectedId)) return;
    const p = filterParams(this.filters);
    if (stepId) p.set('step', stepId);
    this.ctx.navigate({ view: 'traces', id: this.selectedId, params: p }, { replace });
  }

  closeTrace() {
    this.ctx.navigate({ view: 'traces', params: filterParams(this.filters) });
  }

  // ---------------------------------------------------------------- filters

  setFilter(key, value) {
    const f = { ...this.filters };
    if (value) f[key] = value;
    else delete f[key];
    if (sameFilters(f, this.filters)) return;
    const p = filterParams(f);
    if (this.stepId) p.set('step', this.stepId);
    this.ctx.navigate({ view: 'traces', id: this.selectedId, params: p }, { replace: true });
  }

  clearFilters() {
    const p = new URLSearchParams();
    if (this.stepId) p.set('step', this.stepId);
    this.ctx.navigate({ view: 'traces', id: this.selectedId, params: p }, { replace: true });
  }

  syncFilterInputs() {
    const f = this.filters;
    if (document.activeElement !== this.search) this.search.value = f.q || '';
    for (const [k, label] of Object.entries(this.filterInputs)) {
      const input = label.querySelector('input');
      if (document.activeElement !== input) input.value = f[k] || '';
    }
    if (f.flow) this.known.flows.add(f.flow);
    if (f.service) this.known.services.add(f.service);
    this.syncFlowOptions();
    for (const b of this.statusSeg.children) {
      const on = (f.status || '') === b.dataset.status;
      b.classList.toggle('on', on);
      b.setAttribute('aria-checked', String(on));
    }
    const n = FILTERS.filter(({ api: k }) => k !== 'q' && k !== 'status' && f[k]).length;
    const count = this.filterToggle.querySelector('.filter-count');
    count.hidden = n === 0;
    count.textContent = String(n);
    this.clearBtn.hidden = Object.keys(f).length === 0;
    if (n && this.filterPanel.hidden) this.setFiltersOpen(true);
  }

  syncFlowOptions() {
    const flows = [...this.known.flows].sort();
    const have = [...this.flowSelect.options].map((o) => o.value).slice(1);
    if (have.join('\n') !== flows.join('\n')) {
      setChildren(this.flowSelect, h('option', { value: '' }, 'All flows'), flows.map((f) => h('option', { value: f }, f)));
    }
    this.flowSelect.value = this.filters.flow || '';
    const services = [...this.known.services].sort();
    const haveSvc = [...this.serviceSelect.options].map((o) => o.value).slice(1);
    if (haveSvc.join('\n') !== services.join('\n')) {
      setChildren(this.serviceSelect, h('option', { value: '' }, 'All services'), services.map((x) => h('option', { value: x }, x)));
    }
    this.serviceSelect.value = this.filters.service || '';
  }

  /**
   * Whether a summary passes the current filters: true, false, or null when only the server knows.
   * `stepNames` holds at most 50 names (`stepNamesTruncated` when there were more), so a step
   * name missing from a cut list is a "maybe", not a "no".
   */
  matches(s) {
    const f = this.filters;
    let maybe = !!(f.stateKey || f.topic);
    const names = s.stepNames || [];
    if (f.flow && s.flowName !== f.flow) return false;
    // Like the server: a trace matches a service when any of its segments ran there.
    if (f.service && !servicesOf(s).includes(f.service)) return false;
    if (f.status && s.status !== f.status) return false;
    if (f.step && !names.includes(f.step)) {
      if (!s.stepNamesTruncated) return false;
      maybe = true;
    }
    if (f.correlationId && s.correlationId !== f.correlationId) return false;
    if (f.minDuration && !(s.duration >= Number(f.minDuration))) return false;
    if (f.q) {
      const q = f.q.toLowerCase();
      const hit = (x) => typeof x === 'string' && x.toLowerCase().includes(q);
      if (!(s.id.includes(q) || hit(s.flowName) || hit(s.correlationId) || names.some(hit))) {
        if (!s.stepNamesTruncated) return false;
        maybe = true;
      }
    }
    return maybe ? null : true;
  }

  // ---------------------------------------------------------------- compare picking

  /** Turns the list's picking mode on or off (off forgets the picks). */
  setPicking(on) {
    this.picking = !!on;
    if (!this.picking) this.picks = [];
    this.pickBtn.setAttribute('aria-pressed', String(this.picking));
    this.pickBtn.classList.toggle('on', this.picking);
    this.compareBar.hidden = !this.picking;
    this.list.classList.toggle('picking', this.picking);
    this.syncPicks();
  }

  /** Picks or unpicks a trace; a third pick replaces the oldest one. */
  togglePick(id, on) {
    if (!id) return;
    const i = this.picks.indexOf(id);
    if (on && i < 0) {
      if (this.picks.length >= 2) this.picks.shift();
      this.picks.push(id);
    } else if (!on && i >= 0) this.picks.splice(i, 1);
    if (!this.picking) this.setPicking(true);
    else this.syncPicks();
  }

  /** The checkboxes, the compare bar and the header's Compare button, after a change of picks. */
  syncPicks() {
    for (const [id, li] of this.itemEls) this.syncPick(li, id);
    const n = this.picks.length;
    const name = (id) => {
      const t = this.byId.get(id) || (this.trace && this.trace.id === id ? this.trace : null);
      return t ? `${t.flowName} ${shortId(id)}` : shortId(id);
    };
    this.compareHint.textContent = n === 0 ? 'Pick two traces to compare.' : n === 1 ? `Picked ${name(this.picks[0])}: pick one more.` : `Picked ${this.picks.map(name).join(' and ')}.`;
    this.compareGo.disabled = n !== 2;
    const btn = this.header.querySelector('.compare-btn');
    if (btn && this.trace) btn.setAttribute('aria-pressed', String(this.picks.includes(this.trace.id)));
  }

  syncPick(li, id) {
    let box = li._pickBox;
    if (!box) {
      if (!this.picking) return; // made when first needed
      const t = this.byId.get(id);
      box = li._pickBox = h('input', { type: 'checkbox', class: 'ti-pick-box', 'aria-label': `Pick ${t ? t.flowName : 'trace'} ${shortId(id)} to compare` });
      li._pick = h('label', { class: 'ti-pick', title: 'Pick to compare' }, box);
    }
    if (li.firstChild !== li._pick) li.prepend(li._pick);
    const on = this.picks.includes(id);
    li._pick.hidden = !this.picking;
    box.checked = on;
    box.disabled = !on && this.picks.length >= 2;
    li.classList.toggle('picked', this.picking && on);
  }

  /** Opens the comparison of the two picks, the one that started first as A. */
  openCompare() {
    if (this.picks.length !== 2) return;
    const start = (id) => this.byId.get(id)?.startTime ?? (this.trace && this.trace.id === id ? this.trace.startTime : 0);
    const [x, y] = this.picks;
    const [a, b] = start(x) <= start(y) ? [x, y] : [y, x];
    this.ctx.navigate({ view: 'compare', params: { a, b } });
  }

  // ---------------------------------------------------------------- list

  learn(s) {
    this.known.flows.add(s.flowName);
    for (const x of servicesOf(s)) this.known.services.add(x);
    for (const n of s.stepNames || []) this.known.steps.add(n);
    if (s.correlationId) this.known.cids.add(s.correlationId);
  }

  /**
   * State keys and topics of the open trace, for the filter suggestions: its emits, and the
   * operations of the steps loaded in full so far.
   */
  learnKeys() {
    const t = this.trace;
    if (!t) return;
    this.learnOps(t.ops);
    for (const s of t.steps || []) this.learnOps(s.ops || s.emits);
    for (const e of this.stepCache.get(t.id)?.values() || []) if (e.step) this.learnOps(e.step.ops);
  }

  learnOps(ops) {
    for (const op of ops || []) {
      if (op.kind === 'state' && op.key) this.known.stateKeys.add(op.key);
      else if (op.kind === 'emit' && op.topic) this.known.topics.add(op.topic);
    }
  }

  async reloadList({ quiet = false } = {}) {
    this.listAbort?.abort();
    const ctrl = (this.listAbort = new AbortController());
    // Live changes that arrive while the page is on its way may be newer than the page: they
    // are kept and applied on top of it (see replayLive).
    this.liveDuringLoad.begin();
    if (!quiet) this.list.classList.add('loading');
    try {
      const res = await api.traces(this.filters, null, { signal: ctrl.signal });
      if (ctrl.signal.aborted) return;
      this.loaded = true;
      this.filterError.hidden = true;
      // Keep older pages the user already loaded when refreshing quietly.
      const fresh = res.traces || [];
      let items = fresh;
      let next = res.nextCursor || null;
      if (quiet && this.nextCursor !== undefined && this.items.length > fresh.length && res.nextCursor) {
        const ids = new Set(fresh.map((t) => t.id));
        const oldest = fresh[fresh.length - 1];
        items = fresh.concat(this.items.filter((t) => !ids.has(t.id) && newestFirst(oldest, t) < 0));
        next = this.nextCursor;
      }
      this.setItems(items, next);
      this.replayLive(res.seq);
      this.listError = null;
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.loaded = true;
      this.listError = e;
      if (e instanceof ApiError && e.status === 400) {
        this.filterError.hidden = false;
        this.filterError.textContent = e.message;
        this.setItems([], null);
      } else this.renderList();
    } finally {
      this.liveDuringLoad.end();
      if (this.listAbort === ctrl) this.list.classList.remove('loading');
    }
  }

  /**
   * Applies the live trace changes that arrived while a page was fetched and that the page,
   * read at stream event `since`, may predate, so a trace that started meanwhile is not lost
   * when the page replaces the list.
   */
  replayLive(since) {
    const newer = this.liveDuringLoad.newer(since, (t) => this.byId.has(t.id));
    if (newer === null) this.reloadQuiet(); // too many to keep: the next page has them
    else for (const t of newer) this.upsert(t);
  }

  async loadMore() {
    if (!this.nextCursor) return;
    this.moreBtn.disabled = true;
    try {
      const res = await api.traces(this.filters, this.nextCursor);
      const ids = new Set(this.items.map((t) => t.id));
      this.setItems(this.items.concat((res.traces || []).filter((t) => !ids.has(t.id))), res.nextCursor || null);
    } catch (e) {
      this.listError = e;
      this.renderList();
    } finally {
      this.moreBtn.disabled = false;
    }
  }

  setItems(items, next) {
    this.items = items.slice(0, MAX_ITEMS);
    this.byId = new Map(this.items.map((t) => [t.id, t]));
    for (const t of this.items) this.learn(t);
    this.nextCursor = next;
    this.syncFlowOptions();
    this.renderList();
  }

  upsert(s) {
    const knownServices = this.known.services.size;
    this.learn(s);
    if (this.known.services.size !== knownServices) this.syncFlowOptions();
    const m = this.matches(s);
    const existing = this.byId.get(s.id);
    if (m === null) {
      if (existing) this.replaceItem(existing, s);
      this.reloadQuiet();
    } else if (m) {
      if (existing) this.replaceItem(existing, s);
      else {
        const last = this.items[this.items.length - 1];
        if (this.nextCursor && last && newestFirst(last, s) < 0) return; // belongs to a later page
        let i = 0;
        while (i < this.items.length && newestFirst(this.items[i], s) < 0) i++;
        this.items.splice(i, 0, s);
        this.byId.set(s.id, s);
        this.fresh = this.fresh || new Set();
        this.fresh.add(s.id);
        if (this.items.length > MAX_ITEMS) this.byId.delete(this.items.pop().id);
      }
    } else if (existing && s.id !== this.selectedId) {
      this.items.splice(this.items.indexOf(existing), 1);
      this.byId.delete(s.id);
    } else if (existing) this.replaceItem(existing, s);
    this.renderListSoon();
  }

  replaceItem(old, s) {
    const i = this.items.indexOf(old);
    if (i < 0) return;
    this.items[i] = s;
    this.byId.set(s.id, s);
    if (s.startTime !== old.startTime) this.items.sort(newestFirst);
  }

  renderList() {
    const els = [];
    const seen = new Set();
    const now = Date.now();
    for (const t of this.items) {
      seen.add(t.id);
      let li = this.itemEls.get(t.id);
      const ver = `${t.status}|${t.duration}|${t.stepNames?.length}|${t.metadata?.totalSteps}|${t.metadata?.errorCount}|${t.correlationId}|${t.startTime}|${truncatedText(t.truncated)}|${servicesOf(t).join(',')}`;
      if (!li) {
        li = h('li', { class: 'trace-item', role: 'option', id: `ti-${t.id}`, dataset: { traceId: t.id } });
        this.itemEls.set(t.id, li);
      }
      if (li._ver !== ver) {
        li._ver = ver;
        fillItem(li, t, now);
      }
      this.syncPick(li, t.id);
      if (this.fresh && this.fresh.has(t.id)) {
        li.classList.add('fresh');
        setTimeout(() => li.classList.remove('fresh'), 1600);
      }
      const sel = t.id === this.selectedId;
      li.classList.toggle('selected', sel);
      li.setAttribute('aria-selected', String(sel));
      els.push(li);
    }
    this.fresh = null;
    for (const id of [...this.itemEls.keys()]) if (!seen.has(id)) this.itemEls.delete(id);
    this.list.replaceChildren(...els);
    if (this.selectedId && this.byId.has(this.selectedId)) this.list.setAttribute('aria-activedescendant', `ti-${this.selectedId}`);
    else this.list.removeAttribute('aria-activedescendant');
    this.moreBtn.hidden = !this.nextCursor;

    const count = this.listMeta.querySelector('.list-count');
    count.textContent = `${fmtNumber(this.items.length)}${this.nextCursor ? '+' : ''} trace${this.items.length === 1 ? '' : 's'}`;
    const anyFilter = Object.keys(this.filters).length > 0;
    this.listEmpty.hidden = this.items.length > 0 || !this.loaded;
    if (!this.listEmpty.hidden) {
      const err = this.listError && !(this.listError instanceof ApiError && this.listError.status === 400);
      setChildren(this.listEmpty, 
        err
          ? h('div', null, h('strong', null, 'Cannot load traces'), h('p', { class: 'muted' }, this.listError.message))
          : anyFilter
            ? h('div', null, h('strong', null, 'No matching traces'), h('p', { class: 'muted' }, 'Try removing a filter.'), h('button', { class: 'btn btn-xs', type: 'button', onclick: () => this.clearFilters() }, 'Clear filters'))
            : h(
                'div',
                null,
                h('strong', null, 'No traces yet'),
                h('p', { class: 'muted' }, 'Point an SDK at this agent (FLOWSCOPE_SOCKET) or run ', h('code', null, 'flowscope demo'), '. Traces show up here live.'),
              ),
      );
    }
  }

  markSelected() {
    for (const [id, li] of this.itemEls) {
      const sel = id === this.selectedId;
      li.classList.toggle('selected', sel);
      li.setAttribute('aria-selected', String(sel));
    }
    const li = this.selectedId && this.itemEls.get(this.selectedId);
    if (li) {
      li.scrollIntoView({ block: 'nearest' });
      this.list.setAttribute('aria-activedescendant', li.id);
    }
  }

  moveTrace(delta) {
    if (!this.items.length) return;
    let i = this.items.findIndex((t) => t.id === this.selectedId);
    i = i < 0 ? (delta > 0 ? 0 : this.items.length - 1) : Math.max(0, Math.min(this.items.length - 1, i + delta));
    const id = this.items[i].id;
    if (id !== this.selectedId) this.openTrace(id, { replace: true });
  }

  tick() {
    const now = Date.now();
    for (const li of this.list.children) {
      const t = this.byId.get(li.dataset.traceId);
      if (!t) continue;
      const rel = li.querySelector('.ti-time');
      if (rel) rel.textContent = fmtRelative(t.startTime, now);
      if (t.status === 'running') {
        const d = li.querySelector('.ti-dur');
        if (d) d.textContent = fmtDuration(now - t.startTime);
      }
    }
    if (this.trace && this.trace.status === 'running') {
      this.timeline.tick(this.trace, now);
      this.renderHeader();
    } else if (this.trace) {
      const rel = this.header.querySelector('.rel-start');
      if (rel) rel.textContent = fmtRelative(this.trace.startTime, now);
    }
  }

  // ---------------------------------------------------------------- live

  onLive(type, data, seq = null) {
    if (!data) return;
    if (type.startsWith('trace.')) {
      this.invalidateSteps(data.id); // its steps may have changed
      if (!this.visible) return;
      this.liveDuringLoad.keep(data.id, seq, data);
      this.upsert(data);
      if (data.id === this.selectedId) this.refreshTrace();
    } else if (type === 'flow.status') {
      if (!this.known.flows.has(data.flowName)) {
        this.known.flows.add(data.flowName);
        this.syncFlowOptions();
      }
    }
  }

  /**
   * Refetches the open trace's timeline (and the open step): at most one refresh in flight,
   * trailing refresh when asked again. Its loaded steps are forgotten: they may have changed.
   */
  refreshTrace() {
    if (this.traceInflight) {
      this.traceDirty = true;
      return;
    }
    const id = this.selectedId;
    if (!id) return;
    this.traceInflight = true;
    const t0 = performance.now();
    this.invalidateSteps(id);
    // The open step is refetched alongside (if it exists yet), so the details keep up.
    const cur = this.trace;
    const open = this.stepId && cur && cur.id === id && (cur.steps || []).some((s) => s.id === this.stepId);
    const step = open ? this.fetchStep(id, this.stepId).catch(() => null) : null;
    Promise.all([api.traceTimeline(id), step])
      .then(([t]) => {
        if (id === this.selectedId) this.showTrace(t, { update: true });
      })
      .catch(() => {})
      .finally(() => {
        this.traceInflight = false;
        if (this.traceDirty) {
          this.traceDirty = false;
          // A big trace that keeps changing is refetched less often (never more than ~40% busy).
          const took = performance.now() - t0;
          setTimeout(() => this.refreshTrace(), Math.min(2000, Math.max(30, took * 1.5)));
        }
      });
  }

  // ---------------------------------------------------------------- step cache

  /** A step in full (ops, events) when it is already loaded; otherwise null. */
  cachedStep(traceId, spanId) {
    return this.stepCache.get(traceId)?.get(spanId)?.step || null;
  }

  /**
   * Fetches a step in full (`GET /api/traces/{id}/steps/{spanId}`), once per trace id + span id
   * until the trace changes (invalidateSteps). Failures are not kept.
   */
  fetchStep(traceId, spanId) {
    let steps = this.stepCache.get(traceId);
    if (steps) this.stepCache.delete(traceId); // re-inserted as the most recently used
    else steps = new Map();
    this.stepCache.set(traceId, steps);
    while (this.stepCache.size > STEP_CACHE_TRACES) this.stepCache.delete(this.stepCache.keys().next().value);
    let entry = steps.get(spanId);
    if (entry) return entry.promise;
    entry = { step: null, promise: null };
    entry.promise = api.step(traceId, spanId).then(
      (step) => {
        entry.step = step;
        return step;
      },
      (e) => {
        if (steps.get(spanId) === entry) steps.delete(spanId);
        throw e;
      },
    );
    steps.set(spanId, entry);
    if (steps.size > STEP_CACHE_STEPS) steps.delete(steps.keys().next().value);
    return entry.promise;
  }

  /** Forgets the loaded steps of a trace (it changed). */
  invalidateSteps(traceId) {
    this.stepCache.delete(traceId);
  }

  // ---------------------------------------------------------------- trace pane

  showEmpty() {
    this.trace = null;
    this.timeline.clear();
    this.paneEmpty.hidden = false;
    this.paneBody.hidden = true;
    this.paneMsg.hidden = true;
    document.title = 'Traces · flowscope';
  }

  async loadTrace(id) {
    this.traceAbort?.abort();
    const ctrl = (this.traceAbort = new AbortController());
    const t0 = performance.now();
    perf.traceLoad = { id, start: t0 };
    this.paneEmpty.hidden = true;
    this.pane.classList.add('loading');
    if (!this.trace || this.trace.id !== id) {
      this.paneMsg.hidden = false;
      setChildren(this.paneMsg, h('div', { class: 'spinner', 'aria-label': 'Loading' }));
    }
    // Steps of a finished trace never change; otherwise what was loaded before may be stale.
    const known = this.byId.get(id);
    if (!known || known.status === 'running' || this.pollTimer) this.invalidateSteps(id);
    try {
      // Only what the timeline draws; a step's operations and events come when it is selected.
      const timeline = api.traceTimeline(id, { signal: ctrl.signal });
      // The step named in the URL is fetched alongside, so a shared link opens in one round trip.
      if (this.stepId && /^[0-9a-f]{16}$/.test(this.stepId)) this.fetchStep(id, this.stepId).catch(() => {});
      const t = await timeline;
      if (ctrl.signal.aborted || id !== this.selectedId) return;
      perf.traceLoad.fetched = performance.now();
      this.showTrace(t);
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.trace = null;
      this.paneBody.hidden = true;
      this.paneMsg.hidden = false;
      setChildren(this.paneMsg, 
        h(
          'div',
          { class: 'empty' },
          h('strong', null, e.status === 404 ? 'Trace not found' : 'Cannot load the trace'),
          h('p', { class: 'muted' }, e.status === 404 ? 'It may have been evicted from memory (the agent keeps the most recent traces).' : e.message),
          h('button', { class: 'btn btn-xs', type: 'button', onclick: () => this.closeTrace() }, 'Back to the list'),
        ),
      );
    } finally {
      if (this.traceAbort === ctrl) this.pane.classList.remove('loading');
    }
  }

  showTrace(t, { update = false } = {}) {
    this.trace = t;
    this.paneMsg.hidden = true;
    this.paneEmpty.hidden = true;
    this.paneBody.hidden = false;
    this.renderHeader();
    const stepExists = this.stepId && (t.steps || []).some((s) => s.id === this.stepId);
    this.timeline.setTrace(t, Date.now(), stepExists ? this.stepId : null);
    this.applyStep({ scroll: !update });
    document.title = `${this.title()} · flowscope`;
    // Keep the list entry in step with what we fetched.
    const existing = this.byId.get(t.id);
    if (existing && (existing.status !== t.status || existing.duration !== t.duration)) {
      const { steps, ops, events, attributes, error, correlationMethod, segments, criticalPath, ...summary } = t;
      this.replaceItem(existing, summary);
      this.renderListSoon();
    }
  }

  rendered(traceId, n) {
    if (perf.traceLoad && perf.traceLoad.id === traceId && !perf.traceLoad.rendered) {
      perf.traceLoad.rendered = performance.now();
      perf.traceLoad.steps = n;
      performance.mark('flowscope:timeline-rendered', { detail: { traceId, steps: n } });
    }
  }

  applyStep({ scroll = true } = {}) {
    const t = this.trace;
    if (!t) return;
    const step = this.stepId ? (t.steps || []).find((s) => s.id === this.stepId) : null;
    if (!step) {
      this.stepWanted = null;
      this.detailsWrap.hidden = true;
      this.details.replaceChildren();
      this.details.removeAttribute('aria-busy');
      this.detailsKey = null;
      this.pane.classList.remove('has-details');
      this.timeline.select(null, { scroll });
      return;
    }
    const full = this.cachedStep(t.id, step.id);
    if (full) {
      this.stepWanted = null;
      this.renderDetails(full, t);
      // After the panel is shown, so the timeline scrolls within its final height.
      this.timeline.select(step.id, { scroll });
      return;
    }
    // The step's operations and events are fetched now. The timeline moves at once; the panel
    // keeps the previous step (dimmed after a moment) until the new one arrives.
    this.timeline.select(step.id, { scroll });
    if (!this.detailsWrap.hidden) this.details.setAttribute('aria-busy', 'true');
    const want = (this.stepWanted = `${t.id}/${step.id}`);
    const current = () => this.stepWanted === want && this.trace && this.trace.id === t.id && this.stepId === step.id;
    this.fetchStep(t.id, step.id).then(
      (loaded) => {
        if (!current()) return;
        this.stepWanted = null;
        this.renderDetails(loaded, this.trace);
        this.timeline.select(step.id, { scroll });
      },
      (e) => {
        if (!current()) return;
        this.stepWanted = null;
        const latest = (this.trace.steps || []).find((s) => s.id === step.id) || step;
        this.renderDetails(latest, this.trace, { unavailable: e.message });
      },
    );
  }

  /** Shows a step in full; `unavailable`: it could not be loaded, `step` is the timeline's. */
  renderDetails(step, t, { unavailable = null } = {}) {
    this.details.removeAttribute('aria-busy');
    const key = unavailable ? null : JSON.stringify(step);
    if (key && this.detailsKey === key && !this.detailsWrap.hidden) return; // unchanged: keep expansions
    this.detailsKey = key;
    const scrollTop = this.details.scrollTop;
    const sameStep = this.details.firstChild && this.details.firstChild.dataset.stepId === step.id;
    this.details.replaceChildren(
      renderStepDetails(step, t, {
        onClose: () => this.openStep(null),
        onPrev: () => this.moveStep(-1),
        onNext: () => this.moveStep(1),
        onZoom: () => this.timeline.zoomToStep(step.id),
        unavailable,
        onRetry: () => this.applyStep({ scroll: false }),
      }),
    );
    if (sameStep) this.details.scrollTop = scrollTop;
    this.detailsWrap.hidden = false;
    this.pane.classList.add('has-details');
  }

  moveStep(delta) {
    const id = this.timeline.neighbour(delta);
    if (id && id !== this.stepId) this.openStep(id, { replace: true });
  }

  renderHeader() {
    const t = this.trace;
    if (!t) return;
    const now = Date.now();
    // LLM calls are counted per step; their tokens and cost come from loadLlmTotals.
    const totals = stepTotals(t);
    const calls = totals.llm;
    const known = this.llmTotals;
    const llm = known && known.id === t.id && known.calls >= calls ? known : { calls, tokens: null };
    if (llm !== known && calls) this.loadTotalsSoon();
    const bigTrace = (t.steps || []).length > TOTALS_MAX_STEPS;
    const md = t.metadata || {};
    const duration = t.duration != null ? fmtDuration(t.duration) : h('span', { class: 'running-text', title: 'Still running' }, fmtDuration(now - t.startTime));
    const services = traceServices(t);
    const chip = (label, value, extra = {}) => h('div', { class: 'meta', ...extra }, h('span', { class: 'meta-label' }, label), h('span', { class: 'meta-value' }, value));

    const back = h('button', { class: 'btn btn-ghost btn-icon back-btn', type: 'button', title: 'Back to the list', 'aria-label': 'Back to the list', onclick: () => this.closeTrace() }, icon('back'));
    const linkParams = new URLSearchParams();
    if (this.stepId) linkParams.set('step', this.stepId);
    const shareUrl = () => `${location.origin}${location.pathname}${this.ctx.routeHash({ view: 'traces', id: t.id, params: linkParams })}`;

    const critical = Array.isArray(t.criticalPath) ? t.criticalPath.length : 0;
    const showCritical = this.timeline.showCritical;
    // The header is rebuilt (every second while the trace runs): keep the focus on its buttons.
    const focusKey = this.header.contains(document.activeElement) ? document.activeElement.dataset?.focusKey : null;

    setChildren(this.header, 
      h(
        'div',
        { class: 'tl-title-row' },
        back,
        statusDot(t.status),
        h(
          'a',
          { class: 'tl-title-link', href: this.ctx.routeHash({ view: 'insights', id: t.flowName }), title: `Insights for the flow ${t.flowName}` },
          h('h2', { class: 'tl-title' }, t.flowName),
        ),
        statusPill(t.status),
        t.failureReason && t.failureReason !== 'error' ? h('span', { class: 'chip warn' }, t.failureReason) : null,
        h('span', { class: 'spacer' }),
        h(
          'details',
          { class: 'menu export-menu' },
          h('summary', { class: 'btn btn-ghost btn-xs', title: 'View or download this trace' }, icon('download'), h('span', null, 'Export')),
          h(
            'div',
            { class: 'menu-list', role: 'menu', onclick: (e) => this.exportClick(e) },
            h('a', { role: 'menuitem', href: `api/traces/${t.id}`, target: '_blank', rel: 'noopener' }, 'View JSON'),
            h('a', { role: 'menuitem', href: `api/traces/${t.id}/export?format=json`, download: '' }, 'Download JSON'),
            h('a', { role: 'menuitem', href: `api/traces/${t.id}/export?format=csv`, download: '' }, 'Download CSV'),
            h('a', { role: 'menuitem', href: `api/traces/${t.id}/export?format=otlp`, download: '' }, 'Download OTLP/JSON'),
          ),
        ),
        h(
          'button',
          {
            class: 'btn btn-ghost btn-xs compare-btn',
            type: 'button',
            'aria-pressed': String(this.picks.includes(t.id)),
            title: 'Pick this trace to compare it with another (x)',
            dataset: { focusKey: 'compare' },
            onclick: () => this.togglePick(t.id, !this.picks.includes(t.id)),
          },
          icon('compare'),
          h('span', null, 'Compare'),
        ),
        copyButton(shareUrl, 'Link'),
      ),
      h(
        'div',
        { class: 'meta-row' },
        chip('Duration', duration),
        chip('Steps', `${md.completedSteps ?? 0}/${md.totalSteps ?? (t.steps || []).length}`),
        chip('Started', h('span', { title: fmtDateTime(t.startTime) }, h('span', { class: 'rel-start' }, fmtRelative(t.startTime, now)), h('span', { class: 'muted' }, ` · ${fmtClock(t.startTime)}`))),
        chip('Entry', `${t.entryPoint?.type || '—'} · ${t.entryPoint?.stepName || '—'}`),
        services.length ? chip(services.length > 1 ? 'Services' : 'Service', h('span', { class: 'svc-list' }, services.map((x) => serviceChip(x))), { dataset: { meta: 'services' } }) : null,
        t.correlationId
          ? chip('Group', h('a', { href: `#/groups/${encodeURIComponent(t.correlationId)}`, class: 'link' }, icon('group'), t.correlationId, md.traceIndex != null ? h('span', { class: 'muted' }, ` #${md.traceIndex + 1}`) : null))
          : null,
        t.parentTraceId ? chip('Triggered by', h('a', { href: `#/traces/${t.parentTraceId}`, class: 'link mono' }, shortId(t.parentTraceId))) : null,
        chip('Trace id', h('span', { class: 'mono id-copy' }, shortId(t.id), copyButton(t.id, ''))),
      ),
      h(
        'div',
        { class: 'totals-row' },
        h('span', { class: 'badge b-state', title: 'State operations' }, icon('state'), `${totals.state} state`),
        h('span', { class: 'badge b-emit', title: 'Emits' }, icon('emit'), `${totals.emit} emit`),
        h('span', { class: 'badge b-stream', title: 'Stream operations' }, icon('stream'), `${totals.stream} stream`),
        llm.calls
          ? h(
              'span',
              {
                class: 'badge b-llm',
                title: llm.tokens == null && bigTrace ? 'LLM calls (totals of tokens and cost are not loaded for big traces: open a step for its calls)' : 'LLM calls',
              },
              icon('llm'),
              `${llm.calls} LLM${llm.tokens != null ? ` · ${fmtNumber(llm.tokens)} tokens` : ''}${llm.hasCost ? ` · ${fmtCost(llm.cost)}` : ''}`,
            )
          : null,
        md.errorCount ? h('span', { class: 'badge b-error' }, icon('error'), `${md.errorCount} error${md.errorCount === 1 ? '' : 's'}`) : null,
        h('span', { class: 'spacer' }),
        critical
          ? h(
              'button',
              {
                class: `btn btn-ghost btn-xs crit-toggle${showCritical ? ' on' : ''}`,
                type: 'button',
                'aria-pressed': String(showCritical),
                title: `Highlight the ${critical} step${critical === 1 ? '' : 's'} whose work decided when the trace ended`,
                dataset: { focusKey: 'critical' },
                onclick: () => this.toggleCritical(),
              },
              h('i', { class: 'lg crit', 'aria-hidden': 'true' }),
              'Critical path',
              h('span', { class: 'count' }, String(critical)),
            )
          : null,
        h('span', { class: 'legend muted small' }, h('i', { class: 'lg s-completed' }), 'completed', h('i', { class: 'lg s-running' }), 'running', h('i', { class: 'lg s-failed' }), 'failed', h('i', { class: 'lg arrow' }), 'emit'),
      ),
      services.length > 1 ? this.segmentsSummary(t, now) : null,
      truncatedBanner(t.truncated),
      droppedBanner(t),
      t.error ? this.traceError(t) : null,
      renderTraceExtras(t),
    );
    if (focusKey) this.header.querySelector(`[data-focus-key="${focusKey}"]`)?.focus();
  }

  /** The header's "Critical path" toggle: the timeline highlight on or off. */
  toggleCritical() {
    const on = !this.timeline.showCritical;
    this.timeline.setShowCritical(on);
    const btn = this.header.querySelector('.crit-toggle');
    if (btn) {
      btn.setAttribute('aria-pressed', String(on));
      btn.classList.toggle('on', on);
    }
  }

  /**
   * The services' parts of a multi-service trace, by start: service → flow, status and
   * duration (the start in the tooltip). Clicking one opens its entry step.
   */
  segmentsSummary(t, now) {
    // By start (the API lists them as they arrived, which across connections is not call order).
    const segs = (t.segments || []).map((seg, i) => ({ seg, i })).sort((a, b) => (a.seg.startTime || 0) - (b.seg.startTime || 0) || a.i - b.i).map((x) => x.seg);
    if (!segs.length) return null;
    const steps = t.steps || [];
    const items = segs.map((seg, i) => {
      const start = seg.startTime || 0;
      const entry = steps.find((st) => st.service === seg.service && !st.parentId && (st.startTime ?? 0) >= start - 1) || null;
      const dur =
        seg.duration != null
          ? fmtDuration(seg.duration)
          : seg.status === 'running'
            ? h('span', { class: 'running-text' }, fmtDuration(Math.max(0, now - t.startTime - start)))
            : '—';
      const content = [
        serviceChip(seg.service),
        h('span', { class: 'seg-arrow', 'aria-hidden': 'true' }, '→'),
        h('span', { class: 'seg-flow' }, seg.flowName || '—'),
        statusDot(seg.status, `${seg.service}: ${seg.status}`),
        h('span', { class: 'seg-dur mono' }, dur),
      ];
      const attrs = {
        class: `seg-item s-${seg.status}`,
        dataset: { service: seg.service, index: i, status: seg.status },
        title: `${seg.service} → ${seg.flowName || '—'} · ${seg.status} · starts +${fmtDuration(start)}${seg.error?.message ? ` · ${seg.error.message}` : ''}`,
      };
      return h(
        'li',
        null,
        entry
          ? h('button', { ...attrs, type: 'button', onclick: () => this.openStep(entry.id), 'aria-label': `${seg.service}: open ${entry.name}` }, content)
          : h('div', attrs, content),
      );
    });
    return h(
      'div',
      { class: 'segments', role: 'group', 'aria-label': 'Segments' },
      h('span', { class: 'meta-label seg-label' }, `Segments (${segs.length})`),
      h('ol', { class: 'seg-list' }, items),
    );
  }

  /** Export links: plain links, unless the agent wants a token (a link cannot send it). */
  exportClick(e) {
    const a = e.target.closest('a[href]');
    if (!a || !getToken()) return;
    e.preventDefault();
    const href = a.getAttribute('href');
    const format = /[?&]format=(\w+)/.exec(href);
    const download = a.hasAttribute('download') ? `trace-${this.trace?.id || 'export'}.${format ? format[1] : 'json'}` : null;
    const menu = a.closest('.menu-list');
    menu.querySelector('.menu-error')?.remove();
    openFile(href, { download }).catch((err) => {
      if (err.status === 401) return; // the token form is up
      menu.appendChild(h('div', { class: 'menu-error', role: 'alert' }, `Export failed: ${err.message}`));
      menu.closest('details').open = true;
    });
  }

  /**
   * Token and cost totals of the open trace's LLM calls, for the header. The timeline view only
   * counts the calls, so a trace of up to TOTALS_MAX_STEPS steps is fetched in full once, after
   * its timeline is drawn, and again only when its number of LLM calls grows. Bigger traces show
   * the count alone (their steps' details have the figures).
   */
  loadTotalsSoon() {
    // Not a debounce: a trace that keeps changing would put it off for ever.
    if (this.totalsTimer) return;
    this.totalsTimer = setTimeout(
      () => {
        this.totalsTimer = 0;
        this.loadLlmTotals();
      },
      Math.max(300, 3 * (this.totalsTook || 0)),
    );
  }

  async loadLlmTotals() {
    const t = this.trace;
    if (!t || this.totalsInflight) return;
    const calls = llmCalls(t);
    const known = this.llmTotals;
    if (!calls || (known && known.id === t.id && known.calls >= calls)) return;
    if ((t.steps || []).length > TOTALS_MAX_STEPS) return;
    this.totalsInflight = true;
    const t0 = performance.now();
    try {
      const full = await api.trace(t.id);
      this.totalsTook = performance.now() - t0;
      this.llmTotals = { id: t.id, ...llmTotalsOf(full) };
      for (const s of full.steps || []) this.learnOps(s.ops);
    } catch {
      this.llmTotals = { id: t.id, calls, tokens: null }; // count only; tried again on a new call
    } finally {
      this.totalsInflight = false;
    }
    if (this.trace && this.trace.id === t.id) this.renderHeader();
  }

  traceError(t) {
    const failed = (t.steps || []).find((s) => s.status === 'failed' && s.error && s.error.message === t.error.message) || (t.steps || []).find((s) => s.status === 'failed');
    const action =
      failed && failed.id !== this.stepId
        ? h('button', { class: 'btn btn-xs', type: 'button', onclick: () => this.openStep(failed.id) }, `Show ${failed.name}`)
        : null;
    return errorBlock(t.error, 'Failed:', { compact: true, action });
  }

  // ---------------------------------------------------------------- keyboard

  onKey(e) {
    const k = e.key;
    if (k === '/') {
      this.search.focus();
      this.search.select();
      e.preventDefault();
    } else if (k === 'j' || k === 'ArrowDown') {
      this.moveTrace(1);
      e.preventDefault();
    } else if (k === 'k' || k === 'ArrowUp') {
      this.moveTrace(-1);
      e.preventDefault();
    } else if (k === ']') {
      this.moveStep(1);
      e.preventDefault();
    } else if (k === '[') {
      this.moveStep(-1);
      e.preventDefault();
    } else if (k === 'Enter') {
      if (!this.selectedId) this.moveTrace(1);
      else this.timeline.scroll.focus();
      e.preventDefault();
    } else if (k === 'Escape') {
      if (this.stepId) this.openStep(null);
      else if (this.selectedId && window.matchMedia('(max-width: 760px)').matches) this.closeTrace();
      e.preventDefault();
    } else if (k === 'x' && this.selectedId) {
      this.togglePick(this.selectedId, !this.picks.includes(this.selectedId));
      e.preventDefault();
    } else if (this.zoomKey(k)) e.preventDefault();
  }

  /** Zoom keys, from anywhere on the page: + − 0, and z for the selected step. */
  zoomKey(k) {
    if (!this.trace) return false;
    if (k === '+' || k === '=') this.timeline.zoomBy(0.5);
    else if (k === '-' || k === '_') this.timeline.zoomBy(2);
    else if (k === '0') this.timeline.fit();
    else if (k === 'z' && this.stepId) this.timeline.zoomToStep(this.stepId);
    else return false;
    return true;
  }

  onTimelineKey(e) {
    if (e.metaKey || e.ctrlKey || e.altKey) return;
    const k = e.key;
    if (k === 'ArrowDown' || k === 'j') this.moveStep(1);
    else if (k === 'ArrowUp' || k === 'k') this.moveStep(-1);
    else if (k === 'Home') this.openStep(this.timeline.neighbour(-Infinity), { replace: true });
    else if (k === 'End') this.openStep(this.timeline.neighbour(Infinity), { replace: true });
    else if (k === 'Escape') {
      if (this.stepId) this.openStep(null);
      else this.list.focus();
    } else return;
    e.preventDefault();
    e.stopPropagation();
  }
}

/** Number of LLM calls in a trace (timeline view: `eventCounts`; full: `events`). */
function llmCalls(t) {
  return stepTotals(t).llm;
}

/**
 * A trace's operation counts by kind (the steps' `operations`) and its LLM calls, in one pass:
 * the header runs it on every load, before the first paint.
 */
function stepTotals(t) {
  const out = { state: 0, emit: 0, stream: 0, llm: 0 };
  const steps = t.steps || [];
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    const ops = s.operations;
    if (ops) {
      out.state += ops.state || 0;
      out.emit += ops.emit || 0;
      out.stream += ops.stream || 0;
    }
    if (s.eventCounts) out.llm += s.eventCounts.llm || 0;
    else if (s.events) for (let k = 0; k < s.events.length; k++) if (s.events[k].type === 'llm') out.llm++;
  }
  return out;
}

/** LLM calls, tokens and cost of a full trace. */
function llmTotalsOf(t) {
  const out = { calls: 0, tokens: 0, cost: 0, hasCost: false };
  for (const s of t.steps || [])
    for (const e of s.events || [])
      if (e.type === 'llm') {
        out.calls++;
        out.tokens += e.totalTokens ?? (e.inputTokens || 0) + (e.outputTokens || 0);
        if (e.cost != null) {
          out.cost += e.cost;
          out.hasCost = true;
        }
      }
  return out;
}

function truncatedBanner(tr) {
  const text = truncatedText(tr);
  if (!text) return null;
  return h('div', { class: 'trace-truncated', role: 'note' }, icon('error'), h('span', null, `${text}. What is shown is incomplete.`));
}

/** The SDK could not queue some events of this trace: say so, so a partial trace is not taken for a whole one. */
function droppedBanner(t) {
  const n = Number(t.droppedEvents) || 0;
  if (!t.incomplete || n <= 0) return null;
  return h(
    'div',
    { class: 'trace-truncated trace-dropped', role: 'note' },
    icon('error'),
    h('span', null, `Incomplete: the SDK dropped ${fmtNumber(n)} ${n === 1 ? 'event' : 'events'} of this trace (its queue was full). What is shown is partial.`),
  );
}

function fillDatalist(dl, set) {
  const values = [...set].sort().slice(0, 500);
  if (dl._n === values.length) return;
  dl._n = values.length;
  dl.replaceChildren(...values.map((v) => h('option', { value: v })));
}

function fillItem(li, t, now) {
  li.className = `trace-item s-${t.status}${li.classList.contains('selected') ? ' selected' : ''}`;
  const md = t.metadata || {};
  const steps = md.totalSteps ?? (t.stepNames || []).length;
  const dur = t.duration != null ? fmtDuration(t.duration) : t.status === 'running' ? fmtDuration(now - t.startTime) : '—';
  // A trace that crossed services: a dot per service (its colour) and how many.
  const services = servicesOf(t);
  const multi =
    services.length > 1
      ? h(
          'span',
          { class: 'ti-svcs', title: `Services: ${services.join(' → ')}`, dataset: { services: services.length } },
          h('span', { class: 'svc-dots', 'aria-hidden': 'true' }, services.slice(0, 5).map((x) => h('i', { class: 'svc-dot', style: { '--svc-h': String(serviceHue(x)) } }))),
          `${services.length} services`,
        )
      : null;
  setChildren(li, 
    statusDot(t.status),
    h(
      'div',
      { class: 'ti-main' },
      h(
        'div',
        { class: 'ti-top' },
        h('span', { class: 'ti-flow' }, t.flowName),
        md.errorCount ? h('span', { class: 'ti-err', title: `${md.errorCount} error(s)` }, icon('error'), String(md.errorCount)) : null,
        truncatedText(t.truncated) ? h('span', { class: 'ti-trunc', title: truncatedText(t.truncated) }, 'truncated') : null,
        h('span', { class: 'spacer' }),
        h('span', { class: 'ti-dur' }, dur),
      ),
      h(
        'div',
        { class: 'ti-sub' },
        h('span', { class: 'ti-steps' }, `${steps} step${steps === 1 ? '' : 's'}`),
        multi,
        h('span', { class: 'ti-entry', title: 'Entry point' }, `${t.entryPoint?.type || ''} · ${t.entryPoint?.stepName || ''}`),
        t.correlationId ? h('span', { class: 'ti-cid', title: `Correlation id ${t.correlationId}` }, icon('group'), t.correlationId) : null,
        h('span', { class: 'spacer' }),
        h('span', { class: 'ti-time', title: fmtDateTime(t.startTime) }, fmtRelative(t.startTime, now)),
      ),
    ),
  );
}
