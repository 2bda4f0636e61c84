"""Where a callback may go, as the API sees it, and how a URL is shown in logs."""

from __future__ import annotations

import ipaddress

import pytest

from switchboard.callbacks import policy

REFUSED = [
    "http://100.64.0.1/hook",
    "http://192.0.0.8/hook",
    "http://198.18.0.1/hook",
    "http://224.0.0.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:100.64.0.1]/hook",
    "http://[64:ff9b::a00:1]/hook",
    "http://[2002:a00:1::]/hook",
    "http://[fd00::1]/hook",
    "http://2130706433/hook",
    "http://1681915905/hook",
    "http://0x7f.1/hook",
    "http://api.localhost/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_urls_naming_an_address_that_is_not_public_are_refused(url: str) -> None:
    with pytest.raises(policy.CallbackUrlError, match=r"loopback name|not a public address"):
        policy.check_url(url, allow_private=False)
    assert policy.check_url(url, allow_private=True) == url


def test_the_refusal_names_the_range_and_its_rfc() -> None:
    with pytest.raises(policy.CallbackUrlError) as refused:
        policy.check_url("https://100.64.12.34:8443/hook", allow_private=False)
    assert str(refused.value) == (
        "100.64.12.34 is not a public address "
        "(100.64.0.0/10: shared address space, carrier-grade NAT, RFC 6598)"
    )


@pytest.mark.parametrize("url", ["http://[::1/hook", "http://h:99999/hook", "https:///x"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(policy.CallbackUrlError):
        policy.check_url(url, allow_private=True)


def test_a_name_is_refused_if_any_of_its_addresses_is_not_public() -> None:
    public, private = ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.7")
    policy.check_addresses("crm.example.com", [public], allow_private=False)
    with pytest.raises(policy.CallbackUrlError, match=r"crm.example.com \(10.0.0.7\)"):
        policy.check_addresses("crm.example.com", [public, private], allow_private=False)
    policy.check_addresses("crm.example.com", [public, private], allow_private=True)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@crm.example.com/h?q=1", "https://***@crm.example.com/h?q=1"),
        ("https://apikey@crm.example.com:8443/h", "https://***@crm.example.com:8443/h"),
        ("https://u:p@ss@h/x", "https://***@h/x"),
        ("https://crm.example.com/h", "https://crm.example.com/h"),
    ],
)
def test_logs_show_urls_without_userinfo(url: str, shown: str) -> None:
    assert policy.redact(url) == shown
