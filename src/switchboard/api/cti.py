"""``ws_cti`` and ``gen_ws_ticket`` (API §4): live channel events over WebSocket.

On connect: a ``field_spec`` for every element Basix's client keeps (``domain``, ``user``,
``group``, ``group_member``, ``terminal``, ``channel``, ``channel_waiting``), then an
``initial_info`` for each (or, with ``since=<seq>``, the missed events when the buffer still
has them), then one ``info_event`` per change. BERT binary frames by default; JSON text
frames with ``format=json``. A ``user_*`` selector restricts channels to that user's
(unless ``full_events=true``); ``force=true`` is ``forced=true``. Text frames
``{"cmd": "hangup" | "transfer" | "park", …}`` act on a channel of the domain, as Basix's
client sends them (``api/call_control.py``).
A ``since`` that is not a whole number of at most ``params.MAX_DIGITS`` digits refuses the
upgrade with HTTP 400 and ``invalid_parameter`` in the Basix envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse

from switchboard.api import call_control
from switchboard.api.auth import ApiAuth, basic_credentials, domain_for_token
from switchboard.api.basix import authenticate, json_object
from switchboard.api.errors import ApiError, error_response
from switchboard.api.openapi import operation
from switchboard.api.params import whole_number
from switchboard.api.selectors import USER_SELECTORS, select
from switchboard.cluster.state import ClusterState
from switchboard.cti import messages
from switchboard.cti.elements import ELEMENT_FIELDS
from switchboard.cti.hub import ConnectionLimitError, CtiHub, Event, Subscriber
from switchboard.cti.tickets import TicketBook
from switchboard.directory import Directory
from switchboard.pbx.engine import Engine

log = logging.getLogger("switchboard.api")
_BOARD = (resources.files("switchboard") / "api" / "static" / "board.html").read_text()


class Services(Protocol):
    directory: Directory
    api_auth: ApiAuth
    engine: Engine
    cti: CtiHub
    tickets: TicketBook
    state: ClusterState  # which node holds a channel a command names


def router(services: Services) -> APIRouter:
    api = APIRouter()

    @api.post(
        "/basix/api/gen_ws_ticket",
        operation_id="gen_ws_ticket",
        tags=["basix"],
        openapi_extra=operation(
            "WsTicket",
            body="WsTicketRequest",
            errors=("authentication_required", "invalid_json", "invalid_parameter"),
        ),
    )
    async def gen_ws_ticket(request: Request) -> JSONResponse:
        """A single-use ticket (10 s) for opening exactly ``uri`` with ``ws_ticket:TICKET``."""
        try:
            domain = authenticate(request, services.api_auth)
            body = await json_object(request)
            uri = body.get("uri")
            if not isinstance(uri, str) or not uri.startswith("/basix/api/ws_cti"):
                raise ApiError("invalid_parameter", "uri must be a /basix/api/ws_cti URI")
            ticket = services.tickets.issue(domain.name, uri, time.monotonic())
            return JSONResponse({"result_code": 0, "ticket": ticket})
        except ApiError as error:
            return error_response(error)

    @api.get("/board", include_in_schema=False)
    async def board() -> HTMLResponse:
        """The live call board: a static page that subscribes to ws_cti with a ticket."""
        return HTMLResponse(_BOARD)

    @api.websocket("/basix/api/ws_cti")
    async def ws_cti(websocket: WebSocket) -> None:
        query = websocket.query_params
        full_events = query.get("full_events") == "true"
        domain = _authenticate_upgrade(websocket, services, full_events=full_events)
        if domain is None:
            await websocket.close(code=4401)  # before accept: the upgrade is refused, 403
            return
        try:
            since = _since(query)
        except ApiError as error:
            await _deny(websocket, error)
            return
        as_json = query.get("format") == "json"
        forced = "true" in (query.get("forced"), query.get("force"))  # Basix's README: force
        await websocket.accept()
        try:
            user_id = None if full_events else _selected_user(services, domain, query)
            subscriber = services.cti.subscribe(
                domain, "api", query.get("app_name", ""), forced=forced, user_id=user_id
            )
        except (ConnectionLimitError, ApiError) as refusal:
            reason = refusal.error_id if isinstance(refusal, ApiError) else str(refusal)
            await _send(websocket, as_json, system=reason)
            await websocket.close()
            return
        try:
            await _serve(websocket, services, subscriber, as_json, since)
        finally:
            services.cti.unsubscribe(subscriber)

    return api


def _authenticate_upgrade(
    websocket: WebSocket, services: Services, *, full_events: bool
) -> str | None:
    """The subscriber's domain, or None to refuse; failures count against the source.

    A ticket is for a browser page, which should see what its user may see: it cannot
    authorise ``full_events=true`` (API §4); only the domain's token can."""
    source = websocket.client.host if websocket.client else "unknown"
    auth = services.api_auth
    try:
        auth.check_not_blocked(source)
    except ApiError:
        return None
    domain, by_ticket = _upgrade_domain(websocket, services)
    if domain is None:
        auth.failed(source)
    elif by_ticket and full_events:
        return None
    return domain


def _upgrade_domain(websocket: WebSocket, services: Services) -> tuple[str | None, bool]:
    """The domain the credentials name, and whether they were a ticket."""
    ticket = websocket.query_params.get("ws_ticket")
    if ticket is not None:  # ours, for browsers: the ticket in the query, not in a header
        rest = urlencode(
            [(k, v) for k, v in websocket.query_params.multi_items() if k != "ws_ticket"]
        )
        uri = websocket.url.path + (f"?{rest}" if rest else "")
        return services.tickets.redeem(ticket, uri, time.monotonic()), True
    authorization = websocket.headers.get("authorization", "")
    try:
        user, secret = basic_credentials(authorization)
    except ApiError:
        return None, False
    if user == "ws_ticket":
        uri = websocket.url.path + (f"?{websocket.url.query}" if websocket.url.query else "")
        return services.tickets.redeem(secret, uri, time.monotonic()), True
    try:
        return domain_for_token(services.directory, user, secret).name, False
    except ApiError:
        return None, False


def _since(query: Mapping[str, str]) -> int | None:
    """The ``since`` sequence number, if one is given (an empty one is none)."""
    text = query.get("since")
    if not text:
        return None
    return whole_number(text, "since", http_status=400)


async def _deny(websocket: WebSocket, error: ApiError) -> None:
    """Refuse the upgrade with an HTTP answer in the envelope (the ASGI WebSocket Denial
    Response extension, which uvicorn offers); a bare 403 where the server has not it."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(error))
    else:
        await websocket.close(code=4400)


def _selected_user(services: Services, domain: str, query: Mapping[str, str]) -> int | None:
    """The user a ``user_*`` selector names (API §4), whose channels alone the socket gets."""
    config = services.directory.domain(domain)
    user = select(config.users if config else [], query, USER_SELECTORS, "user")
    return user.id if user is not None else None


async def _serve(
    websocket: WebSocket,
    services: Services,
    subscriber: Subscriber,
    as_json: bool,
    since: int | None,
) -> None:
    hub = services.cti
    replay = hub.missed(subscriber.domain, since) if since is not None else None
    elements, horizon = hub.snapshot(subscriber.domain)
    # Events queued since subscribing and already in the replay or the snapshot (seq up to
    # ``horizon``) are skipped below. Every field_spec comes first: rows need them.
    for element in ELEMENT_FIELDS:
        if as_json:
            await websocket.send_text(messages.field_spec_json(element))
        else:
            await websocket.send_bytes(messages.field_spec_bert(element))
    if replay is not None:
        for missed in replay:
            if subscriber.wants(missed.item):
                await _send(websocket, as_json, event=missed)
    else:
        for element in ELEMENT_FIELDS:
            items = [i for i in elements.get(element, ()) if subscriber.wants(i)]
            if as_json:
                await websocket.send_text(messages.initial_info_json(element, items, horizon))
            else:
                await websocket.send_bytes(messages.initial_info_bert(element, items))
    commands = asyncio.create_task(_read_commands(websocket, services, subscriber))
    try:
        while True:
            getter = asyncio.ensure_future(subscriber.queue.get())
            waiting: set[asyncio.Future[Any]] = {getter, subscriber.closed, commands}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if getter in done and not subscriber.closed.done():
                pending: Event | None = getter.result()
                while pending is not None and not subscriber.closed.done():
                    if pending.seq > horizon:
                        await _send(websocket, as_json, event=pending)
                    queue = subscriber.queue
                    pending = queue.get_nowait() if not queue.empty() else None
                continue
            getter.cancel()  # closed (too slow, replaced) wins over what is still queued
            if subscriber.closed.done():
                with contextlib.suppress(Exception):
                    await _send(websocket, as_json, system=subscriber.closed.result())
                    await websocket.close()
            return
    finally:
        commands.cancel()


async def _read_commands(websocket: WebSocket, services: Services, subscriber: Subscriber) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            text = await websocket.receive_text()
            await _command(services, subscriber.domain, text)


async def _command(services: Services, domain_name: str, text: str) -> None:
    """One JSON command as Basix's client sends it. Its protocol has no answer to one: a
    refused command is logged, and the call stays as it was (REST answers the reason)."""
    try:
        command = json.loads(text)
    except ValueError:
        return
    domain = services.directory.domain(domain_name)
    if not isinstance(command, dict) or domain is None:
        return
    name = command.get("cmd")
    if name not in call_control.COMMANDS:
        return
    try:
        await call_control.run(services, domain, str(name), command)
    except ApiError as error:
        log.info("ws_cti %s in %s refused: %s", command.get("cmd"), domain_name, error.error_id)


async def _send(
    websocket: WebSocket, as_json: bool, *, event: Event | None = None, system: str | None = None
) -> None:
    if event is not None:
        frame = messages.event_frame(event, as_json)
        if isinstance(frame, str):
            await websocket.send_text(frame)
        else:
            await websocket.send_bytes(frame)
    elif system is not None:
        if as_json:
            await websocket.send_text(messages.system_msg_json(system))
        else:
            await websocket.send_bytes(messages.system_msg_bert(system))
