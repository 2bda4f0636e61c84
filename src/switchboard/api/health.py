"""Liveness and counters: ``GET /healthz`` for anyone, ``GET /statistics`` for a domain.

``/healthz`` answers ``{"status": "ok"}`` and nothing else, without credentials: a load
balancer or a supervisor needs only up or down, and a stranger learns no version (to match
against known flaws) and no traffic figures. With a domain's credentials it adds that
domain's trunks and their health (``trunks.py``); wrong credentials are refused as on any
method. The counters (SIP, registrar, media, calls,
callbacks, CTI, API authentication, the HTTP listener) are ``GET /statistics``, with a
domain's API token as every other method takes it (HTTP Basic ``DOMAIN:API_TOKEN``); they
are the server's, not the domain's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from switchboard.api.auth import ApiAuth
from switchboard.api.basix import authenticate
from switchboard.api.errors import ApiError, error_response
from switchboard.api.openapi import operation
from switchboard.trunks import TrunkMonitor


class Services(Protocol):
    api_auth: ApiAuth
    trunks: TrunkMonitor

    def statistics(self) -> dict[str, int]: ...


def router(services: Services, listener: Callable[[], Mapping[str, int]]) -> APIRouter:
    api = APIRouter()

    @api.get(
        "/healthz",
        operation_id="healthz",
        tags=["health"],
        response_model=None,  # documented as the Health schema by openapi_extra
        openapi_extra=operation("Health", security=None),
    )
    async def healthz(request: Request) -> JSONResponse:
        """Up (any answer) or down (none); with a domain's credentials, its trunks."""
        if "authorization" not in request.headers:
            return JSONResponse({"status": "ok"})
        try:
            domain = authenticate(request, services.api_auth)
        except ApiError as error:
            return error_response(error)
        trunks = {
            trunk.name: _trunk(services.trunks, domain.name, trunk.name) for trunk in domain.trunks
        }
        return JSONResponse({"status": "ok", "trunks": trunks})

    @api.get(
        "/statistics",
        operation_id="statistics",
        tags=["health"],
        openapi_extra=operation("Statistics", errors=("authentication_required",)),
    )
    async def statistics(request: Request) -> JSONResponse:
        """The server's counters, for a domain's API token (HTTP Basic DOMAIN:API_TOKEN)."""
        try:
            authenticate(request, services.api_auth)
        except ApiError as error:
            return error_response(error)
        counters = {**services.statistics(), **listener()}
        return JSONResponse({"result_code": 0, "counters": counters})

    return api


def _trunk(monitor: TrunkMonitor, domain: str, name: str) -> dict[str, str]:
    status = monitor.statuses.get((domain, name))
    if status is None:
        return {"state": "unknown", "detail": "not pinged yet"}
    return {"state": status.state.value, "detail": status.detail}
