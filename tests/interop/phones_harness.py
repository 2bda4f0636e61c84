"""What the tests of calls placed by phones and trunks share: real baresip phones driven
over their ``ctrl_tcp`` socket, tones they play and the audio they record, and the
loopback addresses that tell a trunk, a phone and a stranger apart.

The server classifies an INVITE by its source address, a trunk's winning over a phone's
(``pbx.routing``), so the trunk lives on 127.0.0.3 while phones (baresip, SIPp UAS) live
on 127.0.0.1; 127.0.0.2 is nobody's. Linux answers on every address of 127.0.0.0/8.

Each baresip runs in a home of its own: ``aufile`` plays a generated WAV as the
microphone, the ``sndfile`` filter writes what the phone sends (``-enc.wav``) and what it
decodes from the network (``-dec.wav``), ``menu`` and ``ctrl_tcp`` take commands (``dial``,
``hangup``) and report events (``CALL_ESTABLISHED``, ``CALL_CLOSED``) as JSON netstrings.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import shutil
import socket
import struct
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from switchboard.app import Server
from switchboard.media import g711
from switchboard.pbx.live import LiveCall
from tests.interop.sipp import SCENARIOS, free_port, start_sipp

PHONE_HOST = "127.0.0.1"
STRANGER_HOST = "127.0.0.2"
TRUNK_HOST = "127.0.0.3"
RATE = 8000  # G.711's sample rate: what the phones send and record
AMPLITUDE = 8000

Event = dict[str, Any]


def write_tone(path: Path, hertz: float, seconds: float = 20.0) -> Path:
    """A mono 16-bit WAV of one sine at ``hertz``; long enough to outlast the call, since
    baresip's ``aufile`` plays its file once."""
    frames = (
        struct.pack("<h", round(AMPLITUDE * math.sin(2 * math.pi * hertz * n / RATE)))
        for n in range(round(seconds * RATE))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(b"".join(frames))
    return path


def write_g711_tone(path: Path, hertz: float, seconds: float = 10.0) -> Path:
    """Raw PCMU of one sine at ``hertz``: what SIPp's ``rtp_stream`` sends."""
    samples = [
        round(AMPLITUDE * math.sin(2 * math.pi * hertz * n / RATE))
        for n in range(round(seconds * RATE))
    ]
    path.write_bytes(g711.encode(samples, "PCMU"))
    return path


def read_samples(path: Path) -> list[int]:
    with wave.open(str(path), "rb") as source:
        assert (source.getframerate(), source.getnchannels(), source.getsampwidth()) == (
            RATE,
            1,
            2,
        ), f"{path.name}: not 8 kHz mono 16-bit"
        data = source.readframes(source.getnframes())
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def tone_level(samples: list[int], hertz: float) -> float:
    """The amplitude of ``hertz`` in ``samples`` (Goertzel's single DFT bin): about half
    the sine's amplitude when the tone is there, near zero when it is not."""
    if not samples:
        return 0.0
    coefficient = 2 * math.cos(2 * math.pi * hertz / RATE)
    previous = before = 0.0
    for sample in samples:
        previous, before = sample + coefficient * previous - before, previous
    power = previous**2 + before**2 - coefficient * previous * before
    return math.sqrt(max(power, 0.0)) / len(samples)


class Baresip:
    """One running baresip, its control connection and the events it reported."""

    def __init__(self, user: str, home: Path, process: asyncio.subprocess.Process) -> None:
        self.user = user
        self.home = home
        self.process = process
        self.events: list[Event] = []
        self._taken: set[int] = set()
        self._responses: dict[str, Event] = {}
        self._changed = asyncio.Condition()
        self._tokens = itertools.count(1)
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def connect(self, port: int) -> None:
        reader, self._writer = await asyncio.open_connection(PHONE_HOST, port)
        self._reader_task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                length = await reader.readuntil(b":")
                payload = await reader.readexactly(int(length[:-1]) + 1)  # and its ","
                message: Event = json.loads(payload[:-1])
                async with self._changed:
                    if message.get("response"):
                        self._responses[str(message.get("token"))] = message
                    else:
                        self.events.append(message)
                    self._changed.notify_all()

    async def command(self, name: str, params: str = "", timeout: float = 5.0) -> Event:
        """Run a menu command; its response (``ok`` says whether it was accepted)."""
        assert self._writer is not None
        token = f"{self.user}-{next(self._tokens)}"
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        self._writer.write(b"%d:%s," % (len(body), body))
        await self._writer.drain()
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: token in self._responses), timeout
            )
            response = self._responses.pop(token)
        assert response.get("ok"), f"{self.user}: {name} {params!r} refused: {response}"
        return response

    async def event(self, kind: str, timeout: float = 5.0) -> Event:
        """The first event of ``kind`` not returned before, waiting for it if need be."""

        def found() -> int | None:
            for index, event in enumerate(self.events):
                if event.get("type") == kind and index not in self._taken:
                    return index
            return None

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
            except TimeoutError:
                kinds = [e.get("type") for e in self.events]
                raise AssertionError(f"{self.user}: no {kind} in {kinds}\n{self.log()}") from None
            index = found()
            assert index is not None
            self._taken.add(index)
            return self.events[index]

    def kinds(self) -> list[str]:
        return [str(e.get("type")) for e in self.events]

    def log(self) -> str:
        path = self.home / "baresip.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-3000:]

    def recording(self, direction: str = "dec") -> list[int]:
        """What the phone decoded from the network (``dec``) or sent (``enc``), of its one
        call; read once the phone has stopped (the WAV header is written on close)."""
        files = sorted((self.home / "recordings").glob(f"dump-*-{direction}.wav"))
        assert len(files) == 1, f"{self.user}: recordings {files}\n{self.log()}"
        return read_samples(files[0])

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task


def _home(
    path: Path, account: str, *, registrar_port: int, control_port: int, hertz: float
) -> Path:
    path.mkdir(parents=True)
    tone = write_tone(path / "tone.wav", hertz)
    (path / "recordings").mkdir()
    # Port 0: the system picks baresip's SIP ports (UDP, and TCP beside it), so two phones
    # never collide; the phone's REGISTER tells the server where it is.
    (path / "config").write_text(
        f"poll_method epoll\nsip_listen {PHONE_HOST}:0\nsip_trans_def udp\n"
        f"audio_player aufile,/dev/null\naudio_source aufile,{tone}\n"
        f"rtp_ports 30000-39999\nctrl_tcp_listen {PHONE_HOST}:{control_port}\n"
        f"snd_path {path / 'recordings'}\n"
        "module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n"
        "module sndfile.so\nmodule_app account.so\nmodule_app menu.so\n"
        "module_app ctrl_tcp.so\n"
    )
    (path / "accounts").write_text(
        f'{account};outbound="sip:{PHONE_HOST}:{registrar_port}";regint=300;answermode=auto;'
        "audio_codecs=PCMU\n"
    )
    return path


@asynccontextmanager
async def baresip_phone(
    tmp_path: Path,
    server: Server,
    user: str,
    password: str,
    *,
    hertz: float,
    domain: str = "example.com",
    name: str | None = None,
) -> AsyncIterator[Baresip]:
    """A baresip registered as ``user`` of example.com (auto-answering, playing a
    ``hertz`` tone), with its control connection open. ``domain``: the host of its
    address-of-record (the server's address names the default domain); ``name``: its home
    directory's, for a second phone of the same user."""
    binary = shutil.which("baresip")
    assert binary, "baresip is not installed: apt-get install baresip-core (see scripts/setup)"
    control = free_port(socket.SOCK_STREAM)
    home = _home(
        tmp_path / f"baresip-{name or user}",
        f"<sip:{user}@{domain}>;auth_pass={password}",
        registrar_port=server.endpoint.listen_port,
        control_port=control,
        hertz=hertz,
    )
    bound = len(server.registrar.contacts("example.com", user))
    with (home / "baresip.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary, "-f", str(home), "-t", "60", stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    phone = Baresip(user, home, process)
    try:
        await _registered(server, phone, bound)
        await phone.connect(control)  # listening: modules load before accounts register
        yield phone
    finally:
        await phone.stop()


async def _registered(server: Server, phone: Baresip, bound: int) -> None:
    """Wait for the phone's binding to join the ``bound`` ones of its user in the
    registrar (baresip starting up)."""
    for _ in range(200):
        if len(server.registrar.contacts("example.com", phone.user)) > bound:
            return
        if phone.process.returncode is not None:
            break
        await asyncio.sleep(0.025)
    raise AssertionError(f"{phone.user} did not register\n{phone.log()}")


async def relayed(call: LiveCall, seconds: float, timeout: float = 10.0) -> None:
    """Wait until the call's relay forwarded ``seconds`` of 20 ms packets each way."""
    wanted = round(seconds * 50)
    stats_a, stats_b = call.session.a.stats, call.session.b.stats
    for _ in range(round(timeout / 0.02)):
        if stats_a.packets_in >= wanted and stats_b.packets_in >= wanted:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"relayed {stats_a.packets_in} packets from the caller and {stats_b.packets_in} "
        f"from the callee; wanted {wanted} each way"
    )


async def start_sipp_at(host: str, port: int, args: list[str]) -> asyncio.subprocess.Process:
    """Start SIPp bound to ``host``:``port`` (``-i``, ``-p``, ``-nostdin`` added here) and
    return once it listens there."""
    return await start_sipp([*args, "-i", host, "-p", str(port), "-nostdin"])


def scenario_copy(tmp_path: Path, name: str, **values: str) -> Path:
    """A copy of scenario ``name`` with each placeholder (a key) replaced by its value."""
    text = (SCENARIOS / name).read_text()
    for placeholder, value in values.items():
        assert placeholder in text, f"{placeholder} not in {name}"
        text = text.replace(placeholder, value)
    path = tmp_path / name
    path.write_text(text)
    return path


@asynccontextmanager
async def reaped(*processes: asyncio.subprocess.Process) -> AsyncIterator[None]:
    """Kill whichever of ``processes`` still runs on the way out (a failed assertion leaves
    SIPp waiting for a message that will not come)."""
    try:
        yield
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.communicate()
