"""name-addr / addr-spec values of From, To, Contact, Route and Record-Route (§20, §25.1).

Rules:
- In the addr-spec form (no ``<>``), everything after the first ``;`` is a header
  parameter, not a URI parameter (§20.10): that is why such URIs must use ``<>``.
- The display name is a quoted-string (unescaped here, re-quoted on output) or a run of
  tokens separated by LWS.
- ``Contact: *`` is ``Address.is_wildcard``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from switchboard.quick_init import quick_init
from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import (
    WSP,
    Params,
    is_token,
    parse_params,
    plain_params,
    quote,
    read_quoted,
)
from switchboard.sip.recognisers import ADDR_SPEC_PARTS, NAME_ADDR_PARTS
from switchboard.sip.uri import Uri, parse_uri


@quick_init
@dataclass(frozen=True, slots=True)
class Address:
    uri: Uri | None
    display_name: str | None = None
    params: Params = field(default_factory=Params)

    @property
    def is_wildcard(self) -> bool:
        return self.uri is None

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> Address:
        return replace(self, params=self.params.with_param("tag", tag))

    def __str__(self) -> str:
        if self.uri is None:
            return "*" + self.params.render()
        name = f"{quote(self.display_name)} " if self.display_name else ""
        return f"{name}<{self.uri}>{self.params.render()}"


def parse_address(text: str) -> Address:
    match = NAME_ADDR_PARTS.match(text)
    if match is not None:
        # A plainly written name-addr: the groups are the parts. A quoted display name
        # has no quoted-pair here, so its content is the name; tokens join with one space.
        quoted, tokens, uri, params = match.groups()
        display = quoted if quoted is not None else " ".join(tokens.split()) if tokens else None
        return Address(parse_uri(uri), display, plain_params(params))
    match = ADDR_SPEC_PARTS.match(text)
    if match is not None:
        return Address(parse_uri(match.group(1)), None, plain_params(match.group(2)))
    return parse_any_address(text)


def parse_any_address(text: str) -> Address:
    """``parse_address`` by the general rules alone (the reference for its fast path)."""
    value = text.strip(WSP)
    if not value:
        raise ParseError("Empty address")
    if value == "*" or (value.startswith("*") and value[1:].lstrip(WSP).startswith(";")):
        return Address(None, None, parse_params(value[1:]))
    display: str | None = None
    rest = value
    if value.startswith('"'):
        display, end = read_quoted(value, 0)
        rest = value[end:].lstrip(WSP)
        if not rest.startswith("<"):
            raise ParseError("Display name without <URI>")
    elif "<" in value:
        lt = value.index("<")
        words = value[:lt].split()
        if any(not is_token(w) for w in words):
            raise ParseError("Bad display name")
        display = " ".join(words) or None
        rest = value[lt:]
    if rest.startswith("<"):
        gt = rest.find(">")
        if gt < 0:
            raise ParseError("Unterminated <URI>")
        uri_text = rest[1:gt]
        if uri_text != uri_text.strip(WSP):
            raise ParseError("Whitespace inside <URI>")  # RFC 4475 "badaspec"
        tail = rest[gt + 1 :].strip(WSP)
        if tail and not tail.startswith(";"):
            raise ParseError("Junk after <URI>")
        return Address(parse_uri(uri_text), display, parse_params(tail))
    uri_text, _, tail = rest.partition(";")
    uri_text = uri_text.strip(WSP)
    if any(c in uri_text for c in "?,"):
        raise ParseError("URI with ? or , must be enclosed in <>")
    return Address(parse_uri(uri_text), None, parse_params(tail))
