"""Two real nodes on one PostgreSQL database (started by the tests): a phone that
registers with node A is at once a terminal of node B too, through the SIP stack: added,
unregistered, expired, behind the front with its Path, and after B's listening connection
was cut. Only A tells its listener; on SQLite nothing listens."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.app import Server
from switchboard.registrar.location import Binding
from switchboard.registrar.service import RegistrarService, Terminal
from switchboard.sip.digest import answer_challenge
from switchboard.sip.message import Response
from switchboard.sip.transaction.base import Peer
from switchboard.store.notify import BindingListener
from tests.databases import create_database
from tests.interop.servers import running_server
from tests.security.sip_peer import RawSipPeer, raw_peer

pytestmark = pytest.mark.slow
_names = itertools.count()
SEEN_WITHIN = 0.5  # seconds from A's 200 to B's terminal: one notification and one query

CONFIG = """
[cluster]
front = "127.0.0.1:5060"

[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "alice-pw"
"""


class Told:
    """What a node's ``on_binding`` heard."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []

    def __call__(self, change: str, binding: Binding) -> None:
        self.changes.append((change, binding.contact))


@asynccontextmanager
async def _nodes(database: str) -> AsyncIterator[tuple[Server, Told, Server, Told]]:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(running_server(CONFIG, database))
        b = await stack.enter_async_context(running_server(CONFIG, database))
        told_a, told_b = Told(), Told()
        a.registrar.on_binding, b.registrar.on_binding = told_a, told_b
        yield a, told_a, b, told_b


@pytest.fixture
def database(postgres_admin_url: str) -> str:
    return create_database(postgres_admin_url, f"shared_bindings_{next(_names)}")


def _request(
    peer: RawSipPeer, contact: str, expires: int, extra: tuple[str, ...], authorization: str | None
) -> bytes:
    host, port = peer.address
    lines = [
        "REGISTER sip:example.com SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK{next(_names)}",
        "Max-Forwards: 70",
        "From: <sip:alice@example.com>;tag=phone",
        "To: <sip:alice@example.com>",
        "Call-ID: shared-bindings",
        f"CSeq: {next(_names) + 1} REGISTER",
        f"Contact: {contact}",
        f"Expires: {expires}",
        *extra,
        *([f"Authorization: {authorization}"] if authorization else []),
        "Content-Length: 0",
    ]
    return ("\r\n".join([*lines, "", ""])).encode()


async def _register(
    peer: RawSipPeer, node: Server, contact: str, expires: int = 600, extra: tuple[str, ...] = ()
) -> Response:
    """alice REGISTERs ``contact`` with ``node``, answering its challenge."""
    to = ("127.0.0.1", node.endpoint.listen_port)
    peer.send(_request(peer, contact, expires, extra, None), to)
    challenge = await peer.response()
    assert challenge.status == 401
    authorization = answer_challenge(
        challenge.get_all("WWW-Authenticate")[0], method="REGISTER", uri="sip:example.com",
        username="alice", password="alice-pw", cnonce="c0ffee",
    )  # fmt: skip
    peer.send(_request(peer, contact, expires, extra, authorization), to)
    return await peer.response()


async def _until(condition: Callable[[], bool], within: float) -> float:
    """Seconds until ``condition()`` holds; fails after ``within``."""
    start = time.monotonic()
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.001)
    return time.monotonic() - start


def _contacts(node: Server) -> list[str]:
    return node.registrar.contacts("example.com", "alice")


def _binding(node: Server, contact: str) -> Binding | None:
    """alice's binding in ``node``'s table, expired or not, until its timer removes it."""
    return node.registrar.location.get(("example.com", "alice"), contact)


async def test_a_phone_registered_with_one_node_is_a_terminal_of_the_other_at_once(
    database: str,
) -> None:
    peer = await raw_peer()
    try:
        async with _nodes(database) as (a, told_a, b, told_b):
            contact = f"<sip:alice@127.0.0.1:{peer.address[1]}>"
            assert (await _register(peer, a, contact)).status == 200
            await _until(lambda: _contacts(b) == [contact[1:-1]], SEEN_WITHIN)
            assert b.registrar.terminals("example.com", "alice")[0].peer == Peer(
                "UDP", "127.0.0.1", peer.address[1]
            )
            assert b.registrar.registered_from("127.0.0.1")

            assert (await _register(peer, a, contact, expires=0)).status == 200  # unregister
            await _until(lambda: _contacts(b) == [], SEEN_WITHIN)
            assert not b.registrar.registered_from("127.0.0.1")
            assert told_a.changes == [("added", contact[1:-1]), ("removed", contact[1:-1])]
            assert told_b.changes == []  # A tells CTI; B would only tell it twice
    finally:
        peer.close()


async def test_a_refresh_through_the_other_node_is_no_new_terminal(database: str) -> None:
    peer = await raw_peer()
    try:
        async with _nodes(database) as (a, told_a, b, told_b):
            contact = f"<sip:alice@127.0.0.1:{peer.address[1]}>"
            assert (await _register(peer, a, contact)).status == 200
            await _until(lambda: _contacts(b) == [contact[1:-1]], SEEN_WITHIN)
            assert (await _register(peer, b, contact, expires=900)).status == 200
            refreshed = _binding(b, contact[1:-1])
            assert refreshed is not None

            await _until(lambda: _binding(a, contact[1:-1]) == refreshed, SEEN_WITHIN)
            assert told_a.changes == [("added", contact[1:-1])] and told_b.changes == []
    finally:
        peer.close()


async def test_a_binding_learnt_from_the_other_node_expires_on_time_and_is_told_once(
    database: str,
) -> None:
    peer = await raw_peer()
    try:
        async with _nodes(database) as (a, told_a, b, told_b):
            settings = a.registrar.registrar.settings
            a.registrar.registrar.settings = replace(settings, min_expires=1)
            contact = f"<sip:alice@127.0.0.1:{peer.address[1]}>"
            assert (await _register(peer, a, contact, expires=1)).status == 200
            await _until(lambda: _contacts(b) == [contact[1:-1]], SEEN_WITHIN)
            learnt = _binding(b, contact[1:-1])
            assert learnt is not None
            # Wait for the timers themselves: ``contacts`` hides an expired binding at once,
            # before the timer that removes it and spawns its DELETE has fired.
            await _until(lambda: _binding(b, contact[1:-1]) is None, 2.0)
            late = time.time() - learnt.expires_at
            assert 0 <= late < 0.05  # B's own timer, not a notification from A
            await _until(lambda: _binding(a, contact[1:-1]) is None, 2.0)
            await _until(lambda: not (a.registrar._tasks or b.registrar._tasks), 2.0)
            removed = [c for c in told_a.changes + told_b.changes if c[0] == "removed"]
            assert removed == [("removed", contact[1:-1])]  # by the node that deleted the row
            assert await a.registrar.store.load() == []
    finally:
        peer.close()


async def test_a_phone_behind_the_front_is_rung_through_it_from_the_other_node(
    database: str,
) -> None:
    front = await raw_peer()  # plays the cluster's front: relays the REGISTER with a Path
    try:
        async with _nodes(database) as (a, _told_a, b, _told_b):
            path = f"<sip:127.0.0.1:{front.address[1]};lr;received=sip:198.51.100.7:40000>"
            extra = (f"Path: {path}", "Supported: path")
            ok = await _register(front, a, "<sip:alice@10.0.0.7:5062>", extra=extra)
            assert ok.status == 200 and ok.get_all("Path") == [path]
            await _until(lambda: _contacts(b) == ["sip:alice@10.0.0.7:5062"], SEEN_WITHIN)
            (terminal,) = b.registrar.terminals("example.com", "alice")
            via_front = Peer("UDP", "127.0.0.1", front.address[1])
            assert terminal == Terminal("sip:alice@10.0.0.7:5062", via_front, (path,))
            assert b.registrar.registered_from("198.51.100.7")  # the phone's own address
    finally:
        front.close()


async def test_after_its_connection_is_cut_a_node_listens_again_and_catches_up(
    database: str, postgres_admin_url: str
) -> None:
    peer = await raw_peer()
    admin = create_async_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with _nodes(database) as (a, _told_a, b, _told_b):
            listener = b.registrar.listener
            assert isinstance(listener, BindingListener) and listener.connected
            listener.backoff = (1.0, 1.0)  # deaf long enough for A to register meanwhile
            async with admin.connect() as connection:
                pid = listener.backend_pid
                await connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            await _until(lambda: not listener.connected, 1.0)

            contact = f"<sip:alice@127.0.0.1:{peer.address[1]}>"
            assert (await _register(peer, a, contact)).status == 200
            assert not listener.connected  # A's notification went to nobody on B
            await _until(lambda: _contacts(b) == [contact[1:-1]], 1.0 + SEEN_WITHIN)
            assert listener.connected and listener.backend_pid != pid
            assert b.registrar.statistics()["binding_listener_lost"] == 1

            other = f"<sip:alice@127.0.0.1:{peer.address[1] + 1}>"
            assert (await _register(peer, a, other)).status == 200
            await _until(lambda: len(_contacts(b)) == 2, SEEN_WITHIN)  # hearing again
    finally:
        peer.close()
        await admin.dispose()


async def test_on_sqlite_nothing_listens_and_expiry_is_told_at_once(tmp_path: Path) -> None:
    async with running_server(CONFIG, tmp_path / "db.sqlite") as server:
        service: RegistrarService = server.registrar
        assert service.listener is None and service.sync is None
        told = Told()
        service.on_binding = told
        binding = Binding("example.com", "alice", "sip:alice@192.0.2.3", time.time() + 0.2, "c", 1)
        await service.store.save_batch([([binding], [])])
        service.location.put(binding)
        service._arm()
        await _until(lambda: service.location.count() == 0, 1.0)
        assert told.changes == [("removed", binding.contact)]  # in the same step, as before
