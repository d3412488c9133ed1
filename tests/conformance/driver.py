"""Conformance driver for the Python SDK: runs scenario.json against the agent at
FLOWSCOPE_SOCKET and prints the trace ids it produced, one JSON list on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

import flowscope


def fail(error: dict[str, str]) -> None:
    kind = type(error["type"], (Exception,), {})
    raise kind(error["message"])


def run(action: dict[str, Any]) -> None:
    if "step" in action:
        with flowscope.step(action["step"]):
            if "error" in action:
                fail(action["error"])
            for inner in action.get("body", []):
                run(inner)
    elif "op" in action:
        op = action["op"]
        failed = action.get("failed")
        if failed is not None:
            # The timed form, with a failure: the exception marks the op failed and propagates.
            kind = {"state_get": ("state", "get", action.get("key"))}[op]
            try:
                with flowscope.op(*kind):
                    name, _, message = failed.partition(": ")
                    raise type(name, (Exception,), {})(message)
            except Exception:
                pass
        elif op in ("state_get", "state_set", "state_delete"):
            getattr(flowscope, op)(action["key"])
        elif op == "state_clear":
            flowscope.state_clear()
        elif op == "emit":
            flowscope.emit(action["topic"], to=action.get("to"))
        else:
            getattr(flowscope, op)(action["stream"], action.get("id"))
    elif "log" in action:
        flowscope.log(action["log"], action["message"], **(action.get("fields") or {}))
    elif "llm" in action:
        c = action["llm"]
        flowscope.llm(
            c["model"],
            provider=c.get("provider"),
            prompt=c.get("prompt"),
            response=c.get("response"),
            input_tokens=c.get("inputTokens"),
            output_tokens=c.get("outputTokens"),
            cost=c.get("cost"),
        )
    elif "retry" in action:
        r = action["retry"]
        flowscope.retry(r["attempt"], reason=r.get("reason"), backoff_ms=r.get("backoffMs"))
    elif "checkpoint" in action:
        flowscope.checkpoint(action["checkpoint"])
    elif "transition" in action:
        t = action["transition"]
        flowscope.transition(t["from"], t["to"], t.get("action"))
    elif "artifact" in action:
        a = action["artifact"]
        flowscope.artifact(a["name"], url=a.get("url"), mime=a.get("mime"), size=a.get("size"))
    elif "custom" in action:
        flowscope.custom(action["custom"]["name"], action["custom"].get("payload"))
    elif "http" in action:
        h = action["http"]
        with flowscope.client_call(h["method"], h["url"]):
            flowscope.set_client_status(h["status"])
    else:
        raise ValueError(f"unknown action {action}")


def serve_once(spec: dict[str, Any]) -> str:
    """Answers one request through the WSGI middleware; returns the trace id it recorded (from
    the ``traceparent`` response header)."""
    import threading
    import urllib.error
    import urllib.request
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from flowscope.integrations import FlowscopeWSGIMiddleware

    status = spec["status"]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(f"{status} Unavailable", [("content-type", "text/plain")])
        return [b"down"]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, FlowscopeWSGIMiddleware(app), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}{spec['path']}?{spec['query']}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=spec["method"])) as response:
            headers = response.headers
    except urllib.error.HTTPError as err:
        headers = err.headers
    server.shutdown()
    return str(headers["traceparent"]).split("-")[1]


def main() -> None:
    scenario = json.load(open(sys.argv[1]))
    flowscope.init(service="conformance")
    ids = []
    for spec in scenario["traces"]:
        try:
            with flowscope.trace(
                spec["flow"],
                entry=spec.get("entry", "api"),
                step=spec.get("step"),
                correlation_id=spec.get("correlationId"),
                attributes=spec.get("attributes"),
            ) as run_:
                ids.append(run_.trace_id)
                for action in spec["body"]:
                    run(action)
        except Exception:
            pass
    server = serve_once(scenario["server"])
    assert flowscope.flush(10.0), flowscope.stats()
    print(json.dumps({"traces": ids, "server": server}))


if __name__ == "__main__":
    main()
