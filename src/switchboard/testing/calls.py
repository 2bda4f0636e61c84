"""The calls of a scripted peer, and waiting for them on virtual time.

A ``ScriptedCall`` is a view over the user agent's session (``IncomingCall`` or
``OutgoingCall``): its state is the session's, never a copy that could drift. Waiting
(``wait``, the peer's ``wait_call``) sleeps until something changes — a datagram in or
out, a call answered or ended — and checks again, so on a virtual-time loop it returns at
the exact instant of the change, and a timeout is exact too (``TimeoutError``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from switchboard.sip.message import Request, Response
from switchboard.sip.useragent import CallState, IncomingCall, OutgoingCall
from switchboard.testing.scripts import Script

# Long enough for any call flow's timers (a group's answer timeout, Timer B's 32 s), and
# short enough that a test waiting for what never comes fails instead of spinning through
# some periodic timer for ever.
DEFAULT_TIMEOUT = 300.0


class Changes:
    """Wakes whoever waits for a peer's calls to change."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, *_: object) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def until(self, ready: Callable[[], bool], timeout: float) -> None:
        """Return once ``ready()``; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not ready():
                await self._event.wait()


class ScriptedCall:
    """One call a scripted peer received (``incoming``) or placed.

    ``script`` is what the peer does with it (None for a call it placed); ``final`` the
    final response the peer sent (incoming) or got (placed, including the 408 of a timeout
    and the 503 of a transport failure).
    """

    def __init__(
        self,
        session: IncomingCall | OutgoingCall,
        *,
        script: Script | None,
        started_at: float,
        changes: Changes,
    ) -> None:
        self.session = session
        self.script = script
        self.started_at = started_at
        self.sent_final: Response | None = None
        self._changes = changes
        self._timers: list[asyncio.TimerHandle] = []
        session.answered.add_done_callback(changes.notify)
        session.ended.add_done_callback(self._on_ended)

    def __repr__(self) -> str:
        direction = "incoming" if self.incoming else "outgoing"
        return f"<ScriptedCall {direction} {self.session.call_id} {self.state.value}>"

    @property
    def incoming(self) -> bool:
        return isinstance(self.session, IncomingCall)

    @property
    def state(self) -> CallState:
        return self.session.state

    @property
    def request(self) -> Request:
        """The INVITE received, or the last one sent (with credentials after a challenge)."""
        if isinstance(self.session, IncomingCall):
            return self.session.request
        return self.session.invite

    @property
    def final(self) -> Response | None:
        if isinstance(self.session, IncomingCall):
            return self.sent_final
        return self.session.final

    @property
    def final_status(self) -> int | None:
        return None if self.final is None else self.final.status

    @property
    def ended_reason(self) -> str | None:
        """The user agent's reason, e.g. ``recv_bye``, ``send_bye``, ``recv_cancel``,
        ``recv_refuse,486``, ``send_refuse,603``; None while the call lasts."""
        ended = self.session.ended
        return ended.result() if ended.done() else None

    async def wait(self, state: CallState, timeout: float = DEFAULT_TIMEOUT) -> ScriptedCall:
        """Return once this call is in ``state``."""
        await self._changes.until(lambda: self.state is state, timeout)
        return self

    def later(self, delay: float, action: Callable[..., Any], *args: Any) -> None:
        """Run ``action`` in ``delay`` seconds, unless the call ends first."""
        if self.state is CallState.ENDED:
            return
        self._timers.append(asyncio.get_running_loop().call_later(delay, action, *args))

    def cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _on_ended(self, _: object) -> None:
        self.cancel_timers()
        self._changes.notify()
