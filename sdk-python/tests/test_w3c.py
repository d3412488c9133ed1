"""W3C Trace Context Level 1 and Level 2 requirements, end to end over real HTTP: a request with
given headers goes to the WSGI test service (FlowscopeWSGIMiddleware), which calls a capture
server three times with the instrumented ``requests`` session; the headers those calls carried
are checked against the spec (the same checks the official W3C test suite makes)."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import flowscope
import pytest
import requests
from conftest import TESTS, Agent, Server, child_env, start_server, stop_server

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Capture:
    """An HTTP server that records the headers of every request, by path."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[str, str]]] = {}
        capture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                capture.seen[self.path] = list(self.headers.items())
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def capture() -> Iterator[Capture]:
    c = Capture()
    yield c
    c.server.shutdown()


@pytest.fixture(scope="module")
def service(agent: Agent) -> Iterator[Server]:
    server = start_server([str(TESTS / "wsgi_app.py")], child_env(agent), "wsgi_app listening")
    yield server
    stop_server(server)


def callbacks(
    service: Server, capture: Capture, headers: list[tuple[str, str]], count: int = 3
) -> list[dict[str, Any]]:
    """Sends `headers` to the service and returns, per outgoing call, its traceparent parts and
    its tracestate (combined as HTTP would)."""
    run = uuid.uuid4().hex[:8]
    urls = [f"{capture.url}/{run}/{i}" for i in range(count)]
    session = requests.Session()
    request = requests.Request("POST", f"{service.url}/fanout", data=json.dumps(urls))
    prepared = session.prepare_request(request)
    # Repeated headers must reach the service as separate header lines.
    for name in {n.lower() for n, _ in headers}:
        prepared.headers.pop(name, None)
    body = prepared.body
    raw = "".join(f"{n}: {v}\r\n" for n, v in headers)
    import socket

    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            f"POST /fanout HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{raw}\r\n"
        )
        sock.sendall(head.encode("latin-1") + (body if isinstance(body, bytes) else body.encode()))
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert b" 200 " in response.split(b"\r\n", 1)[0], response[:200]
    out = []
    for url in urls:
        seen = capture.seen[url.removeprefix(capture.url)]
        parents = [v for n, v in seen if n.lower() == "traceparent"]
        assert len(parents) == 1, seen
        parsed = flowscope.parse_traceparent(parents[0])
        assert parsed is not None, parents[0]
        states = [v for n, v in seen if n.lower() == "tracestate"]
        out.append({"trace": parsed[0], "parent": parsed[1], "flags": parsed[2], "state": ",".join(states) or None})
    return out


def test_no_incoming_context_starts_a_random_sampled_trace(service: Server, capture: Capture) -> None:
    calls = callbacks(service, capture, [])
    assert len({c["trace"] for c in calls}) == 1
    assert len({c["parent"] for c in calls}) == 3, "a distinct parent-id per outgoing call"
    assert all(c["flags"] == 0x03 for c in calls), "random (Level 2) and sampled"
    assert all(c["state"] is None for c in calls)


@pytest.mark.parametrize("flags", ["00", "01", "02", "03"])
def test_a_valid_traceparent_is_continued_with_its_flags(service: Server, capture: Capture, flags: str) -> None:
    calls = callbacks(service, capture, [("traceparent", f"00-{TRACE}-{PARENT}-{flags}")])
    assert {c["trace"] for c in calls} == {TRACE}
    parents = {c["parent"] for c in calls}
    assert len(parents) == 3 and PARENT not in parents
    assert {c["flags"] for c in calls} == {int(flags, 16)}


@pytest.mark.parametrize(
    "headers",
    [
        [("traceparent", f"00-{TRACE.upper()}-{PARENT}-01")],
        [("traceparent", f"ff-{TRACE}-{PARENT}-01")],
        [("traceparent", f"00-{'0' * 32}-{PARENT}-01")],
        [("traceparent", f"00-{TRACE}-{'0' * 16}-01")],
        [("traceparent", f"00-{TRACE}-{PARENT}-01-extra")],
        [("traceparent", f"00-{TRACE}-{PARENT}-0g")],
        [("traceparent", f"00-{TRACE}-{PARENT}-01"), ("traceparent", f"00-{TRACE[:-1]}1-{PARENT}-01")],
    ],
    ids=["uppercase", "version-ff", "zero-trace", "zero-parent", "v00-extra", "bad-flags", "duplicated"],
)
def test_an_invalid_traceparent_restarts_the_trace_without_its_tracestate(
    service: Server, capture: Capture, headers: list[tuple[str, str]]
) -> None:
    calls = callbacks(service, capture, [*headers, ("tracestate", "foo=1")])
    assert TRACE not in {c["trace"] for c in calls}
    assert len({c["trace"] for c in calls}) == 1
    assert all(c["state"] is None for c in calls)


def test_future_versions_and_optional_whitespace_are_accepted(service: Server, capture: Capture) -> None:
    for value in (f"cc-{TRACE}-{PARENT}-01-what-the-future-holds", f" 00-{TRACE}-{PARENT}-01\t"):
        assert {c["trace"] for c in callbacks(service, capture, [("traceparent", value)])} == {TRACE}


@pytest.mark.parametrize(
    ("states", "want"),
    [
        (["foo=1,bar=2"], "foo=1,bar=2"),
        (["foo=1", "bar=2,rojo=1"], "foo=1,bar=2,rojo=1"),
        (["foo=1 \t , \t bar=2"], "foo=1,bar=2"),
        (["foo@vendor=1,bar=2"], "foo@vendor=1,bar=2"),
        (["foo=1,foo=2"], "foo=1"),
        ([""], None),
        (["foo=bar=baz"], None),
        (["foo=,bar=3"], None),
        (["@foo=1,bar=2"], None),
        (["Foo=1"], None),
        ([",".join(f"k{i}=v" for i in range(33))], None),
        (["foo=1", "z" * 257 + "=1"], None),
    ],
)
def test_tracestate_is_passed_on_only_when_valid(
    service: Server, capture: Capture, states: list[str], want: str | None
) -> None:
    headers = [("traceparent", f"00-{TRACE}-{PARENT}-01"), *(("tracestate", s) for s in states)]
    calls = callbacks(service, capture, headers, count=1)
    assert calls[0]["trace"] == TRACE
    assert calls[0]["state"] == want


def test_the_callee_segment_hangs_under_the_callers_span(
    agent: Agent, service: Server, capture: Capture
) -> None:
    trace = uuid.uuid4().hex
    calls = callbacks(service, capture, [("traceparent", f"00-{trace}-{PARENT}-01")])
    t = agent.trace(trace)
    (segment,) = t["segments"]
    assert segment["parentSpanId"] == PARENT and segment["service"] == "wsgi-test"
    client = {s["id"] for s in t["steps"] if s.get("kind") == "client"}
    assert client == {c["parent"] for c in calls}, "the parent-ids sent are exported client spans"
