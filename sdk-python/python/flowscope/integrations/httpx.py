"""Outgoing calls with ``httpx`` (sync and async clients): propagation headers through httpx's
request event hooks.

    client = flowscope.integrations.httpx.instrument(httpx.Client())
    client = flowscope.integrations.httpx.instrument(httpx.AsyncClient())
    # or: httpx.Client(event_hooks={"request": [flowscope.integrations.httpx.request_hook]})

Headers the caller set explicitly win. ``httpx`` is imported only by this module.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx as _httpx

from ..propagation import inject

C = TypeVar("C", _httpx.Client, _httpx.AsyncClient)


def request_hook(request: _httpx.Request) -> None:
    """Sync request hook: adds ``traceparent``, ``tracestate`` and ``X-Motia-Correlation-Id``."""
    for name, value in inject({}).items():
        if name not in request.headers:
            request.headers[name] = value


async def async_request_hook(request: _httpx.Request) -> None:
    """The same for ``httpx.AsyncClient`` (hooks run in the calling task, so its context)."""
    request_hook(request)


def instrument(client: C) -> C:
    """Adds the request hook matching ``client``; returns it. Idempotent."""
    hook: Any = async_request_hook if isinstance(client, _httpx.AsyncClient) else request_hook
    hooks = dict(client.event_hooks)
    request_hooks = list(hooks.get("request", []))
    if hook not in request_hooks:
        request_hooks.append(hook)
    hooks["request"] = request_hooks
    client.event_hooks = hooks
    return client


__all__ = ["instrument", "request_hook", "async_request_hook"]
