"""Dialogs (RFC 3261 §12) and the UA-core retransmission of 2xx (§13.3.1.4).

Rules:
- A UAC dialog is created from a 1xx/2xx with a To tag: the route set is the Record-Route
  of the response in reverse order, the remote target its Contact (§12.1.2).
- A UAS dialog is created from the request: route set is Record-Route in order, remote
  target the request's Contact (§12.1.1).
- In-dialog requests use the remote target as Request-URI and the route set as Route,
  assuming loose routers (``;lr``, §12.2.1.1); the local CSeq increases by one for each
  request except ACK and CANCEL, which reuse the INVITE's number.
- A request whose CSeq is lower than the last one seen is out of order: the TU answers
  500 (§12.2.2).
- ``SuccessRetransmitter``: the UAS sends its 2xx again at T1, 2·T1, … capped at T2 until
  the ACK arrives; after 64·T1 without it the dialog should be ended with BYE (§13.3.1.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from switchboard.quick_init import quick_init
from switchboard.sip.address import Address, parse_address
from switchboard.sip.headers import Header
from switchboard.sip.message import Request, Response
from switchboard.sip.transaction.base import Peer, TimerConfig
from switchboard.sip.uri import SipUri, Uri


@quick_init
@dataclass(frozen=True, slots=True)
class DialogId:
    call_id: str
    local_tag: str
    remote_tag: str


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: Address
    remote_uri: Address
    remote_target: Uri
    route_set: tuple[str, ...] = ()
    local_seq: int = 0
    remote_seq: int | None = None
    early: bool = False
    invite_seq: int = field(default=0)

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        contacts = response.contacts
        target = contacts[0].uri if contacts and contacts[0].uri is not None else request.uri
        to = response.to
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=to.tag or "",
            local_uri=request.from_,
            remote_uri=to,
            remote_target=target,
            route_set=tuple(reversed(response.get_all("Record-Route"))),
            local_seq=request.cseq.number,
            early=response.status < 200,
            invite_seq=request.cseq.number,
        )

    @classmethod
    def from_uas(cls, request: Request, local_tag: str) -> Dialog:
        contacts = request.contacts
        target = contacts[0].uri if contacts and contacts[0].uri is not None else request.uri
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=request.to.with_tag(local_tag),
            remote_uri=request.from_,
            remote_target=target,
            route_set=tuple(request.get_all("Record-Route")),
            remote_seq=request.cseq.number,
            invite_seq=request.cseq.number,
        )

    def confirm(self, response: Response) -> None:
        """A 2xx confirms an early dialog; its Contact refreshes the target (§12.1.2)."""
        self.early = False
        contacts = response.contacts
        if contacts and contacts[0].uri is not None:
            self.remote_target = contacts[0].uri

    def create_request(
        self,
        method: str,
        via: str,
        *,
        extra: tuple[Header, ...] = (),
        body: bytes = b"",
    ) -> Request:
        if method in ("ACK", "CANCEL"):
            seq = self.invite_seq
        else:
            self.local_seq += 1
            seq = self.local_seq
            if method == "INVITE":
                self.invite_seq = seq
        hdrs: list[Header] = [
            Header("Via", via),
            Header("Max-Forwards", "70"),
            Header("From", str(self.local_uri)),
            Header("To", str(self.remote_uri)),
            Header("Call-ID", self.call_id),
            Header("CSeq", f"{seq} {method}"),
        ]
        hdrs += [Header("Route", route) for route in self.route_set]
        hdrs += extra
        return Request(method, self.remote_target, tuple(hdrs), body)

    def accept_remote_request(self, request: Request) -> bool:
        """Check and record the remote CSeq; False means answer 500 (§12.2.2)."""
        if request.method in ("ACK", "CANCEL"):
            return True
        number = request.cseq.number
        if self.remote_seq is not None and number < self.remote_seq:
            return False
        self.remote_seq = number
        return True

    def next_hop(self, default: Peer) -> Peer:
        """Where in-dialog requests go: the first route, else the remote target (§8.1.2).
        Without a route, a target over the connection-oriented transport the dialog was set
        up on reuses that connection (RFC 5923's idea; a phone behind NAT cannot be reached
        at the private address its Contact names)."""
        uri: Uri = self.remote_target
        if self.route_set:
            uri = parse_address(self.route_set[0]).uri or uri
        if not isinstance(uri, SipUri):
            return default
        named = uri.params.get("transport") or uri.scheme == "sips"
        transport = uri.transport if named else default.transport
        if not self.route_set and default.reliable and transport == default.transport:
            return default
        host, port = uri.host_port
        return replace(
            default,
            host=host,
            port=port or (5061 if transport == "TLS" else 5060),
            transport=transport,
        )


class SuccessRetransmitter:
    """Resend a 2xx to INVITE until its ACK arrives (§13.3.1.4)."""

    def __init__(self, response: Response, peer: Peer, now: float, config: TimerConfig):
        self.response = response
        self.peer = peer
        self.config = config
        self.interval = config.t1
        self.next_send: float | None = None if peer.reliable else now + config.t1
        self.give_up = now + 64 * config.t1
        self.acked = False

    def deadline(self) -> float | None:
        if self.acked:
            return None
        if self.next_send is None:
            return self.give_up
        return min(self.next_send, self.give_up)

    def on_timer(self, now: float) -> tuple[bool, bool]:
        """Returns (send the 2xx again, give up waiting)."""
        if self.acked:
            return False, False
        if now >= self.give_up:
            self.acked = True
            return False, True
        if self.next_send is not None and now >= self.next_send:
            self.interval = min(self.interval * 2, self.config.t2)
            self.next_send = now + self.interval
            return True, False
        return False, False
