#!/usr/bin/env bash
# Browser tests of the embedded UI: headless Debian Chromium driven by playwright-core, against a
# real agent process. Expects the agent to be built already (cargo build -p flowscope-agent);
# FLOWSCOPE_AGENT_BIN overrides the binary (default: <repo>/target/debug/flowscope).
# Screenshots and measured figures go to <repo>/test-artifacts/ui/.
# FLOWSCOPE_UI_STRICT=1 also enforces the 200 ms (5,000-span render) and 100 ms (live) targets.
# FLOWSCOPE_UI_50K=1 (implied by FLOWSCOPE_UI_STRICT=1) also loads a 50,000-span trace, from an
# agent of its own, and enforces its 1 s target (a release agent: a debug one is close to it).
# FLOWSCOPE_UI_ASSETS=agent/src/ui/assets serves the UI from disk instead of the binary's copy
# (test UI edits without rebuilding; see lib/harness.mjs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

bin="${FLOWSCOPE_AGENT_BIN:-$repo/target/debug/flowscope}"
if [ ! -x "$bin" ]; then
  echo "tests/ui: agent binary not found at $bin — build it first (cargo build -p flowscope-agent) or set FLOWSCOPE_AGENT_BIN" >&2
  exit 2
fi
export FLOWSCOPE_AGENT_BIN="$bin"

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "tests/ui: installing Debian's chromium (no browser download)" >&2
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

cd "$here"
# playwright-core only: it never downloads browsers.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
node --test --test-concurrency=1 ui.test.mjs hardening.test.mjs services.test.mjs insights.test.mjs
