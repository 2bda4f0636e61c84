"""A scripted SIP peer on the in-memory network: the common part of phones and trunks.

It binds its own ``SipEndpoint`` and ``UserAgent`` at ``address`` and does with each
incoming INVITE what its script says (``scripts``). Everything it sends and receives is
logged in ``events`` as ``(time, description)`` by a wire tap (``tap``), retransmissions
left out (the network's own ``log`` has every datagram); ``calls`` lists the calls it
received and placed.

Rules:
- The script is chosen when the INVITE is screened, before its transaction sends 100
  Trying: a ``Silent`` peer's transaction then runs, but nothing it sends for that call
  leaves (not the 100, not the 487 a CANCEL draws).
- With ``auth``, an INVITE without valid Proxy-Authorization for those credentials is
  refused statelessly with 407 and a fresh challenge (RFC 3261 §22.3, §8.2.7); a stale
  nonce's challenge says ``stale=true`` (RFC 7616 §3.3).
- Identifiers come from a random source seeded with the address: a flow replays exactly.
"""

from __future__ import annotations

import hashlib
import random
from typing import Self

from switchboard.sip import offer_answer
from switchboard.sip.builders import make_response, stateless_tag
from switchboard.sip.digest import DigestServer
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.errors import ParseError
from switchboard.sip.headers import Header
from switchboard.sip.ids import IdGenerator
from switchboard.sip.message import Message, Request, Response, parse_message
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import SipUri, parse_uri
from switchboard.sip.useragent import CallState, Credentials, IncomingCall, OutgoingCall
from switchboard.testing.answering import perform
from switchboard.testing.calls import DEFAULT_TIMEOUT, Changes, ScriptedCall
from switchboard.testing.network import Address, Network
from switchboard.testing.screening import ScreeningUserAgent
from switchboard.testing.scripts import Ring, Script, ScriptRule, Silent, resolve
from switchboard.testing.tap import Tap, describe


class ScriptedPeer:
    """A SIP peer bound at ``address`` (``start()``, or ``async with``), doing with each
    incoming INVITE what ``on_invite`` says (``Ring()`` until told otherwise)."""

    def __init__(
        self,
        network: Network,
        *,
        address: Address,
        server: Address,
        auth: Credentials | None = None,
        realm: str = "scripted",
        rtp_port: int = 4000,
    ) -> None:
        host, port = address
        self.address, self.server, self.rtp_port = address, server, rtp_port
        self.on_invite: ScriptRule = Ring()
        self.identity = f"sip:scripted@{host}"  # From of the calls we place, by default
        self.calls: list[ScriptedCall] = []
        self.events: list[tuple[float, str]] = []
        self.changes = Changes()
        tap = Tap(
            network,
            on_receive=self._received,
            after_receive=self.changes.notify,
            on_send=self._sending,
        )
        ids = IdGenerator(random.Random(f"{host}:{port}"))
        self.endpoint = SipEndpoint(host, port, network=tap, ids=ids)
        self.ua = ScreeningUserAgent(self.endpoint, on_invite=self._on_invite, screen=self._screen)
        self.auth = auth
        self._digest = DigestServer(realm, f"{host}:{port}".encode(), nonce_salt=ids.tag)
        self._seen: set[tuple[bool, bytes]] = set()  # (sent, digest) of each datagram
        self._scripts: dict[tuple[str, str, str], Script] = {}  # chosen when screened
        self._silenced: set[tuple[str, str]] = set()  # (Call-ID, From tag)
        self._incoming: dict[tuple[str, str], ScriptedCall] = {}  # (Call-ID, To tag)

    async def start(self) -> Self:
        await self.endpoint.start()
        return self

    async def close(self) -> None:
        for call in self.calls:
            call.cancel_timers()
        await self.endpoint.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- placing and ending calls ---------------------------------------------------------

    async def dial_uri(
        self,
        uri: str,
        *,
        to: Address | None = None,
        sdp: bool | bytes = True,
        from_uri: str | None = None,
        credentials: Credentials | None = None,
        extra: tuple[Header, ...] = (),
    ) -> ScriptedCall:
        """INVITE ``uri``, sent to ``to`` (by default the URI's own host and port), from
        ``from_uri`` (by default ``identity``), with an SDP offer from our address (``sdp``:
        True an offer, False none, bytes verbatim). A 401/407 is answered once with
        ``credentials``. The call is placed at once: await its ``wait``."""
        target = parse_uri(uri)
        if to is None:
            if not isinstance(target, SipUri):
                raise ValueError(f"say where to send the INVITE for {uri}")
            to = (target.host, target.port or 5060)
        session = self.ua.call(
            target,
            Peer("UDP", *to),
            from_uri=from_uri or self.identity,
            body=self._offer(sdp),
            credentials=credentials,
            extra=extra,
        )
        call = ScriptedCall(session, script=None, started_at=self.now(), changes=self.changes)
        self.calls.append(call)
        self.changes.notify()
        return call

    def hang_up(self, call: ScriptedCall | None = None, *, status: int = 603) -> ScriptedCall:
        """End ``call`` (by default the latest one not ended): BYE once answered; before
        that, CANCEL a call we placed, or refuse with ``status`` one we received."""
        call = call or self._live_call()
        session = call.session
        call.cancel_timers()
        if session.state is CallState.ANSWERED:
            session.bye()
        elif isinstance(session, OutgoingCall):
            session.cancel()
        else:
            session.reject(status)
        self.changes.notify()
        return call

    # -- waiting --------------------------------------------------------------------------

    def now(self) -> float:
        return self.endpoint.now()

    async def wait_call(
        self,
        state: CallState | None = None,
        *,
        incoming: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ScriptedCall:
        """The first of ``calls`` in ``state`` (any, for None), received or placed as
        ``incoming`` says, as soon as there is one."""
        found: list[ScriptedCall] = []

        def ready() -> bool:
            found[:] = [
                c
                for c in self.calls
                if (state is None or c.state is state)
                and (incoming is None or c.incoming == incoming)
            ][:1]
            return bool(found)

        await self.changes.until(ready, timeout)
        return found[0]

    # -- incoming calls -------------------------------------------------------------------

    def _screen(self, invite: Request, source: Peer) -> Response | None:
        if self.auth is not None:
            refusal = self._challenge(invite, source, self.auth)
            if refusal is not None:
                return refusal
        script = resolve(self.on_invite, invite)
        self._scripts[_invite_key(invite)] = script
        if isinstance(script, Silent):
            self._silenced.add((invite.call_id, invite.from_.tag or ""))
        return None

    def _challenge(self, invite: Request, source: Peer, auth: Credentials) -> Response | None:
        now, stale = self.now(), False
        for value in invite.get_all("Proxy-Authorization"):
            verdict = self._digest.verify(value, "INVITE", auth.password, now, source.host)
            if verdict.ok and verdict.username == auth.username:
                return None
            stale = stale or verdict.stale
        values = self._digest.challenges(now, source.host, stale=stale)
        extra = tuple(Header("Proxy-Authenticate", v) for v in values)
        return make_response(invite, 407, to_tag=stateless_tag(invite), extra=extra)

    def _on_invite(self, session: IncomingCall) -> None:
        script = self._scripts.pop(_invite_key(session.request), None)
        script = script or resolve(self.on_invite, session.request)
        call = ScriptedCall(session, script=script, started_at=self.now(), changes=self.changes)
        self.calls.append(call)
        self._incoming[(session.call_id, session.to_tag)] = call
        perform(call, session, script, self.address[0], self.rtp_port)
        self.changes.notify()

    def _offer(self, sdp: bool | bytes) -> bytes:
        if isinstance(sdp, bytes):
            return sdp
        if not sdp:
            return b""
        session_id = self.endpoint.ids.tag()
        return bytes(offer_answer.make_offer(self.address[0], self.rtp_port, session_id))

    def _live_call(self) -> ScriptedCall:
        for call in reversed(self.calls):
            if call.state is not CallState.ENDED:
                return call
        raise LookupError("no call to hang up")

    # -- the wire -------------------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        message = _parse(data)
        if message is not None:
            self._log(data, message, sent=False)

    def _sending(self, data: bytes) -> bool:
        message = _parse(data)
        if message is None:
            return True
        if isinstance(message, Response):
            if (message.call_id, message.from_.tag or "") in self._silenced:
                return False
            if message.cseq.method == "INVITE" and message.status >= 200:
                call = self._incoming.get((message.call_id, message.to.tag or ""))
                if call is not None and call.sent_final is None:
                    call.sent_final = message
        self._log(data, message, sent=True)
        self.changes.notify()
        return True

    def _log(self, data: bytes, message: Message, *, sent: bool) -> None:
        key = (sent, hashlib.blake2b(data, digest_size=16).digest())
        if key in self._seen:
            return  # a retransmission
        self._seen.add(key)
        self.events.append((self.now(), describe(message, sent=sent)))


def _invite_key(invite: Request) -> tuple[str, str, str]:
    return invite.call_id, invite.from_.tag or "", invite.top_via.branch or ""


def _parse(data: bytes) -> Message | None:
    try:
        return parse_message(data)
    except ParseError:
        return None
