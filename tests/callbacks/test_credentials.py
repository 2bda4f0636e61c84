"""URL credentials at rest: sealed under the domain's key, bound to the URL, legacy rows."""

from __future__ import annotations

import pytest

from switchboard.callbacks import credentials

KEY = credentials.derive_key("example.com", "token-for-tests")
URL = "https://hook-user:s3cret%2Fpass@crm.example.com:8443/hooks/call?x=1#frag"


def test_a_url_without_userinfo_is_stored_as_it_is() -> None:
    url = "https://crm.example.com/hook?token=t"
    assert credentials.seal(url, KEY) == url
    assert credentials.open_sealed(url, KEY) == url
    assert not credentials.is_sealed(url)


def test_sealed_userinfo_hides_user_and_password_and_opens_to_the_url_given() -> None:
    stored = credentials.seal(URL, KEY)
    assert "s3cret" not in stored and "hook-user" not in stored
    assert stored.startswith("https://sealed.v1.")
    assert stored.endswith("@crm.example.com:8443/hooks/call?x=1#frag")
    assert credentials.is_sealed(stored)
    assert credentials.open_sealed(stored, KEY) == URL


def test_each_seal_uses_a_fresh_nonce() -> None:
    assert credentials.seal(URL, KEY) != credentials.seal(URL, KEY)
    assert credentials.seal(URL, KEY, nonce=b"n" * 16) == credentials.seal(URL, KEY, b"n" * 16)


@pytest.mark.parametrize(
    "key",
    [
        credentials.derive_key("example.com", "a-rotated-token"),
        credentials.derive_key("other.example", "token-for-tests"),  # another domain's
    ],
)
def test_another_key_does_not_open(key: bytes) -> None:
    with pytest.raises(credentials.SealError):
        credentials.open_sealed(credentials.seal(URL, KEY), key)


def test_sealed_credentials_moved_to_another_host_do_not_open() -> None:
    stored = credentials.seal(URL, KEY)
    moved = stored.replace("@crm.example.com:8443", "@attacker.example:8443")
    with pytest.raises(credentials.SealError):
        credentials.open_sealed(moved, KEY)


@pytest.mark.parametrize("back", [5, 20, 40, 70])
def test_an_altered_token_does_not_open(back: int) -> None:
    stored = credentials.seal(URL, KEY)
    userinfo, _, rest = stored.partition("@")
    at = len(userinfo) - back
    flipped = userinfo[:at] + ("A" if userinfo[at] != "A" else "B") + userinfo[at + 1 :]
    for altered in (flipped + "@" + rest, userinfo[:at] + "@" + rest, "https://sealed.v1.@x/"):
        with pytest.raises(credentials.SealError):
            credentials.open_sealed(altered, KEY)


def test_userinfo_stored_before_sealing_is_used_as_it_is() -> None:
    legacy = "https://user:pass@crm.example.com/hook"
    assert credentials.open_sealed(legacy, KEY) == legacy


@pytest.mark.parametrize(
    ("url", "bare", "userinfo"),
    [
        ("http://u:p@h/p@q", "http://h/p@q", "u:p"),  # an @ in the path is not userinfo
        ("http://u:p@w@h:1", "http://h:1", "u:p@w"),  # the last @ of the authority ends it
        ("http://h?u@x", "http://h?u@x", None),
        ("http://u@[::1]:8/#a@b", "http://[::1]:8/#a@b", "u"),
    ],
)
def test_userinfo_is_the_authority_up_to_its_last_at(
    url: str, bare: str, userinfo: str | None
) -> None:
    assert credentials.split_userinfo(url) == (bare, userinfo)
