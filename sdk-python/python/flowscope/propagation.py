"""Header propagation: ``X-Motia-Correlation-Id`` and W3C Trace Context (``traceparent``,
``tracestate``).

Parsing follows the W3C rules through the Rust client (``flowscope::propagation``): an invalid
``traceparent`` (wrong version ``ff``, bad length or separators, upper-case or non-hex digits,
all-zero ids) is ignored, and so is ``tracestate`` without a valid ``traceparent``. Repeated
headers are joined with ``,`` as HTTP does, so two ``traceparent`` values are invalid together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from . import _runtime as _rt
from ._api import _current

if TYPE_CHECKING:
    from ._native import Span

CORRELATION_HEADER = "x-motia-correlation-id"
TRACEPARENT_HEADER = "traceparent"
TRACESTATE_HEADER = "tracestate"

H = TypeVar("H", bound=MutableMapping[str, str])


@dataclass(frozen=True)
class Incoming:
    """What an incoming request carried. Every field is ``None`` when absent or invalid."""

    correlation_id: str | None = None
    #: Trace id of a valid ``traceparent`` (32 hex digits).
    trace_id: str | None = None
    #: The caller's span id from ``traceparent`` (16 hex digits).
    parent_span_id: str | None = None
    #: ``traceparent`` flags (bit 0: sampled).
    flags: int | None = None
    #: ``tracestate``, kept only beside a valid ``traceparent`` (validated per W3C).
    tracestate: str | None = None

    @property
    def traceparent(self) -> str | None:
        """The valid ``traceparent`` value received, normalised (``None`` when absent)."""
        if self.trace_id is None or self.parent_span_id is None or self.flags is None:
            return None
        return f"00-{self.trace_id}-{self.parent_span_id}-{self.flags:02x}"


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


def header_values(headers: Any, names: Iterable[str]) -> dict[str, str]:
    """Looks up ``names`` (lowercase) in ``headers``: a mapping (any key case), a list of
    ``(name, value)`` pairs (str or bytes, as in ASGI), or a WSGI ``environ``. Repeated headers
    are joined with ``,``."""
    wanted = set(names)
    found: dict[str, list[str]] = {}
    if isinstance(headers, Mapping):
        if "REQUEST_METHOD" in headers or "wsgi.version" in headers:
            for name in wanted:
                value = headers.get("HTTP_" + name.upper().replace("-", "_"))
                if value is not None:
                    found[name] = [_text(value)]
            return {k: ",".join(v) for k, v in found.items()}
        get_all = getattr(headers, "get_all", None) or getattr(headers, "getlist", None)
        pairs: Iterable[Any]
        if get_all is not None:
            pairs = ((n, v) for n in wanted for v in (get_all(n) or ()))
        else:
            pairs = headers.items()
    else:
        pairs = headers
    for name, value in pairs:
        key = _text(name).lower()
        if key in wanted:
            found.setdefault(key, []).append(_text(value))
    return {k: ",".join(v) for k, v in found.items()}


_NAMES = (CORRELATION_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER)


def extract(headers: Any) -> Incoming:
    """Reads the propagation headers of an incoming request (see :func:`header_values` for the
    accepted shapes). Invalid values are ignored per W3C Trace Context."""
    try:
        values = header_values(headers, _NAMES)
        if not values:
            return Incoming()
        cid, parent, state = _rt.native().extract(
            values.get(CORRELATION_HEADER),
            values.get(TRACEPARENT_HEADER),
            values.get(TRACESTATE_HEADER),
        )
    except Exception as exc:
        _rt.count_error(exc)
        return Incoming()
    if parent is None:
        return Incoming(correlation_id=cid)
    trace_id, parent_span_id, flags = parent
    return Incoming(cid, trace_id, parent_span_id, flags, state)


def parse_traceparent(value: str) -> tuple[str, str, int] | None:
    """``(trace_id, parent_span_id, flags)`` of a valid ``traceparent`` value, else ``None``."""
    try:
        parsed: tuple[str, str, int] | None = _rt.native().parse_traceparent(value)
    except Exception:
        return None
    return parsed


def inject(headers: H | None = None) -> H | dict[str, str]:
    """Adds ``traceparent``, ``tracestate`` and ``X-Motia-Correlation-Id`` to ``headers`` (a new
    dict when omitted) and returns it. Each call records its own CLIENT span (ended at once, as
    the call's outcome is not known here), whose id is the parent-id sent, so every outgoing call
    has a distinct, exported parent. Use :func:`client_call` to time the call and record its
    status instead. Outside a trace it adds nothing."""
    out: H | dict[str, str] = {} if headers is None else headers
    call = start_client_call("HTTP", "")
    if call is None:
        return out
    try:
        for name, value in call.headers():
            out[name] = value
    except Exception as exc:
        _rt.count_error(exc)
    end_client_call(call)
    return out


def start_client_call(method: str, url: str) -> Span | None:
    """Starts the CLIENT span of an outgoing call from the current step (or trace); its
    ``headers()`` are the propagation headers to send. ``None`` outside a trace."""
    parent = _current.get()
    client = _rt.client
    if parent is None or client is None:
        return None
    try:
        return client.client_call_start(parent, method, url)
    except Exception as exc:
        _rt.count_error(exc)
        return None


def end_client_call(
    call: Span | None, status: int | None = None, exc: BaseException | None = None
) -> None:
    """Ends a client call with the response ``status`` (5xx fails it) or the exception that
    left it without a response."""
    client = _rt.client
    if call is None or client is None:
        return
    try:
        if exc is not None:
            client.client_call_end(call, status, str(exc) or type(exc).__name__, type(exc).__qualname__)
        else:
            client.client_call_end(call, status)
    except Exception as err:
        _rt.count_error(err)


@contextmanager
def client_call(method: str, url: str) -> Iterator[dict[str, str]]:
    """Times one outgoing call as a CLIENT span: ``with flowscope.client_call("GET", url) as
    headers:`` yields the headers to send; an exception marks the span failed and propagates.
    Set the response status with :func:`set_client_status` inside the block."""
    call = start_client_call(method, url)
    headers: dict[str, str] = {}
    if call is not None:
        try:
            headers = dict(call.headers())
        except Exception as exc:
            _rt.count_error(exc)
    token = _call_status.set(None)
    try:
        yield headers
    except BaseException as exc:
        end_client_call(call, _call_status.get(), exc)
        raise
    else:
        end_client_call(call, _call_status.get())
    finally:
        _call_status.reset(token)


_call_status: ContextVar[int | None] = ContextVar("flowscope_call_status", default=None)


def set_client_status(status: int) -> None:
    """Records the response status of the innermost :func:`client_call`."""
    _call_status.set(int(status))
