"""SIP over TLS and HTTPS against peers not written here: Debian's baresip (its libre is
built with OpenSSL) registers over TLS and answers a call_group call over TLS; Python's
``ssl`` checks the listener's handshake and certificate; httpx and the ``websockets``
client use the API and ws_cti over HTTPS and WSS. Debian's SIPp has no TLS: it plays the
PSTN trunk over UDP.

Certificates: a throwaway CA and a server certificate for localhost and 127.0.0.1
(``tests/sip/certificates.py``, made by the ``openssl`` command).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from switchboard.api import listener
from switchboard.app import Server
from switchboard.sip.digest import answer_challenge
from switchboard.sip.message import Message, Request, Response
from switchboard.sip.transaction.base import Peer
from tests.interop.call_group_harness import AUTH, start_call_group, trunk_scenario, wait_bridged
from tests.interop.phones_harness import (
    PHONE_HOST,
    TRUNK_HOST,
    Baresip,
    reaped,
    scenario_copy,
    start_sipp_at,
    write_tone,
)
from tests.interop.servers import running_server
from tests.interop.sipp import free_port
from tests.sip.certificates import SERVER_NAME, Pki, make_pki

pytestmark = [pytest.mark.interop, pytest.mark.slow]

CALLER_ID = "0506868000"


def _config(trunk_port: int) -> str:
    return f"""
[[domains]]
name = "example.com"
api_token = "token-for-tests"
channel_limit = 10
calling_number = "{CALLER_ID}"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "alice-secret"
  [[domains.groups]]
  id = 1111
  name = "support"
  extension = "1111"
  members = ["alice"]
  [[domains.trunks]]
  name = "pstn"
  address = "{TRUNK_HOST}:{trunk_port}"
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _trusting(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca))


@asynccontextmanager
async def _serving(
    tmp_path: Path, pki: Pki, trunk_port: int, extra: str = ""
) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    """A server with SIP over TLS and HTTPS, and an httpx client trusting the test CA."""
    tls_port = free_port(socket.SOCK_STREAM)
    settings = (
        f'sip_tls_listen = "127.0.0.1:{tls_port}"\nhttp_tls = true\n'
        f'tls_certificate = "{pki.certificate}"\ntls_key = "{pki.key}"\n{extra}'
    )
    async with running_server(_config(trunk_port), tmp_path / "db.sqlite", settings) as server:
        _, port = server.config.server.http_address
        task = asyncio.create_task(server.http.serve())
        while not server.http.started:
            await asyncio.sleep(0.01)
        base = f"https://{SERVER_NAME}:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, verify=_trusting(pki)) as client:
                yield server, client
        finally:
            server.http.should_exit = True
            await task


class PeerTap:
    """What the server sends, with the peer it goes to."""

    def __init__(self, server: Server) -> None:
        self.sent: list[tuple[Message, Peer]] = []
        endpoint = server.endpoint
        original = endpoint._send

        def send(message: Message, peer: Peer) -> None:
            self.sent.append((message, peer))
            original(message, peer)

        endpoint._send = send  # type: ignore[method-assign]

    def requests(self, method: str) -> list[tuple[Request, Peer]]:
        return [(m, p) for m, p in self.sent if isinstance(m, Request) and m.method == method]


# -- baresip ----------------------------------------------------------------------------


def _baresip_home(path: Path, pki: Pki, tls_port: int, control_port: int) -> Path:
    """alice over TLS only: its outbound proxy is the TLS listener, and it trusts the test
    CA (``sip_cafile``; baresip 1.0.0 does not check the server's certificate even so); it
    answers by itself and plays a tone."""
    path.mkdir(parents=True)
    tone = write_tone(path / "tone.wav", 440.0)
    (path / "config").write_text(
        f"poll_method epoll\nsip_listen {PHONE_HOST}:0\nsip_trans_def tls\n"
        f"sip_cafile {pki.ca}\n"
        f"audio_player aufile,/dev/null\naudio_source aufile,{tone}\n"
        f"rtp_ports 30000-39999\nctrl_tcp_listen {PHONE_HOST}:{control_port}\n"
        "module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n"
        "module_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n"
    )
    # baresip 1.0.0 refuses sips: URIs (ENOSYS): it asks for TLS with transport=tls.
    (path / "accounts").write_text(
        "<sip:alice@example.com;transport=tls>;auth_pass=alice-secret;"
        f'outbound="sip:{PHONE_HOST}:{tls_port};transport=tls";regint=300;answermode=auto;'
        "audio_codecs=PCMU\n"
    )
    return path


@asynccontextmanager
async def _baresip_over_tls(tmp_path: Path, pki: Pki, server: Server) -> AsyncIterator[Baresip]:
    binary = shutil.which("baresip")
    assert binary, "baresip is not installed: apt-get install baresip-core (see scripts/setup)"
    assert server.endpoint.tls_port is not None
    control = free_port(socket.SOCK_STREAM)
    home = _baresip_home(tmp_path / "baresip-alice", pki, server.endpoint.tls_port, control)
    with (home / "baresip.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary, "-f", str(home), "-t", "60", stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    phone = Baresip("alice", home, process)
    try:
        for _ in range(200):
            if server.registrar.contacts("example.com", "alice") or process.returncode is not None:
                break
            await asyncio.sleep(0.025)
        assert server.registrar.contacts("example.com", "alice"), f"no binding\n{phone.log()}"
        await phone.connect(control)
        yield phone
    finally:
        await phone.stop()


async def test_baresip_registers_over_tls_and_answers_a_call_group_call_over_tls(
    tmp_path: Path, pki: Pki
) -> None:
    trunk_port = free_port()
    trunk = await start_sipp_at(
        TRUNK_HOST, trunk_port, ["-sf", str(trunk_scenario(tmp_path, CALLER_ID)), "-m", "1"]
    )
    async with (
        reaped(trunk),
        _serving(tmp_path, pki, trunk_port) as (server, client),
        _baresip_over_tls(tmp_path, pki, server) as alice,
    ):
        (binding,) = server.registrar.location.bindings(("example.com", "alice"), 0.0)
        assert binding.source is not None and binding.source.transport == "TLS"
        assert "transport=tls" in binding.contact
        tap = PeerTap(server)
        uuids = await start_call_group(
            client, {"group_name": "support", "destination": "0312341234"}
        )
        await alice.event("CALL_ESTABLISHED", timeout=10)
        call = await wait_bridged(server)
        ((invite, peer),) = [(r, p) for r, p in tap.requests("INVITE") if "alice" in str(r.uri)]
        assert peer == binding.source  # over the connection alice registered on
        assert invite.top_via.transport == "TLS"
        assert invite.top_via.port == server.endpoint.tls_port
        assert f":{server.endpoint.tls_port};transport=tls>" in (invite.get("Contact") or "")
        assert call.bridged
        # The ACK and the BYE go to alice's Contact: over her connection too.
        hung_up = await client.post(
            "/basix/api/hangup", json={"uuid": uuids[0]}, headers={"Authorization": AUTH}
        )
        assert hung_up.json() == {"result_code": 0}
        await alice.event("CALL_CLOSED", timeout=10)
        for method in ("ACK", "BYE"):
            peers = [p for r, p in tap.requests(method) if "alice" in str(r.get("To"))]
            assert peers and all(p.transport == "TLS" for p in peers), (method, peers)
        stats = server.statistics()
        assert stats["tls_connections"] == 1  # alice's one connection carried everything
        out, _ = await asyncio.wait_for(trunk.communicate(), 15)
        assert trunk.returncode == 0, out.decode(errors="replace")[-1500:]


async def test_baresip_over_tls_places_a_pstn_call_over_tls(tmp_path: Path, pki: Pki) -> None:
    trunk_port = free_port()
    scenario = scenario_copy(
        tmp_path, "uas_trunk_dialled.xml", CALLED_NUMBER="0312341234", CALLER_NUMBER=CALLER_ID
    )
    trunk = await start_sipp_at(TRUNK_HOST, trunk_port, ["-sf", str(scenario), "-m", "1"])
    async with (
        reaped(trunk),
        _serving(tmp_path, pki, trunk_port) as (server, _),
        _baresip_over_tls(tmp_path, pki, server) as alice,
    ):
        (binding,) = server.registrar.location.bindings(("example.com", "alice"), 0.0)
        alice_connection = binding.source
        tap = PeerTap(server)
        await alice.command("dial", "0312341234")
        await alice.event("CALL_ESTABLISHED", timeout=10)
        await wait_bridged(server)
        # Challenged (407) and answered over alice's TLS connection.
        to_alice = [m.first_line for m, p in tap.sent if p == alice_connection]
        assert to_alice == [
            "100 Trying",
            "407 Proxy Authentication Required",
            "100 Trying",
            "180 Ringing",
            "200 OK",
        ]
        (answer,) = [m for m, p in tap.sent if p == alice_connection and m.first_line == "200 OK"]
        assert ";transport=tls>" in (answer.get("Contact") or "")  # her ACK and BYE: TLS
        await alice.command("hangup")
        await alice.event("CALL_CLOSED", timeout=10)
        bye_answers = [p for m, p in tap.sent if isinstance(m, Response) and m.cseq.method == "BYE"]
        assert bye_answers[:1] == [alice_connection]  # her BYE came over her connection
        out, _ = await asyncio.wait_for(trunk.communicate(), 15)
        assert trunk.returncode == 0, out.decode(errors="replace")[-1500:]
        assert server.engine.statistics() == {"calls": 0, "channels": 0}


# -- Python's ssl against the SIP listener -------------------------------------------------


async def _tls_connect(
    server: Server, context: ssl.SSLContext
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert server.endpoint.tls_port is not None
    return await asyncio.open_connection(
        "127.0.0.1", server.endpoint.tls_port, ssl=context, server_hostname=SERVER_NAME
    )


def _options_over_tls(local_port: int) -> bytes:
    return (
        "OPTIONS sip:example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:{local_port};branch=z9hG4bK-python-ssl;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:probe@example.com>;tag=probe\r\n"
        "To: <sip:example.com>\r\n"
        "Call-ID: python-ssl-probe\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def test_python_ssl_checks_the_sip_listeners_certificate_then_gets_options_answered(
    tmp_path: Path, pki: Pki
) -> None:
    async with _serving(tmp_path, pki, free_port()) as (server, _):
        # A client that trusts only the system's CAs refuses the certificate.
        with pytest.raises(ssl.SSLCertVerificationError):
            await _tls_connect(server, ssl.create_default_context())
        reader, writer = await _tls_connect(server, _trusting(pki))
        try:
            tls = writer.get_extra_info("ssl_object")
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert ("DNS", SERVER_NAME) in tls.getpeercert()["subjectAltName"]
            writer.write(_options_over_tls(writer.get_extra_info("sockname")[1]))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"SIP/2.0 200 OK\r\n")
            assert b"Via: SIP/2.0/TLS 127.0.0.1:" in head and b"Allow: " in head
        finally:
            writer.close()
        stats = server.statistics()
        assert stats["tls_handshake_failed"] == 1 and stats["in"] == 1


async def _until(condition: Callable[[], bool]) -> None:
    """The server's counters are the only sign it saw a connection come or go."""
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


# -- HTTPS and WSS ------------------------------------------------------------------------


async def test_the_api_and_ws_cti_answer_over_https_and_wss(tmp_path: Path, pki: Pki) -> None:
    async with _serving(tmp_path, pki, free_port()) as (server, client):
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        answer = await client.post(
            "/basix/api/call_group",
            json={"group_name": "support", "destination": "0312341234"},
            headers={"Authorization": AUTH},
        )
        # A call method, answered over HTTPS: alice is not registered, so nobody rings.
        assert answer.status_code == 200 and answer.json()["result_code"] == 0
        _, port = server.config.server.http_address
        url = f"wss://{SERVER_NAME}:{port}/basix/api/ws_cti?format=json"
        async with connect(
            url, ssl=_trusting(pki), additional_headers={"Authorization": AUTH}
        ) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert first["type"] == "field_spec"
        # Plain HTTP on the HTTPS listener gets no answer in clear text.
        async with httpx.AsyncClient() as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://127.0.0.1:{port}/healthz")


async def test_https_connections_are_counted_before_their_handshake_and_dropped_after_it(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener, "REQUEST_TIMEOUT", 1.0)  # the handshake's deadline too
    async with _serving(tmp_path, pki, free_port(), "http_connections_per_source = 2\n") as (
        server,
        client,
    ):
        host, port = server.config.server.http_address
        loop = asyncio.get_running_loop()
        silent = [await asyncio.open_connection(host, port) for _ in range(2)]  # no handshake
        await _until(lambda: server.http.limits.open == 2)
        reader, writer = await asyncio.open_connection(host, port)  # over the cap
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed, nothing said
        writer.close()
        started = loop.time()
        for silent_reader, _ in silent:
            assert await asyncio.wait_for(silent_reader.read(), 5) == b""
        assert loop.time() - started < 1.5
        await _until(lambda: server.http.limits.open == 0)
        for _, silent_writer in silent:
            silent_writer.close()
        assert (await client.get("/healthz")).status_code == 200  # the slots are back


# -- sips: URIs ----------------------------------------------------------------------------


async def _read_message(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """One SIP message from a stream: its first line and its headers (the first of each)."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
    first, *lines = head.strip().split("\r\n")
    fields: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields.setdefault(name.strip().lower(), value.strip())
    await reader.readexactly(int(fields.get("content-length", "0")))
    return first, fields


def _register(local_port: int, cseq: int, authorization: str | None = None) -> bytes:
    lines = [
        "REGISTER sips:example.com SIP/2.0",
        f"Via: SIP/2.0/TLS 127.0.0.1:{local_port};branch=z9hG4bK-sips-{cseq};rport",
        "Max-Forwards: 70",
        "From: <sips:alice@example.com>;tag=sips-phone",
        "To: <sips:alice@example.com>",
        "Call-ID: sips-registration",
        f"CSeq: {cseq} REGISTER",
        "Contact: <sips:alice@127.0.0.1:5999>",
        "Expires: 300",
        *([f"Authorization: {authorization}"] if authorization else []),
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_a_phone_using_sips_uris_registers_and_is_rung_over_its_connection(
    tmp_path: Path, pki: Pki
) -> None:
    async with _serving(tmp_path, pki, free_port()) as (server, client):
        reader, writer = await _tls_connect(server, _trusting(pki))
        try:
            local_port = writer.get_extra_info("sockname")[1]
            writer.write(_register(local_port, 1))
            status, fields = await _read_message(reader)
            assert status.startswith("SIP/2.0 401 ")
            answer = answer_challenge(
                fields["www-authenticate"],
                method="REGISTER",
                uri="sips:example.com",
                username="alice",
                password="alice-secret",
                cnonce="sips-phone",
            )
            writer.write(_register(local_port, 2, answer))
            status, _ = await _read_message(reader)
            assert status.startswith("SIP/2.0 200 ")
            (binding,) = server.registrar.location.bindings(("example.com", "alice"), 0.0)
            assert binding.contact == "sips:alice@127.0.0.1:5999"
            assert binding.source == Peer("TLS", "127.0.0.1", local_port)
            await start_call_group(client, {"group_name": "support", "destination": "0312341234"})
            first, fields = await _read_message(reader)
            assert first == "INVITE sips:alice@127.0.0.1:5999 SIP/2.0"
            assert fields["via"].startswith(f"SIP/2.0/TLS 127.0.0.1:{server.endpoint.tls_port};")
        finally:
            writer.close()


# -- a trunk over TLS ----------------------------------------------------------------------


async def _tls_trunk(pki: Pki) -> tuple[asyncio.Server, int, list[bytes]]:
    """A gateway over TLS (Python's ssl, the test certificate): 200 to every request."""
    received: list[bytes] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.certificate, pki.key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                received.append(head)
                fields = dict(
                    line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
                )
                answer = (
                    "SIP/2.0 200 OK\r\n"
                    f"Via: {fields['Via']}\r\nFrom: {fields['From']}\r\n"
                    f"To: {fields['To']};tag=gw\r\nCall-ID: {fields['Call-ID']}\r\n"
                    f"CSeq: {fields['CSeq']}\r\nContent-Length: 0\r\n\r\n"
                )
                writer.write(answer.encode())
                await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = int(server.sockets[0].getsockname()[1])
    return server, port, received


@pytest.mark.parametrize(("ca_file", "state"), [(True, "up"), (False, "down")])
async def test_a_tls_trunk_is_reached_when_its_ca_is_trusted_and_not_otherwise(
    tmp_path: Path, pki: Pki, ca_file: bool, state: str
) -> None:
    gateway, port, received = await _tls_trunk(pki)
    trusted = f'  tls_ca_file = "{pki.ca}"\n' if ca_file else ""
    config = _config(port).replace(
        f'address = "{TRUNK_HOST}:{port}"',
        f'address = "127.0.0.1:{port}"\n  transport = "tls"\n{trusted}',
    )
    settings = (
        f'sip_tls_listen = "127.0.0.1:{free_port(socket.SOCK_STREAM)}"\n'
        f'tls_certificate = "{pki.certificate}"\ntls_key = "{pki.key}"\n'
        "trunk_ping_seconds = 0.2\ntrunk_ping_timeout = 1"
    )
    try:
        async with running_server(config, tmp_path / "db.sqlite", settings) as server:
            async with asyncio.timeout(5):
                while server.trunks.state("example.com", "pstn").value != state:
                    await asyncio.sleep(0.05)
    finally:
        gateway.close()
        await gateway.wait_closed()
    if ca_file:  # our OPTIONS came over TLS, checked against the trunk's own CA
        assert received and received[0].startswith(b"OPTIONS sip:127.0.0.1:")
        assert b"Via: SIP/2.0/TLS " in received[0]
    else:  # the system's CAs do not know the test CA: no handshake, no request
        assert received == []
