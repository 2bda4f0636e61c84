"""One log line per API request, and its latency for the metrics.

``GET /basix/api/call_group example.com 200 ok 12.3 ms``: method, route, who asked (the
domain of Basic credentials, ``admin`` or ``metrics`` for a bearer token, ``-`` for none;
never a secret), the HTTP status, the answer's ``error.id`` (``ok`` when there is none), and
the time to the end of the answer. Pure ASGI (it sees the answer's first bytes to read the
error id, up to ``_PEEK`` bytes, and passes everything on untouched). WebSocket upgrades
pass through unlogged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("switchboard.access")
_PEEK = 4096

Observer = Callable[[str, int, float], None]  # (route, status, seconds)


class AccessLog:
    def __init__(self, app: ASGIApp, observe: Observer | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        body = bytearray()
        logging_on = log.isEnabledFor(logging.INFO)  # else no line: read nothing for one

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif logging_on and message["type"] == "http.response.body" and len(body) < _PEEK:
                body.extend(message.get("body", b"")[: _PEEK - len(body)])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            if logging_on:
                log.info(
                    "%s %s %s %d %s %.1f ms",
                    scope["method"],
                    route,
                    _who(scope),
                    status,
                    _result(bytes(body)),
                    seconds * 1000,
                )
            if self.observe is not None:
                self.observe(route, status, seconds)


def _who(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    value = next((v for k, v in headers if k == b"authorization"), b"").decode("latin-1")
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() == "bearer":
        return "admin" if str(scope.get("path", "")).startswith("/admin/") else "metrics"
    if scheme.lower() != "basic":
        return "-"
    try:
        user = base64.b64decode(credentials, validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return "?"
    # a domain name as the client spelt it; anything odd is not repeated into the log
    return user[:253] if user.replace(".", "").replace("-", "").isalnum() else "?"


def _result(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return "-"
    if not isinstance(answer, dict):
        return "-"
    error = answer.get("error")
    if isinstance(error, dict) and isinstance(error.get("id"), str):
        return str(error["id"])[:64]
    return "ok"
