"""Cost of the relay's receive → forward path, in-process, sockets replaced by a counter.

    python -m bench.relay_hotpath [--packets N]

Baseline in the same run: the least a Python relay can do per packet — one method call that
hands the received bytes to ``sendto``. Ours: the real ``on_packet`` handler of a bridged
session (validity check, latch check, counters, payload-type check, forward), with the
same codec on both legs (bytes passed through) and with PCMU → PCMA conversion. Memory:
what stays allocated after all packets (tracemalloc), which must not grow with traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tracemalloc
from typing import Any

from bench.report import write_section
from switchboard.media import g711
from switchboard.media.ports import PortAllocator
from switchboard.media.relay import LegMedia, MediaRelay
from switchboard.media.rtp import RtpHeader


class CountingTransport:
    def __init__(self) -> None:
        self.sent = 0

    def sendto(self, data: bytes, address: Any) -> None:
        self.sent += 1

    def close(self) -> None:
        pass


def _timed(handler: Any, packets: list[bytes], source: tuple[str, int]) -> float:
    start = time.perf_counter()
    for packet in packets:
        handler(packet, source)
    return (time.perf_counter() - start) / len(packets) * 1e9


async def measure(count: int, *, trace: bool) -> dict[str, float]:
    relay = MediaRelay("127.0.0.1", "127.0.0.1", PortAllocator(45000, 45100))
    results: dict[str, float] = {}
    frame = g711.encode([1000] * 160, "PCMU")
    packets = [RtpHeader(0, n & 0xFFFF, n * 160, 0x1234).pack() + frame for n in range(count)]
    source = ("127.0.0.1", 40000)
    baseline_transport = CountingTransport()

    def bare(data: bytes, address: tuple[str, int]) -> None:
        baseline_transport.sendto(data, ("127.0.0.1", 40002))

    results["baseline"] = _timed(bare, packets, source)
    for name, far_codec, far_pt in (("same codec", "PCMU", 0), ("PCMU → PCMA", "PCMA", 8)):
        session = await relay.create_session()
        session.a.set_media(LegMedia(source, "PCMU", 0))
        session.b.set_media(LegMedia(("127.0.0.1", 40002), far_codec, far_pt))
        session.bridge()
        session.b.rtp.transport = CountingTransport()
        handler = session.a.rtp.on_packet
        handler(packets[0], source)  # latch first
        if not trace:
            results[name] = _timed(handler, packets, source)
        else:
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            _timed(handler, packets, source)
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            retained = sum(s.size_diff for s in after.compare_to(before, "filename"))
            results[f"{name} retained bytes"] = retained
        session.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packets", type=int, default=200_000)
    args = parser.parse_args()
    timed = asyncio.run(measure(args.packets, trace=False))  # tracemalloc would slow it
    traced = asyncio.run(measure(args.packets, trace=True))
    print(timed, traced)
    base = timed["baseline"]
    rows = [
        f"| {name} | {timed[name]:.0f} | {timed[name] / base:.1f}× | "
        f"{traced.get(name + ' retained bytes', 0):.0f} |"
        for name in ("baseline", "same codec", "PCMU → PCMA")
    ]
    body = (
        f"{args.packets} packets of 172 bytes through one bridged session, sockets replaced "
        "by a counter: Python cost only.\n\n"
        "| path | ns/packet | ratio to baseline | bytes still allocated after the run |\n"
        "|---|---|---|---|\n" + "\n".join(rows)
    )
    write_section("RTP relay hot path", f"python -m bench.relay_hotpath --packets "
                  f"{args.packets}", body)  # fmt: skip


if __name__ == "__main__":
    main()
