// flowscope UI entry point: top bar, hash router, live stream wiring.
//
// Routes (everything after `#`, so links are shareable and the agent only serves `/`):
//   /traces[/<traceId>][?step=<spanId>&q=…&flow=…&service=…&status=…&stepName=…]   traces page
//   /groups[/<correlationId>]                                          groups page
//   /flows                                                             live flow status
//   /flows/<flow>/insights[?since=<unix ms>&until=<unix ms>]          one flow's insights
//   /compare?a=<traceId>&b=<traceId>                                   two traces step by step
// Filters use the API's parameter names. `transport=ws` (in the page's query string) switches the
// live stream from SSE to WebSocket. An agent started with `--token` gets a token form ("access token" below).

import { LiveStream, api, setToken, onUnauthorized } from './api.js';
import { h, icon, isTyping } from './util.js';
import { TracesPage } from './traces.js';
import { GroupsPage } from './groups.js';
import { FlowsPage, InsightsPage, ComparePage } from './flows.js';

// Created by whichever script runs first (prefetch.js, traces.js, api.js); the counters start here.
const perf = (window.__flowscope = window.__flowscope || {});
perf.events ||= 0;
perf.lastEventAt ||= 0;

/** Parses `location.hash` into {view, id, params}. A flow's insights are view `insights`, id = the flow. */
export function parseRoute(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] === 'flows' && parts[1] && parts[2] === 'insights') return { view: 'insights', id: parts[1], params };
  const view = ['traces', 'groups', 'flows', 'compare'].includes(parts[0]) ? parts[0] : 'traces';
  return { view, id: parts[1] || null, params };
}

/** Builds a hash for a route. */
export function routeHash({ view, id, params }) {
  let s = view === 'insights' ? `#/flows/${encodeURIComponent(id)}/insights` : `#/${view}`;
  if (id && view !== 'insights') s += `/${encodeURIComponent(id)}`;
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

// The top bar's tab of the views that have none of their own.
const NAV_OF = { insights: 'flows', compare: 'traces' };

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
    h('button', { class: 'btn btn-xs token-btn', id: 'token-btn', type: 'button', hidden: true, title: 'This agent needs an access token', onclick: () => showTokenForm() }, 'Enter token'),
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
    locked: 'Token needed',
  }[state];
  el.querySelector('.live-text').textContent = text;
  el.title =
    state === 'locked'
      ? 'The agent needs an access token'
      : state === 'unavailable'
      ? 'The live stream (/api/stream) is not available; refreshing every 3 s instead'
      : state === 'live'
        ? 'Receiving live updates'
        : detail && detail.message
          ? `The agent dropped this page's live stream (${detail.code}: ${detail.message}); reconnecting`
          : 'Waiting for the agent';
  // Pages poll while the stream is down (not while locked: every poll would be refused).
  for (const p of Object.values(app.pages)) p.setPolling?.(state !== 'live' && state !== 'locked');
}

function onLiveEvent(type, data, seq) {
  perf.events += 1;
  perf.lastEventAt = performance.now();
  if (type === 'heartbeat') return;
  for (const p of Object.values(app.pages)) p.onLive?.(type, data, seq);
}

function onRoute() {
  const route = parseRoute();
  const tab = NAV_OF[route.view] || route.view;
  for (const a of document.querySelectorAll('.nav-link')) {
    a.classList.toggle('active', a.dataset.view === tab);
    if (a.dataset.view === tab) a.setAttribute('aria-current', 'page');
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
        row(['x'], 'Pick the open trace to compare (two at most)'),
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

// ---------------------------------------------------------------- access token

const token = { dialog: null, input: null, error: null, submit: null };

/**
 * The agent refused a request for want of a (valid) token: stop the live stream and polling, and
 * ask for one. `sent`: the token that was refused (null if there was none).
 */
function locked(_err, { token: sent }) {
  if (sent) setToken(null); // it is wrong: don't send it again
  if (app.liveState !== 'locked') {
    app.live?.stop();
    setLiveState('locked');
  }
  document.getElementById('token-btn').hidden = false;
  showTokenForm(sent ? 'The agent did not accept this token.' : null);
}

/** The token form: a modal dialog with a password field. */
function showTokenForm(error = null) {
  if (!token.dialog) token.dialog = buildTokenForm();
  const { dialog } = token;
  if (error !== null || !dialog.open) setTokenError(error);
  if (!dialog.open) {
    dialog.showModal();
    token.input.focus();
  }
}

function setTokenError(message) {
  token.error.hidden = !message;
  token.error.textContent = message || '';
  token.input.setAttribute('aria-invalid', String(!!message));
}

function buildTokenForm() {
  token.input = h('input', {
    id: 'token-input',
    class: 'input',
    type: 'password',
    name: 'token',
    autocomplete: 'current-password',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-help token-error',
  });
  token.error = h('p', { id: 'token-error', class: 'token-error', role: 'alert', hidden: true });
  token.submit = h('button', { class: 'btn', type: 'submit' }, 'Unlock');
  const form = h(
    'form',
    { id: 'token-form', class: 'token-form', novalidate: true, onsubmit: submitToken },
    h('h3', { id: 'token-title' }, 'Access token needed'),
    h('p', { id: 'token-help', class: 'muted' }, 'This agent was started with ', h('code', null, '--token'), '. Enter the token to see its traces. It is kept in this tab only, until you close it.'),
    h('label', { class: 'field', for: 'token-input' }, h('span', { class: 'field-label' }, 'Token')),
    token.input,
    token.error,
    h('div', { class: 'token-actions' }, token.submit),
  );
  const dialog = h('dialog', { class: 'modal token-dialog', id: 'token-dialog', 'aria-labelledby': 'token-title' }, form);
  // Esc closes it; the top bar's "Enter token" button opens it again.
  document.body.appendChild(dialog);
  return dialog;
}

async function submitToken(e) {
  e.preventDefault();
  const value = token.input.value.trim();
  if (!value) {
    setTokenError('Enter the token.');
    token.input.focus();
    return;
  }
  token.submit.disabled = true;
  setToken(value);
  try {
    await api.check();
  } catch (err) {
    // A 401 comes back through locked(), which clears the token and says so.
    if (err.status !== 401) setTokenError(`Cannot check the token: ${err.message}`);
    token.input.select();
    return;
  } finally {
    token.submit.disabled = false;
  }
  unlocked();
}

/** A token was accepted: close the form, reconnect the stream and reload what is on screen. */
function unlocked() {
  token.input.value = '';
  setTokenError(null);
  token.dialog.close();
  document.getElementById('token-btn').hidden = true;
  app.live.restart();
  for (const p of Object.values(app.pages)) p.resync?.();
}

let gPending = 0;
function onKey(e) {
  if (e.defaultPrevented || e.metaKey || e.ctrlKey || e.altKey) return;
  if (token.dialog && token.dialog.open) return; // the token form is modal
  if (e.key === 'Escape' && helpEl) {
    toggleHelp();
    e.preventDefault();
    return;
  }
  if (isTyping(e)) return;
  // Enter and Space on a button or link activate it, whatever the page's shortcuts say.
  if ((e.key === 'Enter' || e.key === ' ') && e.target.closest?.('button, a[href], summary, [role=button], [role=menuitem]')) return;
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
  const classes = { traces: TracesPage, groups: GroupsPage, flows: FlowsPage, insights: InsightsPage, compare: ComparePage };
  app.pages = {};
  app.page = (view) => {
    if (!app.pages[view]) {
      app.pages[view] = new classes[view](main, ctx);
      app.pages[view].setPolling?.(!['live', 'connecting', 'locked'].includes(app.liveState));
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
  app.live = live;
  onUnauthorized(locked);
  live.start();
  perf.live = live;
  perf.navigate = navigate;
}

main();
