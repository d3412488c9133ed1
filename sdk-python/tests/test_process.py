"""Process-level behaviour, each in a fresh interpreter: fork, FLOWSCOPE_DISABLED, no agent,
an agent that appears late."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
from conftest import Agent, child_env, run_python, start_agent, stop_agent

FORK_SCRIPT = r"""
import json, os, sys
import flowscope

flowscope.init(service="fork-test")
out = {}
with flowscope.trace(sys.argv[1] if len(sys.argv) > 1 else "fork-parent") as before:
    with flowscope.step("before-fork"):
        pass
assert flowscope.flush(5)
out["before"] = before.trace_id

r, w = os.pipe()
with flowscope.trace("fork-shared") as shared:
    with flowscope.step("in-parent"):
        pid = os.fork()
        if pid == 0:  # child
            os.close(r)
            res = {}
            try:
                # The trace current at fork time continues in the child.
                with flowscope.step("in-child"):
                    flowscope.log("from the child")
                with flowscope.trace("fork-child") as child:
                    with flowscope.step("child-step"):
                        flowscope.state_set("k")
                res["child"] = child.trace_id
                res["flushed"] = flowscope.flush(5)
                res["stats"] = flowscope.stats()
                res["pid"] = os.getpid()
            except BaseException as exc:
                res["error"] = repr(exc)
            os.write(w, json.dumps(res).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.waitpid(pid, 0)
out["shared"] = shared.trace_id
out["child"] = json.loads(data)
with flowscope.trace("fork-after") as after:
    pass
out["after"] = after.trace_id
out["flushed"] = flowscope.flush(5)
print(json.dumps(out))
"""


def test_fork_child_gets_a_working_client(agent: Agent) -> None:
    proc = run_python(FORK_SCRIPT, child_env(agent))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    child = out["child"]
    assert "error" not in child, child
    assert child["flushed"] is True
    assert child["stats"]["sent"] >= 4 and child["stats"]["errors"] == 0
    assert out["flushed"] is True
    ids = [out["before"], out["shared"], child["child"], out["after"]]
    assert len(set(ids)) == 4, ids  # the child's id generator was reseeded

    c = agent.trace(child["child"])
    assert c["flowName"] == "fork-child" and c["status"] == "completed"
    assert c["steps"][0]["ops"][0]["key"] == "k"
    s = agent.trace(out["shared"], until=lambda t: len(t["steps"]) == 2)
    names = {st["name"]: st for st in s["steps"]}
    assert names["in-child"]["parentId"] == names["in-parent"]["id"]
    assert names["in-child"]["events"][0]["message"] == "from the child"
    assert agent.trace(out["after"])["status"] == "completed"


def test_multiprocessing_fork_workers(agent: Agent) -> None:
    code = r"""
import json, multiprocessing as mp
import flowscope

def work(i):
    with flowscope.trace("mp-worker") as t:
        with flowscope.step(f"w{i}"):
            pass
    return t.trace_id, flowscope.flush(5)

if __name__ == "__main__":
    flowscope.init(service="mp-test")
    with flowscope.trace("mp-parent"):
        pass
    with mp.get_context("fork").Pool(2) as pool:
        print(json.dumps(pool.map(work, range(4))))
"""
    proc = run_python(code, child_env(agent))
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(flushed for _, flushed in results)
    assert len({tid for tid, _ in results}) == 4
    for tid, _ in results:
        assert agent.trace(tid)["flowName"] == "mp-worker"


EVERYTHING = r"""
import asyncio, sys, time
import flowscope
from flowscope.integrations import FlowscopeASGIMiddleware, FlowscopeWSGIMiddleware

flowscope.init(service="quiet")

@flowscope.step("deco")
def deco():
    return 1

@flowscope.trace("deco-trace")
async def adeco():
    return 2

def run_all():
    with flowscope.trace("t", correlation_id="c", headers={"traceparent": "x"}) as t:
        with flowscope.step("s") as s:
            with flowscope.op("state", "get", "k"):
                pass
            flowscope.emit("topic")
            flowscope.op("state", "set", "k").record(duration=0.1)
            flowscope.log("m", a=1)
            flowscope.llm("m", prompt="p")
            flowscope.artifact("a")
            flowscope.retry(1)
            flowscope.checkpoint("c")
            flowscope.transition("a", "b")
            flowscope.custom("c", {"x": 1})
            flowscope.correlate("c2")
            flowscope.inject({})
            s.set_error("x")
            assert deco() == 1
    assert asyncio.run(adeco()) == 2
    return t

async def asgi_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

async def call_asgi():
    sent = []
    async def receive():
        return {"type": "http.request", "body": b""}
    async def send(m):
        sent.append(m)
    await FlowscopeASGIMiddleware(asgi_app)(
        {"type": "http", "method": "GET", "path": "/", "headers": [(b"traceparent", b"zz")]},
        receive, send)
    return sent

def wsgi_app(environ, start_response):
    start_response("200 OK", [])
    return [b"ok"]

def call_wsgi():
    got = []
    body = FlowscopeWSGIMiddleware(wsgi_app)(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda s, h, e=None: got.append(h))
    out = b"".join(body)
    getattr(body, "close", lambda: None)()
    return got, out
"""


def test_disabled_mode_is_a_pure_python_no_op(agent: Agent) -> None:
    flow = f"disabled-{uuid.uuid4().hex[:8]}"
    code = EVERYTHING.replace('"t"', repr(flow)) + r"""
t = run_all()
sent = asyncio.run(call_asgi())
headers, body = call_wsgi()
assert t.trace_id is None and flowscope.current_span() is None
assert deco.__name__ == "deco"
assert sent[0]["headers"] == [] and headers == [[]] and body == b"ok"
assert flowscope.flush() is True
stats = flowscope.stats()
assert stats["enqueued"] == 0 and stats["errors"] == 0, stats
assert "flowscope._native" not in sys.modules, "native module loaded in disabled mode"
n = 100_000
start = time.perf_counter()
for _ in range(n):
    with flowscope.trace("x"):
        with flowscope.step("y"):
            with flowscope.op("state", "get", "k"):
                flowscope.log("m")
per_iter = (time.perf_counter() - start) / n * 1e9
print(f"disabled trace+step+op+log: {per_iter:.0f} ns")
assert per_iter < 20_000
"""
    proc = run_python(code, child_env(agent, FLOWSCOPE_DISABLED="1"))
    assert proc.returncode == 0, proc.stderr
    assert "disabled trace+step+op+log" in proc.stdout
    time.sleep(0.2)
    assert agent.traces(flow=flow) == []


def test_no_agent_never_raises_and_exits_promptly() -> None:
    code = EVERYTHING + r"""
start = time.monotonic()
for _ in range(3):
    run_all()
sent = asyncio.run(call_asgi())
headers, body = call_wsgi()
assert body == b"ok"
names = [k for k, _ in sent[0]["headers"]]
assert b"traceparent" in names, names
assert flowscope.flush(0.2) is False  # nothing can be delivered
stats = flowscope.stats()
assert stats["connected"] is False and stats["sent"] == 0 and stats["enqueued"] > 40, stats
assert stats["errors"] == 0, stats
print("elapsed", time.monotonic() - start)
"""
    with tempfile.TemporaryDirectory(prefix="fs-none-") as d:
        env = child_env(None, FLOWSCOPE_SOCKET=os.path.join(d, "missing.sock"))
        started = time.monotonic()
        proc = run_python(code, env)
        took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert took < 5, f"the process took {took:.1f}s to run and exit without an agent"


def test_small_queue_drops_instead_of_blocking() -> None:
    code = r"""
import time, flowscope
flowscope.init(service="drop", queue_capacity=16)
start = time.perf_counter()
with flowscope.trace("drop"):
    for i in range(10_000):
        flowscope.log("x")
took = time.perf_counter() - start
s = flowscope.stats()
assert s["dropped"] > 9_000 and s["errors"] == 0, s
assert took < 2, took
"""
    with tempfile.TemporaryDirectory(prefix="fs-drop-") as d:
        proc = run_python(code, child_env(None, FLOWSCOPE_SOCKET=os.path.join(d, "none.sock")))
    assert proc.returncode == 0, proc.stderr


def test_events_queued_before_the_agent_starts_are_delivered() -> None:
    with tempfile.TemporaryDirectory(prefix="fs-late-") as d:
        sock = os.path.join(d, "late.sock")
        code = r"""
import sys, time, flowscope
with flowscope.trace("late-flow") as t:
    with flowscope.step("early"):
        flowscope.log("queued while no agent listens")
print(t.trace_id, flush=True)
sys.stdin.readline()  # the test starts the agent, then says go
print("flushed", flowscope.flush(10), flush=True)
"""
        import subprocess
        import sys

        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=child_env(None, FLOWSCOPE_SOCKET=sock),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        agent = None
        try:
            trace_id = proc.stdout.readline().strip()
            time.sleep(0.3)  # the writer is retrying with backoff meanwhile
            agent = start_agent(d, sock)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "flushed True"
            assert proc.wait(10) == 0
            t = agent.trace(trace_id)
            assert t["flowName"] == "late-flow"
            assert t["steps"][0]["events"][0]["message"] == "queued while no agent listens"
        finally:
            if proc.poll() is None:
                proc.kill()
            if agent is not None:
                stop_agent(agent)


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_disabled_flag_values(value: str) -> None:
    proc = run_python(
        "import flowscope, sys\n"
        "with flowscope.trace('x') as t: pass\n"
        "assert t.trace_id is None and 'flowscope._native' not in sys.modules\n",
        child_env(None, FLOWSCOPE_DISABLED=value),
    )
    assert proc.returncode == 0, proc.stderr


def test_redaction_happens_before_events_leave_the_process(agent: Agent) -> None:
    code = f"""
import flowscope
flowscope.init(
    "redacting",
    socket={agent.socket!r},
    redact=["password,api_key", "re:sk-[a-z0-9]{{8,}}"],
    hide_llm_content=True,
)
with flowscope.trace("redaction-py", attributes={{"api_key": "k-123", "user": "ann"}}) as tr:
    with flowscope.step("s"):
        flowscope.log("using sk-abcdefgh12", password="hunter2", note="fine")
        flowscope.llm("m-1", prompt="secret prompt", response="secret answer",
                      input_tokens=1, output_tokens=2)
assert flowscope.flush(5.0)
print(tr.trace_id)
"""
    done = run_python(code, child_env(agent))
    assert done.returncode == 0, done.stderr
    trace = agent.trace(done.stdout.strip())
    text = json.dumps(trace)
    for secret in ("hunter2", "sk-abcdefgh12", "secret prompt", "secret answer", "k-123"):
        assert secret not in text, secret
    step = trace["steps"][0]
    log = next(e for e in step["events"] if e["type"] == "log")
    assert log["message"] == "using [redacted]"
    assert log["fields"]["password"] == "[redacted]" and log["fields"]["note"] == "fine"
    llm = next(e for e in step["events"] if e["type"] == "llm")
    assert (llm["model"], llm["totalTokens"], llm["prompt"]) == ("m-1", 3, "[redacted]")
    assert trace["attributes"]["user"] == "ann"


def test_an_invalid_redact_pattern_raises_value_error() -> None:
    done = run_python(
        "import flowscope\n"
        "try:\n"
        "    flowscope.init('x', socket='/nonexistent/x.sock', redact=['re:('])\n"
        "except ValueError as e:\n"
        "    print('refused:', e)\n",
        child_env(None),
    )
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "not a valid regular expression" in done.stdout


BURST_SCRIPT = """
import json, sys
import flowscope
flowscope.init(service="py-burst", queue_bytes=16384, overflow=sys.argv[1])
with flowscope.trace("burst") as run:
    with flowscope.step("hot-loop"):
        for i in range(20000):
            flowscope.state_set(f"key-{i}")
flowscope.flush(30.0)
print(json.dumps({"trace": run.trace_id, "dropped": flowscope.stats()["dropped"]}))
"""


@pytest.mark.parametrize("overflow", ["drop", "block"])
def test_a_full_queue_drops_per_trace_or_blocks(agent: Agent, overflow: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BURST_SCRIPT, overflow],
        env=child_env(agent),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    if overflow == "drop":
        # A 16 KiB queue cannot hold a tight loop: drops are counted and the trace says so.
        assert out["dropped"] > 0
        t = agent.trace(out["trace"], until=lambda t: t.get("droppedEvents") == out["dropped"])
        assert t["incomplete"] is True
    else:
        assert out["dropped"] == 0
        t = agent.trace(out["trace"])
        assert t["steps"][0]["operations"]["state"] == 20000
        assert "incomplete" not in t


def test_an_unknown_overflow_mode_is_a_value_error(agent: Agent) -> None:
    code = """
import flowscope
try:
    flowscope.init(service="x", overflow="wait")
except ValueError as exc:
    print("ValueError:", exc)
"""
    proc = run_python(code, child_env(agent))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ValueError: overflow must be"), proc.stdout
