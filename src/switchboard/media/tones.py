"""Ringback tones (ITU-T E.180 style cadences), as 20 ms G.711 frames.

One full cadence period is synthesised once per (tone, codec) and then replayed, so the
sender's hot path only picks the next precomputed payload.

| name | frequency | cadence |
| --- | --- | --- |
| ``jp`` | 400 Hz (16 Hz modulated in Japan; plain here) | 1 s on, 2 s off |
| ``us`` | 440 + 480 Hz | 2 s on, 4 s off |
| ``eu`` | 425 Hz | 1 s on, 4 s off |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from switchboard.media import g711

SAMPLE_RATE = 8000
FRAME_MS = 20  # the default packetisation; a leg may ask for another ptime (10–60 ms)
SAMPLES_PER_FRAME = SAMPLE_RATE * FRAME_MS // 1000  # 160


@dataclass(frozen=True, slots=True)
class Tone:
    frequencies: tuple[float, ...]
    on_ms: int
    off_ms: int
    amplitude: float = 0.25  # of full scale, split between the frequencies (≈ -15 dBm0)


TONES = {
    "jp": Tone((400.0,), 1000, 2000),
    "us": Tone((440.0, 480.0), 2000, 4000),
    "eu": Tone((425.0,), 1000, 4000),
}


@cache
def frames(name: str, codec: str, ptime: int = FRAME_MS) -> tuple[bytes, ...]:
    """Payloads of one cadence period, ``ptime`` ms each, in ``codec`` (PCMU or PCMA)."""
    tone = TONES[name]
    per_frame = SAMPLE_RATE * ptime // 1000
    on_frames = tone.on_ms // ptime
    total = (tone.on_ms + tone.off_ms) // ptime
    peak = 32767 * tone.amplitude / len(tone.frequencies)
    silence = g711.encode([0] * per_frame, codec)
    out: list[bytes] = []
    for index in range(total):
        if index >= on_frames:
            out.append(silence)
            continue
        start = index * per_frame
        samples = [
            round(sum(peak * math.sin(2 * math.pi * f * (start + n) / SAMPLE_RATE)
                      for f in tone.frequencies))
            for n in range(per_frame)
        ]  # fmt: skip
        out.append(g711.encode(samples, codec))
    return tuple(out)
