"""A WSGI test service behind FlowscopeWSGIMiddleware, served by wsgiref (started by the tests).

Routes:
- ``POST /orders/<id>``: a step with a state op; replies with its trace id and the headers it saw.
- ``POST /relay?to=URL``: calls URL (POST, JSON) with an instrumented ``requests`` session and
  replies with the downstream status, headers and body.
- ``POST /fanout``: the body is a JSON list of URLs; POSTs to each in turn with the instrumented
  session (one client span each) and replies with their statuses.
- ``GET /fail``: raises (wsgiref answers 500).
- ``GET /lazy``: a generator body that records while the server iterates it.
"""

from __future__ import annotations

import json
import signal
import sys
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import flowscope
import requests
from flowscope.integrations import FlowscopeWSGIMiddleware
from flowscope.integrations import requests as fs_requests

SESSION = fs_requests.instrument(requests.Session())


def reply(start_response: Callable[..., Any], payload: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    seen = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    if path.startswith("/orders/"):
        order = path.rsplit("/", 1)[-1]
        with flowscope.step("save-order"):
            flowscope.state_set(f"orders.{order}")
        return reply(start_response, {"traceId": flowscope.current_trace_id(), "seen": seen})
    if path == "/relay":
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        with flowscope.step("relay"):
            resp = SESSION.post(query["to"][0], json={"text": "relayed"}, timeout=10)
        return reply(
            start_response,
            {"status": resp.status_code, "headers": dict(resp.headers), "body": resp.json()},
        )
    if path == "/fanout":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        urls = json.loads(environ["wsgi.input"].read(size) or b"[]")
        statuses = [SESSION.post(url, json={}, timeout=10).status_code for url in urls]
        return reply(start_response, {"statuses": statuses, "traceId": flowscope.current_trace_id()})
    if path == "/fail":
        raise LookupError("no such order")
    if path == "/lazy":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterable[bytes]:
            for i in range(3):
                flowscope.log(f"chunk {i}")
                yield f"{i}\n".encode()

        return body()
    return reply(start_response, {"error": "not found"}, "404 Not Found")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    flowscope.init(service="wsgi-test")
    wrapped = FlowscopeWSGIMiddleware(app, flow="orders")
    server = make_server("127.0.0.1", 0, wrapped, handler_class=QuietHandler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"wsgi_app listening http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    flowscope.flush(2.0)
    sys.exit(0)


if __name__ == "__main__":
    main()
