"""Media changes inside a call (hold, resume, a new codec or address), at the edge: a
peer's re-INVITE or UPDATE (RFC 3261 §14, RFC 3311) is relayed through the bridge.

The relay anchors media, so each leg has its own offer/answer with us (RFC 3264 §8):
- The offering leg's new SDP is answered on its own relay leg (its address, codec and
  direction change there: on hold it says ``sendonly``, we become ``recvonly``).
- When the call is bridged, the other answered leg is re-offered our relay port with the
  same direction (hold travels: the far phone hears it is on hold and stops sending); its
  answer completes our side, and only then is the first leg answered. A refusal there (a
  491 glare, a 488) is passed back, and the first leg's session stays as it was.
- Before the bridge, or toward a leg that is gone, the offer is answered locally.
- An offer without SDP gets our current offer; the peer's answer comes in its ACK.
Each new description we send on a leg carries the next ``o=`` version (RFC 3264 §8).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from switchboard.media import negotiation
from switchboard.media.relay import Leg as MediaLeg
from switchboard.sip import offer_answer
from switchboard.sip.errors import SipError
from switchboard.sip.message import Response
from switchboard.sip.sdp import SessionDescription, parse_sdp
from switchboard.sip.session import RemoteOffer, Session

if TYPE_CHECKING:
    from switchboard.pbx.live import LiveCall

log = logging.getLogger("switchboard.pbx")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def direction_of(sdp: bytes) -> str:
    """The offerer's direction for its audio (RFC 3264 §6.1), ``sendrecv`` by default."""
    description = parse_sdp(sdp)
    for media in description.media:
        if media.media == "audio":
            for name in DIRECTIONS:
                if any(key == name for key, _ in media.attributes):
                    return name
    return "sendrecv"


class MediaUpdates:
    """One call's media changes. It keeps no reference to its call (the hooks pass it),
    so nothing ties the call into a cycle once its legs are gone."""

    def __init__(self) -> None:
        # our o= version per relay leg: each leg is its own offer/answer with one peer
        self.versions: dict[str, int] = {}

    def next_version(self, media: MediaLeg) -> int:
        """Our next o= version on ``media`` (RFC 3264 §8: one more than the last we sent;
        counted only once that description is sent, see ``sent``)."""
        return self.versions.get(media.name, 1) + 1

    def sent(self, media: MediaLeg, description: SessionDescription) -> bytes:
        self.versions[media.name] = description.origin.session_version
        return bytes(description)

    def versioned(self, media: MediaLeg, description: SessionDescription) -> SessionDescription:
        version = self.next_version(media)
        return replace(description, origin=replace(description.origin, session_version=version))

    def on_offer(self, call: LiveCall, leg_id: str, offer: RemoteOffer) -> None:
        media, session = call.media_of(leg_id), call.sip.get(leg_id)
        if media is None or session is None:
            offer.reject(488)
            return
        before = media.snapshot()
        try:
            if not offer.body:
                self._offer_ours(call, leg_id, media, session, offer)
                return
            answer = negotiation.answer_offer(
                media, offer.body, call.tag_of(leg_id), session.peer.host
            )
        except (SipError, offer_answer.NotAcceptableError) as exc:
            log.info("refusing a media change on %s: %s", leg_id, exc)
            media.restore(before)
            offer.reject(488)
            return
        described = self.versioned(media, parse_sdp(answer))
        other = call.other_leg(leg_id)
        if other is None:
            offer.accept(self.sent(media, described))
            return
        other_id, other_session = other
        far = call.media_of(other_id)
        assert far is not None
        relayed = offer_answer.make_offer(
            far.host,
            far.port,
            call.tag_of(other_id),
            version=self.next_version(far),
            direction=direction_of(offer.body),
        )

        def done(result: asyncio.Future[Response]) -> None:
            response = result.result()
            if not 200 <= response.status < 300:
                media.restore(before)  # refused: the session goes on as it was (§14.1)
                offer.reject(response.status if response.status in (488, 491) else 488)
                return
            self.sent(far, relayed)
            try:
                negotiation.accept_answer(far, relayed, response.body, other_session.peer.host)
            except SipError as exc:
                log.info("unusable answer to a relayed offer: %s", exc)
            offer.accept(self.sent(media, described))

        other_session.reinvite(bytes(relayed)).add_done_callback(done)

    def _offer_ours(
        self, call: LiveCall, leg_id: str, media: MediaLeg, session: Session, offer: RemoteOffer
    ) -> None:
        ours = self.versioned(media, negotiation.make_offer(media, call.tag_of(leg_id)))
        offer.accept(self.sent(media, ours))

        def acked(future: asyncio.Future[bytes]) -> None:
            if future.cancelled() or not future.result():
                return
            try:
                negotiation.accept_answer(media, ours, future.result(), session.peer.host)
            except SipError as exc:
                log.info("unusable answer in an ACK: %s", exc)

        offer.acked.add_done_callback(acked)
