"""The gate in front of the app: what can be decided before a request body is read is decided here.

FastAPI reads and parses the whole body before any dependency runs, so a size limit or an admin
token check written as a dependency comes after a 100 MB body is already in memory. This pure
ASGI middleware runs first, in this order:

1. draining: `/v1/` requests get 503 with `Connection: close` (the client reconnects elsewhere);
2. admin endpoints: 403 when turned off, 401 without the bearer token - before reading the body;
3. `Content-Length` above `limits.max_body_bytes`: 413 before reading a byte;
4. the body is read with a byte counter (413 as soon as a chunked body passes the limit), within
   `limits.body_timeout_s` (408), and is cut with 503 when shutdown begins (a client holding a
   half-sent body must not hold the shutdown for the whole grace period);
5. a body under `/v1/` is JSON whatever its Content-Type says (`curl -d` sends
   application/x-www-form-urlencoded): the header is rewritten to application/json, and the
   original one is kept in the scope so a parse error can say what was sent.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Awaitable, Callable

from .security import token_ok

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ADMIN = re.compile(r"^/v1/adapters(/[^/]*)?/?$")
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SENT_TYPE = "tunesmith.sent_content_type"  # scope key: the client's own Content-Type


class Stop(Exception):
    """The body read ended early; `status` and `message` say how to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def is_admin(method: str, path: str) -> bool:
    """POST /v1/adapters (load) and DELETE /v1/adapters/{name} (unload) need the token."""
    return (method == "POST" and path.rstrip("/") == "/v1/adapters") or \
        (method == "DELETE" and bool(ADMIN.match(path)) and path.rstrip("/") != "/v1/adapters")


def is_json_type(value: str) -> bool:
    kind = value.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def reply(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    """A JSON {"error": ...} answer straight from ASGI (no app, no body read)."""
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware; `state` is the app's State (config, token, draining flag, stop event)."""

    def __init__(self, app, state):
        self.app = app
        self.st = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        early = self.refuse_early(scope)
        if early is not None:
            if self.st.draining and scope["method"] in BODY_METHODS:
                await self.discard_body(receive)  # closing with unread bytes would reset, not answer
            return await reply(send, *early)
        if scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        try:
            body = await self.read_body(receive)
        except Stop as stop:
            return await reply(send, stop.status, stop.message, {"Connection": "close"})
        if body is None:  # the client went away
            return
        scope = self.as_json(scope) if body else scope
        return await self.app(scope, replay(body, receive), send)

    def refuse_early(self, scope: Scope) -> tuple | None:
        """(status, message, headers) for a request answered without reading its body."""
        st, cfg = self.st, self.st.cfg
        if st.draining:
            return 503, "server is shutting down", {"Retry-After": "5", "Connection": "close"}
        if is_admin(scope["method"], scope["path"]):
            if not cfg.server.admin_enabled:
                return 403, "admin endpoints are turned off (--server.admin_enabled=false)", None
            if not token_ok(header(scope, b"authorization"), st.token):
                return 401, "admin endpoints need 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"}
        length = header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                return 400, f"Content-Length {length!r} is not a number of bytes", {"Connection": "close"}
            if int(length) > cfg.limits.max_body_bytes:
                return 413, too_large(cfg.limits.max_body_bytes), {"Connection": "close"}
        return None

    async def read_body(self, receive: Receive) -> bytes | None:
        """The whole body, counted as it arrives; None when the client disconnected."""
        limit, chunks, size = self.st.cfg.limits.max_body_bytes, [], 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.st.cfg.limits.body_timeout_s
        while True:
            message = await self.next_message(receive, deadline - loop.time())
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Stop(413, too_large(limit))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def discard_body(self, receive: Receive, seconds: float = 1.0) -> None:
        """Read and drop what is left of the body (up to the size limit, for a second at most)."""
        size, limit = 0, self.st.cfg.limits.max_body_bytes
        with contextlib.suppress(asyncio.TimeoutError):
            async with asyncio.timeout(seconds):
                while size <= limit:
                    message = await receive()
                    size += len(message.get("body", b""))
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        return

    async def next_message(self, receive: Receive, remaining: float) -> Message:
        """receive(), unless the body deadline passes (408) or shutdown begins (503) first."""
        if remaining <= 0:
            raise Stop(408, f"request body not received within {self.st.cfg.limits.body_timeout_s} s")
        got = asyncio.ensure_future(receive())
        stop = asyncio.ensure_future(self.st.stopping.wait())
        try:
            done, _ = await asyncio.wait({got, stop}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if got in done:
            return got.result()
        got.cancel()
        if stop in done:
            raise Stop(503, "server is shutting down; the request body was not complete")
        raise Stop(408, f"request body not received within {self.st.cfg.limits.body_timeout_s} s")

    @staticmethod
    def as_json(scope: Scope) -> Scope:
        sent = header(scope, b"content-type")
        if sent is not None and is_json_type(sent):
            return scope
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
        headers.append((b"content-type", b"application/json"))
        return {**scope, "headers": headers, SENT_TYPE: sent or "(none)"}


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def too_large(limit: int) -> str:
    return f"request body over {limit} bytes (limits.max_body_bytes); send fewer or shorter inputs"


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives the already-read body once, then the client's own messages
    (http.disconnect), so the app reads the body exactly as the client sent it."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
