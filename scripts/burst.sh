#!/usr/bin/env bash
# The burst loops of the "nothing lost" issue, with default SDK settings, against one release
# agent: 200,000 steps × 3 ops (1,000,000 events) from Rust, Python and Node in turn. Prints each
# SDK's counters and what the agent applied. Needs the Python venv and Node addon that
# sdk-python/scripts/ci.sh and sdk-node/scripts/ci.sh build.
#
#   bash scripts/burst.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
cargo build -q --release -p flowscope-agent -p flowscope --example burst
agent="$CARGO_TARGET_DIR/release/flowscope"
dir="$(mktemp -d /tmp/fs-burst-XXXXXX)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$agent" --socket "$dir/agent.sock" --http 127.0.0.1:0 --otlp-grpc-listen off --data-dir none --max-traces 10000 >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q "http=" "$dir/out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/.*http=\(\S*\).*/\1/p' "$dir/out" | head -1)"
export FLOWSCOPE_SOCKET="$dir/agent.sock"
applied() { curl -s "$url/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["store"]["eventsApplied"])'; }
py="${FLOWSCOPE_PYTHON:-$HOME/.cache/flowscope/venv-python/bin/python}"
for sdk in rust python node; do
  before="$(applied)"
  case "$sdk" in
    rust) line="$("$CARGO_TARGET_DIR/release/examples/burst")" ;;
    python) line="$("$py" sdk-python/bench/burst.py)" ;;
    node) line="$(node sdk-node/bench/burst.mjs)" ;;
  esac
  # The agent applies what the SDK sent; wait for the last frames.
  sent="$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"])')"
  for _ in $(seq 200); do [ $(( $(applied) - before )) -ge "$sent" ] && break; sleep 0.05; done
  echo "$line agentApplied=$(( $(applied) - before ))"
done
