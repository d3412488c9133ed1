'use strict';
// The package as users get it: CommonJS and ESM entry points, types, versions, README quickstart.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { readFileSync, existsSync } = require('node:fs');
const path = require('node:path');

const { startAgent, runNode, stepNamed, SDK_DIR, REPO_DIR } = require('./helpers');

const pkg = require('../package.json');

let agent;

before(async () => {
  agent = await startAgent();
});

after(async () => {
  await agent.stop();
});

test('CommonJS and ESM expose the same API (one module instance)', async () => {
  const cjs = require('flowscope');
  const esm = await import('flowscope');
  const names = Object.keys(cjs).sort();
  assert.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), names);
  assert.equal(esm.default, cjs);
  for (const name of names) assert.equal(esm[name], cjs[name], name);
});

test('index.d.ts declares every export', () => {
  const dts = readFileSync(path.join(SDK_DIR, 'index.d.ts'), 'utf8');
  const declared = new Set([...dts.matchAll(/^export declare (?:function|const) (\w+)/gm)].map((m) => m[1]));
  for (const name of Object.keys(require('flowscope'))) assert.ok(declared.has(name), `${name} missing from index.d.ts`);
});

test('the types compile for CommonJS and ESM TypeScript consumers', (t) => {
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [SDK_DIR] });
  } catch {
    return t.skip('typescript is not installed');
  }
  const { execFileSync } = require('node:child_process');
  execFileSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types', 'tsconfig.json')], { cwd: SDK_DIR, stdio: 'pipe' });
});

test('package.json, Cargo workspace and VERSION agree', () => {
  const cargo = readFileSync(path.join(REPO_DIR, 'Cargo.toml'), 'utf8');
  const workspaceVersion = /\[workspace\.package\][^[]*?\nversion\s*=\s*"([^"]+)"/.exec(cargo)[1];
  assert.equal(pkg.version, workspaceVersion);
  assert.equal(require('flowscope').VERSION, pkg.version);
  assert.equal(pkg.license, /\nlicense\s*=\s*"([^"]+)"/.exec(cargo)[1]);
});

test('exports map and shipped files exist', () => {
  for (const target of [pkg.main, pkg.types, ...Object.values(pkg.exports['.']).flatMap((c) => Object.values(c))]) {
    assert.ok(existsSync(path.join(SDK_DIR, target)), target);
  }
  // Consumers get the prebuilt addon; the napi-rs CLI is only for building from source.
  assert.equal(pkg.dependencies, undefined, 'no runtime dependencies');
  assert.ok(pkg.devDependencies['@napi-rs/cli']);
  assert.equal(pkg.scripts.install, 'node scripts/build.js --if-needed');
  assert.equal(pkg.bin.flowscope, 'bin/flowscope.js');
  assert.ok(existsSync(path.join(SDK_DIR, pkg.bin.flowscope)));
  for (const shipped of ['native.js', 'bin/']) assert.ok(pkg.files.includes(shipped), shipped);
});

test('the README quickstart runs as written', async () => {
  const readme = readFileSync(path.join(SDK_DIR, 'README.md'), 'utf8');
  const block = /<!-- quickstart[^>]*-->\s*```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README has a quickstart block');
  const run = await runNode({ code: block[1], env: { FLOWSCOPE_SOCKET: agent.socket, OTEL_SERVICE_NAME: '' } });
  assert.equal(run.code, 0, run.stderr);
  const [summary] = await agent.traces({ flow: 'user-registration', correlationId: 'u-1' });
  assert.ok(summary, 'the quickstart trace reached the agent');
  const trace = await agent.trace(summary.id);
  assert.equal(trace.service, 'accounts');
  assert.equal(trace.status, 'completed');
  assert.deepEqual(stepNamed(trace, 'validate-user').ops.map((o) => o.key ?? o.topic), ['user.email', 'user.validated']);
  assert.deepEqual(stepNamed(trace, 'save-user').ops.map((o) => o.key), ['users.u-1']);
});
