"""Outgoing calls with ``requests``: propagation headers on every request of a session.

    session = flowscope.integrations.requests.instrument(requests.Session())
    # or: session = flowscope.integrations.requests.Session()

Each request then carries ``traceparent`` (current trace and step), ``tracestate`` and
``X-Motia-Correlation-Id``; headers the caller set explicitly win. ``requests`` is imported only
by this module.
"""

from __future__ import annotations

from typing import Any, TypeVar

import requests as _requests

from ..propagation import inject

S = TypeVar("S", bound=_requests.Session)

_MARK = "_flowscope_instrumented"


def _add_headers(request: Any) -> None:
    extra = inject({})
    for name, value in extra.items():
        if name not in request.headers:
            request.headers[name] = value


def instrument(session: S) -> S:
    """Makes ``session`` inject the propagation headers; returns it. Idempotent."""
    if getattr(session, _MARK, False):
        return session
    send = session.send

    def traced_send(request: Any, **kwargs: Any) -> Any:
        _add_headers(request)
        return send(request, **kwargs)

    session.send = traced_send  # type: ignore[method-assign]
    setattr(session, _MARK, True)
    return session


class Session(_requests.Session):
    """A ``requests.Session`` that injects the propagation headers."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        _add_headers(request)
        return super().send(request, **kwargs)


__all__ = ["instrument", "Session"]
