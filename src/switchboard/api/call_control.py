"""Commands on a live call, the same from REST and from the ``ws_cti`` socket (API §2b,
§4): ``hangup {uuid}``, ``transfer {uuid, user_id | user_name | destination}`` and
``park {uuid, timeout}``, as Basix's own CTI client sends them. Each either acts or raises
an ``ApiError`` saying why, leaving the call as it was.

In a cluster the channel may live on another node: ``run`` asks the shared state which
node holds it and forwards the command there (``run_here`` carries it out on arrival); a
node alone holds every channel it knows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from switchboard.api.errors import ApiError
from switchboard.api.params import whole_number
from switchboard.api.selectors import select
from switchboard.cluster.errors import ClusterStateError, CommandError, StateUnavailableError
from switchboard.cluster.state import ClusterState
from switchboard.config import DomainConfig
from switchboard.directory import Directory
from switchboard.pbx.destinations import Destination, InvalidDestinationError, resolve
from switchboard.pbx.engine import ChannelLimitError, Engine, LiveCall, NotBridgedError

PARK_TIMEOUT = 60  # seconds, when a park names none
MAX_PARK_TIMEOUT = 3600
_TRANSFER_USER = ("user_id", "user_name")


class Services(Protocol):
    engine: Engine
    directory: Directory
    state: ClusterState


async def run(services: Services, domain: DomainConfig, name: str, body: Mapping[str, Any]) -> None:
    """``name`` (hangup, transfer, park) on the node that holds the channel."""
    act = COMMANDS.get(name)
    if act is None:
        raise ApiError("invalid_parameter", f"no command {name!r}")
    channel = channel_of(body)
    state = services.state
    if services.engine.live_call(domain.name, channel) is None:
        try:
            owner = await state.owner(channel)
        except StateUnavailableError:
            owner = None
        if owner is not None and owner != state.node:
            await _forward(state, owner, {"cmd": name, "domain": domain.name, "body": dict(body)})
            return
    await act(services.engine, domain, body)


async def _forward(state: ClusterState, node: str, command: dict[str, Any]) -> None:
    try:
        answer = await state.send(node, command)
    except (CommandError, StateUnavailableError):  # the node has gone, or cannot answer
        raise ApiError("channel_not_found", "no live channel with this uuid here") from None
    error = answer.get("error")
    if answer.get("result_code") != 0 and isinstance(error, dict):
        raise ApiError(str(error.get("id")), str(error.get("description")))


async def run_here(services: Services, command: Mapping[str, Any]) -> dict[str, Any]:
    """A command another node forwarded: its answer, in the Basix envelope."""
    domain = services.directory.domain(str(command.get("domain", "")))
    act = COMMANDS.get(str(command.get("cmd")))
    body = command.get("body")
    try:
        if domain is None or act is None or not isinstance(body, dict):
            raise ApiError("invalid_parameter", "a malformed forwarded command")
        await act(services.engine, domain, body)
    except ApiError as error:
        return {
            "result_code": 500,
            "error": {"id": error.error_id, "description": error.description},
        }
    return {"result_code": 0}


async def hangup(engine: Engine, domain: DomainConfig, body: Mapping[str, Any]) -> None:
    if not engine.hangup(domain.name, channel_of(body)):
        raise ApiError("channel_not_found", "no live channel with this uuid here")


async def transfer(engine: Engine, domain: DomainConfig, body: Mapping[str, Any]) -> None:
    """Blind transfer: the channel's peer is connected to the new destination."""
    channel = channel_of(body)
    destination = transfer_destination(domain, body)
    call = _live(engine, domain, channel)
    reserved = False
    try:
        reserved = await engine.reserve_transfer(call, channel, destination)
        engine.transfer(call, channel, destination)
    except BaseException as exc:
        if reserved:
            engine.unreserve_transfer(call)
        if isinstance(exc, NotBridgedError):
            raise ApiError("channel_not_bridged", str(exc)) from None
        if isinstance(exc, ChannelLimitError):
            raise ApiError("channel_limit_reached", str(exc)) from None
        if isinstance(exc, ClusterStateError):  # the cluster's counters: nothing moved
            raise unavailable(exc) from None
        raise


def unavailable(exc: ClusterStateError) -> ApiError:
    """503 ``service_unavailable``: the cluster's shared state cannot be reached."""
    return ApiError(
        "service_unavailable",
        f"the cluster's shared state is unavailable ({exc}); retry",
        http_status=503,
        headers={"Retry-After": "1"},
    )


async def park(engine: Engine, domain: DomainConfig, body: Mapping[str, Any]) -> None:
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


COMMANDS: dict[str, Callable[[Engine, DomainConfig, Mapping[str, Any]], Awaitable[None]]] = {
    "hangup": hangup,
    "transfer": transfer,
    "park": park,
}
