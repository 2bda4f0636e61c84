"""RTP headers, port pairs, tones and loss counting."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from switchboard.media import g711, rtp, tones
from switchboard.media.ports import PortAllocator, PortsExhaustedError
from switchboard.media.stats import LegStats


def test_rtp_header_round_trip_and_payload_offset_with_csrc_and_extension() -> None:
    header = rtp.RtpHeader(8, 65535, 2**32 - 160, 0xDEADBEEF, marker=True)
    packet = header.pack() + b"x" * 160
    assert rtp.is_rtp(packet) and rtp.parse(packet) == header
    assert (rtp.payload_type(packet), rtp.sequence(packet), rtp.payload_offset(packet)) == (
        8,
        65535,
        12,
    )
    with_extras = bytes((0x80 | 0x10 | 2,)) + packet[1:12] + b"C1C1C2C2" + b"\xbe\xde\x00\x01"
    assert rtp.payload_offset(with_extras + b"EXT1" + b"payload") == 12 + 8 + 4 + 4
    assert not rtp.is_rtp(b"\x00" * 12) and not rtp.is_rtp(b"\x80\x00")


def test_port_pairs_are_even_and_exhaustion_names_the_setting() -> None:
    ports = PortAllocator(20001, 20008)  # even RTP ports whose RTCP fits: 20002..20006
    assert sorted(ports.allocate() for _ in range(3)) == [20002, 20004, 20006]
    with pytest.raises(PortsExhaustedError, match=r"server\.rtp_ports"):
        ports.allocate()
    ports.release(20004)
    ports.release(20004)  # twice is harmless
    assert ports.in_use == 2 and ports.allocate() == 20004


def test_ports_are_drawn_unpredictably_and_a_released_pair_cools_down() -> None:
    """RFC 3550 §8.2: a hijacker must not know which pair the next call gets."""
    first = [PortAllocator(20000, 20200, rng=random.Random(seed)).allocate() for seed in range(20)]
    assert len(set(first)) > 10  # not lowest-first: the draw depends on the generator
    ports = PortAllocator(20000, 20020, rng=random.Random(7))  # ten pairs
    taken = [ports.allocate() for _ in range(4)]
    ports.release(taken[0])
    again = [ports.allocate() for _ in range(6)]  # the six never-used pairs come first
    assert taken[0] not in again and ports.in_use == 9
    assert ports.allocate() == taken[0]  # nothing else left: the cooled pair is reused


@pytest.mark.parametrize(("name", "codec", "frequency"), [("jp", "PCMU", 400), ("eu", "PCMA", 425)])
def test_tones_have_the_right_cadence_and_frequency(name: str, codec: str, frequency: int) -> None:
    frames = tones.frames(name, codec)
    tone = tones.TONES[name]
    assert len(frames) == (tone.on_ms + tone.off_ms) // 20
    assert all(len(f) == 160 for f in frames)
    on = tone.on_ms // 20
    silence = bytes((g711.ULAW_SILENCE if codec == "PCMU" else g711.ALAW_SILENCE,)) * 160
    assert all(f == silence for f in frames[on:]) and frames[0] != silence
    samples = [s for f in frames[:on] for s in g711.decode(f, codec)]
    crossings = sum(1 for a, b in itertools.pairwise(samples) if a < 0 <= b)
    assert math.isclose(crossings / (tone.on_ms / 1000), frequency, rel_tol=0.02)


def test_us_ringback_is_two_tones() -> None:
    frames = tones.frames("us", "PCMU")
    assert len(frames) == 300 and frames[99] != frames[100]


def test_loss_is_counted_from_sequence_gaps_across_wrap_around() -> None:
    stats = LegStats()
    for seq in (65533, 65534, 1, 2, 0):  # 65535 and 0 missing, then 0 arrives late
        stats.received(seq, 172, 0.0)
    assert stats.packets_in == 5 and stats.lost == 1
