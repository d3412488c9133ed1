"""The process-wide client: lazy start, ``init``, fork handling, exit flush, error counting.

Nothing here imports the native module until a client is actually needed, so with
``FLOWSCOPE_DISABLED=1`` the package stays pure Python.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import _native

logger = logging.getLogger("flowscope")

_TRUE = ("1", "true", "yes", "on")


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


#: Whether every call is a no-op (``FLOWSCOPE_DISABLED``, or ``init(disabled=True)``).
disabled: bool = env_flag("FLOWSCOPE_DISABLED")
#: The native client, once started. Replaced in a forked child.
client: _native.Client | None = None
#: Internal errors swallowed so that instrumentation never raises into the application.
errors: int = 0

_settings: dict[str, Any] = {}
_lock = threading.Lock()


def native() -> Any:
    from . import _native

    return _native


def get_client() -> _native.Client:
    """The client, started from the environment on first use."""
    c = client
    if c is None:
        with _lock:
            c = client
            if c is None:
                c = _start(dict(_settings))
    return c


def _start(settings: dict[str, Any]) -> _native.Client:
    global client, _settings
    c: _native.Client = native().Client(**settings)
    _settings = settings
    client = c
    return c


def init(
    service: str = "",
    *,
    socket: str | os.PathLike[str] | None = None,
    disabled: bool | None = None,
    queue_capacity: int | None = None,
    redact: list[str] | None = None,
    hide_llm_content: bool = False,
    queue_bytes: int | None = None,
    overflow: str | None = None,
) -> None:
    """(Re)configures the client. Optional: the first trace starts one from the environment."""
    off = env_flag("FLOWSCOPE_DISABLED") if disabled is None else bool(disabled)
    _set_disabled(off)
    if off:
        return
    settings: dict[str, Any] = {"service": service}
    if socket is not None:
        settings["socket"] = os.fspath(socket)
    if queue_capacity is not None:
        settings["queue_capacity"] = queue_capacity
    if queue_bytes is not None:
        settings["queue_bytes"] = queue_bytes
    if overflow is not None:
        settings["overflow"] = overflow
    if redact:
        settings["redact"] = list(redact)
    if hide_llm_content:
        settings["hide_llm_content"] = True
    with _lock:
        _start(settings)


def _set_disabled(value: bool) -> None:
    global disabled
    disabled = bool(value)


def count_error(exc: BaseException | None = None) -> None:
    """Records an error swallowed by the instrumentation (shown in ``stats()['errors']``)."""
    global errors
    errors += 1
    try:
        if errors == 1:
            logger.warning("flowscope: instrumentation error ignored: %r", exc)
        else:
            logger.debug("flowscope: instrumentation error ignored: %r", exc)
    except Exception:  # logging must not raise either
        pass


def _after_fork_in_child() -> None:
    # The parent's writer thread does not exist here and its locks may be held: abandon that
    # client (never dropped) and start a new one with the same settings.
    global client, _lock
    try:
        _lock = threading.Lock()
        nat = sys.modules.get("flowscope._native")
        if nat is None:
            return
        nat.reseed_after_fork()
        old = client
        if old is not None:
            old.leak()
            client = nat.Client(**_settings)
    except Exception as exc:
        count_error(exc)


def _flush_at_exit() -> None:
    c = client
    if c is None:
        return
    try:
        # No socket file: no agent, nothing to wait for.
        if os.path.exists(c.socket):
            c.flush(2.0)
    except Exception:
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_flush_at_exit)
