"""G.711 codecs and µ-law ⇄ A-law conversion."""

from __future__ import annotations

import pytest

from switchboard.media import g711


@pytest.mark.parametrize(
    ("code", "linear"),
    [(0xFF, 0), (0x7F, 0), (0x80, 32124), (0x00, -32124), (0xFE, 8), (0xEF, 132), (0x70, -120)],
)
def test_known_ulaw_values(code: int, linear: int) -> None:
    assert g711.ulaw_to_linear(code) == linear


@pytest.mark.parametrize(
    ("code", "linear"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xC5, 264)],
)
def test_known_alaw_values(code: int, linear: int) -> None:
    assert g711.alaw_to_linear(code) == linear


def test_silence_and_encoding_of_known_samples() -> None:
    assert (g711.ULAW_SILENCE, g711.ALAW_SILENCE) == (0xFF, 0xD5)
    assert g711.linear_to_ulaw(32767) == 0x80 and g711.linear_to_ulaw(-32768) == 0x00
    assert g711.linear_to_alaw(32767) == 0xAA and g711.linear_to_alaw(-32768) == 0x2A


def test_every_code_survives_decode_then_encode() -> None:
    assert all(g711.linear_to_alaw(g711.alaw_to_linear(c)) == c for c in range(256))
    # µ-law has two zeros (0xFF and 0x7F); both decode to 0, which encodes as 0xFF
    assert all(
        g711.linear_to_ulaw(g711.ulaw_to_linear(c)) == (0xFF if c == 0x7F else c)
        for c in range(256)
    )


def test_conversion_tables_stay_within_one_quantisation_step() -> None:
    """G.711's direct tables: each converted code decodes close to the original value."""
    for code in range(256):
        original = g711.ulaw_to_linear(code)
        converted = g711.alaw_to_linear(g711.ULAW_TO_ALAW[code])
        step = max(16, abs(original) // 8)  # segment step of the coarser law there
        assert abs(converted - original) <= step, (hex(code), original, converted)
        original = g711.alaw_to_linear(code)
        converted = g711.ulaw_to_linear(g711.ALAW_TO_ULAW[code])
        assert abs(converted - original) <= max(16, abs(original) // 8), hex(code)


def test_round_trips_through_the_other_law() -> None:
    a_round = sum(g711.ULAW_TO_ALAW[g711.ALAW_TO_ULAW[c]] != c for c in range(256))
    u_round = sum(g711.ALAW_TO_ULAW[g711.ULAW_TO_ALAW[c]] != c for c in range(256))
    # G.711's tables map 256 codes to 240 (the laws' segments differ): 16 of each lose.
    assert (len(set(g711.ULAW_TO_ALAW)), len(set(g711.ALAW_TO_ULAW))) == (240, 240)
    assert (a_round, u_round) == (16, 16)
    # the extremes and the sign always survive; silence becomes the smallest positive step
    for code in (0x80, 0x00):
        assert g711.ALAW_TO_ULAW[g711.ULAW_TO_ALAW[code]] == code
    assert g711.ULAW_TO_ALAW[g711.ULAW_SILENCE] == g711.ALAW_SILENCE
    assert g711.ALAW_TO_ULAW[g711.ALAW_SILENCE] == 0xFE  # +8, A-law has no zero
    assert all((g711.ULAW_TO_ALAW[c] & 0x80) == (c & 0x80) for c in range(256))


def test_frames_translate_in_one_call() -> None:
    frame = g711.encode([0, 1000, -1000, 30000] * 40, "PCMU")
    converted = frame.translate(g711.ULAW_TO_ALAW)
    assert len(converted) == 160
    decoded = g711.decode(converted, "PCMA")[:4]
    assert decoded[:3] == [8, 1008, -1008]
    assert abs(decoded[3] - 30000) <= 1024  # the top segment's step
