"""flowscope for Motia step handlers.

    from flowscope.motia import instrument

    config = {"type": "event", "name": "save-user", "subscribes": ["user.validated"],
              "flows": ["user-registration"]}

    @instrument(config)            # or: handler = instrument(config, handler)
    async def handler(input, ctx):
        await ctx.state.set("user", "saved", True)
        await ctx.emit({"topic": "user.saved", "data": input})

Every invocation of an instrumented handler reports into ONE flowscope trace per Motia flow run:
the trace id is derived from ``ctx.trace_id`` / ``ctx.traceId`` (:func:`trace_id_for`, the same
mapping as the Node adapter), so the API step and the event steps it triggers — separate
invocations, possibly in separate processes and languages — form one trace. Each invocation sends
its own ``trace_start`` for that id (the agent merges the segments; the first, the API or cron
step, is the trace's entry) and runs the handler as a step named ``config["name"]``. The
context's state, emit, stream and logger calls are recorded (timed, ok/failed) and delegated
unchanged, sync or async. Nothing here raises because of flowscope: disabled, the handler runs
with the same context and nothing is recorded.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar, overload

from . import _api
from . import _runtime as _rt

__all__ = ["entry_for", "instrument", "instrument_motia", "trace_id_for"]

H = TypeVar("H", bound=Callable[..., Any])

#: Set while a recorded call runs, so a wrapped function calling another one records once.
_recording: ContextVar[bool] = ContextVar("flowscope_motia_recording", default=False)
_WRAPPED = "__flowscope_motia_wrapped__"

#: Motia 0.x ``config["type"]`` and 1.x trigger types → flowscope entry types.
_ENTRY_OF = {
    "api": "api",
    "http": "api",
    "event": "event",
    "queue": "event",
    "state": "event",
    "stream": "event",
    "cron": "cron",
}

_LOG_LEVELS = ("info", "warn", "warning", "error", "debug")


def trace_id_for(motia_trace_id: str) -> str:
    """The flowscope trace id of a Motia trace id: the first 16 bytes of
    SHA-256("motia:" + id) as 32 lowercase hex digits (never all zeros). The same in every
    process and in the Node adapter (``traceIdFor``)."""
    digest = hashlib.sha256(f"motia:{motia_trace_id}".encode()).hexdigest()[:32]
    return digest[:31] + "1" if digest.strip("0") == "" else digest


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for a mapping, else ``getattr(obj, name)``."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    try:
        return getattr(obj, name, default)
    except Exception:
        return default


def entry_for(config: Any, ctx: Any = None) -> str:
    """The entry type (``api``, ``event`` or ``cron``) of a step: Motia 0.x ``config["type"]``,
    or for Motia 1.x the trigger that fired (``ctx.trigger.type``, when the context says) else
    the first of ``config["triggers"]`` (http → api; queue, state, stream → event; cron → cron).
    Default ``event``."""
    fired = _get(_get(ctx, "trigger"), "type")
    if isinstance(fired, str) and fired in _ENTRY_OF:
        return _ENTRY_OF[fired]
    kind = _get(config, "type")
    if isinstance(kind, str) and kind in _ENTRY_OF:
        return _ENTRY_OF[kind]
    triggers = _get(config, "triggers")
    if isinstance(triggers, (list, tuple)):
        for trigger in triggers:
            t = trigger if isinstance(trigger, str) else _get(trigger, "type")
            if isinstance(t, str) and t in _ENTRY_OF:
                return _ENTRY_OF[t]
    return "event"


def _state_key(scope: Any, key: Any = None) -> str:
    return str(scope) if key is None else f"{scope}.{key}"


def _topic_of(event: Any) -> str | None:
    if isinstance(event, str):
        return event
    topic = _get(event, "topic")
    return None if topic is None else str(topic)


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# Recording calls (sync, coroutines, futures)

Describe = Callable[..., "_api.Op | None"]


def _finish(op: _api.Op, exc: BaseException | None) -> None:
    if exc is None:
        op.__exit__(None, None, None)
    else:
        op.__exit__(type(exc), exc, exc.__traceback__)


async def _await_timed(op: _api.Op, awaitable: Awaitable[Any]) -> Any:
    token = _recording.set(True)
    try:
        result = await awaitable
    except BaseException as exc:
        _finish(op, exc)
        raise
    finally:
        _recording.reset(token)
    _finish(op, None)
    return result


def _timed(op: _api.Op | None, call: Callable[[], Any]) -> Any:
    """Calls ``call()`` as ``op``: timed until it returns, or until the coroutine/awaitable it
    returns completes (a future keeps its identity: it is timed with a done callback). An
    exception marks the op failed and propagates unchanged."""
    if op is None or _rt.disabled or _recording.get() or _api.current_span() is None:
        return call()
    op.__enter__()
    token = _recording.set(True)
    try:
        result = call()
    except BaseException as exc:
        _finish(op, exc)
        raise
    finally:
        _recording.reset(token)
    if isinstance(result, asyncio.Future):

        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled():
                _finish(op, asyncio.CancelledError())
            else:
                _finish(op, fut.exception())

        result.add_done_callback(done)
        return result
    if inspect.isawaitable(result):
        return _await_timed(op, result)
    _finish(op, None)
    return result


def _recorded(fn: Callable[..., Any], describe: Describe) -> Callable[..., Any]:
    """``fn`` recording ``describe(*args)`` around each call."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            op = describe(*args, **kwargs)
        except Exception:
            op = None
        return _timed(op, lambda: fn(*args, **kwargs))

    setattr(wrapper, _WRAPPED, fn)
    return wrapper


def _level(level: str) -> str:
    return "warn" if level == "warning" else level


def _log(level: str, message: Any, fields: Any) -> None:
    if _recording.get():
        return
    span = _api.current_span()
    client = _rt.client
    if span is None or client is None:
        return
    if fields is None:
        data: dict[str, Any] | None = None
    elif isinstance(fields, Mapping):
        data = {str(k): v for k, v in fields.items()}
    else:
        data = {"value": fields}
    try:
        client.log(span, _level(level), message if isinstance(message, str) else str(message), data)
    except Exception as exc:
        _rt.count_error(exc)


def _logged(fn: Callable[..., Any], level: str) -> Callable[..., Any]:
    """A logger method that also writes a flowscope log line of ``level``."""

    @functools.wraps(fn)
    def wrapper(message: Any = None, *args: Any, **kwargs: Any) -> Any:
        if _rt.disabled:
            return fn(message, *args, **kwargs)
        fields = args[0] if args else kwargs.get("args", kwargs.get("data"))
        if fields is None and kwargs and not args:
            fields = kwargs
        _log(level, message, fields)
        token = _recording.set(True)
        try:
            return fn(message, *args, **kwargs)
        finally:
            _recording.reset(token)

    setattr(wrapper, _WRAPPED, fn)
    return wrapper


def _state_op(action: str, with_key: bool) -> Describe:
    def describe(scope: Any = None, key: Any = None, *rest: Any, **kw: Any) -> _api.Op:
        return _api.Op("state", action, _state_key(scope, key if with_key else None))

    return describe


_STATE_METHODS: dict[str, Describe] = {
    "get": _state_op("get", True),
    "set": _state_op("set", True),
    "delete": _state_op("delete", True),
    "clear": _state_op("clear", False),
    "getGroup": _state_op("get", False),
    "get_group": _state_op("get", False),
    "list": _state_op("get", False),
}


def _stream_methods(name: str) -> dict[str, Describe]:
    def item(action: str) -> Describe:
        def describe(group_id: Any = None, id: Any = None, *rest: Any, **kw: Any) -> _api.Op:
            return _api.Op("stream", action, name, _opt(id))

        return describe

    def send(channel: Any = None, id: Any = None, *rest: Any, **kw: Any) -> _api.Op:
        # send(group_id, id, event) or Motia's send(channel={"groupId", "id"}, event)
        if isinstance(channel, Mapping) or (channel is not None and not isinstance(channel, str)):
            item_id = _get(channel, "id")
        else:
            item_id = id
        return _api.Op("stream", "send", name, _opt(item_id))

    def group(*args: Any, **kw: Any) -> _api.Op:
        return _api.Op("stream", "get", name, None)

    return {
        "get": item("get"),
        "set": item("set"),
        "delete": item("delete"),
        "send": send,
        "getGroup": group,
        "get_group": group,
    }


def _describe_emit(event: Any = None, *args: Any, **kwargs: Any) -> _api.Op:
    return _api.Op("emit", "send", _topic_of(event if event is not None else kwargs), None)


# ---------------------------------------------------------------------------------------------
# Views of the context's objects: attribute (and item) reads go through, listed methods record.


class _ReadThrough:
    """Attribute and item reads go through to ``_target`` and come back through ``_wrap``."""

    __slots__ = ("_target", "_cache")
    _target: Any
    _cache: dict[str, tuple[Any, Any]]

    def _wrap(self, name: str, value: Any) -> Any:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        target = self._target
        if isinstance(target, Mapping) and name in target:
            return self._wrap(name, target[name])
        return self._wrap(name, getattr(target, name))

    def __getitem__(self, key: Any) -> Any:
        value = self._target[key]
        return self._wrap(key, value) if isinstance(key, str) else value

    def __contains__(self, key: Any) -> bool:
        return key in self._target

    def __iter__(self) -> Any:
        return iter(self._target)

    def __len__(self) -> int:
        return len(self._target)


class _View(_ReadThrough):
    """Reads through to ``target``; methods in ``methods`` come back wrapped by ``make``."""

    __slots__ = ("_methods", "_make")

    def __init__(
        self,
        target: Any,
        methods: Mapping[str, Any],
        make: Callable[[Callable[..., Any], Any], Callable[..., Any]],
    ) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_methods", methods)
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_cache", {})

    def _wrap(self, name: str, value: Any) -> Any:
        spec = self._methods.get(name)
        if spec is None or not callable(value) or getattr(value, _WRAPPED, None) is not None:
            return value
        hit = self._cache.get(name)
        if hit is not None and hit[0] is value:
            return hit[1]
        wrapped = self._make(value, spec)
        self._cache[name] = (value, wrapped)
        return wrapped

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __repr__(self) -> str:
        return f"<flowscope view of {self._target!r}>"


def _state_view(state: Any) -> _View:
    return _View(state, _STATE_METHODS, _recorded)


def _logger_view(logger: Any) -> _View:
    return _View(logger, {lv: lv for lv in _LOG_LEVELS}, _logged)


class _Streams(_ReadThrough):
    """``ctx.streams``: each named stream (attribute or item) becomes a recording view."""

    __slots__ = ()

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_cache", {})

    def _wrap(self, name: str, value: Any) -> Any:
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        hit = self._cache.get(name)
        if hit is not None and hit[0] is value:
            return hit[1]
        view = _View(value, _stream_methods(name), _recorded)
        self._cache[name] = (value, view)
        return view


def _correlator(original: Callable[..., Any] | None) -> Callable[..., Any]:
    def correlate(correlation_id: str, *args: Any, **kwargs: Any) -> Any:
        """Joins the current flowscope trace to the group ``correlation_id``."""
        try:
            _api.correlate(str(correlation_id))
        except Exception as exc:
            _rt.count_error(exc)
        if original is not None:
            return original(correlation_id, *args, **kwargs)
        return None

    return correlate


_CONTEXT_MEMBERS = ("state", "emit", "enqueue", "streams", "logger", "correlate")


class MotiaContext:
    """The handler's view of a Motia context: every attribute (and item, for a mapping context)
    reads through to it, except ``state``, ``emit``/``enqueue``, ``streams`` and ``logger``, which
    record their calls, and ``correlate(id)``, added (or wrapped when the context has one).
    Attribute writes go to the context."""

    __slots__ = ("_target", "_cache")

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_cache", {})

    @property
    def wrapped(self) -> Any:
        """The original context."""
        return self._target

    def _member(self, name: str, value: Any) -> Any:
        hit = self._cache.get(name)
        if hit is not None and hit[0] is value:
            return hit[1]
        wrapped: Any = value
        if name == "correlate":
            wrapped = _correlator(value if callable(value) else None)
        elif value is not None:
            if name == "state":
                wrapped = _state_view(value)
            elif name in ("emit", "enqueue") and callable(value):
                if getattr(value, _WRAPPED, None) is None:
                    wrapped = _recorded(value, _describe_emit)
            elif name == "streams":
                wrapped = _Streams(value)
            elif name == "logger":
                wrapped = _logger_view(value)
        self._cache[name] = (value, wrapped)
        return wrapped

    def _raw(self, name: str) -> Any:
        target = self._target
        if isinstance(target, Mapping) and name in target:
            return target[name]
        return getattr(target, name)

    def __getattr__(self, name: str) -> Any:
        if name in _CONTEXT_MEMBERS:
            try:
                value = self._raw(name)
            except AttributeError:
                if name != "correlate":
                    raise
                value = None
            return self._member(name, value)
        return self._raw(name)

    def __getitem__(self, key: Any) -> Any:
        value = self._target[key]
        return self._member(key, value) if key in _CONTEXT_MEMBERS else value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __contains__(self, key: Any) -> bool:
        return key in self._target

    def __repr__(self) -> str:
        return f"<flowscope view of {self._target!r}>"


# ---------------------------------------------------------------------------------------------
# instrument / instrument_motia


def _motia_trace_id(ctx: Any) -> str | None:
    for name in ("trace_id", "traceId"):
        value = _get(ctx, name)
        if value is not None and value != "":
            return str(value)
    return None


class _Run:
    """One invocation: the trace (segment) and the step around the handler."""

    __slots__ = ("trace", "step", "nested", "token")

    def __init__(self, flow: str, step: str, entry: str, ctx: Any) -> None:
        motia_id = _motia_trace_id(ctx)
        outer = _api.current_span()
        trace_id = None
        attributes = None
        cid = None
        method = "manual"
        # Dispatched from inside another step of the same run (an in-process emit): a segment of
        # the same trace, not a child of itself (its group is kept).
        self.nested = False
        if motia_id is not None:
            trace_id = trace_id_for(motia_id)
            attributes = {"motia.traceId": motia_id}
            if outer is not None and outer.trace_id == trace_id:
                self.nested = True
                cid, method = outer.correlation_id, "event"
        self.token: Any = None
        self.trace = _api.trace(
            flow,
            entry=entry,
            step=step,
            trace_id=trace_id,
            attributes=attributes,
            correlation_id=cid,
            correlation_method=method,
        )
        self.step = _api.step(step)

    def __enter__(self) -> None:
        if self.nested:
            self.token = _api._current.set(None)
        self.trace.__enter__()
        self.step.__enter__()

    def __exit__(self, et: Any, exc: Any, tb: Any) -> None:
        try:
            self.step.__exit__(et, exc, tb)
        finally:
            self.trace.__exit__(et, exc, tb)
            if self.token is not None:
                try:
                    _api._current.reset(self.token)
                except (ValueError, RuntimeError):
                    pass
                self.token = None


def _is_context(value: Any) -> bool:
    return value is not None and not isinstance(value, (str, bytes, int, float, bool))


@overload
def instrument(config: Any) -> Callable[[H], H]: ...
@overload
def instrument(config: Any, handler: H) -> H: ...
def instrument(config: Any, handler: Callable[..., Any] | None = None) -> Any:
    """Wraps a Motia step handler ``handler(input, ctx)`` (a cron handler may take only
    ``ctx``; ``async def`` or plain ``def``): each call runs as step ``config["name"]`` of the
    flowscope trace ``trace_id_for(ctx.trace_id)`` (a fresh trace without one), flow
    ``config["flows"][0]`` (else the step name), entry from :func:`entry_for`; ``ctx`` is replaced
    by a recording :class:`MotiaContext`. The return value and exceptions are the handler's (an
    exception fails the step and trace). Usable as ``@instrument(config)``."""
    if handler is None:
        return lambda fn: instrument(config, fn)
    if not callable(handler):
        raise TypeError("flowscope.motia.instrument(config, handler): handler must be callable")
    name = _get(config, "name")
    step_name = str(name) if name is not None else getattr(handler, "__name__", "step")
    flows = _get(config, "flows")
    flow = (
        str(flows[0])
        if isinstance(flows, (list, tuple)) and flows and flows[0] is not None
        else step_name
    )
    cron = entry_for(config) == "cron"
    fn = handler

    def prepare(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
        at = 1 if len(args) >= 2 else 0 if len(args) == 1 and cron and _is_context(args[0]) else -1
        if at == -1 or not _is_context(args[at]):
            return args, None
        ctx = args[at]
        view = ctx if isinstance(ctx, MotiaContext) else MotiaContext(ctx)
        return args[:at] + (view,) + args[at + 1 :], ctx

    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    ):

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            args, ctx = prepare(args)
            token = _recording.set(False)
            try:
                if _rt.disabled:
                    return await fn(*args, **kwargs)
                with _Run(flow, step_name, entry_for(config, ctx), ctx):
                    return await fn(*args, **kwargs)
            finally:
                _recording.reset(token)

        wrapper: Callable[..., Any] = async_wrapper
    else:

        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            args, ctx = prepare(args)
            token = _recording.set(False)
            try:
                if _rt.disabled:
                    return fn(*args, **kwargs)
                with _Run(flow, step_name, entry_for(config, ctx), ctx):
                    return fn(*args, **kwargs)
            finally:
                _recording.reset(token)

        wrapper = sync_wrapper
    try:
        functools.update_wrapper(wrapper, handler)
    except Exception:
        pass
    setattr(wrapper, _WRAPPED, handler)
    return wrapper


def _replace(obj: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Replaces ``obj.name`` (or ``obj[name]``) with ``make(fn)`` unless already wrapped."""
    mapping = isinstance(obj, dict)
    try:
        fn = obj.get(name) if mapping else getattr(obj, name, None)
    except Exception:
        return False
    if not callable(fn):
        return False
    if getattr(fn, _WRAPPED, None) is not None:
        return True
    wrapped = make(fn)
    try:
        if mapping:
            obj[name] = wrapped
        else:
            setattr(obj, name, wrapped)
    except Exception:
        return False
    return True


def _as_recorded(describe: Describe, fn: Callable[..., Any]) -> Callable[..., Any]:
    return _recorded(fn, describe)


def _as_logged(level: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    return _logged(fn, level)


def instrument_motia(motia: Any) -> Any:
    """Motia 1.x: wraps the module's ``stateManager`` / ``state_manager`` methods (get, set,
    delete, clear, getGroup/get_group, list), ``enqueue({"topic", "data"})`` and ``logger``
    (info, warn, warning, error, debug) in place, idempotently, so calls made inside an
    instrumented handler are recorded like the context's; outside a trace they just delegate.
    Returns the module."""
    if motia is None:
        return motia
    for attr in ("stateManager", "state_manager"):
        manager = _get(motia, attr)
        if manager is not None:
            for method, describe in _STATE_METHODS.items():
                _replace(manager, method, functools.partial(_as_recorded, describe))
    _replace(motia, "enqueue", lambda fn: _recorded(fn, _describe_emit))
    logger = _get(motia, "logger")
    if logger is not None:
        for level in _LOG_LEVELS:
            _replace(logger, level, functools.partial(_as_logged, level))
    return motia
