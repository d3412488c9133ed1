#!/usr/bin/env bash
# Cross-language conformance: scenario.json through the Rust, Python and Node SDKs, each against
# a fresh real agent; the traces the agent builds must be identical after normalising ids and
# times. Needs the agent binary, the Python SDK venv (sdk-python's ci.sh makes it) and the built
# Node SDK (sdk-node's ci.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${FLOWSCOPE_CACHE:-$HOME/.cache/flowscope}/venv-python"
if [ ! -x "$venv/bin/python" ]; then
  echo "missing $venv: run sdk-python/scripts/ci.sh first" >&2
  exit 2
fi
cargo build -q --locked -p flowscope --example conformance
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export FLOWSCOPE_CONFORMANCE_RUST="$target_dir/debug/examples/conformance"
export FLOWSCOPE_AGENT_BIN="${FLOWSCOPE_AGENT_BIN:-$target_dir/debug/flowscope}"
export FLOWSCOPE_PYTHON="$venv/bin/python"
"$venv/bin/python" tests/conformance/run.py
