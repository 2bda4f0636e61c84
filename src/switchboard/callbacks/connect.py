"""Connecting a callback to the address that was checked, and no other (API §3), the edge.

DNS rebinding: a name checked against one lookup and connected by another can answer a
public address to the check and a private one to the connection. So a host is resolved
once per attempt (``Resolver``), every address it gave is checked (``policy``), and the
connection is made to those addresses only:

- ``pinned(host, addresses)`` names, for the task that sends, the checked addresses of
  ``host``. It is a context variable: httpcore opens a connection in the task that asked
  for it, so concurrent attempts each see their own.
- ``PinnedBackend`` is the httpcore network backend of the callback client. It never
  resolves: asked to connect to ``host``, it connects to a pinned address of ``host`` and
  refuses any host that has none. TLS still runs over that connection with the name as SNI
  and the certificate checked against the name, and the Host header is the name's, because
  httpcore's origin stays the URL's host.
- ``PinnedTransport`` is httpx's own transport (request and response mapping, errors) over
  a connection pool with that backend; it ignores proxy variables (a proxy would resolve
  the name again itself). A kept-alive connection is reused only for the same host, and it
  was opened to a checked address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpcore
import httpx

from switchboard.callbacks.addresses import IPAddress

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
_PIN: ContextVar[tuple[str, tuple[IPAddress, ...]] | None] = ContextVar(
    "callback_pin", default=None
)


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host`` for a TCP connection, in the resolver's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


@contextmanager
def pinned(host: str, addresses: Iterable[IPAddress]) -> Iterator[None]:
    """While inside, a connection to ``host`` from this task goes to ``addresses`` only."""
    token = _PIN.set((host, tuple(addresses)))
    try:
        yield
    finally:
        _PIN.reset(token)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _PIN.get()
        if pin is None or pin[0] != host or not pin[1]:
            raise httpcore.ConnectError(f"no checked address for {host}")
        *others, last = pin[1]
        for address in others:  # the next checked address when one refuses (RFC 6724 order)
            with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
        return await self._inner.connect_tcp(
            str(last), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("callbacks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        keepalive: int = 20,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(verify=verify, trust_env=False)
        # Replace the pool httpx built with the same pool over the pinned backend. No cap on
        # connections here: each domain's own limit bounds them, and a shared cap would let
        # one domain's stalled receivers hold every slot.
        self._pool = httpcore.AsyncConnectionPool(
            # SSL_CERT_FILE and SSL_CERT_DIR still name the trusted CAs; proxies stay ignored.
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=True),
            max_connections=None,
            max_keepalive_connections=keepalive,
            network_backend=PinnedBackend(backend),
        )
