"""``GET /metrics``: Prometheus's text format, for ``Authorization: Bearer
<server.metrics_token>`` (off without a token). Failures count against the API's
per-source throttle as any other credentials do."""

from __future__ import annotations

import hmac
import logging
from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response

from switchboard.api.auth import ApiAuth
from switchboard.api.errors import ApiError, error_response
from switchboard.metrics import CONTENT_TYPE, Metrics
from switchboard.store.outbox import Outbox

log = logging.getLogger("switchboard.api")


class Services(Protocol):
    api_auth: ApiAuth
    metrics: Metrics
    metrics_token: str | None
    outbox: Outbox


def router(services: Services) -> APIRouter:
    api = APIRouter()

    @api.get("/metrics", operation_id="metrics", tags=["health"], include_in_schema=False)
    async def metrics(request: Request) -> Response:
        source = request.client.host if request.client else "unknown"
        try:
            services.api_auth.check_not_blocked(source)
            token = services.metrics_token
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            expected = (token or "x" * 32).encode()
            if not (
                scheme.lower() == "bearer"
                and hmac.compare_digest(given.encode(), expected)
                and token is not None
            ):
                services.api_auth.failed(source, "metrics")
                raise ApiError("authentication_required", "Bearer METRICS_TOKEN is required", 401)
        except ApiError as error:
            return error_response(error)
        services.metrics.outbox = await services.outbox.backlog()
        return Response(services.metrics.scrape(), media_type=CONTENT_TYPE)

    return api
