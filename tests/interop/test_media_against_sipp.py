"""Two SIPp instances talk through a relay session set up for them.

The caller (SIPp ``rtp_stream``) streams a 1 kHz tone; the far end (SIPp ``-rtp_echo``)
sends every packet it receives back to where it came from. The far end's SDP points the
caller at the relay's caller-facing port, and each leg's codec is set as negotiated, so
the packets cross the relay twice, converted when the legs' codecs differ. What comes
back from the far end proves it received the caller's media; what the relay forwards to
the caller is the far end's media.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from switchboard.media import g711, rtp
from switchboard.media.ports import PortAllocator
from switchboard.media.relay import Address, LegMedia, MediaRelay
from tests.interop.sipp import SCENARIOS, free_port, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
PT = {"PCMU": 0, "PCMA": 8}


def _tone(path: Path, codec: str) -> Path:
    samples = [round(8000 * math.sin(2 * math.pi * 1000 * n / 8000)) for n in range(16000)]
    path.write_bytes(g711.encode(samples, codec))
    return path


@pytest.mark.parametrize(
    ("caller_codec", "far_codec"),
    [("PCMU", "PCMU"), ("PCMU", "PCMA"), ("PCMA", "PCMU")],
)
async def test_two_sipp_instances_hear_each_other_through_the_relay(
    tmp_path: Path, caller_codec: str, far_codec: str
) -> None:
    relay = MediaRelay("127.0.0.1", "127.0.0.1", PortAllocator(43000, 43100))
    session = await relay.create_session()
    caller_media, far_media, far_sip = free_port(), free_port(), free_port()
    session.a.set_media(LegMedia(("127.0.0.1", caller_media), caller_codec, PT[caller_codec]))
    session.b.set_media(LegMedia(("127.0.0.1", far_media), far_codec, PT[far_codec]))
    session.bridge()
    echoes: list[bytes] = []
    far_handler = session.b.rtp.on_packet

    def tap(packet: bytes, source: Address) -> None:
        echoes.append(packet)
        far_handler(packet, source)

    session.b.rtp.on_packet = tap
    audio = _tone(tmp_path / "tone.g711", caller_codec)
    caller_scenario = tmp_path / "caller.xml"
    caller_scenario.write_text(
        (SCENARIOS / "uac_rtp_stream.xml").read_text()
        .replace("AUDIO_FILE", str(audio)).replace("PAYLOAD_TYPE", str(PT[caller_codec]))
    )  # fmt: skip
    far = await start_sipp([
        "-sf", str(SCENARIOS / "uas_rtp_echo.xml"), "-i", "127.0.0.1", "-p", str(far_sip),
        "-mp", str(far_media), "-rtp_echo", "-m", "1", "-nostdin",
        "-set", "relay_port", str(session.a.port), "-set", "pt", str(PT[far_codec]),
        "-set", "codec", far_codec,
    ])  # fmt: skip
    await asyncio.sleep(0.3)
    caller = await start_sipp([
        "-sf", str(caller_scenario), f"127.0.0.1:{far_sip}", "-i", "127.0.0.1",
        "-p", str(free_port()), "-mp", str(caller_media), "-m", "1", "-nostdin",
        "-set", "pt", str(PT[caller_codec]), "-set", "codec", caller_codec,
    ])  # fmt: skip
    try:
        caller_out, _ = await asyncio.wait_for(caller.communicate(), 20)
        far_out, _ = await asyncio.wait_for(far.communicate(), 10)
    finally:
        session.close()
    assert caller.returncode == 0, caller_out.decode(errors="replace")[-2000:]
    assert far.returncode == 0, far_out.decode(errors="replace")[-2000:]
    a, b = session.a.stats, session.b.stats
    assert a.packets_in == 100  # two seconds of audio from the caller, 50 packets/s
    assert b.packets_out == a.packets_in  # all relayed toward the far end
    assert b.packets_in >= a.packets_in - 2  # and echoed back by it
    assert a.packets_out == b.packets_in  # all relayed to the caller
    assert session.a.latched == ("127.0.0.1", caller_media)
    # the far end echoed what it received: in its codec, the caller's tone converted
    tone = audio.read_bytes()
    table = {("PCMU", "PCMA"): g711.ULAW_TO_ALAW, ("PCMA", "PCMU"): g711.ALAW_TO_ULAW}
    expected = (
        tone.translate(table[(caller_codec, far_codec)]) if caller_codec != far_codec else tone
    )
    echoed = b"".join(p[rtp.payload_offset(p) :] for p in echoes)
    assert {rtp.payload_type(p) for p in echoes} == {PT[far_codec]}
    assert echoed and echoed in expected
