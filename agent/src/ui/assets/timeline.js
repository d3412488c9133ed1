// The horizontal timeline: one row per step, bars positioned and scaled by time, operation badges,
// duration labels and emit arrows. Rows are virtualized (only the visible ones, plus a margin,
// exist in the DOM), so a trace with thousands of steps renders in constant time.
//
// It draws from the timeline view of a trace (`?view=timeline`): per step the op counts
// (`operations`), the emit operations (`emits`, for arrows and ticks) and the event counts
// (`eventCounts`). A full trace (steps with `ops` and `events`) works too.
//
// A trace that crossed several services (`segments`, `step.service`) is drawn in service lanes:
// a callee segment's top-level steps are placed and indented under the caller's client step (the
// segment's `parentSpanId`), every row gets its service's chip and colour band, and a new lane
// starts where the service changes. A single-service trace looks as it always did.
//
// The steps of the trace's `criticalPath` (span ids, from the API: the steps whose work decided
// when the trace ended) carry `data-critical`; while the highlight is on (the header's "Critical
// path" toggle, remembered in localStorage) their rows get the `critical` class: an accent stripe,
// an outlined bar and a marker in the label.

import { h, icon, fmtDuration, fmtTick, niceStep, rafThrottle, serviceChip, serviceHue, hostPath } from './util.js';

export const ROW_H = 34;
const BAR_H = 16;
const OVERSCAN = 8;
const PAD_L = 10; // px between the label column and time 0
const PAD_R = 18; // px after the end of the trace
const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Precomputed layout of one trace (pure data, no DOM). It runs on every page load before the
 * first paint, mostly as cold (not yet optimized) code, so the loops over the steps are plain
 * indexed loops and do no more than the rows need.
 */
export function layoutTrace(trace, now = Date.now()) {
  const steps = trace.steps || [];
  const n = steps.length;
  const running = trace.status === 'running';
  const nowRel = Math.max(0, now - trace.startTime);
  let index = new Map();
  let rows = new Array(n);
  let maxEnd = 0;
  let emits = false; // any emit with a target (an arrow or an external target)
  for (let i = 0; i < n; i++) {
    const s = steps[i];
    index.set(s.id, i);
    const ops = stepOps(s);
    let start = s.startTime;
    if (start === undefined || start === null) start = ops.length ? ops[0].startTime : 0;
    let end;
    let open = false;
    if (s.duration !== undefined && s.duration !== null) end = start + s.duration;
    else if (s.status === 'running' && running) {
      end = Math.max(start, nowRel);
      open = true;
    } else end = start;
    if (end > maxEnd) maxEnd = end;
    let llm = 0;
    let retries = 0;
    if (s.eventCounts) {
      llm = s.eventCounts.llm || 0;
      retries = s.eventCounts.retry || 0;
    } else
      for (const e of s.events || []) {
        if (e.type === 'llm') llm++;
        else if (e.type === 'retry') retries++;
      }
    if (!emits) for (let k = 0; k < ops.length; k++) if (ops[k].kind === 'emit' && ops[k].to) emits = true;
    rows[i] = { step: s, start, end, open, depth: 0, llm, retries, external: null, parent: s.parentId || null, service: s.service || '', laneStart: false, critical: false };
  }
  const services = traceServices(trace);
  const multi = services.length > 1;
  // A callee's top-level steps hang under the caller's client step: the parent span of their
  // segment. Those rows then move under that step (depth-first order), so each service's rows
  // stay together as a lane.
  let nested = false;
  if ((trace.segments || []).some((seg) => seg && seg.parentSpanId)) {
    const segs = segmentsByService(trace);
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      if (r.parent) continue;
      const seg = segmentOf(segs, r.step, r.start);
      const p = seg && seg.parentSpanId;
      if (p && p !== r.step.id && index.has(p)) {
        r.parent = p;
        nested = true;
      }
    }
  }
  if (nested) {
    rows = treeOrder(rows, index);
    index = new Map(rows.map((r, i) => [r.step.id, i]));
  }
  // Nesting depth from parent span ids.
  for (let i = 0; i < n; i++) {
    let d = 0;
    let p = rows[i].parent;
    // Depth capped at 12, which also stops a (malformed) parent cycle.
    while (p && d < 12) {
      const j = index.get(p);
      if (j === undefined || j === i) break;
      d++;
      p = rows[j].parent;
    }
    rows[i].depth = d;
    if (multi) rows[i].laneStart = i === 0 || rows[i - 1].service !== rows[i].service;
  }
  // The critical path's steps (span ids; one not in the trace is skipped).
  const path = Array.isArray(trace.criticalPath) ? trace.criticalPath : [];
  let critical = 0;
  for (let k = 0; k < path.length; k++) {
    const i = index.get(path[k]);
    if (i !== undefined && !rows[i].critical) {
      rows[i].critical = true;
      critical++;
    }
  }
  let total = Math.max(trace.duration || 0, maxEnd, running ? nowRel : 0);
  if (!(total > 0)) total = 1;
  const arrows = emits ? emitArrows(rows) : [];
  return { id: trace.id, rows, total, arrows, index, running, services, multi, critical };
}

/**
 * Emit arrows: an emit op with `to` points at the first step of that name starting at or after
 * the emit (step starts are whole ms, so allow a little slack); targets in other traces are
 * listed on the row instead (`external`).
 */
function emitArrows(rows) {
  const n = rows.length;
  // Step name → its row, or its rows in order when several steps have that name.
  const byName = new Map();
  for (let i = 0; i < n; i++) {
    const name = rows[i].step.name;
    const seen = byName.get(name);
    if (seen === undefined) byName.set(name, i);
    else if (typeof seen === 'number') byName.set(name, [seen, i]);
    else seen.push(i);
  }
  const arrows = [];
  for (let i = 0; i < n; i++) {
    const ops = stepOps(rows[i].step);
    for (let k = 0; k < ops.length; k++) {
      const op = ops[k];
      if (op.kind !== 'emit' || !op.to) continue;
      const cands = byName.get(op.to);
      let target = -1;
      if (typeof cands === 'number') target = cands !== i ? cands : -1;
      else if (cands) {
        // Binary search for the first candidate starting at/after op time − 1.5 ms.
        const t = op.startTime - 1.5;
        let lo = 0;
        let hi = cands.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (rows[cands[mid]].start < t) lo = mid + 1;
          else hi = mid;
        }
        for (let c = lo; c < cands.length; c++) {
          if (cands[c] !== i) {
            target = cands[c];
            break;
          }
        }
        if (target < 0) target = cands.find((c) => c !== i) ?? -1;
      }
      if (target >= 0) arrows.push({ from: i, to: target, at: op.startTime, topic: op.topic || '', target: op.to });
      else (rows[i].external ||= []).push({ topic: op.topic || '', to: op.to });
    }
  }
  return arrows;
}

/** Every service of a trace, root first: `services`, then any other a step or segment names. */
export function traceServices(trace) {
  const out = [];
  const add = (x) => {
    if (x && !out.includes(x)) out.push(x);
  };
  for (const x of trace.services || []) add(x);
  if (!out.length) add(trace.service);
  for (const seg of trace.segments || []) add(seg.service);
  for (const st of trace.steps || []) add(st.service);
  return out;
}

/** The segments of a trace by service, each list by start time. */
function segmentsByService(trace) {
  const m = new Map();
  for (const seg of trace.segments || []) {
    if (!seg || !seg.service) continue;
    let list = m.get(seg.service);
    if (!list) m.set(seg.service, (list = []));
    list.push(seg);
  }
  for (const list of m.values()) list.sort((a, b) => (a.startTime || 0) - (b.startTime || 0));
  return m;
}

/**
 * The segment a step belongs to: of its service's segments, the last one started by the step's
 * start (times are whole ms, so with a little slack); the first when none was.
 */
function segmentOf(segs, step, start) {
  const list = segs.get(step.service);
  if (!list) return null;
  let found = list[0];
  for (const seg of list) if ((seg.startTime || 0) <= start + 1) found = seg;
  return found;
}

/** Rows in depth-first order: each row's children (in their original order) right after it. */
function treeOrder(rows, index) {
  const n = rows.length;
  const children = new Array(n);
  const roots = [];
  for (let i = 0; i < n; i++) {
    const j = rows[i].parent ? index.get(rows[i].parent) : undefined;
    if (j === undefined || j === i) roots.push(i);
    else (children[j] ||= []).push(i);
  }
  const out = [];
  const seen = new Uint8Array(n);
  const visit = (root) => {
    const stack = [root];
    while (stack.length) {
      const i = stack.pop();
      if (seen[i]) continue;
      seen[i] = 1;
      out.push(rows[i]);
      const c = children[i];
      if (c) for (let k = c.length - 1; k >= 0; k--) if (!seen[c[k]]) stack.push(c[k]);
    }
  };
  for (const i of roots) visit(i);
  // Rows on a (malformed) parent cycle are reachable from no root.
  for (let i = 0; i < n; i++) if (!seen[i]) visit(i);
  return out;
}

/**
 * The client step of another service that a callee's top-level step runs under (its segment's
 * `parentSpanId`), or null (the step has a parent of its own, or its segment has no caller here).
 */
export function callerStep(trace, step) {
  if (!trace || !step || step.parentId || !trace.segments?.length) return null;
  const seg = segmentOf(segmentsByService(trace), step, step.startTime ?? 0);
  const p = seg && seg.parentSpanId;
  if (!p || p === step.id) return null;
  return (trace.steps || []).find((s) => s.id === p) || null;
}

/** The segments (services) a client step called: those whose `parentSpanId` is the step. */
export function calleesOf(trace, step) {
  if (!trace || !step) return [];
  return (trace.segments || []).filter((seg) => seg.parentSpanId && seg.parentSpanId === step.id);
}

/** The HTTP facts of a client step (`kind: "client"`), or null for any other step. */
export function clientCall(step) {
  if (!step || step.kind !== 'client') return null;
  const a = step.attributes || {};
  const code = Number(a['http.response.status_code']);
  const status = Number.isFinite(code) && code > 0 ? code : null;
  const errorType = a['error.type'] != null ? String(a['error.type']) : null;
  return {
    method: a['http.request.method'] != null ? String(a['http.request.method']) : null,
    url: a['url.full'] != null ? String(a['url.full']) : null,
    status,
    errorType,
    failed: step.status === 'failed' || (status !== null && status >= 400) || !!errorType,
  };
}

/** A step's operations as far as the trace carries them: all (full view) or the emits (timeline). */
function stepOps(s) {
  return s.ops || s.emits || [];
}

/** The critical-path highlight is on unless it was turned off. */
function readCriticalPref() {
  try {
    return localStorage.getItem('fs.criticalPath') !== '0';
  } catch {
    return true;
  }
}

function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

const BADGES = [
  ['state', 'state operation'],
  ['emit', 'emit'],
  ['stream', 'stream operation'],
];

export class Timeline {
  constructor(root, { onSelect, onRendered } = {}) {
    this.root = root;
    this.onSelect = onSelect;
    this.onRendered = onRendered;
    this.layout = null;
    this.selected = null;
    this.width = 0;
    this.labelW = 220;
    this.svcW = 0;
    this.renderedFor = null;
    this.showCritical = readCriticalPref();
    this.root.classList.toggle('show-critical', this.showCritical);

    this.view = null; // {t0, t1} in ms from the trace start when zoomed; null = whole trace
    this.axisInner = h('div', { class: 'tl-inner' });
    this.brush = h('div', { class: 'tl-brush', hidden: true });
    this.axisTrack = h('div', { class: 'tl-axis-track', title: 'Drag to zoom into a time range · double-click to fit' }, this.axisInner, this.brush);
    const zbtn = (label, title, fn, cls = '') => h('button', { class: `zoom-btn ${cls}`, type: 'button', title, 'aria-label': title, onclick: fn }, label);
    this.fitBtn = zbtn('Fit', 'Show the whole trace (0)', () => this.fit(), 'zoom-fit');
    this.axis = h(
      'div',
      { class: 'tl-axis' },
      h(
        'div',
        { class: 'tl-axis-label' },
        (this.axisTitle = h('span', { class: 'tl-axis-title' }, 'Step')),
        h(
          'span',
          { class: 'zoom' },
          zbtn('−', 'Zoom out (−)', () => this.zoomBy(2)),
          zbtn('+', 'Zoom in (+)', () => this.zoomBy(0.5)),
          this.fitBtn,
        ),
      ),
      this.axisTrack,
    );
    this.setupAxisDrag();
    this.grid = h('div', { class: 'tl-grid' });
    this.rowsEl = h('div', { class: 'tl-rows' });
    this.svg = svgEl('svg', { class: 'tl-arrows', 'aria-hidden': 'true' });
    const defs = svgEl('defs', {});
    const marker = svgEl('marker', {
      id: 'fs-arrowhead',
      viewBox: '0 0 10 10',
      refX: '8',
      refY: '5',
      markerWidth: '7',
      markerHeight: '7',
      orient: 'auto-start-reverse',
    });
    marker.appendChild(svgEl('path', { d: 'M0,1 L9,5 L0,9 z', class: 'tl-arrowhead' }));
    defs.appendChild(marker);
    this.svg.appendChild(defs);
    this.arrowLayer = svgEl('g', {});
    this.svg.appendChild(this.arrowLayer);
    this.canvas = h('div', { class: 'tl-canvas' }, this.grid, this.svg, this.rowsEl);
    this.scroll = h(
      'div',
      { class: 'tl-scroll', tabindex: '0', role: 'listbox', 'aria-label': 'Steps (use ↑/↓ to move between steps)' },
      this.canvas,
    );
    this.root.replaceChildren(this.axis, this.scroll);

    this.renderRowsThrottled = rafThrottle(() => this.renderRows());
    this.scroll.addEventListener('scroll', this.renderRowsThrottled, { passive: true });
    this.rowsEl.addEventListener('click', (e) => {
      const row = e.target.closest('.tl-row');
      if (row) this.onSelect?.(row.dataset.id);
    });
    // Ctrl/⌘ + wheel (and trackpad pinch) zooms around the pointer; Shift + wheel pans.
    this.scroll.addEventListener(
      'wheel',
      (e) => {
        if (!this.layout) return;
        if (e.ctrlKey || e.metaKey) {
          e.preventDefault();
          this.zoomBy(Math.exp(e.deltaY * 0.0025), this.timeAtX(e.clientX));
        } else if (e.shiftKey && this.view) {
          e.preventDefault();
          const d = e.deltaY || e.deltaX;
          this.panBy((d / this.innerWidth()) * (this.view.t1 - this.view.t0));
        }
      },
      { passive: false },
    );
    this.ro = new ResizeObserver(() => this.measure());
    this.ro.observe(this.scroll);
  }

  /** Reads the width; returns true when it (or the label column's) changed. */
  readWidth() {
    const w = this.scroll.clientWidth;
    if (!w) return false;
    // A multi-service trace gets a service column at the left of the labels.
    const svcW = this.layout && this.layout.multi ? (w < 520 ? 64 : w < 800 ? 96 : 132) : 0;
    const labelW = (w < 520 ? 116 : w < 800 ? 170 : 220) + svcW;
    if (w === this.width && labelW === this.labelW && svcW === this.svcW) return false;
    this.width = w;
    this.labelW = labelW;
    this.svcW = svcW;
    this.root.style.setProperty('--label-w', `${labelW}px`);
    this.root.style.setProperty('--svc-w', `${svcW}px`);
    return true;
  }

  measure() {
    const h = this.scroll.clientHeight;
    const heightChanged = h !== this.height;
    this.height = h;
    if (this.readWidth()) {
      this.renderAxis();
      this.renderRows();
    } else if (heightChanged) this.renderRows();
  }

  /**
   * Shows a trace (or updates it in place when it is the same one). The scroll box is measured
   * once, after the writes that change its size and before those that fill it, so drawing a trace
   * costs one layout of the page, and the resize observer that runs after it finds nothing to
   * redraw.
   */
  setTrace(trace, now = Date.now(), selected = undefined) {
    const same = this.layout && this.layout.id === trace.id;
    this.layout = layoutTrace(trace, now);
    // Several services: rows carry a service chip and a coloured lane band.
    this.root.classList.toggle('multi-service', this.layout.multi);
    this.axisTitle.textContent = this.layout.multi ? 'Service · step' : 'Step';
    this.canvas.style.height = `${this.layout.rows.length * ROW_H}px`;
    if (!same) {
      this.renderedFor = null;
      this.view = null;
      this.root.classList.remove('zoomed');
    }
    if (selected !== undefined) this.selected = selected;
    this.height = this.scroll.clientHeight;
    const top = same ? this.scroll.scrollTop : 0;
    if (!same) this.scroll.scrollTop = 0;
    this.readWidth();
    this.renderAxis();
    this.renderRows(top);
  }

  /** Turns the critical-path highlight on or off (remembered for the next visit). */
  setShowCritical(on) {
    this.showCritical = !!on;
    try {
      localStorage.setItem('fs.criticalPath', on ? '1' : '0');
    } catch {
      /* storage disabled: this page only */
    }
    this.root.classList.toggle('show-critical', this.showCritical);
    this.renderRows();
  }

  /** Re-lays out a running trace as time passes. */
  tick(trace, now = Date.now()) {
    if (!this.layout || this.layout.id !== trace.id || trace.status !== 'running') return;
    this.setTrace(trace, now);
  }

  clear() {
    this.layout = null;
    this.rowsEl.replaceChildren();
    this.arrowLayer.replaceChildren();
    this.grid.replaceChildren();
    this.axisInner.replaceChildren();
    this.canvas.style.height = '0px';
  }

  select(stepId, { scroll = true } = {}) {
    const changed = (stepId || null) !== this.selected;
    this.selected = stepId || null;
    let moved = false;
    if (this.layout && stepId && scroll) {
      const i = this.layout.index.get(stepId);
      if (i !== undefined) moved = this.ensureVisible(i);
    }
    if (changed || moved) this.renderRows();
  }

  /** The id of the step `delta` rows away from the selection (first/last when none). */
  neighbour(delta) {
    if (!this.layout || !this.layout.rows.length) return null;
    const rows = this.layout.rows;
    const cur = this.selected ? this.layout.index.get(this.selected) : undefined;
    let i = !Number.isFinite(delta) ? (delta > 0 ? rows.length - 1 : 0) : cur === undefined ? (delta > 0 ? 0 : rows.length - 1) : cur + delta;
    i = Math.max(0, Math.min(rows.length - 1, i));
    return rows[i].step.id;
  }

  ensureVisible(i) {
    const top = i * ROW_H;
    const viewH = this.scroll.clientHeight || 300;
    if (top < this.scroll.scrollTop || top + ROW_H > this.scroll.scrollTop + viewH) {
      this.scroll.scrollTop = Math.max(0, top - viewH / 2 + ROW_H / 2);
      return true;
    }
    return false;
  }

  innerWidth() {
    return Math.max(40, this.width - this.labelW - PAD_L - PAD_R);
  }

  /** The visible time window in ms from the trace start. */
  win() {
    if (this.view) return this.view;
    return { t0: 0, t1: this.layout ? this.layout.total : 1 };
  }

  /** Time (ms) under a client x coordinate. */
  timeAtX(clientX) {
    const rect = this.scroll.getBoundingClientRect();
    const { t0, t1 } = this.win();
    const f = (clientX - rect.left - this.labelW - PAD_L) / this.innerWidth();
    return t0 + Math.min(1, Math.max(0, f)) * (t1 - t0);
  }

  setView(t0, t1) {
    const total = this.layout ? this.layout.total : 1;
    const minSpan = Math.max(total / 1e5, 0.01);
    let span = Math.max(minSpan, t1 - t0);
    if (span >= total) {
      this.view = null;
    } else {
      t0 = Math.max(0, Math.min(total - span, t0));
      this.view = { t0, t1: t0 + span };
    }
    this.root.classList.toggle('zoomed', !!this.view);
    this.renderAxis();
    this.renderRows();
  }

  /** Zooms by `factor` (<1 = in) around time `at` (default: the selected step, else the middle). */
  zoomBy(factor, at) {
    if (!this.layout) return;
    const { t0, t1 } = this.win();
    if (at === undefined) {
      const i = this.selected ? this.layout.index.get(this.selected) : undefined;
      const r = i !== undefined ? this.layout.rows[i] : null;
      at = r && r.end >= t0 && r.start <= t1 ? (r.start + r.end) / 2 : (t0 + t1) / 2;
    }
    const f = (at - t0) / (t1 - t0 || 1);
    const span = (t1 - t0) * factor;
    this.setView(at - f * span, at - f * span + span);
  }

  panBy(ms) {
    if (!this.view) return;
    this.setView(this.view.t0 + ms, this.view.t1 + ms);
  }

  fit() {
    this.setView(0, Infinity);
  }

  /** Zooms to a step (with a margin). */
  zoomToStep(stepId) {
    const i = this.layout && this.layout.index.get(stepId);
    if (i === undefined) return;
    const r = this.layout.rows[i];
    const d = Math.max(r.end - r.start, this.layout.total / 1e4, 0.05);
    this.setView(r.start - d * 0.15, r.end + d * 0.15);
  }

  setupAxisDrag() {
    let startX = null;
    const track = this.axisTrack;
    const local = (e) => e.clientX - track.getBoundingClientRect().left;
    track.addEventListener('pointerdown', (e) => {
      if (!this.layout || e.button !== 0) return;
      startX = local(e);
      track.setPointerCapture(e.pointerId);
      this.brush.hidden = false;
      this.brush.style.left = `${startX}px`;
      this.brush.style.width = '0px';
    });
    track.addEventListener('pointermove', (e) => {
      if (startX === null) return;
      const x = local(e);
      this.brush.style.left = `${Math.min(x, startX)}px`;
      this.brush.style.width = `${Math.abs(x - startX)}px`;
    });
    const end = (e) => {
      if (startX === null) return;
      const x = local(e);
      const a = Math.min(x, startX);
      const b = Math.max(x, startX);
      startX = null;
      this.brush.hidden = true;
      if (b - a < 4) return;
      const left = track.getBoundingClientRect().left;
      this.setView(this.timeAtX(left + a), this.timeAtX(left + b));
    };
    track.addEventListener('pointerup', end);
    track.addEventListener('pointercancel', () => {
      startX = null;
      this.brush.hidden = true;
    });
    track.addEventListener('dblclick', () => this.fit());
  }

  renderAxis() {
    if (!this.layout) return;
    const { t0, t1 } = this.win();
    const span = t1 - t0;
    const step = niceStep(span, Math.max(2, Math.floor(this.innerWidth() / 110)));
    const ticks = [];
    const lines = [];
    for (let k = Math.ceil(t0 / step - 1e-9); ; k++) {
      const t = k * step;
      if (t > t1 + step * 1e-9) break;
      const f = (t - t0) / span;
      const pct = `${f * 100}%`;
      ticks.push(h('div', { class: `tl-tick${f > 0.93 ? ' end' : ''}`, style: { left: pct } }, h('span', null, fmtTick(t, step))));
      lines.push(h('div', { class: 'tl-gridline', style: { left: pct } }));
      if (ticks.length > 60) break;
    }
    this.axisInner.replaceChildren(...ticks);
    this.grid.replaceChildren(...lines);
  }

  /**
   * Draws the rows in view (plus a margin) and their arrows. `top`: the scroll position, when the
   * caller knows it; the height is the one last measured (setTrace, or the resize observer).
   */
  renderRows(top = this.scroll.scrollTop) {
    const L = this.layout;
    if (!L) return;
    const n = L.rows.length;
    const viewH = this.height || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(n - 1, Math.ceil((top + viewH) / ROW_H) + OVERSCAN);
    const frag = document.createDocumentFragment();
    for (let i = first; i <= last; i++) frag.appendChild(this.renderRow(i));
    this.rowsEl.replaceChildren(frag);
    this.renderArrows(first, last);
    if (this.renderedFor !== L.id) {
      this.renderedFor = L.id;
      this.onRendered?.(L.id, n);
    }
  }

  renderRow(i) {
    const L = this.layout;
    const r = L.rows[i];
    const s = r.step;
    const { t0, t1 } = this.win();
    const span = t1 - t0;
    // Unclipped position (the clip box hides what is outside the window) and the visible part.
    const rawStart = (r.start - t0) / span;
    const rawEnd = Math.max(rawStart, (r.end - t0) / span);
    const startF = Math.min(1, Math.max(0, rawStart));
    const endF = Math.min(1, Math.max(0, rawEnd));
    const offLeft = rawEnd < 0;
    const offRight = rawStart > 1;
    const dur = r.end - r.start;
    const status = s.status;
    const selected = this.selected === s.id;
    const critical = r.critical && this.showCritical;

    const bar = h('div', {
      class: `tl-bar s-${status}${r.open ? ' open' : ''}`,
      style: { left: `${rawStart * 100}%`, width: `${(rawEnd - rawStart) * 100}%` },
    });
    // Operation ticks on the bar, when there is room to see them (the timeline view has the
    // emits only).
    const ops = stepOps(s);
    const barPx = (endF - startF) * this.innerWidth();
    const fullBarPx = (rawEnd - rawStart) * this.innerWidth();
    if (ops.length && ops.length <= 40 && fullBarPx > 24 && fullBarPx < 20000 && dur > 0) {
      for (const op of ops) {
        const f = Math.min(1, Math.max(0, (op.startTime - r.start) / dur));
        const wf = Math.min(1 - f, Math.max(0, (op.duration || 0) / dur));
        bar.appendChild(
          h('span', {
            class: `tl-op k-${op.kind}${op.ok === false ? ' fail' : ''}`,
            style: { left: `${f * 100}%`, width: `${wf * 100}%` },
          }),
        );
      }
    }

    const info = h('div', { class: 'tl-info' });
    info.appendChild(h('span', { class: 'tl-dur' }, r.open ? fmtDuration(dur) : s.duration == null ? 'no end' : fmtDuration(s.duration)));
    // An outgoing HTTP call: method and host/path as its label, the response code as a badge.
    const call = clientCall(s);
    let name;
    if (call) {
      name = h(
        'span',
        { class: 'tl-name tl-call' },
        h('span', { class: 'call-method' }, call.method || 'HTTP'),
        ' ',
        call.url ? hostPath(call.url) : s.name,
      );
      info.insertBefore(
        h(
          'span',
          {
            class: `badge b-http${call.failed ? ' fail' : ''}`,
            dataset: { kind: 'http', code: call.status ?? '' },
            title: call.status !== null ? `HTTP ${call.status}${call.errorType ? ` · ${call.errorType}` : ''}` : call.errorType || 'no response status',
          },
          call.status !== null ? String(call.status) : call.errorType || '—',
        ),
        info.firstChild.nextSibling,
      );
    } else name = h('span', { class: 'tl-name' }, s.name);
    const counts = s.operations || {};
    for (const [kind, what] of BADGES) {
      const c = counts[kind] || 0;
      if (!c) continue;
      info.appendChild(
        h(
          'span',
          { class: `badge b-${kind}`, dataset: { kind, count: c }, title: `${c} ${what}${c === 1 ? '' : 's'}` },
          icon(kind),
          String(c),
        ),
      );
    }
    if (r.llm) info.appendChild(h('span', { class: 'badge b-llm', dataset: { kind: 'llm', count: r.llm }, title: `${r.llm} LLM call${r.llm === 1 ? '' : 's'}` }, icon('llm'), String(r.llm)));
    if (r.retries) info.appendChild(h('span', { class: 'badge b-retry', dataset: { kind: 'retry', count: r.retries }, title: `${r.retries} retr${r.retries === 1 ? 'y' : 'ies'}` }, icon('retry'), String(r.retries)));
    if (r.external)
      for (const x of r.external)
        info.appendChild(h('span', { class: 'badge b-ext', title: `emit ${x.topic} → ${x.to} (runs in another trace)` }, icon('emit'), x.to));

    // Put the label where there is room: after the bar, before it, or (no room either side)
    // inside it.
    const iw = this.innerWidth();
    const need = 58 + (info.childElementCount - 1) * 38;
    const rightPx = (1 - endF) * iw + PAD_R;
    const leftPx = startF * iw + PAD_L;
    if (offLeft || offRight) {
      info.classList.add('off', offLeft ? 'off-left' : 'off-right');
      if (offLeft) info.style.left = '2px';
      else {
        info.style.right = '2px';
        info.classList.add('left');
      }
      info.insertBefore(h('span', { class: 'off-arrow' }, offLeft ? '◂' : '▸'), offLeft ? info.firstChild : null);
    } else if (rightPx >= need || (rightPx >= leftPx && barPx < need)) info.style.left = `calc(${endF * 100}% + 6px)`;
    else if (leftPx >= need || leftPx > barPx) {
      info.style.right = `calc(${(1 - startF) * 100}% + 6px)`;
      info.classList.add('left');
    } else {
      info.style.left = `calc(${startF * 100}% + 6px)`;
      info.classList.add('inside');
    }

    const statusIcon =
      status === 'failed' ? icon('x', 'st st-failed') : status === 'completed' ? icon('check', 'st st-completed') : h('span', { class: `st-dot s-${status}` });
    const label = h(
      'div',
      { class: 'tl-label', style: { paddingLeft: `${this.svcW + 10 + r.depth * 14}px` } },
      statusIcon,
      call ? h('span', { class: 'call-arrow', title: 'outgoing HTTP call' }, icon('call')) : null,
      name,
      critical ? h('span', { class: 'tl-crit', title: 'On the critical path', role: 'img', 'aria-label': 'on the critical path' }, icon('path')) : null,
      L.multi && r.service ? serviceChip(r.service, { cls: 'tl-svc' }) : null,
    );
    const title = `${call ? `${call.method || 'HTTP'} ${call.url || s.name}${call.status !== null ? ` → ${call.status}` : ''}` : s.name}${r.service && L.multi ? ` · ${r.service}` : ''} · ${status} · starts +${fmtDuration(r.start)} · ${s.duration == null ? 'no end yet' : fmtDuration(s.duration)}${r.critical ? ' · on the critical path' : ''}`;
    const style = { transform: `translateY(${i * ROW_H}px)` };
    if (L.multi && r.service) style['--svc-h'] = String(serviceHue(r.service));
    return h(
      'div',
      {
        class: `tl-row s-${status}${selected ? ' selected' : ''}${call ? ' k-client' : ''}${call && call.failed ? ' call-failed' : ''}${r.laneStart ? ' svc-start' : ''}${critical ? ' critical' : ''}`,
        style,
        role: 'option',
        'aria-selected': selected ? 'true' : 'false',
        title,
        dataset: { id: s.id, index: i, name: s.name, start: r.start, depth: r.depth, ...(L.multi && r.service ? { service: r.service } : {}), ...(r.parent ? { parent: r.parent } : {}), ...(r.critical ? { critical: '1' } : {}) },
      },
      label,
      h('div', { class: 'tl-track' }, h('div', { class: 'tl-inner' }, h('div', { class: 'tl-clip' }, bar), info)),
    );
  }

  renderArrows(first, last) {
    const L = this.layout;
    const layer = this.arrowLayer;
    if (!L.arrows.length) {
      layer.replaceChildren();
      return;
    }
    const x0 = this.labelW + PAD_L;
    const iw = this.innerWidth();
    const { t0, t1 } = this.win();
    const xAt = (ms) => x0 + Math.min(1, Math.max(0, (ms - t0) / (t1 - t0))) * iw;
    const frag = document.createDocumentFragment();
    let count = 0;
    for (const a of L.arrows) {
      const lo = Math.min(a.from, a.to);
      const hi = Math.max(a.from, a.to);
      if (hi < first || lo > last) continue;
      if (++count > 400) break;
      const src = L.rows[a.from];
      const dst = L.rows[a.to];
      if ((a.at < t0 && dst.start < t0) || (a.at > t1 && dst.start > t1)) continue;
      const x1 = Math.min(xAt(src.end), Math.max(xAt(src.start), xAt(a.at)));
      const x2 = xAt(dst.start) + 1.5;
      const down = a.to > a.from;
      const y1 = a.from * ROW_H + ROW_H / 2 + (down ? BAR_H / 2 : -BAR_H / 2);
      const y2 = a.to * ROW_H + ROW_H / 2 + (down ? -BAR_H / 2 - 1 : BAR_H / 2 + 1);
      const dy = (y2 - y1) * 0.55;
      const selected = this.selected && (this.selected === src.step.id || this.selected === dst.step.id);
      const path = svgEl('path', {
        d: `M${x1.toFixed(1)},${y1} C${x1.toFixed(1)},${(y1 + dy).toFixed(1)} ${x2.toFixed(1)},${(y2 - dy).toFixed(1)} ${x2.toFixed(1)},${y2}`,
        class: `tl-arrow${selected ? ' hl' : ''}`,
        'marker-end': 'url(#fs-arrowhead)',
        'data-from': src.step.id,
        'data-to': dst.step.id,
      });
      const t = svgEl('title', {});
      t.textContent = `emit ${a.topic} → ${a.target}`;
      path.appendChild(t);
      frag.appendChild(path);
    }
    layer.replaceChildren(frag);
  }

  destroy() {
    this.ro.disconnect();
  }
}
