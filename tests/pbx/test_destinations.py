"""Destination resolution (DESIGN §5), including the seed's examples."""

from __future__ import annotations

import pytest

from switchboard.config import load_config, parse_config
from switchboard.pbx.destinations import (
    EndUser,
    GroupTarget,
    InvalidDestinationError,
    PstnTarget,
    UserTarget,
    resolve,
)

DOMAIN = load_config(None).domains[0]  # the bundled example directory


def test_seed_example_1_plain_pstn_number() -> None:
    destination = resolve("0312341234", DOMAIN)
    assert isinstance(destination.target, PstnTarget)
    assert destination.target.number == "0312341234" and destination.target.trunk.name == "pstn"
    assert destination.end_user is None and destination.calling_number is None


def test_seed_example_2_a_user_by_name() -> None:
    destination = resolve("erik", DOMAIN)
    assert isinstance(destination.target, UserTarget) and destination.target.user.id == 1010


def test_seed_example_3_object_form_with_end_user() -> None:
    destination = resolve(
        {"called_number": "0312341234", "calling_number": "05068680000",
         "end_user": {"id": "#1234", "name": "Tim Tyler"}},
        DOMAIN,
    )  # fmt: skip
    assert isinstance(destination.target, PstnTarget)
    assert destination.calling_number == "05068680000"
    assert destination.end_user == EndUser(id="#1234", name="Tim Tyler")


def test_seed_example_object_with_integer_id_and_every_end_user_field() -> None:
    destination = resolve(
        {"called_number": "0377778888", "calling_number": "0506868002",
         "end_user": {"id": 11223344, "name": "Popeye", "organization": "Thimble Theatre",
                      "avatar": "https://gravatar/3osdj93j9jw3j9j93w939w5.jpg"}},
        DOMAIN,
    )  # fmt: skip
    assert destination.end_user is not None and destination.end_user.id == "11223344"
    assert destination.end_user.organization == "Thimble Theatre"


def test_end_user_prefecture_in_both_forms_and_id_as_string_or_number() -> None:
    wanted = EndUser(id="#1234", name="田中 太郎", prefecture="東京都")
    given = {"id": "#1234", "name": "田中 太郎", "prefecture": "東京都"}
    assert resolve({"called_number": "0312341234", "end_user": given}, DOMAIN).end_user == wanted
    prefixed = resolve("{id=#1234,name=田中 太郎,prefecture=東京都}0312341234", DOMAIN)
    assert prefixed.end_user == wanted
    numbered = resolve({"called_number": "0312341234", "end_user": {"id": 42}}, DOMAIN)
    assert numbered.end_user == EndUser(id="42")


@pytest.mark.parametrize(
    "end_user",
    [{"id": True}, {"id": 1.5}, {"name": 7}, {"prefecture": ["x"]}, {"name": "x" * 1025}],
)
def test_end_user_fields_of_the_wrong_type_or_size_are_invalid(end_user: object) -> None:
    with pytest.raises(InvalidDestinationError, match="end_user"):
        resolve({"called_number": "0312341234", "end_user": end_user}, DOMAIN)


def test_seed_example_5_prefix_sets_the_end_user_name() -> None:
    destination = resolve("{name=James Hudson}0312341234", DOMAIN)
    assert destination.end_user == EndUser(name="James Hudson")
    assert isinstance(destination.target, PstnTarget)
    with_number = resolve("{calling_number=0501110001, id=7}1002", DOMAIN)
    assert with_number.calling_number == "0501110001" and with_number.end_user == EndUser(id="7")
    assert isinstance(with_number.target, UserTarget) and with_number.target.user.name == "bob"


@pytest.mark.parametrize(
    ("text", "kind", "name"),
    [
        ("support", GroupTarget, "support"),
        ("1111", GroupTarget, "support"),  # group extension
        ("1001", UserTarget, "alice"),  # user extension
        ("0501110001", UserTarget, "alice"),  # user DID before PSTN
        ("0501111111", GroupTarget, "support"),  # group DID
    ],
)
def test_names_extensions_and_dids_come_before_pstn(text: str, kind: type, name: str) -> None:
    target = resolve(text, DOMAIN).target
    assert isinstance(target, kind)
    assert (target.user if isinstance(target, UserTarget) else target.group).name == name  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("", "non-empty"),
        (42, "non-empty string or an object"),
        ("nobody", "no user, group"),
        ("9012345678", "allowed PSTN prefixes"),  # toll-fraud guard: only "0…" here
        ("{colour=red}0312341234", "unknown destination prefix field 'colour'"),
        ("{name=x 0312341234", "unterminated"),
        ("{calling_number=abc}0312341234", "calling_number"),
        ({"called_number": "abc"}, "called_number must be a number"),
        ({"called_number": "0312341234", "extra": 1}, "unknown destination field(s): extra"),
        ({"called_number": "0312341234", "end_user": "Tim"}, "end_user must be an object"),
        ({"called_number": "0312341234", "end_user": {"age": 3}}, "unknown end_user field"),
    ],
)
def test_invalid_destinations_say_why(destination: object, message: str) -> None:
    with pytest.raises(InvalidDestinationError, match=None) as info:
        resolve(destination, DOMAIN)
    assert message in str(info.value)


def test_pstn_needs_a_trunk() -> None:
    domain = parse_config(
        '[[domains]]\nname = "solo.example"\napi_token = "token-for-tests"\n'
    ).domains[0]
    with pytest.raises(InvalidDestinationError, match="no trunk"):
        resolve("0312341234", domain)


@pytest.mark.parametrize(
    ("destination", "allowed"),
    [
        ("0312341234", True),
        ("0612341234", True),
        ("0120444444", False),  # a national prefix the domain did not list (premium rate)
        ("+442071234567", False),  # international
        ("00442071234567", False),
        ("{calling_number=0312341234}0900123456", False),  # a prefix trick changes nothing
        ({"called_number": "+882345678"}, False),  # the object form is checked the same
        ({"called_number": 612341234}, False),
        ({"called_number": "0612341234"}, True),
    ],
)
def test_toll_fraud_guard_allows_only_the_domains_pstn_prefixes(
    destination: object, allowed: bool
) -> None:
    domain = parse_config(
        '[[domains]]\nname = "narrow.example"\napi_token = "token-for-tests"\n'
        'pstn_prefixes = ["03", "06"]\n'
        '[[domains.trunks]]\nname = "pstn"\naddress = "127.0.0.1:5080"\n'
    ).domains[0]
    if allowed:
        assert resolve(destination, domain).target.number.startswith(("03", "06"))  # type: ignore[union-attr]
    else:
        with pytest.raises(InvalidDestinationError, match="allowed PSTN prefixes"):
            resolve(destination, domain)


@pytest.mark.parametrize(
    ("calling", "allowed"),
    [
        ("0506868000", True),  # the domain's calling_number
        ("05068680000", True),  # listed in calling_numbers
        ("0501110001", True),  # alice's DID
        ("0312341234", False),  # someone else's number
        ("110", False),  # an emergency number as caller ID
    ],
)
def test_caller_id_is_limited_to_the_domains_own_numbers(calling: str, allowed: bool) -> None:
    for destination in (
        f"{{calling_number={calling}}}0312341234",
        {"called_number": "0312341234", "calling_number": calling},
    ):
        if allowed:
            assert resolve(destination, DOMAIN).calling_number == calling
        else:
            with pytest.raises(InvalidDestinationError, match="not one of this domain's numbers"):
                resolve(destination, DOMAIN)


@pytest.mark.parametrize("number", ["0044207123456", "0033442071234", "0101234567", "0990123456"])
def test_international_and_premium_rate_are_denied_by_default(number: str) -> None:
    domain = parse_config(
        '[[domains]]\nname = "default.example"\napi_token = "token-for-tests"\n'
        '[[domains.trunks]]\nname = "pstn"\naddress = "127.0.0.1:5080"\n'
    ).domains[0]
    with pytest.raises(InvalidDestinationError, match="is denied: international or premium"):
        resolve(number, domain)
    opened = domain.model_copy(update={"pstn_denied_prefixes": []})  # an operator's choice
    assert isinstance(resolve(number, opened).target, PstnTarget)
