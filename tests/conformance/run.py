"""Cross-language conformance: runs scenario.json through the Rust, Python and Node drivers
against one real agent, fetches the traces the agent built, normalises what legitimately differs
(ids, times, durations, stacks, the SDK's name) and requires the three to be identical.

    python tests/conformance/run.py            # FLOWSCOPE_AGENT_BIN, FLOWSCOPE_CONFORMANCE_RUST,
                                               # FLOWSCOPE_PYTHON select the binaries

Writes the normalised traces to test-artifacts/conformance/<sdk>.json; on a mismatch prints a
unified diff and exits 1.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCENARIO = HERE / "scenario.json"
ARTIFACTS = REPO / "test-artifacts" / "conformance"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
AGENT = Path(os.environ.get("FLOWSCOPE_AGENT_BIN", TARGET / "debug" / "flowscope"))
RUST_DRIVER = Path(os.environ.get("FLOWSCOPE_CONFORMANCE_RUST", TARGET / "debug" / "examples" / "conformance"))
PYTHON = os.environ.get("FLOWSCOPE_PYTHON", sys.executable)

#: Keys whose values are times or durations (they differ run to run).
TIMES = {"startTime", "duration", "time", "lastActivity", "endTime", "totalDuration"}
#: Keys that hold ids, replaced by their order of first appearance.
IDS = {"id", "spanId", "parentId", "parentSpanId", "traceId", "parentTraceId"}
#: Keys that are per-run or per-SDK by nature.
DROPPED = {"stack", "criticalPath"}


def normalise(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in TIMES or key in DROPPED:
                continue
            if key in IDS and isinstance(item, str):
                out[key] = ids.setdefault(item, f"<id{len(ids)}>")
            else:
                out[key] = normalise(item, ids)
        return out
    if isinstance(value, list):
        return [normalise(item, ids) for item in value]
    return value


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def start_agent(work: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    sock = str(work / "agent.sock")
    log = open(work / "agent.log", "wb")
    proc = subprocess.Popen(
        [str(AGENT), "--socket", sock, "--http", "127.0.0.1:0", "--data-dir", "none",
         "--otlp-grpc-listen", "off", "--log", "warn"],
        stdout=subprocess.PIPE, stderr=log,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"http=(http://\S+)", line)
    if not match:
        proc.kill()
        sys.exit(f"conformance: the agent did not start: {line!r}")
    return proc, sock, match.group(1)


def drivers() -> dict[str, list[str]]:
    return {
        "rust": [str(RUST_DRIVER), str(SCENARIO)],
        "python": [PYTHON, str(HERE / "driver.py"), str(SCENARIO)],
        "node": ["node", str(HERE / "driver.mjs"), str(SCENARIO)],
    }


def wait_done(base: str, trace_id: str) -> Any:
    deadline = time.monotonic() + 10
    while True:
        try:
            trace = get(f"{base}/api/traces/{trace_id}")
            if trace["status"] != "running":
                return trace
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise
        if time.monotonic() > deadline:
            sys.exit(f"conformance: trace {trace_id} did not finish")
        time.sleep(0.02)


def main() -> int:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, str] = {}
    servers: dict[str, str] = {}
    for sdk, argv in drivers().items():
        # One fresh agent per SDK: groups and indexes see the same history in each run.
        with tempfile.TemporaryDirectory(prefix="fs-conf-") as tmp:
            proc, sock, base = start_agent(Path(tmp))
            try:
                env = dict(os.environ, FLOWSCOPE_SOCKET=sock)
                done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
                if done.returncode != 0:
                    print(f"conformance: the {sdk} driver failed:\n{done.stdout}\n{done.stderr}")
                    return 1
                produced = json.loads(done.stdout.strip().splitlines()[-1])
                ids: dict[str, str] = {}
                traces = [normalise(wait_done(base, t), ids) for t in produced["traces"]]
                results[sdk] = json.dumps(traces, indent=2, sort_keys=True)
                (ARTIFACTS / f"{sdk}.json").write_text(results[sdk] + "\n")
                if produced["server"] is not None:
                    server = normalise(wait_done(base, produced["server"]), {})
                    servers[sdk] = json.dumps(server, indent=2, sort_keys=True)
                    (ARTIFACTS / f"{sdk}-server.json").write_text(servers[sdk] + "\n")
            finally:
                proc.terminate()
                proc.wait(10)
    failed = compare(results, "rust") | compare(servers, "python")
    # The middleware rules themselves, not only their sameness.
    for sdk, text in servers.items():
        server = json.loads(text)
        spec = json.loads(SCENARIO.read_text())["server"]
        want_name = f"{spec['method']} {spec['path']}"
        want_error = {"message": f"HTTP {spec['status']}", "type": "HttpError", "code": str(spec["status"])}
        if server["flowName"] != want_name or server.get("error") != want_error:
            print(f"conformance: {sdk}'s middleware trace is not {want_name!r} failed with {want_error}")
            failed = True
    if failed:
        return 1
    steps = sum(len(t["steps"]) for t in json.loads(results["rust"]))
    print(
        f"conformance: rust, python and node produced identical traces ({steps} steps); "
        f"the python and node HTTP middleware identical server traces"
    )
    return 0


def compare(results: dict[str, str], reference_sdk: str) -> bool:
    """Prints a diff for every SDK whose output differs from `reference_sdk`'s; whether any did."""
    reference = results[reference_sdk]
    failed = False
    for sdk, text in results.items():
        if text != reference:
            failed = True
            diff = difflib.unified_diff(
                reference.splitlines(), text.splitlines(), reference_sdk, sdk, lineterm="", n=2
            )
            print(f"conformance: {sdk} differs from {reference_sdk}:")
            print("\n".join(diff))
    return failed


if __name__ == "__main__":
    sys.exit(main())
