"""INVITEs that start calls (DESIGN §6 "Routing an incoming INVITE"), at the edge: the pure
``routing.Router`` decides, this carries the decision out. A stranger's INVITE is refused
before any transaction exists (``admit``: one stateless 403); a phone's is challenged
(407) until its credentials check; a routed one becomes a call of the engine.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from switchboard.config import Config
from switchboard.pbx.plan import Kind
from switchboard.pbx.requests import IncomingRequest
from switchboard.pbx.routing import Challenge, PhoneAuth, Refusal, Router, Stranger
from switchboard.registrar.service import RegistrarService
from switchboard.sip.message import Request
from switchboard.sip.transaction.base import Peer
from switchboard.sip.useragent import IncomingCall, UserAgent

log = logging.getLogger("switchboard.pbx")


class CallStarter(Protocol):
    """What starts the routed call (``engine.Engine``; no pbx module imports the engine)."""

    async def incoming(self, call: IncomingCall, request: IncomingRequest) -> object: ...


class IncomingCalls:
    @classmethod
    def serve(
        cls, ua: UserAgent, config: Config, registrar: RegistrarService, engine: CallStarter
    ) -> IncomingCalls:
        """Make ``ua``'s INVITEs start calls: taken from phones and trunks, strangers
        refused statelessly with 403 (§21.4.4)."""
        calls = cls(Router(config), PhoneAuth.of(registrar.registrar), registrar, engine)
        ua.on_invite = calls.on_invite
        ua.admit_invite = calls.admit
        ua.refusal_status = 403
        return calls

    def __init__(
        self, router: Router, auth: PhoneAuth, registrar: RegistrarService, engine: CallStarter
    ) -> None:
        self.router = router
        self.auth = auth
        self.registrar = registrar
        self.engine = engine
        self.tasks: set[asyncio.Task[None]] = set()

    def admit(self, request: Request, peer: Peer) -> bool:
        """Take an out-of-dialog INVITE only from a trunk or a phone's address."""
        source = self.router.classify_source(peer.host, self.registrar.registered_from)
        return not isinstance(source, Stranger)

    def on_invite(self, call: IncomingCall) -> None:
        loop = asyncio.get_running_loop()
        decision = self.router.route(
            call.request, call.peer, self.registrar.registered_from, self.auth, loop.time()
        )
        if isinstance(decision, Challenge):
            call.reject(decision.status, decision.reason, extra=decision.headers)
            return
        if isinstance(decision, Refusal):
            if decision.log:
                emit = log.warning if decision.warning else log.info
                emit("INVITE from %s refused %d: %s", call.peer.host, decision.status, decision.log)
            call.reject(decision.status, decision.reason)
            return
        kind = Kind.TRUNK if decision.kind == "inbound" else Kind.PHONE
        request = IncomingRequest(
            decision.domain,
            kind,
            decision.destination,
            decision.caller.number,
            decision.caller.name,
            decision.user,
        )
        task = loop.create_task(self._start(call, request))
        self.tasks.add(task)
        task.add_done_callback(self._done)

    async def _start(self, call: IncomingCall, request: IncomingRequest) -> None:
        await self.engine.incoming(call, request)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("starting an incoming call failed", exc_info=task.exception())
