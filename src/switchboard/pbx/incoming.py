"""INVITEs that start calls (DESIGN §6 "Routing an incoming INVITE"), at the edge: the pure
``routing.Router`` decides, this carries the decision out. A stranger's INVITE is refused
before any transaction exists (``admit``: one stateless 403); a phone's is challenged
(407) until its credentials check; a routed one becomes a call of the engine.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from switchboard.config import Config, canonical_host, is_ip
from switchboard.pbx.plan import Kind
from switchboard.pbx.requests import IncomingRequest
from switchboard.pbx.routing import Challenge, PhoneAuth, Refusal, Router, Stranger
from switchboard.registrar.service import RegistrarService
from switchboard.sip.grammar import bounded_int
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
        calls.front_host = config.cluster.front_host
        calls.front_port = config.cluster.front_port
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
        self.front_host: str | None = None  # the cluster's SIP front, when there is one
        self.front_port: int | None = None

    def admit(self, request: Request, peer: Peer) -> bool:
        """Take an out-of-dialog INVITE only from a trunk or a phone's address."""
        source = self.source(request, peer)
        kind = self.router.classify_source(source.host, self.registrar.registered_from)
        return not isinstance(kind, Stranger)

    def source(self, request: Request, peer: Peer) -> Peer:
        """Who sent the INVITE: its peer, or, relayed by the cluster's front, the address the
        front says it came from (``X-Switchboard-Source: PROTO:HOST:PORT``). The header is
        believed from the front alone; the front strips any a stranger sent."""
        if self.front_host is None or canonical_host(peer.host) != self.front_host:
            return peer
        if peer.transport == "UDP" and peer.port != self.front_port:
            return peer  # the front sends from its own port: anything else on its host is not it
        claimed = request.get("X-Switchboard-Source") or ""
        transport, _, rest = claimed.partition(":")
        host, _, port = rest.rpartition(":")
        number = bounded_int(port, 65535)
        if transport.upper() not in ("UDP", "TCP", "TLS") or not is_ip(host) or not number:
            return peer
        return Peer(transport.upper(), host, number)

    def on_invite(self, call: IncomingCall) -> None:
        loop = asyncio.get_running_loop()
        source = self.source(call.request, call.peer)
        decision = self.router.route(
            call.request, source, self.registrar.registered_from, self.auth, loop.time()
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
