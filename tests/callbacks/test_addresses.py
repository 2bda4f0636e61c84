"""Which addresses a callback may go to: the IANA special-purpose ranges, embedded IPv4."""

from __future__ import annotations

import ipaddress

import pytest

from switchboard.callbacks.addresses import is_loopback_name, literal_address, why_not_public

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "100.63.255.255",
    "100.128.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "192.0.1.1",
]
NOT_PUBLIC = {
    "0.0.0.0": "0.0.0.0/8",
    "10.1.2.3": "10.0.0.0/8",
    "100.64.0.1": "100.64.0.0/10",
    "100.127.255.254": "100.64.0.0/10",
    "127.0.0.1": "127.0.0.0/8",
    "169.254.169.254": "169.254.0.0/16",
    "172.16.0.1": "172.16.0.0/12",
    "192.0.0.8": "192.0.0.0/24",
    "192.0.0.170": "192.0.0.0/24",
    "192.0.2.1": "192.0.2.0/24",
    "192.88.99.1": "192.88.99.0/24",
    "192.168.1.1": "192.168.0.0/16",
    "198.18.0.1": "198.18.0.0/15",
    "198.19.255.255": "198.18.0.0/15",
    "198.51.100.7": "198.51.100.0/24",
    "203.0.113.9": "203.0.113.0/24",
    "224.0.0.1": "224.0.0.0/4",
    "239.255.255.250": "224.0.0.0/4",
    "240.0.0.1": "240.0.0.0/4",
    "255.255.255.255": "240.0.0.0/4",
    "::": "::/8",
    "::1": "::/8",
    "::7f00:1": "::/8",  # IPv4-compatible 127.0.0.1
    "::ffff:127.0.0.1": "127.0.0.0/8",
    "::ffff:100.64.0.1": "100.64.0.0/10",
    "64:ff9b::a00:1": "10.0.0.0/8",  # NAT64 of 10.0.0.1
    "64:ff9b:1::1": "::/8",  # local-use NAT64, RFC 8215
    "2002:a00:1::": "10.0.0.0/8",  # 6to4 of 10.0.0.1
    "2002:7f00:1::": "127.0.0.0/8",
    "100::1": "100::/64",
    "2001::1": "2001::/23",  # Teredo
    "2001:db8::1": "2001:db8::/32",
    "3fff::1": "3fff::/20",
    "fd00::1": "fc00::/7",
    "fe80::1": "fe80::/10",
    "fec0::1": "fec0::/10",
    "ff02::1": "ff00::/8",
}


@pytest.mark.parametrize("address", PUBLIC)
def test_globally_reachable_unicast_addresses_are_public(address: str) -> None:
    assert why_not_public(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("address", "network"), NOT_PUBLIC.items())
def test_special_purpose_ranges_are_refused_naming_the_range(address: str, network: str) -> None:
    why = why_not_public(ipaddress.ip_address(address))
    assert why is not None and network in why


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("fe80::1%25eth0", "fe80::1"),
        ("2130706433", "127.0.0.1"),  # decimal
        ("1681915905", "100.64.0.1"),
        ("0x7f.1", "127.0.0.1"),  # hexadecimal, short form
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("127.1", "127.0.0.1"),
        ("crm.example.com", None),
        ("1.example", None),
    ],
)
def test_hosts_are_read_as_the_resolver_reads_them(host: str, address: str | None) -> None:
    expected = None if address is None else ipaddress.ip_address(address)
    assert literal_address(host) == expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.localhost", True),
        ("localhost.localdomain", True),
        ("localhost.example.com", False),
        ("example.com", False),
    ],
)
def test_localhost_names_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback_name(host) is loopback
