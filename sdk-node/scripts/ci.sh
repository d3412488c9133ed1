#!/usr/bin/env bash
# CI for the Node SDK (sdk-node/):
#   1. npm install from the committed package-lock.json, then `npm run build`: the native addon
#      from source (release, cargo target dir shared with the workspace; the install script alone
#      would keep an already built addon). Not
#      `npm ci`: the napi-rs CLI's per-platform optional packages (@napi-rs/lzma-*, …) are
#      missing from the registry mirror the lock was made with, so the lock has no entries for
#      the other platforms and `npm ci` rejects it; `npm install` follows the lock as it is;
#   2. the node:test suite against a real agent process (npm test);
#   3. `npm install <repo>/sdk-node` into a scratch project, then a require() (CommonJS) and an
#      import (ESM) smoke test that send a trace to a real agent and read it back.
# Exits non-zero on any failure. The agent binary must be built by the caller:
#   cargo build -p flowscope-agent        (or set FLOWSCOPE_AGENT_BIN)
set -euo pipefail

sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$sdk/.." && pwd)"
agent="${FLOWSCOPE_AGENT_BIN:-$repo/target/debug/flowscope}"
if [[ ! -x "$agent" ]]; then
  echo "ci.sh: agent binary not found at $agent" >&2
  echo "ci.sh: run 'cargo build -p flowscope-agent' first, or set FLOWSCOPE_AGENT_BIN" >&2
  exit 2
fi
export FLOWSCOPE_AGENT_BIN="$agent"
npm_flags=(--no-audit --no-fund --prefer-offline)

echo "== npm install + addon build ($sdk)"
cd "$sdk"
npm install "${npm_flags[@]}"
npm run build

echo "== node:test"
npm test

echo "== install into a scratch project"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/flowscope-node-ci.XXXXXX")"
agent_pid=""
cleanup() {
  if [[ -n "$agent_pid" ]]; then kill "$agent_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
cd "$scratch"
npm init -y >/dev/null
npm install "${npm_flags[@]}" "$sdk"

"$agent" --socket "$scratch/agent.sock" --http 127.0.0.1:0 --log warn --data-dir none >"$scratch/agent.out" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do
  grep -q '^flowscope listening' "$scratch/agent.out" && break
  sleep 0.1
done
api="$(sed -n 's/^flowscope listening .* http=\(http[^ ]*\).*/\1/p' "$scratch/agent.out")"
[[ -n "$api" ]] || { echo "ci.sh: the agent did not start:" >&2; cat "$scratch/agent.out" >&2; exit 1; }
export FLOWSCOPE_SOCKET="$scratch/agent.sock" FLOWSCOPE_API="$api"

cat >smoke.cjs <<'JS'
const flowscope = require('flowscope');
const assert = require('node:assert/strict');
flowscope.init({ service: 'ci-smoke-cjs' });
const id = flowscope.trace('ci-smoke', () => flowscope.step('s', () => { flowscope.stateGet('k'); return flowscope.getContext().traceId; }));
flowscope.flush(5000).then(async (ok) => {
  assert.equal(ok, true);
  const trace = await (await fetch(`${process.env.FLOWSCOPE_API}/api/traces/${id}`)).json();
  assert.equal(trace.service, 'ci-smoke-cjs');
  assert.equal(trace.steps[0].ops[0].key, 'k');
  console.log('require() smoke ok', id);
});
JS
cat >smoke.mjs <<'JS'
import flowscope, { init, trace, step, getContext, flush } from 'flowscope';
import assert from 'node:assert/strict';
assert.equal(flowscope.trace, trace);
init({ service: 'ci-smoke-esm' });
const id = await trace('ci-smoke', async () => step('s', async () => getContext().traceId));
assert.equal(await flush(5000), true);
const got = await (await fetch(`${process.env.FLOWSCOPE_API}/api/traces/${id}`)).json();
assert.equal(got.service, 'ci-smoke-esm');
console.log('import smoke ok', id);
JS
node smoke.cjs
node smoke.mjs
echo "== sdk-node CI passed"
