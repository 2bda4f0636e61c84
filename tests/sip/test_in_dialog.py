"""Offer/answer inside a dialog, without a network: the state table, glare screening and
what counts as an unchanged offer."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.sip import offer_answer
from switchboard.sip.in_dialog import (
    TABLE,
    Negotiation,
    OfferAnswerState,
    ProtocolError,
    Step,
    answer_unchanged,
)
from switchboard.sip.sdp import parse_sdp


def _sdp(version: int = 1, *, host: str = "192.0.2.1", session: str = "s1") -> bytes:
    return bytes(offer_answer.make_offer(host, 4000, session, version=version))


def test_every_state_and_step_is_either_listed_or_refused() -> None:
    for state, step in itertools.product(Negotiation, Step):
        negotiation = OfferAnswerState()
        negotiation.state = state
        if (state, step) in TABLE:
            assert negotiation.step(step, b"x") is TABLE[(state, step)]
        else:
            with pytest.raises(ProtocolError):
                negotiation.step(step)


@given(st.lists(st.sampled_from(list(Step)), max_size=30))
def test_any_walk_keeps_one_offer_at_a_time(steps: list[Step]) -> None:
    negotiation = OfferAnswerState()
    for step in steps:
        before = negotiation.state
        try:
            negotiation.step(step, step.value.encode())
        except ProtocolError:
            assert (before, step) not in TABLE
            continue
        pending = negotiation.state is not Negotiation.STABLE
        assert bool(negotiation.pending) == pending


def test_an_answer_puts_the_offer_in_force_and_a_refusal_keeps_the_old_session() -> None:
    negotiation = OfferAnswerState()
    negotiation.step(Step.SEND_OFFER, b"ours-1")
    negotiation.step(Step.RECEIVE_ANSWER, b"theirs-1")
    negotiation.step(Step.RECEIVE_OFFER, b"theirs-2")
    negotiation.step(Step.FAIL)
    assert (negotiation.local_sdp, negotiation.remote_sdp) == (b"ours-1", b"theirs-1")
    negotiation.step(Step.RECEIVE_OFFER, b"theirs-3")
    negotiation.step(Step.SEND_ANSWER, b"ours-3")
    assert (negotiation.local_sdp, negotiation.remote_sdp) == (b"ours-3", b"theirs-3")


@pytest.mark.parametrize(
    ("state", "ours", "theirs", "request_", "status"),
    [
        (Negotiation.STABLE, False, False, ("INVITE", True), None),
        (Negotiation.STABLE, False, False, ("INVITE", False), None),
        (Negotiation.LOCAL_OFFER, True, False, ("INVITE", True), 491),  # §14.2 glare
        (Negotiation.LOCAL_OFFER, True, False, ("INVITE", False), 491),
        (Negotiation.LOCAL_OFFER, False, False, ("UPDATE", True), 491),  # RFC 3311 §5.2
        (Negotiation.LOCAL_OFFER, False, False, ("UPDATE", False), None),  # a refresh
        (Negotiation.REMOTE_OFFER, False, True, ("INVITE", True), 500),  # §14.2, 2nd INVITE
        (Negotiation.REMOTE_OFFER, False, False, ("UPDATE", True), 500),  # RFC 3311 §5.2
        (Negotiation.STABLE, False, True, ("INVITE", False), 500),
    ],
)
def test_screening(
    state: Negotiation, ours: bool, theirs: bool, request_: tuple[str, bool], status: int | None
) -> None:
    """``ours``/``theirs``: a re-INVITE of ours/theirs awaits its final response."""
    negotiation = OfferAnswerState()
    negotiation.state = state
    negotiation.local_invite, negotiation.remote_invite = ours, theirs
    assert negotiation.screen(*request_) == status


def test_the_same_origin_and_version_is_unchanged_whatever_the_bytes() -> None:
    negotiation = OfferAnswerState()
    negotiation.remote_sdp = _sdp(3)
    assert negotiation.unchanged(_sdp(3))
    assert negotiation.unchanged(_sdp(3).replace(b"a=ptime:20\r\n", b""))
    assert not negotiation.unchanged(_sdp(4))
    assert not negotiation.unchanged(_sdp(3, session="other"))
    assert not negotiation.unchanged(b"")
    assert not negotiation.unchanged(b"not sdp")


def test_an_unchanged_answer_is_our_last_description_restricted_to_the_offer() -> None:
    ours = _sdp(5)
    theirs, _ = offer_answer.answer(parse_sdp(ours), "192.0.2.2", 5000, "s2", supported=("PCMA",))
    restricted = parse_sdp(answer_unchanged(ours, bytes(theirs)))
    assert restricted.media[0].formats == ("8", "101")
    assert [v for k, v in restricted.media[0].attributes if k == "rtpmap"] == [
        "8 PCMA/8000",
        "101 telephone-event/8000",
    ]
    assert restricted.origin.session_version == 6
    same, _ = offer_answer.answer(parse_sdp(ours), "192.0.2.2", 5000, "s2")
    assert answer_unchanged(ours, bytes(same)) == ours  # nothing to take out: byte for byte
    assert answer_unchanged(b"junk", bytes(same)) == b"junk"
