"""Path (RFC 3327): a REGISTER relayed by the cluster's front keeps its Path, echoed when
the phone supports it, and INVITEs to that binding carry it as Route headers; a Path from
anyone else is ignored (it would make us send INVITEs wherever a stranger says)."""

from __future__ import annotations

from switchboard.registrar.location import Binding
from switchboard.registrar.registrar import RegisterDecision, Registrar, RegistrarSettings, apply
from switchboard.registrar.service import RegistrarService, Terminal
from switchboard.sip.digest import answer_challenge
from switchboard.sip.transaction.base import Peer
from tests.registrar.test_registrar import PHONE, _register, _registrar

FRONT = Peer("UDP", "192.0.2.1", 5060)
PATH = "<sip:192.0.2.1:5060;lr;received=sip:198.51.100.7:40000>"
SETTINGS = RegistrarSettings(front_host="192.0.2.1")


def _registered(
    registrar: Registrar, source: Peer, contact: str, extra: tuple[tuple[str, str], ...]
) -> RegisterDecision:
    """alice's REGISTER from ``source``, challenged then answered."""
    request = _register("alice", contact, extra=extra)
    challenge = registrar.handle(request, source, 0.0).response
    assert challenge.status == 401
    answer = answer_challenge(
        challenge.get_all("WWW-Authenticate")[0], method="REGISTER", uri=str(request.uri),
        username="alice", password="alice-secret", cnonce="c", nc=1,
    )  # fmt: skip
    authorized = _register("alice", contact, extra=(*extra, ("Authorization", answer)))
    decision = registrar.handle(authorized, source, 1.0)
    assert decision.response.status == 200
    apply(registrar.location, decision)
    return decision


def test_a_register_through_the_front_keeps_its_path_and_echoes_it_when_supported() -> None:
    extra = (("Path", PATH), ("Supported", "path"))
    decision = _registered(_registrar(settings=SETTINGS), FRONT, "<sip:alice@10.0.0.7>", extra)
    assert decision.response.get_all("Path") == [PATH]
    assert [b.path for b in decision.upserts] == [(PATH,)]


def test_a_path_from_anyone_but_the_front_is_ignored() -> None:
    extra = (("Path", "<sip:203.0.113.66:5060;lr>"), ("Supported", "path"))
    decision = _registered(_registrar(settings=SETTINGS), PHONE, "<sip:alice@192.0.2.50>", extra)
    assert decision.response.get_all("Path") == []
    assert [b.path for b in decision.upserts] == [()]


def test_a_terminal_with_a_path_is_rung_through_the_front_with_it_as_route() -> None:
    registrar = _registrar(settings=SETTINGS)
    service = RegistrarService(registrar, _NoStore(), registrar.directory, clock=lambda: 1.0)
    _registered(registrar, FRONT, "<sip:alice@10.0.0.7:5062>", (("Path", PATH),))
    (terminal,) = service.terminals("example.com", "alice")
    assert terminal == Terminal("sip:alice@10.0.0.7:5062", FRONT, (PATH,))


class _NoStore:
    async def load(self) -> list[Binding]:
        return []

    async def delete_expired(self, now: float) -> int:
        return 0

    async def save_batch(self, changes: list[tuple[list[Binding], list[Binding]]]) -> None:
        return None


def test_a_phone_behind_the_front_counts_as_registered_from_its_own_address() -> None:
    registrar = _registrar(settings=SETTINGS)
    _registered(registrar, FRONT, "<sip:alice@10.0.0.7:5062>", (("Path", PATH),))
    # its INVITEs, relayed by the front, say they came from 198.51.100.7
    assert registrar.location.registered_from("198.51.100.7")
    assert not registrar.location.registered_from("192.0.2.1")  # the front is no phone


def test_failures_behind_the_front_count_against_the_phone_not_the_front() -> None:
    registrar = _registrar(settings=SETTINGS)
    other = "<sip:192.0.2.1:5060;lr;received=sip:198.51.100.99:40000>"
    refused = False
    for _ in range(12):  # a guesser behind the front, until it is refused
        guess = _register("alice", "<sip:alice@10.0.0.9>", extra=(("Path", other),))
        challenge = registrar.handle(guess, FRONT, 0.0).response
        if challenge.status == 403:
            refused = True
            break
        answer = answer_challenge(
            challenge.get_all("WWW-Authenticate")[0], method="REGISTER", uri=str(guess.uri),
            username="alice", password="wrong", cnonce="c", nc=1,
        )  # fmt: skip
        wrong = _register(
            "alice", "<sip:alice@10.0.0.9>", extra=(("Path", other), ("Authorization", answer))
        )
        registrar.handle(wrong, FRONT, 0.0)
    assert refused
    # alice's own phone, behind the same front, still registers (from 198.51.100.7)
    _registered(registrar, FRONT, "<sip:alice@10.0.0.7>", (("Path", PATH),))
