"""A small ASGI chat service instrumented with flowscope.

Every message posted to a thread is one trace (flow ``chat``, entry ``api``); the traces of one
thread are correlated into one group (correlation id = thread id), so the agent shows the whole
conversation as a "Chat Thread" with its gaps. The reply comes from a fake, deterministic model
so the example needs no network and no key.

    pip install ./sdk-python uvicorn
    python examples/python/chat_service.py --port 8000      # FLOWSCOPE_SOCKET picks the agent
    curl -XPOST localhost:8000/threads/t-1/messages -d '{"text": "hello"}'

Routes: ``POST /threads/{id}/messages`` ``{"text": …}`` → ``{"reply", "traceId", "thread"}``;
``GET /threads/{id}`` → the thread's messages; ``GET /healthz`` (not traced). A message whose
text is ``"boom"`` makes the model fail (HTTP 500, failed step and trace). A message carrying
``"relay": URL`` forwards the text to another service with an instrumented ``httpx`` client,
so the call carries ``traceparent`` and the thread's ``X-Motia-Correlation-Id``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from typing import Any, Awaitable, Callable

import flowscope
from flowscope.integrations import FlowscopeASGIMiddleware

Send = Callable[[dict], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]

# In-memory state: thread id -> list of {"role", "text"}.
THREADS: dict[str, list[dict[str, str]]] = {}


class ModelError(RuntimeError):
    code = "E_MODEL"


def fake_model(history: list[dict[str, str]], text: str) -> str:
    if text == "boom":
        raise ModelError("the model refused to answer")
    return f"echo #{len(history) // 2 + 1}: {text}"


async def post_message(thread: str, body: dict[str, Any]) -> dict[str, Any]:
    text = str(body.get("text", ""))
    flowscope.correlate(thread, name="Chat Thread")
    with flowscope.step("load-history"):
        with flowscope.op("state", "get", f"threads.{thread}"):
            history = list(THREADS.get(thread, []))
        flowscope.log("history loaded", messages=len(history))
    with flowscope.step("generate-reply"):
        started = time.perf_counter()
        await asyncio.sleep(0.002)  # the "model" thinking
        reply = fake_model(history, text)
        flowscope.llm(
            "fake-echo-1",
            provider="example",
            prompt=history + [{"role": "user", "content": text}],
            response=reply,
            input_tokens=len(text.split()),
            output_tokens=len(reply.split()),
            cost=0.0,
            duration=time.perf_counter() - started,
        )
    relayed = None
    if body.get("relay"):
        relayed = await relay(str(body["relay"]), thread, text)
    with flowscope.step("store-message"):
        with flowscope.op("state", "set", f"threads.{thread}"):
            THREADS.setdefault(thread, []).extend(
                [{"role": "user", "text": text}, {"role": "assistant", "text": reply}]
            )
        flowscope.emit("chat.message.created", to="notify")
    out: dict[str, Any] = {"reply": reply, "thread": thread, "traceId": flowscope.current_trace_id()}
    if relayed is not None:
        out["relayed"] = relayed
    return out


async def relay(url: str, thread: str, text: str) -> Any:
    import httpx

    from flowscope.integrations import httpx as fs_httpx

    with flowscope.step("relay"):
        async with fs_httpx.instrument(httpx.AsyncClient(timeout=10)) as client:
            response = await client.post(url, json={"text": text, "thread": thread})
        return {"status": response.status_code, "headers": dict(response.headers)}


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def chat_app(scope: dict, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                flowscope.flush(2.0)
                await send({"type": "lifespan.shutdown.complete"})
                return
    parts = [p for p in scope["path"].split("/") if p]
    method = scope["method"]
    if parts == ["healthz"]:
        await respond(send, 200, {"ok": True})
    elif method == "POST" and len(parts) == 3 and parts[0] == "threads" and parts[2] == "messages":
        try:
            body = json.loads(await read_body(receive) or b"{}")
            await respond(send, 200, await post_message(parts[1], body))
        except ModelError as exc:
            await respond(send, 500, {"error": str(exc)})
    elif method == "GET" and len(parts) == 2 and parts[0] == "threads":
        with flowscope.op("state", "get", f"threads.{parts[1]}"):
            messages = THREADS.get(parts[1], [])
        await respond(send, 200, {"thread": parts[1], "messages": messages})
    else:
        await respond(send, 404, {"error": "not found"})


def step_name(method: str, path: str) -> str:
    """Keeps step names low-cardinality: ``POST /threads/{id}/messages``."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "threads":
        parts[2] = "{id}"
    return f"{method} {'/'.join(parts)}"


app = FlowscopeASGIMiddleware(chat_app, flow="chat", step=step_name, exclude_paths=("/healthz",))


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--service", default="chat-service")
    args = parser.parse_args(argv)

    flowscope.init(service=args.service)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    print(f"chat_service listening http://{host}:{port}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
