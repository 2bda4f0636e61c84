"""The composition root: builds the SIP endpoint, the user agent and the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from contextlib import suppress

import uvicorn

from switchboard.api.app import create_app
from switchboard.config import Config
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.useragent import UserAgent

log = logging.getLogger("switchboard")


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the composition root owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        host, port = config.server.sip_address
        self.endpoint = SipEndpoint(host, port, advertised_host=config.server.sip_advertised_host)
        self.user_agent = UserAgent(self.endpoint)
        http_host, http_port = config.server.http_address
        self.http = _HttpServer(
            uvicorn.Config(
                create_app(self.endpoint),
                host=http_host,
                port=http_port,
                log_level="warning",
                lifespan="off",
            )
        )

    async def run(self) -> None:
        await self.endpoint.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        http_task = asyncio.create_task(self.http.serve())
        log.info("http listening on %s", self.config.server.http_listen)
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({http_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        log.info("shutting down")
        self.http.should_exit = True
        with suppress(asyncio.CancelledError):
            await http_task
        stopper.cancel()
        await self.endpoint.close()
