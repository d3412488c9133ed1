#!/usr/bin/env bash
# Cross-language end-to-end suite: Node example → Python example over HTTP, one real agent, one
# real OTLP receiver. Needs the agent and receiver binaries, the Python SDK venv (sdk-python's
# ci.sh makes it) and the built Node SDK (sdk-node's ci.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${FLOWSCOPE_CACHE:-$HOME/.cache/flowscope}/venv-python"
if [ ! -x "$venv/bin/python" ]; then
  echo "missing $venv: run sdk-python/scripts/ci.sh first" >&2
  exit 2
fi
cargo build -q -p otlp-receiver
"$venv/bin/python" -m pytest -q tests/e2e "$@"
