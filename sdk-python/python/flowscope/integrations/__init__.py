"""Framework integrations: ASGI and WSGI middleware (incoming), ``requests`` and ``httpx``
helpers (outgoing). The HTTP client libraries are imported only by their own module."""

from .asgi import FlowscopeASGIMiddleware
from .wsgi import FlowscopeWSGIMiddleware

__all__ = ["FlowscopeASGIMiddleware", "FlowscopeWSGIMiddleware"]
