"""flowscope: workflow observability. Traces, steps and operations go to the local flowscope
agent through a non-blocking queue in the Rust client (``flowscope._native``).

    import flowscope

    flowscope.init(service="checkout")            # optional: defaults come from the environment
    with flowscope.trace("user-registration", entry="api", step="validate-user"):
        with flowscope.step("validate-user"):
            with flowscope.op("state", "get", "user.email"):
                email = store.get("user.email")
            flowscope.emit("user.validated", to="save-user")
    flowscope.flush()

Nothing here raises because of the instrumentation, and without an agent events are dropped
quietly. ``FLOWSCOPE_DISABLED=1`` turns every call into a pure-Python no-op.
"""

from __future__ import annotations

from ._api import (
    Op,
    Step,
    Trace,
    artifact,
    checkpoint,
    correlate,
    current_span,
    current_trace_id,
    custom,
    emit,
    flush,
    init,
    llm,
    log,
    op,
    retry,
    state_clear,
    state_delete,
    state_get,
    state_set,
    stats,
    step,
    stream_delete,
    stream_get,
    stream_send,
    stream_set,
    trace,
    transition,
)
from .propagation import (
    CORRELATION_HEADER,
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
    Incoming,
    client_call,
    extract,
    inject,
    parse_traceparent,
    set_client_status,
)


def __getattr__(name: str) -> str:
    # The version lives in the workspace Cargo.toml; read it from the installed metadata, lazily.
    if name == "__version__":
        from importlib.metadata import version

        return version("flowscope")
    raise AttributeError(f"module 'flowscope' has no attribute {name!r}")

__all__ = [
    "CORRELATION_HEADER",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "Incoming",
    "Op",
    "Step",
    "Trace",
    "artifact",
    "checkpoint",
    "client_call",
    "correlate",
    "current_span",
    "current_trace_id",
    "custom",
    "emit",
    "extract",
    "flush",
    "init",
    "inject",
    "llm",
    "log",
    "op",
    "parse_traceparent",
    "retry",
    "set_client_status",
    "state_clear",
    "state_delete",
    "state_get",
    "state_set",
    "stats",
    "step",
    "stream_delete",
    "stream_get",
    "stream_send",
    "stream_set",
    "trace",
    "transition",
]
