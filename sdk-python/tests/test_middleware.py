"""ASGI and WSGI middlewares across real HTTP hops between processes.

The ASGI server is the example chat service (``examples/python/chat_service.py``, uvicorn), the
WSGI server ``tests/wsgi_app.py`` (wsgiref); both run as separate processes sending to the same
agent as this test process, which acts as the calling service.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import flowscope
import httpx
import pytest
import requests
from conftest import (
    EXAMPLES,
    TESTS,
    Agent,
    Server,
    child_env,
    start_server,
    step_named,
    stop_server,
)
from flowscope.integrations import httpx as fs_httpx
from flowscope.integrations import requests as fs_requests

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def chat(agent: Agent) -> Iterator[Server]:
    server = start_server(
        [str(EXAMPLES / "chat_service.py"), "--port", "0", "--service", "chat-test"],
        child_env(agent),
        "chat_service listening",
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def wsgi(agent: Agent) -> Iterator[Server]:
    server = start_server([str(TESTS / "wsgi_app.py")], child_env(agent), "wsgi_app listening")
    yield server
    stop_server(server)


def parent_of(headers: Any) -> tuple[str, str]:
    """(trace id, span id) of a response's traceparent, which must be valid."""
    parsed = flowscope.parse_traceparent(headers["traceparent"])
    assert parsed is not None, headers["traceparent"]
    return parsed[0], parsed[1]


def segment_of(trace: dict[str, Any], service: str) -> dict[str, Any]:
    """The segment (one service's part) of ``trace`` sent by ``service``."""
    found = [s for s in trace["segments"] if s["service"] == service]
    assert len(found) == 1, trace["segments"]
    return found[0]


def client_calls(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in trace["steps"] if s.get("kind") == "client"]


def test_asgi_continues_the_callers_trace_under_its_client_span(
    agent: Agent, chat: Server
) -> None:
    thread = f"thread-{uuid.uuid4().hex[:8]}"
    with flowscope.trace("chat-client", correlation_id=thread) as caller:
        with flowscope.step("ask") as ask:
            with fs_httpx.instrument(httpx.Client(timeout=10)) as client:
                resp = client.post(f"{chat.url}/threads/{thread}/messages", json={"text": "hi"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-motia-correlation-id"] == thread
    server_trace_id, server_span_id = parent_of(resp.headers)
    assert resp.json()["traceId"] == server_trace_id == caller.trace_id, "one trace id end to end"

    t = agent.trace(caller.trace_id, until=lambda t: t["status"] == "completed" and len(t["segments"]) == 2)  # type: ignore[arg-type]
    assert t["service"] == "pytest" and t["flowName"] == "chat-client"
    assert t["services"] == ["pytest", "chat-test"]
    assert "parentTraceId" not in t
    assert t["correlationId"] == thread
    (call,) = client_calls(t)
    assert call["parentId"] == ask.span_id and call["service"] == "pytest"
    assert call["attributes"]["http.request.method"] == "POST"
    assert call["attributes"]["url.full"].endswith(f"/threads/{thread}/messages")
    assert call["attributes"]["http.response.status_code"] == 200
    assert call["status"] == "completed"
    chat_part = segment_of(t, "chat-test")
    assert chat_part["flowName"] == "chat"
    assert chat_part["entryPoint"] == {"type": "api", "stepName": "POST /threads/{id}/messages"}
    assert chat_part["parentSpanId"] == call["id"], "the callee hangs under the caller's call"
    assert chat_part["status"] == "completed"
    entry = step_named(t, "POST /threads/{id}/messages")
    assert entry["id"] == server_span_id and entry["service"] == "chat-test"
    assert "parentId" not in entry
    for name in ("load-history", "generate-reply", "store-message"):
        step = step_named(t, name)
        assert step["parentId"] == server_span_id and step["service"] == "chat-test"
    llm = step_named(t, "generate-reply")["events"][0]
    assert llm["type"] == "llm" and llm["model"] == "fake-echo-1"
    assert step_named(t, "store-message")["ops"][1]["topic"] == "chat.message.created"
    # The list filters by any service of the trace.
    assert caller.trace_id in [x["id"] for x in agent.traces(service="chat-test", limit=1000)]

    group = agent.group(thread, until=lambda g: g["metadata"]["totalTraces"] == 1)
    assert [tr["id"] for tr in group["traces"]] == [caller.trace_id]


def test_asgi_messages_of_a_thread_form_one_group(agent: Agent, chat: Server) -> None:
    """No header at all: the app's correlate() groups the thread and the response says so."""
    thread = f"thread-{uuid.uuid4().hex[:8]}"
    ids = []
    for text in ("hello", "how are you?", "bye"):
        resp = requests.post(f"{chat.url}/threads/{thread}/messages", json={"text": text}, timeout=10)
        assert resp.status_code == 200
        assert resp.headers["x-motia-correlation-id"] == thread
        ids.append(parent_of(resp.headers)[0])
    assert resp.json()["reply"] == "echo #3: bye"
    group = agent.group(
        thread,
        until=lambda g: g["metadata"]["totalTraces"] == 3 and g["status"] == "completed",
    )
    assert group["name"] == "Chat Thread"
    assert [t["id"] for t in group["traces"]] == ids
    assert all("parentTraceId" not in agent.trace(i) for i in ids)


def test_asgi_ignores_invalid_traceparent_and_its_tracestate(agent: Agent, chat: Server) -> None:
    for bad in ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", VALID + "-x", "ff" + VALID[2:]):
        resp = requests.post(
            f"{chat.url}/threads/t-bad/messages",
            json={"text": "x"},
            headers={"traceparent": bad, "tracestate": "vendor=1"},
            timeout=10,
        )
        assert resp.status_code == 200
        trace_id, _ = parent_of(resp.headers)  # a fresh, valid traceparent
        assert trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"
        assert "tracestate" not in resp.headers
        t = agent.trace(trace_id)
        assert "parentTraceId" not in t
        assert "w3c.parent_span_id" not in t["attributes"]


def test_asgi_keeps_tracestate_with_a_valid_traceparent(agent: Agent, chat: Server) -> None:
    resp = requests.post(
        f"{chat.url}/threads/t-ts/messages",
        json={"text": "x"},
        headers={"traceparent": VALID, "tracestate": "vendor=1,other=2"},
        timeout=10,
    )
    assert resp.headers["tracestate"] == "vendor=1,other=2"
    trace_id, _ = parent_of(resp.headers)
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    t = agent.trace(trace_id)
    (segment,) = t["segments"]
    assert segment["service"] == "chat-test"
    assert segment["parentSpanId"] == "00f067aa0ba902b7"
    assert "parentTraceId" not in t


def test_asgi_failure_marks_step_and_trace_failed(agent: Agent, chat: Server) -> None:
    resp = requests.post(f"{chat.url}/threads/t-boom/messages", json={"text": "boom"}, timeout=10)
    assert resp.status_code == 500
    t = agent.trace(parent_of(resp.headers)[0])
    assert t["status"] == "failed"
    model = step_named(t, "generate-reply")
    assert model["status"] == "failed"
    assert model["error"]["type"] == "ModelError"
    assert model["error"]["code"] == "E_MODEL"
    assert "fake_model" in model["error"]["stack"]
    entry = step_named(t, "POST /threads/{id}/messages")
    assert entry["status"] == "failed" and entry["error"]["message"] == "HTTP 500"


def test_asgi_untraced_paths(chat: Server) -> None:
    resp = requests.get(f"{chat.url}/healthz", timeout=10)
    assert resp.status_code == 200
    assert "traceparent" not in resp.headers


def test_wsgi_propagates_across_three_processes(agent: Agent, wsgi: Server, chat: Server) -> None:
    """test process → WSGI service (requests helper inside) → ASGI chat service: one trace."""
    cid = f"order-{uuid.uuid4().hex[:8]}"
    session = fs_requests.instrument(requests.Session())
    with flowscope.trace("checkout", correlation_id=cid) as caller:
        with flowscope.step("call-orders") as call:
            resp = session.post(
                f"{wsgi.url}/relay", params={"to": f"{chat.url}/threads/{cid}/messages"}, timeout=10
            )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-motia-correlation-id"] == cid
    wsgi_trace_id, wsgi_span_id = parent_of(resp.headers)
    downstream = resp.json()
    assert downstream["status"] == 200
    chat_trace_id, _ = parent_of(downstream["headers"])
    assert downstream["headers"]["x-motia-correlation-id"] == cid
    assert wsgi_trace_id == chat_trace_id == caller.trace_id

    t = agent.trace(
        caller.trace_id,  # type: ignore[arg-type]
        until=lambda t: t["status"] == "completed" and len(t["segments"]) == 3,
    )
    assert t["flowName"] == "checkout" and t["correlationId"] == cid
    assert t["services"] == ["pytest", "wsgi-test", "chat-test"]
    calls = client_calls(t)
    to_orders = next(c for c in calls if c["service"] == "pytest")
    to_chat = next(c for c in calls if c["service"] == "wsgi-test")
    assert to_orders["parentId"] == call.span_id
    orders = segment_of(t, "wsgi-test")
    assert orders["flowName"] == "orders" and orders["parentSpanId"] == to_orders["id"]
    assert step_named(t, "POST /relay")["id"] == wsgi_span_id
    relay = step_named(t, "relay")
    assert relay["parentId"] == wsgi_span_id and relay["service"] == "wsgi-test"
    assert to_chat["parentId"] == relay["id"]
    chat_part = segment_of(t, "chat-test")
    assert chat_part["parentSpanId"] == to_chat["id"]

    group = agent.group(cid, until=lambda g: g["metadata"]["totalTraces"] == 1)
    assert [x["id"] for x in group["traces"]] == [caller.trace_id]


def test_wsgi_ignores_invalid_traceparent(agent: Agent, wsgi: Server) -> None:
    resp = requests.post(
        f"{wsgi.url}/orders/o-1",
        headers={"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "tracestate": "a=b"},
        timeout=10,
    )
    assert resp.status_code == 200
    assert "tracestate" not in resp.headers
    trace_id, _ = parent_of(resp.headers)
    assert resp.json()["traceId"] == trace_id
    t = agent.trace(trace_id)
    assert "parentTraceId" not in t
    assert step_named(t, "save-order")["ops"][0]["key"] == "orders.o-1"


def test_wsgi_exception_fails_the_trace(agent: Agent, wsgi: Server) -> None:
    cid = f"fail-{uuid.uuid4().hex[:8]}"
    resp = requests.get(f"{wsgi.url}/fail", headers={"X-Motia-Correlation-Id": cid}, timeout=10)
    assert resp.status_code == 500
    (summary,) = agent.group(cid)["traces"]
    t = agent.trace(summary["id"])
    assert t["status"] == "failed"
    entry = step_named(t, "GET /fail")
    assert entry["error"]["type"] == "LookupError"
    assert "no such order" in entry["error"]["message"]


def test_wsgi_lazy_body_is_recorded_inside_the_step(agent: Agent, wsgi: Server) -> None:
    resp = requests.get(f"{wsgi.url}/lazy", timeout=10)
    assert resp.text == "0\n1\n2\n"
    t = agent.trace(parent_of(resp.headers)[0])
    entry = step_named(t, "GET /lazy")
    assert [e["message"] for e in entry["events"]] == ["chunk 0", "chunk 1", "chunk 2"]
    assert t["status"] == "completed"
