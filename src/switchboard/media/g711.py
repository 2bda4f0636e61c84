"""G.711 µ-law and A-law (ITU-T G.711), and direct µ-law ⇄ A-law conversion.

The codecs follow the reference algorithm of ITU-T G.711 (segment search, bias 0x84 for
µ-law, even-bit inversion 0x55 for A-law). Conversion between the laws uses G.711's own
µ-law ⇄ A-law correspondence (the magnitude tables below, from the CCITT specification, as
corrected in 1994), not a detour through linear PCM; it is precomputed into 256-byte tables,
so converting a 20 ms frame is one ``bytes.translate`` call.
"""

from __future__ import annotations

# Segment ends: of the biased 16-bit magnitude for µ-law, of the 13-bit magnitude for A-law.
_ULAW_SEG_END = (0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF)
_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for index, end in enumerate(ends):
        if value <= end:
            return index
    return 8


def linear_to_ulaw(sample: int) -> int:
    """16-bit signed linear → µ-law byte."""
    if sample < 0:
        sample, mask = -sample, 0x7F
    else:
        mask = 0xFF
    sample = min(sample, _ULAW_CLIP) + _ULAW_BIAS
    segment = _segment(sample, _ULAW_SEG_END)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((sample >> (segment + 3)) & 0x0F)) ^ mask


def ulaw_to_linear(code: int) -> int:
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return _ULAW_BIAS - magnitude if code & 0x80 else magnitude - _ULAW_BIAS


def linear_to_alaw(sample: int) -> int:
    """16-bit signed linear → A-law byte."""
    sample >>= 3  # A-law works on 13 bits
    if sample >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        sample = -sample - 1
    segment = _segment(sample, _ALAW_SEG_END)
    if segment >= 8:
        return 0x7F ^ mask
    code = segment << 4
    code |= (sample >> 1 if segment < 2 else sample >> segment) & 0x0F
    return code ^ mask


def alaw_to_linear(code: int) -> int:
    code ^= 0x55
    magnitude = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        magnitude += 8
    elif segment == 1:
        magnitude += 0x108
    else:
        magnitude = (magnitude + 0x108) << (segment - 1)
    return magnitude if code & 0x80 else -magnitude


# Magnitude correspondences (index: 7-bit magnitude code, value: 1-based code of the other
# law), CCITT G.711.
_U2A = (
    1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 29, 31, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42,
    43, 44, 46, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 64, 65, 66, 67,
    68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90,
    91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109,
    110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126,
    127, 128,
)  # fmt: skip
_A2U = (
    1, 3, 5, 7, 9, 11, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
    31, 32, 32, 33, 33, 34, 34, 35, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    48, 49, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 64, 65, 66, 67,
    68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88,
    89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108,
    109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125,
    126, 127,
)  # fmt: skip


def ulaw_to_alaw(code: int) -> int:
    if code & 0x80:
        return 0xD5 ^ (_U2A[0xFF ^ code] - 1)
    return 0x55 ^ (_U2A[0x7F ^ code] - 1)


def alaw_to_ulaw(code: int) -> int:
    if code & 0x80:
        return 0xFF ^ _A2U[code ^ 0xD5]
    return 0x7F ^ _A2U[code ^ 0x55]


ULAW_TO_ALAW = bytes(ulaw_to_alaw(c) for c in range(256))
ALAW_TO_ULAW = bytes(alaw_to_ulaw(c) for c in range(256))
ULAW_SILENCE = linear_to_ulaw(0)  # 0xFF
ALAW_SILENCE = linear_to_alaw(0)  # 0xD5


def encode(samples: list[int], codec: str) -> bytes:
    encoder = linear_to_ulaw if codec.upper() == "PCMU" else linear_to_alaw
    return bytes(encoder(s) for s in samples)


def decode(payload: bytes, codec: str) -> list[int]:
    decoder = ulaw_to_linear if codec.upper() == "PCMU" else alaw_to_linear
    return [decoder(b) for b in payload]
