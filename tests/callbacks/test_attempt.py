"""One try, against real listeners: the address checked is the address connected, TLS on
the name, the answer read up to a cap, one deadline for the whole try."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
import subprocess
from collections.abc import Iterable
from pathlib import Path

import httpcore
import httpx
import pytest

from switchboard.callbacks.addresses import IPAddress
from switchboard.callbacks.attempt import Attempts
from switchboard.callbacks.connect import PinnedBackend, PinnedTransport, pinned
from tests.callbacks.raw_receiver import drip, huge_body, ok, raw_receiver

HEADERS = {"Content-Type": "application/json", "X-Switchboard-Delivery": "d-1"}


class Resolver:
    """Answers each lookup with the next of ``answers`` (the last one again once used up)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = [[ipaddress.ip_address(a) for a in answer] for answer in answers]
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records where it is asked to connect and connects nowhere."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        raise httpcore.ConnectError("refused by the test")


def _header(request: bytes, name: bytes) -> bytes | None:
    for line in request.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


async def test_a_name_is_resolved_once_per_try_and_posted_to_that_answer() -> None:
    async with raw_receiver(ok()) as first, raw_receiver(ok(), "127.0.0.2", first.port) as second:
        resolver = Resolver(["127.0.0.1"], ["127.0.0.2"])
        attempts = Attempts(allow_private=True, resolver=resolver)
        try:
            assert await attempts.post(first.url("receiver.test"), b"{}", HEADERS) is None
            assert resolver.asked == ["receiver.test"]
            assert (len(first.connections), len(second.connections)) == (1, 0)
            assert _header(first.connections[0].request, b"host") == (
                f"receiver.test:{first.port}".encode()
            )
            # The next try looks the name up again, and goes where that answer says.
            assert await attempts.post(first.url("receiver.test"), b"{}", HEADERS) is None
            assert (len(first.connections), len(second.connections)) == (1, 1)
        finally:
            await attempts.aclose()


async def test_the_connection_goes_to_the_checked_address_not_to_a_second_answer() -> None:
    backend = RecordingBackend()
    resolver = Resolver(["8.8.8.8"], ["127.0.0.1"])  # public to the check, loopback after
    attempts = Attempts(
        allow_private=False, resolver=resolver, transport=PinnedTransport(backend=backend)
    )
    try:
        error = await attempts.post("http://rebind.test:8080/hook", b"{}", HEADERS)
    finally:
        await attempts.aclose()
    assert error is not None and error.startswith("ConnectError")
    assert resolver.asked == ["rebind.test"]
    assert backend.connects == [("8.8.8.8", 8080)]


async def test_a_name_with_any_private_answer_is_not_connected_at_all() -> None:
    backend = RecordingBackend()
    attempts = Attempts(
        allow_private=False,
        resolver=Resolver(["8.8.8.8", "100.64.0.9"]),
        transport=PinnedTransport(backend=backend),
    )
    try:
        error = await attempts.post("http://mixed.test/hook", b"{}", HEADERS)
    finally:
        await attempts.aclose()
    assert error == (
        "mixed.test (100.64.0.9) is not a public address "
        "(100.64.0.0/10: shared address space, carrier-grade NAT, RFC 6598)"
    )
    assert backend.connects == []


async def test_the_backend_never_resolves_a_host_it_was_not_given_addresses_for() -> None:
    spy = RecordingBackend()
    backend = PinnedBackend(spy)
    with pytest.raises(httpcore.ConnectError, match=r"no checked address for a\.test"):
        await backend.connect_tcp("a.test", 80)
    with (
        pinned("b.test", [ipaddress.ip_address("8.8.8.8")]),
        pytest.raises(httpcore.ConnectError, match=r"no checked address for a\.test"),
    ):
        await backend.connect_tcp("a.test", 80)
    assert spy.connects == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for receiver.test: (certificate, key)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=receiver.test",
            "-addext",
            "subjectAltName=DNS:receiver.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_to_the_checked_address_keeps_sni_and_the_certificate_check_on_the_name(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_tls.sni_callback = lambda _socket, name, _context: names.append(name)
    client_tls = ssl.create_default_context(cafile=str(cert))
    async with raw_receiver(ok(), tls=server_tls) as receiver:
        attempts = Attempts(
            allow_private=True,
            resolver=Resolver(["127.0.0.1"]),
            transport=PinnedTransport(verify=client_tls),
        )
        try:
            good = await attempts.post(receiver.url("receiver.test", "https"), b"{}", HEADERS)
            other = await attempts.post(receiver.url("other.test", "https"), b"{}", HEADERS)
        finally:
            await attempts.aclose()
    assert good is None
    assert names[0] == "receiver.test"
    (connection,) = receiver.connections  # the other name's handshake failed: no request
    assert _header(connection.request, b"host") == f"receiver.test:{receiver.port}".encode()
    assert other is not None and "CERTIFICATE_VERIFY_FAILED" in other


async def test_the_answer_is_read_up_to_the_cap_then_the_connection_is_closed() -> None:
    size = 256 * 1024 * 1024
    async with raw_receiver(huge_body(size)) as receiver:
        attempts = Attempts(allow_private=True, max_response=65536)
        try:
            assert await attempts.post(receiver.url(), b"{}", HEADERS) is None  # 200 decides
            (connection,) = receiver.connections
            async with asyncio.timeout(5):
                await connection.finished.wait()
        finally:
            await attempts.aclose()
    # What the kernel's socket buffers took before the close, not the 256 MiB offered.
    assert connection.written < 16 * 1024 * 1024


async def test_a_slow_drip_is_cut_at_the_deadline() -> None:
    async with raw_receiver(drip(0.02)) as receiver:
        attempts = Attempts(allow_private=True, deadline=0.5)
        try:
            error = await attempts.post(receiver.url(), b"{}", HEADERS)
            (connection,) = receiver.connections
            async with asyncio.timeout(1):
                await connection.finished.wait()
        finally:
            await attempts.aclose()
    assert error == "no answer within the 0.5 s deadline"
    assert connection.closed is not None
    assert abs(connection.closed - connection.accepted - 0.5) <= 0.05


async def test_the_deadline_covers_the_lookup_too() -> None:
    async def hanging(host: str, port: int) -> list[IPAddress]:
        await asyncio.Event().wait()
        return []

    attempts = Attempts(allow_private=True, deadline=0.2, resolver=hanging)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        error = await attempts.post("http://slow-dns.test/hook", b"{}", HEADERS)
    finally:
        await attempts.aclose()
    assert error == "no answer within the 0.2 s deadline"
    assert loop.time() - started < 0.3


async def test_redirects_are_not_followed_and_credentials_go_as_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "http://127.0.0.1/admin"})

    attempts = Attempts(allow_private=False, transport=httpx.MockTransport(handler))
    try:
        url = "http://us%40er:pa%3Ass@8.8.8.8/hook"
        assert await attempts.post(url, b"{}", HEADERS) == "HTTP 302"
    finally:
        await attempts.aclose()
    (request,) = seen
    assert str(request.url) == "http://8.8.8.8/hook"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"us@er:pa:ss").decode()
    assert request.headers["accept-encoding"] == "identity"
