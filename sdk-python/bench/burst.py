"""A burst with default settings: 200,000 steps x 3 ops (1,000,000 events with the trace starts
and ends) in traces of 100 steps, as fast as the interpreter can emit, to the agent at
``FLOWSCOPE_SOCKET``. Prints the client's counters as JSON (``scripts/burst.sh`` runs it)."""

from __future__ import annotations

import json
import time

import flowscope


def main() -> None:
    flowscope.init(service="burst-python")
    started = time.perf_counter()
    for t in range(2_000):
        with flowscope.trace("burst", attributes={"round": t}):
            for s in range(100):
                with flowscope.step(f"step-{s % 10}"):
                    flowscope.state_get("user.email")
                    flowscope.state_set("user.status")
                    flowscope.emit("user.updated")
    emitted = time.perf_counter() - started
    flushed = flowscope.flush(120.0)
    stats = flowscope.stats()
    print(
        json.dumps(
            {
                "sdk": "python",
                "events": stats["enqueued"] + stats["dropped"],
                "sent": stats["sent"],
                "dropped": stats["dropped"],
                "emitSeconds": round(emitted, 3),
                "totalSeconds": round(time.perf_counter() - started, 3),
                "flushed": flushed,
            }
        )
    )


if __name__ == "__main__":
    main()
