"""The config file (DESIGN §4): every rule gives an error naming the key path and value."""

from __future__ import annotations

import pytest

from switchboard.config import (
    ConfigError,
    canonical_host,
    effective_default_domain,
    load_config,
    parse_config,
    summary,
)
from switchboard.directory import Directory

DOMAIN = '[[domains]]\nname = "example.com"\napi_token = "token-for-tests"\n'


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "test.toml")
    return str(info.value)


def test_the_bundled_example_is_valid_and_realistic() -> None:
    config = load_config(None)
    (domain,) = config.domains
    assert [g.name for g in domain.groups] == ["support", "sales"]
    assert {u.name for u in domain.users} >= {"alice", "bob", "erik"}
    lines = summary(config)
    assert lines[0].startswith("sip_listen  127.0.0.1:5060")
    assert any(
        "group support (id 1111, ext 1111, hunt): alice, bob, carol" in line for line in lines
    )


def test_every_key_of_the_design_is_accepted() -> None:
    config = parse_config(
        """
[server]
sip_listen = "127.0.0.1:5070"
sip_advertised_host = "192.0.2.1"
http_listen = "127.0.0.1:8090"
database = "postgresql+asyncpg://sb:pw@127.0.0.1/sb"
rtp_ports = [30000, 30100]
rtp_timeout = 30
ringback_tone = "eu"
max_call_seconds = 600
callback_allow_private = true

[[domains]]
name = "Example.COM"
api_token = "token-for-tests"
channel_limit = 10
calling_number = "0506868000"
callback_secret = "a-long-enough-secret"
pstn_prefixes = ["0", "+81"]
  [[domains.users]]
  id = 1
  name = "alice"
  label = "Alice"
  extension = "1001"
  did = "0501110001"
  email = "alice@example.com"
  sip_password = "pw"
  contacts = ["sip:alice@127.0.0.1:5071"]
  [[domains.groups]]
  id = 2
  name = "support"
  label = "Support"
  extension = "1111"
  did = "0501111111"
  strategy = "ring"
  answer_timeout = 20
  member_answer_timeout = 10
  members = ["alice"]
  [[domains.trunks]]
  name = "pstn"
  address = "gw.example.net:5080"
  transport = "tcp"
  username = "u"
  password = "p"
"""
    )
    assert config.domains[0].name == "example.com"  # domains compare case-insensitively
    assert Directory(config).user("EXAMPLE.com", "alice") is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[server]\nsip_listen = "nowhere"',
            "server.sip_listen: expected HOST:PORT, got 'nowhere'",
        ),
        ("[server]\nrtp_ports = [30000, 20000]", "server.rtp_ports: expected [LOW, HIGH]"),
        ('[server]\nringback_tone = "fr"', "server.ringback_tone"),
        ("[server]\nrtp_timeot = 5", "server.rtp_timeot: unknown key (got 5)"),
        ('[server]\ndatabase = "mysql://x"', "server.database: expected sqlite"),
        (DOMAIN + 'colour = "red"', "domains[0].colour: unknown key (got 'red')"),
        ('[[domains]]\nname = "example.com"\napi_token = "short"', "domains[0].api_token"),
        (
            DOMAIN + '[[domains.users]]\nid = 1\nname = "a"\nextension = "1001"\n'
            '[[domains.users]]\nid = 2\nname = "b"\nextension = "1001"\n',
            "domains[0].users[1].extension: duplicate extension '1001' (also users[0])",
        ),
        (
            DOMAIN + '[[domains.users]]\nid = 1\nname = "a"\n'
            '[[domains.groups]]\nid = 1\nname = "a"\n',
            "domains[0].groups[0].name: duplicate name 'a' (also users[0])",
        ),
        (
            DOMAIN + '[[domains.users]]\nid = 1\nname = "a"\ndid = "0501"\n'
            '[[domains.groups]]\nid = 1\nname = "g"\ndid = "0501"\n',
            "domains[0].groups[0].did: duplicate did '0501' (also users[0])",
        ),
        (
            DOMAIN
            + '[[domains.users]]\nid = 7\nname = "a"\n[[domains.users]]\nid = 7\nname = "b"\n',
            "domains[0].users[1].id: duplicate id 7 (also users[0])",
        ),
        (
            DOMAIN + '[[domains.groups]]\nid = 1\nname = "g"\nmembers = ["nobody"]\n',
            "domains[0].groups[0].members[0]: 'nobody' is not a user of this domain",
        ),
        (
            DOMAIN + '[[domains.trunks]]\nname = "t"\naddress = "10.0.0.1"\n',
            "domains[0].trunks[0].address: expected HOST:PORT, got '10.0.0.1'",
        ),
        (
            DOMAIN + '[[domains.trunks]]\nname = "t"\naddress = "bad host!:5060"\n',
            "domains[0].trunks[0].address: malformed host 'bad host!'",
        ),
        (
            DOMAIN + '[[domains.users]]\nid = 1\nname = "a"\ncontacts = ["tel:+1"]\n',
            "domains[0].users[0].contacts: contact 'tel:+1' is not a sip: or sips: URI",
        ),
        (
            DOMAIN + '[[domains.users]]\nid = 1\nname = "a"\nextension = "ext-1"\n',
            "domains[0].users[0].extension",
        ),
        (DOMAIN + DOMAIN, "domains[1].name: duplicate domain 'example.com' (also domains[0])"),
        (
            '[server]\ndefault_domain = "other.example"\n' + DOMAIN,
            "test.toml: server.default_domain: 'other.example' is not a configured domain",
        ),
        ('[server]\ndefault_domain = "bad domain"', "server.default_domain: malformed domain"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_errors_name_the_key_path_and_the_value(text: str, expected: str) -> None:
    message = _error(text)
    assert message.startswith("test.toml: ")
    assert expected in message


TWO_DOMAINS = DOMAIN + '[[domains]]\nname = "other.example"\napi_token = "token-for-tests"\n'


@pytest.mark.parametrize(
    ("server", "domains", "expected"),
    [
        ("", DOMAIN, "example.com"),  # the only domain
        ("", TWO_DOMAINS, None),  # several and no default: no one can say which
        ('default_domain = "Other.Example"', TWO_DOMAINS, "other.example"),
        ('default_domain = "example.com"', DOMAIN, "example.com"),
        ("", "", None),
    ],
)
def test_the_effective_default_domain(server: str, domains: str, expected: str | None) -> None:
    config = parse_config(f"[server]\n{server}\n{domains}")
    default = effective_default_domain(config)
    assert (default.name if default else None) == expected
    named = [line for line in summary(config) if line.startswith("default domain")]
    assert named == (
        [f"default domain {expected} (phones that use the server's address)"] if expected else []
    )


@pytest.mark.parametrize(
    ("listen", "advertised", "expected"),
    [
        ("127.0.0.1:5060", "127.0.0.1", {"127.0.0.1", "localhost"}),
        ("0.0.0.0:5060", "PBX.Example.NET.", {"pbx.example.net"}),  # a wildcard names no one
        ("192.0.2.1:5060", "198.51.100.7", {"192.0.2.1", "198.51.100.7"}),
        ("[::]:5060", "2001:DB8::0:1", {"2001:db8::1"}),
        ("[::1]:5060", "192.0.2.1", {"::1", "192.0.2.1", "localhost"}),
    ],
)
def test_the_hosts_that_name_the_server(listen: str, advertised: str, expected: set[str]) -> None:
    config = parse_config(
        f'[server]\nsip_listen = "{listen}"\nsip_advertised_host = "{advertised}"\n'
    )
    assert config.server.own_hosts == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("[2001:DB8:0::1]", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),  # an IPv4 peer seen through a dual-stack socket
        ("192.0.2.1", "192.0.2.1"),
    ],
)
def test_canonical_host(host: str, expected: str) -> None:
    assert canonical_host(host) == expected
