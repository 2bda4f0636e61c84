"""A real Redis (Debian ``redis-server``, installed by ``scripts/setup --test``) for the
cluster tests: on a free loopback port, its files in the test's directory, no persistence."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.interop.sipp import free_port

START_SECONDS = 10.0


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed (scripts/setup --test)"
        log = self.directory / "redis.log"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no",
                   "--dir", str(self.directory), "--logfile", str(log)]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_SECONDS
        with redis.Redis(port=self.port, socket_connect_timeout=1) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        text = log.read_text() if log.exists() else ""
                        raise RuntimeError(f"redis-server did not start:\n{text}") from None
                    time.sleep(0.02)  # polled, with the deadline above

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart_empty(self) -> None:
        """As after a crash of a Redis that keeps nothing on disk."""
        self.stop()
        self.start()


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(socket.SOCK_STREAM), directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
