// flowscope UI entry point: top bar, hash router, live stream wiring.
//
// Routes (everything after `#`, so links are shareable and the agent only serves `/`):
//   /traces[/<traceId>][?step=<spanId>&q=…&flow=…&status=…&step=…]   traces page
//   /groups[/<correlationId>]                                          groups page
//   /flows                                                             live flow status
// Filters use the API's parameter names. `transport=ws` (in the page's query string) switches the
// live stream from SSE to WebSocket.

import { LiveStream } from './api.js';
import { h, icon, isTyping } from './util.js';
import { TracesPage } from './traces.js';
import { GroupsPage } from './groups.js';
import { FlowsPage } from './flows.js';

const perf = (window.__flowscope = window.__flowscope || { events: 0, lastEventAt: 0 });

/** Parses `location.hash` into {view, id, params}. */
export function parseRoute(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const view = ['traces', 'groups', 'flows'].includes(parts[0]) ? parts[0] : 'traces';
  return { view, id: parts[1] || null, params: new URLSearchParams(query) };
}

/** Builds a hash for a route. */
export function routeHash({ view, id, params }) {
  let s = `#/${view}`;
  if (id) s += `/${encodeURIComponent(id)}`;
  const q = params instanceof URLSearchParams ? params : new URLSearchParams(params || {});
  for (const [k, v] of [...q]) if (v === '' || v === null || v === undefined) q.delete(k);
  const qs = q.toString();
  return qs ? `${s}?${qs}` : s;
}

/** Navigates; `replace` keeps history clean for keyboard moves. */
export function navigate(route, { replace = false } = {}) {
  const hash = routeHash(route);
  if (hash === location.hash) return;
  if (replace) {
    history.replaceState(null, '', hash);
    onRoute();
  } else {
    location.hash = hash;
  }
}

const app = {
  pages: {},
  current: null,
  liveState: 'connecting',
};

function topBar() {
  const nav = h(
    'nav',
    { class: 'nav', 'aria-label': 'Views' },
    [
      ['traces', 'Traces'],
      ['groups', 'Groups'],
      ['flows', 'Flows'],
    ].map(([view, label]) => h('a', { href: `#/${view}`, class: 'nav-link', dataset: { view } }, label)),
  );
  const live = h(
    'div',
    { class: 'live-indicator', id: 'live-indicator', role: 'status', 'aria-live': 'polite' },
    h('span', { class: 'live-dot' }),
    h('span', { class: 'live-text' }, 'Connecting…'),
  );
  return h(
    'header',
    { class: 'topbar' },
    h(
      'a',
      { class: 'brand', href: '#/traces', title: 'flowscope' },
      h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, h('span'), h('span'), h('span')),
      h('span', { class: 'brand-name' }, 'flowscope'),
    ),
    nav,
    h('div', { class: 'spacer' }),
    live,
    h('button', { class: 'btn btn-ghost btn-icon help-btn', type: 'button', title: 'Keyboard shortcuts (?)', onclick: toggleHelp }, '?'),
  );
}

function setLiveState(state, detail) {
  app.liveState = state;
  const el = document.getElementById('live-indicator');
  if (!el) return;
  el.dataset.state = state;
  const text = {
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    unavailable: 'Polling',
  }[state];
  el.querySelector('.live-text').textContent = text;
  el.title =
    state === 'unavailable'
      ? 'The live stream (/api/stream) is not available; refreshing every 3 s instead'
      : state === 'live'
        ? 'Receiving live updates'
        : detail && detail.message
          ? `The agent dropped this page's live stream (${detail.code}: ${detail.message}); reconnecting`
          : 'Waiting for the agent';
  // Pages poll while the stream is down.
  for (const p of Object.values(app.pages)) p.setPolling?.(state !== 'live');
}

function onLiveEvent(type, data) {
  perf.events += 1;
  perf.lastEventAt = performance.now();
  if (type === 'heartbeat') return;
  for (const p of Object.values(app.pages)) p.onLive?.(type, data);
}

function onRoute() {
  const route = parseRoute();
  for (const a of document.querySelectorAll('.nav-link')) {
    a.classList.toggle('active', a.dataset.view === route.view);
    if (a.dataset.view === route.view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const page = app.page(route.view);
  if (app.current !== page) {
    app.current?.hide();
    app.current = page;
    page.show();
  }
  page.route(route);
  document.title = page.title ? `${page.title()} · flowscope` : 'flowscope';
}

let helpEl = null;
function toggleHelp() {
  if (helpEl) {
    helpEl.remove();
    helpEl = null;
    return;
  }
  const row = (keys, what) => h('tr', null, h('td', null, keys.map((k) => h('kbd', null, k))), h('td', null, what));
  helpEl = h(
    'div',
    { class: 'modal-backdrop', onclick: (e) => e.target === helpEl && toggleHelp() },
    h(
      'div',
      { class: 'modal', role: 'dialog', 'aria-label': 'Keyboard shortcuts' },
      h('h3', null, 'Keyboard shortcuts'),
      h(
        'table',
        { class: 'keys' },
        row(['j', '↓'], 'Next trace (or next step when the timeline has focus)'),
        row(['k', '↑'], 'Previous trace (or previous step)'),
        row(['Enter'], 'Move focus to the timeline'),
        row(['['], 'Previous step'),
        row([']'], 'Next step'),
        row(['Esc'], 'Close step details / leave the search box'),
        row(['/'], 'Search traces'),
        row(['g', 't'], 'Traces'),
        row(['g', 'g'], 'Groups'),
        row(['g', 'f'], 'Flows'),
        row(['+', '−'], 'Zoom the timeline in / out'),
        row(['0'], 'Show the whole trace'),
        row(['z'], 'Zoom to the selected step'),
        row(['drag'], 'On the time axis: zoom into a range (double-click: fit)'),
        row(['Ctrl', 'wheel'], 'Zoom around the pointer; Shift + wheel pans'),
        row(['?'], 'This help'),
      ),
      h('button', { class: 'btn', type: 'button', onclick: toggleHelp }, 'Close'),
    ),
  );
  document.body.appendChild(helpEl);
}

let gPending = 0;
function onKey(e) {
  if (e.defaultPrevented || e.metaKey || e.ctrlKey || e.altKey) return;
  if (e.key === 'Escape' && helpEl) {
    toggleHelp();
    e.preventDefault();
    return;
  }
  if (isTyping(e)) return;
  if (e.key === '?') {
    toggleHelp();
    e.preventDefault();
    return;
  }
  if (e.key === 'g' && !gPending) {
    gPending = setTimeout(() => (gPending = 0), 800);
    return;
  }
  if (gPending) {
    clearTimeout(gPending);
    gPending = 0;
    const view = { t: 'traces', g: 'groups', f: 'flows' }[e.key];
    if (view) {
      navigate({ view });
      e.preventDefault();
      return;
    }
  }
  app.current?.onKey?.(e);
}

function main() {
  const root = document.getElementById('app');
  const main = h('main', { class: 'main', id: 'main' });
  root.replaceChildren(topBar(), main);
  const ctx = { navigate, parseRoute, routeHash };
  // Pages are built on first visit (less work before the first paint).
  const classes = { traces: TracesPage, groups: GroupsPage, flows: FlowsPage };
  app.pages = {};
  app.page = (view) => {
    if (!app.pages[view]) {
      app.pages[view] = new classes[view](main, ctx);
      app.pages[view].setPolling?.(app.liveState !== 'live' && app.liveState !== 'connecting');
    }
    return app.pages[view];
  };
  window.addEventListener('hashchange', onRoute);
  document.addEventListener('keydown', onKey);
  // Drop-down menus (<details class="menu">) close on any click outside them.
  document.addEventListener('click', (e) => {
    for (const m of document.querySelectorAll('details.menu[open]')) if (!m.contains(e.target) || e.target.closest('.menu-list a')) m.open = false;
  });
  onRoute();
  // The first route took what index.html prefetched for it; anything left over would be stale.
  window.__flowscopePrefetch = null;

  const transport = new URLSearchParams(location.search).get('transport') === 'ws' ? 'ws' : 'sse';
  const live = new LiveStream({
    transport,
    onEvent: onLiveEvent,
    onState: setLiveState,
    onResync: () => app.current?.resync?.(),
  });
  live.start();
  perf.live = live;
  perf.navigate = navigate;
}

main();
