"""Cross-language end to end: Node order service → Python chat service → Node inventory service
over real HTTP, all reporting to one real agent that forwards to a real OTLP receiver.

Asserts W3C Trace Context end to end: one trace id across the three services, each service's
segment hanging under the caller's CLIENT span, and at the collector every span of that trace
present with its parent (zero orphans), each under its own service's resource; the correlation
id crosses too, and the emit-started payment trace joins the group.
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
INVENTORY = REPO / "sdk-node" / "test" / "fixtures" / "inventory-service.js"


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
            [str(AGENT), "--socket", socket, "--http", "127.0.0.1:0", "--log", "warn", "--data-dir", "none",
             "--otlp-endpoint", f"http://{receiver.field('grpc')}", "--otlp-protocol", "grpc"],
            env, "flowscope listening")
        procs.append(agent)
        app_env = {**env, "FLOWSCOPE_SOCKET": socket}
        inventory = Proc(["node", str(INVENTORY)], app_env, "listening")
        procs.append(inventory)
        python = Proc([sys.executable, str(REPO / "examples/python/chat_service.py"), "--port", "0"], app_env, "listening")
        procs.append(python)
        python_url = python.line.split()[-1]
        node_env = {
            **app_env,
            "PORT": "0",
            "DOWNSTREAM_URL": f"{python_url}/threads/order-x1/messages",
            "RELAY_URL": f"{inventory.line.split()[-1]}/reserve",
            "PAYMENT_DELAY_MS": "5",
        }
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


def spans_of(receiver: str, trace_id: str) -> list[dict[str, Any]]:
    """Every span of `trace_id` the collector received, each with its resource's service."""
    out = []
    for request in http("GET", f"{receiver}/received")["requests"]:
        for rs in request["request"]["resourceSpans"]:
            service = attr(rs["resource"]["attributes"], "service.name")
            for scope in rs["scopeSpans"]:
                for span in scope["spans"]:
                    if span["traceId"] == trace_id:
                        out.append({**span, "service": service})
    return out


def test_node_python_node_is_one_trace_with_no_orphan_span(stack: dict[str, str]) -> None:
    order = http("POST", f"{stack['node']}/orders", {"customer": "c-1", "items": [{"sku": "sku-1", "qty": 2}]},
                 {"X-Motia-Correlation-Id": "order-x1"})
    trace_id = order["traceId"]
    chat = order["inventory"]
    assert chat["reply"].startswith("echo"), order
    assert chat["traceId"] == trace_id, "Python continued the Node trace"
    relayed = chat["relayed"]
    assert relayed["status"] == 200
    assert relayed["headers"]["content-type"].startswith("application/json")

    def trace_complete() -> Any:
        t = http("GET", f"{stack['agent']}/api/traces/{trace_id}")
        return t if t["status"] == "completed" and len(t["segments"]) == 3 else None

    trace = wait_for("the three-service trace", trace_complete)
    assert trace["services"] == ["order-service", "chat-service", "inventory-service"]
    assert trace["correlationId"] == "order-x1"
    by_service = {s["service"]: s for s in trace["segments"]}
    calls = {s["id"]: s for s in trace["steps"] if s.get("kind") == "client"}
    assert "parentSpanId" not in by_service["order-service"], "the root service has no caller"
    chat_caller = calls[by_service["chat-service"]["parentSpanId"]]
    assert chat_caller["service"] == "order-service"
    inventory_caller = calls[by_service["inventory-service"]["parentSpanId"]]
    assert inventory_caller["service"] == "chat-service"
    assert all(c["attributes"]["http.response.status_code"] == 200 for c in calls.values())

    # The payment trace the order's emit starts runs after the response: wait for it to join.
    def payment_joined() -> Any:
        group = http("GET", f"{stack['agent']}/api/groups/order-x1")
        others = [t for t in group["traces"] if t["id"] != trace_id]
        return others or None

    payment = wait_for("the emitted payment trace in the group", payment_joined)
    assert len(payment) == 1 and payment[0]["parentTraceId"] == trace_id

    # At the collector: the whole trace, every parent present, one root.
    expected = 3 + len(trace["steps"])  # a root span per segment, a span per step (+ ops)

    def all_spans() -> Any:
        spans = spans_of(stack["receiver"], trace_id)
        ids = {s["spanId"] for s in spans}
        roots = [s for s in spans if s["name"].startswith("flow ")]
        if len(roots) < 3 or len(spans) < expected:
            return None
        orphans = [s for s in spans if s.get("parentSpanId") and s["parentSpanId"] not in ids]
        return (spans, orphans)

    spans, orphans = wait_for("every span of the trace at the collector", all_spans)
    assert orphans == [], f"orphan spans: {[(s['name'], s['parentSpanId']) for s in orphans]}"
    assert len({s["traceId"] for s in spans}) == 1
    top = [s for s in spans if not s.get("parentSpanId")]
    assert [(s["name"], s["service"]) for s in top] == [("flow order-processing", "order-service")]
    by_id = {s["spanId"]: s for s in spans}
    for service, caller_service in (("chat-service", "order-service"), ("inventory-service", "chat-service")):
        (root,) = [s for s in spans if s["name"].startswith("flow ") and s["service"] == service]
        parent = by_id[root["parentSpanId"]]
        assert parent["kind"] in (3, "SPAN_KIND_CLIENT"), parent
        assert parent["service"] == caller_service
        assert attr(parent["attributes"], "http.request.method") == "POST"
    assert attr(by_id[by_service["chat-service"]["spanId"]]["attributes"], "session.id") == "order-x1"
