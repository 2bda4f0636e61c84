"""What a transaction keeps through its last timer (up to 32 s after its final response)
is held as octets: the same octets go out again, and the collector has a handful of
objects to walk instead of a tree of headers, URIs and parameters."""

from __future__ import annotations

import gc
import types

from switchboard.sip.fast_parser import parse_well_formed
from switchboard.sip.message import Message, Request, headers, held_as_wire, parse_message
from switchboard.sip.transaction.base import Send, TimerConfig, Transaction
from switchboard.sip.transaction.client_invite import ClientInviteTransaction
from switchboard.sip.transaction.client_non_invite import ClientNonInviteTransaction
from switchboard.sip.transaction.layer import TransactionLayer
from switchboard.sip.transaction.server_invite import ServerInviteTransaction
from switchboard.sip.transaction.server_non_invite import ServerNonInviteTransaction
from switchboard.sip.uri import SipUri, parse_uri
from tests.sip.factories import UDP_PEER, request, response

CONFIG = TimerConfig()
SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"


def tracked_objects(root: object) -> int:
    """Objects the collector walks that ``root`` keeps alive (classes and modules aside)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(item))
        stack += [r for r in gc.get_referents(item) if gc.is_tracked(r)]
    return len(seen)


def is_held(message: Message) -> bool:
    return message._received is not None


def test_a_built_message_is_held_as_its_octets_and_reads_the_same() -> None:
    invite = request(body=SDP)
    _ = invite.top_via, invite.from_, invite.to, invite.cseq  # as a call reads it
    held = held_as_wire(invite)
    assert tracked_objects(held) < tracked_objects(invite) / 2
    assert is_held(held) and bytes(held) == bytes(invite)
    assert (held.method, str(held.uri), held.body) == (invite.method, str(invite.uri), SDP)
    assert held.call_id == invite.call_id and held.top_via.branch == invite.top_via.branch


def test_a_built_message_held_shares_its_octets_and_indexes_them_only_when_read() -> None:
    invite = request(body=SDP)
    held = held_as_wire(invite)
    assert bytes(held) is bytes(invite)  # one octets object for the two while both live
    unread = tracked_objects(held)
    assert held.get("CSeq") == "1 INVITE" and held.get_all("Contact") == [
        "<sip:alice@192.0.2.10:5060>"
    ]
    assert tracked_objects(held) > unread  # the index was made by that read
    assert [(h.name, h.value) for h in held.headers] == [
        *((h.name, h.value) for h in invite.headers),
        ("Content-Length", str(len(SDP))),
    ]


def test_built_messages_the_fast_parser_would_not_read_are_held_and_read_the_same() -> None:
    # Received, a quoted-pair in a display name or a tel: Request-URI goes to the strict
    # parser; built by us and held, they are indexed as written.
    named = '"Doe \\"J\\"" <sip:j@d>'
    busy = response(request(), 486)
    busy = busy.with_headers([*busy.headers, *headers(("Contact", named))])
    assert parse_well_formed(bytes(busy)) is None
    held = held_as_wire(busy)
    assert is_held(held) and bytes(held) == bytes(busy)
    assert (held.status, held.reason, held.get_all("Contact")) == (486, "Busy Here", [named])
    assert held.to.tag == "callee-tag" and held.contacts[0].display_name == 'Doe "J"'
    invite = request()
    to_number = Request("INVITE", parse_uri("tel:+81312341234"), invite.headers)
    held_invite = held_as_wire(to_number)
    assert bytes(held_invite) == bytes(to_number) and held_invite.uri == to_number.uri


def test_a_received_message_sheds_what_reading_it_built() -> None:
    received = parse_message(bytes(request(body=SDP)))
    assert isinstance(received, Request)
    _ = received.headers, received.from_, received.to, received.top_via, received.uri
    read = tracked_objects(received)
    held = held_as_wire(received)
    assert bytes(held) == bytes(received) and held.from_.tag == "caller-tag"
    assert tracked_objects(held_as_wire(received)) < read / 2


def test_client_invite_after_2xx_holds_its_request_as_octets() -> None:
    invite = request(body=SDP)
    tx = ClientInviteTransaction(invite, UDP_PEER, CONFIG)
    tx.start(0.0)
    tx.on_response(response(invite, 200), 0.1)
    assert is_held(tx.request) and bytes(tx.request) == bytes(invite)


def test_client_invite_after_a_failure_sends_the_same_ack_again_from_octets() -> None:
    invite = request(body=SDP)
    tx = ClientInviteTransaction(invite, UDP_PEER, CONFIG)
    tx.start(0.0)
    busy = response(invite, 486)
    first = [bytes(e.message) for e in tx.on_response(busy, 0.1) if isinstance(e, Send)]
    assert is_held(tx.request)
    again = [bytes(e.message) for e in tx.on_response(busy, 0.2) if isinstance(e, Send)]
    assert first == again and first[0].startswith(b"ACK ")


def test_client_non_invite_after_its_final_holds_its_request_as_octets() -> None:
    bye = request("BYE", to_tag="callee-tag")
    tx = ClientNonInviteTransaction(bye, UDP_PEER, CONFIG)
    tx.start(0.0)
    assert not is_held(tx.request)
    tx.on_response(response(bye, 200), 0.1)
    assert is_held(tx.request) and bytes(tx.request) == bytes(bye)


def _answered(tx: Transaction, status: int) -> bytes:
    assert isinstance(tx, ServerInviteTransaction | ServerNonInviteTransaction)
    final = response(tx.request, status)
    tx.respond(final, 0.1)
    assert tx.last_response is not None and is_held(tx.last_response)
    return bytes(final)


def test_server_non_invite_answers_a_retransmission_with_the_same_octets() -> None:
    tx = ServerNonInviteTransaction(request("BYE", to_tag="t"), UDP_PEER, CONFIG)
    sent = _answered(tx, 200)
    resent = [bytes(e.message) for e in tx.on_request(tx.request, 0.2) if isinstance(e, Send)]
    assert resent == [sent]


def test_server_invite_retransmits_its_failure_with_the_same_octets() -> None:
    tx = ServerInviteTransaction(request(body=SDP), UDP_PEER, CONFIG)
    tx.start(0.0)
    sent = _answered(tx, 486)
    retransmitted = [bytes(e.message) for e in tx.on_timer(0.7) if isinstance(e, Send)]
    assert retransmitted == [sent]


def test_server_invite_holds_its_2xx_as_octets_in_accepted() -> None:
    tx = ServerInviteTransaction(request(body=SDP), UDP_PEER, CONFIG)
    tx.start(0.0)
    _answered(tx, 200)


def test_the_layer_forgets_a_transaction_held_as_octets() -> None:
    layer = TransactionLayer(CONFIG)
    invite = request(body=SDP)
    tx, _ = layer.send_request(invite, UDP_PEER, 0.0)
    layer.receive(parse_message(bytes(response(invite, 200))), UDP_PEER, 0.1)
    assert is_held(tx.request) and layer.clients
    layer.on_timer(40.0)
    assert tx.terminated and not layer.clients


def test_a_held_request_keeps_its_uri_object() -> None:
    # a hand-built URI whose text does not parse back as the same URI (a space in the user)
    odd = Request("INVITE", SipUri("example.com", "a b"), request().headers, SDP)
    held = held_as_wire(odd)
    assert held.uri is odd.uri and held.first_line == odd.first_line
    assert bytes(held) == bytes(odd)
