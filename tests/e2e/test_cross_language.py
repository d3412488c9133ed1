"""Cross-language end to end: a Node order service calls a Python chat service over real HTTP;
both report to one real agent, which forwards to a real OTLP receiver.

Asserts that the correlation id and W3C trace context cross the hop, that the agent groups the
traces of both languages (and the emit-started child trace) into one trace group, and that the
collector receives both services' spans with their own resources and a link across the hop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
AGENT = Path(os.environ.get("FLOWSCOPE_AGENT_BIN", REPO / "target" / "debug" / "flowscope"))
RECEIVER = AGENT.parent / "otlp-receiver"


class Proc:
    """A child process whose first stdout line announces its address."""

    def __init__(self, args: list[str], env: dict[str, str], marker: str) -> None:
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert marker in line, f"{args[0]} did not start: {line!r}"
        self.line = line

    def field(self, key: str) -> str:
        return next(w.split("=", 1)[1] for w in self.line.split() if w.startswith(key + "="))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except Exception as exc:  # not there yet
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def attr(attributes: list[dict[str, Any]], key: str) -> Any:
    for kv in attributes:
        if kv["key"] == key:
            return next(iter(kv["value"].values()))
    return None


@pytest.fixture()
def stack():
    for binary in (AGENT, RECEIVER):
        if not binary.exists():
            pytest.fail(f"{binary} is missing: run `cargo build -p flowscope-agent -p otlp-receiver` first")
    tmp = tempfile.mkdtemp(prefix="fs-xlang-")
    socket = f"{tmp}/agent.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWSCOPE_"))}
    procs: list[Proc] = []
    try:
        receiver = Proc([str(RECEIVER)], env, "otlp-receiver")
        procs.append(receiver)
        agent = Proc(
            [str(AGENT), "--socket", socket, "--http", "127.0.0.1:0", "--log", "warn",
             "--otlp-endpoint", f"http://{receiver.field('grpc')}", "--otlp-protocol", "grpc"],
            env, "flowscope listening")
        procs.append(agent)
        app_env = {**env, "FLOWSCOPE_SOCKET": socket}
        python = Proc([sys.executable, str(REPO / "examples/python/chat_service.py"), "--port", "0"], app_env, "listening")
        procs.append(python)
        python_url = python.line.split()[-1]
        node_env = {**app_env, "PORT": "0", "DOWNSTREAM_URL": f"{python_url}/threads/order-x1/messages", "PAYMENT_DELAY_MS": "5"}
        node = Proc(["node", str(REPO / "examples/node/order-service.js")], node_env, "listening")
        procs.append(node)
        yield {
            "agent": agent.field("http"),
            "receiver": f"http://{receiver.field('http')}",
            "node": node.line.split()[-1],
        }
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_node_to_python_hop_is_one_group_and_one_linked_otlp_story(stack: dict[str, str]) -> None:
    order = http("POST", f"{stack['node']}/orders", {"customer": "c-1", "items": [{"sku": "sku-1", "qty": 2}]},
                 {"X-Motia-Correlation-Id": "order-x1"})
    node_trace = order["traceId"]
    assert order["inventory"]["reply"].startswith("echo"), order

    def group_complete() -> Any:
        group = http("GET", f"{stack['agent']}/api/groups/order-x1")
        done = [t for t in group["traces"] if t["status"] == "completed"]
        return group if len(done) >= 3 else None

    group = wait_for("the correlated group", group_complete)
    traces = {t["id"]: t for t in group["traces"]}
    assert node_trace in traces
    services = {t["service"] for t in traces.values()}
    assert services == {"order-service", "chat-service"}, services
    python_traces = [t for t in traces.values() if t["service"] == "chat-service"]
    assert len(python_traces) == 1
    python_trace = http("GET", f"{stack['agent']}/api/traces/{python_traces[0]['id']}")
    assert python_trace["parentTraceId"] == node_trace, "traceparent crossed the hop"
    assert python_trace["correlationMethod"] == "header", "the correlation id crossed the hop"
    payment = [t for t in traces.values() if t["entryPoint"]["stepName"] == "process-payment"]
    assert len(payment) == 1 and payment[0]["parentTraceId"] == node_trace
    assert group["metadata"]["totalTraces"] == 3

    def both_roots() -> Any:
        received = http("GET", f"{stack['receiver']}/received")["requests"]
        roots = {}
        for request in received:
            for rs in request["request"]["resourceSpans"]:
                service = attr(rs["resource"]["attributes"], "service.name")
                for scope in rs["scopeSpans"]:
                    for span in scope["spans"]:
                        if span["name"].startswith("flow ") and span["traceId"] in (node_trace, python_trace["id"]):
                            roots[service] = span
        return roots if len(roots) == 2 else None

    roots = wait_for("both services' root spans at the collector", both_roots)
    assert roots["order-service"]["traceId"] == node_trace
    assert roots["chat-service"]["traceId"] == python_trace["id"]
    assert attr(roots["chat-service"]["attributes"], "session.id") == "order-x1"
    links = roots["chat-service"]["links"]
    assert any(link["traceId"] == node_trace for link in links), links
