"""WSGI middleware: one trace (entry ``api``) and one entry step per request; same header
rules as the ASGI middleware.

The request runs in its own copy of the ``contextvars`` context, and so does the iteration of
the response body, so the trace ends when the server closes the response (WSGI ``close()``)
and never leaks into the server's thread.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .. import _runtime as _rt
from .._api import Step, Trace
from ..propagation import extract
from ._http import Namer, finish, response_headers, start

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class _Body:
    """The app's response body, iterated in the request's context; ends the trace on close."""

    def __init__(
        self,
        body: Iterable[bytes],
        ctx: contextvars.Context,
        tr: Trace | None,
        st: Step | None,
        status: list[int],
    ) -> None:
        self._body = body
        self._iter: Iterator[bytes] | None = None
        self._ctx = ctx
        self._tr = tr
        self._st = st
        self._status = status
        self._error: BaseException | None = None
        self._closed = False

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        if self._iter is None:
            self._iter = iter(self._body)
        try:
            return self._ctx.run(next, self._iter)
        except StopIteration:
            raise
        except BaseException as exc:
            self._error = exc
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                self._ctx.run(close)
        finally:
            status = self._status[0] if self._status else None
            self._ctx.run(finish, self._tr, self._st, status, self._error)


class FlowscopeWSGIMiddleware:
    """``app = FlowscopeWSGIMiddleware(app, flow="orders")``; options as for ASGI."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        flow: Namer = None,
        step: Namer = None,
        exclude_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.flow = flow
        self.step = step
        self.exclude_paths = frozenset(exclude_paths)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if _rt.disabled or environ.get("PATH_INFO", "") in self.exclude_paths:
            return self.app(environ, start_response)
        ctx = contextvars.copy_context()
        return ctx.run(self._call, ctx, environ, start_response)

    def _call(
        self, ctx: contextvars.Context, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        try:
            method = str(environ.get("REQUEST_METHOD", "GET"))
            path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "/"))
            incoming = extract(environ)
            tr, st = start(self.flow, self.step, method, path, incoming)
        except Exception as exc:
            _rt.count_error(exc)
            return self.app(environ, start_response)
        status: list[int] = []

        def start_wrapper(
            status_line: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            try:
                status.append(int(str(status_line).split(" ", 1)[0]))
                present = {str(k).lower() for k, _ in headers}
                extra = [(k, v) for k, v in response_headers(st, tr) if k not in present]
                headers = list(headers) + extra
            except Exception as exc:
                _rt.count_error(exc)
            if exc_info is None:
                return start_response(status_line, headers)
            return start_response(status_line, headers, exc_info)

        try:
            body = self.app(environ, start_wrapper)
        except BaseException as exc:
            finish(tr, st, status[0] if status else None, exc)
            raise
        return _Body(body, ctx, tr, st, status)
