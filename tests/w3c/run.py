"""Runs the W3C Trace Context harness against the test services (Python WSGI and ASGI, Node),
each beside a fresh real agent; fails unless every case passes and the agent received the services' traces.
Started by ci.sh, which provides the environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_line(proc: subprocess.Popen[str], text: str, what: str) -> None:
    """Waits for the sentinel line `text` on `proc`'s stdout."""
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    raise SystemExit(f"{what} did not start (exit {proc.poll()})")


def wait_ready(base: str, agent: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise SystemExit(
                f"the agent exited ({agent.returncode}):\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("the agent did not become ready")


def traces(base: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{base}/api/traces?limit=1000", timeout=5) as r:
        return list(json.load(r)["traces"])


def run(name: str, command: list[str]) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "agent.sock")
        agent_log = Path(tmp) / "agent.log"
        http_port = free_port()
        base = f"http://127.0.0.1:{http_port}"
        agent = subprocess.Popen(
            [
                os.environ["FLOWSCOPE_AGENT_BIN"],
                "--socket",
                sock,
                "--http",
                f"127.0.0.1:{http_port}",
                "--data-dir",
                "none",
                "--otlp-grpc-listen",
                "127.0.0.1:0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=agent_log.open("w"),
        )
        service_port = free_port()
        service = subprocess.Popen(
            [*command, str(service_port), sock],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            wait_ready(base, agent, agent_log)
            wait_line(service, "listening on", f"the {name} test service")
            endpoint = f"http://127.0.0.1:{service_port}/test"
            harness_port = str(free_port())
            env = {
                **os.environ,
                "SERVICE_ENDPOINT": endpoint,
                "SPEC_LEVEL": "2",
                "HARNESS_PORT": harness_port,
                "HARNESS_BIND_PORT": harness_port,
            }
            print(
                f"\n--- W3C Trace Context harness against the {name} SDK ({endpoint})",
                flush=True,
            )
            result = subprocess.run(
                [os.environ["W3C_HARNESS_PYTHON"], "test.py", endpoint],
                check=False,
                cwd=os.environ["W3C_HARNESS_DIR"],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            summary = [
                l
                for l in result.stderr.splitlines()
                if l.startswith(("Ran ", "OK", "FAILED"))
            ]
            print("\n".join(summary) or result.stderr[-4000:])
            if result.returncode != 0:
                print(result.stderr[-20000:])
                return False
            # The services really traced: the agent holds their requests as traces.
            deadline = time.monotonic() + 20
            while not traces(base):
                if time.monotonic() > deadline:
                    print(f"{name}: the agent received no trace")
                    return False
                time.sleep(0.1)
            return True
        finally:
            for proc in (service, agent):
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main() -> None:
    python = os.environ["FLOWSCOPE_PYTHON"]
    ok = run("Python (WSGI)", [python, str(HERE / "service.py")])
    ok = run("Python (ASGI)", [python, str(HERE / "service_asgi.py")]) and ok
    ok = run("Node", ["node", str(HERE / "service.mjs")]) and ok
    if not ok:
        sys.exit(1)
    print("\nW3C Trace Context: every harness case passed for every service")


if __name__ == "__main__":
    main()
