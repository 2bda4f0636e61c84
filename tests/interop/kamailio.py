"""Switchboard's SIP front (Kamailio, ``deploy/kamailio``) for tests, and what stands around it.

The front is started by ``deploy/kamailio/front``, the script ``scripts/cluster`` starts it
with, so a test runs the shipped config with the per-run files made the same way. Around
it: SIPp processes playing the nodes (each logging what reached it), and a bare UDP peer
for the requests SIPp cannot send (retransmissions on demand, floods, forged routes).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from tests.interop.sipp import SCENARIOS, free_port, sipp_binary

REPOSITORY = Path(__file__).resolve().parents[2]
FRONT_SCRIPT = REPOSITORY / "deploy" / "kamailio" / "front"
STARTUP_SECONDS = 15.0
STOP_SECONDS = 10.0

Address = tuple[str, int]


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


class UdpPeer(asyncio.DatagramProtocol):
    """A bare SIP peer on a UDP socket: sends bytes, collects every datagram it receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.received.put_nowait((data, addr))

    @property
    def address(self) -> Address:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def send(self, message: str, to: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(message.encode(), to)

    async def receive(self, timeout: float) -> str:
        data, _ = await asyncio.wait_for(self.received.get(), timeout)
        return data.decode(errors="replace")

    async def response(self, status: int, timeout: float, method: str | None = None) -> str:
        """The next received response with this status (to a ``method`` request, when
        given); other messages are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.receive(max(0.0, deadline - loop.time()))
            if not message.startswith(f"SIP/2.0 {status} "):
                continue
            if method is None or header(message, "CSeq")[0].endswith(f" {method}"):
                return message


@asynccontextmanager
async def udp_peer(host: str = "127.0.0.1") -> AsyncIterator[UdpPeer]:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(UdpPeer, local_addr=(host, 0))
    try:
        yield peer
    finally:
        transport.close()


def options_request(sender: Address, target: Address) -> str:
    """An out-of-dialog OPTIONS to ``target`` itself (no user part): the front's keep-alive."""
    host, port = sender
    return (
        f"OPTIONS sip:{target[0]}:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"From: <sip:probe@{host}>;tag={uuid.uuid4().hex[:10]}\r\n"
        f"To: <sip:{target[0]}:{target[1]}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@{host}\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )


def header(message: str, name: str) -> list[str]:
    """The values of every ``name`` header of a SIP message, case-insensitively."""
    head = message.split("\r\n\r\n", 1)[0]
    prefix = name.lower() + ":"
    return [
        line.split(":", 1)[1].strip()
        for line in head.split("\r\n")[1:]
        if line.lower().startswith(prefix)
    ]


@dataclass
class Front:
    address: Address
    log: Path
    process: asyncio.subprocess.Process

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@asynccontextmanager
async def running_front(
    workdir: Path,
    nodes: Sequence[Address],
    *,
    ping_interval: int = 1,
    node_timeout_ms: int = 1000,
    flood_limit: int | None = None,
    address: Address | None = None,
) -> AsyncIterator[Front]:
    """Kamailio with the shipped config on ``address`` (a free loopback port unless given),
    in front of ``nodes``; its log (notices and above) in ``workdir/front.log``. Returns
    once it answers OPTIONS."""
    address = address or ("127.0.0.1", free_port())
    log = workdir / "front.log"
    arguments = [
        str(FRONT_SCRIPT), "--dir", str(workdir / "front"),
        "--listen", f"{address[0]}:{address[1]}", "--log-level", "1",
        "--ping-interval", str(ping_interval), "--node-timeout", str(node_timeout_ms),
    ]  # fmt: skip
    if flood_limit is not None:
        arguments += ["--flood-limit", str(flood_limit)]
    arguments += [f"{host}:{port}" for host, port in nodes]
    with log.open("wb") as sink:
        # its own session: Kamailio's worker processes are stopped with it, as a group
        process = await asyncio.create_subprocess_exec(
            *arguments, stdin=asyncio.subprocess.DEVNULL, stdout=sink,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    front = Front(address, log, process)
    try:
        await _until_front_answers(front)
        yield front
    finally:
        await stop_process_group(process)


async def _until_front_answers(front: Front) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_SECONDS
    async with udp_peer() as peer:
        while loop.time() < deadline:
            if front.process.returncode is not None:
                break
            peer.send(options_request(peer.address, front.address), front.address)
            try:
                await peer.response(200, 0.2)
                return
            except TimeoutError:
                continue
    raise AssertionError("the SIP front did not start:\n" + front.log_text()[-3000:])


async def stop_process_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the process group ``process`` leads, SIGKILL if it lingers."""
    for how in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, how)
        except ProcessLookupError:
            break
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
            break
        except TimeoutError:
            continue
    await process.wait()


_LOGGED = re.compile(r"^(REGISTER|INVITE) (\S+) (.*)$")


@dataclass
class SippNode:
    """A SIPp process playing a Switchboard node; its scenario's ``<log>`` lines name what
    reached it (front_node.xml)."""

    address: Address
    scenario: str
    log: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def messages(self) -> Path:
        """Every message the node received and sent (SIPp's -trace_msg)."""
        return self.log.with_suffix(".messages")

    def received_requests(self, method: str) -> list[str]:
        """The Call-ID of each ``method`` request that reached this node, retransmissions
        included (read it once the node is stopped: SIPp writes it as it pleases)."""
        if not self.messages.exists():
            return []
        call_ids = []
        for block in re.split(r"^-{20,}.*$", self.messages.read_text(errors="replace"), flags=re.M):
            lines = block.strip().splitlines()
            if len(lines) > 2 and "message received" in lines[0]:
                message = "\r\n".join(line.strip() for line in lines[1:]).strip()
                if message.startswith(f"{method} "):
                    call_ids.extend(header(message, "Call-ID"))
        return call_ids

    def requests(self, method: str) -> dict[str, dict[str, str]]:
        """``{Call-ID: {field: value}}`` of the requests of ``method`` this node logged."""
        if not self.log.exists():
            return {}
        logged: dict[str, dict[str, str]] = {}
        for line in self.log.read_text(errors="replace").splitlines():
            match = _LOGGED.match(line.strip())
            if match and match[1] == method:
                fields = dict(part.split("=", 1) for part in match[3].split() if "=" in part)
                logged[match[2]] = fields
        return logged

    async def start(self) -> None:
        stdout = self.log.with_suffix(".out").open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sipp_binary(), "-sf", str(SCENARIOS / self.scenario),
                "-i", self.address[0], "-p", str(self.address[1]), "-nostdin",
                "-trace_logs", "-log_file", str(self.log),
                "-trace_err", "-error_file", str(self.log.with_suffix(".errors")),
                "-trace_msg", "-message_file", str(self.messages),
                stdin=asyncio.subprocess.DEVNULL, stdout=stdout,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        finally:
            stdout.close()
        await wait_until(
            lambda: _udp_port_bound(self.address) or self.process_ended,
            STARTUP_SECONDS, f"SIPp node on {self.address}",
        )  # fmt: skip
        if self.process_ended:
            raise AssertionError(f"SIPp node on {self.address} exited at start")

    @property
    def process_ended(self) -> bool:
        return self.process is None or self.process.returncode is not None

    async def stop(self) -> None:
        if self.process is not None:
            await stop_process_group(self.process)
        await wait_until(lambda: not _udp_port_bound(self.address), STOP_SECONDS, "the node's port")


@asynccontextmanager
async def sipp_nodes(workdir: Path, scenario: str, count: int) -> AsyncIterator[list[SippNode]]:
    """``count`` SIPp nodes on free loopback ports, each running ``scenario``."""
    nodes = [
        SippNode(("127.0.0.1", free_port()), scenario, workdir / f"node-{n + 1}.log")
        for n in range(count)
    ]
    async with AsyncExitStack() as stack:
        for node in nodes:
            await _start_on_a_free_port(node)
            stack.push_async_callback(node.stop)
        yield nodes


async def _start_on_a_free_port(node: SippNode, attempts: int = 3) -> None:
    """A port found free may be taken by another process before SIPp binds it (seen: errno
    98 from SIPp in a loaded run): then the node starts again on another free port."""
    for _ in range(attempts - 1):
        try:
            await node.start()
            return
        except AssertionError:
            errors = node.log.with_suffix(".errors")
            text = errors.read_text(errors="replace") if errors.exists() else ""
            if "errno = 98" not in text:
                raise
            errors.unlink()
            node.address = ("127.0.0.1", free_port())
    await node.start()


def _udp_port_bound(address: Address) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(address)
        except OSError:
            return True
    return False
