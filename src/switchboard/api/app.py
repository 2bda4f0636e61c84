"""The FastAPI application. Handlers are thin: authenticate, validate, one call, serialise."""

from __future__ import annotations

from typing import Protocol

from fastapi import FastAPI

from switchboard import __version__


class HealthSource(Protocol):
    def statistics(self) -> dict[str, int]: ...


def create_app(sip: HealthSource) -> FastAPI:
    app = FastAPI(title="Switchboard", version=__version__)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        """Liveness and a snapshot of the SIP and registrar counters."""
        return {"status": "ok", "version": __version__, "counters": sip.statistics()}

    return app
