"""What the call_group benchmarks share: a Switchboard process on a generated config, its
CPU and memory from /proc, SIPp peers, a lean HTTP/1.1 client for call_group and a lean
callback sink, so that the load generator costs the machine as little as it can."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
TOKEN = "bench-token"
AUTH = "Basic " + base64.b64encode(f"example.com:{TOKEN}".encode()).decode()
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@dataclass
class Directory:
    """Users user0000… all reached at one SIPp member; groups of ``group_size``."""

    users: int
    group_size: int
    member_port: int
    trunk_port: int
    extra: str = ""

    def toml(self, sip_port: int, http_port: int, callback_port: int, db: Path) -> str:
        del callback_port  # the sink is on loopback: callback_allow_private below
        lines = [
            f'[server]\nsip_listen = "127.0.0.1:{sip_port}"\n'
            f'http_listen = "127.0.0.1:{http_port}"\ndatabase = "sqlite:///{db}"\n'
            f"callback_allow_private = true\nrtp_ports = [20000, 39999]\n"
            "trunk_ping_seconds = 0\n"  # the trunk plays scripted calls, not OPTIONS
            # the generator is one source with a pool of 64 connections, plus its probes
            f"http_connections_per_source = 128\n",
            f'[[domains]]\nname = "example.com"\napi_token = "{TOKEN}"\n'
            f"channel_limit = 100000\npstn_channel_limit = 100000\n"
            f'calling_number = "0506868000"\n',
        ]
        member = f"127.0.0.1:{self.member_port}"
        for n in range(self.users):
            lines.append(f'[[domains.users]]\nid = {n + 1}\nname = "user{n:04d}"\n'
                         f'contacts = ["sip:user{n:04d}@{member}"]\n')  # fmt: skip
        for g in range(self.users // self.group_size):
            members = ", ".join(
                f'"user{n:04d}"' for n in range(g * self.group_size, (g + 1) * self.group_size)
            )
            lines.append(f'[[domains.groups]]\nid = {g + 1}\nname = "group{g:03d}"\n'
                         f"member_answer_timeout = 15\nmembers = [{members}]\n")  # fmt: skip
        trunk = f"127.0.0.1:{self.trunk_port}"
        lines.append(f'[[domains.trunks]]\nname = "pstn"\naddress = "{trunk}"\n')
        return "\n".join(lines) + self.extra


@contextmanager
def switchboard(
    directory: Directory, workdir: Path, callback_port: int, profile: Path | None = None
) -> Iterator[Switchboard]:
    """``profile``: run the server under cProfile (``bench/profiled_serve.py``: SIGUSR1
    starts it, SIGUSR2 writes the statistics there; slower: for where the time goes, not
    for figures)."""
    sip, http = free_port(), free_port(socket.SOCK_STREAM)
    config = workdir / "bench.toml"
    db = workdir / "bench.sqlite"
    for stale in workdir.glob("bench.sqlite*"):
        stale.unlink()
    config.write_text(directory.toml(sip, http, callback_port, db))
    program = ["-m", "switchboard"]
    if profile is not None:
        program = ["-m", "bench.profiled_serve", str(profile)]
    process = subprocess.Popen(
        [sys.executable, *program, "--log-level", "WARNING", "serve", "--config", str(config)],
        stderr=open(workdir / "switchboard.log", "w"),  # noqa: SIM115 - closed with the process
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(("127.0.0.1", http)) == 0:
                break
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"switchboard did not start; see {workdir / 'switchboard.log'}")
        time.sleep(0.05)
    try:
        yield Switchboard(process, http, sip)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Switchboard:
    process: subprocess.Popen[bytes]
    http_port: int
    sip_port: int

    @property
    def pid(self) -> int:
        return self.process.pid


def sipp(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["sipp", *args, "-nostdin"], stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    time.sleep(0.3)
    return process


async def read_http_message(reader: asyncio.StreamReader) -> tuple[bytes, Any]:
    """One HTTP/1.1 message with a JSON body: its first line and the decoded body."""
    first_line = await reader.readuntil(b"\r\n")
    length = 0
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return first_line, json.loads(await reader.readexactly(length))


class HttpClient:
    """HTTP/1.1 keep-alive POSTs over a pool of raw connections: microseconds per request,
    where a general-purpose client would cost the generator a millisecond."""

    def __init__(self, port: int, connections: int) -> None:
        self.port = port
        self.size = connections
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def open(self) -> None:
        for _ in range(self.size):
            self._idle.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

    async def post(self, path: str, body: Mapping[str, object]) -> tuple[int, dict[str, object]]:
        payload = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload  # fmt: skip
        reader, writer = await self._idle.get()
        for attempt in (1, 2):  # an idle connection may have been closed by the server
            try:
                writer.write(head)
                status_line, answer = await read_http_message(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                if attempt == 2:
                    self._idle.put_nowait((reader, writer))
                    raise
                continue
            self._idle.put_nowait((reader, writer))
            return int(status_line.split()[1]), answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait()[1].close()


@dataclass
class CallbackSink:
    """Counts callback outcomes; answers 200 to every POST (HTTP/1.1, keep-alive)."""

    port: int
    outcomes: dict[str, int] = field(default_factory=dict)
    answered: list[str] = field(default_factory=list)  # the answering member channels
    arrived: float = 0.0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                _, body = await read_http_message(reader)
                key = "0" if body["result_code"] == 0 else body["error"]["id"]
                self.outcomes[key] = self.outcomes.get(key, 0) + 1
                if body["result_code"] == 0:
                    self.answered.append(body["uuid"])
                self.arrived = time.monotonic()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def total(self) -> int:
        return sum(self.outcomes.values())

    def close(self) -> None:
        self._server.close()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
