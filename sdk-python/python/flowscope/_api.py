"""The instrumentation API: traces, steps, timed operations and the events inside steps.

The current trace/step is a native ``Span`` handle kept in a ``contextvars.ContextVar``, so it
follows asyncio tasks and threads started with ``contextvars.copy_context().run``. Every call that
records something reads that variable and makes one call into the native client; without a
current trace (or with ``FLOWSCOPE_DISABLED=1``) it does nothing. No call here ever raises into
the application because of the instrumentation: errors are swallowed and counted
(``stats()["errors"]``).
"""

from __future__ import annotations

import functools
import inspect
import json
import traceback
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from time import perf_counter_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import _runtime as _rt

if TYPE_CHECKING:
    from ._native import Span

F = TypeVar("F", bound=Callable[..., Any])

_current: ContextVar[Span | None] = ContextVar("flowscope_current", default=None)


def current_span() -> Span | None:
    """The current trace or step handle (``None`` outside a trace)."""
    return _current.get()


def current_trace_id() -> str | None:
    """The current trace id (32 hex digits), if any."""
    span = _current.get()
    return None if span is None else span.trace_id


def _error_fields(exc: BaseException) -> tuple[str, str, str | None, str]:
    """(message, type, code, stack) of an exception."""
    code = getattr(exc, "code", None)
    try:
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        stack = ""
    return (
        str(exc),
        type(exc).__qualname__,
        None if code is None else str(code),
        stack,
    )


def _restore(token: Token[Span | None] | None, previous: Span | None) -> None:
    if token is None:
        return
    try:
        _current.reset(token)
    except (ValueError, RuntimeError):
        # Exited in another context than it was entered in (e.g. across tasks): put the
        # enclosing handle back in this one.
        _current.set(previous)


class _Noop:
    """What ``trace``/``step``/``op`` return when there is nothing to record."""

    __slots__ = ()
    trace_id = None
    span_id = None
    span = None
    correlation_id = None

    def __enter__(self) -> _Noop:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        return False

    async def __aenter__(self) -> _Noop:
        return self

    async def __aexit__(self, *exc: object) -> Literal[False]:
        return False

    def __call__(self, fn: F) -> F:
        return fn

    def record(self, *args: Any, **kwargs: Any) -> None:
        return None

    def time(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def set_error(self, *args: Any, **kwargs: Any) -> None:
        return None

    def correlate(self, *args: Any, **kwargs: Any) -> None:
        return None

    def headers(self) -> dict[str, str]:
        return {}


NOOP = _Noop()


def _decorate(fn: F, make: Callable[[], Any]) -> F:
    """Wraps ``fn`` (sync or ``async def``) so each call runs inside a fresh ``make()``."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with make():
                return await fn(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with make():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class _Scope:
    """Shared parts of traces and steps: async enter/exit, explicit errors, id accessors."""

    __slots__ = ("_span", "_token", "_previous", "_error")

    def __init__(self) -> None:
        self._span: Span | None = None
        self._token: Token[Span | None] | None = None
        self._previous: Span | None = None
        self._error: tuple[str, str | None, str | None, str | None] | None = None

    @property
    def span(self) -> Span | None:
        """The native handle (``None`` when inert); still readable after the scope ended."""
        return self._span

    @property
    def trace_id(self) -> str | None:
        return None if self._span is None else self._span.trace_id

    @property
    def correlation_id(self) -> str | None:
        return None if self._span is None else self._span.correlation_id

    def set_error(
        self,
        message: str,
        error_type: str | None = None,
        code: str | None = None,
        stack: str | None = None,
    ) -> None:
        """Marks this scope failed when it ends, without an exception."""
        self._error = (message, error_type, code, stack)

    def headers(self) -> dict[str, str]:
        """Propagation headers for an outgoing call made from here."""
        span = self._span
        if span is None:
            return {}
        try:
            return dict(span.headers())
        except Exception as exc:
            _rt.count_error(exc)
            return {}

    def _ending(
        self, exc: BaseException | None
    ) -> tuple[bool, str | None, str | None, str | None, str | None]:
        if exc is not None:
            return (True, *_error_fields(exc))
        if self._error is not None:
            return (True, *self._error)
        return (False, None, None, None, None)

    def __enter__(self) -> Any:
        raise NotImplementedError

    def __exit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        return self.__exit__(et, exc, tb)


class Trace(_Scope):
    """A run of a flow. Use as a context manager (``with``/``async with``) or a decorator."""

    __slots__ = (
        "flow",
        "entry",
        "step",
        "correlation_id_arg",
        "correlation_method",
        "parent",
        "attributes",
        "trace_id_arg",
        "traceparent",
        "tracestate",
    )

    def __init__(
        self,
        flow: str,
        *,
        entry: str = "api",
        step: str | None = None,
        correlation_id: str | None = None,
        correlation_method: str = "manual",
        parent: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        trace_id: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> None:
        super().__init__()
        self.flow = flow
        self.entry = entry
        self.step = step
        self.correlation_id_arg = correlation_id
        self.correlation_method = correlation_method
        self.parent = parent
        self.attributes = attributes
        self.trace_id_arg = trace_id
        self.traceparent = traceparent
        self.tracestate = tracestate

    def __enter__(self) -> Trace:
        if _rt.disabled:
            return self
        try:
            client = _rt.get_client()
            outer = _current.get()
            parent, cid, method = self.parent, self.correlation_id_arg, self.correlation_method
            if outer is not None:
                # Started from inside another trace: that trace is the parent, and its group
                # is inherited (event-based correlation).
                if parent is None:
                    parent = outer.trace_id
                if cid is None:
                    cid = outer.correlation_id
                    method = "event"
            attrs = dict(self.attributes) if self.attributes else None
            span = client.trace_start(
                self.flow,
                self.entry,
                self.step,
                cid,
                method,
                parent,
                attrs,
                self.trace_id_arg,
                self.traceparent,
                self.tracestate,
            )
        except Exception as exc:
            _rt.count_error(exc)
            return self
        self._span = span
        self._previous = _current.get()
        self._token = _current.set(span)
        return self

    def __exit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        span, token = self._span, self._token
        if span is None or token is None:
            return False
        self._token = None
        _restore(token, self._previous)
        try:
            client = _rt.client
            if client is not None:
                client.trace_end(span, *self._ending(exc))
        except Exception as err:
            _rt.count_error(err)
        return False

    def correlate(self, correlation_id: str, *, name: str | None = None) -> None:
        """Joins this trace to the group ``correlation_id``."""
        span = self._span
        if span is not None:
            _correlate(span, correlation_id, "manual", name)

    def __call__(self, fn: F) -> F:
        args = dict(
            entry=self.entry,
            step=self.step,
            correlation_id=self.correlation_id_arg,
            correlation_method=self.correlation_method,
            parent=self.parent,
            attributes=self.attributes,
            traceparent=self.traceparent,
            tracestate=self.tracestate,
        )
        flow = self.flow
        return _decorate(fn, lambda: Trace(flow, **args))  # type: ignore[arg-type]


class Step(_Scope):
    """A step of the current trace. Context manager (sync and async) and decorator."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        # The scope's fields set here rather than through super().__init__(): a step is the
        # hot path.
        self._span = None
        self._token = None
        self._previous = None
        self._error = None
        self.name = name

    @property
    def span_id(self) -> str | None:
        return None if self._span is None else self._span.span_id

    def __enter__(self) -> Step:
        parent = _current.get()
        if parent is None:
            return self
        try:
            span = _rt.client.step_start(parent, self.name)  # type: ignore[union-attr]
        except Exception as exc:
            _rt.count_error(exc)
            return self
        self._span = span
        self._previous = parent
        self._token = _current.set(span)
        return self

    def __exit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        span, token = self._span, self._token
        if span is None or token is None:
            return False
        self._token = None
        _restore(token, self._previous)
        try:
            if exc is None and self._error is None:
                _rt.client.step_end(span)  # type: ignore[union-attr]
            else:
                _rt.client.step_end(span, *self._ending(exc))  # type: ignore[union-attr]
        except Exception as err:
            _rt.count_error(err)
        return False

    def __call__(self, fn: F) -> F:
        name = self.name
        return _decorate(fn, lambda: Step(name))


def trace(
    flow: str,
    *,
    entry: str = "api",
    step: str | None = None,
    correlation_id: str | None = None,
    correlation_method: str = "manual",
    parent: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    trace_id: str | None = None,
    headers: Any = None,
) -> Trace | _Noop:
    """A run of ``flow``: ``with flowscope.trace("checkout", entry="api", step="validate"):``.

    ``entry`` is ``api``, ``cron`` or ``event``; ``step`` names the entry step. ``headers`` (a
    mapping or a list of pairs from an incoming request) applies ``X-Motia-Correlation-Id``
    (correlation method ``header``) and W3C Trace Context: a valid ``traceparent`` is continued
    (this trace is the caller's trace id, its work hangs under the caller's span, sampled and
    random flags are kept) and its ``tracestate`` is passed on to outgoing calls. Inside another
    trace, that trace becomes the parent and its correlation id is inherited.
    """
    if _rt.disabled:
        return NOOP
    traceparent = tracestate = None
    if headers is not None:
        from .propagation import extract

        incoming = extract(headers)
        if correlation_id is None and incoming.correlation_id is not None:
            correlation_id = incoming.correlation_id
            correlation_method = "header"
        traceparent = incoming.traceparent
        tracestate = incoming.tracestate
    return Trace(
        flow,
        entry=entry,
        step=step,
        correlation_id=correlation_id,
        correlation_method=correlation_method,
        parent=parent,
        attributes=attributes,
        trace_id=trace_id,
        traceparent=traceparent,
        tracestate=tracestate,
    )


def step(name: str | Callable[..., Any]) -> Any:
    """A step: ``with flowscope.step("validate"):``, ``@flowscope.step("validate")`` or bare
    ``@flowscope.step`` (named after the function). Outside a trace it does nothing. An exception
    marks it failed (type, message, stack) and propagates."""
    if callable(name):
        fn = name
        if _rt.disabled:
            return fn
        step_name = getattr(fn, "__name__", "step")
        return _decorate(fn, lambda: Step(step_name))
    if _rt.disabled:
        return NOOP
    return Step(name)


# ---------------------------------------------------------------------------------------------
# Operations


class Op:
    """A state/emit/stream operation. ``with`` times it (an exception marks it failed and
    propagates); ``record()`` sends it at once; ``time(fn, ...)`` times a call."""

    __slots__ = ("kind", "action", "subject", "detail", "_span", "_t0")

    def __init__(
        self, kind: str, action: str, subject: str | None = None, detail: str | None = None
    ) -> None:
        self.kind = kind
        self.action = action
        self.subject = subject
        self.detail = detail
        self._span: Span | None = None
        self._t0 = 0

    def __enter__(self) -> Op:
        self._span = _current.get()
        self._t0 = perf_counter_ns()
        return self

    def __exit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        span = self._span
        if span is not None:
            dur = perf_counter_ns() - self._t0
            self._span = None
            try:
                _rt.client.op(  # type: ignore[union-attr]
                    span,
                    self.kind,
                    self.action,
                    self.subject,
                    self.detail,
                    dur,
                    None if exc is None else str(exc),
                    None if exc is None else type(exc).__qualname__,
                )
            except Exception as err:
                _rt.count_error(err)
        return False

    async def __aenter__(self) -> Op:
        return self.__enter__()

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        return self.__exit__(et, exc, tb)

    def record(self, duration: float | None = None, error: str | None = None) -> None:
        """Sends the operation now; ``duration`` in seconds (default 0), ``error`` marks it
        failed."""
        span = _current.get()
        if span is None:
            return
        try:
            dur = 0 if duration is None else int(duration * 1e9)
            _rt.client.op(  # type: ignore[union-attr]
                span, self.kind, self.action, self.subject, self.detail, dur, error
            )
        except Exception as err:
            _rt.count_error(err)

    def time(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Calls ``fn(*args, **kwargs)`` inside this operation and returns its result."""
        with self:
            return fn(*args, **kwargs)


def op(
    kind: str,
    action: str,
    key: str | None = None,
    *,
    topic: str | None = None,
    to: str | None = None,
    stream: str | None = None,
    id: str | None = None,
) -> Op:
    """An operation of ``kind`` (``state``/``emit``/``stream``) and ``action``
    (``get``/``set``/``delete``/``clear``/``send``, anything else is kept as ``other``)."""
    if kind == "emit":
        return Op(kind, action, topic if topic is not None else key, to)
    if kind == "stream":
        return Op(kind, action, stream if stream is not None else key, id)
    return Op(kind, action, key, None)


class _Recorded:
    """What an operation recorded on call returns: code written for the older API
    (``.record()``, ``with``) keeps working and records nothing twice."""

    __slots__ = ()

    def record(self, duration: float | None = None, error: str | None = None) -> None:
        return None

    def time(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def __enter__(self) -> _Recorded:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        return False


_RECORDED = _Recorded()


def _record_now(kind: str, action: str, subject: str | None, detail: str | None) -> _Recorded:
    """The on-call form's fast path: sends an untimed operation at once, with no ``Op`` object
    (what ``Op(kind, action, subject, detail).record()`` sends)."""
    span = _current.get()
    if span is not None:
        try:
            _rt.client.op(span, kind, action, subject, detail)  # type: ignore[union-attr]
        except Exception as err:
            _rt.count_error(err)
    return _RECORDED


def _timed(
    kind: str,
    action: str,
    subject: str | None,
    detail: str | None,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Times ``fn(*args, **kwargs)`` as the operation (a coroutine function's awaitable is timed
    until it completes) and returns its result. (Without ``fn`` the shorthands call
    :func:`_record_now`, which needs no ``Op`` object.)"""
    op_ = Op(kind, action, subject, detail)
    if inspect.iscoroutinefunction(fn):

        async def timed() -> Any:
            async with op_:
                return await fn(*args, **kwargs)

        return timed()
    return op_.time(fn, *args, **kwargs)


def state_get(key: str, fn: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any) -> Any:
    """Records a state read of ``key`` now — or, with ``fn``, times ``fn(*args, **kwargs)`` as the
    read and returns its result. ``with flowscope.op("state", "get", key):`` times a block."""
    if fn is None:
        return _record_now("state", "get", key, None)
    return _timed("state", "get", key, None, fn, args, kwargs)


def state_set(key: str, fn: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any) -> Any:
    """Records a state write of ``key`` now, or times ``fn`` as the write (see :func:`state_get`)."""
    if fn is None:
        return _record_now("state", "set", key, None)
    return _timed("state", "set", key, None, fn, args, kwargs)


def state_delete(key: str, fn: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any) -> Any:
    """Records a state delete of ``key`` now, or times ``fn`` as the delete."""
    if fn is None:
        return _record_now("state", "delete", key, None)
    return _timed("state", "delete", key, None, fn, args, kwargs)


def state_clear(fn: Callable[..., Any] | str | None = None, /, *args: Any, **kwargs: Any) -> Any:
    """Records a state clear now, or times ``fn`` as the clear. (A string is the older form's
    scope key.)"""
    if isinstance(fn, str):
        return _record_now("state", "clear", fn, None)
    if fn is None:
        return _record_now("state", "clear", None, None)
    return _timed("state", "clear", None, None, fn, args, kwargs)


def emit(
    topic: str, fn: Callable[..., Any] | None = None, /, *args: Any, to: str | None = None, **kwargs: Any
) -> Any:
    """Records an emit to ``topic`` now (``to``: the step it triggers), or times ``fn`` as the emit."""
    if fn is None:
        return _record_now("emit", "send", topic, to)
    return _timed("emit", "send", topic, to, fn, args, kwargs)


def stream_get(
    stream: str, id: str | None = None, fn: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any
) -> Any:
    """Records a read of item ``id`` of ``stream`` now, or times ``fn`` as the read."""
    if fn is None:
        return _record_now("stream", "get", stream, id)
    return _timed("stream", "get", stream, id, fn, args, kwargs)


def stream_set(
    stream: str, id: str | None = None, fn: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any
) -> Any:
    """Records a write of item ``id`` of ``stream`` now, or times ``fn`` as the write."""
    if fn is None:
        return _record_now("stream", "set", stream, id)
    return _timed("stream", "set", stream, id, fn, args, kwargs)


def stream_delete(
    stream: str, id: str | None = None, fn: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any
) -> Any:
    """Records a delete of item ``id`` of ``stream`` now, or times ``fn`` as the delete."""
    if fn is None:
        return _record_now("stream", "delete", stream, id)
    return _timed("stream", "delete", stream, id, fn, args, kwargs)


def stream_send(
    stream: str, id: str | None = None, fn: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any
) -> Any:
    """Records a send to ``stream`` now, or times ``fn`` as the send."""
    if fn is None:
        return _record_now("stream", "send", stream, id)
    return _timed("stream", "send", stream, id, fn, args, kwargs)


# ---------------------------------------------------------------------------------------------
# Events inside a step (or directly in the trace)


LEVELS = frozenset({"trace", "debug", "info", "warn", "warning", "error", "critical", "fatal"})


def _log(level: str, message: str, fields: dict[str, Any]) -> None:
    span = _current.get()
    if span is None:
        return
    try:
        _rt.client.log(span, level, message, fields or None)  # type: ignore[union-attr]
    except Exception as exc:
        _rt.count_error(exc)


class _Log:
    """``log(level, message, **fields)`` — the order of the Node and Rust SDKs — and
    ``log.info(message, **fields)`` (also ``trace``/``debug``/``warn``/``error``). ``level`` is
    trace/debug/info/warn/warning/error/critical/fatal (any case; critical and fatal are errors,
    anything else is info). ``log("text")`` logs at info; the older ``log(message, level)`` order
    is still understood."""

    def __call__(self, level: str, message: str | None = None, /, **fields: Any) -> None:
        if message is None:
            level, message = str(fields.pop("level", "info")), level
        elif str(message).lower() in LEVELS and str(level).lower() not in LEVELS:
            level, message = message, level
        _log(str(level), str(message), fields)

    def trace(self, message: str, /, **fields: Any) -> None:
        _log("trace", message, fields)

    def debug(self, message: str, /, **fields: Any) -> None:
        _log("debug", message, fields)

    def info(self, message: str, /, **fields: Any) -> None:
        _log("info", message, fields)

    def warn(self, message: str, /, **fields: Any) -> None:
        _log("warn", message, fields)

    def error(self, message: str, /, **fields: Any) -> None:
        _log("error", message, fields)


log = _Log()


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except Exception:
        return str(value)


def llm(
    model: str,
    *,
    provider: str | None = None,
    prompt: Any = None,
    response: Any = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cost: float | None = None,
    duration: float | None = None,
) -> None:
    """An LLM call that just ended. ``prompt``/``response``: text, or messages (JSON-encoded);
    ``cost`` in USD; ``duration`` in seconds."""
    span = _current.get()
    if span is None:
        return
    try:
        _rt.client.llm(  # type: ignore[union-attr]
            span,
            model,
            provider,
            _text(prompt),
            _text(response),
            input_tokens,
            output_tokens,
            cost,
            0 if duration is None else int(duration * 1e9),
        )
    except Exception as exc:
        _rt.count_error(exc)


def artifact(
    name: str,
    *,
    url: str | None = None,
    preview: str | None = None,
    mime: str | None = None,
    size: int | None = None,
) -> None:
    """Something the step produced (a file, a report…)."""
    span = _current.get()
    if span is None:
        return
    try:
        _rt.client.artifact(span, name, url, preview, mime, size)  # type: ignore[union-attr]
    except Exception as exc:
        _rt.count_error(exc)


def retry(attempt: int, *, reason: str | None = None, backoff_ms: int | None = None) -> None:
    """A retry (``attempt`` 1 = first retry)."""
    span = _current.get()
    if span is None:
        return
    try:
        _rt.client.retry(span, attempt, reason, backoff_ms)  # type: ignore[union-attr]
    except Exception as exc:
        _rt.count_error(exc)


def checkpoint(id: str) -> None:
    """A checkpoint was written."""
    span = _current.get()
    if span is None:
        return
    try:
        _rt.client.checkpoint(span, id)  # type: ignore[union-attr]
    except Exception as exc:
        _rt.count_error(exc)


def transition(from_state: str, to_state: str, action: str | None = None) -> None:
    """A state machine moved from ``from_state`` to ``to_state``."""
    span = _current.get()
    if span is None:
        return
    try:
        _rt.client.transition(span, from_state, to_state, action)  # type: ignore[union-attr]
    except Exception as exc:
        _rt.count_error(exc)


def custom(name: str, payload: Any = None) -> None:
    """An application-defined event; ``payload`` is converted to JSON."""
    span = _current.get()
    if span is None:
        return
    try:
        _rt.client.custom(span, name, payload)  # type: ignore[union-attr]
    except Exception as exc:
        _rt.count_error(exc)


def _correlate(span: Span, correlation_id: str, method: str, name: str | None) -> None:
    try:
        _rt.client.correlate(span, correlation_id, method, name)  # type: ignore[union-attr]
    except Exception as exc:
        _rt.count_error(exc)


def correlate(correlation_id: str, *, name: str | None = None, method: str = "manual") -> None:
    """Joins the current trace to the group ``correlation_id`` (``name``: display name).
    Outgoing calls made afterwards carry it in ``X-Motia-Correlation-Id``."""
    span = _current.get()
    if span is not None:
        _correlate(span, correlation_id, method, name)


# ---------------------------------------------------------------------------------------------
# Client


def init(
    service: str = "",
    *,
    socket: str | None = None,
    disabled: bool | None = None,
    queue_capacity: int | None = None,
    redact: list[str] | None = None,
    hide_llm_content: bool = False,
    queue_bytes: int | None = None,
    overflow: str | None = None,
) -> None:
    """Configures the client. Optional: without it the first trace starts a client from the
    environment (``FLOWSCOPE_SOCKET``, ``FLOWSCOPE_DISABLED``, ``OTEL_SERVICE_NAME``).

    ``redact`` lists what must never leave the process: key names (comma-separated) whose values
    in log fields, attributes and payloads become ``[redacted]``, and ``re:<regex>`` patterns
    replaced in any text; ``hide_llm_content`` replaces every prompt and response. An invalid
    pattern raises ``ValueError``; nothing else here raises.

    The queue holds ``queue_bytes`` (estimated; default 256 MiB, ``FLOWSCOPE_QUEUE_BYTES``). When it
    is full, ``overflow="drop"`` (default) drops the event and the agent marks its trace
    incomplete; ``"block"`` waits up to 5 s for room (``"block:<ms>"`` sets the wait) — for batch
    jobs. ``FLOWSCOPE_OVERFLOW`` sets the default. An unknown ``overflow`` raises ``ValueError``."""
    try:
        _rt.init(
            service,
            socket=socket,
            disabled=disabled,
            queue_capacity=queue_capacity,
            redact=redact,
            hide_llm_content=hide_llm_content,
            queue_bytes=queue_bytes,
            overflow=overflow,
        )
    except ValueError:
        raise
    except Exception as exc:
        _rt.count_error(exc)


def flush(timeout: float = 5.0) -> bool:
    """Waits up to ``timeout`` seconds until every event so far is written to the agent (or
    dropped). ``True`` when done in time (always, without a client)."""
    client = _rt.client
    if client is None:
        return True
    try:
        return client.flush(timeout)
    except Exception as exc:
        _rt.count_error(exc)
        return False


_ZERO_STATS = {
    "enqueued": 0,
    "sent": 0,
    "dropped": 0,
    "reconnects": 0,
    "queued": 0,
    "queued_bytes": 0,
    "connected": False,
    "last_error": None,
}


def stats() -> dict[str, Any]:
    """Counters: ``enqueued``, ``sent``, ``dropped``, ``reconnects``, ``queued``, ``queued_bytes``, ``connected``,
    ``last_error`` (why the SDK will not connect, e.g. a socket owned by another user, or None)
    and ``errors`` (instrumentation errors swallowed)."""
    client = _rt.client
    out: dict[str, Any] = dict(_ZERO_STATS)
    if client is not None:
        try:
            out.update(client.stats())
        except Exception as exc:
            _rt.count_error(exc)
    out["errors"] = _rt.errors
    return out
