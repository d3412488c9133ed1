// Groups page: correlated traces (a chat thread, an order) as one logical flow — consecutive
// traces with the gaps between them, like the RFC's logical-flow picture.

import { api, ChangesDuringLoad } from './api.js';
import { h, icon, fmtCost, fmtDuration, fmtGap, fmtRelative, fmtClock, fmtDateTime, fmtNumber, statusDot, statusPill, shortId, rafThrottle, setChildren, truncatedText } from './util.js';

export class GroupsPage {
  constructor(main, ctx) {
    this.ctx = ctx;
    this.groups = [];
    this.liveDuringLoad = new ChangesDuringLoad(1000);
    this.selectedId = null;
    this.group = null;
    this.visible = false;
    this.renderListSoon = rafThrottle(() => this.renderList());

    this.list = h('ul', { class: 'group-list', role: 'listbox', 'aria-label': 'Groups' });
    this.list.addEventListener('click', (e) => {
      const li = e.target.closest('.group-item');
      if (li) this.ctx.navigate({ view: 'groups', id: li.dataset.groupId });
    });
    this.listEmpty = h('div', { class: 'empty', hidden: true });
    this.count = h('span', { class: 'list-count' });
    this.listPane = h(
      'aside',
      { class: 'list-pane', 'aria-label': 'Group list' },
      h('div', { class: 'list-toolbar' }, h('h2', { class: 'pane-title' }, 'Groups'), h('span', { class: 'spacer' }), this.count),
      h('p', { class: 'muted small pane-help' }, 'Traces linked by a correlation id: a chat thread, an order, a user session.'),
      h('div', { class: 'list-scroll' }, this.list, this.listEmpty),
    );
    this.detail = h('div', { class: 'group-detail' });
    this.pane = h(
      'section',
      { class: 'timeline-pane group-pane', 'aria-label': 'Group' },
      this.detail,
    );
    this.el = h('div', { class: 'page groups-page', hidden: true }, this.listPane, this.pane);
    main.appendChild(this.el);
  }

  title() {
    return this.group ? `Group ${this.group.name}` : 'Groups';
  }

  show() {
    this.visible = true;
    this.el.hidden = false;
    this.loadList();
    this.timer = setInterval(() => this.tick(), 5000);
  }

  hide() {
    this.visible = false;
    this.el.hidden = true;
    clearInterval(this.timer);
  }

  resync() {
    this.loadList();
    if (this.selectedId) this.refreshGroup();
  }

  setPolling(on) {
    clearInterval(this.pollTimer);
    if (on)
      this.pollTimer = setInterval(() => {
        if (!this.visible) return;
        this.loadList();
        if (this.selectedId) this.loadGroup(this.selectedId, { quiet: true });
      }, 3000);
  }

  route(route) {
    this.el.classList.toggle('has-selection', !!route.id);
    if (route.id !== this.selectedId || !this.group) {
      this.selectedId = route.id;
      this.renderList();
      if (route.id) this.loadGroup(route.id);
      else this.renderEmpty();
    }
  }

  async loadList() {
    // Group changes that arrive while the list is on its way are applied on top when the list
    // may predate them (its `seq`, as for traces).
    const live = this.liveDuringLoad;
    live.begin();
    let again = false;
    try {
      const { groups, seq } = await api.groups();
      this.groups = groups || [];
      this.error = null;
      const newer = live.newer(seq, (data) => this.groups.some((g) => g.id === data.id));
      again = newer === null; // too many to keep: the next list has them
      for (const data of newer || []) this.upsertGroup(data);
    } catch (e) {
      this.error = e;
    } finally {
      live.end();
    }
    this.renderList();
    if (again) this.loadList();
  }

  /** Puts a group summary in the list, most recently active first. */
  upsertGroup(data) {
    const i = this.groups.findIndex((g) => g.id === data.id);
    if (i >= 0) this.groups.splice(i, 1);
    this.groups.unshift(data);
    this.groups.sort((a, b) => b.lastActivity - a.lastActivity);
  }

  onLive(type, data, seq = null) {
    if (!this.visible || !data) return;
    if (type === 'group.updated') {
      this.liveDuringLoad.keep(data.id, seq, data);
      this.upsertGroup(data);
      this.renderListSoon();
      if (data.id === this.selectedId) this.refreshGroup();
    } else if (type.startsWith('trace.') && data.correlationId && data.correlationId === this.selectedId) {
      this.refreshGroup();
    }
  }

  refreshGroup() {
    if (this.inflight) {
      this.dirty = true;
      return;
    }
    this.inflight = true;
    this.loadGroup(this.selectedId, { quiet: true }).finally(() => {
      this.inflight = false;
      if (this.dirty) {
        this.dirty = false;
        setTimeout(() => this.refreshGroup(), 100);
      }
    });
  }

  tick() {
    const now = Date.now();
    for (const el of this.el.querySelectorAll('[data-rel]')) el.textContent = fmtRelative(Number(el.dataset.rel), now);
  }

  renderList() {
    const now = Date.now();
    this.count.textContent = `${this.groups.length}`;
    this.list.replaceChildren(
      ...this.groups.map((g) => {
        const md = g.metadata || {};
        const sel = g.id === this.selectedId;
        return h(
          'li',
          { class: `group-item trace-item s-${g.status}${sel ? ' selected' : ''}`, role: 'option', 'aria-selected': String(sel), dataset: { groupId: g.id } },
          statusDot(g.status),
          h(
            'div',
            { class: 'ti-main' },
            h('div', { class: 'ti-top' }, h('span', { class: 'ti-flow' }, g.name || g.id), h('span', { class: 'spacer' }), h('span', { class: 'ti-dur' }, g.totalDuration != null ? fmtDuration(g.totalDuration) : '—')),
            h(
              'div',
              { class: 'ti-sub' },
              h('span', { class: 'ti-cid' }, icon('group'), g.correlationId || g.id),
              h('span', null, `${md.totalTraces ?? 0} trace${md.totalTraces === 1 ? '' : 's'}`),
              md.gapsCount ? h('span', null, `${md.gapsCount} gap${md.gapsCount === 1 ? '' : 's'}`) : null,
              md.errorCount ? h('span', { class: 'ti-err', title: `${md.errorCount} error${md.errorCount === 1 ? '' : 's'}` }, icon('error'), String(md.errorCount)) : null,
              h('span', { class: 'spacer' }),
              h('span', { class: 'ti-time', dataset: { rel: g.lastActivity }, title: `Last activity ${fmtDateTime(g.lastActivity)}` }, fmtRelative(g.lastActivity, now)),
            ),
          ),
        );
      }),
    );
    this.listEmpty.hidden = this.groups.length > 0;
    if (!this.listEmpty.hidden)
      setChildren(this.listEmpty, 
        this.error
          ? h('div', null, h('strong', null, 'Cannot load groups'), h('p', { class: 'muted' }, this.error.message))
          : h(
              'div',
              null,
              h('strong', null, 'No groups yet'),
              h('p', { class: 'muted' }, 'Traces join a group when they share a correlation id (', h('code', null, 'correlate(id)'), ', the ', h('code', null, 'X-Motia-Correlation-Id'), ' header, or an emit from a correlated trace).'),
            ),
      );
  }

  renderEmpty() {
    this.group = null;
    setChildren(this.detail, 
      h(
        'div',
        { class: 'pane-empty' },
        h('div', { class: 'pane-empty-art', 'aria-hidden': 'true' }, h('span'), h('span'), h('span')),
        h('h2', null, 'Select a group'),
        h('p', { class: 'muted' }, 'A group shows related traces in order, with the waiting time between them.'),
      ),
    );
  }

  async loadGroup(id, { quiet = false } = {}) {
    if (!quiet) setChildren(this.detail, h('div', { class: 'pane-msg' }, h('div', { class: 'spinner' })));
    try {
      const g = await api.group(id);
      if (id !== this.selectedId) return;
      this.group = g;
      this.renderGroup();
      document.title = `${this.title()} · flowscope`;
    } catch (e) {
      if (id !== this.selectedId) return;
      this.group = null;
      setChildren(this.detail, 
        h('div', { class: 'pane-msg' }, h('div', { class: 'empty' }, h('strong', null, e.status === 404 ? 'Group not found' : 'Cannot load the group'), h('p', { class: 'muted' }, e.message))),
      );
    }
  }

  renderGroup() {
    const g = this.group;
    const md = g.metadata || {};
    const now = Date.now();
    const traces = g.traces || [];
    const gaps = new Map((g.gaps || []).map((x) => [x.afterTraceId, x]));

    const head = h(
      'div',
      { class: 'group-head' },
      h(
        'div',
        { class: 'tl-title-row' },
        h('button', { class: 'btn btn-ghost btn-icon back-btn', type: 'button', 'aria-label': 'Back to groups', onclick: () => this.ctx.navigate({ view: 'groups' }) }, icon('back')),
        statusDot(g.status),
        h('h2', { class: 'tl-title' }, g.name || g.id),
        statusPill(g.status),
        h('span', { class: 'spacer' }),
        h('a', { class: 'btn btn-ghost btn-xs open-in-list', href: `#/traces?correlationId=${encodeURIComponent(g.id)}` }, 'Open in trace list'),
      ),
      h(
        'div',
        { class: 'meta-row' },
        meta('Correlation id', h('span', { class: 'mono' }, g.correlationId || g.id)),
        meta('Traces', `${md.totalTraces ?? traces.length} (${md.completedTraces ?? 0} completed${md.activeTraces ? `, ${md.activeTraces} active` : ''})`),
        meta('Total duration', g.totalDuration != null ? fmtDuration(g.totalDuration) : '—'),
        meta('Steps', `${fmtNumber(md.totalSteps)} · avg ${fmtDuration(md.averageStepDuration)}`),
        meta('Waiting', md.gapsCount ? `${md.gapsCount} gap${md.gapsCount === 1 ? '' : 's'} · ${fmtGap(md.totalGapDuration || 0)}` : 'no gaps'),
        meta('LLM', llmRollup(md), 'llm'),
        meta('Errors', md.errorCount ? h('span', { class: 'rollup-errors' }, icon('error'), fmtNumber(md.errorCount)) : '0', 'errors'),
        meta('Started', h('span', { title: fmtDateTime(g.startTime) }, h('span', { dataset: { rel: g.startTime } }, fmtRelative(g.startTime, now)), h('span', { class: 'muted' }, ` · ${fmtClock(g.startTime)}`))),
      ),
      overview(g, traces),
    );

    const seq = h('ol', { class: 'flow-seq', 'aria-label': 'Traces in order' });
    traces.forEach((t, i) => {
      seq.appendChild(traceCard(t, i, now));
      if (i < traces.length - 1) {
        const gap = gaps.get(t.id);
        const next = traces[i + 1];
        if (gap) {
          seq.appendChild(
            h(
              'li',
              { class: 'gap', dataset: { gapMs: gap.duration }, 'aria-label': `Gap: ${fmtGap(gap.duration)}` },
              h('span', { class: 'gap-line' }),
              h('span', { class: 'gap-label' }, icon('clock'), `Gap: ${fmtGap(gap.duration)}`),
            ),
          );
        } else {
          const linked = next.parentTraceId === t.id;
          seq.appendChild(
            h('li', { class: 'gap no-gap' }, h('span', { class: 'gap-line' }), h('span', { class: 'gap-label' }, linked ? 'triggered by an emit' : 'continues')),
          );
        }
      }
    });
    setChildren(this.detail, h('div', { class: 'group-scroll' }, head, seq));
  }
}

function meta(label, value, key) {
  return h('div', { class: 'meta', dataset: key ? { meta: key } : undefined }, h('span', { class: 'meta-label' }, label), h('span', { class: 'meta-value' }, value));
}

/** The group's LLM usage over all its traces: calls · tokens · cost (the agent's rollup). */
function llmRollup(md) {
  const calls = md.llmCalls || 0;
  if (!calls) return h('span', { class: 'muted' }, 'no calls');
  const cost = fmtCost(md.totalCost);
  return h(
    'span',
    { class: 'rollup-llm' },
    h('span', { class: 'rollup-calls' }, `${fmtNumber(calls)} call${calls === 1 ? '' : 's'}`),
    h('span', { class: 'muted' }, ' · '),
    h('span', { class: 'rollup-tokens' }, `${fmtNumber(md.totalTokens || 0)} tokens`),
    cost ? [h('span', { class: 'muted' }, ' · '), h('span', { class: 'rollup-cost' }, cost)] : null,
  );
}

function traceCard(t, i, now) {
  const names = t.stepNames || [];
  const chain = h('div', { class: 'step-chain' });
  names.forEach((n, k) => {
    if (k) chain.appendChild(h('span', { class: 'chain-arrow', 'aria-hidden': 'true' }, '→'));
    chain.appendChild(h('span', { class: `chain-step${k === 0 ? ' entry' : ''}` }, n));
  });
  // The agent lists at most 50 distinct step names per trace.
  if (t.stepNamesTruncated) chain.appendChild(h('span', { class: 'chain-more', title: 'The agent lists the first 50 distinct step names; open the trace for all of them' }, '+ more steps'));
  if (t.status === 'running') chain.appendChild(h('span', { class: 'chain-step running' }, 'running…'));
  const md = t.metadata || {};
  return h(
    'li',
    { class: `trace-card s-${t.status}`, dataset: { traceId: t.id } },
    h(
      'a',
      { href: `#/traces/${t.id}`, class: 'trace-card-link' },
      h('span', { class: 'seq-index' }, String(i + 1)),
      h(
        'div',
        { class: 'tc-main' },
        h(
          'div',
          { class: 'tc-top' },
          statusDot(t.status),
          h('strong', null, `Trace ${i + 1}`),
          h('span', { class: 'muted' }, ` · ${t.entryPoint?.type || ''} · ${t.entryPoint?.stepName || t.flowName}`),
          md.errorCount ? h('span', { class: 'ti-err' }, icon('error'), `${md.errorCount}`) : null,
          truncatedText(t.truncated) ? h('span', { class: 'ti-trunc', title: truncatedText(t.truncated) }, 'truncated') : null,
          h('span', { class: 'spacer' }),
          h('span', { class: 'tc-dur' }, t.duration != null ? fmtDuration(t.duration) : fmtDuration(now - t.startTime)),
          h('span', { class: 'muted tc-time', dataset: { rel: t.startTime }, title: fmtDateTime(t.startTime) }, fmtRelative(t.startTime, now)),
        ),
        chain,
        h('div', { class: 'tc-foot muted small' }, h('span', { class: 'mono' }, shortId(t.id)), t.flowName ? ` · ${t.flowName}` : '', t.parentTraceId ? ` · triggered by ${shortId(t.parentTraceId)}` : ''),
      ),
    ),
  );
}

/**
 * A proportional strip: each trace as a block at its real position. Very long gaps are
 * compressed (shown hatched) so short traces stay visible next to minutes of waiting.
 */
function overview(g, traces) {
  if (traces.length < 2) return null;
  const segs = [];
  const serverGaps = new Map((g.gaps || []).map((x) => [x.beforeTraceId, x.duration]));
  let cursor = traces[0].startTime;
  for (const t of traces) {
    const start = t.startTime;
    const end = start + (t.duration ?? Math.max(0, Date.now() - start));
    if (start > cursor) segs.push({ gap: true, d: serverGaps.get(t.id) ?? start - cursor });
    segs.push({ t, d: Math.max(end - Math.max(start, cursor), 0) });
    cursor = Math.max(cursor, end);
  }
  // Weight: traces by their duration, gaps by sqrt (compressed), each with a floor.
  const traceSum = segs.filter((s) => !s.gap).reduce((a, s) => a + s.d, 0) || 1;
  const weights = segs.map((s) => (s.gap ? Math.max(0.05, Math.sqrt(s.d / traceSum) * 0.3) : Math.max(0.04, s.d / traceSum)));
  const sum = weights.reduce((a, b) => a + b, 0);
  return h(
    'div',
    { class: 'overview', 'aria-hidden': 'true' },
    segs.map((s, k) =>
      s.gap
        ? h('div', { class: 'ov-gap', style: { flexGrow: weights[k] / sum }, title: `Gap: ${fmtGap(s.d)}` }, h('span', null, fmtGap(s.d)))
        : h('a', { class: `ov-trace s-${s.t.status}`, href: `#/traces/${s.t.id}`, style: { flexGrow: weights[k] / sum }, title: `${s.t.entryPoint?.stepName || ''} · ${fmtDuration(s.t.duration)}` }),
    ),
  );
}
