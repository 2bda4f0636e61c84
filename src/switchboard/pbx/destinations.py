"""Resolving a ``call_group`` destination in the caller's domain (DESIGN §5).

Order: an optional ``{key=value,…}`` prefix is taken off first (``name``, ``id``,
``organization``, ``avatar``, ``prefecture`` describe the end user; ``calling_number``
sets the caller ID);
then the rest is matched against user names, group names, user or group extensions, user
or group DIDs; anything else made of digits (an optional leading ``+``) is a PSTN number
for the domain's trunk. The object form ``{called_number, calling_number, end_user}`` is
always a PSTN number. Toll-fraud guards: PSTN numbers must start with one of the domain's
``pstn_prefixes`` and with none of its ``pstn_denied_prefixes`` (international and
premium-rate by default); a ``calling_number`` must be one of the domain's own numbers (its
``calling_number``, ``calling_numbers``, and users' and groups' DIDs), so nobody presents
someone else's number through our trunk. Anything else is ``InvalidDestinationError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from switchboard.config import DomainConfig, GroupConfig, TrunkConfig, UserConfig
from switchboard.quick_init import quick_init

_NUMBER = re.compile(r"\+?[0-9]{1,32}\Z")
_END_USER_KEYS = ("id", "name", "organization", "avatar", "prefecture")
_PREFIX_KEYS = frozenset((*_END_USER_KEYS, "calling_number"))


class InvalidDestinationError(ValueError):
    """The destination resolves to nothing reachable; the message says why."""


@dataclass(frozen=True, slots=True)
class EndUser:
    """The person on the far end, relayed on CTI events (API §4)."""

    id: str | None = None
    name: str | None = None
    organization: str | None = None
    avatar: str | None = None
    prefecture: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class UserTarget:
    user: UserConfig


@dataclass(frozen=True, slots=True)
class GroupTarget:
    group: GroupConfig


@dataclass(frozen=True, slots=True)
class PstnTarget:
    number: str
    trunk: TrunkConfig


Target = UserTarget | GroupTarget | PstnTarget


def party(target: Target) -> str:
    """Who the target is, in a word: the number, the user's or the group's name."""
    if isinstance(target, PstnTarget):
        return target.number
    if isinstance(target, UserTarget):
        return target.user.name
    return target.group.name


@dataclass(frozen=True, slots=True)
class Destination:
    target: Target
    calling_number: str | None = None
    end_user: EndUser | None = None


def resolve(destination: object, domain: DomainConfig) -> Destination:
    if isinstance(destination, dict):
        return _resolve_object(destination, domain)
    if not isinstance(destination, str) or not destination.strip():
        raise InvalidDestinationError("destination must be a non-empty string or an object")
    text, fields = _take_prefix(destination.strip())
    calling = fields.pop("calling_number", None)
    if calling is not None and not _NUMBER.match(calling):
        raise InvalidDestinationError(f"calling_number {calling!r} is not a number")
    end_user = EndUser(**fields) if fields else None
    return Destination(_match(text, domain), own_number(calling, domain), end_user)


def _take_prefix(text: str) -> tuple[str, dict[str, str]]:
    if not text.startswith("{"):
        return text, {}
    end = text.find("}")
    if end < 0:
        raise InvalidDestinationError("unterminated {…} prefix")
    fields: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text[1:end].split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in _PREFIX_KEYS:
            raise InvalidDestinationError(f"unknown destination prefix field {key!r}")
        fields[key] = value.strip()
    return text[end + 1 :].strip(), fields


def _match(text: str, domain: DomainConfig) -> Target:
    target = _lookup(domain).targets.get(text)
    if target is not None:
        return target
    if _NUMBER.match(text):
        return _pstn(text, domain)
    raise InvalidDestinationError(f"{text!r} is no user, group, extension, DID or number")


@dataclass(frozen=True, slots=True)
class _DomainLookup:
    """What resolving needs of a domain, built once per config object, not per call."""

    targets: dict[str, Target]
    own_numbers: frozenset[str]


_LOOKUPS: dict[int, tuple[DomainConfig, _DomainLookup]] = {}


def _lookup(domain: DomainConfig) -> _DomainLookup:
    cached = _LOOKUPS.get(id(domain))
    if cached is not None and cached[0] is domain:
        return cached[1]
    lookup = _DomainLookup(_targets(domain), _own_numbers(domain))
    _LOOKUPS[id(domain)] = (domain, lookup)
    return lookup


def _targets(domain: DomainConfig) -> dict[str, Target]:
    """Names, then extensions, then DIDs (users before groups at each step), first match
    kept: the order of DESIGN §5."""
    index: dict[str, Target] = {}
    for key in ("name", "extension", "did"):
        for user in domain.users:
            value = getattr(user, key)
            if value is not None:
                index.setdefault(value, UserTarget(user))
        for group in domain.groups:
            value = getattr(group, key)
            if value is not None:
                index.setdefault(value, GroupTarget(group))
    return index


def _own_numbers(domain: DomainConfig) -> frozenset[str]:
    dids = [*(u.did for u in domain.users), *(g.did for g in domain.groups)]
    numbers = {domain.calling_number, *domain.calling_numbers, *dids}
    return frozenset(n for n in numbers if n is not None)


def own_number(calling: str | None, domain: DomainConfig) -> str | None:
    if calling is None or calling in _lookup(domain).own_numbers:
        return calling
    raise InvalidDestinationError(
        f"calling_number {calling} is not one of this domain's numbers "
        "(its calling_number, calling_numbers, or a user's or group's DID)"
    )


def _pstn(number: str, domain: DomainConfig) -> PstnTarget:
    if not any(number.startswith(prefix) for prefix in domain.pstn_prefixes):
        raise InvalidDestinationError(f"{number} is outside this domain's allowed PSTN prefixes")
    denied = next((p for p in domain.pstn_denied_prefixes if number.startswith(p)), None)
    if denied is not None:
        raise InvalidDestinationError(
            f"{number} is outside this domain's allowed PSTN prefixes "
            f"({denied} is denied: international or premium rate)"
        )
    if not domain.trunks:
        raise InvalidDestinationError("this domain has no trunk toward the PSTN")
    return PstnTarget(number, domain.trunks[0])


def _resolve_object(data: dict[Any, Any], domain: DomainConfig) -> Destination:
    unknown = set(data) - {"called_number", "calling_number", "end_user"}
    if unknown:
        raise InvalidDestinationError(f"unknown destination field(s): {', '.join(sorted(unknown))}")
    called = data.get("called_number")
    if not isinstance(called, str | int) or not _NUMBER.match(str(called)):
        raise InvalidDestinationError("called_number must be a number")
    calling = data.get("calling_number")
    if calling is not None and (
        not isinstance(calling, str | int) or not _NUMBER.match(str(calling))
    ):
        raise InvalidDestinationError("calling_number must be a number")
    return Destination(
        _pstn(str(called), domain),
        own_number(str(calling) if calling is not None else None, domain),
        _end_user(data.get("end_user")),
    )


def _end_user(data: object) -> EndUser | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InvalidDestinationError("end_user must be an object")
    unknown = set(data) - set(_END_USER_KEYS)
    if unknown:
        raise InvalidDestinationError(f"unknown end_user field(s): {', '.join(sorted(unknown))}")
    values: dict[str, str | None] = {}
    for key in _END_USER_KEYS:
        value = data.get(key)
        if value is None:
            values[key] = None
        elif key == "id" and isinstance(value, int) and not isinstance(value, bool):
            values[key] = str(value)  # Basix's example gives a number, its docs a string
        elif not isinstance(value, str):
            raise InvalidDestinationError(f"end_user.{key} must be a string")
        elif len(value) > 1024:
            raise InvalidDestinationError(f"end_user.{key} is longer than 1024 characters")
        else:
            values[key] = value
    return EndUser(**values)
