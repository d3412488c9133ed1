// Step details: operations with timings, logs, error with stack, LLM calls (prompt/response,
// tokens, cost), artifacts, retries, checkpoints, transitions and custom events.

import { h, icon, copyButton, fmtDuration, fmtOffset, fmtBytes, fmtNumber, fmtCost, statusPill, safeUrl, remoteHost, serviceChip, hostPath } from './util.js';
import { clientCall, callerStep, calleesOf } from './timeline.js';

// Attributes shown in the HTTP section of a client step rather than in the attribute list.
const HTTP_ATTRS = new Set(['http.request.method', 'url.full', 'http.response.status_code', 'error.type']);

const REDACTION = /\[(?:redacted|REDACTED)[^\]]*\]|<redacted>|«redacted»|\*{4,}|\bREDACTED\b/;
const LONG_TEXT = 600;

/**
 * Builds the details panel body for one step of a trace: the step in full (`ops`, `events`), as
 * `GET /api/traces/{id}/steps/{spanId}` returns it. `unavailable` (a message, with `onRetry`): the
 * full step could not be loaded, so `step` is the timeline's summary and only its facts and error
 * are shown.
 */
export function renderStepDetails(step, trace, { onClose, onPrev, onNext, onZoom, unavailable = null, onRetry } = {}) {
  const start = step.startTime ?? 0;
  const events = step.events || [];
  const ops = step.ops || [];
  const llm = events.filter((e) => e.type === 'llm');
  const logs = events.filter((e) => e.type === 'log');
  const artifacts = events.filter((e) => e.type === 'artifact');
  const other = events.filter((e) => !['llm', 'log', 'artifact'].includes(e.type));
  const dur = step.duration;
  const call = clientCall(step);
  const caller = callerStep(trace, step);
  const callees = call ? calleesOf(trace, step) : [];
  const critical = Array.isArray(trace?.criticalPath) && trace.criticalPath.includes(step.id);

  const head = h(
    'div',
    { class: 'dt-head' },
    h(
      'div',
      { class: 'dt-title' },
      call ? h('span', { class: 'call-arrow', title: 'outgoing HTTP call' }, icon('call')) : null,
      h('h3', { class: 'dt-name', title: step.name }, step.name),
      statusPill(step.status),
      critical
        ? h('span', { class: 'crit-chip', title: 'This step is one of those whose work decided when the trace ended' }, icon('path'), 'On the critical path')
        : null,
    ),
    h(
      'div',
      { class: 'dt-actions' },
      onZoom ? h('button', { class: 'btn btn-ghost btn-xs dt-zoom', type: 'button', title: 'Zoom the timeline to this step (z)', onclick: onZoom }, 'Zoom to step') : null,
      h('button', { class: 'btn btn-ghost btn-xs', type: 'button', title: 'Previous step ([)', onclick: onPrev, 'aria-label': 'Previous step' }, '‹'),
      h('button', { class: 'btn btn-ghost btn-xs', type: 'button', title: 'Next step (])', onclick: onNext, 'aria-label': 'Next step' }, '›'),
      h('button', { class: 'btn btn-ghost btn-xs dt-close', type: 'button', title: 'Close (Esc)', onclick: onClose, 'aria-label': 'Close details' }, icon('x')),
    ),
  );
  const facts = h(
    'dl',
    { class: 'facts' },
    step.service ? fact('Service', serviceChip(step.service)) : null,
    fact('Starts at', fmtOffset(start)),
    fact('Duration', dur == null ? (step.status === 'running' ? 'running…' : '—') : fmtDuration(dur)),
    fact('Operations', `${step.operations?.state || 0} state · ${step.operations?.emit || 0} emit · ${step.operations?.stream || 0} stream`),
    fact('Span id', h('code', null, step.id)),
    step.parentId ? fact('Parent span', h('code', null, step.parentId)) : null,
    caller
      ? fact(
          'Called by',
          h(
            'span',
            { class: 'called-by' },
            caller.service ? serviceChip(caller.service) : null,
            ' ',
            h('code', null, caller.name),
          ),
        )
      : null,
    callees.length
      ? fact(
          'Calls',
          h(
            'span',
            { class: 'callees' },
            callees.map((seg) => h('span', { class: 'callee' }, serviceChip(seg.service), ' ', h('span', { class: 'muted' }, seg.flowName || ''))),
          ),
        )
      : null,
  );

  const body = h('div', { class: 'dt-body' }, facts);
  if (call) body.appendChild(section('HTTP call', null, httpFacts(call), 'http'));
  const attrs = Object.entries(step.attributes || {}).filter(([k]) => !(call && HTTP_ATTRS.has(k)));
  if (attrs.length)
    body.appendChild(
      section('Attributes', attrs.length, h('dl', { class: 'facts attrs-list' }, attrs.map(([k, v]) => fact(k, typeof v === 'string' ? v : JSON.stringify(v)))), 'attributes'),
    );
  if (step.error) body.appendChild(errorBlock(step.error));
  if (unavailable) {
    body.appendChild(
      h(
        'div',
        { class: 'empty-note step-unavailable', role: 'alert' },
        h('strong', null, 'Cannot load the operations and events of this step. '),
        h('span', { class: 'muted' }, unavailable),
        onRetry ? h('button', { class: 'btn btn-xs', type: 'button', onclick: onRetry }, 'Retry') : null,
      ),
    );
    return h('div', { class: 'details-inner', dataset: { stepId: step.id } }, head, body);
  }
  if (ops.length) body.appendChild(section('Operations', ops.length, opsTable(ops, start, dur), 'ops'));
  if (llm.length) body.appendChild(section('LLM calls', llm.length, h('div', { class: 'llm-list' }, llm.map((e) => llmCard(e))), 'llm'));
  if (logs.length) body.appendChild(section('Logs', logs.length, logList(logs, start), 'logs'));
  if (artifacts.length) body.appendChild(section('Artifacts', artifacts.length, h('div', { class: 'artifact-list' }, artifacts.map(artifactCard)), 'artifacts'));
  if (other.length) body.appendChild(section('Events', other.length, eventList(other, start), 'events'));
  if (!step.error && !ops.length && !events.length && !call)
    body.appendChild(h('p', { class: 'muted empty-note' }, 'No operations or events were recorded in this step.'));

  return h('div', { class: 'details-inner', dataset: { stepId: step.id } }, head, body);
}

function fact(label, value) {
  return h('div', { class: 'fact' }, h('dt', null, label), h('dd', null, value));
}

function section(title, count, content, key) {
  return h(
    'section',
    { class: `dt-section dt-${key}`, dataset: { section: key } },
    h('h4', null, title, count == null ? null : h('span', { class: 'count' }, String(count))),
    content,
  );
}

/** Method, URL and response status of an outgoing HTTP call. The URL is text, never a link. */
function httpFacts(call) {
  return h(
    'dl',
    { class: 'facts http-facts' },
    fact('Method', h('code', { class: 'http-method' }, call.method || '—')),
    fact(
      'URL',
      call.url
        ? h('span', { class: 'http-url', title: hostPath(call.url) }, h('code', null, call.url), copyButton(call.url, ''))
        : h('span', { class: 'muted' }, 'not recorded'),
    ),
    fact(
      'Status',
      call.status !== null
        ? h('span', { class: `badge b-http${call.failed ? ' fail' : ''} http-status`, dataset: { code: call.status } }, String(call.status))
        : h('span', { class: 'muted' }, 'no response'),
    ),
    call.errorType ? fact('Error type', h('code', { class: 'http-error' }, call.errorType)) : null,
  );
}

/** An error with its type/code and stack. `compact`: one line, stack behind a toggle. */
export function errorBlock(err, title = 'Error', { compact = false, action = null } = {}) {
  const text = [err.type, err.code].filter(Boolean).join(' · ');
  const copy = copyButton(() => [err.message, err.stack].filter(Boolean).join('\n'), 'Copy');
  if (compact) {
    return h(
      'div',
      { class: 'error-block compact', role: 'alert' },
      h(
        'div',
        { class: 'error-head' },
        icon('error'),
        h('strong', null, title),
        h('span', { class: 'error-message' }, err.message || '(no message)'),
        text ? h('span', { class: 'error-code' }, text) : null,
        h('span', { class: 'spacer' }),
        action,
        copy,
      ),
      err.stack ? h('details', { class: 'stack-toggle' }, h('summary', null, 'Stack trace'), h('pre', { class: 'stack' }, err.stack)) : null,
    );
  }
  return h(
    'div',
    { class: 'error-block', role: 'alert' },
    h('div', { class: 'error-head' }, icon('error'), h('strong', null, title), text ? h('span', { class: 'error-code' }, text) : null, h('span', { class: 'spacer' }), copy),
    h('div', { class: 'error-message' }, err.message || '(no message)'),
    err.stack ? h('pre', { class: 'stack' }, err.stack) : null,
  );
}

function opSubject(op) {
  if (op.kind === 'state') return [h('code', null, op.key ?? '—')];
  if (op.kind === 'emit')
    return [h('code', null, op.topic ?? '—'), op.to ? h('span', { class: 'arrow-to' }, ' → ', h('strong', null, op.to)) : null];
  if (op.kind === 'stream') return [h('code', null, op.stream ?? '—'), op.id ? h('span', { class: 'muted' }, ` #${op.id}`) : null];
  return [];
}

function opsTable(ops, stepStart, stepDur) {
  const span = Math.max(stepDur || 0, ...ops.map((o) => o.startTime + (o.duration || 0) - stepStart), 0.001);
  const rows = ops.map((op) => {
    const rel = op.startTime - stepStart;
    const left = Math.max(0, Math.min(100, (rel / span) * 100));
    const width = Math.max(0.6, Math.min(100 - left, ((op.duration || 0) / span) * 100));
    return h(
      'tr',
      { class: `op-row k-${op.kind}${op.ok === false ? ' fail' : ''}`, dataset: { kind: op.kind } },
      h('td', { class: 'num' }, fmtOffset(Math.max(0, rel))),
      h('td', null, h('span', { class: `kind-tag k-${op.kind}` }, icon(op.kind), op.kind), ' ', h('span', { class: 'op-action' }, op.action)),
      h('td', { class: 'op-subject' }, opSubject(op), op.error ? h('div', { class: 'op-error' }, op.error) : null),
      h('td', { class: 'op-wf' }, h('div', { class: 'wf' }, h('span', { class: `wf-bar k-${op.kind}`, style: { left: `${left}%`, width: `${width}%` } }))),
      h('td', { class: 'num' }, fmtDuration(op.duration)),
      h('td', { class: 'ok' }, op.ok === false ? h('span', { class: 'bad', title: 'failed' }, icon('x')) : h('span', { class: 'good', title: 'ok' }, icon('check'))),
    );
  });
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'ops-table' },
      h('thead', null, h('tr', null, h('th', null, 'At'), h('th', null, 'Operation'), h('th', null, 'Subject'), h('th', { class: 'op-wf' }, 'Timing'), h('th', null, 'Took'), h('th', null, ''))),
      h('tbody', null, rows),
    ),
  );
}

function logList(logs, stepStart) {
  return h(
    'ul',
    { class: 'log-list' },
    logs.map((l) =>
      h(
        'li',
        { class: `log lvl-${l.level || 'info'}` },
        h('span', { class: 'log-time' }, fmtOffset(Math.max(0, l.time - stepStart))),
        h('span', { class: 'log-level' }, l.level || 'info'),
        h('span', { class: 'log-msg' }, l.message),
        l.fields && Object.keys(l.fields).length
          ? h(
              'span',
              { class: 'log-fields' },
              Object.entries(l.fields).map(([k, v]) => h('span', { class: 'kv' }, h('span', { class: 'k' }, k), '=', typeof v === 'string' ? v : JSON.stringify(v))),
            )
          : null,
      ),
    ),
  );
}

/** Chat messages when the text is a JSON array of {role, content}; otherwise null. */
function asMessages(text) {
  if (typeof text !== 'string' || !/^\s*[[{]/.test(text)) return null;
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (v && !Array.isArray(v) && Array.isArray(v.messages)) v = v.messages;
  if (!Array.isArray(v) || !v.length || !v.every((m) => m && typeof m === 'object' && 'role' in m)) return null;
  return v.map((m) => ({
    role: String(m.role),
    content:
      typeof m.content === 'string'
        ? m.content
        : Array.isArray(m.content)
          ? m.content.map((p) => (typeof p === 'string' ? p : p && p.text != null ? p.text : JSON.stringify(p))).join('\n')
          : m.content == null
            ? ''
            : JSON.stringify(m.content, null, 2),
  }));
}

function textBlock(label, text) {
  if (text === null || text === undefined || text === '') {
    return h(
      'div',
      { class: 'llm-text missing' },
      h('div', { class: 'llm-text-head' }, h('span', { class: 'llm-label' }, label)),
      h('p', { class: 'muted' }, `No ${label.toLowerCase()} recorded (the SDK did not send it, or it was dropped by configuration).`),
    );
  }
  const raw = typeof text === 'string' ? text : JSON.stringify(text, null, 2);
  const msgs = asMessages(raw);
  const content = msgs
    ? h(
        'div',
        { class: 'messages' },
        msgs.map((m) => h('div', { class: `msg role-${m.role}` }, h('span', { class: 'role' }, m.role), h('div', { class: 'msg-content' }, m.content))),
      )
    : h('pre', { class: `llm-pre${/^\s*[[{]/.test(raw) ? ' code' : ''}` }, raw);
  const long = raw.length > LONG_TEXT || raw.split('\n').length > 10;
  const box = h('div', { class: `llm-content${long ? ' clamped' : ''}` }, content);
  const toggle = long
    ? h(
        'button',
        {
          class: 'btn btn-ghost btn-xs expand-btn',
          type: 'button',
          'aria-expanded': 'false',
          onclick: (e) => {
            const open = box.classList.toggle('clamped') === false;
            e.currentTarget.textContent = open ? 'Collapse' : 'Expand';
            e.currentTarget.setAttribute('aria-expanded', String(open));
          },
        },
        'Expand',
      )
    : null;
  const redacted = REDACTION.test(raw);
  return h(
    'div',
    { class: 'llm-text', dataset: { part: label.toLowerCase() } },
    h(
      'div',
      { class: 'llm-text-head' },
      h('span', { class: 'llm-label' }, label),
      h('span', { class: 'muted small' }, `${fmtNumber(raw.length)} chars`),
      h('span', { class: 'spacer' }),
      toggle,
      copyButton(raw),
    ),
    redacted
      ? h('div', { class: 'redaction-notice', role: 'note' }, icon('shield'), 'Parts of this text were redacted before it reached the agent; the originals are not stored.')
      : null,
    box,
  );
}

function llmCard(e) {
  const tokens =
    e.inputTokens != null || e.outputTokens != null
      ? h(
          'div',
          { class: 'tokens' },
          tokenBar(e.inputTokens || 0, e.outputTokens || 0),
          h(
            'div',
            { class: 'token-legend' },
            h('span', { class: 'tk in' }, h('i'), `Input ${fmtNumber(e.inputTokens)}`),
            h('span', { class: 'tk out' }, h('i'), `Output ${fmtNumber(e.outputTokens)}`),
            h('span', { class: 'tk total' }, `Total ${fmtNumber(e.totalTokens ?? (e.inputTokens || 0) + (e.outputTokens || 0))}`),
          ),
        )
      : h('div', { class: 'muted small' }, 'No token usage reported.');
  return h(
    'article',
    { class: 'llm-card' },
    h(
      'header',
      { class: 'llm-head' },
      icon('llm'),
      h('strong', { class: 'llm-model' }, e.model),
      e.provider ? h('span', { class: 'chip' }, e.provider) : null,
      h('span', { class: 'spacer' }),
      e.duration != null ? h('span', { class: 'chip', title: 'Call duration' }, icon('clock'), fmtDuration(e.duration)) : null,
      e.cost != null ? h('span', { class: 'chip cost', title: 'Cost (USD)' }, fmtCost(e.cost)) : null,
    ),
    tokens,
    textBlock('Prompt', e.prompt),
    textBlock('Response', e.response),
  );
}

function tokenBar(i, o) {
  const t = i + o || 1;
  return h(
    'div',
    { class: 'token-bar', role: 'img', 'aria-label': `${i} input tokens, ${o} output tokens` },
    h('span', { class: 'in', style: { width: `${(i / t) * 100}%` } }),
    h('span', { class: 'out', style: { width: `${(o / t) * 100}%` } }),
  );
}

// Inline images the page may show without asking: raster data: URLs (CSP allows data: images).
const DATA_IMAGE = /^data:image\/(?:png|jpe?g|gif|webp|avif|bmp);base64,[a-z0-9+/=\s]+$/i;

/** A preview image: same-origin at once, remote only after a click (no calls to third parties). */
function imagePreview(src, alt) {
  const host = remoteHost(src);
  if (!host) return h('img', { class: 'artifact-img', src, alt, loading: 'lazy' });
  const holder = h('div', { class: 'artifact-load' });
  const load = () => holder.replaceChildren(h('img', { class: 'artifact-img', src, alt, referrerpolicy: 'no-referrer' }));
  holder.append(
    h('button', { class: 'btn btn-xs artifact-load-btn', type: 'button', title: src, onclick: load }, `Load image from ${host}`),
    h('span', { class: 'muted small' }, ' Remote images are not loaded automatically.'),
  );
  return holder;
}

/** A link to a safe URL; it opens in a new tab without opener or referrer. */
function artifactLink(url, name) {
  return h('a', { class: 'btn btn-xs', href: url, download: name, target: '_blank', rel: 'noopener noreferrer' }, icon('download'), 'Download');
}

function artifactCard(a) {
  const url = safeUrl(a.url);
  const meta = [a.mime, a.size != null ? fmtBytes(a.size) : null].filter(Boolean).join(' · ');
  const isImage = /^image\//.test(a.mime || '');
  const previewText = a.preview != null ? String(a.preview) : null;
  // An image's preview may itself be a URL.
  const previewUrl = isImage && previewText && !DATA_IMAGE.test(previewText.trim()) ? safeUrl(previewText.trim()) : null;
  const dataImage = isImage && typeof a.url === 'string' && DATA_IMAGE.test(a.url.trim());
  let preview = null;
  if (isImage && url) preview = imagePreview(url, a.name);
  else if (dataImage) preview = h('img', { class: 'artifact-img', src: a.url.trim(), alt: a.name });
  else if (previewUrl) preview = imagePreview(previewUrl, a.name);
  else if (previewText != null) {
    let text = previewText;
    if (/json/.test(a.mime || '')) {
      try {
        text = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        /* keep as is */
      }
    }
    if (isImage && DATA_IMAGE.test(text.trim())) preview = h('img', { class: 'artifact-img', src: text.trim(), alt: a.name });
    else preview = h('pre', { class: 'artifact-preview' }, text);
  }
  const actions = [];
  if (url) actions.push(artifactLink(url, a.name));
  else if (previewText != null && !previewUrl) {
    actions.push(
      h(
        'button',
        {
          class: 'btn btn-xs',
          type: 'button',
          onclick: () => {
            const blob = new Blob([previewText], { type: a.mime || 'text/plain' });
            const link = h('a', { href: URL.createObjectURL(blob), download: a.name });
            document.body.appendChild(link);
            link.click();
            setTimeout(() => {
              URL.revokeObjectURL(link.href);
              link.remove();
            }, 1000);
          },
        },
        icon('download'),
        'Download preview',
      ),
    );
  }
  if (previewText != null) actions.push(copyButton(previewText));
  // A URL that is not http(s) is shown as text, never as a link (cut short: data: URLs are long).
  const refused = a.url && !url && !dataImage;
  return h(
    'div',
    { class: 'artifact' },
    h(
      'div',
      { class: 'artifact-head' },
      icon('artifact'),
      h('strong', null, a.name),
      meta ? h('span', { class: 'muted small' }, meta) : null,
      h('span', { class: 'spacer' }),
      actions,
    ),
    refused ? h('div', { class: 'muted small artifact-refused' }, 'Link not shown (only http and https links are): ', h('code', null, clip(String(a.url), 120))) : null,
    preview,
  );
}

function clip(s, n) {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

function eventList(events, stepStart) {
  return h(
    'ul',
    { class: 'event-list' },
    events.map((e) => {
      const at = h('span', { class: 'log-time' }, fmtOffset(Math.max(0, (e.time ?? stepStart) - stepStart)));
      switch (e.type) {
        case 'retry':
          return h(
            'li',
            { class: 'ev ev-retry' },
            at,
            icon('retry'),
            h('strong', null, `Retry #${e.attempt}`),
            e.reason ? h('span', null, ` — ${e.reason}`) : null,
            e.backoffMs != null ? h('span', { class: 'muted' }, ` (backoff ${fmtDuration(e.backoffMs)})`) : null,
          );
        case 'checkpoint':
          return h('li', { class: 'ev ev-checkpoint' }, at, icon('flag'), h('strong', null, 'Checkpoint'), ' ', h('code', null, e.id));
        case 'transition':
          return h(
            'li',
            { class: 'ev ev-transition' },
            at,
            icon('shift'),
            h('strong', null, 'Transition'),
            ' ',
            h('code', null, e.from),
            ' → ',
            h('code', null, e.to),
            e.action ? h('span', { class: 'muted' }, ` on ${e.action}`) : null,
          );
        case 'custom':
          return h(
            'li',
            { class: 'ev ev-custom' },
            at,
            icon('custom'),
            h('strong', null, e.name),
            e.payload != null ? h('pre', { class: 'payload' }, JSON.stringify(e.payload, null, 2)) : null,
          );
        default:
          return h('li', { class: 'ev' }, at, h('strong', null, e.type));
      }
    }),
  );
}

/** Trace-level facts shown when no step is selected: attributes, trace events. */
export function renderTraceExtras(trace) {
  const out = [];
  if (trace.attributes && Object.keys(trace.attributes).length) {
    out.push(
      h(
        'details',
        { class: 'attrs' },
        h('summary', null, `Attributes (${Object.keys(trace.attributes).length})`),
        h(
          'dl',
          { class: 'facts attrs-list' },
          Object.entries(trace.attributes).map(([k, v]) => fact(k, typeof v === 'string' ? v : JSON.stringify(v))),
        ),
      ),
    );
  }
  return out;
}
