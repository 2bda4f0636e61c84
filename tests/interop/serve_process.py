"""``switchboard serve`` as a real process, for tests that kill or restart it."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx

STARTUP_SECONDS = 20.0  # migrations and start-up: seconds on a busy machine


async def start_serve(
    config: Path, base_url: str, log: Path | None = None
) -> asyncio.subprocess.Process:
    """Start ``serve --config config`` (WARNING and above to ``log``, appended) and return
    once ``/healthz`` answers at ``base_url``."""
    sink = log.open("ab") if log is not None else None
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "switchboard", "--log-level", "WARNING", "serve",
            "--config", str(config), stderr=sink or asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        if sink is not None:
            sink.close()
    async with httpx.AsyncClient(base_url=base_url) as client:
        deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    await process.wait()
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise AssertionError("switchboard did not start\n" + tail)


async def stop_serve(
    process: asyncio.subprocess.Process, how: signal.Signals = signal.SIGTERM
) -> None:
    if process.returncode is None:
        process.send_signal(how)
    await asyncio.wait_for(process.wait(), 20)
