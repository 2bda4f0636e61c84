"""Recognisers for the common, plainly written forms of the headers every message carries.

Each recogniser answers one question: "is this value in a shape the full parser certainly
accepts?". A yes means the value is valid and its object can be built later, on first
access, without raising. A no means nothing: the message goes to the strict parser, which
accepts or rejects it and says why. So every pattern here must describe a *subset* of what
``parse_uri``, ``parse_address``, ``parse_via`` and ``parse_cseq`` accept (the grammar of
RFC 3261 §25.1, narrowed):

- no quoted-pair (``\\``) in quoted strings, no ``;`` inside a quoted parameter value;
- no whitespace inside a URI, around ``;`` or ``=`` of a parameter, or in a Via's sent-by;
- ports without leading zeros, 1-65535; hosts are hostnames, IPv4 or bracketed IPv6;
- SIP and SIPS URIs only (a tel or other URI takes the strict parser);
- a URI in the addr-spec form (no ``<>``) has no parameters: §20.10 gives them to the header.

``tests/sip/test_fast_parser.py`` checks the subset property against the strict parser.
"""

from __future__ import annotations

import re

from switchboard.sip.grammar import bounded_int

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
# A parameter value with no ``;``, ``?``, ``,``, ``=``, quote, angle bracket or whitespace.
_VALUE = r"[A-Za-z0-9\-_.!~*'()%&+$\[\]/:]+"
_PARAMS = rf"(?:;{_TOKEN}(?:={_VALUE})?)*"
# Userinfo without ``@`` (so the one ``@`` is the last, where §19.1.1 ends it), ``;``, ``?``
# and ``,`` (which end an addr-spec URI before the URI parser sees them).
_USERINFO = r"[A-Za-z0-9\-_.!~*'()%&=+$/:]+"
_BARE_URI = rf"[sS][iI][pP][sS]?:(?:{_USERINFO}@)?{_HOST}(?::{_PORT})?"
_URI = rf"{_BARE_URI}{_PARAMS}"
_QUOTED_VALUE = r'"[^"\\;\r\n]*"'
_HEADER_PARAMS = rf"(?:;{_TOKEN}(?:=(?:{_VALUE}|{_QUOTED_VALUE}))?)*"
_DISPLAY = rf'(?:"[^"\\\r\n]*"[ \t]*|{_TOKEN}(?:[ \t]+{_TOKEN})*[ \t]*)'

REQUEST_URI = re.compile(rf"{_URI}\Z")
# The same shapes with groups, for building the objects without the general parsers.
# scheme, user (no ``:``: §19.1.1 splits userinfo at the first one), password, host, port,
# parameters.
SIP_URI_PARTS = re.compile(
    rf"([sS][iI][pP][sS]?):(?:([A-Za-z0-9\-_.!~*'()%&=+$/]+)(?::([A-Za-z0-9\-_.!~*'()%&=+$/:]*))?@)?"
    rf"({_HOST})(?::({_PORT}))?({_PARAMS})\Z"
)
# quoted display name, token display name, URI, header parameters.
NAME_ADDR_PARTS = re.compile(
    rf'(?:"([^"\\\r\n]*)"[ \t]*|({_TOKEN}(?:[ \t]+{_TOKEN})*)[ \t]*)?'
    rf"<({_URI})>({_HEADER_PARAMS})\Z"
)
ADDR_SPEC_PARTS = re.compile(rf"({_BARE_URI})({_PARAMS})\Z")
VIA_PARTS = re.compile(rf"SIP/2\.0/({_TOKEN})[ \t]+({_HOST})(?::({_PORT}))?({_PARAMS})\Z")
# name-addr: a ``<`` or a leading quote is what sends ``parse_address`` down this branch.
NAME_ADDR = re.compile(rf"{_DISPLAY}?<{_URI}>({_HEADER_PARAMS})\Z")
# addr-spec: no ``<`` and no quote anywhere, or ``parse_address`` would read a display name.
ADDR_SPEC = re.compile(rf"{_BARE_URI}({_PARAMS})\Z")
VIA = re.compile(rf"SIP/2\.0/{_TOKEN}[ \t]+{_HOST}(?::{_PORT})?({_PARAMS})\Z")
CSEQ = re.compile(rf"([0-9]{{1,10}}) ({_TOKEN})\Z")


def first_param(params: str, name: str) -> tuple[bool, str | None]:
    """``(found, value)`` of the first ``;name[=value]`` in a recognised parameter list.

    The recognisers leave no ``;`` inside a value, so splitting at ``;`` is exact.
    """
    for part in params.split(";")[1:]:
        key, eq, value = part.partition("=")
        if key.lower() == name:
            return True, value if eq else None
    return False, None


def address_params(value: str) -> str | None:
    """The header parameters of a From, To or Contact element ``parse_address`` accepts.

    None when the element is not recognised. ``*`` is never recognised.
    """
    match = NAME_ADDR.match(value) or ADDR_SPEC.match(value)
    return None if match is None else match.group(1)


def is_contact(value: str, max_expires: int) -> bool:
    """A recognised address whose ``expires`` parameter, if any, is a number up to the max."""
    params = address_params(value)
    if params is None:
        return False
    if not params:
        return True
    _, expires = first_param(params, "expires")
    return expires is None or bounded_int(expires, max_expires) is not None


def is_via(value: str) -> bool:
    """A Via element that ``parse_via`` accepts, with a valid ``rport`` if any (RFC 3581)."""
    match = VIA.match(value)
    if match is None:
        return False
    params = match.group(1)
    if "rport=" not in params.lower():
        return True
    _, rport = first_param(params, "rport")
    return not rport or bool(bounded_int(rport, 65535))
