#!/usr/bin/env bash
# Installs the artifacts of scripts/build-dist.sh the way a user without a Rust toolchain would —
# a fresh venv and a fresh npm project, with cargo and rustc off PATH (and shims that fail loudly
# if anything still calls them) — and checks SDK → bundled agent → API in each ecosystem.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dist="${DIST_DIR:-$root/dist}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
work="$(mktemp -d "${TMPDIR:-/tmp}/flowscope-smoke.XXXXXX")"
agent_pid=""
cleanup() {
    if [[ -n "$agent_pid" ]]; then kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# PATH without the Rust toolchain, and shims in case a system copy remains.
shims="$work/no-rust"
mkdir -p "$shims"
for tool in cargo rustc rustup; do
    printf '#!/bin/sh\necho "smoke: %s must not be needed to install flowscope" >&2\nexit 97\n' "$tool" >"$shims/$tool"
    chmod +x "$shims/$tool"
done
clean_path="$shims:$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -E '/\.cargo/|/rustup/' | paste -sd: -)"
export PATH="$clean_path"
if cargo --version >/dev/null 2>&1; then echo "smoke: cargo still works on PATH" >&2; exit 1; fi

# The agents keep their journal in the default state directory: a scratch one here.
export XDG_STATE_HOME="$work/state"

# Starts `$@` (an agent command) on a fresh socket; sets api= and agent_pid=.
start_agent() {
    local out="$work/agent-$1.out"
    shift
    "$@" --socket "$work/s-$RANDOM/agent.sock" --http 127.0.0.1:0 --log warn >"$out" 2>&1 &
    agent_pid=$!
    for _ in $(seq 200); do
        grep -q '^flowscope listening' "$out" && break
        sleep 0.05
    done
    api="$(sed -n 's/^flowscope listening .* http=\(http[^ ]*\).*/\1/p' "$out")"
    socket="$(sed -n 's/^flowscope listening socket=\([^ ]*\) .*/\1/p' "$out")"
    [[ -n "$api" ]] || { echo "smoke: the agent did not start:" >&2; cat "$out" >&2; exit 1; }
    grep -q "^flowscope UI: http://" "$out" || { echo "smoke: no UI address printed" >&2; exit 1; }
}

# SIGTERM must stop the agent cleanly and quickly (it removes its socket on the way out).
stop_agent() {
    kill -TERM "$agent_pid"
    for _ in $(seq 100); do
        kill -0 "$agent_pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$agent_pid" 2>/dev/null; then
        echo "smoke: the agent ignored SIGTERM for 5 s" >&2
        kill -KILL "$agent_pid"
        exit 1
    fi
    wait "$agent_pid" 2>/dev/null || true
    agent_pid=""
    [[ ! -e "$socket" ]] || { echo "smoke: the agent left its socket behind: $socket" >&2; exit 1; }
}

echo "== Python: fresh venv, the wheel, no cargo"
wheel="$(ls "$dist"/flowscope-"$version"-*.whl | head -1)"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index "$wheel"
"$work/venv/bin/flowscope" --version | grep -q "flowscope $version"
start_agent py "$work/venv/bin/flowscope" run
FLOWSCOPE_SOCKET="$socket" FLOWSCOPE_API="$api" "$work/venv/bin/python" - <<'PY'
import json, os, urllib.request
import flowscope
flowscope.init("smoke-python")
with flowscope.trace("smoke", entry="api", step="s") as tr:
    with flowscope.step("s"):
        flowscope.state_get("k").record()
assert flowscope.flush(5.0)
for _ in range(100):
    try:
        with urllib.request.urlopen(f"{os.environ['FLOWSCOPE_API']}/api/traces/{tr.trace_id}") as r:
            trace = json.load(r)
        if trace["status"] == "completed":
            break
    except Exception:
        pass
    import time; time.sleep(0.05)
assert trace["service"] == "smoke-python" and trace["steps"][0]["ops"][0]["key"] == "k", trace
print("python smoke ok", tr.trace_id)
PY
stop_agent

echo "== Node: fresh npm project, the tarball, no cargo"
mkdir -p "$work/node" && cd "$work/node"
npm init -y >/dev/null
npm install --no-audit --no-fund --offline "$dist/flowscope-$version.tgz" >/dev/null
npx --no-install flowscope --version | grep -q "flowscope $version"
# The bin itself (not npx, which would sit between the signal and the agent).
start_agent node "$work/node/node_modules/.bin/flowscope" run
export FLOWSCOPE_SOCKET="$socket" FLOWSCOPE_API="$api"
cat >smoke.cjs <<'JS'
const flowscope = require('flowscope');
const assert = require('node:assert/strict');
flowscope.init({ service: 'smoke-node' });
const id = flowscope.trace('smoke', () => flowscope.step('s', () => { flowscope.stateGet('k'); return flowscope.getContext().traceId; }));
flowscope.flush(5000).then(async (ok) => {
  assert.equal(ok, true);
  let trace;
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${process.env.FLOWSCOPE_API}/api/traces/${id}`);
    if (res.ok && (trace = await res.json()).status === 'completed') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(trace.service, 'smoke-node');
  assert.equal(trace.steps[0].ops[0].key, 'k');
  console.log('node require() smoke ok', id);
});
JS
cat >smoke.mjs <<'JS'
import { init, trace, step, getContext, flush } from 'flowscope';
init({ service: 'smoke-esm' });
const id = await trace('smoke', async () => step('s', async () => getContext().traceId));
if (!(await flush(5000))) throw new Error('flush failed');
console.log('node import smoke ok', id);
JS
node smoke.cjs
node smoke.mjs
stop_agent
echo "== smoke: all artifacts install and work without a Rust toolchain"
