"""ApiAuth: Basic credentials and the per-source throttle, with a fake clock."""

from __future__ import annotations

import base64

import pytest

from switchboard.api.auth import ApiAuth
from switchboard.api.errors import ApiError
from switchboard.config import parse_config
from switchboard.directory import Directory
from switchboard.throttle import ThrottleSettings

CONFIG = """
[[domains]]
name = "example.com"
api_token = "right-token"
[[domains]]
name = "other.example"
api_token = "other-token"
"""


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _auth(clock: Clock) -> ApiAuth:
    settings = ThrottleSettings(max_failures=3, window=60, block_seconds=30)
    return ApiAuth(Directory(parse_config(CONFIG)), settings, clock)


def _error_id(auth: ApiAuth, source: str, header: str) -> str:
    with pytest.raises(ApiError) as caught:
        auth.domain(source, header)
    return caught.value.error_id


def test_right_token_names_its_domain_and_any_wrong_one_is_refused() -> None:
    auth = ApiAuth(Directory(parse_config(CONFIG)))
    assert auth.domain("192.0.2.1", _basic("example.com", "right-token")).name == "example.com"
    assert auth.domain("192.0.2.1", _basic("other.example", "other-token")).name == "other.example"
    for header in (
        _basic("example.com", "other-token"),  # another domain's token
        _basic("nosuch.example", "right-token"),
        _basic("example.com", ""),
        "Bearer right-token",
        "Basic ###",
        "",
    ):
        assert _error_id(auth, "192.0.2.1", header) == "authentication_required", header


def test_a_source_that_keeps_failing_is_refused_with_429_even_with_the_right_token() -> None:
    clock = Clock()
    auth = _auth(clock)
    for _ in range(3):
        assert _error_id(auth, "192.0.2.66", _basic("example.com", "guess")) == (
            "authentication_required"
        )
    with pytest.raises(ApiError) as caught:
        auth.domain("192.0.2.66", _basic("example.com", "right-token"))
    assert caught.value.error_id == "too_many_failures"
    assert caught.value.http_status == 429
    assert caught.value.headers == {"Retry-After": "30"}
    # Another source is not affected.
    assert auth.domain("192.0.2.1", _basic("example.com", "right-token")).name == "example.com"
    clock.now += 20
    assert _error_id(auth, "192.0.2.66", _basic("example.com", "right-token")) == (
        "too_many_failures"
    )
    clock.now += 10  # the block is over
    assert auth.domain("192.0.2.66", _basic("example.com", "right-token")).name == "example.com"
    assert auth.counters == {"api_auth_failures": 3, "api_auth_refused_throttled": 2}
