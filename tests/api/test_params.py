"""Bounded parsing of what clients send: numbers, JSON bodies, SIP display names."""

from __future__ import annotations

import pytest

from switchboard.api.errors import ApiError
from switchboard.api.params import MAX_DIGITS, display_name, parse_json, whole_number


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("42", 42), ("9" * MAX_DIGITS, 10**18 - 1)])
def test_a_whole_number_of_ascii_digits_is_read(text: str, number: int) -> None:
    assert whole_number(text, "since") == number


@pytest.mark.parametrize(
    "text", ["", "-1", "+1", " 1", "1 ", "1_000", "1.0", "²", "١٢", "9" * (MAX_DIGITS + 1)]
)
def test_anything_else_is_an_invalid_parameter_naming_it(text: str) -> None:
    with pytest.raises(ApiError) as refused:
        whole_number(text, "since", http_status=400)
    assert refused.value.error_id == "invalid_parameter" and refused.value.http_status == 400
    assert "since" in refused.value.description


def test_a_json_body_keeps_its_numbers_up_to_the_bound() -> None:
    body = f'{{"a": {"9" * MAX_DIGITS}, "b": -{"9" * MAX_DIGITS}, "c": 1.5}}'
    assert parse_json(body.encode()) == {"a": 10**18 - 1, "b": -(10**18 - 1), "c": 1.5}


@pytest.mark.parametrize("number", ["9" * (MAX_DIGITS + 1), "-" + "9" * 5000])
def test_a_json_integer_past_the_bound_is_an_invalid_parameter(number: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_json(f'{{"answer_timeout": {number}}}'.encode())
    assert refused.value.error_id == "invalid_parameter" and refused.value.http_status == 400


@pytest.mark.parametrize(
    "raw", [b"NaN", b'{"a": Infinity}', b"[-Infinity]", b"[" * 100_000, b"\xff", b"{"]
)
def test_what_is_not_json_is_invalid_json_never_a_crash(raw: bytes) -> None:
    with pytest.raises(ApiError) as refused:
        parse_json(raw)
    assert refused.value.error_id == "invalid_json" and refused.value.http_status == 400


@pytest.mark.parametrize("name", ["Erik Lehnsherr", "Support (2nd line) #7", "", "x" * 64])
def test_printable_ascii_is_a_display_name(name: str) -> None:
    assert display_name(name, "calling_name") == name


@pytest.mark.parametrize(
    "name",
    [
        "a\r\nX-Injected: 1",
        "nul\x00",
        "tab\t",
        "esc\x1b",
        "del\x7f",
        'quote"',
        "back\\slash",
        "Grüße",
        "x" * 65,
        42,
        None,
    ],
)
def test_control_characters_quotes_and_length_are_refused(name: object) -> None:
    with pytest.raises(ApiError) as refused:
        display_name(name, "calling_name")
    assert refused.value.error_id == "invalid_parameter"
    assert "calling_name" in refused.value.description
