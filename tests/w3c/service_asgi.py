"""The W3C Trace Context test service on the flowscope Python SDK's ASGI middleware (served by
uvicorn, calls made with httpx): unlike WSGI, where the server joins repeated headers, ASGI hands
the app every header line, so this exercises the SDK's own joining of repeated ``tracestate``
and refusal of repeated ``traceparent``. See service.py for the protocol.

``python service_asgi.py <port> [socket]``
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import MutableMapping
from typing import Any

import flowscope
import httpx
import uvicorn
from flowscope.integrations.asgi import FlowscopeASGIMiddleware
from flowscope.propagation import client_call, set_client_status


async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    async with httpx.AsyncClient(timeout=5) as client:
        for case in json.loads(body or b"[]"):
            with client_call("POST", case["url"]) as headers:
                response = await client.post(
                    case["url"], json=case.get("arguments", []), headers=headers
                )
                set_client_status(response.status_code)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


def main() -> None:
    port = int(sys.argv[1])
    agent_socket = sys.argv[2] if len(sys.argv) > 2 else None
    flowscope.init(service="w3c-test-service-asgi", socket=agent_socket)
    # Bound before the sentinel line: connections wait in the backlog until uvicorn accepts.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    print(f"listening on http://127.0.0.1:{port}/test", flush=True)
    config = uvicorn.Config(
        FlowscopeASGIMiddleware(app), log_level="warning", lifespan="off"
    )
    asyncio.run(uvicorn.Server(config).serve(sockets=[listener]))


if __name__ == "__main__":
    main()
