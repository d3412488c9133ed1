#!/usr/bin/env bash
# Runs every test of flowscope: Rust lint + unit + end-to-end tests, then the Python SDK, Node SDK,
# cross-language conformance, browser UI, cross-language end-to-end and W3C Trace Context suites
# (each against a real agent process), then builds the release artifacts and installs them without a Rust toolchain.
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export FLOWSCOPE_AGENT_BIN="$target_dir/debug/flowscope"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (agent binary for the SDK and UI suites)"
cargo build --locked -p flowscope-agent

step "cargo test (unit + agent end-to-end)"
cargo test --workspace --locked

for suite in sdk-python/scripts/ci.sh sdk-node/scripts/ci.sh tests/conformance/ci.sh tests/ui/ci.sh tests/e2e/ci.sh tests/w3c/ci.sh; do
  if [ -f "$suite" ]; then
    step "$suite"
    bash "$suite"
  fi
done

step "release artifacts (dist/) and their install without a Rust toolchain"
bash scripts/build-dist.sh
bash scripts/smoke-dist.sh

step "all suites passed"
