"""The FastAPI application. Handlers are thin: authenticate, validate, one call, serialise.

Request bodies are capped (``bodylimit.BodyLimit``). ``/docs`` and ``/redoc`` are served
with their assets from us (the Swagger UI and ReDoc files that ``fastapi-offline`` ships,
under ``/docs-assets``) instead of a CDN: they work on a network without the Internet, and
a browser reading our API's documentation asks no third party for code to run. Swagger
UI's online validator badge is off for the same reason (it would send the schema's URL to
validator.swagger.io).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchboard import __version__
from switchboard.api import admin, basix, cti, health, metrics, openapi
from switchboard.api.access import AccessLog
from switchboard.api.bodylimit import BodyLimit
from switchboard.api.errors import ApiError, error_response

log = logging.getLogger("switchboard.api")

DOCS_ASSETS = "/docs-assets"


class Services(
    basix.Services, cti.Services, health.Services, admin.Services, metrics.Services, Protocol
):
    pass


def create_app(
    services: Services,
    *,
    max_body: int,
    listener: Callable[[], Mapping[str, int]],
    admin_max_body: int | None = None,
) -> FastAPI:
    """``max_body``: bytes a request body may have (``admin_max_body`` on the provisioning
    API, whose whole directory may be larger); ``listener``: the HTTP listener's counters,
    for ``/statistics``."""
    app = FastAPIOffline(
        title="Switchboard",
        version=__version__,
        description=(
            "Basix-compatible call control. Every method answers HTTP 200 with a JSON object "
            "carrying `result_code`: 0 on success, 500 on error with "
            "`error: {id, description}` (API §1)."
        ),
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},
    )
    larger = {"/admin/api/": admin_max_body} if admin_max_body else {}
    app.add_middleware(BodyLimit, max_body=max_body, larger=larger)
    app.add_middleware(AccessLog, observe=services.metrics.api_request)  # outermost

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            return error_response(ApiError("method_not_allowed", "use POST", 405))
        if exc.status_code == 404:
            return error_response(ApiError("not_found", f"no method at {request.url.path}", 404))
        return error_response(ApiError("internal_error", str(exc.detail), exc.status_code))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        """One a handler did not answer itself (a body cut short by ``BodyLimit``)."""
        return error_response(exc)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        """A bug: logged with a request id; the client gets the id, never a stack trace."""
        request_id = uuid.uuid4().hex[:12]
        log.exception("internal error %s on %s", request_id, request.url.path)
        return error_response(ApiError("internal_error", f"internal error (request {request_id})"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(ApiError("invalid_parameter", str(exc.errors()[:1])))

    app.include_router(health.router(services, listener))
    app.include_router(basix.router(services))
    app.include_router(cti.router(services))
    app.include_router(admin.router(services))
    app.include_router(metrics.router(services))
    openapi.install(app)
    return app
