"""The SDP offer/answer model (RFC 3264) for audio: PCMU, PCMA and telephone-event.

Rules:
- The answer has exactly as many m= lines as the offer, in the same order (§6).
- A stream we cannot use (not audio, not RTP/AVP, no common codec) is rejected with port 0
  (§6); an offer with no usable audio stream at all is refused (488, ``NotAcceptableError``).
- The answer uses the offer's payload type numbers (§6.1), keeps the offerer's codec
  order among those we support, and includes telephone-event (RFC 4733) only if offered.
- Directions mirror (§6.1): sendonly ↔ recvonly, inactive stays inactive (hold, §8.4).
- Each new offer from us increments the o= session version (§8).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from switchboard.quick_init import quick_init
from switchboard.sip.errors import SipError
from switchboard.sip.grammar import bounded_int
from switchboard.sip.sdp import Media, Origin, SessionDescription

PCMU = "PCMU"
PCMA = "PCMA"
TELEPHONE_EVENT = "telephone-event"
STATIC_PAYLOADS = {"0": (PCMU, 8000), "8": (PCMA, 8000)}
_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly",
           "inactive": "inactive"}  # fmt: skip


class NotAcceptableError(SipError):
    """No stream of the offer can be accepted: answer 488 (§6)."""


@quick_init
@dataclass(frozen=True, slots=True)
class Codec:
    payload_type: int
    name: str
    clock_rate: int = 8000

    @property
    def rtpmap(self) -> str:
        return f"{self.payload_type} {self.name}/{self.clock_rate}"


DEFAULT_CODECS = (Codec(0, PCMU), Codec(8, PCMA))
DEFAULT_TELEPHONE_EVENT = Codec(101, TELEPHONE_EVENT)


@dataclass(frozen=True, slots=True)
class NegotiatedAudio:
    """What both sides agreed for the audio stream."""

    remote_address: str
    remote_port: int
    codec: Codec
    telephone_event: Codec | None
    direction: str  # our direction
    ptime: int


def offered_codecs(media: Media) -> list[Codec]:
    rtpmap = media.rtpmap()
    codecs: list[Codec] = []
    for fmt in media.formats:
        if fmt in rtpmap:
            name, rate, _ = rtpmap[fmt]
        elif fmt in STATIC_PAYLOADS:
            name, rate = STATIC_PAYLOADS[fmt]
        else:
            continue
        payload_type = bounded_int(fmt, 127)  # RTP payload types are 7 bits (RFC 3550 §5.1)
        if payload_type is not None:
            codecs.append(Codec(payload_type, name, rate))
    return codecs


def make_offer(
    address: str,
    port: int,
    session_id: str,
    *,
    version: int = 1,
    codecs: tuple[Codec, ...] = DEFAULT_CODECS,
    telephone_event: Codec | None = DEFAULT_TELEPHONE_EVENT,
    direction: str = "sendrecv",
    ptime: int = 20,
) -> SessionDescription:
    all_codecs = codecs + ((telephone_event,) if telephone_event else ())
    attributes: list[tuple[str, str | None]] = [("rtpmap", c.rtpmap) for c in all_codecs]
    if telephone_event:
        attributes.append(("fmtp", f"{telephone_event.payload_type} 0-16"))
    attributes += [("ptime", str(ptime)), (direction, None)]
    addrtype = "IP6" if ":" in address else "IP4"
    media = Media(
        "audio", port, "RTP/AVP", tuple(str(c.payload_type) for c in all_codecs),
        attributes=tuple(attributes),
    )  # fmt: skip
    return SessionDescription(
        origin=Origin("switchboard", session_id, version, address, addrtype=addrtype),
        session_name="switchboard",
        connection=f"IN {addrtype} {address}",
        media=(media,),
    )


def answer(
    offer: SessionDescription,
    address: str,
    port: int,
    session_id: str,
    *,
    supported: tuple[str, ...] = (PCMU, PCMA),
    ptime: int = 20,
) -> tuple[SessionDescription, NegotiatedAudio]:
    """Answer ``offer`` with one audio stream on ``address:port``; raise ``NotAcceptableError``."""
    answered: list[Media] = []
    chosen: NegotiatedAudio | None = None
    for media in offer.media:
        accepted = None if chosen else _accept_stream(offer, media, supported, ptime)
        if accepted is None:
            answered.append(Media(media.media, 0, media.proto, media.formats))
            continue
        codecs, negotiated = accepted
        chosen = negotiated
        attributes: list[tuple[str, str | None]] = [("rtpmap", c.rtpmap) for c in codecs]
        if negotiated.telephone_event:
            attributes.append(("fmtp", f"{negotiated.telephone_event.payload_type} 0-16"))
        attributes += [("ptime", str(ptime)), (negotiated.direction, None)]
        answered.append(
            Media("audio", port, media.proto, tuple(str(c.payload_type) for c in codecs),
                  attributes=tuple(attributes))
        )  # fmt: skip
    if chosen is None:
        raise NotAcceptableError("No common audio codec")
    addrtype = "IP6" if ":" in address else "IP4"
    description = SessionDescription(
        origin=Origin("switchboard", session_id, 1, address, addrtype=addrtype),
        session_name="switchboard",
        connection=f"IN {addrtype} {address}",
        media=tuple(answered),
    )
    return description, chosen


def _accept_stream(
    offer: SessionDescription, media: Media, supported: tuple[str, ...], ptime: int
) -> tuple[list[Codec], NegotiatedAudio] | None:
    if media.media != "audio" or media.proto != "RTP/AVP" or media.port == 0:
        return None
    offered = offered_codecs(media)
    usable = [c for c in offered if c.name.upper() in supported and c.clock_rate == 8000]
    if not usable:
        return None
    events = [c for c in offered if c.name.lower() == TELEPHONE_EVENT and c.clock_rate == 8000]
    address = offer.connection_address(media)
    if address is None:
        return None
    direction = _MIRROR.get(media.direction, "sendrecv")
    if address in ("0.0.0.0", "::"):
        direction = "inactive" if direction == "sendrecv" else direction  # RFC 2543 hold
    negotiated = NegotiatedAudio(
        remote_address=address,
        remote_port=media.port,
        codec=usable[0],
        telephone_event=events[0] if events else None,
        direction=direction,
        ptime=media.ptime or ptime,
    )
    return usable + events[:1], negotiated


def accept_answer(offer: SessionDescription, answer_sdp: SessionDescription) -> NegotiatedAudio:
    """Check an answer against our offer (§6, §7) and say what was agreed."""
    if len(answer_sdp.media) != len(offer.media):
        raise NotAcceptableError("Answer has a different number of m= lines than the offer")
    for ours, theirs in zip(offer.media, answer_sdp.media, strict=True):
        if theirs.port == 0 or ours.media != theirs.media:
            continue
        ours_pts = {str(c.payload_type): c for c in offered_codecs(ours)}
        codecs = [c for c in offered_codecs(theirs) if str(c.payload_type) in ours_pts]
        audio = [c for c in codecs if c.name.lower() != TELEPHONE_EVENT]
        address = answer_sdp.connection_address(theirs)
        if not audio or address is None:
            raise NotAcceptableError("Answer chose no codec we offered")
        events = [c for c in codecs if c.name.lower() == TELEPHONE_EVENT]
        return NegotiatedAudio(
            remote_address=address,
            remote_port=theirs.port,
            codec=audio[0],
            telephone_event=events[0] if events else None,
            direction=_MIRROR.get(theirs.direction, "sendrecv"),
            ptime=theirs.ptime or ours.ptime or 20,
        )
    raise NotAcceptableError("Answer accepted no stream")


class OfferAnswer:
    """Per-dialog bookkeeping (§4): who offered, and the o= version of our descriptions."""

    def __init__(self) -> None:
        self.local: SessionDescription | None = None
        self.remote: SessionDescription | None = None
        self.pending_offer: SessionDescription | None = None
        self.offer_from_us = False

    def local_offer(self, description: SessionDescription) -> SessionDescription:
        if self.pending_offer is not None:
            raise SipError("An offer is already outstanding (491 Request Pending)")
        if self.local is not None:
            description = replace(
                description,
                origin=replace(
                    self.local.origin, session_version=self.local.origin.session_version + 1
                ),
            )
        self.pending_offer, self.offer_from_us = description, True
        return description

    def remote_offer(self, description: SessionDescription) -> None:
        if self.pending_offer is not None:
            raise SipError("An offer is already outstanding (491 Request Pending)")
        self.pending_offer, self.offer_from_us = description, False

    def complete(self, answer_sdp: SessionDescription) -> None:
        if self.pending_offer is None:
            raise SipError("An answer without an offer")
        if self.offer_from_us:
            self.local, self.remote = self.pending_offer, answer_sdp
        else:
            self.local, self.remote = answer_sdp, self.pending_offer
        self.pending_offer = None
