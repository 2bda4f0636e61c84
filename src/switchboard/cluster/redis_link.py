"""The connection to Redis: every call has a deadline, and Redis's errors become the
state's (``StateUnavailableError`` when Redis is unreachable or slow), so a node never
waits forever on a Redis that is gone and always says which one it was."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from switchboard.cluster.errors import ClusterStateError, StateUnavailableError

T = TypeVar("T")


MAX_CONNECTIONS = 32  # per node: commands beyond it wait for a free connection


def client_for(url: str, *, timeout: float, block: float) -> aioredis.Redis:
    """A client for ``redis://`` or ``rediss://`` URLs. RESP2, so replies keep one shape;
    the socket waits a little longer than the longest blocking read (``block``).

    A bounded pool whose commands wait (``timeout`` at most) for a free connection: under
    load a node sends hundreds of commands at once (each call's claims, reservations and
    CTI events), and an unbounded pool opened a connection for each, until Redis refused
    more clients (its ``maxclients`` follows the open-file limit) and each new connection's
    handshake cost more CPU than the command it carried."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout,
        decode_responses=True,
        protocol=2,
        socket_connect_timeout=timeout,
        socket_timeout=timeout + block,
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)


def where(client: aioredis.Redis) -> str:
    """host:port of the client's Redis, without the credentials its URL may carry."""
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


class RedisLink:
    def __init__(self, client: aioredis.Redis, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        self.where = where(client)
        # A raw command, for the replies redis-py types loosely (streams): parsed by hand.
        self.command: Callable[..., Awaitable[object]] = client.execute_command

    async def __call__(self, what: str, call: Awaitable[T], *, timeout: float | None = None) -> T:
        """``call``'s result within ``timeout`` s (the link's by default)."""
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                return await call
        except TimeoutError:
            raise StateUnavailableError(
                f"Redis at {self.where} did not answer {what} within {limit:g} s"
            ) from None
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise StateUnavailableError(
                f"Redis at {self.where} unreachable ({what}): {exc}"
            ) from exc
        except RedisError as exc:
            raise ClusterStateError(f"Redis at {self.where} refused {what}: {exc}") from exc
