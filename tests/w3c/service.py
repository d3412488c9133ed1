"""The test service of the W3C Trace Context validation harness
(https://github.com/w3c/trace-context/tree/main/test), built on the flowscope Python SDK.

Each request is one trace (flowscope's WSGI middleware continues a valid incoming
``traceparent``/``tracestate`` or restarts); for every ``{"url", "arguments"}`` in the JSON body
the service POSTs ``arguments`` to ``url`` as a CLIENT call whose headers
``flowscope.propagation.client_call`` gives. Run it with ``tests/w3c/run.sh``.

``python service.py <port> [socket]``: listens on 127.0.0.1:<port>; events go to the agent at
``socket`` when given.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import flowscope
from flowscope.integrations.wsgi import FlowscopeWSGIMiddleware
from flowscope.propagation import client_call, set_client_status


def call(url: str, arguments: Any) -> None:
    """POSTs ``arguments`` to ``url`` with the propagation headers of a new CLIENT span."""
    with client_call("POST", url) as headers:
        request = urllib.request.Request(
            url,
            data=json.dumps(arguments).encode(),
            headers={**headers, "content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            set_client_status(response.status)
            response.read()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b"[]"
    for case in json.loads(body or b"[]"):
        call(case["url"], case.get("arguments", []))
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"ok"]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    port = int(sys.argv[1])
    socket = sys.argv[2] if len(sys.argv) > 2 else None
    flowscope.init(service="w3c-test-service", socket=socket)
    server = make_server(
        "127.0.0.1", port, FlowscopeWSGIMiddleware(app), handler_class=QuietHandler
    )
    print(f"listening on http://127.0.0.1:{port}/test", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
