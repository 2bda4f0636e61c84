"""Dialogs (RFC 3261 §12) and 2xx retransmission (§13.3.1.4)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.sip.dialog import Dialog, SuccessRetransmitter
from switchboard.sip.headers import Header
from switchboard.sip.message import Response
from switchboard.sip.transaction.base import Peer, TimerConfig
from switchboard.sip.uri import SipUri
from tests.sip.factories import UDP_PEER, request, response


def _with(resp: Response, *extra: Header) -> Response:
    return resp.with_headers((*resp.headers, *extra))


def test_uac_dialog_reverses_record_route_and_targets_the_contact() -> None:
    invite = request(cseq=7)
    ok = _with(
        response(invite, 200),
        Header("Record-Route", "<sip:p1.example.com;lr>"),
        Header("Record-Route", "<sip:p2.example.com;lr>"),
        Header("Contact", "<sip:bob@192.0.2.20:5062>"),
    )
    dialog = Dialog.from_uac(invite, ok)
    assert dialog.route_set == ("<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>")
    assert str(dialog.remote_target) == "sip:bob@192.0.2.20:5062"
    bye = dialog.create_request("BYE", "SIP/2.0/UDP me;branch=z9hG4bKx")
    assert bye.cseq.number == 8 and bye.cseq.method == "BYE"
    assert bye.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert bye.to.tag == "callee-tag" and bye.from_.tag == "caller-tag"
    assert dialog.next_hop(UDP_PEER) == Peer("UDP", "p2.example.com", 5060)


def test_ack_for_2xx_reuses_the_invite_cseq() -> None:
    invite = request(cseq=3)
    dialog = Dialog.from_uac(invite, _with(response(invite, 200), Header("Contact", "<sip:b@h>")))
    ack = dialog.create_request("ACK", "SIP/2.0/UDP me;branch=z9hG4bKy")
    assert ack.cseq.number == 3 and ack.cseq.method == "ACK"
    assert isinstance(ack.uri, SipUri) and ack.uri.host == "h"


def test_uas_dialog_and_out_of_order_requests_are_refused() -> None:
    invite = request(cseq=5)
    dialog = Dialog.from_uas(invite, "local-tag")
    assert dialog.id.local_tag == "local-tag" and dialog.id.remote_tag == "caller-tag"
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5060"
    assert dialog.accept_remote_request(request("BYE", cseq=6, to_tag="local-tag"))
    assert not dialog.accept_remote_request(request("INFO", cseq=4, to_tag="local-tag"))


def test_2xx_is_retransmitted_at_t1_doubling_to_t2_until_64_t1() -> None:
    config = TimerConfig()
    retransmitter = SuccessRetransmitter(response(request(), 200), UDP_PEER, 0.0, config)
    sends, gave_up = [], None
    while (deadline := retransmitter.deadline()) is not None:
        resend, give_up = retransmitter.on_timer(deadline)
        if resend:
            sends.append(deadline)
        if give_up:
            gave_up = deadline
    assert sends == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert gave_up == 32.0


def test_2xx_over_tcp_is_not_retransmitted_but_the_ack_is_still_awaited() -> None:
    config = TimerConfig()
    tcp = Peer("TCP", "192.0.2.10", 5060)
    retransmitter = SuccessRetransmitter(response(request(), 200), tcp, 0.0, config)
    assert retransmitter.deadline() == 32.0
    assert retransmitter.on_timer(32.0) == (False, True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["BYE", "INFO", "ACK", "INVITE"]), st.integers(1, 20))))
def test_remote_cseq_never_goes_backwards(requests: list[tuple[str, int]]) -> None:
    dialog = Dialog.from_uas(request(cseq=1), "local-tag")
    highest = 1
    for method, cseq in requests:
        accepted = dialog.accept_remote_request(request(method, cseq=cseq, to_tag="local-tag"))
        if method == "ACK":
            assert accepted  # ACK reuses the INVITE's number
        else:
            assert accepted == (cseq >= highest)
            highest = max(highest, cseq) if accepted else highest
        assert dialog.remote_seq == highest
