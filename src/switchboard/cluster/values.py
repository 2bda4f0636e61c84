"""The values both shared states take and give, and the checks both make on them: a
hostile or broken caller gets the same ValueError from either."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

JsonObject = dict[str, Any]
CommandHandler = Callable[[JsonObject], Awaitable[JsonObject]]

IDEMPOTENCY_SECONDS = 24 * 3600.0
MAX_NAME_LENGTH = 255
MAX_BODY_BYTES = 64 * 1024
MAX_UUIDS = 64  # per claim or release: a call has a handful
MAX_BATCH = 500  # events per publish_many: a script runs alone, so each does bounded work
COMMAND_TIMEOUT = 5.0
# What a node gathers before a round trip to Redis for CTI events, out and in: each round
# trip costs the node ~100 µs of CPU, so under load one per few ms, not one per event
# (cluster ladder: two nodes at half the rate each spent more per call than one node,
# their batches being half as full). CTI events reach other nodes this much later at most,
# each way. A call's channel owners are not delayed: a hangup sent to another node right
# after call_group answered must find the node holding the call.
GATHER_SECONDS = 0.005
_LONG_DIGITS = re.compile(r"\d{19}")  # decode: a number orjson may not hold as an int
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")  # config.Name


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """A domain's ``channel_limit`` and ``pstn_channel_limit``."""

    channels: int
    pstn: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Channels and PSTN legs a domain holds, on all nodes."""

    channels: int = 0
    pstn: int = 0


@dataclass(frozen=True, slots=True)
class TakeResult:
    """Whether a reservation was taken, and the usage the decision saw (for the refusal's
    message). True when taken."""

    taken: bool
    before: Usage

    def __bool__(self) -> bool:
        return self.taken


@dataclass(frozen=True, slots=True)
class CtiEvent:
    domain: str
    seq: int
    body: JsonObject


def check_name(what: str, value: str) -> str:
    if not value or len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} must be 1 to {MAX_NAME_LENGTH} characters")
    return value


def check_node(node: str) -> str:
    """Node names go into Redis key names as they are (redis_keys)."""
    if not NODE_NAME.fullmatch(node):
        raise ValueError(f"node name {node!r:.80} must match {NODE_NAME.pattern}")
    return node


def check_uuids(uuids: Collection[str]) -> list[str]:
    if len(uuids) > MAX_UUIDS:
        raise ValueError(f"at most {MAX_UUIDS} uuids at once")
    return [check_name("uuid", uuid) for uuid in uuids]


def check_ttl(ttl: float) -> float:
    if not ttl > 0:
        raise ValueError("a lifetime must be more than 0 s")
    return ttl


def check_counts(channels: int, pstn: int) -> None:
    if channels < 0 or pstn < 0:
        raise ValueError("channels and pstn legs are counted from 0")


def encode(what: str, body: JsonObject) -> str:
    """The body as JSON text; ValueError when it is not a JSON object or too long.

    orjson writes it (every CTI event of a cluster goes through here: measured 8 -> 0.8 µs
    for a channel); what orjson refuses and the standard library writes losslessly (a lone
    surrogate, as SIP text decoded with ``surrogateescape`` holds for bytes that are not
    UTF-8; an integer over 64 bits) goes through ``json``, escaped."""
    if not isinstance(body, dict):
        raise ValueError(f"{what} must be a JSON object")
    try:
        data = orjson.dumps(body)
    except TypeError:
        data = json.dumps(body, separators=(",", ":")).encode()  # ASCII: everything escaped
    if len(data) > MAX_BODY_BYTES:
        raise ValueError(f"{what} is longer than {MAX_BODY_BYTES} bytes")
    return data.decode()


def decode(text: str) -> JsonObject:
    """``encode``'s object back; ValueError when ``text`` is not a JSON object. orjson
    reads it (6 -> 2 µs for a channel); what it refuses (an escaped lone surrogate) is
    read by ``json``, which also refuses what is not JSON. So is a text with a run of 19
    digits or more, which may be an integer over 64 bits: orjson reads those as floats,
    losing digits, where ``json`` keeps them."""
    body = _loads(text)
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    return body


def _loads(text: str) -> Any:
    if _LONG_DIGITS.search(text) is None:
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(text)
    return json.loads(text)


@dataclass(slots=True)
class CallChanges:
    """What a node's calls changed since it last told the state, told at once
    (``update_calls``): channels it now holds and let go, call snapshots to keep and to
    drop, and reservations to give back, applied in that order."""

    claim: list[str] = field(default_factory=list)
    track: dict[str, JsonObject] = field(default_factory=dict)
    give_back: list[tuple[str, int, int]] = field(default_factory=list)  # domain, ch., PSTN
    release: list[str] = field(default_factory=list)
    untrack: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.claim or self.track or self.give_back or self.release or self.untrack)
