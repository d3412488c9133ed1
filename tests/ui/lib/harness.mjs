// Test harness: a real agent process (`flowscope demo --once`) and a headless Debian Chromium
// driven by playwright-core. No browser download, no internet: Chromium runs with every external
// host unresolvable.
//
// FLOWSCOPE_UI_ASSETS=<dir> (e.g. agent/src/ui/assets) serves `/` and `/ui/*` from that directory
// instead of the copy compiled into the binary, through a small proxy in front of each agent (the
// API, SSE and WebSocket go to the agent; the agent's security headers are copied onto the files).
// That tests UI edits without rebuilding the agent.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const ARTIFACTS = path.join(REPO, 'test-artifacts', 'ui');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export function agentBinary() {
  const bin = process.env.FLOWSCOPE_AGENT_BIN || path.join(REPO, 'target', 'debug', 'flowscope');
  if (!existsSync(bin)) {
    throw new Error(`flowscope agent binary not found at ${bin}: build it first (cargo build -p flowscope-agent) or set FLOWSCOPE_AGENT_BIN`);
  }
  return bin;
}

/**
 * Starts `flowscope demo --once` on a fresh socket and a free port. `extraArgs` are added to the
 * command line (e.g. `['--token', 's3cret']`).
 */
export async function startAgent(extraArgs = []) {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowscope-ui-'));
  const socket = path.join(dir, 'agent.sock');
  const proc = spawn(agentBinary(), ['demo', '--once', '--socket', socket, '--http', '127.0.0.1:0', ...(extraArgs.includes('--data-dir') ? [] : ['--data-dir', 'none']), ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FLOWSCOPE_LOG: process.env.FLOWSCOPE_LOG || 'warn' },
  });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const lines = readline.createInterface({ input: proc.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start in 20 s; stderr:\n${stderr}`)), 20_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code}; stderr:\n${stderr}`));
    });
    lines.on('line', (line) => {
      const m = /http=(http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  lines.on('line', () => {}); // keep draining stdout
  const disk = process.env.FLOWSCOPE_UI_ASSETS ? await diskUi(url, path.resolve(REPO, process.env.FLOWSCOPE_UI_ASSETS)) : null;
  return {
    url: disk ? disk.url : url,
    agentUrl: url,
    socket,
    proc,
    async stop() {
      await disk?.close();
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            proc.kill('SIGKILL');
            r();
          }, 3000);
          proc.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** GET JSON from the agent; `token`: sent as `Authorization: Bearer`. */
export async function getJson(base, p, { token } = {}) {
  const res = await fetch(new URL(p, base), { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return res.json();
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };
const SECURITY_HEADERS = ['content-security-policy', 'x-content-type-options', 'referrer-policy', 'x-frame-options'];

/** The FLOWSCOPE_UI_ASSETS proxy: UI files from `dir`, everything else from the agent at `agentUrl`. */
async function diskUi(agentUrl, dir) {
  const target = new URL(agentUrl);
  const probe = await fetch(new URL('/', target));
  await probe.arrayBuffer();
  const security = {};
  for (const k of SECURITY_HEADERS) if (probe.headers.has(k)) security[k] = probe.headers.get(k);
  const upgraded = new Set();
  const server = http.createServer(async (req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    const file = pathname === '/' ? 'index.html' : pathname.startsWith('/ui/') ? pathname.slice(4) : null;
    if (file !== null) {
      const full = path.join(dir, path.normalize(file));
      if (!full.startsWith(dir + path.sep)) return res.writeHead(403).end();
      try {
        const body = await readFile(full);
        res.writeHead(200, { ...security, 'content-type': TYPES[path.extname(full)] || 'application/octet-stream', 'cache-control': 'no-cache' });
        return res.end(body);
      } catch {
        return res.writeHead(404, security).end('not found');
      }
    }
    const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      res.flushHeaders();
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    // A page that goes away takes its request to the agent along: a live stream would otherwise
    // stay open there, one more subscriber (of at most 256) for every page a test opened.
    res.on('close', () => res.writableFinished || up.destroy());
    req.pipe(up);
  });
  // WebSocket (/api/ws): the upgrade request is replayed to the agent, then bytes are piped.
  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(Number(target.port), target.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close() {
      for (const s of upgraded) s.destroy();
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Polls `fn` until it returns a truthy value. */
export async function waitFor(fn, { timeout = 15_000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Waits until the details panel shows step `stepId` in full (loaded, not busy). On timeout the
 * error says what the panel showed instead: the step, the URL, and any "cannot load" message.
 */
export function waitForStepDetails(page, stepId, { timeout = 15_000 } = {}) {
  return waitFor(
    () =>
      page.evaluate((id) => {
        const inner = document.querySelector('.details .details-inner');
        const details = document.querySelector('.details');
        const state = {
          hash: location.hash,
          shown: inner ? inner.dataset.stepId : null,
          name: inner ? inner.querySelector('.dt-name')?.textContent : null,
          busy: details ? details.getAttribute('aria-busy') : null,
          unavailable: inner ? inner.querySelector('.step-unavailable')?.textContent || null : null,
        };
        return state.shown === id && state.busy !== 'true' && !state.unavailable ? true : JSON.stringify(state);
      }, stepId).then((r) => (r === true ? true : Promise.reject(new Error(r)))),
    { timeout, what: `details of step ${stepId}` },
  );
}

/**
 * Clicks step `stepId`'s timeline row, then waits for its details (see waitForStepDetails). A
 * click that did not route at all (the hash does not name the step after 5 s: the input event was
 * lost, which a starved headless browser does now and then) is said in the output and repeated
 * once; whether the page then loads and shows the step is what the test asserts.
 */
export async function clickStep(page, stepId) {
  const row = `.tl-row[data-id="${stepId}"]`;
  const routed = () => page.waitForFunction((id) => location.hash.includes(`step=${id}`), stepId, { timeout: 5_000 });
  await page.click(row);
  try {
    await routed();
  } catch {
    console.log(`# a click on step ${stepId} did not route (hash ${await page.evaluate(() => location.hash)}); clicking again`);
    await page.click(row);
    await routed();
  }
  await waitForStepDetails(page, stepId);
}

/**
 * Waits until the agent's demo (it runs once: 1 registration + 3 chat + 2 order traces) has
 * finished, and returns those traces.
 */
export function demoTraces(agent, { token } = {}) {
  return waitFor(
    async () => {
      const { traces } = await getJson(agent.url, 'api/traces?limit=100', { token });
      return traces.length >= 6 && traces.every((t) => t.status !== 'running') ? traces : null;
    },
    { timeout: 30_000, what: 'the demo traces' },
  );
}

/**
 * Chromium features turned off on top of Playwright's own. Every new window (each test page has a
 * context, so a window, of its own) loads its omnibox popup as a WebUI page: ~400 chrome:// files
 * and ~0.5 s of CPU in a renderer of its own, right while the page under test loads. On a 2-core
 * machine that added 50–80 ms (a quarter to a third) to a 5,000-span trace's page load, none of
 * it the UI's.
 */
const DISABLED_FEATURES = ['WebUIOmniboxPopup', 'WebUIOmniboxAimPopup'];

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install -y chromium)`);
  const launch = (extra = []) =>
    chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-default-apps',
        '--disable-extensions',
        // Nothing but the local agent is reachable.
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
        ...extra,
      ],
    });
  // Chromium keeps the last --disable-features only, so ours repeats Playwright's list, read from
  // a first launch's command line (it changes with Playwright's version).
  const probe = await launch();
  const cdp = await probe.newBrowserCDPSession();
  const { commandLine } = await cdp.send('SystemInfo.getInfo');
  await probe.close();
  const theirs = (/--disable-features=(\S*)/.exec(commandLine)?.[1] || '').split(',').filter(Boolean);
  return launch([`--disable-features=${[...theirs, ...DISABLED_FEATURES].join(',')}`]);
}

/** A page that fails the test on any uncaught page error. */
export async function newPage(browser, { width = 1440, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(`console: ${m.text()}`);
  });
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

export function writeFigures(figures) {
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(path.join(ARTIFACTS, 'figures.json'), `${JSON.stringify(figures, null, 2)}\n`);
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
