'use strict';
// Test support: a real agent process on a temporary socket, trace queries with polling, and
// child processes with their stdout parsed.

const { spawn } = require('node:child_process');
const { mkdtempSync, rmSync, existsSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const assert = require('node:assert/strict');

const SDK_DIR = path.resolve(__dirname, '..');
const REPO_DIR = path.resolve(SDK_DIR, '..');
const AGENT_BIN = process.env.FLOWSCOPE_AGENT_BIN || path.join(REPO_DIR, 'target', 'debug', 'flowscope');

/** Resolves with the first stdout line of `child` matching `pattern` (the match), or rejects. */
function waitForLine(child, pattern, what, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    let buffer = '';
    let stderr = '';
    const timer = setTimeout(() => done(new Error(`${what}: no line matching ${pattern} within ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs);
    const onData = (chunk) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        const match = pattern.exec(line);
        if (match) return done(null, match);
      }
    };
    const onErr = (chunk) => {
      stderr += chunk;
    };
    const onExit = (code, signal) => done(new Error(`${what} exited (${code ?? signal}) before printing ${pattern}; stderr:\n${stderr}`));
    function done(err, match) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stderr.off('data', onErr);
      child.off('exit', onExit);
      // Keep draining so the child never blocks on a full pipe.
      child.stdout.resume();
      child.stderr.resume();
      if (err) reject(err);
      else resolve(match);
    }
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.stderr.on('data', onErr);
    child.once('exit', onExit);
  });
}

/** Stops a child process (SIGTERM, then SIGKILL) and waits for it. */
function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Starts the agent binary on a temporary socket and a free HTTP port (plus `extraArgs`).
 * Returns { socket, url, dir, stop(), trace(id, until?), traces(query), group(cid) }.
 */
async function startAgent(extraArgs = []) {
  assert.ok(
    existsSync(AGENT_BIN),
    `agent binary not found at ${AGENT_BIN}: run \`cargo build -p flowscope-agent\` or set FLOWSCOPE_AGENT_BIN`,
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'flowscope-node-'));
  const socket = path.join(dir, 'agent.sock');
  const child = spawn(AGENT_BIN, [
      '--socket', socket, '--http', '127.0.0.1:0', '--log', 'warn',
      // The user's state directory is not the tests': memory only unless a test asks.
      ...(extraArgs.includes('--data-dir') ? [] : ['--data-dir', 'none']),
      ...extraArgs,
    ], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const match = await waitForLine(child, /^flowscope listening socket=(\S+) http=(\S+)/, 'agent');
  const url = match[2];
  const agent = {
    socket,
    url,
    dir,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
    async get(pathname) {
      const response = await fetch(url + pathname);
      const body = await response.text();
      return { status: response.status, body: body ? JSON.parse(body) : null };
    },
    /** The trace `id`, polling until it exists and `until(trace)` holds (default: not running). */
    async trace(id, until = (t) => t.status !== 'running', timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      let last;
      for (;;) {
        last = await agent.get(`/api/traces/${id}`);
        if (last.status === 200 && until(last.body)) return last.body;
        if (Date.now() > deadline) {
          assert.fail(`trace ${id} not as expected within ${timeoutMs} ms; last answer ${last.status}: ${JSON.stringify(last.body)}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** The trace list for `query` (an object of filters). */
    async traces(query) {
      const qs = new URLSearchParams(query).toString();
      const { status, body } = await agent.get(`/api/traces?${qs}`);
      assert.equal(status, 200, JSON.stringify(body));
      return body.traces;
    },
    async group(cid, until = () => true, timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { status, body } = await agent.get(`/api/groups/${encodeURIComponent(cid)}`);
        if (status === 200 && until(body)) return body;
        if (Date.now() > deadline) assert.fail(`group ${cid} not as expected within ${timeoutMs} ms: ${status} ${JSON.stringify(body)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
  return agent;
}

/**
 * Runs `node file` (or `node -e code` when `code` is given) to completion with extra `env`.
 * Resolves { code, signal, stdout, stderr, ms }; kills the child after `timeoutMs`.
 */
function runNode({ file, code, args = [], env = {}, timeoutMs = 20000 }) {
  return new Promise((resolve) => {
    const argv = code !== undefined ? ['-e', code, ...args] : [file, ...args];
    const started = Date.now();
    const child = spawn(process.execPath, argv, {
      cwd: SDK_DIR,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ code: exitCode, signal, stdout, stderr, ms: Date.now() - started, timedOut });
    });
  });
}

/** Starts a long-running node process and waits for its "listening <url>" line. */
async function startServer(file, env, pattern = /listening (http:\/\/\S+)/) {
  const child = spawn(process.execPath, [file], {
    cwd: SDK_DIR,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const match = await waitForLine(child, pattern, path.basename(file));
  return { url: match[1], child, stop: () => stopChild(child) };
}

/** The step named `name` of `trace` (asserting there is exactly one). */
function stepNamed(trace, name) {
  const steps = trace.steps.filter((s) => s.name === name);
  assert.equal(steps.length, 1, `expected one step ${name} in ${JSON.stringify(trace.steps.map((s) => s.name))}`);
  return steps[0];
}

/** Events of `type` in a step (or trace). */
function eventsOf(holder, type) {
  return holder.events.filter((e) => e.type === type);
}

module.exports = { SDK_DIR, REPO_DIR, AGENT_BIN, startAgent, runNode, startServer, stepNamed, eventsOf, waitForLine, stopChild };
