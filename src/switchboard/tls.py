"""TLS for the listeners: SIP over TLS (RFC 3261 §26.2, RFC 5630) and HTTPS for the API
and ws_cti.

Rules:
- One certificate chain and key (PEM files, ``tls_certificate`` and ``tls_key``) serve
  both. TLS 1.2 or later, with Python's default ciphers and OpenSSL's security level; no
  client certificate is asked for.
- An accepted connection is counted against its listener's caps *before* its handshake:
  the protocol that accepted the plain TCP connection starts the handshake itself
  (``start_server_tls``). A client that connects and never completes the handshake then
  holds a counted slot, and only until the handshake deadline. With
  ``create_server(ssl=…)`` the protocol would hear of a connection only once its
  handshake is done, so a flood of silent connections would be counted nowhere.
- Outgoing connections verify the server's certificate and name against the system's CAs
  (``client_context``); a context with another CA file, or with no check at all, is for a
  peer whose operator says so (``SipEndpoint.trust_tls``), never the default.
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from collections.abc import Callable

from switchboard.config import ServerConfig

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
HANDSHAKE_TIMEOUT = 10.0  # seconds; the same as a SIP connection's first message
# A peer that never answers our close_notify would hold its descriptor for asyncio's
# default 30 s.
SHUTDOWN_TIMEOUT = 5.0

Settled = Callable[[BaseException | None], None]


class TlsSetupError(ValueError):
    """The certificate or key cannot be loaded; the message names the files."""


def server_context(certificate: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MINIMUM_VERSION
    try:
        context.load_cert_chain(certificate, key)
    except OSError as exc:  # ssl.SSLError is one: a key that does not match, not PEM
        raise TlsSetupError(
            f"tls_certificate {certificate!r} with tls_key {key!r}: {exc}"
        ) from None
    return context


def configured_server_context(settings: ServerConfig) -> ssl.SSLContext:
    """The server's certificate and key; loading the config checked both are named when
    ``sip_tls_listen`` or ``http_tls`` is set."""
    if settings.tls_certificate is None or settings.tls_key is None:
        raise TlsSetupError("TLS needs tls_certificate and tls_key (PEM files)")
    return server_context(settings.tls_certificate, settings.tls_key)


def https_context(settings: ServerConfig) -> ssl.SSLContext | None:
    """The HTTP listener's TLS when ``http_tls`` is on; None: plain HTTP."""
    return configured_server_context(settings) if settings.http_tls else None


def client_context(*, cafile: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """For connections we open: the system's CAs (or ``cafile``'s), the peer's name or IP
    address checked against its certificate. ``verify=False`` checks nothing: for a trunk
    whose operator says so, never by default."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = MINIMUM_VERSION
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def start_server_tls(
    raw: asyncio.Transport,
    protocol: asyncio.Protocol,
    context: ssl.SSLContext,
    *,
    timeout: int,
    on_settled: Settled,
) -> None:
    """Run the server side of a TLS handshake on ``raw``, an accepted connection that
    ``protocol`` has counted, for ``protocol``.

    On success ``protocol.connection_made`` is called again, with the TLS transport; data
    and ``connection_lost`` follow as usual. Then, in any case, ``on_settled`` is called,
    with the handshake's error if there was one: a protocol not given the TLS transport by
    then has lost the connection (a bad handshake, ``timeout``, the peer gone, the
    connection aborted) and hears no ``connection_lost`` for it.

    asyncio's own ``SSLProtocol`` is put in front of ``protocol`` here and now, from
    ``connection_made``, as ``start_tls`` would do a loop iteration later: by then uvloop
    (which starts reading right after ``connection_made``, whatever the protocol paused)
    would have handed the ClientHello to ``protocol``.
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    layer = sslproto.SSLProtocol(
        loop,
        protocol,
        context,
        waiter,
        server_side=True,
        call_connection_made=True,
        ssl_handshake_timeout=timeout,
        ssl_shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    raw.set_protocol(layer)
    layer.connection_made(raw)

    # Never cancelled (nobody else holds it); an aborted handshake settles it with None.
    waiter.add_done_callback(lambda done: on_settled(done.exception()))
