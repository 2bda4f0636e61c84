"""Commands on a live call, the same from REST and from the ``ws_cti`` socket (API §2b,
§4): ``hangup {uuid}``, ``transfer {uuid, user_id | user_name | destination}`` and
``park {uuid, timeout}``, as Basix's own CTI client sends them. Each either acts or raises
an ``ApiError`` saying why, leaving the call as it was."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchboard.api.errors import ApiError
from switchboard.api.params import whole_number
from switchboard.api.selectors import select
from switchboard.config import DomainConfig
from switchboard.pbx.destinations import Destination, InvalidDestinationError, resolve
from switchboard.pbx.engine import ChannelLimitError, Engine, LiveCall, NotBridgedError

PARK_TIMEOUT = 60  # seconds, when a park names none
MAX_PARK_TIMEOUT = 3600
_TRANSFER_USER = ("user_id", "user_name")


def hangup(engine: Engine, domain: DomainConfig, body: Mapping[str, Any]) -> None:
    if not engine.hangup(domain.name, channel_of(body)):
        raise ApiError("channel_not_found", "no live channel with this uuid here")


def transfer(engine: Engine, domain: DomainConfig, body: Mapping[str, Any]) -> None:
    """Blind transfer: the channel's peer is connected to the new destination."""
    channel = channel_of(body)
    destination = transfer_destination(domain, body)
    call = _live(engine, domain, channel)
    try:
        engine.transfer(call, channel, destination)
    except NotBridgedError as exc:
        raise ApiError("channel_not_bridged", str(exc)) from None
    except ChannelLimitError as exc:
        raise ApiError("channel_limit_reached", str(exc)) from None


def park(engine: Engine, domain: DomainConfig, body: Mapping[str, Any]) -> None:
    """The channel's peer waits, hearing a tone; after ``timeout`` s the parker rings."""
    channel = channel_of(body)
    timeout = park_timeout(body.get("timeout"))
    call = _live(engine, domain, channel)
    try:
        engine.park(call, channel, timeout)
    except NotBridgedError as exc:
        raise ApiError("channel_not_bridged", str(exc)) from None


def channel_of(body: Mapping[str, Any]) -> str:
    channel = body.get("uuid")
    if not isinstance(channel, str) or not channel:
        raise ApiError("missing_parameter", "uuid is required")
    return channel


def transfer_destination(domain: DomainConfig, body: Mapping[str, Any]) -> Destination:
    """Basix's client sends ``user_id``, ``user_name`` or ``destination`` (any of DESIGN
    §5's forms); undefined ones are left out of its JSON, ours may be null."""
    user = select(domain.users, body, _TRANSFER_USER, "user")
    if user is not None:
        return resolve(user.name, domain)
    destination = body.get("destination")
    if destination in (None, ""):
        raise ApiError("missing_parameter", "one of user_id, user_name, destination is required")
    try:
        return resolve(destination, domain)
    except InvalidDestinationError as exc:
        raise ApiError("invalid_destination", str(exc)) from None


def park_timeout(value: object) -> int:
    if value is None:
        return PARK_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApiError("invalid_parameter", "timeout must be a positive integer")
    seconds = value if isinstance(value, int) else whole_number(value, "timeout")
    if not 0 < seconds <= MAX_PARK_TIMEOUT:
        raise ApiError("invalid_parameter", f"timeout must be between 1 and {MAX_PARK_TIMEOUT}")
    return seconds


def _live(engine: Engine, domain: DomainConfig, channel: str) -> LiveCall:
    call = engine.live_call(domain.name, channel)
    if call is None:
        raise ApiError("channel_not_found", "no live channel with this uuid here")
    return call
