// Small DOM and formatting helpers shared by every view. No dependencies.

/**
 * Creates an element. `attrs` keys: `class`, `style` (object or string), `dataset` (object),
 * `on<event>` (listener), anything else as an attribute (false/null/undefined skipped) or,
 * for a few known properties, as the property. Children: nodes, strings, numbers, arrays, null.
 * Text always goes through text nodes, never innerHTML.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'style') {
        if (typeof v === 'string') el.style.cssText = v;
        else
          for (const [prop, val] of Object.entries(v)) {
            // Custom properties (`--x`) only work through setProperty.
            if (prop.startsWith('--')) el.style.setProperty(prop, val);
            else el.style[prop] = val;
          }
      } else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

/** Replaces an element's children; like h(), skips null/false and flattens arrays. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** An inline SVG icon from the fixed set below (trusted markup, never user data). */
export function icon(name, cls = '') {
  let proto = ICON_NODES.get(name);
  if (!proto) {
    proto = document.createElement('span');
    proto.className = 'ico';
    proto.setAttribute('aria-hidden', 'true');
    proto.innerHTML = ICONS[name] || '';
    ICON_NODES.set(name, proto);
  }
  const span = proto.cloneNode(true);
  if (cls) span.className = `ico ${cls}`;
  return span;
}

const ICON_NODES = new Map();

const svg = (body) =>
  `<svg viewBox="0 0 16 16" width="14" height="14" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round">${body}</svg>`;

const ICONS = {
  state: svg('<ellipse cx="8" cy="3.8" rx="5" ry="2"/><path d="M3 3.8v8.4c0 1.1 2.2 2 5 2s5-.9 5-2V3.8"/><path d="M3 8c0 1.1 2.2 2 5 2s5-.9 5-2"/>'),
  emit: svg('<path d="M2 8h9"/><path d="M8 4.5 11.5 8 8 11.5"/><path d="M14 3v10"/>'),
  stream: svg('<path d="M1.5 5c1.6-1.4 3-1.4 4.5 0s2.9 1.4 4.5 0 2.9-1.4 4 0"/><path d="M1.5 10c1.6-1.4 3-1.4 4.5 0s2.9 1.4 4.5 0 2.9-1.4 4 0"/>'),
  llm: svg('<path d="M8 1.5l1.5 4 4 1.5-4 1.5-1.5 4-1.5-4-4-1.5 4-1.5z"/><path d="M13 11.5l.6 1.4 1.4.6-1.4.6-.6 1.4-.6-1.4-1.4-.6 1.4-.6z"/>'),
  retry: svg('<path d="M13.5 8A5.5 5.5 0 1 1 11.9 4.1"/><path d="M13.5 2v3.5H10"/>'),
  log: svg('<path d="M3 3.5h10M3 6.5h10M3 9.5h7M3 12.5h5"/>'),
  artifact: svg('<path d="M9 1.5H4a1 1 0 0 0-1 1v11a1 1 0 0 0 1 1h8a1 1 0 0 0 1-1V5.5z"/><path d="M9 1.5v4h4"/>'),
  error: svg('<circle cx="8" cy="8" r="6.3"/><path d="M8 4.8v3.8M8 11.1v.1"/>'),
  check: svg('<path d="M3 8.5 6.5 12 13 4.5"/>'),
  x: svg('<path d="M4 4l8 8M12 4l-8 8"/>'),
  copy: svg('<rect x="5.5" y="5.5" width="8" height="8" rx="1.5"/><path d="M10.5 5.5V3.5a1 1 0 0 0-1-1h-6a1 1 0 0 0-1 1v6a1 1 0 0 0 1 1h2"/>'),
  search: svg('<circle cx="7" cy="7" r="4.5"/><path d="M10.5 10.5 14 14"/>'),
  filter: svg('<path d="M2 3h12l-4.5 5.5V13l-3-1.5v-3z"/>'),
  back: svg('<path d="M10 3 5 8l5 5"/>'),
  link: svg('<path d="M6.5 9.5l3-3"/><path d="M9 4.5l1-1a2.8 2.8 0 0 1 4 4l-1 1"/><path d="M7 11.5l-1 1a2.8 2.8 0 0 1-4-4l1-1"/>'),
  download: svg('<path d="M8 2v8.5M4.5 7 8 10.5 11.5 7"/><path d="M2.5 13.5h11"/>'),
  clock: svg('<circle cx="8" cy="8" r="6.3"/><path d="M8 4.5V8l2.5 1.5"/>'),
  flag: svg('<path d="M3.5 14V2.5"/><path d="M3.5 3h8l-1.8 2.8 1.8 2.7h-8"/>'),
  shift: svg('<path d="M2.5 8h11"/><path d="M10 4.5 13.5 8 10 11.5"/><circle cx="3" cy="8" r="1.2"/>'),
  custom: svg('<path d="M5 3 2 8l3 5M11 3l3 5-3 5"/>'),
  group: svg('<rect x="1.5" y="3" width="4" height="4" rx="1"/><rect x="10.5" y="9" width="4" height="4" rx="1"/><path d="M5.5 5h3a1.5 1.5 0 0 1 1.5 1.5V9"/>'),
  call: svg('<path d="M9 2.5h4.5V7"/><path d="M13.5 2.5 7 9"/><path d="M11.5 9.5v3a1 1 0 0 1-1 1h-7a1 1 0 0 1-1-1v-7a1 1 0 0 1 1-1h3"/>'),
  shield: svg('<path d="M8 1.8 13 3.6v4c0 3.1-2.1 5.4-5 6.6-2.9-1.2-5-3.5-5-6.6v-4z"/>'),
  path: svg('<circle cx="3" cy="12.5" r="1.6"/><circle cx="13" cy="3.5" r="1.6"/><path d="M4.4 11.6 7 8.5h2.5l2.2-3.6"/>'),
  compare: svg('<rect x="1.5" y="2.5" width="5" height="11" rx="1"/><rect x="9.5" y="2.5" width="5" height="11" rx="1"/><path d="M3.5 6h1M3.5 9h1M11.5 6h1M11.5 9h1"/>'),
  chart: svg('<path d="M2 13.5h12"/><path d="M4 11V7.5M7 11V3.5M10 11V6M13 11V9"/>'),
};

/** Milliseconds → short human text: 0.42 ms, 95 ms, 1.25 s, 2m 05s, 1h 02m. */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1) return `${ms < 0.01 && ms > 0 ? '<0.01' : trim(ms.toFixed(2))} ms`;
  if (ms < 10) return `${trim(ms.toFixed(1))} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${trim((ms / 1000).toFixed(2))} s`;
  if (ms < 60_000) return `${trim((ms / 1000).toFixed(1))} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function trim(s) {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** An offset from a start: +0 ms, +41 ms, +1.2 s. */
export function fmtOffset(ms) {
  return `+${ms < 0.01 ? '0 ms' : fmtDuration(ms)}`;
}

/** Gap text as in the RFC: 400ms, 45s, 2m 5s, 1h 3m. */
export function fmtGap(ms) {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ''}`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${m % 60 ? ` ${m % 60}m` : ''}`;
}

/** Axis tick label for an offset in ms. */
export function fmtTick(ms, step) {
  const decimals = (unit) => Math.min(6, Math.max(0, Math.ceil(-Math.log10(step / unit) - 1e-9)));
  if (ms >= 1000 || step >= 1000) return `${trim((ms / 1000).toFixed(decimals(1000)))}s`;
  return `${trim(ms.toFixed(decimals(1)))}ms`;
}

/** Unix ms → "just now", "12s ago", "3m ago", "2h ago", "Nov 24". */
export function fmtRelative(unixMs, now = Date.now()) {
  const d = Math.max(0, now - unixMs);
  if (d < 5_000) return 'just now';
  if (d < 60_000) return `${Math.floor(d / 1000)}s ago`;
  if (d < 3_600_000) return `${Math.floor(d / 60_000)}m ago`;
  if (d < 86_400_000) return `${Math.floor(d / 3_600_000)}h ago`;
  const date = new Date(unixMs);
  return `${MONTHS[date.getMonth()]} ${date.getDate()}`;
}

// Hand-rolled dates: Intl/toLocale* costs ~20 ms on first use, which is felt on page load.
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Unix ms → local "HH:MM:SS.mmm". */
export function fmtClock(unixMs) {
  const d = new Date(unixMs);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Unix ms → full local date and time. */
export function fmtDateTime(unixMs) {
  const d = new Date(unixMs);
  return `${MONTHS[d.getMonth()]} ${d.getDate()}, ${d.getFullYear()} ${fmtClock(unixMs)}`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${trim((n / 1024).toFixed(1))} KB`;
  return `${trim((n / 1024 / 1024).toFixed(1))} MB`;
}

export function fmtNumber(n) {
  if (n === null || n === undefined) return '—';
  const [int, frac] = String(n).split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac ? `${grouped}.${frac}` : grouped;
}

/** US dollars: $0.0042, $0.04, $0.0123, $1.50 (sub-dollar amounts to 4 decimals, without trailing zeros past the cents). */
export function fmtCost(usd) {
  if (usd === null || usd === undefined || Number.isNaN(usd)) return null;
  if (usd === 0) return '$0';
  if (usd < 0.01) return `$${trim(usd.toPrecision(2))}`;
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  let s = usd.toFixed(4).replace(/0+$/, '');
  const decimals = s.length - s.indexOf('.') - 1;
  if (decimals < 2) s += '0'.repeat(2 - decimals);
  return `$${s}`;
}

/** A signed duration difference: +60 ms, −5 ms, ±0 ms (— when unknown). */
export function fmtDelta(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (Math.abs(ms) < 0.005) return '±0 ms';
  return `${ms > 0 ? '+' : '−'}${fmtDuration(Math.abs(ms))}`;
}

/** A signed count difference: +2, −1, ±0. */
export function fmtSigned(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return n > 0 ? `+${fmtNumber(n)}` : n < 0 ? `−${fmtNumber(-n)}` : '±0';
}

/** The CSS class of a difference where more is worse (time, errors): up, down or same. */
export function deltaClass(x) {
  if (x === null || x === undefined || Number.isNaN(x) || Math.abs(x) < 0.005) return 'delta-same';
  return x > 0 ? 'delta-up' : 'delta-down';
}

export function fmtPercent(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  const p = x * 100;
  return `${p === 100 || p === 0 ? p.toFixed(0) : p.toFixed(1)}%`;
}

export function shortId(id) {
  return id ? id.slice(0, 8) : '';
}

/** A "nice" tick step (1, 2, 5 × 10^n) so that `span` holds about `count` ticks. */
export function niceStep(span, count) {
  if (!(span > 0) || !(count > 0)) return 1;
  const raw = span / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
}

/** Copies text; works on plain-http origins too (falls back to a hidden textarea). */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall through */
  }
  const ta = h('textarea', { style: 'position:fixed;left:-9999px;top:0', readonly: true });
  ta.value = text;
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

/** A small "Copy" button that flashes "Copied". */
export function copyButton(getText, label = 'Copy') {
  const btn = h('button', { class: 'btn btn-ghost btn-xs copy-btn', type: 'button', title: 'Copy to clipboard' }, icon('copy'), h('span', null, label));
  btn.addEventListener('click', async (e) => {
    e.stopPropagation();
    const ok = await copyText(typeof getText === 'function' ? getText() : getText);
    const span = btn.querySelector('span');
    span.textContent = ok ? 'Copied' : 'Copy failed';
    btn.classList.toggle('copied', ok);
    setTimeout(() => {
      span.textContent = label;
      btn.classList.remove('copied');
    }, 1200);
  });
  return btn;
}

/** Calls `fn` at most once per animation frame, with the latest arguments. */
export function rafThrottle(fn) {
  let pending = false;
  let args = [];
  return (...a) => {
    args = a;
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn(...args);
    });
  };
}

/**
 * At most one call of `fn` per `ms`: `schedule()` arms a timer unless one is armed (calls in the
 * meantime fold into it); `cancel()` disarms it.
 */
export function coalesce(fn, ms) {
  let t = 0;
  return {
    schedule() {
      if (t) return;
      t = setTimeout(() => {
        t = 0;
        fn();
      }, ms);
    },
    cancel() {
      clearTimeout(t);
      t = 0;
    },
  };
}

export function debounce(fn, ms) {
  let t = 0;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}

/**
 * What the agent's per-trace caps dropped, as one sentence, or '' when nothing was:
 * `truncated: {steps, events, depth, strings}` (only counts > 0 are present).
 */
export function truncatedText(tr) {
  if (!tr || typeof tr !== 'object') return '';
  const n = (k) => (Number(tr[k]) > 0 ? Number(tr[k]) : 0);
  const count = (x, one, many) => `${fmtNumber(x)} ${x === 1 ? one : many}`;
  const parts = [];
  const dropped = [];
  if (n('steps')) dropped.push(count(n('steps'), 'step', 'steps'));
  if (n('events')) dropped.push(count(n('events'), 'event', 'events'));
  if (dropped.length) parts.push(`${dropped.join(' and ')} not kept`);
  if (n('depth')) parts.push(`${count(n('depth'), 'step', 'steps')} nested deeper than the limit ${n('depth') === 1 ? 'was' : 'were'} flattened`);
  if (n('strings')) parts.push(`${count(n('strings'), 'string', 'strings')} cut to the length limit`);
  return parts.length ? `Truncated by the agent's limits: ${parts.join('; ')}` : '';
}

/**
 * A stable hue (0–359) for a service name (FNV-1a), so a service has the same colour in the
 * list, the header and the timeline. The CSS turns it into colours readable in both themes.
 */
export function serviceHue(name) {
  let x = 0x811c9dc5;
  const s = String(name ?? '');
  for (let i = 0; i < s.length; i++) {
    x ^= s.charCodeAt(i);
    x = Math.imul(x, 0x01000193);
  }
  // Golden-ratio spread, so names that differ by one character still look different …
  const t = ((x >>> 0) * 0.618033988749895) % 1;
  // … then through hues spaced by eye rather than by degree (greens span a third of the HSL
  // wheel but look alike).
  const f = t * (HUES.length - 1);
  const i = Math.floor(f);
  return Math.round(HUES[i] + (HUES[i + 1] - HUES[i]) * (f - i)) % 360;
}

const HUES = [0, 25, 45, 100, 150, 180, 205, 225, 250, 275, 300, 330, 360];

/** A service name as a coloured chip. */
export function serviceChip(name, { cls = '', title } = {}) {
  return h('span', { class: `svc-chip${cls ? ` ${cls}` : ''}`, style: { '--svc-h': String(serviceHue(name)) }, title: title || `service ${name}`, dataset: { service: name } }, name);
}

/** The services a trace summary crossed, root first (`services`, else its `service`). */
export function servicesOf(t) {
  if (Array.isArray(t?.services) && t.services.length) return t.services;
  return t?.service ? [t.service] : [];
}

/** `host/path` of a URL for a short label (no scheme, query or fragment); the input when unparsable. */
export function hostPath(url) {
  if (typeof url !== 'string') return '';
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname === '/' ? '' : u.pathname}` || url;
  } catch {
    return url;
  }
}

/** A status pill: completed / failed / running / waiting / active / stalled. */
export function statusPill(status) {
  return h('span', { class: `pill pill-${status}` }, h('span', { class: 'dot' }), status);
}

export function statusDot(status, title) {
  return h('span', { class: `status-dot s-${status}`, title: title || status, role: 'img', 'aria-label': status });
}

/** True when the event target is a text field (so single-key shortcuts don't fire). */
export function isTyping(e) {
  const t = e.target;
  if (!t || !t.tagName) return false;
  const tag = t.tagName;
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || t.isContentEditable;
}

/**
 * A URL that is safe to put in an href or src, absolute, or null. Only http(s) is allowed:
 * relative and same-origin paths, protocol-relative `//host/x` (remote) and http(s) URLs.
 * javascript:, data:, blob:, vbscript:, file: and every other scheme are refused. The browser's
 * own parser decides, so tricks like `java\tscript:` or leading spaces resolve as it would.
 */
export function safeUrl(url) {
  const u = parseSafe(url);
  return u ? u.href : null;
}

/** The host of a safe URL that points away from this page's origin, or null (local or unsafe). */
export function remoteHost(url) {
  const u = parseSafe(url);
  return u && u.origin !== location.origin ? u.host : null;
}

function parseSafe(url) {
  if (typeof url !== 'string' || !url.trim()) return null;
  let u;
  try {
    u = new URL(url, location.href);
  } catch {
    return null;
  }
  return u.protocol === 'http:' || u.protocol === 'https:' ? u : null;
}
