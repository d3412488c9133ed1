"""flowscope.motia against a real agent: Motia handler contexts of the documented shape (fake
``ctx`` objects; some methods async, some sync, some raising), the RFC's registration flow as
three invocations forming one trace, errors, return values, correlate, logger, Motia 1.x
``instrument_motia``, the trace id mapping, disabled mode and the runnable example."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from types import SimpleNamespace
from typing import Any

import flowscope
import pytest
from conftest import REPO, Agent, child_env, run_python, step_named
from flowscope.motia import entry_for, instrument, instrument_motia, trace_id_for

EXAMPLE = REPO / "examples" / "motia" / "registration.py"


def motia_id() -> str:
    return str(uuid.uuid4())


def ops_of(step: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(kind, action, key | topic | stream, id, ok) of a step's ops."""
    return [
        (o["kind"], o["action"], o.get("key") or o.get("topic") or o.get("stream"), o.get("id"), o["ok"])
        for o in step["ops"]
    ]


def logs_of(step: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(e["level"], e["message"], e.get("fields")) for e in step["events"] if e["type"] == "log"]


class State:
    """Motia 0.x ``ctx.state``: async get/set/get_group, sync delete/clear."""

    def __init__(self, store: dict[tuple[str, str], Any] | None = None, delay: float = 0.0) -> None:
        self.store = {} if store is None else store
        self.delay = delay

    async def get(self, scope: str, key: str) -> Any:
        await asyncio.sleep(self.delay)
        return self.store.get((scope, key))

    async def set(self, scope: str, key: str, value: Any) -> Any:
        await asyncio.sleep(self.delay)
        self.store[(scope, key)] = value
        return value

    def delete(self, scope: str, key: str) -> bool:
        return self.store.pop((scope, key), None) is not None

    def clear(self, scope: str) -> None:
        for k in [k for k in self.store if k[0] == scope]:
            del self.store[k]

    async def getGroup(self, scope: str) -> list[Any]:  # noqa: N802 (Motia's name)
        return [v for k, v in self.store.items() if k[0] == scope]


class Stream:
    def __init__(self, delay: float = 0.0) -> None:
        self.items: dict[tuple[str, str], Any] = {}
        self.sent: list[Any] = []
        self.delay = delay

    async def get(self, group_id: str, id: str) -> Any:
        return self.items.get((group_id, id))

    async def set(self, group_id: str, id: str, data: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(self.delay)
        self.items[(group_id, id)] = {**data, "id": id}
        return self.items[(group_id, id)]

    async def delete(self, group_id: str, id: str) -> Any:
        return self.items.pop((group_id, id), None)

    async def send(self, channel: dict[str, Any], event: dict[str, Any]) -> None:
        self.sent.append((channel, event))


class Streams(dict):  # type: ignore[type-arg]
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Logger:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def info(self, message: str, args: Any = None) -> None:
        self.calls.append(("info", message, args))

    def warn(self, message: str, args: Any = None) -> None:
        self.calls.append(("warn", message, args))

    def error(self, message: str, args: Any = None) -> None:
        self.calls.append(("error", message, args))

    def debug(self, message: str, args: Any = None) -> None:
        self.calls.append(("debug", message, args))


def fake_ctx(trace_id: str | None, *, state: State | None = None, emitted: list[Any] | None = None,
             streams: Streams | None = None, emit_delay: float = 0.0) -> SimpleNamespace:
    """A Motia 0.x (Python) handler context."""
    out = [] if emitted is None else emitted

    async def emit(event: dict[str, Any]) -> None:
        await asyncio.sleep(emit_delay)
        out.append(event)

    return SimpleNamespace(
        trace_id=trace_id,
        state=state if state is not None else State(),
        emit=emit,
        streams=streams if streams is not None else Streams(users=Stream(), **{"email-queue": Stream()}),
        logger=Logger(),
    )


VALIDATE = {"type": "api", "name": "validate-user", "path": "/users", "method": "POST",
            "emits": ["user.validated"], "flows": ["user-registration"]}
SAVE = {"type": "event", "name": "save-user", "subscribes": ["user.validated"],
        "emits": ["user.saved"], "flows": ["user-registration"]}
SEND = {"type": "event", "name": "send-email", "subscribes": ["user.saved"], "flows": ["user-registration"]}


@instrument(VALIDATE)
async def validate_user(req: dict[str, Any], ctx: Any) -> dict[str, Any]:
    await ctx.state.get("user", "email")
    await ctx.state.set("validation", "status", "pending")
    await ctx.state.set("validation", "result", {"email": req["body"]["email"], "valid": True})
    await ctx.emit({"topic": "user.validated", "data": {"email": req["body"]["email"]}})
    return {"status": 202, "body": {"traceId": ctx.trace_id}}


@instrument(SAVE)
async def save_user(data: dict[str, Any], ctx: Any) -> str:
    validation = await ctx.state.get("validation", "result")
    await ctx.streams.users.set("all", "user-1", {"email": validation["email"]})
    await ctx.state.set("user", "saved", True)
    await ctx.emit({"topic": "user.saved", "data": {"userId": "user-1", "email": data["email"]}})
    return "saved"


@instrument(SEND)
async def send_email(data: dict[str, Any], ctx: Any) -> None:
    await ctx.state.get("user", "saved")
    await ctx.streams["email-queue"].set("outbox", "email-1", {"to": data["email"]})
    await ctx.state.set("email", "queued", True)


def test_registration_flow_is_one_trace_of_three_steps(agent: Agent) -> None:
    mid = motia_id()
    state = State(delay=0.002)
    emitted: list[Any] = []
    streams = Streams(users=Stream(delay=0.015), **{"email-queue": Stream(delay=0.015)})

    async def run() -> None:
        response = await validate_user({"body": {"email": "ada@example.com"}},
                                       fake_ctx(mid, state=state, emitted=emitted, streams=streams))
        assert response == {"status": 202, "body": {"traceId": mid}}
        event = emitted.pop(0)
        assert event["topic"] == "user.validated"
        assert await save_user(event["data"], fake_ctx(mid, state=state, emitted=emitted, streams=streams)) == "saved"
        event = emitted.pop(0)
        assert event["topic"] == "user.saved"
        assert await send_email(event["data"], fake_ctx(mid, state=state, emitted=emitted, streams=streams)) is None

    asyncio.run(run())
    # flush() only says the events were written, and the trace already reads completed after its
    # first segment: wait for all three.
    t = agent.trace(trace_id_for(mid), until=lambda t: t["status"] != "running" and len(t["segments"]) == 3)
    assert t["status"] == "completed"
    assert t["flowName"] == "user-registration"
    assert t["entryPoint"] == {"type": "api", "stepName": "validate-user"}
    assert [s["name"] for s in t["steps"]] == ["validate-user", "save-user", "send-email"]
    assert [s["entryPoint"] for s in t["segments"]] == [
        {"type": "api", "stepName": "validate-user"},
        {"type": "event", "stepName": "save-user"},
        {"type": "event", "stepName": "send-email"},
    ]
    assert t["attributes"]["motia.traceId"] == mid
    v, s, e = (step_named(t, n) for n in ("validate-user", "save-user", "send-email"))
    assert ops_of(v) == [
        ("state", "get", "user.email", None, True),
        ("state", "set", "validation.status", None, True),
        ("state", "set", "validation.result", None, True),
        ("emit", "send", "user.validated", None, True),
    ]
    assert ops_of(s) == [
        ("state", "get", "validation.result", None, True),
        ("stream", "set", "users", "user-1", True),
        ("state", "set", "user.saved", None, True),
        ("emit", "send", "user.saved", None, True),
    ]
    assert ops_of(e) == [
        ("state", "get", "user.saved", None, True),
        ("stream", "set", "email-queue", "email-1", True),
        ("state", "set", "email.queued", None, True),
    ]
    assert [st["operations"] for st in (v, s, e)] == [
        {"state": 3, "emit": 1, "stream": 0},
        {"state": 2, "emit": 1, "stream": 1},
        {"state": 2, "emit": 0, "stream": 1},
    ]
    # Timed until the coroutines completed.
    assert s["ops"][1]["duration"] >= 12, s["ops"][1]
    assert v["ops"][1]["duration"] >= 1.5, v["ops"][1]
    assert all(st["status"] == "completed" for st in (v, s, e))
    assert v["startTime"] <= s["startTime"] <= e["startTime"]


def test_sync_handler_sync_methods_and_return_value(agent: Agent) -> None:
    mid = motia_id()
    value = {"status": 200, "body": {"ok": True}}

    def handler(req: Any, ctx: Any) -> dict[str, Any]:
        ctx.state.delete("a", "b")
        ctx.state.clear("a")
        return value

    wrapped = instrument({"type": "api", "name": "sync-step", "flows": ["sync-flow"]}, handler)
    assert wrapped.__name__ == "handler"
    assert wrapped({}, fake_ctx(mid)) is value
    t = agent.trace(trace_id_for(mid))
    assert t["flowName"] == "sync-flow"
    assert ops_of(step_named(t, "sync-step")) == [
        ("state", "delete", "a.b", None, True),
        ("state", "clear", "a", None, True),
    ]


def test_raising_state_call_is_failed_and_propagates_unchanged(agent: Agent) -> None:
    mid = motia_id()

    class StoreDown(Exception):
        code = "ECONNREFUSED"

    boom = StoreDown("redis is down")
    sync_boom = KeyError("bad scope")

    class Broken(State):
        async def set(self, scope: str, key: str, value: Any) -> Any:
            await asyncio.sleep(0.003)
            raise boom

        def delete(self, scope: str, key: str) -> bool:
            raise sync_boom

    caught: list[BaseException] = []

    @instrument(SAVE)
    async def handler(data: Any, ctx: Any) -> str:
        try:
            ctx.state.delete("user", "tmp")
        except KeyError as exc:
            caught.append(exc)
        await ctx.state.set("user", "saved", True)
        return "unreachable"

    with pytest.raises(StoreDown) as info:
        asyncio.run(handler({}, fake_ctx(mid, state=Broken())))
    assert info.value is boom
    assert caught == [sync_boom] and caught[0] is sync_boom
    t = agent.trace(trace_id_for(mid))
    assert t["status"] == "failed"
    step = step_named(t, "save-user")
    assert step["status"] == "failed"
    assert step["error"]["message"] == "redis is down"
    assert step["error"]["code"] == "ECONNREFUSED"
    assert ops_of(step) == [
        ("state", "delete", "user.tmp", None, False),
        ("state", "set", "user.saved", None, False),
    ]
    assert "bad scope" in step["ops"][0]["error"]
    assert "redis is down" in step["ops"][1]["error"]
    assert step["ops"][1]["duration"] >= 2


def test_sync_handler_exception_propagates(agent: Agent) -> None:
    mid = motia_id()
    failure = ValueError("nope")

    def handler(req: Any, ctx: Any) -> None:
        raise failure

    with pytest.raises(ValueError) as info:
        instrument(VALIDATE, handler)({}, fake_ctx(mid))
    assert info.value is failure
    t = agent.trace(trace_id_for(mid))
    assert t["status"] == "failed"
    assert step_named(t, "validate-user")["error"]["type"] == "ValueError"


def test_futures_keep_their_identity_and_are_timed(agent: Agent) -> None:
    mid = motia_id()

    class FutureState(State):
        def get(self, scope: str, key: str) -> Any:  # type: ignore[override]
            return asyncio.ensure_future(asyncio.sleep(0.005, result=f"{scope}/{key}"))

    seen: list[Any] = []

    @instrument(SAVE)
    async def handler(data: Any, ctx: Any) -> Any:
        fut = ctx.state.get("a", "b")
        seen.append(isinstance(fut, asyncio.Task))
        return await fut

    assert asyncio.run(handler({}, fake_ctx(mid, state=FutureState()))) == "a/b"
    assert seen == [True]
    step = step_named(agent.trace(trace_id_for(mid)), "save-user")
    assert ops_of(step) == [("state", "get", "a.b", None, True)]
    assert step["ops"][0]["duration"] >= 4


def test_streams_ops_and_get_group(agent: Agent) -> None:
    mid = motia_id()
    users = Stream()
    queue = Stream()

    @instrument(SEND)
    async def handler(data: Any, ctx: Any) -> Any:
        await ctx.streams.users.set("g", "u-1", {"a": 1})
        got = await ctx.streams.users.get("g", "u-1")
        await ctx.streams["email-queue"].send({"groupId": "g", "id": "e-1"}, {"type": "queued"})
        await ctx.streams.users.delete("g", "u-1")
        await ctx.state.set("k", "v", 1)
        assert await ctx.state.getGroup("k") == [1]
        return got

    ctx = fake_ctx(mid, streams=Streams(users=users, **{"email-queue": queue}))
    assert asyncio.run(handler({}, ctx)) == {"a": 1, "id": "u-1"}
    assert queue.sent == [({"groupId": "g", "id": "e-1"}, {"type": "queued"})]
    assert ops_of(step_named(agent.trace(trace_id_for(mid)), "send-email")) == [
        ("stream", "set", "users", "u-1", True),
        ("stream", "get", "users", "u-1", True),
        ("stream", "send", "email-queue", "e-1", True),
        ("stream", "delete", "users", "u-1", True),
        ("state", "set", "k.v", None, True),
        ("state", "get", "k", None, True),
    ]


def test_correlate_joins_the_group_and_returns_none(agent: Agent) -> None:
    mid = motia_id()
    group = f"user-123-{mid[:8]}"

    @instrument(VALIDATE)
    async def handler(req: Any, ctx: Any) -> Any:
        return ctx.correlate(group)

    assert asyncio.run(handler({}, fake_ctx(mid))) is None
    t = agent.trace(trace_id_for(mid))
    assert t["correlationId"] == group
    assert [tr["id"] for tr in agent.group(group)["traces"]] == [trace_id_for(mid)]


def test_existing_correlate_is_kept_and_called(agent: Agent) -> None:
    mid = motia_id()
    calls: list[str] = []
    ctx = fake_ctx(mid)

    def correlate(cid: str) -> str:
        calls.append(cid)
        return "theirs"

    ctx.correlate = correlate

    def handler(req: Any, c: Any) -> Any:
        return c.correlate("order-7")

    assert instrument(VALIDATE, handler)({}, ctx) == "theirs"
    assert calls == ["order-7"]
    assert agent.trace(trace_id_for(mid))["correlationId"] == "order-7"


def test_logger_calls_become_logs_and_still_reach_the_logger(agent: Agent) -> None:
    mid = motia_id()
    ctx = fake_ctx(mid)

    @instrument(SAVE)
    async def handler(data: Any, c: Any) -> None:
        c.logger.info("saving", {"userId": "u-1"})
        c.logger.warn("slow store")
        c.logger.error("write failed", {"attempt": 2, "message": "collides with no argument"})
        c.logger.debug("raw", "not a mapping")

    asyncio.run(handler({}, ctx))
    assert ctx.logger.calls == [
        ("info", "saving", {"userId": "u-1"}),
        ("warn", "slow store", None),
        ("error", "write failed", {"attempt": 2, "message": "collides with no argument"}),
        ("debug", "raw", "not a mapping"),
    ]
    assert logs_of(step_named(agent.trace(trace_id_for(mid)), "save-user")) == [
        ("info", "saving", {"userId": "u-1"}),
        ("warn", "slow store", None),
        ("error", "write failed", {"attempt": 2, "message": "collides with no argument"}),
        ("debug", "raw", {"value": "not a mapping"}),
    ]


def test_nested_in_process_dispatch_stays_one_trace(agent: Agent) -> None:
    mid = motia_id()
    inner_ids: list[str | None] = []

    @instrument(SAVE)
    async def subscriber(data: Any, ctx: Any) -> None:
        inner_ids.append(flowscope.current_trace_id())
        await ctx.state.set("user", "saved", data["email"])

    @instrument(VALIDATE)
    async def api(req: Any, ctx: Any) -> str:
        await ctx.emit({"topic": "user.validated", "data": req["body"]})
        return "ok"

    ctx = fake_ctx(mid)

    async def emit(event: dict[str, Any]) -> None:
        await subscriber(event["data"], fake_ctx(mid))

    ctx.emit = emit
    assert asyncio.run(api({"body": {"email": "b@c.d"}}, ctx)) == "ok"
    assert inner_ids == [trace_id_for(mid)]
    t = agent.trace(trace_id_for(mid))
    assert [s["name"] for s in t["steps"]] == ["validate-user", "save-user"]
    assert "parentTraceId" not in t
    assert "parentId" not in step_named(t, "save-user")
    assert ops_of(step_named(t, "save-user")) == [("state", "set", "user.saved", None, True)]
    assert ops_of(step_named(t, "validate-user")) == [("emit", "send", "user.validated", None, True)]


def test_mapping_context_traceId_spelling_and_cron_handler(agent: Agent) -> None:
    mid = motia_id()
    state = State()

    @instrument({"type": "cron", "name": "nightly", "cron": "0 0 * * *", "flows": ["cleanup"]})
    def nightly(ctx: Any) -> Any:
        ctx.state.clear("sessions")
        return ctx["traceId"], callable(ctx.correlate)

    assert nightly({"traceId": mid, "state": state}) == (mid, True)
    t = agent.trace(trace_id_for(mid))
    assert t["entryPoint"] == {"type": "cron", "stepName": "nightly"}
    assert ops_of(step_named(t, "nightly")) == [("state", "clear", "sessions", None, True)]


def test_without_trace_id_a_fresh_trace(agent: Agent) -> None:
    ids: list[str | None] = []

    def handler(req: Any, ctx: Any) -> None:
        ids.append(flowscope.current_trace_id())

    instrument(VALIDATE, handler)({}, fake_ctx(None))
    assert ids[0] is not None and len(ids[0]) == 32
    t = agent.trace(ids[0])
    assert [s["name"] for s in t["steps"]] == ["validate-user"]


def _motia_module() -> tuple[SimpleNamespace, dict[str, list[Any]]]:
    calls: dict[str, list[Any]] = {"enqueued": [], "logged": []}
    store: dict[str, Any] = {}

    class StateManager:
        async def get(self, scope: str, key: str) -> Any:
            await asyncio.sleep(0.001)
            return store.get(f"{scope}.{key}")

        async def set(self, scope: str, key: str, value: Any) -> dict[str, Any]:
            store[f"{scope}.{key}"] = value
            return {"new_value": value, "old_value": None}

        async def delete(self, scope: str, key: str) -> None:
            store.pop(f"{scope}.{key}", None)

        async def clear(self, scope: str) -> None:
            if scope == "locked":
                raise RuntimeError("group locked")

        async def getGroup(self, scope: str) -> list[Any]:  # noqa: N802
            return list(store.values())

    async def enqueue(event: dict[str, Any]) -> None:
        calls["enqueued"].append(event)

    def log_at(level: str) -> Any:
        return lambda m, a=None: calls["logged"].append((level, m, a))

    logger = SimpleNamespace(**{lv: log_at(lv) for lv in ("info", "warn", "error", "debug")})
    return SimpleNamespace(stateManager=StateManager(), enqueue=enqueue, logger=logger), calls


def test_instrument_motia_1x(agent: Agent) -> None:
    mod, calls = _motia_module()
    original = mod.stateManager.get
    assert instrument_motia(mod) is mod
    wrapped = mod.stateManager.get
    assert wrapped != original
    instrument_motia(mod)
    assert mod.stateManager.get is wrapped  # idempotent

    @instrument({"name": "validate-user", "flows": ["user-registration-1x"],
                 "triggers": [{"type": "http", "method": "POST", "path": "/users"}]})
    async def http(req: Any, ctx: Any) -> dict[str, Any]:
        await mod.stateManager.get("user", "email")
        await mod.stateManager.set("validation", "result", {"valid": True})
        mod.logger.info("validated", {"email": req["body"]["email"]})
        await mod.enqueue({"topic": "user.validated", "data": req["body"]})
        return {"status": 202}

    @instrument({"name": "save-user", "flows": ["user-registration-1x"],
                 "triggers": [{"type": "queue", "topic": "user.validated"}]})
    async def queue(data: Any, ctx: Any) -> None:
        await mod.stateManager.getGroup("validation")
        await mod.stateManager.delete("validation", "result")
        try:
            await mod.stateManager.clear("locked")
        except RuntimeError:
            pass
        mod.logger.warn("saved late")
        await mod.enqueue({"topic": "user.saved", "data": {}})

    mid = motia_id()

    async def run() -> None:
        assert await http({"body": {"email": "x@y.z"}}, SimpleNamespace(trace_id=mid)) == {"status": 202}
        await queue(calls["enqueued"][0]["data"],
                    SimpleNamespace(trace_id=mid, trigger={"type": "queue"}))

    asyncio.run(run())
    assert [e["topic"] for e in calls["enqueued"]] == ["user.validated", "user.saved"]
    assert [lv for lv, _, _ in calls["logged"]] == ["info", "warn"]
    # Both segments stored (the first alone already reads completed).
    t = agent.trace(trace_id_for(mid), until=lambda t: t["status"] != "running" and len(t["segments"]) == 2)
    assert t["flowName"] == "user-registration-1x"
    assert t["entryPoint"] == {"type": "api", "stepName": "validate-user"}
    assert [s["entryPoint"]["type"] for s in t["segments"]] == ["api", "event"]
    assert ops_of(step_named(t, "validate-user")) == [
        ("state", "get", "user.email", None, True),
        ("state", "set", "validation.result", None, True),
        ("emit", "send", "user.validated", None, True),
    ]
    assert ops_of(step_named(t, "save-user")) == [
        ("state", "get", "validation", None, True),
        ("state", "delete", "validation.result", None, True),
        ("state", "clear", "locked", None, False),
        ("emit", "send", "user.saved", None, True),
    ]
    assert [(lv, m) for lv, m, _ in logs_of(step_named(t, "validate-user"))] == [("info", "validated")]
    assert [(lv, m) for lv, m, _ in logs_of(step_named(t, "save-user"))] == [("warn", "saved late")]


def test_ctx_sharing_wrapped_module_objects_records_once(agent: Agent) -> None:
    mod, _ = _motia_module()
    instrument_motia(mod)
    mid = motia_id()

    @instrument({"name": "both", "triggers": [{"type": "cron", "expression": "* * * * *"}]})
    async def handler(data: Any, ctx: Any) -> None:
        await ctx.state.set("a", "b", 1)
        await ctx.enqueue({"topic": "t"})
        ctx.logger.info("once")

    ctx = SimpleNamespace(trace_id=mid, state=mod.stateManager, enqueue=mod.enqueue, logger=mod.logger)
    asyncio.run(handler(None, ctx))
    t = agent.trace(trace_id_for(mid))
    assert t["entryPoint"] == {"type": "cron", "stepName": "both"}
    assert t["flowName"] == "both"
    step = step_named(t, "both")
    assert ops_of(step) == [("state", "set", "a.b", None, True), ("emit", "send", "t", None, True)]
    assert len(logs_of(step)) == 1


def test_outside_a_trace_the_wrapped_module_just_delegates(agent: Agent) -> None:
    mod, calls = _motia_module()
    instrument_motia(mod)
    assert flowscope.current_span() is None

    async def run() -> None:
        assert await mod.stateManager.set("a", "b", 3) == {"new_value": 3, "old_value": None}
        assert await mod.stateManager.get("a", "b") == 3
        with pytest.raises(RuntimeError, match="group locked"):
            await mod.stateManager.clear("locked")
        await mod.enqueue({"topic": "x"})

    asyncio.run(run())
    mod.logger.error("plain")
    assert calls["enqueued"] == [{"topic": "x"}]
    assert calls["logged"] == [("error", "plain", None)]


def test_trace_id_mapping_is_deterministic_and_matches_node() -> None:
    a = motia_id()
    assert trace_id_for(a) == trace_id_for(a)
    assert trace_id_for(a) != trace_id_for(motia_id())
    assert len(trace_id_for(a)) == 32 and int(trace_id_for(a), 16) != 0
    assert trace_id_for(a) == trace_id_for(a).lower()
    # The Node adapter's traceIdFor('trace-abc123') (sdk-node/test/motia.test.js).
    assert trace_id_for("trace-abc123") == "474bb88df9ca079cbc3cfdb25c4e3bbc"


def test_entry_types() -> None:
    assert entry_for({"type": "api"}) == "api"
    assert entry_for({"type": "event"}) == "event"
    assert entry_for({"type": "cron"}) == "cron"
    assert entry_for({"triggers": [{"type": "http"}]}) == "api"
    for t in ("queue", "state", "stream"):
        assert entry_for({"triggers": [{"type": t}]}) == "event"
    assert entry_for({"triggers": [{"type": "cron"}]}) == "cron"
    multi = {"triggers": [{"type": "http"}, {"type": "queue"}, {"type": "cron"}]}
    assert entry_for(multi) == "api"
    assert entry_for(multi, SimpleNamespace(trigger={"type": "cron"})) == "cron"
    assert entry_for(multi, {"trigger": {"type": "queue"}}) == "event"
    assert entry_for({}) == "event"


def test_disabled_everything_works_and_nothing_is_sent(agent: Agent) -> None:
    code = """
import asyncio, json
from types import SimpleNamespace
import flowscope
from flowscope.motia import instrument, instrument_motia

async def get(scope, key):
    return 1
def set_(scope, key, value):
    raise RuntimeError("ro")
async def mget(scope, key):
    return "v"
mod = instrument_motia(
    SimpleNamespace(stateManager=SimpleNamespace(get=mget), logger=SimpleNamespace(info=lambda m, a=None: "logged"))
)
seen = []

@instrument({"type": "api", "name": "off", "flows": ["off"]})
async def handler(req, ctx):
    seen.append(await ctx.state.get("a", "b"))
    seen.append(ctx.correlate("g"))
    seen.append(await mod.stateManager.get("x", "y"))
    seen.append(mod.logger.info("m"))
    try:
        ctx.state.set("a", "b", 1)
    except RuntimeError as exc:
        seen.append(str(exc))
    return req["n"] + 1

r = asyncio.run(handler({"n": 1}, SimpleNamespace(trace_id="run-1", state=SimpleNamespace(get=get, set=set_))))
print(json.dumps({"r": r, "seen": seen, "stats": flowscope.stats()}))
"""
    proc = run_python(code, child_env(agent, FLOWSCOPE_DISABLED="1"))
    assert proc.returncode == 0, proc.stderr
    import json

    out = json.loads(proc.stdout)
    assert out["r"] == 2
    assert out["seen"] == [1, None, "v", "logged", "ro"]
    assert out["stats"]["enqueued"] == 0
    assert agent.get(f"/api/traces/{trace_id_for('run-1')}") is None


def test_example_registration_py_runs_end_to_end(agent: Agent) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=child_env(agent),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert proc.stdout.count("flowscope trace ") == 1
    motia = next(line for line in proc.stdout.splitlines() if line.startswith("motia trace ")).split()[-1]
    fid = next(line for line in proc.stdout.splitlines() if line.startswith("flowscope trace ")).split()[-1]
    assert fid == trace_id_for(motia)
    assert lines["response"].startswith("202 ")
    t = agent.trace(fid, until=lambda t: t.get("status") != "running" and len(t["steps"]) == 3)
    assert t["status"] == "completed"
    assert t["service"] == "motia-registration-py"
    assert t["flowName"] == "user-registration"
    assert t["entryPoint"] == {"type": "api", "stepName": "validate-user"}
    assert t["correlationId"] == "user-ada"
    assert [(s["name"], s["status"]) for s in t["steps"]] == [
        ("validate-user", "completed"),
        ("save-user", "completed"),
        ("send-email", "completed"),
    ]
    assert [s["operations"] for s in t["steps"]] == [
        {"state": 3, "emit": 1, "stream": 0},
        {"state": 2, "emit": 1, "stream": 1},
        {"state": 2, "emit": 0, "stream": 1},
    ]
