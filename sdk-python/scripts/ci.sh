#!/usr/bin/env bash
# Python SDK checks: installs ./sdk-python (maturin build of the Rust extension) and the test
# dependencies into a cached venv, then runs the pytest suite against a real agent process.
#
#   cargo build -p flowscope-agent      # first: the tests start target/debug/flowscope
#   sdk-python/scripts/ci.sh [pytest args…]
#
# Environment:
#   FLOWSCOPE_CACHE      cache root (default ~/.cache/flowscope): venv-python/, target-python/
#   FLOWSCOPE_AGENT_BIN  agent binary (default <repo>/target/debug/flowscope)
#   PYTHON               interpreter that creates the venv (default python3, >= 3.10)
#
# The wheel is rebuilt only when a file it is built from changed (hash of sdk-python's sources,
# sdk-rust, the bundled agent, Cargo.toml and Cargo.lock, kept in the venv); the Rust build uses its own target
# directory in the cache, so it stays incremental and never waits on the workspace's build lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${FLOWSCOPE_CACHE:-$HOME/.cache/flowscope}"
VENV="$CACHE/venv-python"
AGENT_BIN="${FLOWSCOPE_AGENT_BIN:-$ROOT/target/debug/flowscope}"
PY="$VENV/bin/python"
# Test, lint and bench dependencies, pinned (pytest, ruff, mypy, uvicorn, requests, httpx, opentelemetry-sdk and
# everything they pull in): regenerate with `pip freeze` from the venv after an upgrade.
TEST_LOCK="$ROOT/sdk-python/requirements-test.txt"

export PIP_DISABLE_PIP_VERSION_CHECK=1

if [[ ! -x "$AGENT_BIN" ]]; then
    echo "ci.sh: agent binary not found at $AGENT_BIN" >&2
    echo "ci.sh: build it first with 'cargo build -p flowscope-agent' (or set FLOWSCOPE_AGENT_BIN)" >&2
    exit 2
fi

mkdir -p "$CACHE"
if [[ ! -x "$PY" ]] || ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "ci.sh: creating venv $VENV"
    rm -rf "$VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
fi

deps_stamp="$VENV/.flowscope-test-deps"
deps_hash="$(sha256sum "$TEST_LOCK" | cut -d' ' -f1)"
if [[ "$(cat "$deps_stamp" 2>/dev/null)" != "$deps_hash" ]]; then
    echo "ci.sh: installing pinned test dependencies from $TEST_LOCK"
    "$PY" -m pip install --quiet -r "$TEST_LOCK"
    echo "$deps_hash" > "$deps_stamp"
fi

# Everything the wheel is built from.
source_hash() {
    cd "$ROOT"
    find sdk-python/Cargo.toml sdk-python/pyproject.toml sdk-python/README.md sdk-python/src \
        sdk-python/python sdk-rust/Cargo.toml sdk-rust/src agent/Cargo.toml agent/src \
        Cargo.toml Cargo.lock \
        -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}
build_stamp="$VENV/.flowscope-build-hash"
hash="$(source_hash)"
if [[ "$(cat "$build_stamp" 2>/dev/null)" != "$hash" ]] \
    || ! "$PY" -c 'import flowscope._native' 2>/dev/null; then
    echo "ci.sh: building and installing ./sdk-python"
    rm -f "$build_stamp"
    CARGO_TARGET_DIR="$CACHE/target-python" \
        "$PY" -m pip install --quiet --force-reinstall --no-deps "$ROOT/sdk-python"
    echo "$hash" > "$build_stamp"
else
    echo "ci.sh: ./sdk-python unchanged since the last install, reusing it"
fi

cd "$ROOT"
# Static checks: lint (ruff, rules in pyproject.toml), types (mypy --strict), and the stub of the
# native module against the built extension (stubtest: a function missing from _native.pyi fails).
echo "ci.sh: ruff, mypy --strict, stubtest"
"$PY" -m ruff check --config sdk-python/pyproject.toml sdk-python/python sdk-python/tests examples/motia tests/conformance
(cd sdk-python && "$PY" -m mypy python/flowscope)
"$PY" -m mypy.stubtest flowscope._native

export FLOWSCOPE_AGENT_BIN="$AGENT_BIN"
# -rfE: list failures and errors; the last line is pytest's summary (exit code is pytest's).
exec "$PY" -m pytest sdk-python/tests -p no:cacheprovider -rfE "$@"
