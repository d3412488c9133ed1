#!/usr/bin/env bash
# The official W3C Trace Context validation harness (github.com/w3c/trace-context, test/, pinned
# below) against three test services, on the Python SDK (WSGI middleware under wsgiref, ASGI
# middleware under uvicorn) and on the Node SDK (wrapHandler + wrapFetch), each sending its events
# to a real agent. Every harness case must pass at SPEC_LEVEL 2 (the random flag
# included).
#
# Needs the agent binary, the Python SDK venv (sdk-python's ci.sh makes it) and the built Node SDK
# (sdk-node's ci.sh builds it). The harness is W3C's code, not ours: it is fetched at its pinned
# commit into the cache (or taken from W3C_HARNESS_DIR, a checkout's test/ directory). When it
# cannot be fetched (no access to github.com) the suite says SKIPPED and exits 0, unless
# W3C_REQUIRED=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
COMMIT=acab820be9db7b3433668baa5cdd43f57f4c4be0
CACHE="${FLOWSCOPE_CACHE:-$HOME/.cache/flowscope}"
venv="$CACHE/venv-python"
if [ ! -x "$venv/bin/python" ]; then
  echo "missing $venv: run sdk-python/scripts/ci.sh first" >&2
  exit 2
fi

skip() {
  echo "SKIPPED: W3C Trace Context harness not available ($*)"
  if [ "${W3C_REQUIRED:-0}" = 1 ]; then exit 1; fi
  exit 0
}

harness="${W3C_HARNESS_DIR:-}"
if [ -z "$harness" ]; then
  checkout="$CACHE/w3c-trace-context-$COMMIT"
  if [ ! -f "$checkout/test/test.py" ]; then
    tmp=$(mktemp -d)
    if timeout 120 git init -q "$tmp" \
      && timeout 120 git -C "$tmp" fetch -q --depth 1 https://github.com/w3c/trace-context "$COMMIT" \
      && git -C "$tmp" -c advice.detachedHead=false checkout -q FETCH_HEAD; then
      mkdir -p "$CACHE" && rm -rf "$checkout" && mv "$tmp" "$checkout"
    elif timeout 120 curl -fsSL "https://codeload.github.com/w3c/trace-context/tar.gz/$COMMIT" -o "$tmp/harness.tgz"; then
      mkdir -p "$checkout" && tar -xzf "$tmp/harness.tgz" -C "$checkout" --strip-components 1
    else
      rm -rf "$tmp"
      skip "github.com/w3c/trace-context@$COMMIT could not be fetched"
    fi
  fi
  harness="$checkout/test"
fi
[ -f "$harness/test.py" ] || skip "no test.py in $harness"

# The harness runs on aiohttp, in a venv of its own (pinned in requirements.txt).
hvenv="$CACHE/venv-w3c"
if [ ! -x "$hvenv/bin/python" ]; then
  python3 -m venv "$hvenv"
fi
PIP_DISABLE_PIP_VERSION_CHECK=1 "$hvenv/bin/pip" install -q -r tests/w3c/requirements.txt

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export FLOWSCOPE_AGENT_BIN="${FLOWSCOPE_AGENT_BIN:-$target_dir/debug/flowscope}"
export FLOWSCOPE_PYTHON="$venv/bin/python"
export W3C_HARNESS_PYTHON="$hvenv/bin/python"
export W3C_HARNESS_DIR="$harness"
python3 tests/w3c/run.py
