"""Offers and answers inside a dialog (RFC 3261 §14, RFC 3311 §5.2, RFC 3264 §8): who may
offer now, and whether an offer changes anything.

Rules:
- One offer at a time per dialog: ``STABLE``, ``LOCAL_OFFER`` (ours awaits its answer) or
  ``REMOTE_OFFER`` (theirs awaits ours). ``TABLE`` lists every transition; any other
  (state, input) pair is a ``ProtocolError`` in our own sequencing.
- ``screen`` says what an incoming re-INVITE or UPDATE gets before anything else: 491 when
  it carries an offer, or is a re-INVITE, while our offer or our re-INVITE is outstanding
  (§14.2 "MUST return a 491", RFC 3311 §5.2); 500 with Retry-After while theirs is (§14.2
  for a second INVITE, RFC 3311 §5.2 for an offer). An UPDATE without an offer only
  refreshes the session and is always taken.
- An offer that names the same o= session and version as the last description the peer
  sent changes nothing (RFC 3264 §8: an unchanged description keeps its version): it is a
  refresh. It is answered with our last description restricted to the formats it offers
  (§6.1: an answer lists only offered formats); only a restriction that changed something
  bumps our o= version (§8).
- A request of ours inside the dialog answered 408 or 481 (``ENDS_DIALOG``) means the
  dialog is over (§12.2.1.2); any other failure leaves the session as it was (§14.1).
"""

from __future__ import annotations

import enum
from dataclasses import replace

from switchboard.sip.errors import SipError
from switchboard.sip.sdp import Media, SdpError, parse_sdp

ENDS_DIALOG = frozenset({408, 481})  # §12.2.1.2: the dialog is gone, or the peer is


class ProtocolError(SipError):
    """We tried a step the offer/answer state does not allow: a bug above, not the peer."""


class Negotiation(enum.Enum):
    STABLE = "stable"
    LOCAL_OFFER = "local_offer"
    REMOTE_OFFER = "remote_offer"


class Step(enum.Enum):
    SEND_OFFER = "send_offer"
    RECEIVE_OFFER = "receive_offer"
    SEND_ANSWER = "send_answer"
    RECEIVE_ANSWER = "receive_answer"
    FAIL = "fail"  # the offer was refused: the previous session stands (§14.1, §14.2)


N, S = Negotiation, Step
TABLE: dict[tuple[Negotiation, Step], Negotiation] = {
    (N.STABLE, S.SEND_OFFER): N.LOCAL_OFFER,
    (N.STABLE, S.RECEIVE_OFFER): N.REMOTE_OFFER,
    (N.LOCAL_OFFER, S.RECEIVE_ANSWER): N.STABLE,
    (N.LOCAL_OFFER, S.FAIL): N.STABLE,
    (N.REMOTE_OFFER, S.SEND_ANSWER): N.STABLE,
    (N.REMOTE_OFFER, S.FAIL): N.STABLE,
}


class OfferAnswerState:
    """One dialog's offer/answer state and the descriptions that make the session."""

    def __init__(self) -> None:
        self.state = Negotiation.STABLE
        self.local_sdp = b""  # our side of the session in force, offer or answer
        self.remote_sdp = b""  # the peer's side
        self.pending = b""  # the offer awaiting its answer: in force once answered (§4)
        self.local_invite = False  # our re-INVITE awaits its final response
        self.remote_invite = False  # theirs awaits ours

    def step(self, step: Step, body: bytes = b"") -> Negotiation:
        new = TABLE.get((self.state, step))
        if new is None:
            raise ProtocolError(f"{step.value} in {self.state.value}")
        self.state = new
        if step in (Step.SEND_OFFER, Step.RECEIVE_OFFER):
            self.pending = body
        elif step is Step.RECEIVE_ANSWER:
            self.local_sdp, self.remote_sdp, self.pending = self.pending, body, b""
        elif step is Step.SEND_ANSWER:
            self.remote_sdp, self.local_sdp, self.pending = self.pending, body, b""
        else:
            self.pending = b""  # refused: the session in force stands (§14.1, §14.2)
        return new

    def screen(self, method: str, has_offer: bool) -> int | None:
        """The refusal an incoming re-INVITE/UPDATE gets now (491 or 500), or None."""
        if not has_offer and method != "INVITE":
            return None
        if self.state is Negotiation.LOCAL_OFFER or self.local_invite:
            return 491
        if self.state is Negotiation.REMOTE_OFFER or self.remote_invite:
            return 500
        return None

    def unchanged(self, offer: bytes) -> bool:
        """Whether ``offer`` repeats the peer's last description (same o= id and version)."""
        if not offer or not self.remote_sdp:
            return False
        if offer == self.remote_sdp:
            return True
        try:
            new, old = parse_sdp(offer).origin, parse_sdp(self.remote_sdp).origin
        except SdpError:
            return False
        same = (new.username, new.session_id, new.address, new.session_version)
        return same == (old.username, old.session_id, old.address, old.session_version)


def answer_unchanged(local: bytes, offer: bytes) -> bytes:
    """Our last description as the answer to an unchanged offer (see the module rules)."""
    try:
        ours, theirs = parse_sdp(local), parse_sdp(offer)
    except SdpError:
        return local
    if len(ours.media) != len(theirs.media):
        return local
    media = tuple(_restrict(m, t) for m, t in zip(ours.media, theirs.media, strict=True))
    if media == ours.media:
        return local
    restricted = replace(ours, media=media)
    return bytes(restricted.with_version(ours.origin.session_version + 1))


def _restrict(ours: Media, theirs: Media) -> Media:
    offered = set(theirs.formats)
    kept = tuple(f for f in ours.formats if f in offered)
    if not kept or kept == ours.formats:
        return ours
    attributes = tuple(
        (key, value)
        for key, value in ours.attributes
        if key not in ("rtpmap", "fmtp") or (value or "").split(" ", 1)[0] in kept
    )
    return replace(ours, formats=kept, attributes=attributes)
