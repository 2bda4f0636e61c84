"""What a scripted phone or trunk does with an incoming INVITE: one script per call.

A script is data, chosen when the INVITE arrives: ``peer.on_invite`` holds either a script
or a function of the INVITE returning one (``by_number`` builds the usual one for trunks),
and may be changed between calls. Times (``after``) count in seconds of the loop's clock
from the INVITE's arrival, so on virtual time they are exact.

Every script except ``Silent`` takes the INVITE into a server transaction, whose 100 Trying
leaves at once (RFC 3261 §17.2.1). Answers carry an SDP answer to the offer from the
peer's own address (RFC 3264). A script that would ring or answer refuses an offer
nothing can be agreed with by 488 (§6) instead, as a real phone does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from switchboard.sip.message import Request
from switchboard.sip.uri import SipUri


@dataclass(frozen=True, slots=True)
class Answer:
    """Ring (180 at once, unless ``ring`` is false), then answer 200 ``after`` seconds.

    The 200 carries ``sdp`` verbatim when given (``b""``: no body), else an answer to the
    INVITE's offer, or an offer of our own when the INVITE had none (§13.2.1's late offer).
    ``hang_up_after``: send BYE that many seconds after answering (None: stay up).
    """

    after: float = 0.0
    sdp: bytes | None = None
    ring: bool = True
    hang_up_after: float | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse with ``status`` (486 Busy Here by default) ``after`` seconds; with ``ring``,
    ring meanwhile (a user who declines a ringing call, typically 603)."""

    status: int = 486
    after: float = 0.0
    ring: bool = False


@dataclass(frozen=True, slots=True)
class Ring:
    """Send ``status`` (180, or 183) at once and never answer: only the caller's CANCEL or
    timers end the call. With ``early_media``, the provisional carries the SDP answer
    (RFC 3960 early media)."""

    status: int = 180
    early_media: bool = False


@dataclass(frozen=True, slots=True)
class Trying:
    """Take the INVITE (its transaction's 100 Trying) and send nothing more: the caller's
    INVITE transaction then waits with no timer of its own (§17.1.1.2, Timer C's case)."""


@dataclass(frozen=True, slots=True)
class Silent:
    """Send nothing at all, not even 100 Trying, nor answers to a CANCEL: a phone gone
    off the network. The caller retransmits (Timer A) until Timer B gives it 408."""


Script = Answer | Reject | Ring | Trying | Silent
ScriptRule = Script | Callable[[Request], Script]


def resolve(rule: ScriptRule, invite: Request) -> Script:
    """The script for this INVITE."""
    if isinstance(rule, Answer | Reject | Ring | Trying | Silent):
        return rule
    return rule(invite)


def by_number(
    table: Mapping[str, Script], default: Script = Reject(404)
) -> Callable[[Request], Script]:
    """A rule choosing the script by the Request-URI's user part (the called number, as a
    trunk sees it); numbers not in ``table`` get ``default`` (404 Not Found)."""

    def rule(invite: Request) -> Script:
        user = invite.uri.user if isinstance(invite.uri, SipUri) else None
        return table.get(user or "", default)

    return rule
