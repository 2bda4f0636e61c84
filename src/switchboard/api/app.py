"""The FastAPI application. Handlers are thin: authenticate, validate, one call, serialise."""

from __future__ import annotations

import logging
import uuid
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchboard import __version__
from switchboard.api import basix, cti
from switchboard.api.errors import ApiError, error_response

log = logging.getLogger("switchboard.api")


class Services(basix.Services, cti.Services, Protocol):
    def statistics(self) -> dict[str, int]: ...


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Switchboard",
        version=__version__,
        description=(
            "Basix-compatible call control. Every method answers HTTP 200 with a JSON object "
            "carrying `result_code`: 0 on success, 500 on error with "
            "`error: {id, description}` (API §1)."
        ),
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        """Liveness and a snapshot of the SIP, registrar, media and call counters."""
        return {"status": "ok", "version": __version__, "counters": services.statistics()}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            return error_response(ApiError("method_not_allowed", "use POST", 405))
        if exc.status_code == 404:
            return error_response(ApiError("not_found", f"no method at {request.url.path}", 404))
        return error_response(ApiError("internal_error", str(exc.detail), exc.status_code))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        """A bug: logged with a request id; the client gets the id, never a stack trace."""
        request_id = uuid.uuid4().hex[:12]
        log.exception("internal error %s on %s", request_id, request.url.path)
        return error_response(ApiError("internal_error", f"internal error (request {request_id})"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(ApiError("invalid_parameter", str(exc.errors()[:1])))

    app.include_router(basix.router(services))
    app.include_router(cti.router(services))
    return app
