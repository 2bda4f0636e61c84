"""Waiting for a condition with a deadline, instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

DEADLINE = 10.0


async def until(condition: Callable[[], Awaitable[bool]], *, deadline: float = DEADLINE) -> None:
    async with asyncio.timeout(deadline):
        while not await condition():
            await asyncio.sleep(0.02)
