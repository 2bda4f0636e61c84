"""Session timers (RFC 4028): what the two ends agree, and when each must act, without a clock.

A session whose peer vanished (power cut, NAT binding gone, crashed PBX) never sends BYE.
RFC 4028 makes the session expire unless it is refreshed: one end (the refresher) sends a
re-INVITE or UPDATE now and then, and the other hangs up when none comes.

Rules:
- ``Session-Expires = delta-seconds *(;param)`` with ``refresher=uac|uas`` (§4), compact form
  ``x``; ``Min-SE = delta-seconds`` (§5). A value that does not parse counts as absent: the
  request is then served without a timer rather than refused.
- No interval is below 90 s (§4, §5); ``MIN_SE`` is our floor unless configured higher.
- As UAS (§9): a request whose Session-Expires is below our Min-SE is refused with 422 and
  our Min-SE, when the UAC supports ``timer`` (only then can it retry). A UAC without
  ``timer`` cannot, so its interval (a proxy put it there) is raised to our Min-SE instead
  and we refresh: the short interval would only cost us. The 2xx copies the interval and
  names the refresher: the request's choice if it made one, else the UAC when it supports
  ``timer``, else the UAS (§9). ``Require: timer`` goes with it when the UAC supports
  ``timer`` (§9: MUST for ``refresher=uac``, SHOULD otherwise).
- A request without Session-Expires gets no timer, unless we bring an interval of our own
  (a policy for new sessions, or the running interval mid-dialog, §9 "MAY").
- As UAC (§7.2): the 2xx decides. With Session-Expires the timer runs with the refresher it
  names (none named: we refresh, the choice that cannot let a live call die). Without it
  there is no timer, mid-dialog too (a 2xx to a refresh without it turns the timer off),
  unless we asked for one and the peer does not know ``timer``: then we refresh alone.
- The refresher refreshes at half the interval (§10); the other end sends BYE at
  ``interval - min(32, interval / 3)`` after the last refresh (§10, "slightly before the
  session expiration"). Both count from the 2xx: when a UAS sends it, when a UAC gets it.
- A refresh that fails with 408 or 481 ends the dialog (§10, RFC 3261 §12.2.1.2; the
  session sends the BYE); other failures are retried ``RETRY`` seconds later. The refresher
  keeps no expiry of its own: a refresh that gets no answer ends as 408 (Timer F, 32 s),
  and a peer that answers is alive.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import WSP, parse_number, parse_params
from switchboard.sip.headers import Header
from switchboard.sip.message import MAX_UINT32, Request, Response

MIN_SE = 90  # §4, §5: the smallest interval anybody may ask for
RETRY = 4.0  # seconds before a refresh that failed without ending the dialog is tried again
TIMER = "timer"  # the option tag (§3)


class Refresher(enum.Enum):
    """Which end refreshes, named from the transaction that negotiated it (§4)."""

    UAC = "uac"
    UAS = "uas"


@dataclass(frozen=True, slots=True)
class SessionExpires:
    interval: int
    refresher: Refresher | None = None

    def __str__(self) -> str:
        if self.refresher is None:
            return str(self.interval)
        return f"{self.interval};refresher={self.refresher.value}"


def parse_session_expires(value: str | None) -> SessionExpires | None:
    """``None`` when absent or unreadable; an unknown refresher value counts as unnamed."""
    if value is None:
        return None
    number, _, params = value.partition(";")
    try:
        interval = parse_number(number.strip(WSP), MAX_UINT32, "Session-Expires")
        named = parse_params(params).get("refresher") if params else None
    except ParseError:
        return None
    refresher = {"uac": Refresher.UAC, "uas": Refresher.UAS}.get((named or "").lower())
    return SessionExpires(interval, refresher)


def parse_min_se(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_number(value.partition(";")[0].strip(WSP), MAX_UINT32, "Min-SE")
    except ParseError:
        return None


def supports_timer(message: Request | Response) -> bool:
    tags = message.get_all("Supported") + message.get_all("Require")
    return any(tag.strip(WSP).lower() == TIMER for tag in tags)


@dataclass(frozen=True, slots=True)
class Agreed:
    """The terms a UAS puts in its 2xx (§9)."""

    interval: int
    refresher: Refresher
    require: bool  # the UAC supports ``timer``: say ``Require: timer``

    @property
    def we_refresh(self) -> bool:
        return self.refresher is Refresher.UAS

    def headers(self) -> tuple[Header, ...]:
        value = str(SessionExpires(self.interval, self.refresher))
        required = (Header("Require", TIMER),) if self.require else ()
        return (Header("Session-Expires", value), *required)


@dataclass(frozen=True, slots=True)
class TooBrief:
    """Refuse with 422 and our Min-SE (§6, §9)."""

    min_se: int

    def headers(self) -> tuple[Header, ...]:
        return (Header("Min-SE", str(self.min_se)),)


def negotiate_as_uas(
    request: Request, *, min_se: int = MIN_SE, default: int | None = None
) -> Agreed | TooBrief | None:
    """What to answer ``request`` (an INVITE, re-INVITE or UPDATE) with; None: no timer.

    ``default`` is the interval we bring when the request asks for none.
    """
    asked = parse_session_expires(request.get("Session-Expires"))
    supported = supports_timer(request)
    if asked is None:
        if default is None:
            return None
        floor = max(min_se, parse_min_se(request.get("Min-SE")) or 0)
        asked = SessionExpires(max(default, floor))
    elif asked.interval < min_se:
        if supported:
            return TooBrief(min_se)
        asked = SessionExpires(min_se, Refresher.UAS)
    refresher = asked.refresher or (Refresher.UAC if supported else Refresher.UAS)
    if not supported:
        refresher = Refresher.UAS  # a UAC that knows no timer will never refresh
    return Agreed(asked.interval, refresher, require=supported)


def terms_from_2xx(response: Response, asked: int | None) -> tuple[int, bool] | None:
    """As UAC: (interval, whether we refresh) from a 2xx, or None for no timer (§7.2).

    ``asked`` is the interval our request carried. A 2xx without Session-Expires from a
    peer that does not know ``timer`` leaves the refreshing to us, at that interval (§7.2);
    from one that does, it turns the timer off.
    """
    granted = parse_session_expires(response.get("Session-Expires"))
    if granted is None:
        if asked is None or supports_timer(response):
            return None
        return asked, True
    return granted.interval, granted.refresher is not Refresher.UAS


def request_headers(interval: int, we_refresh: bool, min_se: int) -> tuple[Header, ...]:
    """Session-Expires and Min-SE for a re-INVITE or UPDATE we send while a timer runs
    (§7.4): the same refresher as before, seen from this new transaction."""
    refresher = Refresher.UAC if we_refresh else Refresher.UAS
    return (
        Header("Session-Expires", str(SessionExpires(interval, refresher))),
        Header("Min-SE", str(min_se)),
    )


class Due(enum.Enum):
    REFRESH = "refresh"  # send a refresh now
    EXPIRE = "expire"  # no refresh came: send BYE


@dataclass(slots=True)
class SessionTimer:
    """One dialog's running timer: two deadlines counted from the last 2xx."""

    interval: int
    we_refresh: bool
    started: float
    refresh_due: float | None = None  # None: the peer refreshes, or our refresh is in flight

    @classmethod
    def start(cls, interval: int, we_refresh: bool, now: float) -> SessionTimer:
        timer = cls(interval, we_refresh, now)
        timer.restart(interval, we_refresh, now)
        return timer

    def restart(self, interval: int, we_refresh: bool, now: float) -> None:
        """A 2xx to a refresh (either way) starts the interval again (§10)."""
        self.interval, self.we_refresh, self.started = interval, we_refresh, now
        self.refresh_due = now + interval / 2 if we_refresh else None

    @property
    def expires_at(self) -> float:
        return self.started + self.interval - min(32, self.interval / 3)

    def deadline(self) -> float | None:
        """When ``due`` has something to say; None while our refresh is in flight."""
        return self.refresh_due if self.we_refresh else self.expires_at

    def due(self, now: float) -> Due | None:
        """What is due at ``now``; a refresh handed out is in flight until its answer."""
        if not self.we_refresh:
            return Due.EXPIRE if now >= self.expires_at else None
        if self.refresh_due is not None and now >= self.refresh_due:
            self.refresh_due = None
            return Due.REFRESH
        return None

    def refresh_failed(self, now: float) -> None:
        """Our refresh failed without ending the dialog, or could not go now: try again."""
        if self.we_refresh:
            self.refresh_due = now + RETRY
