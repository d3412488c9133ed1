"""What the ASGI and WSGI middlewares share: naming, attributes, response headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._api import Step, Trace
from ..propagation import Incoming

#: A name, or a function of (method, path) returning one.
Namer = str | Callable[[str, str], str] | None


def name_for(namer: Namer, method: str, path: str) -> str:
    if namer is None:
        return f"{method} {path}"
    if isinstance(namer, str):
        return namer
    return namer(method, path)


def start(
    flow: Namer, step: Namer, method: str, path: str, incoming: Incoming
) -> tuple[Trace | None, Step | None]:
    """Starts the request's trace (entry ``api``) and its entry step."""
    step_name = name_for(step, method, path)
    attributes: dict[str, Any] = {"http.request.method": method, "url.path": path}
    tr = Trace(
        name_for(flow, method, path),
        entry="api",
        step=step_name,
        correlation_id=incoming.correlation_id,
        correlation_method="header",
        attributes=attributes,
        traceparent=incoming.traceparent,
        tracestate=incoming.tracestate,
    )
    tr.__enter__()
    if tr.span is None:
        return None, None
    st = Step(step_name)
    st.__enter__()
    return tr, st


def response_headers(st: Step | None, tr: Trace | None) -> list[tuple[str, str]]:
    """``traceparent`` of the request's step, its trace's ``tracestate`` and correlation id."""
    scope = st if st is not None and st.span is not None else tr
    if scope is None:
        return []
    return list(scope.headers().items())


def finish(
    tr: Trace | None, st: Step | None, status: int | None, exc: BaseException | None
) -> None:
    """Ends step then trace; a 5xx response fails them without an exception."""
    if tr is None:
        return
    if exc is None and status is not None and status >= 500:
        # Imported here: with FLOWSCOPE_DISABLED the native module is never loaded.
        from .._native import http_status_error

        for scope in (st, tr):
            if scope is not None:
                scope.set_error(*http_status_error(status))
    et = None if exc is None else type(exc)
    tb = None if exc is None else exc.__traceback__
    if st is not None:
        st.__exit__(et, exc, tb)
    tr.__exit__(et, exc, tb)


__all__ = ["Namer", "name_for", "start", "response_headers", "finish"]
