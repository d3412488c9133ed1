"""ASGI middleware: one trace (entry ``api``) and one entry step per HTTP request.

Incoming ``X-Motia-Correlation-Id`` joins the trace to that group (method ``header``); a valid
``traceparent`` becomes the trace's parent (``parentTraceId``); ``tracestate`` is passed on to
outgoing calls. The response carries ``traceparent`` (this request's trace and step),
``tracestate`` and ``X-Motia-Correlation-Id`` (including one set with ``correlate()`` while
handling the request). An exception or a 5xx response marks the step and trace failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .. import _runtime as _rt
from ..propagation import extract
from ._http import Namer, finish, response_headers, start

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class FlowscopeASGIMiddleware:
    """``app = FlowscopeASGIMiddleware(app, flow="chat")``.

    ``flow`` and ``step`` are names, or functions of ``(method, path)``; both default to
    ``"METHOD /path"``. ``exclude_paths`` are served untraced (health checks…).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        flow: Namer = None,
        step: Namer = None,
        exclude_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.flow = flow
        self.step = step
        self.exclude_paths = frozenset(exclude_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope.get("type") != "http"
            or _rt.disabled
            or scope.get("path", "") in self.exclude_paths
        ):
            await self.app(scope, receive, send)
            return
        try:
            method = str(scope.get("method", "GET"))
            path = str(scope.get("path", "/"))
            incoming = extract(scope.get("headers") or ())
            tr, st = start(self.flow, self.step, method, path, incoming)
        except Exception as exc:
            _rt.count_error(exc)
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def send_wrapper(message: Message) -> None:
            if message.get("type") == "http.response.start":
                try:
                    status.append(int(message.get("status", 200)))
                    extra = response_headers(st, tr)
                    if extra:
                        headers = list(message.get("headers") or ())
                        present = {bytes(k).lower() for k, _ in headers}
                        for name, value in extra:
                            key = name.encode("latin-1")
                            if key not in present:
                                headers.append((key, value.encode("latin-1")))
                        message = dict(message)
                        message["headers"] = headers
                except Exception as exc:
                    _rt.count_error(exc)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            finish(tr, st, status[0] if status else None, exc)
            raise
        finish(tr, st, status[0] if status else None, None)
