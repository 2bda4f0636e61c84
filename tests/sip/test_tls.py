"""SIP over TLS: the listener's handshake and certificate, TCP's limits applied before the
handshake, our Via and Contact, certificate checks on connections we open, and a phone
reached back over its own connection.

Clients are Python's ``ssl`` (OpenSSL), not ours; certificates are made per module by the
``openssl`` command (``certificates.py``). Limits are injected small, as in
``test_tcp_limits.py``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.message import Request, Response, headers
from switchboard.sip.tls import TlsListener
from switchboard.sip.transaction.base import Peer
from switchboard.sip.transport import TcpLimits
from switchboard.sip.uri import parse_uri
from switchboard.sip.useragent import UserAgent
from switchboard.tls import TlsSetupError, client_context, server_context
from tests.interop.sipp import free_port
from tests.sip.certificates import SERVER_NAME, Pki, make_pki
from tests.sip.factories import request

FIRST = 0.4  # first-message timeout (it covers the handshake)
IDLE = 5.0
SLACK = 0.3  # how late a timer may fire on a loaded test machine
PHONE_PORT = 5999  # the port a phone's Contact names; nothing listens there


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Clients:
    """Connections to an endpoint's TLS port, closed when the test ends."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.writers: list[asyncio.StreamWriter] = []

    async def tls(
        self, context: ssl.SSLContext, source: str = "127.0.0.1", name: str = SERVER_NAME
    ) -> Streams:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=context, server_hostname=name, local_addr=(source, 0)
        )
        self.writers.append(writer)
        return reader, writer

    async def plain(self, source: str = "127.0.0.1") -> Streams:
        """TCP only: a client that never starts the handshake, or speaks SIP in clear."""
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, local_addr=(source, 0)
        )
        self.writers.append(writer)
        return reader, writer

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


@asynccontextmanager
async def _endpoint(pki: Pki, per_source: int = 32) -> AsyncIterator[tuple[SipEndpoint, Clients]]:
    ep = SipEndpoint(
        "127.0.0.1",
        free_port(),
        tcp_limits=TcpLimits(per_source, IDLE, FIRST),
        tls=TlsListener("127.0.0.1", 0, server_context(str(pki.certificate), str(pki.key))),
    )
    await ep.start()
    UserAgent(ep)
    assert ep.tls_port is not None
    clients = Clients(ep.tls_port)
    try:
        yield ep, clients
    finally:
        clients.close()
        await ep.close()


def _trusting(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca))


def _options(branch: str, contact_host: str = "127.0.0.1") -> bytes:
    message = bytes(request("OPTIONS", branch=branch, transport="TLS", sent_by="127.0.0.1:9"))
    contact = f"<sip:alice@{contact_host}:{PHONE_PORT};transport=tls>".encode()
    return message.replace(b"<sip:alice@192.0.2.10:5060>", contact)


async def _head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(2):
        while not condition():
            await asyncio.sleep(0.005)


async def _closed_after(reader: asyncio.StreamReader, started: float) -> float:
    while await asyncio.wait_for(reader.read(65536), 5):
        pass
    return asyncio.get_running_loop().time() - started


# -- the listener ---------------------------------------------------------------------


async def test_a_client_trusting_the_ca_checks_the_name_and_gets_options_answered(
    pki: Pki,
) -> None:
    async with _endpoint(pki) as (ep, clients):
        reader, writer = await clients.tls(_trusting(pki))
        tls = writer.get_extra_info("ssl_object")
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert ("DNS", SERVER_NAME) in tls.getpeercert()["subjectAltName"]
        writer.write(_options("z9hG4bK-tls-options"))
        head = await _head(reader)
        assert head.startswith(b"SIP/2.0 200 ")
        assert b"Via: SIP/2.0/TLS 127.0.0.1:9;branch=z9hG4bK-tls-options" in head
        assert ep.statistics()["tls_connections"] == 1


async def test_a_client_that_does_not_trust_the_certificate_fails_the_handshake(
    pki: Pki,
) -> None:
    async with _endpoint(pki) as (ep, clients):
        with pytest.raises(ssl.SSLCertVerificationError):
            await clients.tls(ssl.create_default_context())  # the system's CAs only
        await _until(lambda: ep.statistics()["tls_handshake_failed"] == 1)
        # Nor does a name the certificate does not carry pass with the right CA.
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            await clients.tls(_trusting(pki), name="other.test")
        await _until(lambda: ep.statistics()["tls_handshake_failed"] == 2)
        assert ep.statistics()["tls_connections"] == 0


async def test_plain_sip_sent_to_the_tls_port_is_a_failed_handshake(pki: Pki) -> None:
    async with _endpoint(pki) as (ep, clients):
        reader, writer = await clients.plain()
        writer.write(_options("z9hG4bK-plain"))
        answer = await asyncio.wait_for(reader.read(), 2)
        assert not answer.startswith(b"SIP/2.0")  # nothing answered in clear text
        await _until(lambda: ep.statistics()["tls_handshake_failed"] == 1)
        assert ep.statistics()["in"] == 0


async def test_a_client_that_never_handshakes_is_closed_at_the_first_message_timeout(
    pki: Pki,
) -> None:
    async with _endpoint(pki, per_source=1) as (ep, clients):
        started = asyncio.get_running_loop().time()
        reader, _ = await clients.plain()
        assert FIRST <= await _closed_after(reader, started) < FIRST + SLACK
        stats = ep.statistics()
        assert stats["tls_closed_silent"] == 1 and stats["tls_handshake_failed"] == 0
        # Its slot is free again: with a cap of one, the next client is served.
        reader, writer = await clients.tls(_trusting(pki))
        writer.write(_options("z9hG4bK-after-silent"))
        assert (await _head(reader)).startswith(b"SIP/2.0 200 ")


async def test_the_per_source_cap_counts_tls_connections_before_their_handshake(
    pki: Pki,
) -> None:
    async with _endpoint(pki, per_source=2) as (ep, clients):
        for _ in range(2):  # connected, no handshake: each holds a slot
            await clients.plain("127.0.0.2")
        started = asyncio.get_running_loop().time()
        third, _ = await clients.plain("127.0.0.2")
        assert await _closed_after(third, started) < SLACK
        assert ep.statistics()["tls_refused"] == 1
        # Another source is not affected by this one's cap.
        reader, writer = await clients.tls(_trusting(pki), source="127.0.0.1")
        writer.write(_options("z9hG4bK-other-source"))
        assert (await _head(reader)).startswith(b"SIP/2.0 200 ")
        assert ep.statistics()["tcp_refused"] == 0  # TCP's slots are counted apart


def test_a_certificate_that_cannot_be_loaded_is_named_in_the_error(
    pki: Pki, tmp_path: Path
) -> None:
    with pytest.raises(TlsSetupError, match=r"missing\.pem"):
        server_context(str(tmp_path / "missing.pem"), str(pki.key))
    with pytest.raises(TlsSetupError, match=r"server\.pem"):
        server_context(str(pki.certificate), str(pki.ca))  # not the certificate's key


# -- what we send ---------------------------------------------------------------------


async def test_our_via_and_contact_name_tls_and_the_tls_port(pki: Pki) -> None:
    async with _endpoint(pki) as (ep, _):
        assert ep.tls_port not in (None, ep.listen_port)
        assert ep.via("TLS").startswith(f"SIP/2.0/TLS 127.0.0.1:{ep.tls_port};branch=z9hG4bK")
        assert ep.contact("pbx", "TLS") == f"<sip:pbx@127.0.0.1:{ep.tls_port};transport=tls>"
        assert ep.via("UDP").startswith(f"SIP/2.0/UDP 127.0.0.1:{ep.listen_port};")


async def _send_options(ep: SipEndpoint, peer: Peer) -> Response:
    answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
    options = Request(
        "OPTIONS",
        parse_uri(f"sip:{peer.host}:{peer.port};transport={peer.transport.lower()}"),
        headers(
            ("Via", ep.via(peer.transport)),
            ("Max-Forwards", "70"),
            ("From", f"<sip:pbx@127.0.0.1>;tag={ep.ids.tag()}"),
            ("To", f"<sip:{peer.host}>"),
            ("Call-ID", ep.ids.call_id()),
            ("CSeq", "1 OPTIONS"),
        ),
    )

    def on_response(response: Response) -> None:
        if not answer.done():
            answer.set_result(response)

    ep.send_request(options, peer, on_response)
    return await asyncio.wait_for(answer, 5)


async def test_a_tls_peer_without_a_tls_listener_fails_and_never_goes_over_tcp() -> None:
    ep = SipEndpoint("127.0.0.1", free_port())
    await ep.start()
    try:
        response = await _send_options(ep, Peer("TLS", "127.0.0.1", ep.listen_port))
        assert response.status == 503
        stats = ep.statistics()
        assert stats["tcp_connections"] == 0 and "tls_connections" not in stats
    finally:
        await ep.close()


async def test_a_connection_we_open_checks_the_servers_certificate(pki: Pki) -> None:
    async with _endpoint(pki) as (trunk, _), _endpoint(pki) as (ep, _):
        assert trunk.tls_port is not None
        peer = Peer("TLS", "127.0.0.1", trunk.tls_port)  # the certificate names 127.0.0.1
        # The system's CAs do not know the test CA: no connection, the request fails.
        assert (await _send_options(ep, peer)).status == 503
        assert trunk.statistics()["in"] == 0
        ep.trust_tls("127.0.0.1", trunk.tls_port, client_context(cafile=str(pki.ca)))
        assert (await _send_options(ep, peer)).status == 200
        assert trunk.statistics()["in"] == 1


# -- a phone reached over its own connection ------------------------------------------


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await _head(reader)
    while head.startswith(b"SIP/2.0 "):  # skip responses to what the phone sent
        head = await _head(reader)
    return head


async def test_a_phones_contact_is_reached_over_the_connection_it_came_on(pki: Pki) -> None:
    async with _endpoint(pki) as (ep, clients):
        reader, writer = await clients.tls(_trusting(pki))
        writer.write(_options("z9hG4bK-contact"))  # Contact: 127.0.0.1:5999;transport=tls
        assert (await _head(reader)).startswith(b"SIP/2.0 200 ")
        sent = asyncio.create_task(_send_options(ep, Peer("TLS", "127.0.0.1", PHONE_PORT)))
        received = await _read_request(reader)
        assert received.startswith(b"OPTIONS sip:127.0.0.1:5999;transport=tls SIP/2.0\r\n")
        assert f"Via: SIP/2.0/TLS 127.0.0.1:{ep.tls_port};".encode() in received
        sent.cancel()
        writer.close()
        await _until(lambda: ep.statistics()["tls_connections"] == 0)
        # The alias ended with its connection: nothing listens at the Contact's port.
        assert (await _send_options(ep, Peer("TLS", "127.0.0.1", PHONE_PORT))).status == 503


async def test_a_contact_naming_another_host_is_not_reached_over_the_connection(
    pki: Pki,
) -> None:
    async with _endpoint(pki) as (ep, clients):
        reader, writer = await clients.tls(_trusting(pki))
        writer.write(_options("z9hG4bK-other-host", contact_host="127.0.0.9"))
        assert (await _head(reader)).startswith(b"SIP/2.0 200 ")
        response = await _send_options(ep, Peer("TLS", "127.0.0.9", PHONE_PORT))
        assert response.status == 503  # a new connection was tried, and refused
