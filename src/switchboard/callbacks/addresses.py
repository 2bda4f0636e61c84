"""Which addresses a callback may be sent to (API §3), pure.

Rules:
- A callback goes only to a globally reachable unicast address. The ranges the IANA
  special-purpose registries (RFC 6890 and its updates) mark as not globally reachable are
  refused by the table below, each with the RFC that sets it aside; ``is_global`` is checked
  as well, so a range Python's table knows and ours does not is refused too.
- An IPv6 address that carries an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``) is judged by the IPv4 address it leads to.
- A host is read the way the resolver reads it: an IP literal, or one of the legacy IPv4
  forms ``inet_aton`` accepts (``2130706433``, ``127.1``, ``0x7f.1``, ``0177.0.0.1``), so
  a number spelled differently is judged as the address it is. ``localhost`` and
  ``*.localhost`` are loopback names (RFC 6761 §6.3).
"""

from __future__ import annotations

import ipaddress
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(network), why)
    for network, why in (
        ("0.0.0.0/8", "this network, RFC 791"),
        ("10.0.0.0/8", "private, RFC 1918"),
        ("100.64.0.0/10", "shared address space, carrier-grade NAT, RFC 6598"),
        ("127.0.0.0/8", "loopback, RFC 1122"),
        ("169.254.0.0/16", "link-local, RFC 3927"),
        ("172.16.0.0/12", "private, RFC 1918"),
        ("192.0.0.0/24", "IETF protocol assignments, RFC 6890"),
        ("192.0.2.0/24", "documentation, RFC 5737"),
        ("192.88.99.0/24", "6to4 relay anycast, RFC 7526"),
        ("192.168.0.0/16", "private, RFC 1918"),
        ("198.18.0.0/15", "benchmarking, RFC 2544"),
        ("198.51.100.0/24", "documentation, RFC 5737"),
        ("203.0.113.0/24", "documentation, RFC 5737"),
        ("224.0.0.0/4", "multicast, RFC 5771"),
        ("240.0.0.0/4", "reserved and broadcast, RFC 1112 and RFC 919"),
    )
)
_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(network), why)
    for network, why in (
        ("::/8", "reserved: unspecified, loopback, IPv4-compatible, RFC 4291"),
        ("100::/64", "discard-only, RFC 6666"),
        ("2001::/23", "IETF protocol assignments (Teredo among them), RFC 2928"),
        ("2001:db8::/32", "documentation, RFC 3849"),
        ("3fff::/20", "documentation, RFC 9637"),
        ("5f00::/16", "segment routing, RFC 9602"),
        ("fc00::/7", "unique local, RFC 4193"),
        ("fe80::/10", "link-local, RFC 4291"),
        ("fec0::/10", "site-local, RFC 3879"),
        ("ff00::/8", "multicast, RFC 4291"),
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are the IPv4 address


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address a packet to ``address`` is delivered to, if it carries one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def why_not_public(address: IPAddress) -> str | None:
    """None for a globally reachable unicast address, else the range it is in."""
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            why = why_not_public(inner)
            return None if why is None else f"it leads to {inner} in {why}"
        table: tuple[tuple[IPv4Network | IPv6Network, str], ...] = _V6
    else:
        table = _V4
    for network, why in table:
        if address in network:
            return f"{network}: {why}"
    if not address.is_global:
        return "not globally reachable"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` names without a DNS lookup, or None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone id names a link
    except ValueError:
        pass
    try:
        return IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def is_loopback_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name in ("localhost", "localhost.localdomain") or name.endswith(".localhost")
