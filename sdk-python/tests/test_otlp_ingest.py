"""OTLP ingest with the real OpenTelemetry Python SDK and its OTLP exporters (http/protobuf,
gzip, gRPC) → a real agent → its API; and mixed traces where an OpenTelemetry-instrumented
service and a flowscope-instrumented one call each other over W3C headers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import flowscope
import pytest
from conftest import Agent, start_agent, stop_agent
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode


@pytest.fixture(scope="module")
def otlp_agent(workdir: str) -> Iterator[Agent]:
    """An agent with its gRPC receiver on a free port (the HTTP receiver is always on)."""
    a = start_agent(workdir, f"{workdir}/otlp.sock", "--otlp-grpc-listen", "127.0.0.1:0")
    yield a
    stop_agent(a)


@pytest.fixture
def client_to(otlp_agent: Agent, agent: Agent) -> Iterator[Callable[[str], None]]:
    """Points this process's flowscope client at the OTLP agent as ``service``; afterwards back
    at the session agent."""

    def use(service: str) -> None:
        flowscope.init(service=service, socket=otlp_agent.socket)

    yield use
    flowscope.flush(5.0)
    flowscope.init(service="pytest", socket=agent.socket)


def grpc_address(agent: Agent) -> str:
    state = agent.get("/readyz")["otlpReceivers"]["grpc"]
    assert state.startswith("listening on "), state
    return state.removeprefix("listening on ")


def make_exporter(agent: Agent, transport: str) -> SpanExporter:
    if transport == "http/protobuf":
        return HttpExporter(endpoint=f"{agent.url}/v1/traces")
    if transport == "http/protobuf+gzip":
        return HttpExporter(endpoint=f"{agent.url}/v1/traces", compression=Compression.Gzip)
    return GrpcExporter(endpoint=f"http://{grpc_address(agent)}", insecure=True)


def provider(agent: Agent, transport: str, service: str) -> TracerProvider:
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(BatchSpanProcessor(make_exporter(agent, transport)))
    return tp


def hex_trace_id(span: trace.Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def hex_span_id(span: trace.Span) -> str:
    return format(span.get_span_context().span_id, "016x")


def step(t: dict[str, Any], name: str) -> dict[str, Any]:
    found = [s for s in t["steps"] if s["name"] == name]
    assert len(found) == 1, [s["name"] for s in t["steps"]]
    return found[0]


def events_of(s: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in s["events"] if e["type"] == kind]


@pytest.mark.parametrize("transport", ["http/protobuf", "http/protobuf+gzip", "grpc"])
def test_otel_sdk_spans_become_a_flowscope_trace(otlp_agent: Agent, transport: str) -> None:
    tp = provider(otlp_agent, transport, "shop")
    tracer = tp.get_tracer("checkout")
    session = f"sess-{uuid.uuid4()}"
    with tracer.start_as_current_span(
        "POST /orders",
        kind=SpanKind.SERVER,
        attributes={"workflow.name": "place-order", "session.id": session},
    ) as root:
        with tracer.start_as_current_span("validate") as validate:
            validate.add_event("cart checked", {"items": 3})
            with tracer.start_as_current_span(
                "chat gpt-4o",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.usage.output_tokens": 30,
                },
            ):
                pass
        with tracer.start_as_current_span(
            "orders publish",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": "order.placed"},
        ):
            pass
        with tracer.start_as_current_span("charge") as charge:
            try:
                raise ValueError("card declined")
            except ValueError as exc:
                charge.record_exception(exc)
                charge.set_status(Status(StatusCode.ERROR, "card declined"))
    assert tp.force_flush(10_000)
    trace_id = hex_trace_id(root)

    t = otlp_agent.trace(trace_id)
    assert t["flowName"] == "place-order"
    assert t["service"] == "shop"
    assert t["entryPoint"] == {"type": "api", "stepName": "POST /orders"}
    assert t["segments"][0]["spanId"] == hex_span_id(root)
    names = sorted(s["name"] for s in t["steps"])
    assert names == ["charge", "chat gpt-4o", "orders publish", "validate"]
    # Nesting: the LLM call hangs under validate; the others are top-level steps.
    assert step(t, "chat gpt-4o")["parentId"] == step(t, "validate")["id"]
    assert "parentId" not in step(t, "validate")
    (llm,) = events_of(step(t, "chat gpt-4o"), "llm")
    assert (llm["model"], llm["provider"], llm["inputTokens"], llm["outputTokens"]) == (
        "gpt-4o",
        "openai",
        12,
        30,
    )
    (log,) = events_of(step(t, "validate"), "log")
    assert (log["message"], log["fields"]) == ("cart checked", {"items": 3})
    (emit,) = step(t, "orders publish")["ops"]
    assert (emit["kind"], emit["topic"]) == ("emit", "order.placed")
    charge_step = step(t, "charge")
    assert charge_step["status"] == "failed"
    assert charge_step["error"]["type"] == "ValueError"
    assert charge_step["error"]["message"] == "card declined"
    assert "raise ValueError" in charge_step["error"]["stack"]
    group = otlp_agent.group(session, until=lambda g: len(g["traces"]) == 1)
    assert group["traces"][0]["id"] == trace_id
    tp.shutdown()


def test_otel_service_calling_a_flowscope_service_is_one_trace(
    otlp_agent: Agent, client_to: Callable[[str], None]
) -> None:
    client_to("payments")
    tp = provider(otlp_agent, "http/protobuf", "storefront")
    tracer = tp.get_tracer("storefront")
    with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span("POST /pay", kind=SpanKind.CLIENT) as call:
            headers: dict[str, str] = {}
            propagate.inject(headers)
            # The callee: a flowscope-instrumented handler continuing the incoming headers.
            with flowscope.trace("payment", headers=headers), flowscope.step("charge-card"):
                flowscope.state_set("payment:1")
    assert tp.force_flush(10_000)
    trace_id = hex_trace_id(root)

    t = otlp_agent.trace(trace_id, until=lambda t: t["status"] != "running" and len(t["segments"]) == 2)
    assert sorted(t["services"]) == ["payments", "storefront"]
    by_service = {s["service"]: s for s in t["segments"]}
    assert by_service["storefront"]["spanId"] == hex_span_id(root)
    # The flowscope segment hangs under the OpenTelemetry CLIENT span that called it.
    assert by_service["payments"]["parentSpanId"] == hex_span_id(call)
    assert step(t, "POST /pay")["kind"] == "client"
    assert step(t, "charge-card")["service"] == "payments"
    assert_no_orphans(t)
    tp.shutdown()


def test_flowscope_service_calling_an_otel_service_is_one_trace(
    otlp_agent: Agent, client_to: Callable[[str], None]
) -> None:
    client_to("orders")
    tp = provider(otlp_agent, "grpc", "inventory")
    tracer = tp.get_tracer("inventory")
    with flowscope.trace("place-order") as run:
        with flowscope.client_call("GET", "http://inventory/stock") as headers:
            # The callee: an OpenTelemetry-instrumented server extracting the W3C headers.
            incoming = propagate.extract(headers)
            with tracer.start_as_current_span("GET /stock", context=incoming, kind=SpanKind.SERVER):
                with tracer.start_as_current_span("reserve"):
                    pass
            flowscope.set_client_status(200)
    assert tp.force_flush(10_000)
    trace_id = run.trace_id

    t = otlp_agent.trace(trace_id, until=lambda t: t["status"] != "running" and len(t["segments"]) == 2)
    assert sorted(t["services"]) == ["inventory", "orders"]
    by_service = {s["service"]: s for s in t["segments"]}
    client = [s for s in t["steps"] if s.get("kind") == "client" and s["service"] == "orders"]
    assert len(client) == 1
    assert by_service["inventory"]["parentSpanId"] == client[0]["id"]
    assert step(t, "reserve")["service"] == "inventory"
    assert_no_orphans(t)
    tp.shutdown()


def assert_no_orphans(t: dict[str, Any]) -> None:
    """Every step's parent is a step of the trace; every segment's remote parent is a step."""
    steps = {s["id"] for s in t["steps"]}
    for s in t["steps"]:
        assert s.get("parentId") in (None, *steps), s
    for seg in t["segments"]:
        assert seg.get("parentSpanId") in (None, *steps), seg
