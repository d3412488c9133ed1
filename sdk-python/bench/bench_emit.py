"""Per-event and per-step cost of flowscope vs the OpenTelemetry Python SDK, in one run.

    cargo build -p flowscope-agent
    python sdk-python/bench/bench_emit.py [--iterations 20000] [--rounds 7] [--socket PATH]

flowscope sends to a real agent (started here from FLOWSCOPE_AGENT_BIN or
<repo>/target/debug/flowscope unless --socket names a running one), so its writer thread really
frames and writes. OpenTelemetry uses a TracerProvider with a BatchSpanProcessor and an exporter
that discards, i.e. its cheapest realistic configuration; both queues hold 2^20 items. Each case is timed over --iterations
calls inside an open trace/step (resp. an open parent span), --rounds times; the median is
reported. Queues are flushed between rounds so neither side measures a full-queue drop path.

Cases (flowscope | OpenTelemetry):
- event: a timed operation ``with state_get(key)`` | a child span with the key as attribute
- log: ``log(msg)`` | ``span.add_event(msg)``
- step: a step with 3 timed operations | a span with 3 child spans
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parents[2]


def start_agent(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = Path(os.environ.get("FLOWSCOPE_AGENT_BIN", REPO / "target" / "debug" / "flowscope"))
    if not binary.exists():
        sys.exit(f"agent binary not found at {binary}: run `cargo build -p flowscope-agent`")
    sock = os.path.join(directory, "bench.sock")
    log = Path(directory) / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(binary), "--socket", sock, "--http", "127.0.0.1:0", "--max-traces", "100", "--data-dir", "none"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if re.search(r"flowscope listening", log.read_text(errors="replace")):
            return proc, sock
        time.sleep(0.02)
    proc.kill()
    sys.exit(f"agent did not start: {log.read_text(errors='replace')}")


def median_ns(
    body: Callable[[int], None], iterations: int, rounds: int, between: Callable[[], None]
) -> float:
    samples = []
    for _ in range(rounds):
        between()
        start = time.perf_counter_ns()
        body(iterations)
        samples.append((time.perf_counter_ns() - start) / iterations)
    between()
    return statistics.median(samples)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--socket", help="a running agent's socket (default: start one)")
    args = parser.parse_args(argv)
    n, rounds = args.iterations, args.rounds

    tmp = tempfile.TemporaryDirectory(prefix="fs-bench-")
    agent = None
    sock = args.socket
    if sock is None:
        agent, sock = start_agent(tmp.name)

    import flowscope
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider()
    # Queue as large as flowscope's, so neither side measures dropping.
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 20))
    tracer = provider.get_tracer("bench")

    # A queue larger than one round's events, flushed between rounds: every event is really
    # sent (the drop path of a full queue is not what is measured). The counts are printed.
    flowscope.init(service="bench", socket=sock, queue_capacity=1 << 20)

    def fs_flush() -> None:
        flowscope.flush(30)

    def otel_flush() -> None:
        provider.force_flush(30_000)

    # --- flowscope ---------------------------------------------------------------------------
    def fs_event(k: int) -> None:
        state_get = flowscope.state_get
        for _ in range(k):
            with state_get("user.email"):
                pass

    def fs_log(k: int) -> None:
        log = flowscope.log
        for _ in range(k):
            log("validated")

    def fs_step(k: int) -> None:
        step, state_get, state_set = flowscope.step, flowscope.state_get, flowscope.state_set
        for _ in range(k):
            with step("validate-user"):
                with state_get("user.email"):
                    pass
                with state_get("user.name"):
                    pass
                with state_set("user.validated"):
                    pass

    # --- OpenTelemetry ------------------------------------------------------------------------
    def otel_event(k: int) -> None:
        span = tracer.start_as_current_span
        for _ in range(k):
            with span("state.get", attributes={"flowscope.op.key": "user.email"}):
                pass

    def otel_log(k: int) -> None:
        from opentelemetry import trace as otel_trace

        current = otel_trace.get_current_span()
        for _ in range(k):
            current.add_event("validated")

    def otel_step(k: int) -> None:
        span = tracer.start_as_current_span
        for _ in range(k):
            with span("validate-user"):
                with span("state.get", attributes={"flowscope.op.key": "user.email"}):
                    pass
                with span("state.get", attributes={"flowscope.op.key": "user.name"}):
                    pass
                with span("state.set", attributes={"flowscope.op.key": "user.validated"}):
                    pass

    results: dict[str, tuple[float, float]] = {}
    for name, fs_body, otel_body in (
        ("event (timed op | child span)", fs_event, otel_event),
        ("log (log | span event)", fs_log, otel_log),
        ("step + 3 ops (step | 4 spans)", fs_step, otel_step),
    ):
        # Interleave the two sides round by round so both see the same machine load.
        fs_samples, otel_samples = [], []
        for _ in range(rounds):
            with flowscope.trace("bench", step="bench"), flowscope.step("bench"):
                fs_samples.append(median_ns(fs_body, n, 1, fs_flush))
            with tracer.start_as_current_span("bench"):
                otel_samples.append(median_ns(otel_body, n, 1, otel_flush))
        results[name] = (statistics.median(fs_samples), statistics.median(otel_samples))

    # The floor: one native call per event, no Python-level context manager.
    from flowscope import _native
    from flowscope import _runtime

    client = _runtime.get_client()
    with flowscope.trace("bench-raw") as tr:
        span = tr.span
        assert span is not None

        def raw(k: int) -> None:
            op = client.op
            for _ in range(k):
                op(span, "state", "get", "user.email", None, 1000, None)

        raw_ns = median_ns(raw, n, rounds, fs_flush)
    assert isinstance(span, _native.Span)

    stats = flowscope.stats()
    print(
        f"python {sys.version.split()[0]}, flowscope {flowscope.__version__}, "
        f"{n} iterations x {rounds} rounds (median ns per iteration)"
    )
    print(f"{'case':34} {'flowscope':>11} {'otel sdk':>11} {'otel/flowscope':>15}")
    for name, (fs_ns, otel_ns) in results.items():
        print(f"{name:34} {fs_ns:9.0f}ns {otel_ns:9.0f}ns {otel_ns / fs_ns:14.1f}x")
    print(f"{'raw native op call (floor)':34} {raw_ns:9.0f}ns")
    print(
        f"flowscope client: sent={stats['sent']} dropped={stats['dropped']} "
        f"errors={stats['errors']}"
    )

    provider.shutdown()
    if agent is not None:
        agent.terminate()
        agent.wait(10)
    tmp.cleanup()


if __name__ == "__main__":
    main()
