"""A real cluster for tests (issue 16): PostgreSQL, Redis, N ``switchboard serve``
processes and the SIP front (Kamailio, the shipped config), all started here, all on
loopback; each node's log in the work directory. Nodes are real processes so that a test
can SIGKILL one."""

from __future__ import annotations

import asyncio
import base64
import itertools
import signal
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.cluster.redis_server import redis_server
from tests.databases import create_database
from tests.interop.kamailio import Address, Front, running_front
from tests.interop.serve_process import start_serve, stop_serve
from tests.interop.sipp import free_port

DOMAIN = "example.com"
TOKEN = "token-for-tests"
AUTH = (DOMAIN, TOKEN)
LEASE_SECONDS = 1.5  # a killed node is reaped within about two of these
_names = itertools.count()


@dataclass
class Node:
    name: str
    sip: Address
    http: str  # base URL
    log: Path
    process: asyncio.subprocess.Process | None = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)


@dataclass
class Cluster:
    front: Front
    nodes: list[Node]
    database: str
    redis: str
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def api(self, index: int) -> httpx.AsyncClient:
        return self.clients[index]

    async def call(self, index: int, method: str, body: dict[str, Any], **headers: str) -> Any:
        reply = await self.api(index).post(f"/basix/api/{method}", json=body, headers=headers)
        assert reply.status_code == 200, (reply.status_code, reply.text)
        return reply.json()

    def ws_url(self, index: int, query: str = "") -> str:
        base = self.nodes[index].http.replace("http://", "ws://")
        return f"{base}/basix/api/ws_cti?app_name=tests{query}"

    def cti(self, index: int, query: str = "") -> Any:
        token = base64.b64encode(f"{DOMAIN}:{TOKEN}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        return connect(self.ws_url(index, query), additional_headers=headers, max_size=None)


def node_config(
    node: Node, *, rtp_low: int, database: str, redis: str, front: Address, directory: str
) -> str:
    return f"""
[server]
sip_listen = "{node.sip[0]}:{node.sip[1]}"
http_listen = "{node.http.removeprefix("http://")}"
database = "{database}"
rtp_ports = [{rtp_low}, {rtp_low + 399}]
callback_allow_private = true
trunk_ping_seconds = 0

[cluster]
node = "{node.name}"
redis = "{redis}"
front = "{front[0]}:{front[1]}"
lease_seconds = {LEASE_SECONDS}

[[domains]]
name = "{DOMAIN}"
api_token = "{TOKEN}"
channel_limit = 400
{directory}
"""


@asynccontextmanager
async def running_cluster(
    workdir: Path, database: str, directory: str, count: int = 2
) -> AsyncIterator[Cluster]:
    """``database``: a new PostgreSQL database (``new_database``); ``directory``: the
    domain's users, groups and trunks (TOML under ``[[domains]]``)."""
    front_address = ("127.0.0.1", free_port())
    nodes = [
        Node(
            f"node-{i + 1}",
            ("127.0.0.1", free_port()),
            f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}",
            workdir / f"node-{i + 1}.log",
        )
        for i in range(count)
    ]
    async with AsyncExitStack() as stack:
        redis = stack.enter_context(redis_server(workdir))
        for index, node in enumerate(nodes):  # one after the other: the first migrates
            path = workdir / f"{node.name}.toml"
            rtp_low = 30000 + index * 400
            config = node_config(
                node, rtp_low=rtp_low, database=database, redis=redis.url, front=front_address,
                directory=directory,
            )  # fmt: skip
            path.write_text(config)
            node.process = await start_serve(path, node.http, node.log)
            stack.push_async_callback(_stop, node)
        front = await stack.enter_async_context(
            running_front(workdir, [n.sip for n in nodes], address=front_address)
        )
        cluster = Cluster(front, nodes, database, redis.url)
        for node in nodes:
            client = httpx.AsyncClient(base_url=node.http, auth=AUTH, timeout=10)
            cluster.clients.append(await stack.enter_async_context(client))
        yield cluster


def new_database(postgres_admin_url: str) -> str:
    """A new PostgreSQL database (from a synchronous fixture: it runs its own loop)."""
    return create_database(postgres_admin_url, f"real_cluster_{next(_names)}")


async def _stop(node: Node) -> None:
    if node.process is not None and node.process.returncode is None:
        await stop_serve(node.process)


async def collect(ws: ClientConnection, into: list[Any]) -> None:
    """Every frame of ``ws`` until it closes (run as a task)."""
    async for frame in ws:
        into.append(frame)


async def wait_for(condition: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def sipp_users(path: Path, users: Sequence[tuple[str, str]]) -> Path:
    lines = [f"{user};[authentication username={user} password={secret}]" for user, secret in users]
    path.write_text("SEQUENTIAL\n" + "\n".join(lines) + "\n")
    return path
