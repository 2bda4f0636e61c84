"""A real HTTP listener for callbacks: it records every POST and answers as scripted."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request, Response

from tests.interop.sipp import free_port


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    time: float


@dataclass
class CallbackReceiver:
    port: int
    host: str = "127.0.0.1"
    statuses: list[int] = field(default_factory=list)  # answers to give, then 200
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@asynccontextmanager
async def callback_receiver(
    port: int | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[CallbackReceiver]:
    receiver = CallbackReceiver(port or free_port(socket.SOCK_STREAM), host)
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        receiver.received.append(
            Received(await request.body(), dict(request.headers), asyncio.get_running_loop().time())
        )
        receiver.arrived.set()
        status = receiver.statuses.pop(0) if receiver.statuses else 200
        return Response(status_code=status)

    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=receiver.port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
