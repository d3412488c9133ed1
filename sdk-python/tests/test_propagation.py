"""inject/extract: X-Motia-Correlation-Id and W3C Trace Context parsing rules."""

from __future__ import annotations

import uuid

import flowscope
import pytest
from conftest import Agent

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

# Values W3C Trace Context says a receiver must ignore.
INVALID_TRACEPARENTS = [
    "",
    "garbage",
    VALID + "-extra",  # version 00 is exactly 55 characters
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is forbidden
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper-case hex
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",  # non-hex flags
    "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # wrong separator
    "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # short version
    "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",  # short parent id
    "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  # future version glued field
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9é2b7-01",  # non-ASCII
    "ü" * 60,  # non-ASCII, long enough to reach the byte-indexed parser
    "€" * 20,  # a 3-byte character across the version field
    VALID + "," + VALID,  # two traceparent headers joined
]


def test_parses_the_spec_example() -> None:
    assert flowscope.parse_traceparent(VALID) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        1,
    )
    got = flowscope.extract({"traceparent": VALID, "tracestate": "congo=t61rcWkgMzE"})
    assert got.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert got.parent_span_id == "00f067aa0ba902b7"
    assert got.flags == 1
    assert got.tracestate == "congo=t61rcWkgMzE"


def test_future_versions_with_extra_fields_are_accepted() -> None:
    future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-the-future-holds"
    assert flowscope.parse_traceparent(future) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        0,
    )


@pytest.mark.parametrize("value", INVALID_TRACEPARENTS)
def test_invalid_traceparent_is_ignored_with_its_tracestate(value: str) -> None:
    assert flowscope.parse_traceparent(value) is None
    got = flowscope.extract(
        {"traceparent": value, "tracestate": "a=b", "X-Motia-Correlation-Id": "t-1"}
    )
    assert got == flowscope.Incoming(correlation_id="t-1")


def test_header_shapes_and_cases() -> None:
    want = flowscope.extract({"traceparent": VALID, "x-motia-correlation-id": "c"})
    shapes = [
        {"Traceparent": VALID, "X-Motia-Correlation-Id": " c "},
        [(b"traceparent", VALID.encode()), (b"x-motia-correlation-id", b"c")],  # ASGI
        [("TRACEPARENT", VALID), ("X-MOTIA-CORRELATION-ID", "c")],
        {"REQUEST_METHOD": "GET", "HTTP_TRACEPARENT": VALID, "HTTP_X_MOTIA_CORRELATION_ID": "c"},
    ]
    for headers in shapes:
        assert flowscope.extract(headers) == want, headers
    assert want.correlation_id == "c" and want.trace_id is not None


def test_repeated_tracestate_headers_are_joined() -> None:
    got = flowscope.extract([("traceparent", VALID), ("tracestate", "a=1"), ("tracestate", "b=2")])
    assert got.tracestate == "a=1,b=2"


def test_empty_or_oversized_correlation_id_is_ignored() -> None:
    assert flowscope.extract({"x-motia-correlation-id": "   "}).correlation_id is None
    assert flowscope.extract({"x-motia-correlation-id": "x" * 300}).correlation_id is None
    assert flowscope.extract({}) == flowscope.Incoming()


def test_inject_continues_the_caller_and_gives_each_call_its_own_span(agent: Agent) -> None:
    caller = uuid.uuid4().hex
    incoming = f"00-{caller}-00f067aa0ba902b7-01"
    with flowscope.trace("propagation", headers={"traceparent": incoming, "tracestate": "k=v"}) as tr:
        # The caller's trace continues: same trace id, this segment hangs under its span.
        assert tr.trace_id == caller
        root = flowscope.inject()
        assert root["traceparent"].startswith(f"00-{tr.trace_id}-")
        assert root["traceparent"].endswith("-01"), "the caller's sampled flag travels on"
        assert root["tracestate"] == "k=v"
        assert "x-motia-correlation-id" not in root
        with flowscope.step("call") as st:
            flowscope.correlate("conv-1")
            first = flowscope.inject({"accept": "json"})
            second = flowscope.inject()
    assert first["accept"] == "json"
    assert first["tracestate"] == "k=v" and first["x-motia-correlation-id"] == "conv-1"
    parents = {flowscope.parse_traceparent(h["traceparent"])[1] for h in (root, first, second)}  # type: ignore[index]
    assert len(parents) == 3, "one client span, so one parent-id, per outgoing call"
    assert st.span_id not in parents
    t = agent.trace(tr.trace_id)  # type: ignore[arg-type]
    assert "parentTraceId" not in t
    assert t["correlationId"] == "conv-1"
    (segment,) = t["segments"]
    assert segment["parentSpanId"] == "00f067aa0ba902b7"
    calls = [s for s in t["steps"] if s.get("kind") == "client"]
    assert {c["id"] for c in calls} == parents
    under_step = [c for c in calls if c.get("parentId") == st.span_id]
    assert len(under_step) == 2


def test_flags_are_kept_and_an_unsampled_caller_stays_unsampled(agent: Agent) -> None:
    for flags in ("00", "02", "03"):
        incoming = f"00-{uuid.uuid4().hex}-00f067aa0ba902b7-{flags}"
        with flowscope.trace("flags", headers={"traceparent": incoming}):
            out = flowscope.inject()
        assert out["traceparent"].endswith(f"-{flags}"), (flags, out)


def test_a_new_trace_sets_the_random_flag(agent: Agent) -> None:
    with flowscope.trace("fresh"):
        out = flowscope.inject()
    flags = int(out["traceparent"][-2:], 16)
    assert flags & 0x02, "Level 2: our trace ids are random"
    assert flags & 0x01, "sampled: the agent's sample ratio is 1"


def test_invalid_tracestate_members_drop_the_whole_header(agent: Agent) -> None:
    cases = {
        "a=1,b=2": "a=1,b=2",
        "a=1 , ,b=2": "a=1,b=2",
        "a=1,a=2": "a=1",
        "a=1,B=2": None,
        "@a=1,b=2": None,
        "a=,b=2": None,
        ",".join(f"k{i}=v" for i in range(33)): None,
    }
    for given, want in cases.items():
        assert flowscope.extract({"traceparent": VALID, "tracestate": given}).tracestate == want, given
        fresh = f"00-{uuid.uuid4().hex}-00f067aa0ba902b7-01"
        with flowscope.trace("ts", headers={"traceparent": fresh, "tracestate": given}):
            out = flowscope.inject()
        assert out.get("tracestate") == want, given


def test_trace_headers_apply_correlation_with_method_header(agent: Agent) -> None:
    with flowscope.trace(
        "propagation", headers={"x-motia-correlation-id": "hdr-1", "traceparent": "bogus"}
    ) as tr:
        pass
    t = agent.trace(tr.trace_id)  # type: ignore[arg-type]
    assert t["correlationId"] == "hdr-1"
    assert t["correlationMethod"] == "header"
    assert "parentTraceId" not in t
