"""`switchboard serve` in its own process, as production runs it (uvloop, its own
descriptors), limited to `ulimit -n 1024`; and room for an attacker's many sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx

DESCRIPTORS = 1024  # the usual `ulimit -n`


def _limit_descriptors() -> None:  # runs in the server's process, before it starts
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


@contextlib.asynccontextmanager
async def limited_server(config: Path, http_port: int) -> AsyncIterator[str]:
    """Serve ``config`` until the block ends; yields the API's base URL once it answers."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "switchboard", "--log-level", "ERROR", "serve"),
        *("--config", str(config)),
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=_limit_descriptors,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=1) as client:
            async with asyncio.timeout(15):
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.05)
        yield base
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)


@contextlib.contextmanager
def descriptors_for_the_attacker(needed: int) -> Iterator[None]:
    """Raise this process's own descriptor limit to ``needed`` for the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise AssertionError(f"the attacker needs {needed} descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
