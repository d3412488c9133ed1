"""Outgoing calls with ``httpx`` (sync and async clients): propagation headers through httpx's
request event hooks.

    client = flowscope.integrations.httpx.instrument(httpx.Client())
    client = flowscope.integrations.httpx.instrument(httpx.AsyncClient())
    # or: httpx.Client(event_hooks={"request": [flowscope.integrations.httpx.request_hook]})

Each request is recorded as a CLIENT span of the current step (method, URL, response status;
a 5xx fails it; a request that gets no response is closed as failed by the agent when the trace
ends) and carries ``traceparent`` with that span as parent-id. Headers the caller set explicitly
win. ``httpx`` is imported only by this module.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx as _httpx

from ..propagation import end_client_call, start_client_call

C = TypeVar("C", _httpx.Client, _httpx.AsyncClient)

_SPAN = "flowscope.client_span"


def request_hook(request: _httpx.Request) -> None:
    """Sync request hook: starts the call's CLIENT span and adds ``traceparent`` (that span),
    ``tracestate`` and ``X-Motia-Correlation-Id``."""
    call = start_client_call(request.method, str(request.url))
    if call is None:
        return
    request.extensions[_SPAN] = call
    for name, value in call.headers():
        if name not in request.headers:
            request.headers[name] = value


def response_hook(response: _httpx.Response) -> None:
    """Sync response hook: ends the call's CLIENT span with the response status."""
    call = response.request.extensions.pop(_SPAN, None)
    end_client_call(call, response.status_code)


async def async_request_hook(request: _httpx.Request) -> None:
    """The same for ``httpx.AsyncClient`` (hooks run in the calling task, so its context)."""
    request_hook(request)


async def async_response_hook(response: _httpx.Response) -> None:
    """The same for ``httpx.AsyncClient``."""
    response_hook(response)


def instrument(client: C) -> C:
    """Adds the request and response hooks matching ``client``; returns it. Idempotent."""
    is_async = isinstance(client, _httpx.AsyncClient)
    pairs: list[tuple[str, Any]] = [
        ("request", async_request_hook if is_async else request_hook),
        ("response", async_response_hook if is_async else response_hook),
    ]
    hooks = dict(client.event_hooks)
    for event, hook in pairs:
        existing = list(hooks.get(event, []))
        if hook not in existing:
            existing.append(hook)
        hooks[event] = existing
    client.event_hooks = hooks
    return client


__all__ = [
    "instrument",
    "request_hook",
    "response_hook",
    "async_request_hook",
    "async_response_hook",
]
