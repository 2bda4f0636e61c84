"""Auth throttles shared by the nodes (issue 16): two nodes, each with its own local
throttle sharing one Redis, throttle a guesser who spreads over them as one node would.
A source is blocked at the cluster's count on the node that took the failure reaching it,
and on the other node at its next failure there; a stopped Redis leaves local throttling
as it was, with a bounded number of failures on their way."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest

from switchboard.api.auth import API_THROTTLE, ApiAuth
from switchboard.api.errors import ApiError
from switchboard.app import Server
from switchboard.cluster.redis_state import RedisState
from switchboard.config import parse_config
from switchboard.directory import Directory
from switchboard.registrar.location import Binding, LocationService
from switchboard.registrar.registrar import Registrar
from switchboard.registrar.service import RegistrarService
from switchboard.sip.digest import answer_challenge
from switchboard.sip.message import Request, headers
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import parse_uri
from switchboard.throttle import FailureThrottle, ThrottleSettings, ThrottleSharing, shared_name
from tests.cluster.redis_server import RedisServer
from tests.databases import create_database
from tests.interop.servers import running_server

pytestmark = [pytest.mark.interop, pytest.mark.slow]

CONFIG = """
[[domains]]
name = "example.com"
api_token = "right-token"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "alice-secret"
"""
API = ThrottleSettings(max_failures=4, window=60.0, block_seconds=60.0)
GUESSER = "192.0.2.66"
RIGHT = "Basic " + base64.b64encode(b"example.com:right-token").decode()
WRONG = "Basic " + base64.b64encode(b"example.com:guess").decode()


@pytest.fixture
async def states(redis: RedisServer) -> AsyncIterator[list[RedisState]]:
    made = [await RedisState.connect(redis.url, node) for node in ("node-a", "node-b")]
    for state in made:
        await state.join()
    yield made
    for state in made:
        await state.aclose()


def _api_auths(states: list[RedisState]) -> list[ApiAuth]:
    auths = [ApiAuth(Directory(parse_config(CONFIG)), API) for _ in states]
    for auth, state in zip(auths, states, strict=True):
        auth.share(state.throttle("api", API))
    return auths


def _refuses(auth: ApiAuth, authorization: str) -> str | None:
    """The error id the node answers ``authorization`` from the guesser with, or None."""
    try:
        auth.domain(GUESSER, authorization)
    except ApiError as error:
        return error.error_id
    return None


async def _guess(auth: ApiAuth) -> None:
    assert _refuses(auth, WRONG) == "authentication_required"
    if auth.sharing is not None:
        await auth.sharing.settle()  # what the node learns from the cluster, learnt


async def _first_refusal(auths: list[ApiAuth]) -> int:
    """Wrong tokens sent to each node in turn: after how many the guesser is refused
    (429) by the node that took the last one."""
    for count in range(1, 20):
        node = auths[(count - 1) % len(auths)]
        await _guess(node)
        if _refuses(node, RIGHT) == "too_many_failures":
            return count
    raise AssertionError("never refused")


async def test_guesses_spread_over_two_nodes_are_refused_at_one_nodes_count(
    states: list[RedisState],
) -> None:
    alone = ApiAuth(Directory(parse_config(CONFIG)), API)
    assert await _first_refusal([alone]) == API.max_failures
    a, b = _api_auths(states)
    assert await _first_refusal([a, b]) == API.max_failures  # not twice as many
    # b took the last one; a learns at its next failure, and its answer is that failure's
    assert _refuses(a, RIGHT) is None
    await _guess(a)
    for node in (a, b):
        assert _refuses(node, RIGHT) == "too_many_failures"  # the right token, refused
    assert a.statistics()["api_auth_blocked_by_cluster"] == 1
    assert await states[0].throttle("api", API).blocked_sources() == 1


async def test_a_source_blocked_on_one_node_alone_is_blocked_on_the_other_at_its_next_failure(
    states: list[RedisState],
) -> None:
    a, b = _api_auths(states)
    for _ in range(API.max_failures):
        await _guess(a)
    assert _refuses(a, RIGHT) == "too_many_failures"
    assert _refuses(b, RIGHT) is None  # no round trip on success: b does not know yet
    await _guess(b)
    assert _refuses(b, RIGHT) == "too_many_failures"
    assert _refuses(b, "Basic ###") == "too_many_failures"
    assert b.statistics()["api_auth_failures"] == 1  # the other refusals cost no failure
    other = "192.0.2.7"
    assert a.domain(other, RIGHT).name == b.domain(other, RIGHT).name == "example.com"


async def test_a_stopped_redis_leaves_each_node_throttling_on_its_own(
    redis: RedisServer, states: list[RedisState]
) -> None:
    a, b = _api_auths(states)
    assert a.sharing is not None
    a.sharing.max_pending = 3
    redis.stop()
    for _ in range(API.max_failures - 1):
        assert _refuses(a, WRONG) == "authentication_required"
    assert a.sharing.pending == 3  # each failure on its way, to a Redis that is gone
    assert _refuses(a, WRONG) == "authentication_required"
    assert a.sharing.pending == 3  # bounded: the fourth is counted here only
    assert _refuses(a, RIGHT) == "too_many_failures"  # the local throttle, as alone
    await a.sharing.settle()
    stats = a.statistics()
    assert (stats["api_auth_share_errors"], stats["api_auth_failures_not_shared"]) == (3, 1)
    assert a.sharing.pending == 0
    await _guess(b)  # b keeps answering too
    assert b.statistics()["api_auth_share_errors"] == 1
    for auth in (a, b):
        await auth.unshare()
        assert auth.throttle.on_failure is None


# -- the registrar: REGISTER (and INVITE) digest failures --------------------------------

USER = ThrottleSettings(max_failures=3, window=60.0, block_seconds=60.0)
SOURCE = ThrottleSettings(max_failures=20, window=60.0, block_seconds=60.0)
PHONE = Peer("UDP", "192.0.2.50", 5062)
NOW = 1000.0
_cseq = itertools.count(1)


class _NoStore:
    async def load(self) -> list[Binding]:
        return []

    async def delete_expired(self, now: float) -> int:
        return 0

    async def save_batch(self, changes: list[tuple[list[Binding], list[Binding]]]) -> None:
        raise AssertionError("nothing is stored by a failure")


def _registrars(states: list[RedisState]) -> Iterator[RegistrarService]:
    for node, state in enumerate(states):
        tags = (f"tag{n}" for n in itertools.count())
        registrar = Registrar(
            Directory(parse_config(CONFIG)),
            LocationService(),
            digest_key=bytes([node]) * 32,  # each node its own key, as when served
            new_tag=tags.__next__,
            throttle=FailureThrottle(SOURCE),
            user_throttle=FailureThrottle(USER),
        )
        service = RegistrarService(registrar, _NoStore(), registrar.directory, clock=lambda: NOW)
        service.share_throttles(state.throttle("sip", SOURCE), state.throttle("sip-user", USER))
        yield service


def _register(authorization: str | None = None) -> Request:
    pairs = [
        ("Via", f"SIP/2.0/UDP 192.0.2.50:5062;branch=z9hG4bK{next(_cseq)}"),
        ("From", "<sip:alice@example.com>;tag=f1"),
        ("To", "<sip:alice@example.com>"),
        ("Call-ID", "reg-1"),
        ("CSeq", f"{next(_cseq)} REGISTER"),
        ("Contact", "<sip:alice@192.0.2.50:5062>"),
    ]
    if authorization:
        pairs.append(("Authorization", authorization))
    return Request("REGISTER", parse_uri("sip:example.com"), headers(*pairs))


async def _answer(service: RegistrarService, password: str) -> int:
    """The status of a REGISTER answering the node's challenge with ``password``."""
    registrar = service.registrar
    challenge = registrar.handle(_register(), PHONE, NOW).response
    if challenge.status != 401:
        return challenge.status  # refused without a challenge
    value = answer_challenge(
        challenge.get_all("WWW-Authenticate")[0],
        method="REGISTER",
        uri="sip:example.com",
        username="alice",
        password=password,
        cnonce="c",
        nc=1,
    )
    status = registrar.handle(_register(value), PHONE, NOW).response.status
    await _settled(service)
    return status


async def _settled(service: RegistrarService) -> None:
    for sharing in service.sharing:
        await sharing.settle()


def _refused_at_once(service: RegistrarService) -> bool:
    response = service.registrar.handle(_register(), PHONE, NOW).response
    return (response.status, response.reason) == (403, "Too many failed attempts")


async def test_wrong_sip_passwords_spread_over_two_nodes_lock_the_phone_out_of_both(
    states: list[RedisState],
) -> None:
    a, b = _registrars(states)
    nodes = itertools.cycle([a, b])
    for count in range(1, USER.max_failures + 1):
        node = next(nodes)
        assert await _answer(node, "guess") == 403
        assert _refused_at_once(node) == (count == USER.max_failures), count
    assert node is a and not _refused_at_once(b)
    assert await _answer(b, "guess") == 403  # b's next failure: the cluster says blocked
    for node in (a, b):
        assert _refused_at_once(node)
        assert await _answer(node, "alice-secret") == 403  # not even challenged
    for node in (a, b):  # neither counted USER.max_failures itself
        assert node.statistics()["sip_user_blocked_by_cluster"] == 1
    assert b.statistics()["sip_source_failures_shared"] == 2
    for node in (a, b):
        await node.unshare_throttles()
        assert node.registrar.throttle.on_failure is None
        assert node.registrar.user_throttle.on_failure is None


def test_a_user_key_longer_than_the_cluster_takes_is_shared_by_its_digest() -> None:
    long = "u" * 300 + "@example.com 192.0.2.1"
    assert shared_name("192.0.2.1") == "192.0.2.1"
    assert shared_name(long).startswith("sha256:") and len(shared_name(long)) < 255
    assert shared_name(long) != shared_name(long + "x")


def test_sharing_needs_the_same_settings_on_both_sides() -> None:
    class Other:
        settings = ThrottleSettings(max_failures=99)

        async def blocked_for(self, source: str) -> float:
            return 0.0

        async def record_failure(self, source: str) -> bool:
            return False

    with pytest.raises(ValueError, match="other settings"):
        ThrottleSharing(FailureThrottle(API), Other(), what="API", clock=lambda: 0.0)


# -- through the HTTP stack: two real nodes ---------------------------------------------

ADMIN = "admin-token-for-tests-0123"
_databases = itertools.count()


def _node_config(node: str, redis: str) -> str:
    return f'[cluster]\nnode = "{node}"\nredis = "{redis}"\n{CONFIG}'


@asynccontextmanager
async def _http_node(
    node: str, database: str, redis: str
) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    extra = f'admin_token = "{ADMIN}"'
    async with running_server(_node_config(node, redis), database, extra) as server:
        if server.api_auth.sharing is None:  # until ``Server._join_cluster`` does it
            server.api_auth.share(server.state.throttle("api", API_THROTTLE))
        host, port = server.config.server.http_address
        task = asyncio.create_task(server.http.serve())
        while not server.http.started:
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
                yield server, client
        finally:
            server.http.should_exit = True
            await task
            await server.api_auth.unshare()


@pytest.fixture
def database(postgres_admin_url: str) -> str:
    return create_database(postgres_admin_url, f"shared_throttles_{next(_databases)}")


async def test_two_real_nodes_refuse_a_guesser_of_tokens_at_one_nodes_count(
    database: str, redis: RedisServer
) -> None:
    async with AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(_http_node(name, database, redis.url))
            for name in ("node-a", "node-b")
        ]

        async def answer(node: int, path: str, authorization: str) -> str:
            """``ok``, or the error id the node answered with."""
            server, client = nodes[node]
            response = await client.get(path, headers={"Authorization": authorization})
            assert server.api_auth.sharing is not None
            await server.api_auth.sharing.settle()
            body = response.json()
            return "ok" if body.get("result_code") == 0 else str(body["error"]["id"])

        path, admin = "/statistics", "/admin/api/domains"
        for count in range(1, API_THROTTLE.max_failures + 1):
            assert await answer(count % 2, path, WRONG) == "authentication_required"
            assert await answer(count % 2, path, RIGHT) == (
                "too_many_failures" if count == API_THROTTLE.max_failures else "ok"
            )
        # the last guess went to node 0; node 1 learns it at its next failure
        assert await answer(1, path, RIGHT) == "ok"
        assert await answer(1, admin, "Bearer wrong-admin-token") == "authentication_required"
        for node in (0, 1):
            assert await answer(node, path, RIGHT) == "too_many_failures"
            assert await answer(node, admin, f"Bearer {ADMIN}") == "too_many_failures"
