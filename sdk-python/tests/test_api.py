"""Every API call, read back from a real agent through ``/api/traces/{id}``."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import uuid

import flowscope
import pytest
from conftest import Agent, step_named


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_every_event_kind_lands_in_its_step(agent: Agent) -> None:
    flow = uid("everything")
    with flowscope.trace(
        flow, entry="cron", step="nightly", attributes={"tenant": "acme", "n": 3, "ok": True}
    ) as tr:
        with flowscope.step("nightly") as st:
            with flowscope.op("state", "get", "user.email"):
                pass
            flowscope.op("state", "set", "user.email").record(duration=0.002)
            flowscope.state_delete("user.tmp")
            flowscope.state_clear()
            flowscope.emit("user.validated", to="save-user")
            with flowscope.op("stream", "set", stream="messages", id="m-1"):
                pass
            flowscope.stream_get("messages", "m-1")
            flowscope.stream_delete("messages", "m-1")
            flowscope.stream_send("messages")
            flowscope.op("state", "merge", "user.profile").record()
            flowscope.log("validated", level="warning", user="a@b.c", attempt=2)
            flowscope.llm(
                "gpt-test",
                provider="openai",
                prompt=[{"role": "user", "content": "hi"}],
                response="hello",
                input_tokens=3,
                output_tokens=5,
                cost=0.0012,
                duration=0.25,
            )
            flowscope.artifact(
                "report.csv", url="https://x.invalid/r.csv", preview="a,b", mime="text/csv", size=42
            )
            flowscope.retry(1, reason="timeout", backoff_ms=50)
            flowscope.checkpoint("cp-1")
            flowscope.transition("pending", "paid", "charge")
            flowscope.custom("cart", {"items": [1, 2], "total": 9.5, "meta": None, "t": (1, "x")})
        flowscope.log("after the step")  # directly in the trace
    assert st.span_id is not None and len(st.span_id) == 16
    t = agent.trace(tr.trace_id)

    assert t["flowName"] == flow
    assert t["status"] == "completed"
    assert t["service"] == "pytest"
    assert t["entryPoint"] == {"type": "cron", "stepName": "nightly"}
    assert t["attributes"] == {"tenant": "acme", "n": 3, "ok": True}
    step = step_named(t, "nightly")
    assert step["id"] == st.span_id
    assert step["status"] == "completed"
    assert step["operations"] == {"state": 5, "emit": 1, "stream": 4}
    ops = step["ops"]
    assert [(o["kind"], o["action"]) for o in ops] == [
        ("state", "get"),
        ("state", "set"),
        ("state", "delete"),
        ("state", "clear"),
        ("emit", "send"),
        ("stream", "set"),
        ("stream", "get"),
        ("stream", "delete"),
        ("stream", "send"),
        ("state", "other"),
    ]
    assert ops[0]["key"] == "user.email" and ops[0]["ok"] is True
    assert ops[1]["duration"] == pytest.approx(2.0, abs=0.01)
    assert ops[4]["topic"] == "user.validated" and ops[4]["to"] == "save-user"
    assert ops[5]["stream"] == "messages" and ops[5]["id"] == "m-1"

    events = {e["type"]: e for e in step["events"]}
    assert events["log"]["level"] == "warn"
    assert events["log"]["message"] == "validated"
    assert events["log"]["fields"] == {"user": "a@b.c", "attempt": 2}
    llm = events["llm"]
    assert llm["model"] == "gpt-test" and llm["provider"] == "openai"
    assert llm["prompt"] == '[{"role": "user", "content": "hi"}]'
    assert llm["response"] == "hello"
    assert (llm["inputTokens"], llm["outputTokens"], llm["totalTokens"]) == (3, 5, 8)
    assert llm["cost"] == pytest.approx(0.0012)
    assert llm["duration"] == pytest.approx(250, abs=0.01)
    assert events["artifact"] == {
        **events["artifact"],
        "name": "report.csv",
        "url": "https://x.invalid/r.csv",
        "preview": "a,b",
        "mime": "text/csv",
        "size": 42,
    }
    assert (events["retry"]["attempt"], events["retry"]["reason"], events["retry"]["backoffMs"]) == (
        1,
        "timeout",
        50,
    )
    assert events["checkpoint"]["id"] == "cp-1"
    assert (events["transition"]["from"], events["transition"]["to"]) == ("pending", "paid")
    assert events["transition"]["action"] == "charge"
    assert events["custom"]["name"] == "cart"
    assert events["custom"]["payload"] == {
        "items": [1, 2],
        "total": 9.5,
        "meta": None,
        "t": [1, "x"],
    }
    assert [e["message"] for e in t["events"] if e["type"] == "log"] == ["after the step"]


def test_nested_steps_record_their_parent(agent: Agent) -> None:
    with flowscope.trace(uid("nested")) as tr:
        with flowscope.step("outer") as outer:
            with flowscope.step("inner") as inner:
                with flowscope.step("innermost") as innermost:
                    flowscope.state_get("k")
            assert flowscope.current_span().span_id == outer.span_id  # type: ignore[union-attr]
        assert flowscope.current_span().is_trace  # type: ignore[union-attr]
    assert flowscope.current_span() is None
    t = agent.trace(tr.trace_id)
    assert "parentId" not in step_named(t, "outer")
    assert step_named(t, "inner")["parentId"] == outer.span_id
    assert step_named(t, "innermost")["parentId"] == inner.span_id
    assert step_named(t, "innermost")["ops"][0]["key"] == "k"
    assert innermost.span_id == step_named(t, "innermost")["id"]


def test_exception_fails_step_and_trace_with_type_message_stack(agent: Agent) -> None:
    class OutOfStock(Exception):
        code = "E_STOCK"

    def reserve() -> None:
        raise OutOfStock("sku-123 is out of stock")

    tr = flowscope.trace(uid("failing"))
    with pytest.raises(OutOfStock):
        with tr:
            with flowscope.step("ok"):
                pass
            with flowscope.step("reserve"):
                with flowscope.op("state", "get", "inventory.sku-123"):
                    reserve()
    t = agent.trace(tr.trace_id)  # type: ignore[arg-type]
    assert t["status"] == "failed"
    assert step_named(t, "ok")["status"] == "completed"
    step = step_named(t, "reserve")
    assert step["status"] == "failed"
    err = step["error"]
    assert err["message"] == "sku-123 is out of stock"
    assert err["type"] == "test_exception_fails_step_and_trace_with_type_message_stack.<locals>.OutOfStock"
    assert err["code"] == "E_STOCK"
    assert "Traceback (most recent call last)" in err["stack"]
    assert "in reserve" in err["stack"] and "test_api.py" in err["stack"]
    op = step["ops"][0]
    assert op["ok"] is False and "sku-123 is out of stock" in op["error"]
    assert t["error"]["message"] == "sku-123 is out of stock"


def test_set_error_fails_without_exception(agent: Agent) -> None:
    with flowscope.trace(uid("soft-fail")) as tr:
        with flowscope.step("validate") as st:
            st.set_error("invalid email", "ValidationError", "E_EMAIL")
    t = agent.trace(tr.trace_id)
    step = step_named(t, "validate")
    assert step["status"] == "failed"
    assert step["error"] == {"message": "invalid email", "type": "ValidationError", "code": "E_EMAIL"}
    assert t["status"] == "completed"


def test_decorators_sync_and_async(agent: Agent) -> None:
    flow = uid("decorated")

    @flowscope.step("sync-step")
    def sync_step(x: int) -> int:
        flowscope.log("in sync")
        return x + 1

    @flowscope.step
    async def async_step(x: int) -> int:
        await asyncio.sleep(0)
        flowscope.log("in async")
        return x * 2

    @flowscope.trace(flow, entry="event", step="sync-step")
    def run() -> tuple[int, int, str | None]:
        return sync_step(1), asyncio.run(async_step(5)), flowscope.current_trace_id()

    assert sync_step.__name__ == "sync_step"
    a, b, trace_id = run()
    assert (a, b) == (2, 10)
    assert trace_id is not None
    t = agent.trace(trace_id)
    assert t["entryPoint"]["type"] == "event"
    assert [s["name"] for s in t["steps"]] == ["sync-step", "async_step"]
    assert step_named(t, "async_step")["events"][0]["message"] == "in async"


def test_async_steps_in_concurrent_tasks_nest_under_their_own_parent(agent: Agent) -> None:
    async def worker(i: int) -> str:
        async with flowscope.step(f"worker-{i}") as st:
            await asyncio.sleep(0.01 * (3 - i))
            async with flowscope.step(f"io-{i}"):
                await asyncio.sleep(0.005)
                flowscope.state_get(f"k{i}")
        return st.span_id  # type: ignore[return-value]

    async def main() -> tuple[str, str, list[str]]:
        async with flowscope.trace(uid("async")) as tr:
            async with flowscope.step("fan-out") as fan:
                ids = await asyncio.gather(*(worker(i) for i in range(3)))
        return tr.trace_id, fan.span_id, ids  # type: ignore[return-value]

    trace_id, fan_id, worker_ids = asyncio.run(main())
    t = agent.trace(trace_id)
    for i in range(3):
        w = step_named(t, f"worker-{i}")
        assert w["id"] == worker_ids[i]
        assert w["parentId"] == fan_id
        io = step_named(t, f"io-{i}")
        assert io["parentId"] == worker_ids[i]
        assert io["ops"][0]["key"] == f"k{i}"
        assert io["status"] == "completed"


def test_threads_started_with_copied_context_nest_correctly(agent: Agent) -> None:
    results: dict[int, str] = {}

    def work(i: int) -> None:
        with flowscope.step(f"thread-{i}") as st:
            flowscope.log(f"hello from {i}")
            results[i] = st.span_id  # type: ignore[assignment]

    with flowscope.trace(uid("threads")) as tr:
        with flowscope.step("parallel") as par:
            threads = [
                threading.Thread(target=contextvars.copy_context().run, args=(work, i))
                for i in range(4)
            ]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        # A plain thread does not inherit the context: it records nothing.
        plain = threading.Thread(target=lambda: flowscope.log("lost"))
        plain.start()
        plain.join()
    t = agent.trace(tr.trace_id)
    for i in range(4):
        s = step_named(t, f"thread-{i}")
        assert s["id"] == results[i]
        assert s["parentId"] == par.span_id
        assert s["events"][0]["message"] == f"hello from {i}"
    assert all(e.get("message") != "lost" for e in t["events"])


def test_correlation_groups_traces(agent: Agent) -> None:
    cid = uid("thread")
    ids = []
    with flowscope.trace(uid("chat"), correlation_id=cid) as first:
        ids.append(first.trace_id)
        assert first.correlation_id == cid
    with flowscope.trace(uid("chat")) as second:
        flowscope.correlate(cid, name="Chat Thread")
        assert flowscope.inject()["x-motia-correlation-id"] == cid
        ids.append(second.trace_id)
    group = agent.group(cid, until=lambda g: g["metadata"]["totalTraces"] == 2)
    assert group["name"] == "Chat Thread"
    assert sorted(t["id"] for t in group["traces"]) == sorted(ids)
    assert agent.trace(ids[1])["correlationMethod"] == "manual"
    assert {t["id"] for t in agent.traces(correlationId=cid)} == set(ids)


def test_trace_started_inside_a_trace_is_its_child_and_inherits_the_group(agent: Agent) -> None:
    cid = uid("order")
    with flowscope.trace(uid("parent"), correlation_id=cid) as parent:
        with flowscope.step("create-order"):
            flowscope.emit("order.created")
            with flowscope.trace(uid("child"), entry="event", step="pay") as child:
                with flowscope.step("pay"):
                    pass
    c = agent.trace(child.trace_id)  # type: ignore[arg-type]
    assert c["parentTraceId"] == parent.trace_id
    assert c["correlationId"] == cid
    assert c["correlationMethod"] == "event"
    assert c["metadata"]["isChildTrace"] is True


def test_trace_id_can_be_given(agent: Agent) -> None:
    wanted = uuid.uuid4().hex
    with flowscope.trace(uid("given"), trace_id=wanted) as tr:
        pass
    assert tr.trace_id == wanted
    assert agent.trace(wanted)["id"] == wanted


def test_calls_outside_a_trace_do_nothing_and_never_raise(agent: Agent) -> None:
    before = flowscope.stats()["enqueued"]
    with flowscope.step("orphan") as st:
        with flowscope.op("state", "get", "k"):
            flowscope.log("nothing")
            flowscope.llm("m")
            flowscope.artifact("a")
            flowscope.retry(1)
            flowscope.checkpoint("c")
            flowscope.transition("a", "b")
            flowscope.custom("c")
            flowscope.correlate("c")
            flowscope.emit("t")
    assert st.span_id is None
    assert flowscope.inject() == {}
    assert flowscope.stats()["enqueued"] == before


def test_bad_arguments_are_swallowed_and_counted(agent: Agent) -> None:
    errors = flowscope.stats()["errors"]
    with flowscope.trace(uid("bad-args"), entry="nope") as bad:  # invalid entry type
        pass
    assert bad.trace_id is None
    with flowscope.trace(uid("bad-args")) as tr:
        with flowscope.step("s"):
            flowscope.op("bogus", "get", "k").record()
            flowscope.retry(-1)
            flowscope.correlate("c", method="telepathy")
            # Not errors: an unknown level is info and any message is text, as in every SDK.
            flowscope.log("x", level="loud")
            flowscope.log(object())  # type: ignore[arg-type]
    assert flowscope.stats()["errors"] == errors + 4
    assert agent.trace(tr.trace_id)["status"] == "completed"


def test_stats_and_flush(agent: Agent) -> None:
    with flowscope.trace(uid("stats")):
        flowscope.log("x")
    assert flowscope.flush(5.0) is True
    s = flowscope.stats()
    assert s["connected"] is True
    assert s["sent"] >= 3 and s["queued"] == 0 and s["dropped"] == 0
    assert s["queued_bytes"] == 0, "nothing waits after a flush"


def test_ops_record_on_call_time_a_callable_and_keep_the_older_forms_working(agent: Agent) -> None:
    async def fetch() -> str:
        await asyncio.sleep(0.01)
        return "cached"

    with flowscope.trace(uid("surface")) as tr, flowscope.step("s"):
        flowscope.state_get("a")  # recorded at once, like Node's stateGet("a")
        assert flowscope.state_set("b", lambda x: x * 2, 21) == 42  # the closure form
        assert asyncio.run(flowscope.stream_get("s", "i", fetch)) == "cached"  # awaited, timed
        flowscope.emit("t").record()  # the older form: nothing twice
        with flowscope.state_delete("c"):  # the older timed form still records, once
            pass
        flowscope.log("warn", "new order")
        flowscope.log("old order", "error")
        flowscope.log.info("shorthand", n=1)
        flowscope.log("critical", "is an error")
        flowscope.log("verbose", "unknown levels are info")
    step = step_named(agent.trace(tr.trace_id), "s")
    assert [(o["kind"], o["action"], o.get("key") or o.get("topic") or o.get("stream")) for o in step["ops"]] == [
        ("state", "get", "a"),
        ("state", "set", "b"),
        ("stream", "get", "s"),
        ("emit", "send", "t"),
        ("state", "delete", "c"),
    ]
    assert step["ops"][2]["duration"] >= 9.0
    logs = [(e["level"], e["message"], e.get("fields")) for e in step["events"] if e["type"] == "log"]
    assert logs == [
        ("warn", "new order", None),
        ("error", "old order", None),
        ("info", "shorthand", {"n": 1}),
        ("error", "is an error", None),
        ("info", "unknown levels are info", None),
    ]
