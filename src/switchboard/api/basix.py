"""Basix-compatible methods under ``/basix/api/`` (API §1–§2b).

Handlers are thin: authenticate, validate, one engine call, serialise. Validation follows
API §2: exactly one group selector (several only if they name the same group), a required
destination (DESIGN §5), positive integer timeouts (at most ``params.MAX_DIGITS`` digits),
a printable ASCII ``calling_name`` (it becomes the INVITE's display name, see
``params.display_name``), an http(s) ``callback_url`` (private addresses refused unless the
server allows them), ``strategy`` ``hunt`` or ``ring``; an ``Idempotency-Key`` header (at
most ``IDEMPOTENCY_KEY_LENGTH`` characters: each one is kept a day) makes a retried request
return the first response and start nothing (24 h).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from switchboard.api import call_control
from switchboard.api.auth import ApiAuth
from switchboard.api.errors import ApiError, error_response
from switchboard.api.openapi import GROUP_ERRORS, USER_ERRORS, call_method, channel_command
from switchboard.api.overload import LoopLagMonitor
from switchboard.api.params import display_name, parse_json, whole_number
from switchboard.api.selectors import GROUP_SELECTORS, USER_SELECTORS, select
from switchboard.callbacks.policy import CallbackUrlError, check_url
from switchboard.cluster.errors import ClusterStateError
from switchboard.cluster.state import ClusterState
from switchboard.config import DomainConfig, GroupConfig, UserConfig
from switchboard.directory import Directory
from switchboard.media.ports import PortsExhaustedError
from switchboard.pbx.destinations import (
    Destination,
    InvalidDestinationError,
    PstnTarget,
    own_number,
    resolve,
)
from switchboard.pbx.engine import (
    CallExternalRequest,
    CallGroupRequest,
    CallUserRequest,
    ChannelLimitError,
    Engine,
    LiveCall,
)

IDEMPOTENCY_SECONDS = 24 * 3600
CALL_USER_ANSWER_TIMEOUT = 180  # API §2c
R = TypeVar("R")
T = TypeVar("T")
log = logging.getLogger("switchboard.api")
IDEMPOTENCY_KEY_LENGTH = 255


class Services(Protocol):
    directory: Directory
    api_auth: ApiAuth
    overload: LoopLagMonitor
    engine: Engine
    allow_private_callbacks: bool
    state: ClusterState  # idempotency keys, and which node holds a channel


def authenticate(request: Request, auth: ApiAuth) -> DomainConfig:
    """HTTP Basic ``DOMAIN:TOKEN`` (API §1), counted against the client's address."""
    source = request.client.host if request.client else "unknown"
    return auth.domain(source, request.headers.get("authorization", ""))


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; its size is capped by ``bodylimit.BodyLimit``."""
    try:
        raw = await request.body()
    except ClientDisconnect:  # cut while sending (api/listener.py): nobody reads the answer
        raise ApiError("client_disconnected", "the client went away", http_status=400) from None
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError("invalid_json", "the body must be a JSON object")
    return body


def find_group(domain: DomainConfig, body: dict[str, Any]) -> GroupConfig:
    group = select(domain.groups, body, GROUP_SELECTORS, "group")
    if group is None:
        raise ApiError("missing_parameter", f"one of {', '.join(GROUP_SELECTORS)} is required")
    return group


def find_user(domain: DomainConfig, body: dict[str, Any]) -> UserConfig:
    user = select(domain.users, body, USER_SELECTORS, "user")
    if user is None:
        raise ApiError("missing_parameter", f"one of {', '.join(USER_SELECTORS)} is required")
    return user


def group_context(
    domain: DomainConfig, body: dict[str, Any], user: UserConfig
) -> GroupConfig | None:
    """call_user's group context (API §2c): a group selector, or ``group_resolver`` ``*``
    (the first group the user is a member of)."""
    group = select(domain.groups, body, GROUP_SELECTORS, "group")
    resolver = body.get("group_resolver")
    if group is not None or resolver in (None, ""):
        return group
    if resolver != "*":
        raise ApiError("invalid_parameter", 'group_resolver must be "*"')
    return next((g for g in domain.groups if user.name in g.members), None)


def positive_int(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApiError("invalid_parameter", f"{key} must be a positive integer")
    number = value if isinstance(value, int) else whole_number(value, key)
    if not 0 < number <= 3600:
        raise ApiError("invalid_parameter", f"{key} must be between 1 and 3600 seconds")
    return number


@dataclass(frozen=True, slots=True)
class CallFields:
    """What every call method takes alike (API §2, §2c)."""

    destination: Destination
    calling_name: str | None
    callback_url: str | None
    call_events_url: str | None


def call_fields(domain: DomainConfig, body: dict[str, Any], allow_private: bool) -> CallFields:
    if body.get("destination") in (None, ""):
        raise ApiError("missing_parameter", "destination is required")
    calling_name = body.get("calling_name")
    if calling_name is not None:
        calling_name = display_name(calling_name, "calling_name")
    callback_url = _url(body, "callback_url", allow_private)
    call_events_url = _url(body, "call_events_url", allow_private)
    try:
        destination = resolve(body["destination"], domain)
    except InvalidDestinationError as exc:
        raise ApiError("invalid_destination", str(exc)) from None
    return CallFields(destination, calling_name, callback_url, call_events_url)


def _url(body: dict[str, Any], key: str, allow_private: bool) -> str | None:
    """A URL we will POST to: http(s), and not where a stranger points us (callbacks)."""
    url = body.get(key) or None
    if url is None:
        return None
    if not isinstance(url, str):
        raise ApiError("invalid_parameter", f"{key} must be a string")
    try:
        check_url(url, allow_private=allow_private)
    except CallbackUrlError as exc:
        raise ApiError("invalid_parameter", f"{key}: {exc}") from None
    return url


def call_group_request(
    domain: DomainConfig, body: dict[str, Any], allow_private: bool
) -> CallGroupRequest:
    group = find_group(domain, body)
    strategy = body.get("strategy", group.strategy)
    if strategy not in ("hunt", "ring"):
        raise ApiError("invalid_parameter", "strategy must be hunt or ring")
    answer_timeout = positive_int(body, "answer_timeout", group.answer_timeout)
    member_timeout = positive_int(body, "member_answer_timeout", group.member_answer_timeout)
    fields = call_fields(domain, body, allow_private)
    return CallGroupRequest(
        domain=domain,
        group=group,
        destination=fields.destination,
        answer_timeout=answer_timeout,
        member_answer_timeout=member_timeout,
        strategy=strategy,
        calling_name=fields.calling_name,
        callback_url=fields.callback_url,
        call_events_url=fields.call_events_url,
    )


def call_user_request(
    domain: DomainConfig, body: dict[str, Any], allow_private: bool
) -> CallUserRequest:
    user = find_user(domain, body)
    auto_answer = body.get("auto_answer", False)
    if not isinstance(auto_answer, bool):
        raise ApiError("invalid_parameter", "auto_answer must be true or false")
    answer_timeout = positive_int(body, "answer_timeout", CALL_USER_ANSWER_TIMEOUT)
    group = group_context(domain, body, user)
    fields = call_fields(domain, body, allow_private)
    return CallUserRequest(
        domain=domain,
        user=user,
        destination=fields.destination,
        answer_timeout=answer_timeout,
        calling_name=fields.calling_name,
        callback_url=fields.callback_url,
        call_events_url=fields.call_events_url,
        auto_answer=auto_answer,
        group=group,
    )


def call_external_request(
    domain: DomainConfig, body: dict[str, Any], allow_private: bool
) -> CallExternalRequest:
    """call_external (API §2c): ``target`` a PSTN number (string or object), the
    destination internal only."""
    if body.get("target") in (None, ""):
        raise ApiError("missing_parameter", "target is required")
    target = _pstn_target(body["target"], domain)
    fields = call_fields(domain, body, allow_private)
    if isinstance(fields.destination.target, PstnTarget):
        raise ApiError("invalid_destination", "call_external connects to a user or group only")
    return CallExternalRequest(
        domain=domain,
        target=target,
        destination=fields.destination,
        answer_timeout=positive_int(body, "answer_timeout", CALL_USER_ANSWER_TIMEOUT),
        calling_name=fields.calling_name,
        callback_url=fields.callback_url,
        call_events_url=fields.call_events_url,
        group=select(domain.groups, body, GROUP_SELECTORS, "group"),
    )


def initiate_call_request(
    domain: DomainConfig, body: dict[str, Any], allow_private: bool
) -> CallUserRequest | CallExternalRequest:
    """initiate_call (deprecated in Basix, API §2c): ``user_name`` behaves as call_user,
    ``pstn_number`` as call_external; ``ani`` is the caller ID toward the PSTN."""
    ani = body.get("ani")
    if (ani is not None and not isinstance(ani, str | int)) or isinstance(ani, bool):
        raise ApiError("invalid_parameter", "ani must be a number")
    if body.get("pstn_number") not in (None, ""):
        if body.get("user_name") not in (None, ""):
            raise ApiError("invalid_parameter", "give user_name or pstn_number, not both")
        target = body["pstn_number"]
        if ani is not None:
            target = {"called_number": str(target), "calling_number": str(ani)}
        return call_external_request(domain, {**body, "target": target}, allow_private)
    if body.get("user_name") in (None, ""):
        raise ApiError("missing_parameter", "user_name or pstn_number is required")
    request = call_user_request(
        domain, {"user_name": body["user_name"], **_context(body)}, allow_private
    )
    if ani is None:
        return request
    try:
        chosen = own_number(str(ani), domain)
    except InvalidDestinationError as exc:
        raise ApiError("invalid_parameter", f"ani: {exc}") from None
    return replace(request, destination=replace(request.destination, calling_number=chosen))


def _context(body: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "destination",
        "group_name",
        "answer_timeout",
        "calling_name",
        "callback_url",
        "call_events_url",
    )
    return {key: body[key] for key in keep if key in body}


def _pstn_target(value: object, domain: DomainConfig) -> Destination:
    try:
        target = resolve(value, domain)
    except InvalidDestinationError as exc:
        raise ApiError("invalid_parameter", f"target: {exc}") from None
    if not isinstance(target.target, PstnTarget):
        raise ApiError("invalid_parameter", "target must be a PSTN number")
    return target


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > IDEMPOTENCY_KEY_LENGTH:
        raise ApiError(
            "invalid_parameter", f"Idempotency-Key is longer than {IDEMPOTENCY_KEY_LENGTH}"
        )
    return key


def router(services: Services) -> APIRouter:
    api = APIRouter(prefix="/basix/api")

    @api.post(
        "/call_group",
        operation_id="call_group",
        tags=["basix"],
        openapi_extra=call_method("CallGroupRequest", *GROUP_ERRORS),
    )
    async def call_group(request: Request) -> JSONResponse:
        """Ring a group (hunting) and connect whoever answers to a destination."""
        return await place(request, call_group_request, services.engine.call_group)

    @api.post(
        "/call_user",
        operation_id="call_user",
        tags=["basix"],
        openapi_extra=call_method("CallUserRequest", *USER_ERRORS, *GROUP_ERRORS),
    )
    async def call_user(request: Request) -> JSONResponse:
        """Ring all of a user's terminals and connect the one that answers to a
        destination (Basix's own CTI client library sends this)."""
        return await place(request, call_user_request, services.engine.call_user)

    @api.post(
        "/call_external",
        operation_id="call_external",
        tags=["basix"],
        openapi_extra=call_method("CallExternalRequest", *GROUP_ERRORS),
    )
    async def call_external(request: Request) -> JSONResponse:
        """Ring a PSTN number first and connect it, once it answers, to a user or group."""
        return await place(request, call_external_request, services.engine.call_external)

    @api.post(
        "/initiate_call",
        operation_id="initiate_call",
        tags=["basix"],
        openapi_extra=call_method("InitiateCallRequest", *USER_ERRORS, *GROUP_ERRORS),
    )
    async def initiate_call(request: Request) -> JSONResponse:
        """Basix's older method: ``user_name`` as call_user, ``pstn_number`` as
        call_external (deprecated there, still used by old clients)."""
        return await place(request, initiate_call_request, start_initiated)

    async def start_initiated(request: CallUserRequest | CallExternalRequest) -> LiveCall:
        if isinstance(request, CallUserRequest):
            return await services.engine.call_user(request)
        return await services.engine.call_external(request)

    async def place(
        request: Request,
        build: Callable[[DomainConfig, dict[str, Any], bool], R],
        start: Callable[[R], Awaitable[LiveCall]],
    ) -> JSONResponse:
        """A call method: authenticate, answer a retried request as the first time, validate,
        start the call, answer its uuids (API §1, §2)."""
        try:
            domain = authenticate(request, services.api_auth)
            body = await json_object(request)
            key = idempotency_key(request)
            if key:
                cached = await _shared(services.state.recall(domain.name, key))
                if cached is not None:
                    return JSONResponse(cached)
            services.overload.admit()
            call_request = build(domain, body, services.allow_private_callbacks)
            try:
                call = await start(call_request)
            except (ChannelLimitError, PortsExhaustedError) as exc:
                raise ApiError("channel_limit_reached", str(exc)) from None
            except ClusterStateError as exc:  # the cluster's counters cannot be reached
                raise call_control.unavailable(exc) from None
            response = {"result_code": 0, "uuids": call.uuids}
            if key:
                # the first writer wins: a same-key request racing this one answers as it
                try:
                    first = await services.state.remember(domain.name, key, response)
                except ClusterStateError as exc:  # the call runs: answer it, unremembered
                    log.warning("idempotency key of %s not kept: %s", domain.name, exc)
                    first = None
                if first is not None:
                    return JSONResponse(first)
            return JSONResponse(response)
        except ApiError as error:
            return error_response(error)

    @api.post(
        "/hangup",
        operation_id="hangup",
        tags=["basix"],
        openapi_extra=channel_command("HangupRequest"),
    )
    async def hangup(request: Request) -> JSONResponse:
        """Hang up a channel of the caller's domain (ours)."""
        return await command(request, "hangup")

    @api.post(
        "/transfer",
        operation_id="transfer",
        tags=["basix"],
        openapi_extra=channel_command(
            "TransferRequest",
            "channel_not_bridged",
            "invalid_destination",
            "invalid_parameter",
            "channel_limit_reached",
            *USER_ERRORS,
        ),
    )
    async def transfer(request: Request) -> JSONResponse:
        """Blind transfer: the channel's peer is connected to a user, group, extension or
        PSTN number and the channel is released (Basix's socket command, here as REST)."""
        return await command(request, "transfer")

    @api.post(
        "/park",
        operation_id="park",
        tags=["basix"],
        openapi_extra=channel_command("ParkRequest", "channel_not_bridged", "invalid_parameter"),
    )
    async def park(request: Request) -> JSONResponse:
        """The channel's peer waits, hearing a tone, and the channel is released; after
        ``timeout`` seconds the parker's phone rings again (Basix's socket command)."""
        return await command(request, "park")

    async def command(request: Request, name: str) -> JSONResponse:
        """hangup, transfer or park, on the node that holds the channel."""
        try:
            domain = authenticate(request, services.api_auth)
            body = await json_object(request)
            await call_control.run(services, domain, name, body)
            return JSONResponse({"result_code": 0})
        except ApiError as error:
            return error_response(error)

    return api


async def _shared(work: Awaitable[T]) -> T:
    """The cluster's shared state's answer, or 503 when it cannot be reached."""
    try:
        return await work
    except ClusterStateError as exc:
        raise call_control.unavailable(exc) from None
