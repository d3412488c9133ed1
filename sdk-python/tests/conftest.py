"""Fixtures: a real flowscope agent process (real socket, real HTTP API) and helpers to read
traces back from it.

The agent binary comes from ``FLOWSCOPE_AGENT_BIN`` (default ``<repo>/target/debug/flowscope``;
build it with ``cargo build -p flowscope-agent``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flowscope
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "python"
TESTS = Path(__file__).resolve().parent
AGENT_BIN = Path(os.environ.get("FLOWSCOPE_AGENT_BIN", REPO / "target" / "debug" / "flowscope"))
# Until the session agent is up, nothing may reach a real agent on the default socket.
os.environ["FLOWSCOPE_SOCKET"] = "/nonexistent/flowscope-pytest.sock"
os.environ.pop("FLOWSCOPE_DISABLED", None)

LISTENING = re.compile(r"flowscope listening socket=(\S+) http=(http://\S+)")


@dataclass
class Agent:
    """A running agent."""

    proc: subprocess.Popen[bytes]
    socket: str
    url: str
    log: Path

    def get(self, path: str, **params: Any) -> Any:
        """GETs an API path; returns the decoded JSON (``None`` for 404)."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.url}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def trace(
        self,
        trace_id: str,
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Flushes this process's client, then polls ``/api/traces/{id}`` until the trace exists
        and ``until(trace)`` holds (default: it is no longer running)."""
        flowscope.flush(5.0)
        until = until or (lambda t: t.get("status") != "running")
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.get(f"/api/traces/{trace_id}")
            if last is not None and until(last):
                return last
            time.sleep(0.02)
        raise AssertionError(f"trace {trace_id} not as expected after {timeout}s: {last!r}")

    def traces(self, **params: Any) -> list[dict[str, Any]]:
        return self.get("/api/traces", **params)["traces"]

    def group(
        self,
        cid: str,
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        flowscope.flush(5.0)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.get(f"/api/groups/{urllib.parse.quote(cid, safe='')}")
            if last is not None and (until is None or until(last)):
                return last
            time.sleep(0.02)
        raise AssertionError(f"group {cid} not as expected after {timeout}s: {last!r}")


def start_agent(directory: str, socket_path: str | None = None, *extra: str) -> Agent:
    if not AGENT_BIN.exists():
        pytest.fail(
            f"agent binary not found at {AGENT_BIN}: run `cargo build -p flowscope-agent` "
            "or set FLOWSCOPE_AGENT_BIN",
            pytrace=False,
        )
    sock = socket_path or os.path.join(directory, "agent.sock")
    log = Path(directory) / f"agent-{os.getpid()}-{time.monotonic_ns()}.log"
    out = open(log, "wb")
    proc = subprocess.Popen(
        # The user's state directory is not the tests': memory only unless a test asks.
        [str(AGENT_BIN), "--socket", sock, "--http", "127.0.0.1:0",
         *([] if "--data-dir" in extra else ["--data-dir", "none"]), *extra],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    out.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        match = LISTENING.search(log.read_text(errors="replace"))
        if match:
            return Agent(proc, match.group(1), match.group(2), log)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"agent did not start: {log.read_text(errors='replace')}")


def stop_agent(agent: Agent) -> None:
    if agent.proc.poll() is None:
        agent.proc.send_signal(signal.SIGTERM)
        try:
            agent.proc.wait(5)
        except subprocess.TimeoutExpired:
            agent.proc.kill()
            agent.proc.wait(5)


@pytest.fixture(scope="session")
def workdir() -> Iterator[str]:
    # Short path: Unix socket paths are limited to ~107 bytes.
    with tempfile.TemporaryDirectory(prefix="fs-py-") as d:
        yield d


@pytest.fixture(scope="session")
def agent(workdir: str) -> Iterator[Agent]:
    """One agent for the session; this process's client talks to it."""
    a = start_agent(workdir)
    flowscope.init(service="pytest", socket=a.socket)
    yield a
    flowscope.flush(2.0)
    stop_agent(a)


def child_env(agent: Agent | None = None, **extra: str) -> dict[str, str]:
    """Environment for a child Python process (server, fork script…) pointed at ``agent``."""
    env = dict(os.environ)
    env.pop("FLOWSCOPE_DISABLED", None)
    if agent is not None:
        env["FLOWSCOPE_SOCKET"] = agent.socket
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_python(code: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a fresh interpreter (the one running the tests)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(TESTS),
    )


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str


def start_server(args: list[str], env: dict[str, str], banner: str) -> Server:
    """Starts a server process whose first stdout line is ``<banner> http://host:port``."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=None,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=str(TESTS),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(re.escape(banner) + r" (http://\S+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"server did not start (first line {line!r})")
    return Server(proc, match.group(1))


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(5)
    if server.proc.stdout is not None:
        server.proc.stdout.close()


def step_named(trace: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [s for s in trace["steps"] if s["name"] == name]
    assert len(matches) == 1, f"expected one step {name!r} in {[s['name'] for s in trace['steps']]}"
    return matches[0]
