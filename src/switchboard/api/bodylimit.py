"""A cap on request bodies (``server.http_max_body``, default 64 KiB): no method needs more.

A body announced larger by its Content-Length is refused at the door, before the app runs
and before it is read: HTTP 413 (RFC 9110 §15.5.14) in the Basix envelope,
``body_too_large``. A body without a length (chunked) is counted as it is read, and the
read that goes past the cap raises ``BodyTooLargeError`` (an ``ApiError``, so handlers
answer it like any other). Nothing of a refused body is kept: what still arrives is
discarded, for at most ``listener.LINGER`` seconds, so that the client, still sending,
reads the 413 instead of a reset (RFC 9112 §9.6); then the connection is closed.

Starlette's own ``RequestBodyLimitMiddleware`` answers in plain text, and only once the
app reads; this one keeps the envelope and refuses before any work is done.
"""

from __future__ import annotations

import sys

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.api.errors import ApiError, error_response
from switchboard.api.params import MAX_DIGITS


class BodyTooLargeError(ApiError):
    def __init__(self, max_body: int) -> None:
        super().__init__(
            "body_too_large",
            f"the request body is larger than {max_body} bytes",
            http_status=413,
        )


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body: int, larger: dict[str, int] | None = None) -> None:
        """``larger``: path prefixes allowed a larger cap (the provisioning API's whole
        directory)."""
        self.app = app
        self.max_body = max_body
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        cap = next((n for p, n in self.larger.items() if path.startswith(p)), self.max_body)
        if _declared_length(scope) > cap:
            await error_response(BodyTooLargeError(cap))(scope, receive, send)
            return
        await self.app(scope, _counting(receive, cap), send)


def _declared_length(scope: Scope) -> int:
    """The Content-Length (0 without one); h11 has already checked that it is digits."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"content-length":
            digits = value.strip()
            if len(digits) > MAX_DIGITS:
                return sys.maxsize
            return int(digits) if digits.isdigit() else 0
    return 0


def _counting(receive: Receive, max_body: int) -> Receive:
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_body:
                raise BodyTooLargeError(max_body)
        return message

    return counted
