"""RFC 4028 negotiation and deadlines, without a clock."""

from __future__ import annotations

import pytest

from switchboard.sip.message import Request, Response, headers, parse_message
from switchboard.sip.session_timer import (
    RETRY,
    Agreed,
    Due,
    Refresher,
    SessionExpires,
    SessionTimer,
    TooBrief,
    negotiate_as_uas,
    parse_min_se,
    parse_session_expires,
    terms_from_2xx,
)
from tests.sip.factories import request, response


def _invite(*pairs: tuple[str, str]) -> Request:
    base = request("INVITE")
    return base.with_headers(base.headers + headers(*pairs))


def _ok(*pairs: tuple[str, str]) -> Response:
    base = response(request("INVITE"), 200)
    return base.with_headers(base.headers + headers(*pairs))


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("1800", SessionExpires(1800)),
        ("90;refresher=uac", SessionExpires(90, Refresher.UAC)),
        ("90 ; refresher=UAS;x=1", SessionExpires(90, Refresher.UAS)),
        ("90;refresher=proxy", SessionExpires(90)),
        ("ninety", None),
        ("9" * 30, None),
        (None, None),
    ],
)
def test_session_expires_is_read_leniently(value: str | None, parsed: SessionExpires) -> None:
    assert parse_session_expires(value) == parsed


def test_min_se_is_a_number_with_optional_parameters() -> None:
    assert parse_min_se("120;x=y") == 120 and parse_min_se("x") is None


def test_the_compact_form_x_is_read_too() -> None:
    raw = bytes(_invite()).replace(b"Content-Length", b"x: 300\r\nContent-Length")
    invite = parse_message(raw)
    assert isinstance(invite, Request)
    assert negotiate_as_uas(invite) == Agreed(300, Refresher.UAS, require=False)


def test_a_uac_that_supports_timer_refreshes_when_it_named_nobody() -> None:
    terms = negotiate_as_uas(_invite(("Supported", "timer"), ("Session-Expires", "1800")))
    assert terms == Agreed(1800, Refresher.UAC, require=True)
    assert terms is not None and not terms.we_refresh
    assert [(h.name, h.value) for h in terms.headers()] == [
        ("Session-Expires", "1800;refresher=uac"),
        ("Require", "timer"),
    ]


def test_the_uacs_choice_of_refresher_is_copied() -> None:
    asked = _invite(("Supported", "timer"), ("Session-Expires", "600;refresher=uas"))
    assert negotiate_as_uas(asked) == Agreed(600, Refresher.UAS, require=True)


def test_a_uac_without_timer_support_never_refreshes() -> None:
    asked = _invite(("Session-Expires", "600;refresher=uac"))
    assert negotiate_as_uas(asked) == Agreed(600, Refresher.UAS, require=False)


def test_too_brief_is_refused_with_our_min_se_when_the_uac_can_retry() -> None:
    asked = _invite(("Supported", "timer"), ("Session-Expires", "60"))
    refusal = negotiate_as_uas(asked)
    assert refusal == TooBrief(90)
    assert isinstance(refusal, TooBrief) and refusal.headers()[0].value == "90"
    assert negotiate_as_uas(asked, min_se=300) == TooBrief(300)


def test_too_brief_from_a_uac_that_cannot_retry_is_raised_and_refreshed_by_us() -> None:
    asked = _invite(("Session-Expires", "60"))
    assert negotiate_as_uas(asked) == Agreed(90, Refresher.UAS, require=False)


def test_no_timer_unless_asked_or_brought() -> None:
    assert negotiate_as_uas(_invite(("Supported", "timer"))) is None
    brought = negotiate_as_uas(_invite(("Supported", "timer"), ("Min-SE", "200")), default=120)
    assert brought == Agreed(200, Refresher.UAC, require=True)  # never below their Min-SE


def test_the_2xx_decides_for_the_uac() -> None:
    assert terms_from_2xx(_ok(("Session-Expires", "300;refresher=uac")), None) == (300, True)
    assert terms_from_2xx(_ok(("Session-Expires", "300;refresher=uas")), 300) == (300, False)
    assert terms_from_2xx(_ok(("Session-Expires", "300")), 300) == (300, True)
    assert terms_from_2xx(_ok(("Supported", "timer")), 300) is None  # turned off
    assert terms_from_2xx(_ok(), 300) == (300, True)  # a peer without timers: we refresh
    assert terms_from_2xx(_ok(), None) is None


@pytest.mark.parametrize(
    ("interval", "refresh", "expiry"), [(90, 45.0, 60.0), (1800, 900.0, 1768.0)]
)
def test_the_refresher_refreshes_at_half_and_the_other_end_gives_up_before_expiry(
    interval: int, refresh: float, expiry: float
) -> None:
    ours = SessionTimer.start(interval, True, 10.0)
    theirs = SessionTimer.start(interval, False, 10.0)
    assert ours.deadline() == 10.0 + refresh and theirs.deadline() == 10.0 + expiry
    assert ours.due(10.0 + refresh - 0.001) is None
    assert ours.due(10.0 + refresh) is Due.REFRESH
    assert ours.deadline() is None and ours.due(10.0 + expiry) is None  # in flight
    assert theirs.due(10.0 + expiry - 0.001) is None
    assert theirs.due(10.0 + expiry) is Due.EXPIRE


def test_a_refresh_restarts_both_deadlines_and_a_failed_one_is_retried() -> None:
    timer = SessionTimer.start(90, True, 0.0)
    assert timer.due(45.0) is Due.REFRESH
    timer.refresh_failed(46.0)
    assert timer.deadline() == 46.0 + RETRY
    timer.restart(120, False, 50.0)
    assert timer.deadline() == 50.0 + 120 - 32
