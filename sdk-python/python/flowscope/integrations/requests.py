"""Outgoing calls with ``requests``: propagation headers on every request of a session.

    session = flowscope.integrations.requests.instrument(requests.Session())
    # or: session = flowscope.integrations.requests.Session()

Each request is recorded as a CLIENT span of the current step (method, URL, response status;
a 5xx or an exception fails it) and carries ``traceparent`` with that span as parent-id, plus
``tracestate`` and ``X-Motia-Correlation-Id``; headers the caller set explicitly win. Outside a
trace nothing is added. ``requests`` is imported only by this module.
"""

from __future__ import annotations

from typing import Any, TypeVar

import requests as _requests

from ..propagation import end_client_call, start_client_call

S = TypeVar("S", bound=_requests.Session)

_MARK = "_flowscope_instrumented"


def _traced(send: Any, request: Any, **kwargs: Any) -> Any:
    call = start_client_call(str(request.method or "GET"), str(request.url or ""))
    if call is None:
        return send(request, **kwargs)
    try:
        for name, value in call.headers():
            if name not in request.headers:
                request.headers[name] = value
    except Exception:
        pass
    try:
        response = send(request, **kwargs)
    except BaseException as exc:
        end_client_call(call, None, exc)
        raise
    end_client_call(call, int(response.status_code))
    return response


def instrument(session: S) -> S:
    """Makes ``session`` inject the propagation headers; returns it. Idempotent."""
    if getattr(session, _MARK, False):
        return session
    send = session.send

    def traced_send(request: Any, **kwargs: Any) -> Any:
        return _traced(send, request, **kwargs)

    session.send = traced_send  # type: ignore[method-assign]
    setattr(session, _MARK, True)
    return session


class Session(_requests.Session):
    """A ``requests.Session`` that injects the propagation headers."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        return _traced(super().send, request, **kwargs)


__all__ = ["instrument", "Session"]
