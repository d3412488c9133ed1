"""The user-registration flow of the Motia observability RFC, as three Motia-style Python steps
instrumented with ``flowscope.motia``:

    validate-user (api, POST /users) --user.validated--> save-user (event) --user.saved--> send-email (event)

A tiny in-memory stand-in for the Motia runtime runs one flow run end to end: a state store, two
streams (users, email-queue), a logger, and an emit that queues the event and dispatches it to the
subscribed step with the same ``ctx.trace_id`` after the emitting step returned (as Motia does).
The three handler invocations report into ONE flowscope trace (its id is derived from the Motia
trace id, exactly as the Node adapter does), which this script prints.

    cargo run -p flowscope-agent &                 # the agent, http://127.0.0.1:4319
    python examples/motia/registration.py [email]
    curl -s localhost:4319/api/traces/<printed id>

Environment: FLOWSCOPE_SOCKET (the agent socket), FLOWSCOPE_DISABLED.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import flowscope
from flowscope.motia import instrument, trace_id_for

flowscope.init(service="motia-registration-py")

# ---------------------------------------------------------------------------------------------
# The steps (in a Motia project: one ``*_step.py`` file each, with ``config`` and ``handler``)

validate_user_config = {
    "type": "api",
    "name": "validate-user",
    "path": "/users",
    "method": "POST",
    "emits": ["user.validated"],
    "flows": ["user-registration"],
}


@instrument(validate_user_config)
async def validate_user(req: dict[str, Any], ctx: Any) -> dict[str, Any]:
    email, name = req["body"].get("email"), req["body"].get("name")
    if await ctx.state.get("user", "email") == email:
        return {"status": 409, "body": {"error": "already registered"}}
    await ctx.state.set("validation", "status", "pending")
    valid = isinstance(email, str) and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) is not None
    await ctx.state.set("validation", "result", {"email": email, "name": name, "valid": valid})
    if not valid:
        ctx.logger.warn("invalid email", {"email": email})
        return {"status": 400, "body": {"error": "invalid email"}}
    ctx.logger.info("user validated", {"email": email})
    await ctx.emit({"topic": "user.validated", "data": {"email": email, "name": name}})
    return {"status": 202, "body": {"traceId": ctx.trace_id}}


save_user_config = {
    "type": "event",
    "name": "save-user",
    "subscribes": ["user.validated"],
    "emits": ["user.saved"],
    "flows": ["user-registration"],
}


@instrument(save_user_config)
async def save_user(data: dict[str, Any], ctx: Any) -> None:
    validation = await ctx.state.get("validation", "result")
    if not validation or not validation["valid"]:
        raise RuntimeError("user.validated without a valid validation result")
    user_id = "user-" + validation["email"].split("@")[0]
    ctx.correlate(user_id)  # the trace joins the group of this user
    await ctx.streams.users.set("all", user_id, {"id": user_id, "email": data["email"]})
    await ctx.state.set("user", "saved", True)
    ctx.logger.info("user saved", {"userId": user_id})
    await ctx.emit({"topic": "user.saved", "data": {"userId": user_id, "email": data["email"]}})


send_email_config = {
    "type": "event",
    "name": "send-email",
    "subscribes": ["user.saved"],
    "emits": [],
    "flows": ["user-registration"],
}


@instrument(send_email_config)
async def send_email(data: dict[str, Any], ctx: Any) -> None:
    if not await ctx.state.get("user", "saved"):
        raise RuntimeError("user.saved before the user was saved")
    email_id = f"welcome-{data['userId']}"
    await ctx.streams["email-queue"].set("outbox", email_id, {"to": data["email"]})
    await ctx.state.set("email", "queued", True)
    ctx.logger.info("welcome email queued", {"emailId": email_id})


STEPS: list[tuple[dict[str, Any], Callable[..., Awaitable[Any]]]] = [
    (validate_user_config, validate_user),
    (save_user_config, save_user),
    (send_email_config, send_email),
]

# ---------------------------------------------------------------------------------------------
# An in-memory stand-in for the Motia runtime


class State:
    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Any]] = {}

    async def get(self, scope: str, key: str) -> Any:
        await asyncio.sleep(0.001)
        return self.groups.get(scope, {}).get(key)

    async def set(self, scope: str, key: str, value: Any) -> Any:
        await asyncio.sleep(0.001)
        self.groups.setdefault(scope, {})[key] = value
        return value

    async def delete(self, scope: str, key: str) -> Any:
        return self.groups.get(scope, {}).pop(key, None)

    async def clear(self, scope: str) -> None:
        self.groups.pop(scope, None)

    async def get_group(self, scope: str) -> list[Any]:
        return list(self.groups.get(scope, {}).values())


class Stream:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.items: dict[tuple[str, str], Any] = {}

    async def get(self, group_id: str, id: str) -> Any:
        return self.items.get((group_id, id))

    async def set(self, group_id: str, id: str, data: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(self.latency)  # a remote store
        item = {**data, "id": id}
        self.items[(group_id, id)] = item
        return item

    async def delete(self, group_id: str, id: str) -> Any:
        return self.items.pop((group_id, id), None)


class Logger:
    def __init__(self, step: str) -> None:
        self.step = step

    def _print(self, level: str, message: str, data: Any = None) -> None:
        print(f"[{self.step}] {level} {message}" + (f" {json.dumps(data)}" if data else ""))

    def info(self, message: str, data: Any = None) -> None:
        self._print("info", message, data)

    def warn(self, message: str, data: Any = None) -> None:
        self._print("warn", message, data)

    def error(self, message: str, data: Any = None) -> None:
        self._print("error", message, data)

    def debug(self, message: str, data: Any = None) -> None:
        self._print("debug", message, data)


class Streams(dict[str, Stream]):
    """Named streams, by attribute (``streams.users``) or item (``streams["email-queue"]``)."""

    def __getattr__(self, name: str) -> Stream:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class Runtime:
    steps: list[tuple[dict[str, Any], Callable[..., Awaitable[Any]]]]
    state: State = field(default_factory=State)
    streams: Streams = field(
        default_factory=lambda: Streams({"users": Stream(0.005), "email-queue": Stream(0.003)})
    )
    queue: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def context(self, trace_id: str, step: str) -> SimpleNamespace:
        async def emit(event: dict[str, Any]) -> None:
            self.queue.append((trace_id, event))

        return SimpleNamespace(
            trace_id=trace_id,
            state=self.state,
            streams=self.streams,
            emit=emit,
            logger=Logger(step),
        )

    async def drain(self) -> None:
        """Delivers queued events to their subscribers (same trace id) until none is left."""
        while self.queue:
            trace_id, event = self.queue.pop(0)
            for config, handler in self.steps:
                if event["topic"] in config.get("subscribes", []):
                    await handler(event["data"], self.context(trace_id, config["name"]))

    async def request(self, method: str, path: str, body: dict[str, Any]) -> tuple[str, Any]:
        """An HTTP request to the api step at ``path``: a new flow run (a new Motia trace id)."""
        config, handler = next(
            (c, h) for c, h in self.steps if c["type"] == "api" and c["path"] == path and c["method"] == method
        )
        trace_id = str(uuid.uuid4())
        response = await handler({"body": body, "headers": {}}, self.context(trace_id, config["name"]))
        await self.drain()
        return trace_id, response


async def main() -> None:
    email = sys.argv[1] if len(sys.argv) > 1 else "ada@example.com"
    runtime = Runtime(STEPS)
    motia_id, response = await runtime.request("POST", "/users", {"email": email, "name": "Ada"})
    print(f"response {response['status']} {json.dumps(response['body'])}")
    flowscope.flush()
    print(f"motia trace {motia_id}")
    print(f"flowscope trace {trace_id_for(motia_id)}")


if __name__ == "__main__":
    asyncio.run(main())
