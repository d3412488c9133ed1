"""Type stubs of the private native module (Rust, pyo3). Use the ``flowscope`` package instead."""

from os import PathLike
from typing import Any, final

__all__ = [
    "Client",
    "Span",
    "reseed_after_fork",
    "parse_traceparent",
    "extract",
    "CORRELATION_HEADER",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "SDK_VERSION",
    "run_agent",
    "http_status_error",
]

SDK_VERSION: str
CORRELATION_HEADER: str
TRACEPARENT_HEADER: str
TRACESTATE_HEADER: str

def reseed_after_fork() -> None: ...
def http_status_error(status: int) -> tuple[str, str, str]: ...
def parse_traceparent(value: str) -> tuple[str, str, int] | None: ...
def extract(
    correlation_id: str | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> tuple[str | None, tuple[str, str, int] | None, str | None]: ...
@final
class Span:
    """A position in a trace: the trace itself (``span_id is None``) or one of its steps."""

    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str | None: ...
    @property
    def parent_span_id(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def flow(self) -> str: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def tracestate(self) -> str | None: ...
    @property
    def is_trace(self) -> bool: ...
    @property
    def traceparent(self) -> str: ...
    @property
    def trace_flags(self) -> int: ...
    def headers(self) -> list[tuple[str, str]]: ...

@final
class Client:
    def __new__(
        cls,
        service: str = "",
        socket: str | PathLike[str] | None = None,
        disabled: bool | None = None,
        queue_capacity: int | None = None,
        redact: list[str] | None = None,
        hide_llm_content: bool = False,
        queue_bytes: int | None = None,
        overflow: str | None = None,
    ) -> Client: ...
    @property
    def service(self) -> str: ...
    @property
    def socket(self) -> str: ...
    @property
    def disabled(self) -> bool: ...
    def flush(self, timeout: float) -> bool: ...
    def stats(self) -> dict[str, int | bool | str | None]: ...
    def leak(self) -> None: ...
    def trace_start(
        self,
        flow: str,
        entry: str = "api",
        step: str | None = None,
        correlation_id: str | None = None,
        correlation_method: str = "manual",
        parent_trace: str | None = None,
        attributes: dict[str, Any] | None = None,
        trace_id: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Span: ...
    def client_call_start(self, parent: Span, method: str, url: str) -> Span: ...
    def client_call_end(
        self,
        span: Span,
        status: int | None = None,
        message: str | None = None,
        error_type: str | None = None,
    ) -> None: ...
    def trace_end(
        self,
        span: Span,
        failed: bool = False,
        message: str | None = None,
        error_type: str | None = None,
        code: str | None = None,
        stack: str | None = None,
    ) -> None: ...
    def step_start(self, parent: Span, name: str) -> Span: ...
    def step_end(
        self,
        span: Span,
        failed: bool = False,
        message: str | None = None,
        error_type: str | None = None,
        code: str | None = None,
        stack: str | None = None,
    ) -> None: ...
    def op(
        self,
        span: Span,
        kind: str,
        action: str,
        subject: str | None = None,
        detail: str | None = None,
        dur: int = 0,
        error: str | None = None,
        error_type: str | None = None,
    ) -> None: ...
    def log(
        self, span: Span, level: str, msg: str, fields: dict[str, Any] | None = None
    ) -> None: ...
    def llm(
        self,
        span: Span,
        model: str,
        provider: str | None = None,
        prompt: str | None = None,
        response: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost: float | None = None,
        dur: int = 0,
    ) -> None: ...
    def artifact(
        self,
        span: Span,
        name: str,
        url: str | None = None,
        preview: str | None = None,
        mime: str | None = None,
        size: int | None = None,
    ) -> None: ...
    def retry(
        self, span: Span, attempt: int, reason: str | None = None, backoff_ms: int | None = None
    ) -> None: ...
    def checkpoint(self, span: Span, id: str) -> None: ...
    def transition(
        self, span: Span, from_state: str, to_state: str, action: str | None = None
    ) -> None: ...
    def correlate(
        self, span: Span, cid: str, method: str = "manual", name: str | None = None
    ) -> None: ...
    def custom(self, span: Span, name: str, payload: Any = None) -> None: ...

def run_agent(argv: list[str]) -> None:
    """Runs the bundled agent with ``argv`` (program name first) until SIGINT/SIGTERM."""
