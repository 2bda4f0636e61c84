"""Scripted phones and trunks: SIP peers on the in-memory network that a test drives
through whole call flows on virtual time.

A ``ScriptedPhone`` registers to the server with digest authentication and places calls
through it, answering its 407 with the phone's own credentials, as a desk phone does. A
``ScriptedTrunk`` does not register; it places calls to DIDs with the caller's number in
From and P-Asserted-Identity (RFC 3325), and may challenge the server's INVITEs with 407.
Both do with incoming INVITEs what their ``on_invite`` script says (``Answer``, ``Reject``,
``Ring``, ``Trying``, ``Silent``, or a function of the INVITE such as ``by_number``), keep
an ``events`` log of what crossed the wire and list their ``calls`` (``peer``).

    phone = await ScriptedPhone(network, user="alice", domain="example.com",
                                password="secret").start()
    assert await phone.register() == 200
    phone.on_invite = Answer(after=2.0)
    call = await phone.wait_call(CallState.ANSWERED)
"""

from __future__ import annotations

import asyncio

from switchboard.sip.digest import parse_auth_params, pick_challenge
from switchboard.sip.message import Request, Response, headers
from switchboard.sip.transaction.base import Peer
from switchboard.sip.useragent import CallState, Credentials
from switchboard.testing.calls import DEFAULT_TIMEOUT, ScriptedCall
from switchboard.testing.network import Address, Network
from switchboard.testing.peer import ScriptedPeer
from switchboard.testing.registration import answer_with_credentials, register_request
from switchboard.testing.scripts import (
    Answer,
    Reject,
    Ring,
    Script,
    ScriptRule,
    Silent,
    Trying,
    by_number,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Answer",
    "CallState",
    "Credentials",
    "Reject",
    "Ring",
    "Script",
    "ScriptRule",
    "ScriptedCall",
    "ScriptedPeer",
    "ScriptedPhone",
    "ScriptedTrunk",
    "Silent",
    "Trying",
    "by_number",
]
SERVER = ("127.0.0.1", 5060)


class ScriptedPhone(ScriptedPeer):
    """A phone of ``user@domain``: registers with ``password`` and calls through ``server``."""

    def __init__(
        self,
        network: Network,
        *,
        user: str,
        domain: str,
        password: str,
        address: Address = ("127.0.0.11", 5060),
        server: Address = SERVER,
    ) -> None:
        super().__init__(network, address=address, server=server)
        self.user, self.domain, self.password = user, domain, password
        self.aor = self.identity = f"sip:{user}@{domain}"
        self.registration: Response | None = None  # the last REGISTER's final response
        ids = self.endpoint.ids
        self._register_call_id, self._register_tag, self._cseq = ids.call_id(), ids.tag(), 0

    async def register(self, expires: int = 3600) -> int:
        """REGISTER our address as the AOR's contact for ``expires`` seconds, answering
        the registrar's challenge (and a ``stale=true`` one after it); the final status."""
        request = register_request(
            user=self.user,
            domain=self.domain,
            contact=self.endpoint.contact(user=self.user),
            via=self.endpoint.via(),
            call_id=self._register_call_id,
            from_tag=self._register_tag,
            cseq=self._cseq + 1,
            expires=expires,
        )
        response = await self._send(request)
        for attempt in range(2):
            if response.status not in (401, 407) or (attempt and not _stale(response)):
                break
            answered = answer_with_credentials(
                request,
                response,
                username=self.user,
                password=self.password,
                cnonce=self.endpoint.ids.tag(),
                via=self.endpoint.via(),
            )
            if answered is None:
                break
            request = answered
            response = await self._send(request)
        self._cseq = request.cseq.number
        self.registration = response
        return response.status

    async def unregister(self) -> int:
        """Remove our binding (Expires: 0, §10.2.2); the final status."""
        return await self.register(expires=0)

    async def dial(self, target: str, *, sdp: bool | bytes = True) -> ScriptedCall:
        """INVITE ``sip:{target}@{domain}`` through the server, answering its 407 (or 401)
        with our credentials; the call is placed at once (await its ``wait``)."""
        return await self.dial_uri(
            f"sip:{target}@{self.domain}",
            to=self.server,
            sdp=sdp,
            credentials=Credentials(self.user, self.password),
        )

    async def _send(self, request: Request) -> Response:
        """Send in a client transaction; its final response (408 after Timer F)."""
        final: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

        def on_response(response: Response) -> None:
            if response.status >= 200 and not final.done():
                final.set_result(response)

        self.endpoint.send_request(request, Peer("UDP", *self.server), on_response)
        return await final


class ScriptedTrunk(ScriptedPeer):
    """A SIP trunk (a PSTN gateway) at ``address``. With ``auth``, it challenges every INVITE
    with 407 until it carries those credentials (``realm`` names the challenge)."""

    def __init__(
        self,
        network: Network,
        *,
        address: Address = ("127.0.0.20", 5060),
        server: Address = SERVER,
        auth: Credentials | None = None,
        realm: str = "trunk",
    ) -> None:
        super().__init__(network, address=address, server=server, auth=auth, realm=realm)

    async def dial(
        self, did: str, *, caller: str = "0312345678", sdp: bool | bytes = True
    ) -> ScriptedCall:
        """INVITE ``sip:{did}@server`` from the PSTN number ``caller`` (From and
        P-Asserted-Identity, RFC 3325 §9.1); the call is placed at once."""
        host, port = self.server
        identity = f"sip:{caller}@{self.address[0]}"
        return await self.dial_uri(
            f"sip:{did}@{host}:{port}",
            to=self.server,
            sdp=sdp,
            from_uri=identity,
            extra=headers(("P-Asserted-Identity", f"<{identity}>")),
        )


def _stale(challenge: Response) -> bool:
    """Whether the challenge we would answer says our last nonce merely expired."""
    field = "WWW-Authenticate" if challenge.status == 401 else "Proxy-Authenticate"
    chosen = pick_challenge(challenge.get_all(field))
    return chosen is not None and parse_auth_params(chosen)[1].get("stale", "").lower() == "true"
